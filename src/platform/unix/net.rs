//! The TCP connects on Unix, both on a non-blocking, close-on-exec socket: one returned at
//! once (its `connect(2)` in progress), one polled in slices against an abort flag and a
//! deadline.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A non-blocking `connect(2)` polled in `slice`s against `aborted` and `deadline`.
pub(in crate::platform) fn connect_abortable(
    addr: &SocketAddr,
    deadline: Option<Instant>,
    aborted: &AtomicBool,
    slice: Duration,
) -> io::Result<TcpStream> {
    let (socket, in_progress) = start_connect(addr)?;
    let fd = socket.as_raw_fd();
    if in_progress {
        loop {
            if aborted.load(Ordering::SeqCst) {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "connect aborted",
                ));
            }
            let mut slice = slice;
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
                }
                slice = slice.min(left);
            }
            let mut pollfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd; the timeout is at most one slice in milliseconds.
            let ready = unsafe { libc::poll(&mut pollfd, 1, slice.as_millis().max(1) as i32) };
            if ready < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if ready > 0 {
                break;
            }
        }
        let mut so_error: libc::c_int = 0;
        let mut so_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: SO_ERROR writes one c_int into `so_error`, whose size is in `so_len`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut so_error as *mut libc::c_int).cast(),
                &mut so_len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if so_error != 0 {
            return Err(io::Error::from_raw_os_error(so_error));
        }
    }
    let stream = TcpStream::from(socket);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// A `connect(2)` on a new non-blocking socket, returned at once: connected, or in progress.
pub(in crate::platform) fn connect_nonblocking(addr: &SocketAddr) -> io::Result<TcpStream> {
    Ok(TcpStream::from(start_connect(addr)?.0))
}

/// Starts connecting a new non-blocking socket to `addr`; whether the connect is in progress
/// (`EINPROGRESS`) rather than done.
fn start_connect(addr: &SocketAddr) -> io::Result<(OwnedFd, bool)> {
    let socket = new_nonblocking_socket(addr)?;
    let raw = RawSockAddr::new(addr);
    let (ptr, len) = raw.as_ptr_len();
    // SAFETY: `socket` is an open socket we own; `ptr`/`len` describe a live sockaddr.
    if unsafe { libc::connect(socket.as_raw_fd(), ptr, len) } == 0 {
        return Ok((socket, false));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINPROGRESS) => Ok((socket, true)),
        _ => Err(err),
    }
}

/// A non-blocking, close-on-exec TCP socket for `addr`'s family. Close-on-exec is set
/// atomically where the OS allows it: commands are spawned concurrently and must not inherit
/// our sockets.
fn new_nonblocking_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe { libc::socket(domain, kind, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: fcntl on our own open descriptor.
        unsafe {
            if libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) != 0 {
                return Err(io::Error::last_os_error());
            }
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        #[cfg(target_vendor = "apple")]
        {
            let one: libc::c_int = 1;
            // SAFETY: SO_NOSIGPIPE takes one c_int, as std sets it on its own sockets.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_NOSIGPIPE,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok(owned)
    }
}

/// A `SocketAddr` as the C structure `connect(2)` takes.
enum RawSockAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawSockAddr {
    fn new(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: all-zero is a valid sockaddr_in; the fields are set below.
                let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr = libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                };
                #[cfg(any(
                    target_vendor = "apple",
                    target_os = "freebsd",
                    target_os = "openbsd",
                    target_os = "netbsd",
                    target_os = "dragonfly"
                ))]
                {
                    sin.sin_len = std::mem::size_of::<libc::sockaddr_in>() as u8;
                }
                RawSockAddr::V4(sin)
            }
            SocketAddr::V6(a) => {
                // SAFETY: all-zero is a valid sockaddr_in6; the fields are set below.
                let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_scope_id = a.scope_id();
                #[cfg(any(
                    target_vendor = "apple",
                    target_os = "freebsd",
                    target_os = "openbsd",
                    target_os = "netbsd",
                    target_os = "dragonfly"
                ))]
                {
                    sin6.sin6_len = std::mem::size_of::<libc::sockaddr_in6>() as u8;
                }
                RawSockAddr::V6(sin6)
            }
        }
    }

    fn as_ptr_len(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            RawSockAddr::V4(sin) => (
                (sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            RawSockAddr::V6(sin6) => (
                (sin6 as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }
}
