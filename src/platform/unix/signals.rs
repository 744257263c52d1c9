//! Termination signals on Unix (caught by blocking them, taken with `sigtimedwait` or, on
//! macOS, `sigpending` and `sigwait`), the signal state inherited from our parent, and the
//! stdout probe.

use std::io;
use std::time::Duration;
#[cfg(not(target_os = "linux"))]
use std::time::Instant;

/// The signals that ask us to stop.
const TERMINATION_SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGHUP, libc::SIGINT];

/// SIGCHLD back to its default when ignored, and an empty signal mask.
pub(in crate::platform) fn reset_inherited_signals() {
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
pub(in crate::platform) fn catch_termination_signals() -> io::Result<()> {
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
pub(in crate::platform) fn wait_termination_signal(timeout: Duration) -> Option<i32> {
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
pub(in crate::platform) fn wait_termination_signal(timeout: Duration) -> Option<i32> {
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
pub(in crate::platform) fn is_stdout_closed() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd; zero timeout.
    let rc = unsafe { libc::poll(&mut fd, 1, 0) };
    rc > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
}
