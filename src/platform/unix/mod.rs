//! Operating-system facilities on Unix (Linux, macOS): `uname`, owner-only files that never
//! follow a symlink, non-blocking `connect` (returned at once, or polled against an abort
//! flag), `poll(2)` over sockets, a wake-up socket pair, and inherited descriptors made
//! close-on-exec.
//!
//! This file holds memory, random bytes, the OS release, files and the wake-up pair;
//! `signals.rs` the termination signals and the stdout probe; `descriptors.rs` inherited
//! descriptors; `net.rs` the TCP connects.

mod descriptors;
mod net;
mod signals;

#[cfg(test)]
pub(super) use descriptors::cloexec_each_descriptor;
pub(super) use descriptors::keep_inherited_descriptors_from_children;
pub(super) use net::{connect_abortable, connect_nonblocking};
pub(super) use signals::{
    catch_termination_signals, is_stdout_closed, reset_inherited_signals, wait_termination_signal,
};

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// `mallopt(M_ARENA_MAX)` where the C library is glibc; other C libraries have no arenas.
pub(super) fn limit_malloc_arenas(max: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc parameter; it is called before other threads run.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, max);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = max;
}

/// `malloc_trim(0)` where the C library is glibc.
pub(super) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the system; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}
/// `shutdown(2)` on a socket wakes a thread blocked reading it.
pub(super) const SHUTDOWN_WAKES_BLOCKED_READS: bool = true;

/// Fills `buf` from `getrandom(2)` on Linux, else (or when that fails) `/dev/urandom`.
pub(super) fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &mut buf[filled..];
            // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            match usize::try_from(n) {
                Ok(n) if n > 0 => filled += n,
                _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
        if filled == buf.len() {
            return Ok(());
        }
    }
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf))
}

/// The kernel's name and release (`Linux`, `6.8.0`), from `uname`.
pub(super) fn os_name_and_release() -> Option<(String, String)> {
    // SAFETY: `uname` fills a zeroed, caller-owned struct; its fields are NUL-terminated.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let field = |chars: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = chars
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some((field(&uts.sysname), field(&uts.release)))
}

/// Creates `path`, which must not exist, for writing: mode 0600, never through a symlink
/// (`O_CREAT | O_EXCL | O_NOFOLLOW`), close-on-exec.
pub(super) fn create_private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// `rename(2)`, atomic.
pub(super) fn replace_file(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

/// Makes a rename inside `dir` durable (fsync of the directory).
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The two ends of a wake-up channel that `poll` can wait on: a Unix socket pair.
pub(super) type WakeSocket = UnixStream;

/// A connected, non-blocking pair.
pub(super) fn wake_sockets() -> io::Result<(WakeSocket, WakeSocket)> {
    let (tx, rx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    Ok((tx, rx))
}

/// The descriptor of a socket.
pub(super) fn raw_socket_of(socket: &impl AsRawFd) -> super::RawSocket {
    socket.as_raw_fd()
}

/// `poll(2)` over `entries`; `millis` -1 waits without limit.
pub(super) fn poll_sockets(entries: &mut [super::PollEntry], millis: i32) -> io::Result<usize> {
    let mut fds: Vec<libc::pollfd> = entries
        .iter()
        .map(|entry| libc::pollfd {
            fd: entry.socket,
            events: if entry.read { libc::POLLIN } else { 0 }
                | if entry.write { libc::POLLOUT } else { 0 },
            revents: 0,
        })
        .collect();
    let count = libc::nfds_t::try_from(fds.len()).map_err(io::Error::other)?;
    // SAFETY: `fds` is a valid array of `count` pollfd for the duration of the call.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), count, millis) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return match err.kind() {
            io::ErrorKind::Interrupted => Ok(0),
            _ => Err(err),
        };
    }
    let mut ready = 0;
    for (entry, fd) in entries.iter_mut().zip(&fds) {
        let failed = fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
        entry.readable = failed || fd.revents & libc::POLLIN != 0;
        entry.writable = failed || fd.revents & libc::POLLOUT != 0;
        ready += usize::from(entry.readable || entry.writable);
    }
    Ok(ready)
}
