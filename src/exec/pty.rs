//! Pseudo-terminals (Unix only): opening a master/slave pair with a window size, making the slave
//! the controlling terminal of a child that leads a new session, reading and writing the master,
//! and resizing. Shared by unified exec (`exec_command` with `tty`) and `command/exec` with
//! `tty: true`; both run the command through `exec::spawn` with [`super::StdinMode::Terminal`],
//! so sandboxing, waiting and killing stay `exec`'s.
//!
//! The parent never keeps the slave: it lives only in the `Command`'s stdio (closed when the
//! `Command` is dropped right after spawning) and in the child. Once every process holding the
//! slave is gone, reads on the master fail with `EIO`, which the reader treats as end of output.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

pub use super::TerminalSize;

/// A freshly opened pair, before a child is attached.
pub struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

/// The master side of a terminal a child runs on: cheap to clone; reads give the child's output
/// (stdout and stderr, merged by the terminal), writes are typed input, and it can be resized.
#[derive(Clone)]
pub struct Terminal {
    master: Arc<OwnedFd>,
}

/// Opens a new pseudo-terminal of `size`; both ends are close-on-exec.
pub fn open(size: TerminalSize) -> io::Result<Pty> {
    let (master, slave) = sys::open_pair()?;
    set_size(master.as_raw_fd(), size)?;
    Ok(Pty { master, slave })
}

impl Pty {
    /// Makes `cmd` run on this terminal: stdin, stdout and stderr are the slave, and the child
    /// starts a new session (so it leads its own process group, like every command we run) with
    /// the slave as its controlling terminal. Do not also put `cmd` in a process group: a group
    /// leader cannot start a session. Drop `cmd` once spawned so the parent's copies of the
    /// slave close.
    pub fn attach(self, cmd: &mut Command) -> io::Result<Terminal> {
        let Pty { master, slave } = self;
        cmd.stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        // SAFETY: the closure runs in the forked child before exec and only calls setsid and
        // ioctl, which are async-signal-safe; it touches no memory shared with the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                // fd 0 is the slave by now (std sets up stdio before running this hook).
                #[allow(clippy::useless_conversion)]
                if libc::ioctl(0, libc::TIOCSCTTY.into(), 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(Terminal {
            master: Arc::new(master),
        })
    }
}

impl Terminal {
    /// A new handle reading the child's output (as [`ChildStdout`], so `exec`'s waiting loop
    /// reads it like a pipe).
    pub fn reader(&self) -> io::Result<ChildStdout> {
        Ok(ChildStdout::from(self.master.try_clone()?))
    }

    /// A new handle writing the child's input (as [`ChildStdin`]). Closing it does not end the
    /// child's input: a terminal has no end of file, only the EOF character ([`super::TERMINAL_EOF_CHAR`]).
    pub fn writer(&self) -> io::Result<ChildStdin> {
        Ok(ChildStdin::from(self.master.try_clone()?))
    }

    /// Changes the window size; the child's foreground process group gets `SIGWINCH`.
    pub fn resize(&self, size: TerminalSize) -> io::Result<()> {
        set_size(self.master.as_raw_fd(), size)
    }

    /// The current window size.
    #[cfg(test)]
    pub fn size(&self) -> io::Result<TerminalSize> {
        // SAFETY: an all-zero winsize is valid; TIOCGWINSZ fills it.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: the fd is open and `ws` is a valid, writable winsize.
        #[allow(clippy::useless_conversion)]
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCGWINSZ.into(), &mut ws) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TerminalSize {
            rows: ws.ws_row,
            cols: ws.ws_col,
        })
    }
}

fn set_size(fd: RawFd, size: TerminalSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the fd is open and `ws` is a valid winsize that TIOCSWINSZ only reads.
    #[allow(clippy::useless_conversion)]
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ.into(), &ws) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes ownership of a raw fd a successful libc call just returned.
fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(target_os = "linux")]
mod sys {
    use super::owned;
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};

    /// `posix_openpt`, `grantpt`, `unlockpt`, `ptsname_r`, then the slave by name: all in the C
    /// library itself (`openpty` needs libutil on older glibc).
    pub fn open_pair() -> io::Result<(OwnedFd, OwnedFd)> {
        // SAFETY: posix_openpt only opens a new master and returns its fd or -1.
        let master =
            owned(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
        let fd = master.as_raw_fd();
        // SAFETY: both take an open master fd and change only the slave's mode and lock.
        if unsafe { libc::grantpt(fd) } != 0 || unsafe { libc::unlockpt(fd) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: `name` is writable for its whole length, which is what we pass.
        let rc = unsafe { libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: ptsname_r wrote a NUL-terminated path into `name`.
        let slave = owned(unsafe {
            libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        })?;
        Ok((master, slave))
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use super::owned;
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};

    /// `openpty` (in the system library on macOS and the BSDs), then close-on-exec on both ends.
    pub fn open_pair() -> io::Result<(OwnedFd, OwnedFd)> {
        let (mut master, mut slave): (libc::c_int, libc::c_int) = (-1, -1);
        // SAFETY: both out-pointers are valid; name, termios and winsize may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let (master, slave) = (owned(master)?, owned(slave)?);
        for fd in [&master, &slave] {
            // SAFETY: F_SETFD on an fd we own only changes its close-on-exec flag.
            if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok((master, slave))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    /// Spawns `sh -c script` on a new terminal of `size`; returns the child and the terminal.
    fn spawn_on_terminal(script: &str, size: TerminalSize) -> (std::process::Child, Terminal) {
        let pty = open(size).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        let terminal = pty.attach(&mut cmd).unwrap();
        let child = cmd.spawn().unwrap();
        drop(cmd);
        (child, terminal)
    }

    /// Reads the master until `needle` shows up (or the slave closes, or 10 s pass).
    fn read_until(reader: &mut ChildStdout, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline && !String::from_utf8_lossy(&seen).contains(needle) {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                // The slave side closed: the terminal's end of output.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) => panic!("reading the terminal: {e}"),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    #[test]
    fn the_child_runs_on_its_own_controlling_terminal_in_a_new_session() {
        let (mut child, terminal) = spawn_on_terminal(
            "test -t 0 && test -t 1 && test -t 2 && echo all-tty; \
             ps -o sid= -p $$ | tr -d ' '; echo pid=$$; stty size; exit 3",
            TerminalSize {
                rows: 30,
                cols: 100,
            },
        );
        let mut reader = terminal.reader().unwrap();
        let text = read_until(&mut reader, "30 100");
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(text.contains("all-tty\r\n"), "{text:?}");
        let pid = child.id().to_string();
        assert!(text.contains(&format!("pid={pid}")), "{text:?}");
        // The session id is the child's own pid: it leads a new session.
        assert!(
            text.lines().any(|l| l.trim() == pid),
            "session id is not {pid}: {text:?}"
        );
    }

    #[test]
    fn input_is_echoed_and_read_and_resize_is_seen() {
        let (mut child, terminal) = spawn_on_terminal(
            "read line; echo got:$line; stty size; read again; stty size",
            TerminalSize::default(),
        );
        let mut reader = terminal.reader().unwrap();
        let mut writer = terminal.writer().unwrap();
        writer.write_all(b"hello\n").unwrap();
        let text = read_until(&mut reader, "24 80");
        assert!(text.contains("got:hello\r\n"), "{text:?}");
        terminal
            .resize(TerminalSize {
                rows: 50,
                cols: 132,
            })
            .unwrap();
        assert_eq!(
            terminal.size().unwrap(),
            TerminalSize {
                rows: 50,
                cols: 132
            }
        );
        writer.write_all(b"x\n").unwrap();
        let text = read_until(&mut reader, "50 132");
        assert!(text.contains("50 132"), "{text:?}");
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn the_eof_character_ends_input_and_the_master_reports_the_end() {
        let (mut child, terminal) =
            spawn_on_terminal("cat; echo cat-done", TerminalSize::default());
        let mut reader = terminal.reader().unwrap();
        let mut writer = terminal.writer().unwrap();
        writer.write_all(b"line\n").unwrap();
        writer.write_all(&[crate::exec::TERMINAL_EOF_CHAR]).unwrap();
        let text = read_until(&mut reader, "never printed");
        assert!(text.contains("cat-done"), "{text:?}");
        assert!(child.wait().unwrap().success());
    }

    /// Through `exec::spawn`, as unified exec and command/exec run it (the sandboxed case needs
    /// the real binary as the helper: integration tests).
    #[test]
    fn exec_runs_a_command_on_a_terminal() {
        use crate::exec::{ExecRequest, OutputStream, StdinMode};
        use crate::sandbox::SandboxPolicy;
        let cwd = std::env::temp_dir();
        let mut running = crate::exec::spawn(ExecRequest {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "test -t 0 && echo tty; stty size; read x; echo got:$x; echo err >&2".into(),
            ],
            sandbox_cwd: cwd.clone(),
            cwd,
            env: crate::exec::Env::from([(
                "PATH".into(),
                std::env::var_os("PATH").unwrap_or_default(),
            )]),
            timeout: Some(Duration::from_secs(20)),
            policy: SandboxPolicy::DangerFullAccess,
            output_cap_bytes: 1 << 16,
            stdin: StdinMode::Terminal(TerminalSize { rows: 7, cols: 33 }),
        })
        .unwrap();
        let mut stdin = Some(running.take_stdin().unwrap());
        let mut streams = Vec::new();
        let mut seen = Vec::new();
        let output = running
            .wait(&mut |stream, bytes| {
                streams.push(stream);
                seen.extend_from_slice(bytes);
                // Typed once the size is out, so the echo cannot land in between.
                if String::from_utf8_lossy(&seen).contains("7 33\r\n")
                    && let Some(mut stdin) = stdin.take()
                {
                    stdin.write_all(b"typed\n").unwrap();
                }
            })
            .unwrap();
        let text = String::from_utf8_lossy(&output.aggregated);
        assert_eq!(output.exit_code, Some(0), "{text}");
        assert!(text.contains("tty\r\n7 33\r\n"), "{text:?}");
        assert!(text.contains("got:typed\r\nerr\r\n"), "{text:?}");
        assert!(streams.iter().all(|s| *s == OutputStream::Stdout));
    }
}
