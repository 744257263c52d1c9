//! What becomes of the bytes a stdio server writes: stdout is split into lines, each a
//! JSON-RPC message (or batch) for the [`Link`], stderr is logged and its tail kept; at the end
//! of the output the process is reaped and the link closed with the reason (exit status, the
//! end of stderr, how many lines were not JSON-RPC). Whoever reads the pipes (`poller.rs` on
//! Unix, `threaded.rs` elsewhere) feeds this.
//!
//! Memory is bounded, and an idle server keeps almost none: a line longer than
//! [`MAX_LINE_BYTES`] is dropped, and line buffers are allocated while bytes arrive and given
//! back once their line is handled.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;

use super::super::client::{Link, truncate};
use super::process::Process;

/// Longest accepted stdout line (one message); longer lines are dropped and reported.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Longest stderr line logged as one line.
const MAX_STDERR_LINE_BYTES: usize = 4096;
/// How long an ended server may take to exit before it is stopped.
const REAP_GRACE: Duration = Duration::from_secs(2);

/// Splits a byte stream into lines, dropping (and counting) lines longer than `max`.
pub struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
    overflowing: bool,
    /// Lines dropped for length so far.
    pub dropped: usize,
}

impl LineSplitter {
    /// A splitter keeping lines up to `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            overflowing: false,
            dropped: 0,
        }
    }

    /// Feeds bytes; calls `on_line` for every complete line (without `\n` or `\r\n`).
    pub fn push(&mut self, mut bytes: &[u8], on_line: &mut dyn FnMut(&[u8])) {
        while !bytes.is_empty() {
            let (chunk, newline) = match bytes.iter().position(|&b| b == b'\n') {
                Some(pos) => (&bytes[..pos], true),
                None => (bytes, false),
            };
            bytes = &bytes[chunk.len() + usize::from(newline)..];
            if !self.overflowing {
                if self.buf.len() + chunk.len() > self.max {
                    self.overflowing = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            if newline {
                if self.overflowing {
                    self.overflowing = false;
                    self.dropped += 1;
                } else {
                    let line = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
                    on_line(line);
                    // Given back, not kept: an idle server holds no line buffer.
                    self.buf = Vec::new();
                }
            }
        }
    }
}

/// One server's output handling: its line splitters and where the lines go.
pub struct Reader {
    out_lines: LineSplitter,
    err_lines: LineSplitter,
    link: Weak<Link>,
    name: String,
    process: Arc<Process>,
    /// Stdout lines that were not JSON-RPC.
    garbage: usize,
}

impl Reader {
    /// The output handling of server `name`, delivering to `link`.
    pub fn new(name: &str, link: Weak<Link>, process: Arc<Process>) -> Self {
        Self {
            out_lines: LineSplitter::new(MAX_LINE_BYTES),
            err_lines: LineSplitter::new(MAX_STDERR_LINE_BYTES),
            link,
            name: name.to_string(),
            process,
            garbage: 0,
        }
    }

    /// The server's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Nobody holds the link any more: the connection was dropped and its server is being
    /// stopped, so there is no one to read for.
    pub fn is_orphaned(&self) -> bool {
        self.link.strong_count() == 0
    }

    /// Handles bytes the server wrote to stdout, or to stderr when `is_stderr`.
    pub fn feed(&mut self, is_stderr: bool, bytes: &[u8]) {
        let Reader {
            out_lines,
            err_lines,
            link,
            name,
            process,
            garbage,
        } = self;
        if is_stderr {
            process.push_stderr(bytes);
            err_lines.push(bytes, &mut |line| stderr_line(name, line));
        } else {
            out_lines.push(bytes, &mut |line| stdout_line(link, name, garbage, line));
        }
    }

    /// Reaps the process (stopping it if it lingers) and closes the link with the reason.
    pub fn end(self) {
        if self.out_lines.dropped > 0 {
            crate::log::warn(&format!(
                "mcp server {}: dropped {} lines longer than {} bytes",
                self.name, self.out_lines.dropped, MAX_LINE_BYTES
            ));
        }
        // The process is exiting (or closed its pipes and must go).
        let status = match self.process.reap(REAP_GRACE) {
            Some(status) => status,
            None => {
                self.process.terminate();
                "closed its output and was stopped".to_string()
            }
        };
        let mut reason = format!("the server {status}");
        let tail = self.process.stderr_tail();
        if !tail.is_empty() {
            reason.push_str(&format!("; stderr: {}", truncate(&tail, 500)));
        }
        if self.garbage > 0 {
            reason.push_str(&format!(
                "; it printed {} lines that are not JSON-RPC",
                self.garbage
            ));
        }
        crate::log::info(&format!("mcp server {}: {reason}", self.name));
        if let Some(link) = self.link.upgrade() {
            link.close(&reason);
        }
    }
}

fn stdout_line(link: &Weak<Link>, name: &str, garbage: &mut usize, line: &[u8]) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let Some(link) = link.upgrade() else {
        return;
    };
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Array(batch)) => batch.into_iter().for_each(|m| link.dispatch(m)),
        Ok(message) => link.dispatch(message),
        Err(_) => {
            *garbage += 1;
            let text = String::from_utf8_lossy(line);
            if *garbage <= 5 || garbage.is_power_of_two() {
                crate::log::warn(&format!(
                    "mcp server {name}: ignoring stdout line that is not JSON-RPC ({garbage} so far): {}",
                    truncate(&text, 200)
                ));
            }
            link.note_garbage(&truncate(&text, 200));
        }
    }
}

fn stderr_line(name: &str, line: &[u8]) {
    if crate::log::enabled(crate::log::Level::Info) {
        crate::log::info(&format!(
            "mcp server {name} stderr: {}",
            String::from_utf8_lossy(line)
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_long_lines_are_dropped() {
        type Case<'a> = (&'a [&'a [u8]], &'a [&'a str], usize);
        let cases: &[Case] = &[
            (&[b"a\nb\r\n", b"c"], &["a", "b"], 0),
            (&[b"ab", b"c\n", b"\n"], &["abc", ""], 0),
            (&[b"0123456789AB\nok\n"], &["ok"], 1),
            (&[b"01234", b"56789AB", b"CD\nok\n"], &["ok"], 1),
            (&[b"0123456789\n"], &["0123456789"], 0),
        ];
        for (chunks, want, dropped) in cases {
            let mut splitter = LineSplitter::new(10);
            let mut got = Vec::new();
            for chunk in *chunks {
                splitter.push(chunk, &mut |l| {
                    got.push(String::from_utf8(l.to_vec()).unwrap())
                });
            }
            assert_eq!(&got, want, "{chunks:?}");
            assert_eq!(splitter.dropped, *dropped, "{chunks:?}");
        }
    }

    #[test]
    fn a_line_buffer_is_given_back_once_its_line_is_handled() {
        let mut splitter = LineSplitter::new(1 << 20);
        splitter.push(&[b'x'; 5000], &mut |_| {});
        assert!(splitter.buf.capacity() >= 5000, "a partial line is kept");
        splitter.push(b"\n", &mut |l| assert_eq!(l.len(), 5000));
        assert_eq!(splitter.buf.capacity(), 0);
    }
}
