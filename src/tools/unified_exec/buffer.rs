//! The output of a unified exec session that the model has not read yet, bounded whatever the
//! process prints: the first and the last bytes up to a cap, with counts of everything; and how
//! one call's share of it is written for the model (the reference's text layout, head and tail
//! kept within the call's token budget).

use std::collections::VecDeque;

/// Bytes per token when estimating (the reference counts `ceil(bytes / 4)`).
pub const BYTES_PER_TOKEN: usize = 4;

/// Unread output: the head and the tail (each at most `half_cap` bytes) of everything pushed
/// since the last [`UnreadOutput::take`], plus its total size and line count.
#[derive(Debug)]
pub struct UnreadOutput {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    half_cap: usize,
    total: usize,
    newlines: usize,
    last_byte: Option<u8>,
}

/// Output taken from an [`UnreadOutput`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// The first bytes (all of it when nothing was dropped).
    pub head: Vec<u8>,
    /// The last bytes, when the middle was dropped (else empty).
    pub tail: Vec<u8>,
    /// How many bytes were pushed in all.
    pub total: usize,
    /// How many lines they make (a last line without a newline counts).
    pub lines: usize,
}

impl UnreadOutput {
    /// A buffer keeping at most `cap` bytes (half head, half tail).
    pub fn new(cap: usize) -> Self {
        Self {
            head: Vec::new(),
            tail: VecDeque::new(),
            half_cap: cap / 2,
            total: 0,
            newlines: 0,
            last_byte: None,
        }
    }

    /// Appends output.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.total += bytes.len();
        self.newlines += bytes.iter().filter(|b| **b == b'\n').count();
        self.last_byte = bytes.last().copied();
        let room = self.half_cap.saturating_sub(self.head.len());
        let n = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..n]);
        bytes = &bytes[n..];
        if bytes.len() >= self.half_cap {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.half_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.half_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Takes everything unread, leaving the buffer empty.
    pub fn take(&mut self) -> Taken {
        let lines = self.newlines + usize::from(self.last_byte.is_some_and(|b| b != b'\n'));
        let mut head = std::mem::take(&mut self.head);
        let mut tail: Vec<u8> = std::mem::take(&mut self.tail).into();
        if head.len() + tail.len() == self.total {
            head.append(&mut tail);
        }
        let taken = Taken {
            head,
            tail,
            total: self.total,
            lines,
        };
        self.total = 0;
        self.newlines = 0;
        self.last_byte = None;
        taken
    }
}

/// Estimated tokens of `bytes` bytes of output.
pub fn tokens_of(bytes: usize) -> usize {
    bytes.div_ceil(BYTES_PER_TOKEN)
}

/// How a call ended for the model: the process exited, or it runs on as a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exited with this code (128 + signal when killed).
    Exited(i32),
    /// Still running; poll it with `write_stdin` and this id.
    Running(i32),
}

/// The text the model gets for one call (the reference's layout): a fresh chunk id, the wall
/// time, the status, the token count of the new output, then the output, cut to
/// `max_output_tokens` (head and tail kept, the middle counted) when longer.
pub fn format_for_model(
    chunk_id: &str,
    wall_seconds: f64,
    status: Status,
    output: &Taken,
    max_output_tokens: usize,
) -> String {
    let original_tokens = tokens_of(output.total);
    let mut text = format!("Chunk ID: {chunk_id}\nWall time: {wall_seconds:.4} seconds\n");
    match status {
        Status::Exited(code) => text.push_str(&format!("Process exited with code {code}\n")),
        Status::Running(id) => {
            text.push_str(&format!("Process running with session ID {id}\n"));
        }
    }
    text.push_str(&format!(
        "Original token count: {original_tokens}\nOutput:\n"
    ));
    let budget = max_output_tokens.saturating_mul(BYTES_PER_TOKEN);
    if original_tokens <= max_output_tokens && output.tail.is_empty() {
        text.push_str(&String::from_utf8_lossy(&output.head));
        return text;
    }
    // Both ends within the budget: half of it each, on character boundaries.
    let half = budget / 2;
    let head = &output.head[..char_floor(&output.head, half.min(output.head.len()))];
    let tail_source: &[u8] = if output.tail.is_empty() {
        &output.head
    } else {
        &output.tail
    };
    let start = tail_source.len().saturating_sub(half);
    let tail = &tail_source[char_ceil(tail_source, start)..];
    text.push_str(&format!(
        "Warning: truncated output (original token count: {original_tokens})\nTotal output lines: {}\n\n",
        output.lines
    ));
    text.push_str(&String::from_utf8_lossy(head));
    text.push_str(&format!(
        "…{} tokens truncated…",
        original_tokens.saturating_sub(max_output_tokens)
    ));
    text.push_str(&String::from_utf8_lossy(tail));
    text
}

/// The largest index ≤ `at` that does not split a UTF-8 sequence of `bytes`.
fn char_floor(bytes: &[u8], mut at: usize) -> usize {
    while at > 0 && at < bytes.len() && is_continuation(bytes[at]) {
        at -= 1;
    }
    at
}

/// The smallest index ≥ `at` that does not split a UTF-8 sequence of `bytes`.
fn char_ceil(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && is_continuation(bytes[at]) {
        at += 1;
    }
    at
}

fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn seq(n: usize) -> String {
        (1..=n).map(|i| format!("{i}\n")).collect()
    }

    #[test]
    fn unread_output_keeps_head_and_tail_and_counts_everything() {
        /// Pushes, cap, head, tail, total, lines.
        type Case<'a> = (&'a [&'a str], usize, &'a str, &'a str, usize, usize);
        let cases: &[Case] = &[
            (&["abc"], 10, "abc", "", 3, 1),
            (&["a\n", "b\n"], 10, "a\nb\n", "", 4, 2),
            (&["0123456789"], 10, "0123456789", "", 10, 1),
            (&["0123456789ab"], 10, "01234", "89ab", 12, 1),
            (&["012", "345", "678", "9ab\n"], 10, "01234", "9ab\n", 13, 1),
            (&["x\n"; 0], 10, "", "", 0, 0),
        ];
        for (pushes, cap, head, tail, total, lines) in cases {
            let mut buffer = UnreadOutput::new(*cap);
            for p in *pushes {
                buffer.push(p.as_bytes());
            }
            let taken = buffer.take();
            assert_eq!(String::from_utf8(taken.head).unwrap(), *head, "{pushes:?}");
            assert!(
                String::from_utf8(taken.tail.clone())
                    .unwrap()
                    .ends_with(tail)
                    && (tail.is_empty() == taken.tail.is_empty()),
                "{pushes:?}: {:?}",
                taken.tail
            );
            assert_eq!(taken.total, *total, "{pushes:?}");
            assert_eq!(taken.lines, *lines, "{pushes:?}");
            assert_eq!(buffer.take(), Taken::default());
        }
    }

    #[test]
    fn memory_stays_within_the_cap() {
        let mut buffer = UnreadOutput::new(1000);
        for _ in 0..10_000 {
            buffer.push(&[b'x'; 333]);
        }
        assert!(buffer.head.len() + buffer.tail.len() <= 1000);
        assert_eq!(buffer.take().total, 3_330_000);
    }

    #[test]
    fn short_output_is_given_whole() {
        let mut buffer = UnreadOutput::new(1 << 16);
        buffer.push(b"hello\n");
        let text = format_for_model("abc123", 0.25, Status::Exited(3), &buffer.take(), 100);
        assert_eq!(
            text,
            "Chunk ID: abc123\nWall time: 0.2500 seconds\nProcess exited with code 3\nOriginal token count: 2\nOutput:\nhello\n"
        );
        let running = format_for_model("x", 1.0, Status::Running(4242), &Taken::default(), 10);
        assert!(
            running.contains(
                "Process running with session ID 4242\nOriginal token count: 0\nOutput:\n"
            ),
            "{running}"
        );
    }

    /// `seq 1 3000` with a budget of 50 tokens, as observed on the reference.
    #[test]
    fn long_output_keeps_the_budget_as_head_and_tail() {
        let mut buffer = UnreadOutput::new(1 << 16);
        buffer.push(seq(3000).as_bytes());
        let text = format_for_model("c", 0.0, Status::Exited(0), &buffer.take(), 50);
        let body = text.split_once("Output:\n").unwrap().1;
        let head: String = seq(36) + "3";
        let tail: String = (2981..=3000).map(|i| format!("{i}\n")).collect();
        assert_eq!(
            body,
            format!(
                "Warning: truncated output (original token count: 3474)\nTotal output lines: 3000\n\n{head}…3424 tokens truncated…{tail}"
            )
        );
        // The same through a buffer that already dropped the middle.
        let mut small = UnreadOutput::new(1000);
        small.push(seq(3000).as_bytes());
        let again = format_for_model("c", 0.0, Status::Exited(0), &small.take(), 50);
        assert_eq!(again, text);
    }

    #[test]
    fn cuts_never_split_characters() {
        let mut buffer = UnreadOutput::new(1 << 16);
        buffer.push("é".repeat(1000).as_bytes());
        let text = format_for_model("c", 0.0, Status::Exited(0), &buffer.take(), 3);
        assert!(!text.contains('\u{fffd}'), "{text}");
        assert!(text.contains("tokens truncated"), "{text}");
    }
}
