//! The `app-server-stdin` side: bounded JSONL framing (an over-long line is skipped, and refused
//! when its id can be recovered), classifying each message, delivering answers to our requests
//! into the pending map, and queueing the rest within the ingress budget (-32001 beyond it).

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::Sender;
use serde_json::Value;

use super::{ClientAnswer, Incoming, MAX_LINE_BYTES, RequestId, Rpc, RpcError, SERVER_OVERLOADED};

/// Most client messages queued for the main loop before new ones get -32001.
pub(super) const INGRESS_MAX_MESSAGES: usize = 4096;
/// Most bytes of client messages queued for the main loop before new ones get -32001.
const INGRESS_MAX_BYTES: usize = 64 * 1024 * 1024;

/// What the inbox holds, in messages and in their lines' bytes: counted in by the reader (the
/// only sender) before it queues a message, counted out by the main loop as it takes one. The
/// channel itself is unbounded, so that an idle server holds one small block of it rather than
/// [`INGRESS_MAX_MESSAGES`] slots allocated up front; these counts are its bound.
#[derive(Default)]
pub(super) struct Queued {
    messages: AtomicUsize,
    bytes: AtomicUsize,
}

impl Queued {
    /// Counts a message of `size` bytes in; false (and nothing counted) when that would pass
    /// either limit.
    fn admit(&self, size: usize) -> bool {
        let messages = self.messages.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = self.bytes.fetch_add(size, Ordering::Relaxed) + size;
        if messages > INGRESS_MAX_MESSAGES || bytes > INGRESS_MAX_BYTES {
            self.take(size);
            return false;
        }
        true
    }

    /// Counts a message of `size` bytes out (taken by the main loop, or never queued).
    pub(super) fn take(&self, size: usize) {
        self.messages.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(size, Ordering::Relaxed);
    }
}

/// The `app-server-stdin` thread's state: where answers and client messages go.
pub(super) struct Reader {
    pub(super) rpc: Rpc,
    pub(super) inbox: Sender<(Incoming, usize)>,
    pub(super) queued: Arc<Queued>,
}

impl Reader {
    /// Reads stdin to its end, line by line.
    pub(super) fn run(self, input: impl Read) {
        let mut input = BufReader::with_capacity(64 * 1024, input);
        let mut line = Vec::new();
        loop {
            match read_bounded_line(&mut input, &mut line) {
                Ok(LineRead::Eof) => break,
                Ok(LineRead::Line) => self.handle_line(&line),
                Ok(LineRead::TooLong) => self.reject_long_line(&line),
                Err(e) => {
                    crate::log::error(&format!("reading stdin failed: {e}"));
                    break;
                }
            }
        }
        // The connection is gone: waiters on our requests see a disconnect at once.
        self.rpc.drop_all_pending();
    }

    fn reject_long_line(&self, prefix: &[u8]) {
        let message =
            format!("Invalid request: message exceeds the {MAX_LINE_BYTES}-byte line limit");
        match top_level_id(prefix) {
            Some(id) => self
                .rpc
                .respond_error(&id, &RpcError::invalid_request(message)),
            None => crate::log::error(&format!("dropping input line: {message}")),
        }
    }

    fn handle_line(&self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let value: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                crate::log::error(&format!("ignoring input line that is not JSON: {e}"));
                return;
            }
        };
        match classify(value) {
            Classified::Request(message) => self.enqueue(message, line.len()),
            Classified::Notification(message) => self.enqueue(message, line.len()),
            Classified::Answer(id, answer) => self.rpc.deliver(&id, answer),
            Classified::Invalid(id, reason) => self.rpc.respond_error(
                &id,
                &RpcError::invalid_request(format!("Invalid request: {reason}")),
            ),
            Classified::Unanswerable(reason) => {
                crate::log::error(&format!("ignoring input message: {reason}"));
            }
        }
    }

    fn enqueue(&self, message: Incoming, size: usize) {
        let refused = if self.queued.admit(size) {
            match self.inbox.send((message, size)) {
                Ok(()) => return,
                Err(crossbeam_channel::SendError((message, _))) => {
                    self.queued.take(size);
                    message
                }
            }
        } else {
            message
        };
        match refused {
            Incoming::Request { id, .. } => self.rpc.respond_error(
                &id,
                &RpcError::new(SERVER_OVERLOADED, "Server overloaded; retry later."),
            ),
            Incoming::Notification { method, .. } => {
                crate::log::warn(&format!(
                    "dropping notification {method}: server overloaded"
                ));
            }
        }
    }
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one `\n`-terminated line into `line` (without the newline and a trailing `\r`). A line
/// longer than [`MAX_LINE_BYTES`] keeps only its first bytes in `line` and the rest is skipped.
fn read_bounded_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<LineRead> {
    line.clear();
    let mut too_long = false;
    let mut saw_any = false;
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if !saw_any {
                return Ok(LineRead::Eof);
            }
            break;
        }
        saw_any = true;
        let (chunk, found_newline) = match memchr(b'\n', buf) {
            Some(pos) => (&buf[..pos], true),
            None => (buf, false),
        };
        if !too_long {
            let room = MAX_LINE_BYTES - line.len();
            if chunk.len() > room {
                line.extend_from_slice(&chunk[..room]);
                too_long = true;
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = chunk.len() + usize::from(found_newline);
        input.consume(consumed);
        if found_newline {
            break;
        }
    }
    if too_long {
        return Ok(LineRead::TooLong);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(LineRead::Line)
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

enum Classified {
    Request(Incoming),
    Notification(Incoming),
    Answer(RequestId, ClientAnswer),
    Invalid(RequestId, String),
    Unanswerable(String),
}

fn parse_id(value: &Value) -> Option<RequestId> {
    match value {
        Value::String(s) => Some(RequestId::String(s.clone())),
        Value::Number(n) => n.as_i64().map(RequestId::Integer),
        _ => None,
    }
}

fn classify(value: Value) -> Classified {
    let Value::Object(mut map) = value else {
        return Classified::Unanswerable("not a JSON object".into());
    };
    let id = match map.get("id") {
        None => None,
        Some(raw) => match parse_id(raw) {
            Some(id) => Some(id),
            None => {
                return Classified::Unanswerable(format!(
                    "id {raw} is neither a string nor a 64-bit integer"
                ));
            }
        },
    };
    let params = match map.remove("params") {
        None | Some(Value::Null) => None,
        Some(p) => Some(p),
    };
    match (map.remove("method"), id) {
        (Some(Value::String(method)), Some(id)) => {
            Classified::Request(Incoming::Request { id, method, params })
        }
        (Some(Value::String(method)), None) => {
            Classified::Notification(Incoming::Notification { method })
        }
        (Some(_), Some(id)) => Classified::Invalid(id, "method must be a string".into()),
        (Some(_), None) => Classified::Unanswerable("method must be a string".into()),
        (None, Some(id)) => {
            if let Some(error) = map.remove("error") {
                let error = serde_json::from_value::<RpcError>(error).unwrap_or_else(|e| {
                    RpcError::internal(format!("malformed error answer from the client: {e}"))
                });
                Classified::Answer(id, Err(error))
            } else if let Some(result) = map.remove("result") {
                Classified::Answer(id, Ok(result))
            } else {
                Classified::Invalid(id, "missing method".into())
            }
        }
        (None, None) => {
            Classified::Unanswerable("neither a request, a notification nor an answer".into())
        }
    }
}

/// Finds the top-level `"id"` member in the prefix of an over-long JSON object, so the refusal
/// can be addressed. Only plain integer and escape-free string ids are recovered.
fn top_level_id(prefix: &[u8]) -> Option<RequestId> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < prefix.len() {
        match prefix[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < prefix.len() && prefix[j] != b'"' {
                    j += if prefix[j] == b'\\' { 2 } else { 1 };
                }
                let key = prefix.get(start..j)?;
                i = j + 1;
                if depth == 1 && key == b"id" {
                    let rest = &prefix[i.min(prefix.len())..];
                    let rest = trim_ascii_start(rest);
                    let value = trim_ascii_start(rest.strip_prefix(b":")?);
                    return parse_id_prefix(value);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn trim_ascii_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

fn parse_id_prefix(value: &[u8]) -> Option<RequestId> {
    if let Some(rest) = value.strip_prefix(b"\"") {
        let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
        if rest[end] != b'"' {
            return None;
        }
        return Some(RequestId::String(
            std::str::from_utf8(&rest[..end]).ok()?.to_string(),
        ));
    }
    let len = value
        .iter()
        .enumerate()
        .take_while(|&(k, &b)| b.is_ascii_digit() || (k == 0 && b == b'-'))
        .count();
    let text = std::str::from_utf8(&value[..len]).ok()?;
    match value.get(len) {
        Some(b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n') => {
            text.parse().ok().map(RequestId::Integer)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_queue_admits_up_to_its_message_and_byte_limits() {
        let queued = Queued::default();
        for _ in 0..INGRESS_MAX_MESSAGES {
            assert!(queued.admit(1));
        }
        assert!(!queued.admit(1), "one message too many");
        queued.take(1);
        assert!(queued.admit(1), "room again once one is taken");
        for _ in 0..INGRESS_MAX_MESSAGES {
            queued.take(1);
        }
        // (bytes already queued, size of the next) → admitted
        let cases = [
            (0, INGRESS_MAX_BYTES, true),
            (0, INGRESS_MAX_BYTES + 1, false),
            (INGRESS_MAX_BYTES - 10, 10, true),
            (INGRESS_MAX_BYTES - 10, 11, false),
        ];
        for (already, size, admitted) in cases {
            let queued = Queued::default();
            if already > 0 {
                assert!(queued.admit(already));
            }
            assert_eq!(queued.admit(size), admitted, "{already} + {size}");
            // A refusal counts nothing: the queue is as it was.
            let messages = usize::from(already > 0) + usize::from(admitted);
            assert_eq!(queued.messages.load(Ordering::Relaxed), messages);
        }
    }

    #[test]
    fn classifies_messages() {
        let cases: &[(Value, &str)] = &[
            (json!({"id": 1, "method": "m"}), "request"),
            (
                json!({"jsonrpc": "2.0", "id": "a", "method": "m", "params": {}}),
                "request",
            ),
            (json!({"method": "m"}), "notification"),
            (json!({"id": 3, "result": {}}), "answer"),
            (
                json!({"id": 3, "error": {"code": 1, "message": "x"}}),
                "answer",
            ),
            (json!({"id": 3}), "invalid"),
            (json!({"id": 3, "method": 7}), "invalid"),
            (json!({"id": null, "method": "m"}), "unanswerable"),
            (json!({"id": 1.5, "method": "m"}), "unanswerable"),
            (json!({"method": 7}), "unanswerable"),
            (json!([1, 2]), "unanswerable"),
            (json!({}), "unanswerable"),
        ];
        for (value, want) in cases {
            let got = match classify(value.clone()) {
                Classified::Request(_) => "request",
                Classified::Notification(_) => "notification",
                Classified::Answer(..) => "answer",
                Classified::Invalid(..) => "invalid",
                Classified::Unanswerable(_) => "unanswerable",
            };
            assert_eq!(got, *want, "{value}");
        }
    }

    #[test]
    fn recovers_top_level_ids_from_prefixes() {
        let cases: &[(&str, Option<RequestId>)] = &[
            (
                r#"{"id":12,"method":"x","params":{"#,
                Some(RequestId::Integer(12)),
            ),
            (
                r#"{"method":"x", "id" : "abc" ,"params":"#,
                Some(RequestId::String("abc".into())),
            ),
            (
                r#"{"params":{"id":5},"id":-3,"#,
                Some(RequestId::Integer(-3)),
            ),
            (r#"{"params":{"id":5,"text":"aaaa"#, None),
            (r#"{"method":"id","params":"#, None),
            (r#"{"id":12"#, None),
        ];
        for (prefix, want) in cases {
            assert_eq!(&top_level_id(prefix.as_bytes()), want, "{prefix}");
        }
    }

    #[test]
    fn bounded_lines() {
        let big = "x".repeat(MAX_LINE_BYTES + 10);
        let input = format!("a\r\n\n{big}\nb");
        let mut reader = BufReader::with_capacity(1024, input.as_bytes());
        let mut line = Vec::new();
        let mut got = Vec::new();
        loop {
            match read_bounded_line(&mut reader, &mut line).unwrap() {
                LineRead::Eof => break,
                LineRead::Line => got.push(String::from_utf8(line.clone()).unwrap()),
                LineRead::TooLong => {
                    assert_eq!(line.len(), MAX_LINE_BYTES);
                    got.push("<too long>".into());
                }
            }
        }
        assert_eq!(got, ["a", "", "<too long>", "b"]);
    }
}
