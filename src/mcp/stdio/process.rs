//! A stdio server's process: the child, whether it was reaped (after which its pid may be
//! reused and must not be signalled), the last bytes of its stderr for error messages, and
//! stopping it (SIGTERM to its process group, a short grace, SIGKILL).

use std::process::Child;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::super::client::lock;
use super::sys;

/// Bytes of stderr kept for error messages.
const STDERR_TAIL_BYTES: usize = 2048;
/// How long a closing server may take to exit after its stdin closed and SIGTERM.
const EXIT_GRACE: Duration = Duration::from_millis(300);

/// The child and what we learned about it.
pub struct Process {
    child: Mutex<Child>,
    /// Set under the `child` lock once the child was reaped (its pid may then be reused).
    reaped: AtomicBool,
    stderr_tail: Mutex<Vec<u8>>,
}

impl Process {
    /// Wraps a spawned child.
    pub fn new(child: Child) -> Self {
        Self {
            child: Mutex::new(child),
            reaped: AtomicBool::new(false),
            stderr_tail: Mutex::new(Vec::new()),
        }
    }

    fn signal(&self, kill: bool) {
        let child = lock(&self.child);
        if !self.reaped.load(Ordering::SeqCst) {
            sys::signal_group(&child, kill);
        }
    }

    /// Reaps the child if it has exited, waiting up to `grace`; returns its status text.
    pub fn reap(&self, grace: Duration) -> Option<String> {
        let deadline = Instant::now() + grace;
        loop {
            {
                let mut child = lock(&self.child);
                if self.reaped.load(Ordering::SeqCst) {
                    return Some("exited".into());
                }
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.reaped.store(true, Ordering::SeqCst);
                        return Some(describe_status(status));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.reaped.store(true, Ordering::SeqCst);
                        return Some(format!("cannot be waited for: {e}"));
                    }
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, a short grace, SIGKILL, reaped. Idempotent.
    pub fn terminate(&self) {
        self.signal(false);
        if self.reap(EXIT_GRACE).is_none() {
            self.signal(true);
            let mut child = lock(&self.child);
            if !self.reaped.load(Ordering::SeqCst) {
                let _ = child.wait();
                self.reaped.store(true, Ordering::SeqCst);
            }
        }
    }

    /// The last bytes the server wrote to stderr, as text.
    pub fn stderr_tail(&self) -> String {
        let tail = lock(&self.stderr_tail);
        String::from_utf8_lossy(&tail).trim().to_string()
    }

    /// Keeps `bytes` of stderr (only the last [`STDERR_TAIL_BYTES`] in all).
    pub fn push_stderr(&self, bytes: &[u8]) {
        keep_tail(&mut lock(&self.stderr_tail), bytes, STDERR_TAIL_BYTES);
    }
}

/// Appends `bytes` to `tail`, keeping only its last `max` bytes, in a buffer of exactly `max`
/// (allocated by the first bytes: a quiet server has none).
fn keep_tail(tail: &mut Vec<u8>, bytes: &[u8], max: usize) {
    let bytes = &bytes[bytes.len().saturating_sub(max)..];
    let cut = (tail.len() + bytes.len()).saturating_sub(max);
    tail.drain(..cut);
    if !bytes.is_empty() && tail.capacity() < max {
        let room = max - tail.len();
        tail.reserve_exact(room);
    }
    tail.extend_from_slice(bytes);
}

fn describe_status(status: std::process::ExitStatus) -> String {
    match (status.code(), sys::signal_of(&status)) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "exited".to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_stderr_tail_keeps_the_last_bytes_in_a_fixed_buffer() {
        let cases: &[(&[&[u8]], &[u8])] = &[
            (&[], b""),
            (&[b"abc"], b"abc"),
            (&[b"abc", b"defg"], b"cdefg"),
            (&[b"0123456789"], b"56789"),
            (&[b"ab", b"0123456789", b"x"], b"6789x"),
        ];
        for (chunks, want) in cases {
            let mut tail = Vec::new();
            for chunk in *chunks {
                keep_tail(&mut tail, chunk, 5);
                assert!(tail.capacity() <= 5, "{chunks:?}: {}", tail.capacity());
            }
            assert_eq!(&tail, want, "{chunks:?}");
        }
    }
}
