//! An incremental parser of `text/event-stream` bytes (the WHATWG "server-sent events"
//! interpretation rules): `event:` and `data:` fields, multi-line data joined with `\n`, `:`
//! comments, and CRLF, LF or lone CR line ends, with bytes arriving split at any point.
//!
//! It owns framing only: what an event *means* is decided in `events.rs`. It is pure (no I/O)
//! and allocation-free in the steady state: the buffers are reused from event to event, and an
//! event is handed out as borrowed `&str`s. Memory is bounded: an event (or a line still waiting
//! for its end) larger than the configured limit is an error, so a hostile stream cannot grow
//! the buffer without bound.

use std::fmt;

/// The largest event (sum of its field values) or unterminated line accepted by default.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// One dispatched event, borrowed from the parser until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, or `message` when the event had none.
    pub event: &'a str,
    /// The `data:` lines joined with `\n`.
    pub data: &'a str,
}

/// Why the parser gave up on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// An event, or a line without its end, grew past the limit (bytes).
    EventTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::EventTooLarge { limit } => {
                write!(f, "server-sent event larger than {limit} bytes")
            }
        }
    }
}

/// Feed bytes with [`SseParser::push`], then drain events with [`SseParser::next_event`] until
/// it returns `Ok(None)`. An unfinished event at the end of the stream is discarded, as the
/// SSE rules require.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes received but not yet consumed as whole lines, from `pos` on.
    buf: Vec<u8>,
    pos: usize,
    /// How far past `pos` the unfinished line was already searched for its end (so a long
    /// line arriving in many pieces is scanned once, not once per piece).
    scanned: usize,
    /// The previous line ended in CR, so an LF at the start of the next bytes belongs to it.
    skip_lf: bool,
    /// The current event's `event:` value.
    event: String,
    /// The current event's data lines, each followed by `\n`.
    data: String,
    /// The last call handed out the event in `event`/`data`; clear them before going on.
    dispatched: bool,
    max_event_bytes: usize,
    failed: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser that rejects events (and unterminated lines) above `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            skip_lf: false,
            event: String::new(),
            data: String::new(),
            dispatched: false,
            max_event_bytes,
            failed: None,
        }
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            // Keep only the unconsumed tail (usually a partial line), once per push.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Gives back the memory of consumed bytes and finished events when nothing is half-read
    /// (for a stream that stays open while idle).
    pub fn release_spare(&mut self) {
        if self.pos >= self.buf.len() && self.data.is_empty() && self.event.is_empty() {
            self.buf = Vec::new();
            self.pos = 0;
            self.data = String::new();
            self.event = String::new();
        }
    }

    /// The next complete event from the bytes pushed so far; `Ok(None)` when more bytes are
    /// needed. After an error every later call returns the same error.
    pub fn next_event(&mut self) -> Result<Option<SseEvent<'_>>, SseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.dispatched {
            self.dispatched = false;
            self.event.clear();
            self.data.clear();
        }
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                self.skip_lf = false;
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
            }
            let rest = &self.buf[self.pos..];
            let from = self.scanned.min(rest.len());
            let Some(end) = rest[from..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .map(|at| from + at)
            else {
                if rest.len() + self.data.len() + self.event.len() > self.max_event_bytes {
                    return Err(self.fail());
                }
                self.scanned = rest.len();
                return Ok(None);
            };
            self.scanned = 0;
            let line_start = self.pos;
            self.skip_lf = rest[end] == b'\r';
            self.pos += end + 1;
            if end == 0 {
                // A blank line dispatches the event, if it has data.
                if self.data.is_empty() {
                    self.event.clear();
                    continue;
                }
                self.data.pop(); // the `\n` after the last data line
                self.dispatched = true;
                let event = if self.event.is_empty() {
                    "message"
                } else {
                    &self.event
                };
                return Ok(Some(SseEvent {
                    event,
                    data: &self.data,
                }));
            }
            let line = &self.buf[line_start..line_start + end];
            if line[0] == b':' {
                continue; // comment
            }
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &b""[..]),
            };
            match name {
                b"data" => {
                    self.data.push_str(&String::from_utf8_lossy(value));
                    self.data.push('\n');
                }
                b"event" => {
                    self.event.clear();
                    self.event.push_str(&String::from_utf8_lossy(value));
                }
                _ => {} // `id`, `retry` and unknown fields: nothing we use
            }
            if self.data.len() + self.event.len() > self.max_event_bytes {
                return Err(self.fail());
            }
        }
    }

    fn fail(&mut self) -> SseError {
        let err = SseError::EventTooLarge {
            limit: self.max_event_bytes,
        };
        self.failed = Some(err.clone());
        // Free the memory at once; nothing more will be parsed.
        self.buf = Vec::new();
        self.data = String::new();
        self.pos = 0;
        err
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    type Owned = (String, String);

    /// Drains every event currently available.
    fn drain(parser: &mut SseParser) -> Result<Vec<Owned>, SseError> {
        let mut out = Vec::new();
        while let Some(ev) = parser.next_event()? {
            out.push((ev.event.to_string(), ev.data.to_string()));
        }
        Ok(out)
    }

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<Owned> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk);
            out.extend(drain(&mut parser).unwrap());
        }
        out
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<Owned> {
        pairs
            .iter()
            .map(|(e, d)| (e.to_string(), d.to_string()))
            .collect()
    }

    #[test]
    fn a_long_line_in_many_pieces_is_found_whole_and_the_next_lines_too() {
        let long = "y".repeat(100_000);
        let stream = format!("data: {long}\r\n\r\ndata: two\r\n\r\n");
        let mut parser = SseParser::default();
        let mut seen = Vec::new();
        for piece in stream.as_bytes().chunks(997) {
            parser.push(piece);
            while let Some(event) = parser.next_event().unwrap() {
                seen.push(event.data.to_string());
            }
        }
        assert_eq!(seen, [long, "two".to_string()]);
        parser.release_spare();
        assert_eq!(
            parser.buf.capacity(),
            0,
            "nothing half-read: no buffer kept"
        );
    }

    #[test]
    fn parses_a_table_of_streams() {
        type Case = (
            &'static str,
            &'static [u8],
            &'static [(&'static str, &'static str)],
        );
        let cases: &[Case] = &[
            (
                "simple",
                b"event: a\ndata: {\"x\":1}\n\n",
                &[("a", "{\"x\":1}")],
            ),
            (
                "crlf",
                b"event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n",
                &[("a", "1"), ("b", "2")],
            ),
            ("lone cr", b"event: a\rdata: 1\r\r", &[("a", "1")]),
            (
                "multi-line data",
                b"data: one\ndata: two\ndata:\ndata:three\n\n",
                &[("message", "one\ntwo\n\nthree")],
            ),
            (
                "comments and unknown fields",
                b": keepalive\nid: 7\nretry: 10\nfoo: bar\nevent: x\ndata: d\n\n",
                &[("x", "d")],
            ),
            (
                "no space after colon",
                b"event:x\ndata:d\n\n",
                &[("x", "d")],
            ),
            (
                "only the first space is stripped",
                b"data:  two spaces\n\n",
                &[("message", " two spaces")],
            ),
            (
                "colons inside the value",
                b"data: {\"a\":\"b:c\"}\n\n",
                &[("message", "{\"a\":\"b:c\"}")],
            ),
            (
                "event without data is not dispatched",
                b"event: lonely\n\ndata: d\n\n",
                &[("message", "d")],
            ),
            ("field without colon", b"data\n\n", &[("message", "")]),
            ("empty data field", b"data:\n\n", &[("message", "")]),
            (
                "unfinished event is held back",
                b"data: done\n\ndata: partial\n",
                &[("message", "done")],
            ),
            ("blank lines alone", b"\n\n\r\n\r\r", &[]),
            (
                "later event name wins",
                b"event: a\nevent: b\ndata: d\n\n",
                &[("b", "d")],
            ),
            (
                "invalid utf-8 is replaced",
                b"data: \xff\n\n",
                &[("message", "\u{fffd}")],
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse_chunks(&[input]), owned(want), "{name}");
        }
    }

    const SAMPLE: &[u8] = b": hello\r\n\
event: response.created\r\n\
data: {\"type\":\"response.created\"}\r\n\
\r\n\
event: response.output_text.delta\n\
data: {\"delta\":\"h\xc3\xa9\"}\n\
\n\
data: line1\r\
data: line2\r\
\r\
event: response.completed\n\
data: {}\n\
\n";

    fn sample_events() -> Vec<Owned> {
        owned(&[
            ("response.created", "{\"type\":\"response.created\"}"),
            ("response.output_text.delta", "{\"delta\":\"hé\"}"),
            ("message", "line1\nline2"),
            ("response.completed", "{}"),
        ])
    }

    #[test]
    fn every_single_split_point_gives_the_same_events() {
        let want = sample_events();
        for split in 0..=SAMPLE.len() {
            let (a, b) = SAMPLE.split_at(split);
            assert_eq!(parse_chunks(&[a, b]), want, "split at {split}");
        }
    }

    #[test]
    fn every_pair_of_split_points_gives_the_same_events() {
        let want = sample_events();
        for i in 0..=SAMPLE.len() {
            for j in i..=SAMPLE.len() {
                let got = parse_chunks(&[&SAMPLE[..i], &SAMPLE[i..j], &SAMPLE[j..]]);
                assert_eq!(got, want, "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let chunks: Vec<&[u8]> = SAMPLE.chunks(1).collect();
        assert_eq!(parse_chunks(&chunks), sample_events());
    }

    #[test]
    fn oversize_events_and_lines_are_errors() {
        // Many data lines adding up past the limit.
        let mut parser = SseParser::new(64);
        parser.push(&b"data: 0123456789\n".repeat(10));
        assert_eq!(
            drain(&mut parser),
            Err(SseError::EventTooLarge { limit: 64 })
        );
        // The error sticks.
        parser.push(b"\n");
        assert!(parser.next_event().is_err());

        // One endless line without a line end.
        let mut parser = SseParser::new(64);
        for _ in 0..10 {
            parser.push(b"data: aaaaaaaaaa");
            if parser.next_event().is_err() {
                return;
            }
        }
        panic!("an endless line was accepted");
    }

    #[test]
    fn events_at_the_limit_pass() {
        let mut parser = SseParser::new(16);
        parser.push(b"data: 0123456789abcde\n\n"); // 15 bytes + `\n`
        assert_eq!(
            drain(&mut parser).unwrap(),
            owned(&[("message", "0123456789abcde")])
        );
    }

    #[test]
    fn buffers_are_reused_between_events() {
        let mut parser = SseParser::default();
        let one = b"event: response.output_text.delta\ndata: {\"delta\":\"x\"}\n\n";
        parser.push(one);
        drain(&mut parser).unwrap();
        let capacity = (parser.data.capacity(), parser.event.capacity());
        for _ in 0..100 {
            parser.push(one);
            assert_eq!(drain(&mut parser).unwrap().len(), 1);
        }
        assert_eq!((parser.data.capacity(), parser.event.capacity()), capacity);
    }
}
