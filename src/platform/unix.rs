//! Operating-system facilities on Unix (Linux, macOS): `uname`, owner-only files that never
//! follow a symlink, non-blocking `connect` polled against an abort flag, a wake-up socket
//! pair polled together with a listener, and inherited descriptors made close-on-exec.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The signals that ask us to stop.
const TERMINATION_SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGHUP, libc::SIGINT];

/// SIGCHLD back to its default when ignored, and an empty signal mask.
pub(super) fn reset_inherited_signals() {
    // SAFETY: querying and setting dispositions and the mask with valid, zeroed structures;
    // called before any other thread exists.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
        {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut default.sa_mask);
            libc::sigaction(libc::SIGCHLD, &default, std::ptr::null_mut());
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

fn termination_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid storage for sigemptyset/sigaddset to fill.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in TERMINATION_SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Blocks the termination signals in this thread (and the threads it starts later), so they
/// stay pending until [`wait_termination_signal`] takes them.
pub(super) fn catch_termination_signals() -> io::Result<()> {
    let set = termination_set();
    // SAFETY: `set` is a valid, initialized signal set.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Takes a pending termination signal, waiting up to `timeout` (`sigtimedwait` on Linux).
#[cfg(target_os = "linux")]
pub(super) fn wait_termination_signal(timeout: Duration) -> Option<i32> {
    let set = termination_set();
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos()),
    };
    // SAFETY: valid set and timespec; a null siginfo is allowed.
    let signal = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    (signal > 0).then_some(signal)
}

/// Takes a pending termination signal, waiting up to `timeout` (macOS has no `sigtimedwait`:
/// `sigpending` is looked at every few milliseconds, then `sigwait` takes the pending one).
#[cfg(not(target_os = "linux"))]
pub(super) fn wait_termination_signal(timeout: Duration) -> Option<i32> {
    const POLL: Duration = Duration::from_millis(100);
    let set = termination_set();
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: a zeroed set is valid storage for sigpending to fill.
        let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `pending` is valid for writes.
        unsafe { libc::sigpending(&mut pending) };
        // SAFETY: `pending` was filled above.
        let any = TERMINATION_SIGNALS
            .iter()
            .any(|s| unsafe { libc::sigismember(&pending, *s) } == 1);
        if any {
            let mut signal: libc::c_int = 0;
            // SAFETY: one of the blocked signals is pending, so sigwait returns at once.
            let rc = unsafe { libc::sigwait(&set, &mut signal) };
            return (rc == 0).then_some(signal);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// Whether fd 1 reports an error or hang-up (`poll` with no events asked for returns them
/// anyway): a pipe without a reader, a closed socket.
pub(super) fn is_stdout_closed() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd; zero timeout.
    let rc = unsafe { libc::poll(&mut fd, 1, 0) };
    rc > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
}

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

/// Where the kernel lists this process's open descriptors.
#[cfg(target_os = "linux")]
const FD_DIR: &str = "/proc/self/fd";
/// Where the kernel lists this process's open descriptors.
#[cfg(not(target_os = "linux"))]
const FD_DIR: &str = "/dev/fd";

/// Highest descriptor the last-resort walk looks at when the descriptor directory cannot be
/// read and the open-files limit is unlimited.
const MAX_WALKED_FD: libc::c_int = 65_536;

/// Every descriptor above 2 close-on-exec: one `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)` on
/// Linux 5.11 and later; else each descriptor [`FD_DIR`] lists, or failing that every number
/// up to the open-files limit.
pub(super) fn keep_inherited_descriptors_from_children() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: close_range with the CLOEXEC flag only sets a flag on open descriptors.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if rc == 0 {
            return;
        }
    }
    cloexec_each_descriptor();
}

/// Sets close-on-exec on each descriptor above 2, one `fcntl` at a time.
pub(super) fn cloexec_each_descriptor() {
    match listed_descriptors() {
        Some(fds) => fds.into_iter().for_each(set_cloexec),
        None => (3..open_files_limit()).for_each(set_cloexec),
    }
}

/// The descriptors above 2 that [`FD_DIR`] lists (the listing's own one included, which is
/// closed by the time the caller uses the list); `None` when it cannot be read.
fn listed_descriptors() -> Option<Vec<libc::c_int>> {
    let entries = std::fs::read_dir(FD_DIR).ok()?;
    Some(
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2)
            .collect(),
    )
}

/// The soft open-files limit, at most [`MAX_WALKED_FD`].
fn open_files_limit() -> libc::c_int {
    // SAFETY: a zeroed rlimit is valid storage for getrlimit to fill.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `limit` is valid for writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return MAX_WALKED_FD;
    }
    libc::c_int::try_from(limit.rlim_cur)
        .unwrap_or(MAX_WALKED_FD)
        .min(MAX_WALKED_FD)
}

/// Adds close-on-exec to `fd` if it is open and lacks it.
fn set_cloexec(fd: libc::c_int) {
    // SAFETY: fcntl on a number that may not be open: it then fails with EBADF, checked.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
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

/// Waits until `listener` or `wake` is readable, or `timeout` passes.
pub(super) fn wait_readable(
    listener: &TcpListener,
    wake: &WakeSocket,
    timeout: Duration,
) -> io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // Round up so a loop never wakes a hair before its limit and polls again with 0.
    let millis = i32::try_from(timeout.as_nanos().div_ceil(1_000_000).max(1)).unwrap_or(i32::MAX);
    // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, millis) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return match err.kind() {
            io::ErrorKind::Interrupted => Ok((false, false)),
            _ => Err(err),
        };
    }
    let ready =
        |fd: &libc::pollfd| fd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
    Ok((ready(&fds[0]), ready(&fds[1])))
}

/// Writes one wake-up byte (a full socket already holds one).
pub(super) fn wake(socket: &WakeSocket) {
    let _ = (&*socket).write(&[1]);
}

/// Reads every pending wake-up byte.
pub(super) fn drain(socket: &WakeSocket) {
    let mut buf = [0u8; 64];
    while matches!((&*socket).read(&mut buf), Ok(n) if n > 0) {}
}

/// A non-blocking `connect(2)` polled in `slice`s against `aborted` and `deadline`.
pub(super) fn connect_abortable(
    addr: &SocketAddr,
    deadline: Option<Instant>,
    aborted: &AtomicBool,
    slice: Duration,
) -> io::Result<TcpStream> {
    let socket = new_nonblocking_socket(addr)?;
    let fd = socket.as_raw_fd();
    let raw = RawSockAddr::new(addr);
    let (ptr, len) = raw.as_ptr_len();
    // SAFETY: `fd` is an open socket we own; `ptr`/`len` describe a live sockaddr.
    let rc = unsafe { libc::connect(fd, ptr, len) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err);
        }
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
