//! The single writer of stdout (`app-server-stdout`): one line at a time, flushed when the
//! queue runs empty, and the byte budget that makes producers wait while a slow client reads.

use std::io::{BufWriter, Write};
use std::sync::{Condvar, Mutex};

use crossbeam_channel::{Receiver, Sender};

use super::StopReason;

/// Most bytes queued for stdout; writers block beyond it (one larger line still goes through
/// when the queue is empty), so a client that stops reading costs bounded memory.
pub(super) const EGRESS_MAX_BYTES: usize = 16 * 1024 * 1024;

/// What the writer thread receives: a line to write, or the order to flush and stop.
pub(super) enum Outgoing {
    Line(String),
    Shutdown,
}

/// Bytes queued for stdout, with a condition variable for writers waiting for room.
#[derive(Default)]
pub(super) struct ByteBudget {
    queued: Mutex<usize>,
    room: Condvar,
}

impl ByteBudget {
    /// Waits until `len` more bytes fit (or the queue is empty), then reserves them.
    pub(super) fn reserve(&self, len: usize) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        while *queued > 0 && *queued + len > EGRESS_MAX_BYTES {
            queued = self.room.wait(queued).unwrap_or_else(|e| e.into_inner());
        }
        *queued += len;
    }

    /// Returns `len` bytes written out.
    pub(super) fn release(&self, len: usize) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        *queued = queued.saturating_sub(len);
        self.room.notify_all();
    }
}

/// The body of `app-server-stdout`: writes lines until shutdown; after a failed write it keeps
/// draining (so producers never block) and reports [`StopReason::ClientGone`] once.
pub(super) fn write_loop(
    rx: Receiver<Outgoing>,
    output: impl Write,
    egress: &ByteBudget,
    stop: &Sender<StopReason>,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, output);
    let mut broken = false;
    while let Ok(message) = rx.recv() {
        let Outgoing::Line(line) = message else {
            break;
        };
        egress.release(line.len());
        if broken {
            continue; // keep draining so producers never block on a dead client
        }
        let written = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"));
        // Flush once the queue is empty: every line is out as soon as nothing else is
        // waiting, without a syscall per line during a burst of deltas.
        let flushed = written.and_then(|()| if rx.is_empty() { out.flush() } else { Ok(()) });
        if let Err(e) = flushed {
            crate::log::error(&format!(
                "writing to stdout failed: {e}; the client is gone, stopping"
            ));
            broken = true;
            let _ = stop.try_send(StopReason::ClientGone);
        }
    }
    let _ = out.flush();
}
