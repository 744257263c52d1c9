//! The operating-system seam of the stdio transport: process groups and signals, and writes
//! to the server's stdin that give up at a deadline (non-blocking stdin on Unix; elsewhere
//! writes block).

#[cfg(not(unix))]
pub use other::*;
#[cfg(unix)]
pub use unix::*;

#[cfg(unix)]
mod unix {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Child, ChildStdin, Command};
    use std::time::Instant;

    /// The child leads a new process group, so signals reach what it spawns too.
    pub fn own_group(cmd: &mut Command) {
        cmd.process_group(0);
    }

    /// The signal that ended the process, if one did.
    pub fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
        status.signal()
    }

    /// Signals the child's process group (SIGKILL or SIGTERM). The caller guarantees the
    /// child is not reaped yet, so its pid (the group id) cannot have been reused.
    pub fn signal_group(child: &Child, kill: bool) {
        let Ok(pgid) = libc::pid_t::try_from(child.id()) else {
            return;
        };
        let signal = if kill { libc::SIGKILL } else { libc::SIGTERM };
        // SAFETY: killpg only sends a signal to the group we created.
        unsafe { libc::killpg(pgid, signal) };
    }

    /// Makes writes to the server's stdin return instead of waiting for room.
    pub fn set_nonblocking(stdin: &ChildStdin) -> std::io::Result<()> {
        let fd = stdin.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own, with standard flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Writes everything, waiting for room until `deadline` (`TimedOut` past it).
    pub fn write_all(
        pipe: &mut ChildStdin,
        mut bytes: &[u8],
        deadline: Instant,
    ) -> std::io::Result<()> {
        while !bytes.is_empty() {
            match pipe.write(bytes) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(std::io::ErrorKind::TimedOut.into());
                    }
                    let mut fds = [libc::pollfd {
                        fd: pipe.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    let millis = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(fds.as_mut_ptr(), 1, millis) };
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(not(unix))]
mod other {
    use std::io::Write;
    use std::process::{Child, ChildStdin, Command};
    use std::time::Instant;

    /// No process groups here.
    pub fn own_group(_cmd: &mut Command) {}

    /// No signals here.
    pub fn signal_of(_status: &std::process::ExitStatus) -> Option<i32> {
        None
    }

    /// Ends the server and its process tree (`taskkill /T /F`).
    pub fn signal_group(child: &Child, _kill: bool) {
        let pid = child.id();
        let _ = std::process::Command::new("taskkill")
            .args(["/T", "/F", "/PID", &pid.to_string()])
            .status();
    }

    /// Not available: writes may block.
    pub fn set_nonblocking(_stdin: &ChildStdin) -> std::io::Result<()> {
        Err(std::io::Error::other("not supported on this platform"))
    }

    /// Writes everything (blocking: there is no deadline here).
    pub fn write_all(
        pipe: &mut ChildStdin,
        bytes: &[u8],
        _deadline: Instant,
    ) -> std::io::Result<()> {
        pipe.write_all(bytes)
    }
}
