//! Running one command: spawning it through the platform sandbox for a policy, in its own process
//! group; streaming stdout/stderr to a callback as they arrive while keeping capped head+tail
//! copies; the timeout; killing the whole group (from the waiting thread or any other); exit code
//! or signal and duration. Also the private `PATH` alias directory of apply_patch.md §4.
//!
//! What the sandbox allows is `crate::sandbox`; deciding whether to run a command, approvals and
//! turning the result into protocol items are the callers'.
//!
//! One thread waits: `Running::wait` polls both pipes (and, on Linux, a pidfd of the child) with
//! the timeout as the poll deadline, so nothing is lost and no extra threads exist. The leader is
//! observed with `waitid(WNOWAIT)` and only reaped at the very end, so its pid (the group id)
//! cannot be reused while a [`KillHandle`] may still signal it.

// Only `sandboxed_command` has a caller yet (the sandbox CLI); spawn, wait, kill and the alias
// directory are wired by the server (turns, command/exec). Remove this once they are.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::sandbox::SandboxPolicy;

#[cfg(unix)]
pub mod pty;
#[cfg(unix)]
pub use pty::Terminal;

/// A reasonable `output_cap_bytes` when the caller has no opinion (1 MiB per buffer).
pub const DEFAULT_OUTPUT_CAP_BYTES: usize = 1024 * 1024;

/// How long output may keep flowing after the leader exited (a grandchild holding the pipes)
/// before the group is killed, and again before the pipes are abandoned.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Without a pidfd (macOS, old kernels) the leader's exit is checked this often.
const LEADER_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// The environment variable set in the child when the network is off.
pub const NETWORK_DISABLED_ENV: &str = "CODEX_SANDBOX_NETWORK_DISABLED";

/// What the child's stdin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdinMode {
    /// `/dev/null` (the default: commands from the model never wait for input).
    #[default]
    Null,
    /// A pipe the caller writes through [`Running::take_stdin`] (command/exec/write).
    Piped,
    /// A new pseudo-terminal of this size for stdin, stdout and stderr (all output arrives as
    /// [`OutputStream::Stdout`]); [`Running::take_stdin`] writes to it and
    /// [`Running::terminal`] resizes it. Unix only: elsewhere spawning fails.
    Terminal(TerminalSize),
}

/// A terminal's size in character cells (default 24 rows of 80 columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    /// Rows (lines).
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// What to type to end a terminal's input (the default `VEOF`, Ctrl-D): read at the start of a
/// line, it makes the reader see end of file. A terminal has no other way to close its input.
pub const TERMINAL_EOF_CHAR: u8 = 0x04;

impl Default for TerminalSize {
    fn default() -> Self {
        Self { rows: 24, cols: 80 }
    }
}

/// Which pipe a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// Program and arguments; the program is looked up on the child's `PATH`.
    pub argv: Vec<String>,
    /// The working directory of the command.
    pub cwd: PathBuf,
    /// The cwd the policy's writable roots are computed from (the thread's or turn's cwd). It is
    /// separate from `cwd` so that a command run in some other directory does not make that
    /// directory writable; usually the two are equal.
    pub sandbox_cwd: PathBuf,
    /// The child's full environment (nothing is inherited from the server).
    pub env: HashMap<String, String>,
    /// Kill the group after this long; `None` waits forever.
    pub timeout: Option<Duration>,
    /// The sandbox to run under.
    pub policy: SandboxPolicy,
    /// Bytes kept of each of stdout, stderr and the interleaved output (half head, half tail).
    pub output_cap_bytes: usize,
    /// What stdin is.
    pub stdin: StdinMode,
}

/// The outcome of a finished command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code, when it exited normally.
    pub exit_code: Option<i32>,
    /// The signal that killed it, when it was killed (SIGKILL after a timeout or a kill).
    pub signal: Option<i32>,
    /// Captured stdout (head and tail when over the cap).
    pub stdout: Vec<u8>,
    /// Captured stderr (head and tail when over the cap).
    pub stderr: Vec<u8>,
    /// Both streams interleaved in arrival order (head and tail when over the cap).
    pub aggregated: Vec<u8>,
    /// From spawn to the end of the wait.
    pub duration: Duration,
    /// Whether the timeout fired (the group was killed).
    pub timed_out: bool,
    /// Whether any of the three buffers dropped bytes.
    pub truncated: bool,
}

/// A running command. Call [`Running::wait`]; dropping it unwaited kills the group and reaps it.
pub struct Running {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    group: Arc<Group>,
    started: Instant,
    timeout: Option<Duration>,
    cap: usize,
    terminal: Option<Terminal>,
}

/// Kills a running command's whole process group; cheap to clone, usable from any thread, and
/// idempotent. After the command was reaped it does nothing (the group id may be reused).
#[derive(Clone)]
pub struct KillHandle(Arc<Group>);

struct Group {
    pgid: libc::pid_t,
    /// Set (under the lock) right before the leader is reaped.
    reaped: Mutex<bool>,
}

impl Group {
    fn kill(&self) {
        self.signal(libc::SIGKILL);
    }

    fn signal(&self, signal: libc::c_int) {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if !*reaped {
            // SAFETY: killpg with a positive pgid only sends a signal; the unreaped leader keeps
            // the id from being reused.
            unsafe { libc::killpg(self.pgid, signal) };
        }
    }
}

impl KillHandle {
    /// SIGKILLs every process of the command's group (the command and anything it spawned that
    /// did not leave the group); `wait` then returns promptly.
    pub fn kill(&self) {
        self.0.kill();
    }

    /// Asks every process of the group to stop (SIGTERM); one that ignores it needs
    /// [`KillHandle::kill`] after a grace.
    pub fn terminate(&self) {
        self.0.signal(libc::SIGTERM);
    }
}

/// Spawns `req.argv` under `req.policy`: the child leads its own process group; stdout and stderr
/// are pipes. The sandbox is applied inside the child (Linux helper or Seatbelt), never here.
pub fn spawn(req: ExecRequest) -> Result<Running> {
    let mut cmd = sandboxed_command(&req.policy, &req.sandbox_cwd, &req.argv, &req.env)?;
    cmd.current_dir(&req.cwd);
    let terminal = match req.stdin {
        StdinMode::Terminal(size) => Some(
            pty::open(size)
                .and_then(|pty| pty.attach(&mut cmd))
                .context("opening a pseudo-terminal")?,
        ),
        StdinMode::Null | StdinMode::Piped => {
            cmd.stdin(if req.stdin == StdinMode::Piped {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
            None
        }
    };
    let spawned = cmd
        .spawn()
        .with_context(|| format!("spawning {} in {}", req.argv[0], req.cwd.display()));
    // The Command holds the terminal's slave side: close it here so the master sees the end.
    drop(cmd);
    let mut child = spawned?;
    let pgid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let (stdin, stdout) = match &terminal {
        Some(t) => match t.writer().and_then(|w| Ok((w, t.reader()?))) {
            Ok((writer, reader)) => (Some(writer), Some(reader)),
            Err(e) => {
                // Never leave a child we cannot read running.
                // SAFETY: killpg only sends a signal; the unreaped child keeps the id ours.
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
                let _ = child.wait();
                return Err(e).context("duplicating the terminal");
            }
        },
        None => (child.stdin.take(), child.stdout.take()),
    };
    Ok(Running {
        stdin,
        stdout,
        stderr: child.stderr.take(),
        terminal,
        child: Some(child),
        group: Arc::new(Group {
            pgid,
            reaped: Mutex::new(false),
        }),
        started: Instant::now(),
        timeout: req.timeout,
        cap: req.output_cap_bytes,
    })
}

/// The command that runs `argv` confined by `policy` (roots computed against `policy_cwd`), with
/// exactly `env` as its environment plus the sandbox's markers. Stdio, cwd and process group are
/// left to the caller. danger-full-access runs `argv` directly.
pub fn sandboxed_command(
    policy: &SandboxPolicy,
    policy_cwd: &Path,
    argv: &[String],
    env: &HashMap<String, String>,
) -> Result<Command> {
    let Some(program) = argv.first() else {
        bail!("empty command");
    };
    let mut cmd = if policy.has_full_disk_write_access() {
        let mut cmd = Command::new(program);
        cmd.args(&argv[1..]);
        cmd
    } else {
        platform_command(policy, policy_cwd, argv, env)?
    };
    cmd.env_clear().envs(env);
    if !policy.has_network() {
        cmd.env(NETWORK_DISABLED_ENV, "1");
    }
    #[cfg(target_os = "macos")]
    if !policy.has_full_disk_write_access() {
        cmd.env("CODEX_SANDBOX", "seatbelt");
    }
    Ok(cmd)
}

#[cfg(target_os = "linux")]
fn platform_command(
    policy: &SandboxPolicy,
    policy_cwd: &Path,
    argv: &[String],
    _env: &HashMap<String, String>,
) -> Result<Command> {
    use crate::sandbox::linux::{HELPER_ARG0, helper_args};
    let exe = std::env::current_exe().context("locating our own executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg0(HELPER_ARG0)
        .args(helper_args(policy, policy_cwd, argv));
    Ok(cmd)
}

#[cfg(target_os = "macos")]
fn platform_command(
    policy: &SandboxPolicy,
    policy_cwd: &Path,
    argv: &[String],
    env: &HashMap<String, String>,
) -> Result<Command> {
    use crate::sandbox::macos::{SANDBOX_EXEC, seatbelt_args};
    let tmpdir = env.get("TMPDIR").map(PathBuf::from);
    let mut cmd = Command::new(SANDBOX_EXEC);
    cmd.args(seatbelt_args(policy, policy_cwd, tmpdir.as_deref(), argv));
    Ok(cmd)
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn platform_command(
    _policy: &SandboxPolicy,
    _policy_cwd: &Path,
    _argv: &[String],
    _env: &HashMap<String, String>,
) -> Result<Command> {
    Err(crate::sandbox::SandboxError::WrongPlatform(
        "sandboxing is only available on Linux and macOS",
    )
    .into())
}

impl Running {
    /// A handle that kills the whole process group from any thread (turn interrupt,
    /// command/exec/terminate).
    pub fn kill_handle(&self) -> KillHandle {
        KillHandle(Arc::clone(&self.group))
    }

    /// The child's stdin when spawned with [`StdinMode::Piped`] or [`StdinMode::Terminal`];
    /// `None` otherwise or once taken. Drop it to close a pipe (a terminal stays open: type
    /// [`TERMINAL_EOF_CHAR`] instead).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// The terminal the command runs on, when spawned with [`StdinMode::Terminal`].
    pub fn terminal(&self) -> Option<Terminal> {
        self.terminal.clone()
    }

    /// Waits for the command, handing every chunk of output to `on_output` as it arrives (all of
    /// it, uncapped), and returns the outcome with capped copies. Kills the group at the timeout,
    /// and when output keeps flowing [`DRAIN_GRACE`] after the leader exited; returns at the
    /// latest one more grace later even if an escaped process still holds the pipes.
    pub fn wait(mut self, on_output: &mut dyn FnMut(OutputStream, &[u8])) -> Result<ExecOutput> {
        let mut pipes: [Option<OwnedFd>; 2] = [
            self.stdout.take().map(OwnedFd::from),
            self.stderr.take().map(OwnedFd::from),
        ];
        let pidfd = open_pidfd(self.group.pgid);
        let deadline = self.timeout.map(|t| self.started + t);
        let mut capture = Capture::new(self.cap);
        let mut timed_out = false;
        let mut leader_exit: Option<Instant> = None;
        let mut grace_kill: Option<Instant> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let pipes_open = pipes.iter().any(Option::is_some);
            if leader_exit.is_none() && leader_exited(self.group.pgid)? {
                leader_exit = Some(Instant::now());
            }
            if !pipes_open && leader_exit.is_some() {
                break;
            }
            let now = Instant::now();
            if let Some(d) = deadline
                && !timed_out
                && now >= d
            {
                timed_out = true;
                self.group.kill();
            }
            if let Some(exited) = leader_exit {
                match grace_kill {
                    None if now >= exited + DRAIN_GRACE => {
                        self.group.kill();
                        grace_kill = Some(now);
                    }
                    Some(killed) if now >= killed + DRAIN_GRACE => break,
                    _ => {}
                }
            }
            // The next moment something must happen without any fd becoming ready.
            let mut wake: Option<Instant> = None;
            let mut wake_at = |t: Instant| wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
            if let Some(d) = deadline.filter(|_| !timed_out) {
                wake_at(d);
            }
            match (leader_exit, grace_kill) {
                (Some(exited), None) => wake_at(exited + DRAIN_GRACE),
                (Some(_), Some(killed)) => wake_at(killed + DRAIN_GRACE),
                (None, _) if pidfd.is_none() => wake_at(now + LEADER_CHECK_INTERVAL),
                _ => {}
            }
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
            for pipe in pipes.iter().flatten() {
                fds.push(pollfd(pipe.as_raw_fd()));
            }
            if leader_exit.is_none()
                && let Some(fd) = &pidfd
            {
                fds.push(pollfd(fd.as_raw_fd()));
            }
            poll(&mut fds, wake.map(|w| w.saturating_duration_since(now)))?;
            for (index, stream) in [OutputStream::Stdout, OutputStream::Stderr]
                .into_iter()
                .enumerate()
            {
                let Some(fd) = &pipes[index] else { continue };
                let ready = fds.iter().any(|p| p.fd == fd.as_raw_fd() && p.revents != 0);
                if !ready {
                    continue;
                }
                match read_some(fd, &mut buf) {
                    Ok(0) => pipes[index] = None,
                    Ok(n) => {
                        on_output(stream, &buf[..n]);
                        capture.push(stream, &buf[..n]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // A terminal whose slave side every process closed: its end of output.
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => pipes[index] = None,
                    Err(e) => return Err(e).context("reading command output"),
                }
            }
        }
        drop(pipes);
        // Until here an early return leaves the child to Drop, which kills and reaps it.
        let status = {
            let mut reaped = self.group.reaped.lock().unwrap_or_else(|e| e.into_inner());
            *reaped = true;
            // Only `wait` (which consumes self) and Drop take the child.
            let Some(mut child) = self.child.take() else {
                bail!("command already reaped");
            };
            child.wait().context("reaping the command")?
        };
        Ok(capture.finish(
            status.code(),
            status.signal(),
            self.started.elapsed(),
            timed_out,
        ))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.group.kill();
            let mut reaped = self.group.reaped.lock().unwrap_or_else(|e| e.into_inner());
            *reaped = true;
            let _ = child.wait();
        }
    }
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// `poll` with an optional timeout (rounded up to whole milliseconds); EINTR is a wake-up.
fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> Result<()> {
    let millis = timeout.map_or(-1, |t| {
        let ms = t.as_millis() + u128::from(t.subsec_nanos() % 1_000_000 != 0);
        i32::try_from(ms).unwrap_or(i32::MAX)
    });
    let nfds = libc::nfds_t::try_from(fds.len()).context("too many fds")?;
    // SAFETY: `fds` is a valid, writable slice of pollfd of length `nfds`.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), nfds, millis) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("polling command output");
        }
    }
    Ok(())
}

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes and `fd` is open.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}

/// Whether the leader has exited, without reaping it (`waitid(WNOWAIT)`).
fn leader_exited(pid: libc::pid_t) -> Result<bool> {
    // SAFETY: an all-zero siginfo_t is valid; waitid fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let id = libc::id_t::try_from(pid).context("child pid out of range")?;
    // SAFETY: `info` is a valid siginfo_t; WNOWAIT leaves the child waitable for Child::wait.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EINTR) => Ok(false),
            // Already reaped by someone else (SIGCHLD ignored): it has exited.
            Some(libc::ECHILD) => Ok(true),
            _ => Err(err).context("checking on the command"),
        };
    }
    // SAFETY: waitid succeeded, so si_pid is initialized (0 when nothing has exited yet).
    Ok(unsafe { info.si_pid() } != 0)
}

/// A pidfd that becomes readable when the leader exits (Linux 5.3+); `None` elsewhere.
fn open_pidfd(pid: libc::pid_t) -> Option<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: the syscall returned a fresh fd that nothing else owns.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// Capped copies of stdout, stderr and both interleaved.
struct Capture {
    stdout: HeadTail,
    stderr: HeadTail,
    aggregated: HeadTail,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Self {
            stdout: HeadTail::new(cap),
            stderr: HeadTail::new(cap),
            aggregated: HeadTail::new(cap),
        }
    }

    fn push(&mut self, stream: OutputStream, bytes: &[u8]) {
        match stream {
            OutputStream::Stdout => self.stdout.push(bytes),
            OutputStream::Stderr => self.stderr.push(bytes),
        }
        self.aggregated.push(bytes);
    }

    fn finish(
        self,
        exit_code: Option<i32>,
        signal: Option<i32>,
        duration: Duration,
        timed_out: bool,
    ) -> ExecOutput {
        let truncated =
            self.stdout.dropped > 0 || self.stderr.dropped > 0 || self.aggregated.dropped > 0;
        ExecOutput {
            exit_code,
            signal,
            stdout: self.stdout.into_bytes(),
            stderr: self.stderr.into_bytes(),
            aggregated: self.aggregated.into_bytes(),
            duration,
            timed_out,
            truncated,
        }
    }
}

/// Keeps the first half of `cap` bytes and the last half; memory stays bounded by `cap`.
#[derive(Debug)]
struct HeadTail {
    head: Vec<u8>,
    head_cap: usize,
    tail: VecDeque<u8>,
    tail_cap: usize,
    dropped: usize,
}

impl HeadTail {
    fn new(cap: usize) -> Self {
        let head_cap = cap / 2;
        Self {
            head: Vec::new(),
            head_cap,
            tail: VecDeque::new(),
            tail_cap: cap - head_cap,
            dropped: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let n = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.len() >= self.tail_cap {
            // The new bytes alone fill the tail: everything older goes.
            self.dropped += self.tail.len() + bytes.len() - self.tail_cap;
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.dropped += overflow;
        self.tail.extend(bytes);
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut out = self.head;
        out.extend(self.tail);
        out
    }
}

/// The private directory of apply_patch.md §4: `apply_patch`, `applypatch` and (on Linux)
/// `codex-linux-sandbox` symlinks to our executable, prepended to every child's `PATH`, so a
/// model that types `apply_patch` reaches our implementation. Mode 0700, under
/// `CODEX_HOME/tmp/path/` (never the shared temp dir); removed on drop.
#[derive(Debug)]
pub struct AliasDir {
    path: PathBuf,
}

/// The names linked in the alias directory.
const ALIASES: &[&str] = &[
    "apply_patch",
    "applypatch",
    #[cfg(target_os = "linux")]
    crate::sandbox::linux::HELPER_ARG0,
];

impl AliasDir {
    /// Creates a fresh alias directory under `codex_home` (removing ones left behind by dead
    /// processes first).
    pub fn create(codex_home: &Path) -> Result<AliasDir> {
        let exe = std::env::current_exe().context("locating our own executable")?;
        let parent = codex_home.join("tmp").join("path");
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        remove_stale(&parent);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = parent.join(format!("{}-{nanos}", std::process::id()));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
        }
        let dir = AliasDir { path };
        for name in ALIASES {
            let link = dir.path.join(name);
            std::os::unix::fs::symlink(&exe, &link)
                .with_context(|| format!("creating {}", link.display()))?;
        }
        Ok(dir)
    }

    #[cfg(test)]
    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts the directory in front of `env["PATH"]` (or makes it the whole `PATH` when unset).
    pub fn prepend_to_path(&self, env: &mut HashMap<String, String>) {
        let dir = self.path.to_string_lossy().into_owned();
        let path = match env.get("PATH") {
            Some(old) if !old.is_empty() => format!("{dir}:{old}"),
            _ => dir,
        };
        env.insert("PATH".to_string(), path);
    }
}

impl Drop for AliasDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes alias directories (`<pid>-<nanos>`) whose process no longer exists.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name: OsString = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<libc::pid_t>().ok());
        let Some(pid) = pid.filter(|p| *p > 0) else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
