//! Operating-system facilities other than running commands (that is `crate::exec`): random
//! bytes, the OS name and release for the user agent, owner-only files created without
//! following symlinks, a TCP connect that an abort flag stops at once or that never blocks, a
//! portable poll of sockets, a wake-up channel a thread can wait on together with its sockets,
//! and inherited descriptors kept from our children. The portable API is here; `unix/` and `windows.rs` implement it, so no other
//! module needs a `cfg` for these.

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(unix)]
use unix as sys;
#[cfg(windows)]
use windows as sys;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Whether shutting a socket down wakes another thread blocked reading it (Unix). Where it
/// does not (Windows), abortable readers must read in slices and look at their abort flag.
pub const SHUTDOWN_WAKES_BLOCKED_READS: bool = sys::SHUTDOWN_WAKES_BLOCKED_READS;

/// Most malloc arenas the app-server lets glibc make (see [`limit_malloc_arenas`]).
pub const MALLOC_ARENAS: i32 = 2;

/// Bounds the C allocator's per-thread arenas (glibc on Linux; elsewhere nothing). glibc gives
/// each thread that allocates an arena of its own, up to 8 per core, and an arena keeps its
/// thread's peak and freed memory: with our many mostly-waiting threads (one per MCP server,
/// per turn, per stream) that is tens of KiB per thread that nothing else can reuse. Two
/// arenas still let two threads allocate at once. Called once, before any thread exists.
pub fn limit_malloc_arenas() {
    sys::limit_malloc_arenas(MALLOC_ARENAS);
}

/// Gives the C allocator's free memory back to the system (glibc's `malloc_trim`; elsewhere
/// nothing). glibc returns only the free memory at the top of an arena on its own; what was
/// freed in the middle (a burst of work's garbage between the data that stays) stays resident.
/// For the end of such a burst, not for a hot path: it walks every arena.
pub fn release_free_memory() {
    sys::release_free_memory();
}

/// The operating system's name and release for user agents (`Linux` `6.8.0`, `Darwin` `24.1.0`,
/// `Windows` `10.0.22631`); `std::env::consts::OS` and `unknown` when the system will not say.
pub fn os_name_and_release() -> (String, String) {
    sys::os_name_and_release()
        .unwrap_or_else(|| (std::env::consts::OS.to_string(), "unknown".to_string()))
}

/// The name a program was started under, for argv[0] dispatch: the file name of `argv0`
/// without the platform's executable suffix (`C:\\bin\\apply_patch.exe` → `apply_patch` on
/// Windows, compared case-insensitively there); `None` when it is not Unicode.
pub fn program_name(argv0: &std::ffi::OsStr) -> Option<String> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    let suffix = std::env::consts::EXE_SUFFIX;
    let cut = name.len().checked_sub(suffix.len()).filter(|&at| {
        !suffix.is_empty() && name.is_char_boundary(at) && name[at..].eq_ignore_ascii_case(suffix)
    });
    Some(match cut {
        Some(at) => name[..at].to_string(),
        None => name.to_string(),
    })
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    sys::fill_random(buf)
}

/// Creates `path` for writing; it must not exist yet (so a file, or a symlink planted there by
/// someone else, is an error rather than followed). Readable and writable by the owner only:
/// mode 0600 on Unix; on Windows the file inherits its directory's ACL (`CODEX_HOME` lives in
/// the user's profile).
pub fn create_private_file(path: &Path) -> io::Result<File> {
    sys::create_private_file(path)
}

/// Renames `from` over `to` atomically (readers see the old file or the new one, whole). On
/// Windows a replace that races another process's replace or read of `to` is refused for a
/// moment (sharing violation), so it is retried briefly there.
pub fn replace_file(from: &Path, to: &Path) -> io::Result<()> {
    sys::replace_file(from, to)
}

/// Makes renames and creations inside `dir` durable (an fsync of the directory on Unix; NTFS
/// journals them already, so nothing on Windows).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    sys::sync_dir(dir)
}

/// Connects to `addr` without blocking past `deadline` or for longer than one `slice` after
/// `aborted` is set: `Interrupted` when aborted, `TimedOut` at the deadline, the OS error
/// otherwise. The socket is never inherited by child processes.
pub fn connect_abortable(
    addr: &SocketAddr,
    deadline: Option<Instant>,
    aborted: &AtomicBool,
    slice: Duration,
) -> io::Result<TcpStream> {
    sys::connect_abortable(addr, deadline, aborted, slice)
}

/// Starts connecting a new non-blocking TCP socket to `addr` and returns it at once, the
/// connect done or in progress (`EINPROGRESS`, `WSAEWOULDBLOCK`). The socket turns writable
/// when the attempt ends; then `TcpStream::take_error` holds its failure, and `peer_addr`
/// answers once connected. The socket stays non-blocking and is never inherited by children.
pub fn connect_nonblocking(addr: &SocketAddr) -> io::Result<TcpStream> {
    sys::connect_nonblocking(addr)
}

/// Undoes signal state a parent may have left us (Unix): an ignored `SIGCHLD` (with which the
/// kernel reaps children itself, so no command's exit status could ever be read) goes back to
/// the default, and every blocked signal is unblocked. Call first thing in `main`, before any
/// thread exists. Nothing to do on Windows.
pub fn reset_inherited_signals() {
    sys::reset_inherited_signals();
}

/// Marks every descriptor above stderr that the process holds now close-on-exec, so that no
/// command or MCP server we start inherits it. A parent may hand us descriptors that are not
/// close-on-exec (an IDE's socket, a test's pipe, a leaked log file); without this they would
/// pass through to every unsandboxed command (`danger-full-access`, an escalated command, an MCP
/// stdio server), giving it a channel to a host service whatever the policy says (the Linux
/// sandbox helper closes them itself, but nothing else does). They are not closed: the parent
/// may have given them for a reason, and our own code keeps working with them. Call once at
/// server start, before any command runs. Nothing is done on Windows yet: no documented call
/// lists a process's handles, so a handle our parent left inheritable passes on as before.
pub fn keep_inherited_descriptors_from_children() {
    sys::keep_inherited_descriptors_from_children();
}

/// Routes the termination signals (SIGTERM, SIGHUP, SIGINT; Ctrl-C, Ctrl-Break and console
/// close on Windows) to [`wait_termination_signal`] instead of their default action. On Unix
/// they are blocked in the calling thread, so call it before starting other threads (they
/// inherit the mask; children get a clean one from `std::process`).
pub fn catch_termination_signals() -> io::Result<()> {
    sys::catch_termination_signals()
}

/// Waits up to `timeout` for a termination signal caught by [`catch_termination_signals`];
/// its number (Windows: the console event + 100, e.g. 100 for Ctrl-C).
pub fn wait_termination_signal(timeout: Duration) -> Option<i32> {
    sys::wait_termination_signal(timeout)
}

/// Whether our stdout has lost its reader (a pipe whose read end was closed, a socket shut
/// down), found without writing. Always false where the OS cannot tell (Windows): there a
/// failed write is the sign.
pub fn is_stdout_closed() -> bool {
    sys::is_stdout_closed()
}

/// The sending end of a wake-up channel: [`Waker::wake`] makes [`wait_readable`] return.
pub struct Waker(sys::WakeSocket);

/// The receiving end of a wake-up channel, waited on by [`wait_readable`].
pub struct WakeReceiver(sys::WakeSocket);

/// A new wake-up channel (a socket pair, so the OS can wait on it together with a listener).
pub fn wake_pair() -> io::Result<(Waker, WakeReceiver)> {
    let (tx, rx) = sys::wake_sockets()?;
    Ok((Waker(tx), WakeReceiver(rx)))
}

impl Waker {
    /// Wakes the waiting thread; never blocks (pending wake-ups merge).
    pub fn wake(&self) {
        // A full socket already holds a wake-up byte: nothing to add.
        let _ = (&self.0).write(&[1]);
    }
}

impl WakeReceiver {
    /// Consumes the pending wake-ups.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.0).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// Unix: the receiving end is a socket, for callers that poll it beside their own descriptors.
#[cfg(unix)]
impl std::os::fd::AsRawFd for WakeReceiver {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

impl WakeReceiver {
    /// The receiving socket, for [`poll_sockets`] beside the caller's own sockets: readable
    /// when woken (then [`WakeReceiver::drain`] it).
    pub fn raw_socket(&self) -> RawSocket {
        sys::raw_socket_of(&self.0)
    }
}

/// Waits until `listener` has a connection to accept or `wake` was woken, at most `timeout`;
/// returns which of the two is ready. An interrupted wait returns `(false, false)`.
pub fn wait_readable(
    listener: &TcpListener,
    wake: &WakeReceiver,
    timeout: Duration,
) -> io::Result<(bool, bool)> {
    let mut entries = [
        PollEntry::new(sys::raw_socket_of(listener), true, false),
        PollEntry::new(wake.raw_socket(), true, false),
    ];
    // Never 0 ms: a loop must not wake a hair before its limit and poll again with nothing.
    poll_sockets(&mut entries, Some(timeout.max(Duration::from_millis(1))))?;
    Ok((entries[0].readable, entries[1].readable))
}

/// A socket as the OS names it for polling: a file descriptor on Unix, a `SOCKET` on Windows.
#[cfg(unix)]
pub type RawSocket = std::os::fd::RawFd;
/// A socket as the OS names it for polling: a file descriptor on Unix, a `SOCKET` on Windows.
#[cfg(windows)]
pub type RawSocket = std::os::windows::io::RawSocket;

/// The [`RawSocket`] of a TCP stream, for [`poll_sockets`]; it stays the stream's own.
pub fn stream_socket(stream: &TcpStream) -> RawSocket {
    sys::raw_socket_of(stream)
}

/// One socket of a [`poll_sockets`] call: what to wait for, and (set by the call) what is
/// ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollEntry {
    /// The socket, which must stay open for the call.
    pub socket: RawSocket,
    /// Wait until it is readable (data, a connection to accept, or the peer closed).
    pub read: bool,
    /// Wait until it is writable (room to send, or a connect finished).
    pub write: bool,
    /// Set on return: readable, or in error or hung up.
    pub readable: bool,
    /// Set on return: writable, or in error or hung up.
    pub writable: bool,
}

impl PollEntry {
    /// An entry waiting on `socket` for reading and/or writing, nothing ready yet.
    pub fn new(socket: RawSocket, read: bool, write: bool) -> Self {
        Self {
            socket,
            read,
            write,
            readable: false,
            writable: false,
        }
    }
}

/// Waits until one of `entries` is ready for what it waits for, at most `timeout` (`None`:
/// without limit; zero: just looks), and returns how many are ready (each entry's `readable`
/// and `writable` say which). An error or hang-up on a socket marks it both readable and
/// writable, so the caller's next read or write reports it. A wait interrupted by a signal
/// returns 0. `poll(2)` on Unix, `WSAPoll` on Windows.
pub fn poll_sockets(entries: &mut [PollEntry], timeout: Option<Duration>) -> io::Result<usize> {
    for entry in entries.iter_mut() {
        entry.readable = false;
        entry.writable = false;
    }
    // Rounded up so a caller's deadline has passed when the wait ends.
    let millis = timeout.map_or(-1, |t| {
        i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    });
    sys::poll_sockets(entries, millis)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
