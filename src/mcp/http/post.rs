//! What becomes of one POST's response: its answer comes as one JSON body or as an SSE stream
//! whose messages go to the link until the answer comes; an error status, a 404 on an expired
//! session, or a response without the answer fails the waiting request with the reason.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use super::exchange::{Flow, Head, Sink};
use super::{Link, MAX_BODY_BYTES, McpError, Shared, into_messages, lock, truncate};
use crate::client::sse::SseParser;

/// How much of an error response's body is kept for the message.
const MAX_ERROR_TEXT_BYTES: usize = 4096;

/// One POST in flight: the message it carries and what came back so far.
pub(super) struct PostSink {
    shared: Arc<Shared>,
    link: Arc<Link>,
    /// The request id when the message is a request (its answer is awaited).
    request_id: Option<i64>,
    is_initialize: bool,
    /// The whole exchange's time limit, named when it runs out.
    timeout: Duration,
    body: Body,
    answered: bool,
}

/// The response body, by kind.
enum Body {
    /// No head yet, or nothing to read (a notification's 202).
    None,
    /// A JSON answer being collected.
    Json(Vec<u8>),
    /// An SSE stream read as it comes.
    Events(SseParser),
    /// An error status and the start of its text.
    Refused(u16, Vec<u8>),
}

impl PostSink {
    /// The sink of a POST carrying `message`, bounded by `timeout`.
    pub(super) fn new(
        shared: Arc<Shared>,
        link: Arc<Link>,
        message: &Value,
        timeout: Duration,
    ) -> Self {
        let method = message.get("method").and_then(Value::as_str);
        shared.count.fetch_add(1, Ordering::SeqCst);
        PostSink {
            shared,
            link,
            request_id: message
                .get("id")
                .and_then(Value::as_i64)
                .filter(|_| method.is_some()),
            is_initialize: method == Some("initialize"),
            timeout,
            body: Body::None,
            answered: false,
        }
    }

    /// The key the engine files the POST under: its request id, or a fresh negative number.
    pub(super) fn key(&self) -> i64 {
        self.request_id
            .unwrap_or_else(|| self.shared.next_key.fetch_sub(1, Ordering::SeqCst))
    }

    /// Ends the POST: the answer, or the reason none came, goes to the link.
    pub(super) fn finish(mut self, outcome: Result<(), McpError>) {
        if let Err(error) = outcome.and_then(|()| self.conclude()) {
            match self.request_id {
                Some(id) => self.link.fail(id, error),
                None => crate::log::warn(&format!("mcp server {}: {error}", self.shared.name)),
            }
        }
    }

    /// Ends the POST whose time ran out.
    pub(super) fn time_out(self) {
        let timeout = self.timeout;
        self.finish(Err(McpError::Timeout(timeout)));
    }

    fn conclude(&mut self) -> Result<(), McpError> {
        match std::mem::replace(&mut self.body, Body::None) {
            Body::Refused(status, text) => {
                return Err(McpError::Transport(format!(
                    "HTTP {status} from {}: {}",
                    self.shared.url,
                    truncate(String::from_utf8_lossy(&text).trim(), 300)
                )));
            }
            Body::Json(bytes) => {
                let value: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| McpError::Protocol(format!("answer is not JSON: {e}")))?;
                for message in into_messages(value) {
                    self.deliver(message);
                }
            }
            Body::None | Body::Events(_) => {}
        }
        if self.request_id.is_some() && !self.answered {
            return Err(McpError::Protocol(
                "the server sent no answer to the request".into(),
            ));
        }
        Ok(())
    }

    /// Hands one message to the link, noting whether it is the awaited answer.
    fn deliver(&mut self, message: Value) {
        let is_answer = message.get("method").is_none()
            && message.get("id").and_then(Value::as_i64) == self.request_id;
        if is_answer
            && self.is_initialize
            && let Some(version) = message
                .get("result")
                .and_then(|r| r.get("protocolVersion"))
                .and_then(Value::as_str)
        {
            *lock(&self.shared.protocol_version) = Some(version.to_string());
        }
        self.link.dispatch(message);
        self.answered |= is_answer;
    }
}

impl Drop for PostSink {
    fn drop(&mut self) {
        self.shared.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Sink for PostSink {
    fn head(&mut self, head: &Head<'_>) -> Result<Flow, McpError> {
        let status = head.status;
        if self.is_initialize
            && let Some(session) = head.header("mcp-session-id")
        {
            *lock(&self.shared.session) = Some(session.to_string());
        }
        if status == 404 && !self.is_initialize && lock(&self.shared.session).is_some() {
            self.link
                .expire_session("the server ended the session (HTTP 404)");
            return Err(McpError::Closed("the session expired".into()));
        }
        if !(200..300).contains(&status) {
            self.body = Body::Refused(status, Vec::new());
            return Ok(Flow::More);
        }
        if self.request_id.is_none() || status == 202 || status == 204 {
            // A notification or an answer: accepted, nothing more. A request: no answer here.
            return Ok(Flow::Done);
        }
        let content_type = head
            .header("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.body = if content_type.starts_with("text/event-stream") {
            Body::Events(SseParser::new(MAX_BODY_BYTES))
        } else {
            Body::Json(Vec::new())
        };
        Ok(Flow::More)
    }

    fn body(&mut self, bytes: &[u8]) -> Result<Flow, McpError> {
        match &mut self.body {
            Body::None => Ok(Flow::Done),
            Body::Refused(_, text) => {
                let room = MAX_ERROR_TEXT_BYTES.saturating_sub(text.len());
                text.extend_from_slice(&bytes[..bytes.len().min(room)]);
                Ok(if text.len() >= MAX_ERROR_TEXT_BYTES {
                    Flow::Done
                } else {
                    Flow::More
                })
            }
            Body::Json(collected) => {
                if collected.len() + bytes.len() > MAX_BODY_BYTES {
                    return Err(McpError::Protocol(format!(
                        "answer larger than {} MiB",
                        MAX_BODY_BYTES >> 20
                    )));
                }
                collected.extend_from_slice(bytes);
                Ok(Flow::More)
            }
            Body::Events(parser) => {
                parser.push(bytes);
                let mut messages = Vec::new();
                loop {
                    let data = match parser.next_event() {
                        Ok(Some(event)) => event.data.to_string(),
                        Ok(None) => break,
                        Err(e) => return Err(McpError::Protocol(e.to_string())),
                    };
                    if data.trim().is_empty() {
                        continue; // a priming event
                    }
                    match serde_json::from_str::<Value>(&data) {
                        Ok(value) => messages.extend(into_messages(value)),
                        Err(e) => crate::log::warn(&format!(
                            "mcp server {}: ignoring an event that is not JSON: {e}",
                            self.shared.name
                        )),
                    }
                }
                for message in messages {
                    self.deliver(message);
                }
                Ok(if self.answered {
                    Flow::Done
                } else {
                    Flow::More
                })
            }
        }
    }
}
