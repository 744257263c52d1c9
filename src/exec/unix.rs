//! Process control on Unix (Linux and macOS): the command leads its own process group, which a
//! kill signals as a whole; one thread waits by polling both pipes (and, on Linux, a pidfd of
//! the child) with the caller's deadline, so nothing is lost and no extra threads exist. The
//! leader is observed with `waitid(WNOWAIT)` and only reaped at the very end, so its pid (the
//! group id) cannot be reused while a kill handle may still signal it.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{OutputStream, TerminalSize};

/// Separates the entries of `PATH`.
pub(super) const PATH_LIST_SEPARATOR: &str = ":";
/// Environment variable names are case-sensitive here.
pub(super) const ENV_NAMES_IGNORE_CASE: bool = false;

/// SIGSYS, the signal of a seccomp kill.
pub(super) const BAD_SYSCALL_SIGNAL: Option<i32> = Some(libc::SIGSYS);

/// Without a pidfd (macOS, old kernels) the leader's exit is checked this often.
const LEADER_CHECK_INTERVAL: Duration = Duration::from_millis(50);

pub use super::pty::Terminal;

/// Makes the child lead a new process group (its pgid is its pid). On a terminal it already
/// leads a new session, hence a group (a group leader could not start a session).
pub(super) fn prepare(cmd: &mut Command, on_terminal: bool) {
    if !on_terminal {
        cmd.process_group(0);
    }
}

/// Keeps a helper child out of the terminal's signals (see
/// `exec::shield_from_terminal_signals`): it leads its own process group.
pub(super) fn own_process_group(cmd: &mut Command) {
    cmd.process_group(0);
}

/// Makes `cmd` run on a new pseudo-terminal of `size` (`pty.rs`).
pub(super) fn open_terminal(size: TerminalSize, cmd: &mut Command) -> std::io::Result<Terminal> {
    super::pty::open(size)?.attach(cmd)
}

/// A command's process group.
pub(super) struct Tree {
    pgid: libc::pid_t,
    /// Set (under the lock) right before the leader is reaped.
    reaped: Mutex<bool>,
    killed: AtomicBool,
}

impl Tree {
    /// The group `child` leads (it was spawned after [`prepare`]).
    pub(super) fn attach(child: &Child) -> Result<Tree> {
        Ok(Tree {
            pgid: libc::pid_t::try_from(child.id()).context("child pid out of range")?,
            reaped: Mutex::new(false),
            killed: AtomicBool::new(false),
        })
    }

    /// SIGKILLs the whole group unless the leader was reaped (its id may be reused then).
    pub(super) fn kill(&self) {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if !*reaped {
            self.killed.store(true, Ordering::SeqCst);
            // SAFETY: killpg with a positive pgid only sends a signal; the unreaped leader keeps
            // the id from being reused.
            unsafe { libc::killpg(self.pgid, libc::SIGKILL) };
        }
    }

    /// Asks the whole group to stop (SIGTERM) unless the leader was reaped; a process may ignore
    /// it, so callers follow up with [`Tree::kill`] after a grace.
    pub(super) fn terminate(&self) {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if !*reaped {
            // SAFETY: as in `kill`.
            unsafe { libc::killpg(self.pgid, libc::SIGTERM) };
        }
    }

    /// Whether [`Tree::kill`] ever signalled the group.
    pub(super) fn was_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Reaps the leader; from then on kills do nothing.
    pub(super) fn reap(&self, child: &mut Child) -> Result<ExitStatus> {
        let mut reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        *reaped = true;
        child.wait().context("reaping the command")
    }
}

/// The exit code and signal of a reaped command.
pub(super) fn exit_parts(status: ExitStatus, _killed: bool) -> (Option<i32>, Option<i32>) {
    (status.code(), status.signal())
}

/// The exit code, or 128 + the signal.
pub(super) fn status_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Ignores SIGINT and SIGQUIT in this process.
pub(super) fn ignore_terminal_interrupts() {
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
}

/// Creates `path` with mode 0700.
pub(super) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

/// Makes `link` run `exe` (a symlink).
pub(super) fn link_executable(exe: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(exe, link)
}

/// Whether a process with this pid exists (ours or not).
pub(super) fn is_process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Waits for output and for the leader's exit: both pipes and a pidfd in one `poll`.
pub(super) struct Watch {
    pipes: [Option<OwnedFd>; 2],
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    buf: Vec<u8>,
}

impl Watch {
    /// Watches `child`'s pipes and exit.
    pub(super) fn new(
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
        child: &Child,
    ) -> Result<Watch> {
        let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
        Ok(Watch {
            pipes: [stdout.map(OwnedFd::from), stderr.map(OwnedFd::from)],
            pid,
            pidfd: open_pidfd(pid),
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Whether stdout or stderr is still open.
    pub(super) fn has_open_pipes(&self) -> bool {
        self.pipes.iter().any(Option::is_some)
    }

    /// Whether the leader has exited (without reaping it).
    pub(super) fn leader_exited(&mut self, _child: &mut Child) -> Result<bool> {
        leader_exited(self.pid)
    }

    /// Blocks until output arrives (handed to `on_output`), a pipe closes, the leader exits or
    /// `wake` passes.
    pub(super) fn wait(
        &mut self,
        wake: Option<Instant>,
        leader_exited: bool,
        on_output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> Result<()> {
        let now = Instant::now();
        let mut wake = wake;
        if !leader_exited && self.pidfd.is_none() {
            let check = now + LEADER_CHECK_INTERVAL;
            wake = Some(wake.map_or(check, |w| w.min(check)));
        }
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
        for pipe in self.pipes.iter().flatten() {
            fds.push(pollfd(pipe.as_raw_fd()));
        }
        if !leader_exited && let Some(fd) = &self.pidfd {
            fds.push(pollfd(fd.as_raw_fd()));
        }
        poll(&mut fds, wake.map(|w| w.saturating_duration_since(now)))?;
        for (index, stream) in [OutputStream::Stdout, OutputStream::Stderr]
            .into_iter()
            .enumerate()
        {
            let Some(fd) = &self.pipes[index] else {
                continue;
            };
            let ready = fds.iter().any(|p| p.fd == fd.as_raw_fd() && p.revents != 0);
            if !ready {
                continue;
            }
            match read_some(fd, &mut self.buf) {
                Ok(0) => self.pipes[index] = None,
                Ok(n) => on_output(stream, &self.buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A terminal whose slave side every process closed: its end of output.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => self.pipes[index] = None,
                Err(e) => return Err(e).context("reading command output"),
            }
        }
        Ok(())
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
pub(super) fn leader_exited(pid: libc::pid_t) -> Result<bool> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "unix_tests.rs"]
mod tests;
