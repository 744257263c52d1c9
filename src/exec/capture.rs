//! The capped copies of a command's output kept for its outcome: stdout, stderr and both
//! interleaved, each as a head and a tail so memory stays bounded whatever the command prints.

use std::collections::VecDeque;
use std::time::Duration;

use super::{ExecOutput, OutputStream};

/// Capped copies of stdout, stderr and both interleaved.
pub(super) struct Capture {
    stdout: HeadTail,
    stderr: HeadTail,
    aggregated: HeadTail,
}

impl Capture {
    /// Empty buffers keeping at most `cap` bytes each.
    pub(super) fn new(cap: usize) -> Self {
        Self {
            stdout: HeadTail::new(cap),
            stderr: HeadTail::new(cap),
            aggregated: HeadTail::new(cap),
        }
    }

    /// Records one chunk of `stream`.
    pub(super) fn push(&mut self, stream: OutputStream, bytes: &[u8]) {
        match stream {
            OutputStream::Stdout => self.stdout.push(bytes),
            OutputStream::Stderr => self.stderr.push(bytes),
        }
        self.aggregated.push(bytes);
    }

    /// The outcome with what was kept.
    pub(super) fn finish(
        self,
        exit_code: Option<i32>,
        signal: Option<i32>,
        duration: Duration,
        timed_out: bool,
    ) -> ExecOutput {
        let truncated =
            self.stdout.dropped > 0 || self.stderr.dropped > 0 || self.aggregated.dropped > 0;
        ExecOutput {
            exit_code,
            signal,
            stdout: self.stdout.into_bytes(),
            stderr: self.stderr.into_bytes(),
            aggregated: self.aggregated.into_bytes(),
            duration,
            timed_out,
            truncated,
        }
    }
}

/// Keeps the first half of `cap` bytes and the last half; memory stays bounded by `cap`.
#[derive(Debug)]
pub(super) struct HeadTail {
    head: Vec<u8>,
    head_cap: usize,
    tail: VecDeque<u8>,
    tail_cap: usize,
    dropped: usize,
}

impl HeadTail {
    pub(super) fn new(cap: usize) -> Self {
        let head_cap = cap / 2;
        Self {
            head: Vec::new(),
            head_cap,
            tail: VecDeque::new(),
            tail_cap: cap - head_cap,
            dropped: 0,
        }
    }

    pub(super) fn push(&mut self, mut bytes: &[u8]) {
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let n = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.len() >= self.tail_cap {
            // The new bytes alone fill the tail: everything older goes.
            self.dropped = self
                .dropped
                .saturating_add(self.tail.len() + bytes.len() - self.tail_cap);
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.dropped = self.dropped.saturating_add(overflow);
        self.tail.extend(bytes);
    }

    #[cfg(test)]
    pub(super) fn dropped(&self) -> usize {
        self.dropped
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        let mut out = self.head;
        out.extend(self.tail);
        out
    }
}
