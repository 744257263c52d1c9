//! Operating-system facilities on Windows: the version from `RtlGetVersion`, new files that do
//! not follow reparse points, a connect on a helper thread the caller stops waiting for, a
//! non-blocking connect, `WSAPoll` over sockets, and a loopback TCP pair as the wake-up
//! channel.
//!
//! The few system functions used are declared here (see the README's dependency table).

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::windows::io::AsRawSocket;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, bounded};

/// `FILE_FLAG_OPEN_REPARSE_POINT`: open a symlink or junction itself, never its target.
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
const POLLRDNORM: i16 = 0x0100;
const POLLRDBAND: i16 = 0x0200;
const POLLWRNORM: i16 = 0x0010;
const POLLERR: i16 = 0x0001;
const POLLHUP: i16 = 0x0002;
const POLLNVAL: i16 = 0x0004;
/// Connections to the wake-up listener that are not our own are refused this many times.
const WAKE_ACCEPT_ATTEMPTS: usize = 8;

/// `OSVERSIONINFOW`.
#[repr(C)]
struct OsVersionInfo {
    size: u32,
    major: u32,
    minor: u32,
    build: u32,
    platform_id: u32,
    service_pack: [u16; 128],
}

/// `SOCKADDR_IN`: family, port and address in network order.
#[repr(C)]
struct SockAddrIn {
    family: u16,
    port: u16,
    addr: [u8; 4],
    zero: [u8; 8],
}

/// `SOCKADDR_IN6`.
#[repr(C)]
struct SockAddrIn6 {
    family: u16,
    port: u16,
    flowinfo: u32,
    addr: [u8; 16],
    scope_id: u32,
}

/// `WSAPOLLFD`.
#[repr(C)]
struct WsaPollFd {
    fd: usize,
    events: i16,
    revents: i16,
}

#[link(name = "kernel32")]
unsafe extern "system" {
    fn SetConsoleCtrlHandler(
        handler: Option<unsafe extern "system" fn(u32) -> i32>,
        add: i32,
    ) -> i32;
}

#[link(name = "ntdll")]
unsafe extern "system" {
    /// The true version (unlike `GetVersionEx`, not shimmed by the application manifest).
    fn RtlGetVersion(info: *mut OsVersionInfo) -> i32;
}

#[link(name = "bcrypt")]
unsafe extern "system" {
    fn BCryptGenRandom(algorithm: *mut c_void, buf: *mut u8, len: u32, flags: u32) -> i32;
}

#[link(name = "ws2_32")]
unsafe extern "system" {
    fn WSAPoll(fds: *mut WsaPollFd, count: u32, timeout_ms: i32) -> i32;
    fn WSAStartup(version: u16, data: *mut c_void) -> i32;
    fn WSASocketW(
        family: i32,
        kind: i32,
        protocol: i32,
        info: *mut c_void,
        group: u32,
        flags: u32,
    ) -> usize;
    fn connect(socket: usize, name: *const c_void, len: i32) -> i32;
    fn WSAGetLastError() -> i32;
}

/// Fills `buf` from the system-preferred RNG (`BCryptGenRandom`).
pub(super) fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    const BCRYPT_USE_SYSTEM_PREFERRED_RNG: u32 = 0x0000_0002;
    for chunk in buf.chunks_mut(1 << 20) {
        let len = u32::try_from(chunk.len()).map_err(io::Error::other)?;
        // SAFETY: `chunk` is writable for `len` bytes; no algorithm handle with this flag.
        let status = unsafe {
            BCryptGenRandom(
                std::ptr::null_mut(),
                chunk.as_mut_ptr(),
                len,
                BCRYPT_USE_SYSTEM_PREFERRED_RNG,
            )
        };
        if status < 0 {
            return Err(io::Error::other(format!(
                "BCryptGenRandom failed (NTSTATUS {status:#x})"
            )));
        }
    }
    Ok(())
}

/// The console event caught by [`catch_termination_signals`] + 1 (0: none yet).
static CAUGHT_CONSOLE_EVENT: AtomicU32 = AtomicU32::new(0);

/// Nothing is inherited that could break us.
pub(super) fn reset_inherited_signals() {}

/// Runs on the console's own thread for Ctrl-C, Ctrl-Break and console close: records the
/// event and says it was handled (no default termination).
unsafe extern "system" fn on_console_event(event: u32) -> i32 {
    CAUGHT_CONSOLE_EVENT.store(event.saturating_add(1), Ordering::SeqCst);
    1
}

/// Installs [`on_console_event`].
pub(super) fn catch_termination_signals() -> io::Result<()> {
    // SAFETY: registers a handler with the right signature; it only stores an atomic.
    if unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Looks for a caught console event every few milliseconds until `timeout`.
pub(super) fn wait_termination_signal(timeout: Duration) -> Option<i32> {
    const POLL: Duration = Duration::from_millis(100);
    let deadline = Instant::now() + timeout;
    loop {
        let event = CAUGHT_CONSOLE_EVENT.swap(0, Ordering::SeqCst);
        if event > 0 {
            return i32::try_from(event - 1).ok().map(|e| e + 100);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// Windows cannot tell without writing.
pub(super) fn is_stdout_closed() -> bool {
    false
}

/// The Windows heap has no per-thread arenas to bound.
pub(super) fn limit_malloc_arenas(_max: i32) {}

/// Nothing: the Windows heap has no trim call worth making here.
pub(super) fn release_free_memory() {}

/// No documented call lists a process's handles (see the portable function's note).
pub(super) fn keep_inherited_descriptors_from_children() {}

/// Winsock's `shutdown` does not wake a thread blocked in `recv` on the socket.
pub(super) const SHUTDOWN_WAKES_BLOCKED_READS: bool = false;

/// `Windows` and `major.minor.build`.
pub(super) fn os_name_and_release() -> Option<(String, String)> {
    let mut info = OsVersionInfo {
        size: u32::try_from(std::mem::size_of::<OsVersionInfo>()).ok()?,
        major: 0,
        minor: 0,
        build: 0,
        platform_id: 0,
        service_pack: [0; 128],
    };
    // SAFETY: `info` is a valid OSVERSIONINFOW with its size filled in, as the call requires.
    if unsafe { RtlGetVersion(&mut info) } != 0 {
        return None;
    }
    Some((
        "Windows".to_string(),
        format!("{}.{}.{}", info.major, info.minor, info.build),
    ))
}

/// Creates `path`, which must not exist, for writing; a reparse point there is not followed.
pub(super) fn create_private_file(path: &Path) -> io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
}

/// `MoveFileExW(REPLACE_EXISTING)` (what `std::fs::rename` does), retried for up to about a
/// second while it is denied: another replace or an open reader of `to` holds it briefly.
pub(super) fn replace_file(from: &Path, to: &Path) -> io::Result<()> {
    const ATTEMPTS: u32 = 50;
    let mut attempt = 0;
    loop {
        match std::fs::rename(from, to) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && attempt < ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Nothing to do: NTFS journals renames.
pub(super) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Connects on a helper thread (std's `connect_timeout`) and waits for it in `slice`s against
/// `aborted`; an abandoned attempt ends on its own by the deadline and its socket is dropped.
pub(super) fn connect_abortable(
    addr: &SocketAddr,
    deadline: Option<Instant>,
    aborted: &AtomicBool,
    slice: Duration,
) -> io::Result<TcpStream> {
    let timeout = match deadline {
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
            }
            Some(left)
        }
        None => None,
    };
    let (tx, rx) = bounded(1);
    let addr = *addr;
    std::thread::Builder::new()
        .name("net-connect".into())
        .spawn(move || {
            let result = match timeout {
                Some(t) => TcpStream::connect_timeout(&addr, t),
                None => TcpStream::connect(addr),
            };
            let _ = tx.send(result);
        })?;
    loop {
        if aborted.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "connect aborted",
            ));
        }
        match rx.recv_timeout(slice) {
            Ok(result) => return result,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(io::Error::other(
                    "the connect thread ended without a result",
                ));
            }
        }
    }
}

/// The two ends of a wake-up channel WSAPoll can wait on: a loopback TCP pair (std offers no
/// socket pair on Windows).
pub(super) type WakeSocket = TcpStream;

/// A connected, non-blocking loopback pair; a stranger racing to connect to the short-lived
/// listener is refused (the accepted peer must be our own connecting socket).
pub(super) fn wake_sockets() -> io::Result<(WakeSocket, WakeSocket)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let tx = TcpStream::connect(listener.local_addr()?)?;
    let ours = tx.local_addr()?;
    for _ in 0..WAKE_ACCEPT_ATTEMPTS {
        let (rx, peer) = listener.accept()?;
        if peer == ours {
            tx.set_nodelay(true)?;
            tx.set_nonblocking(true)?;
            rx.set_nonblocking(true)?;
            return Ok((tx, rx));
        }
    }
    Err(io::Error::other(
        "the wake-up socket's peer could not be confirmed",
    ))
}

/// The `SOCKET` of a socket.
pub(super) fn raw_socket_of(socket: &impl AsRawSocket) -> super::RawSocket {
    socket.as_raw_socket()
}

/// `WSAPoll` over `entries`; `millis` -1 waits without limit. WSAPoll refuses an empty set,
/// so an empty wait is a sleep.
pub(super) fn poll_sockets(entries: &mut [super::PollEntry], millis: i32) -> io::Result<usize> {
    if entries.is_empty() {
        if millis >= 0 {
            std::thread::sleep(Duration::from_millis(millis.unsigned_abs().into()));
            return Ok(0);
        }
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "waiting forever on no socket",
        ));
    }
    let mut fds: Vec<WsaPollFd> = entries
        .iter()
        .map(|entry| WsaPollFd {
            fd: usize::try_from(entry.socket).unwrap_or(usize::MAX),
            events: if entry.read { POLLRDNORM } else { 0 }
                | if entry.write { POLLWRNORM } else { 0 },
            revents: 0,
        })
        .collect();
    let count = u32::try_from(fds.len()).map_err(io::Error::other)?;
    // SAFETY: `fds` is a valid array of `count` WSAPOLLFD for the duration of the call; std
    // initialized Winsock when it created these sockets.
    let rc = unsafe { WSAPoll(fds.as_mut_ptr(), count, millis) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ready = 0;
    for (entry, fd) in entries.iter_mut().zip(&fds) {
        let failed = fd.revents & (POLLERR | POLLHUP | POLLNVAL) != 0;
        entry.readable = failed || fd.revents & (POLLRDNORM | POLLRDBAND) != 0;
        entry.writable = failed || fd.revents & POLLWRNORM != 0;
        ready += usize::from(entry.readable || entry.writable);
    }
    Ok(ready)
}

/// A new overlapped, non-inheritable TCP socket (as std makes them) in non-blocking mode,
/// whose `connect` is started: done, or in progress (`WSAEWOULDBLOCK`).
pub(super) fn connect_nonblocking(addr: &SocketAddr) -> io::Result<TcpStream> {
    const AF_INET: i32 = 2;
    const AF_INET6: i32 = 23;
    const SOCK_STREAM: i32 = 1;
    const IPPROTO_TCP: i32 = 6;
    const WSA_FLAG_OVERLAPPED: u32 = 0x01;
    const WSA_FLAG_NO_HANDLE_INHERIT: u32 = 0x80;
    const INVALID_SOCKET: usize = usize::MAX;
    const WSAEWOULDBLOCK: i32 = 10035;
    static STARTUP: std::sync::Once = std::sync::Once::new();
    STARTUP.call_once(|| {
        // Winsock counts startups; std's own may not have happened yet in this process.
        let mut data = [0u64; 64];
        // SAFETY: `data` is larger than WSADATA (408 bytes on 64-bit) and suitably aligned.
        unsafe { WSAStartup(0x0202, data.as_mut_ptr().cast()) };
    });
    let family = if addr.is_ipv4() { AF_INET } else { AF_INET6 };
    let flags = WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT;
    // SAFETY: plain WSASocketW without protocol info; the result is checked before use.
    let raw = unsafe {
        WSASocketW(
            family,
            SOCK_STREAM,
            IPPROTO_TCP,
            std::ptr::null_mut(),
            0,
            flags,
        )
    };
    if raw == INVALID_SOCKET {
        // SAFETY: reads the calling thread's last Winsock error.
        return Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }));
    }
    // SAFETY: `raw` is a fresh socket nobody else owns; the stream closes it when dropped.
    let stream =
        unsafe { <TcpStream as std::os::windows::io::FromRawSocket>::from_raw_socket(raw as u64) };
    stream.set_nonblocking(true)?;
    let (v4, v6);
    let (name, len): (*const c_void, usize) = match addr {
        SocketAddr::V4(a) => {
            v4 = SockAddrIn {
                family: AF_INET as u16,
                port: a.port().to_be(),
                addr: a.ip().octets(),
                zero: [0; 8],
            };
            (
                (&v4 as *const SockAddrIn).cast(),
                std::mem::size_of::<SockAddrIn>(),
            )
        }
        SocketAddr::V6(a) => {
            v6 = SockAddrIn6 {
                family: AF_INET6 as u16,
                port: a.port().to_be(),
                flowinfo: a.flowinfo(),
                addr: a.ip().octets(),
                scope_id: a.scope_id(),
            };
            (
                (&v6 as *const SockAddrIn6).cast(),
                std::mem::size_of::<SockAddrIn6>(),
            )
        }
    };
    let len = i32::try_from(len).map_err(io::Error::other)?;
    // SAFETY: the socket is open; `name`/`len` describe a live SOCKADDR_IN(6).
    if unsafe { connect(raw, name, len) } != 0 {
        // SAFETY: reads the calling thread's last Winsock error.
        let code = unsafe { WSAGetLastError() };
        if code != WSAEWOULDBLOCK {
            return Err(io::Error::from_raw_os_error(code));
        }
    }
    Ok(stream)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn structure_layouts_match_the_windows_headers() {
        // OSVERSIONINFOW: five DWORDs and WCHAR[128].
        assert_eq!(std::mem::size_of::<OsVersionInfo>(), 276);
        // WSAPOLLFD: a SOCKET and two SHORTs, padded.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<WsaPollFd>(), 16);
        assert_eq!(std::mem::size_of::<SockAddrIn>(), 16);
        assert_eq!(std::mem::size_of::<SockAddrIn6>(), 28);
    }

    #[test]
    fn the_version_is_reported() {
        let (name, release) = os_name_and_release().unwrap();
        assert_eq!(name, "Windows");
        assert!(release.split('.').count() == 3, "{release}");
    }

    #[test]
    fn a_slow_connect_is_abandoned_when_aborted() {
        // TEST-NET-1 never answers: only the abort flag can end the wait early.
        let addr: SocketAddr = "192.0.2.1:9".parse().unwrap();
        let aborted = AtomicBool::new(true);
        let started = Instant::now();
        let result = connect_abortable(
            &addr,
            Some(Instant::now() + Duration::from_secs(20)),
            &aborted,
            Duration::from_millis(10),
        );
        assert!(result.is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
