//! Process control on Windows: the command runs in its own Job Object, so a kill terminates the
//! whole tree (everything it started stays in the job: breaking away is not allowed) and the
//! job's last handle closing (our process exiting, however it exits) kills whatever is left.
//! The child is created suspended and only resumed once it is in the job, so not even its first
//! instructions run outside it. Windows cannot `poll` anonymous pipes, so one reader thread per
//! pipe forwards output to the waiting thread over a bounded channel.
//!
//! The handful of kernel32/ntdll functions used are declared here rather than pulled from a
//! bindings crate (see the README's dependency table).

use std::ffi::c_void;
use std::io::Read;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::os::windows::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};

use super::{KILLED_SIGNAL, OutputStream, TerminalSize};

/// Separates the entries of `PATH`.
pub(super) const PATH_LIST_SEPARATOR: &str = ";";
/// Windows compares environment variable names case-insensitively (`Path` is `PATH`).
pub(super) const ENV_NAMES_IGNORE_CASE: bool = true;
/// Windows has no signals.
pub(super) const BAD_SYSCALL_SIGNAL: Option<i32> = None;

/// The exit code a killed job's processes get (128 + SIGKILL, as a shell would report it).
const KILLED_EXIT_CODE: u32 = 137;
/// How often the leader's exit is checked while no output arrives.
const LEADER_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Chunks of output queued between a reader thread and the waiting thread.
const OUTPUT_QUEUE: usize = 16;

const CREATE_SUSPENDED: u32 = 0x0000_0004;
/// No console window for console programs when we have none (a GUI embedder spawned us).
const CREATE_NO_WINDOW: u32 = 0x0800_0000;
/// `CREATE_NEW_PROCESS_GROUP`: the child does not receive the console's Ctrl+C.
const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
const JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS: i32 = 9;
const JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: u32 = 0x0000_2000;
const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;
const STILL_ACTIVE: u32 = 259;
const ERROR_ACCESS_DENIED: i32 = 5;

/// `JOBOBJECT_BASIC_LIMIT_INFORMATION`.
#[repr(C)]
#[derive(Default)]
struct BasicLimitInformation {
    per_process_user_time_limit: i64,
    per_job_user_time_limit: i64,
    limit_flags: u32,
    minimum_working_set_size: usize,
    maximum_working_set_size: usize,
    active_process_limit: u32,
    affinity: usize,
    priority_class: u32,
    scheduling_class: u32,
}

/// `IO_COUNTERS`.
#[repr(C)]
#[derive(Default)]
struct IoCounters {
    read_operation_count: u64,
    write_operation_count: u64,
    other_operation_count: u64,
    read_transfer_count: u64,
    write_transfer_count: u64,
    other_transfer_count: u64,
}

/// `JOBOBJECT_EXTENDED_LIMIT_INFORMATION`.
#[repr(C)]
#[derive(Default)]
struct ExtendedLimitInformation {
    basic_limit_information: BasicLimitInformation,
    io_info: IoCounters,
    process_memory_limit: usize,
    job_memory_limit: usize,
    peak_process_memory_used: usize,
    peak_job_memory_used: usize,
}

#[link(name = "kernel32")]
unsafe extern "system" {
    fn CreateJobObjectW(attributes: *mut c_void, name: *const u16) -> RawHandle;
    fn SetInformationJobObject(job: RawHandle, class: i32, info: *mut c_void, len: u32) -> i32;
    fn AssignProcessToJobObject(job: RawHandle, process: RawHandle) -> i32;
    fn TerminateJobObject(job: RawHandle, exit_code: u32) -> i32;
    fn OpenProcess(access: u32, inherit: i32, pid: u32) -> RawHandle;
    fn GetExitCodeProcess(process: RawHandle, code: *mut u32) -> i32;
    fn SetConsoleCtrlHandler(
        handler: Option<unsafe extern "system" fn(u32) -> i32>,
        add: i32,
    ) -> i32;
}

#[link(name = "ntdll")]
unsafe extern "system" {
    /// Resumes every thread of a process (std does not expose the main thread's handle).
    fn NtResumeProcess(process: RawHandle) -> i32;
}

/// Creates the child suspended (it is resumed in [`Tree::attach`], once inside its job) and
/// without a console window of its own.
/// Keeps a helper child out of the console's Ctrl+C (see `exec::shield_from_terminal_signals`).
pub(super) fn own_process_group(cmd: &mut Command) {
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP);
}

pub(super) fn prepare(cmd: &mut Command, _on_terminal: bool) {
    cmd.creation_flags(CREATE_SUSPENDED | CREATE_NO_WINDOW);
}

/// A pseudo-terminal; none can exist here (there is no Windows implementation), so this type
/// has no values and [`open_terminal`] always fails.
#[derive(Clone)]
pub enum Terminal {}

impl Terminal {
    /// Unreachable: no terminal exists.
    pub fn reader(&self) -> std::io::Result<ChildStdout> {
        match *self {}
    }

    /// Unreachable: no terminal exists.
    pub fn writer(&self) -> std::io::Result<std::process::ChildStdin> {
        match *self {}
    }

    /// Unreachable: no terminal exists.
    pub fn resize(&self, _size: TerminalSize) -> std::io::Result<()> {
        match *self {}
    }
}

/// Always an error: pseudo-terminals (`tty`) are not implemented on Windows.
pub(super) fn open_terminal(_size: TerminalSize, _cmd: &mut Command) -> std::io::Result<Terminal> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "pseudo-terminals (tty) are not available on Windows",
    ))
}

/// A command's Job Object.
pub(super) struct Tree {
    job: OwnedHandle,
    killed: AtomicBool,
}

impl Tree {
    /// Puts the suspended `child` in a fresh job that kills its processes when closed, then
    /// lets it run. On error the caller kills the child.
    pub(super) fn attach(child: &Child) -> Result<Tree> {
        // SAFETY: no security attributes and no name; the result is checked before use.
        let raw = unsafe { CreateJobObjectW(std::ptr::null_mut(), std::ptr::null()) };
        if raw.is_null() {
            return Err(std::io::Error::last_os_error()).context("creating a job object");
        }
        // SAFETY: a fresh handle that nothing else owns.
        let job = unsafe { OwnedHandle::from_raw_handle(raw) };
        let mut limits = ExtendedLimitInformation::default();
        limits.basic_limit_information.limit_flags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        let len = u32::try_from(std::mem::size_of::<ExtendedLimitInformation>())
            .context("job limit size")?;
        // SAFETY: `limits` is a live JOBOBJECT_EXTENDED_LIMIT_INFORMATION of `len` bytes.
        let ok = unsafe {
            SetInformationJobObject(
                job.as_raw_handle(),
                JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
                (&mut limits as *mut ExtendedLimitInformation).cast(),
                len,
            )
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error()).context("configuring the job object");
        }
        // SAFETY: both handles are open; the process handle is the child's, with full access.
        if unsafe { AssignProcessToJobObject(job.as_raw_handle(), child.as_raw_handle()) } == 0 {
            return Err(std::io::Error::last_os_error())
                .context("putting the command in its job object");
        }
        // SAFETY: the child's process handle is open; it was created suspended.
        let status = unsafe { NtResumeProcess(child.as_raw_handle()) };
        if status < 0 {
            bail!("resuming the command failed (NTSTATUS {status:#x})");
        }
        Ok(Tree {
            job,
            killed: AtomicBool::new(false),
        })
    }

    /// Terminates every process in the job. Harmless once they are gone (the job handle stays
    /// ours, so nothing else can be hit).
    pub(super) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        // SAFETY: the job handle is open for our lifetime.
        unsafe { TerminateJobObject(self.job.as_raw_handle(), KILLED_EXIT_CODE) };
    }

    /// Windows has no polite stop for a job: the same as [`Tree::kill`].
    pub(super) fn terminate(&self) {
        self.kill();
    }

    /// Whether [`Tree::kill`] was called.
    pub(super) fn was_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Waits for the leader's exit status.
    pub(super) fn reap(&self, child: &mut Child) -> Result<ExitStatus> {
        child.wait().context("reaping the command")
    }
}

/// The exit code, or [`KILLED_SIGNAL`] when our kill ended the leader.
pub(super) fn exit_parts(status: ExitStatus, killed: bool) -> (Option<i32>, Option<i32>) {
    let code = status.code();
    if killed && code.and_then(|c| u32::try_from(c).ok()) == Some(KILLED_EXIT_CODE) {
        (None, Some(KILLED_SIGNAL))
    } else {
        (code, None)
    }
}

/// The exit code (1 when there is none).
pub(super) fn status_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or(1)
}

/// Ignores Ctrl-C and Ctrl-Break in this process (the console still delivers them to the
/// command).
pub(super) fn ignore_terminal_interrupts() {
    // SAFETY: a null handler with TRUE makes this process ignore Ctrl-C; no pointers involved.
    unsafe { SetConsoleCtrlHandler(None, 1) };
}

/// Creates `path` (it inherits the ACL of `CODEX_HOME`, which lives in the user's profile).
pub(super) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir(path)
}

/// Makes `link` run `exe`: a copy. Symlinks need a privilege, and a hard link to the running
/// image could not be deleted while we run (Windows keeps every name of a mapped image).
pub(super) fn link_executable(exe: &Path, link: &Path) -> std::io::Result<()> {
    std::fs::copy(exe, link).map(|_| ())
}

/// Whether a process with this id is running (ours or not).
pub(super) fn is_process_alive(pid: u32) -> bool {
    // SAFETY: plain OpenProcess; the result is checked before use.
    let raw = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if raw.is_null() {
        // Someone else's process we may not inspect still exists.
        return std::io::Error::last_os_error().raw_os_error() == Some(ERROR_ACCESS_DENIED);
    }
    // SAFETY: a fresh handle that nothing else owns.
    let process = unsafe { OwnedHandle::from_raw_handle(raw) };
    let mut code = 0u32;
    // SAFETY: `process` is open with query rights; `code` is a valid u32 to write.
    let ok = unsafe { GetExitCodeProcess(process.as_raw_handle(), &mut code) };
    ok != 0 && code == STILL_ACTIVE
}

/// Output from the reader threads: the pipe's index and a chunk, or `None` at its end.
type Chunk = (usize, Option<Vec<u8>>);

/// Waits for output (from one reader thread per pipe) and for the leader's exit.
pub(super) struct Watch {
    chunks: Receiver<Chunk>,
    open: [bool; 2],
}

impl Watch {
    /// Starts a reader thread for each of `child`'s pipes.
    pub(super) fn new(
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
        _child: &Child,
    ) -> Result<Watch> {
        let (tx, chunks) = bounded::<Chunk>(OUTPUT_QUEUE);
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            stdout.map(|p| Box::new(p) as Box<dyn Read + Send>),
            stderr.map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        let mut open = [false; 2];
        for (index, pipe) in pipes.into_iter().enumerate() {
            let Some(mut pipe) = pipe else { continue };
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("exec-pipe-{index}"))
                .spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match pipe.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tx.send((index, Some(buf[..n].to_vec()))).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let _ = tx.send((index, None));
                })
                .context("starting an output reader thread")?;
            open[index] = true;
        }
        Ok(Watch { chunks, open })
    }

    /// Whether stdout or stderr is still open.
    pub(super) fn has_open_pipes(&self) -> bool {
        self.open.iter().any(|o| *o)
    }

    /// Whether the leader has exited (its handle stays open in `child`, so its id cannot be
    /// reused meanwhile).
    pub(super) fn leader_exited(&mut self, child: &mut Child) -> Result<bool> {
        Ok(child
            .try_wait()
            .context("checking on the command")?
            .is_some())
    }

    /// Blocks until output arrives (handed to `on_output`), a pipe closes, `wake` passes or it
    /// is time to look at the leader again.
    pub(super) fn wait(
        &mut self,
        wake: Option<Instant>,
        leader_exited: bool,
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> Result<()> {
        let now = Instant::now();
        let mut wake = wake;
        if !leader_exited {
            let check = now + LEADER_CHECK_INTERVAL;
            wake = Some(wake.map_or(check, |w| w.min(check)));
        }
        if !self.has_open_pipes() {
            if let Some(w) = wake {
                std::thread::sleep(w.saturating_duration_since(now));
            }
            return Ok(());
        }
        let first = match wake {
            Some(w) => match self.chunks.recv_deadline(w) {
                Ok(chunk) => chunk,
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => {
                    self.open = [false; 2];
                    return Ok(());
                }
            },
            None => match self.chunks.recv() {
                Ok(chunk) => chunk,
                Err(_) => {
                    self.open = [false; 2];
                    return Ok(());
                }
            },
        };
        self.deliver(first, on_output);
        while let Ok(chunk) = self.chunks.try_recv() {
            self.deliver(chunk, on_output);
        }
        Ok(())
    }

    fn deliver(&mut self, (index, bytes): Chunk, on_output: &mut dyn FnMut(OutputStream, &[u8])) {
        let stream = if index == 0 {
            OutputStream::Stdout
        } else {
            OutputStream::Stderr
        };
        match bytes {
            Some(bytes) => on_output(stream, &bytes),
            None => self.open[index] = false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "windows_tests.rs"]
mod tests;
