//! The single writer of stdout (`app-server-stdout`): one line at a time, flushed when the
//! queue runs empty, and the byte budget that makes producers wait while a slow client reads
//! (all but the main loop, which never waits for the client: hardening.md §2).

use std::io::{BufWriter, Write};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread::ThreadId;

use crossbeam_channel::{Receiver, Sender};

use super::StopReason;

/// Most bytes queued for stdout; writers block beyond it (one larger line still goes through
/// when the queue is empty), so a client that stops reading costs bounded memory.
pub(super) const EGRESS_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Most bytes queued in all, the main loop's lines included: a client that leaves this much
/// unread while it still sends requests is not reading at all, and is treated as gone.
pub(super) const EGRESS_HARD_MAX_BYTES: usize = 4 * EGRESS_MAX_BYTES;

/// What a queued line costs beyond its text (its `String` and its slot in the queue), counted
/// with it so that many short lines are bounded too.
pub(super) const LINE_OVERHEAD: usize = 64;

/// Most lines queued before writers that wait do (a burst of small deltas then costs ~256 KiB,
/// not the whole byte budget).
pub(super) const EGRESS_MAX_LINES: usize = 1024;

/// What the writer thread receives: a line to write, or the order to flush and stop.
pub(super) enum Outgoing {
    Line(String),
    Shutdown,
}

/// Bytes and lines queued for stdout, with a condition variable for writers waiting for room.
#[derive(Default)]
pub(super) struct ByteBudget {
    queued: Mutex<Queued>,
    room: Condvar,
    /// The thread whose sends never wait (the main loop), once it said so.
    never_waits: OnceLock<ThreadId>,
}

/// What is queued for stdout.
#[derive(Default)]
struct Queued {
    bytes: usize,
    lines: usize,
}

impl ByteBudget {
    /// Makes the calling thread (the main loop) one whose reservations never wait for a slow
    /// client: they go over the budget, up to [`EGRESS_HARD_MAX_BYTES`]. Only the first caller
    /// counts.
    pub(super) fn never_wait_on_this_thread(&self) {
        let _ = self.never_waits.set(std::thread::current().id());
    }

    /// Reserves a line of `len` bytes. Waits until it fits in [`EGRESS_MAX_BYTES`] and
    /// [`EGRESS_MAX_LINES`] (or the queue is empty), except on the thread marked by
    /// [`ByteBudget::never_wait_on_this_thread`], which goes over the budget at once. Returns
    /// `false` when the queue has passed [`EGRESS_HARD_MAX_BYTES`]: the client is not reading.
    pub(super) fn reserve(&self, len: usize) -> bool {
        let waits = self.never_waits.get() != Some(&std::thread::current().id());
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if waits {
            while queued.lines > 0
                && (queued.bytes + len > EGRESS_MAX_BYTES || queued.lines >= EGRESS_MAX_LINES)
            {
                queued = self.room.wait(queued).unwrap_or_else(|e| e.into_inner());
            }
        }
        queued.bytes = queued.bytes.saturating_add(len);
        queued.lines += 1;
        queued.bytes <= EGRESS_HARD_MAX_BYTES || queued.lines == 1
    }

    /// Returns a line of `len` bytes written out.
    pub(super) fn release(&self, len: usize) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        queued.bytes = queued.bytes.saturating_sub(len);
        queued.lines = queued.lines.saturating_sub(1);
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
        egress.release(line.len() + LINE_OVERHEAD);
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
