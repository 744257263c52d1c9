//! One POST (`mcp-<name>-post`): sending a message under the caller's deadline, and reading
//! its answer as one JSON body or as an SSE stream whose messages go to the link until the
//! answer comes.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    EVENT_READ_BYTES, Link, MAX_BODY_BYTES, McpError, Outgoing, Shared, into_messages, lock,
    truncate,
};
use crate::client::sse::SseParser;

impl Shared {
    pub(super) fn post(&self, link: &Arc<Link>, out: &Outgoing) {
        let key = out
            .request_id
            .unwrap_or_else(|| self.next_key.fetch_sub(1, Ordering::SeqCst));
        let outcome = self.exchange(link, out, key);
        lock(&self.in_flight).remove(&key);
        if let Err(error) = outcome {
            match out.request_id {
                Some(id) => link.fail(id, error),
                None => crate::log::warn(&format!("mcp server {}: {error}", self.name)),
            }
        }
    }

    fn exchange(&self, link: &Arc<Link>, out: &Outgoing, key: i64) -> Result<(), McpError> {
        let aborted = Arc::new(AtomicBool::new(false));
        let agent = crate::client::net::agent(&self.url, aborted);
        lock(&self.in_flight).insert(key, agent.clone());
        let left = out.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(McpError::Timeout(Duration::ZERO));
        }
        let mut request = agent
            .post(&self.url)
            .config()
            .timeout_global(Some(left))
            .http_status_as_error(false)
            .build()
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(session) = lock(&self.session).as_deref() {
            request = request.header("mcp-session-id", session);
        }
        if let Some(version) = lock(&self.protocol_version).as_deref() {
            request = request.header("mcp-protocol-version", version);
        }
        let response = match super::headers::add_headers(request, &self.headers).send(&out.body[..])
        {
            Ok(response) => response,
            Err(_) if self.closed.load(Ordering::SeqCst) => {
                return Err(McpError::Closed("shut down".into()));
            }
            Err(ureq::Error::Timeout(_)) => return Err(McpError::Timeout(left)),
            Err(e) => {
                return Err(McpError::Transport(format!(
                    "cannot reach {}: {e}",
                    self.url
                )));
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| crate::client::net::header_text(response.headers(), name);
        if out.is_initialize
            && let Some(session) = header("mcp-session-id")
        {
            *lock(&self.session) = Some(session);
        }
        let content_type = header("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if status == 404 && lock(&self.session).is_some() && !out.is_initialize {
            link.close("the server ended the session (HTTP 404)");
            return Err(McpError::Closed("the session expired".into()));
        }
        if !(200..300).contains(&status) {
            let mut text = String::new();
            let _ = response
                .into_body()
                .into_reader()
                .take(4096)
                .read_to_string(&mut text);
            return Err(McpError::Transport(format!(
                "HTTP {status} from {}: {}",
                self.url,
                truncate(text.trim(), 300)
            )));
        }
        let Some(id) = out.request_id else {
            return Ok(()); // a notification or an answer: 202 and nothing more
        };
        let mut reader = response.into_body().into_reader();
        let answered = if content_type.starts_with("text/event-stream") {
            self.read_events(link, &mut reader, id, out.is_initialize)?
        } else if status == 202 || status == 204 {
            false
        } else {
            let mut body = Vec::new();
            reader
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut body)
                .map_err(|e| self.read_error(e))?;
            if body.len() > MAX_BODY_BYTES {
                return Err(McpError::Protocol(format!(
                    "answer larger than {} MiB",
                    MAX_BODY_BYTES >> 20
                )));
            }
            let value: Value = serde_json::from_slice(&body)
                .map_err(|e| McpError::Protocol(format!("answer is not JSON: {e}")))?;
            let mut answered = false;
            for message in into_messages(value) {
                answered |= self.deliver(link, message, id, out.is_initialize);
            }
            answered
        };
        if answered {
            Ok(())
        } else {
            Err(McpError::Protocol(
                "the server sent no answer to the request".into(),
            ))
        }
    }

    /// Reads an SSE answer until the message answering `id`; true when it came.
    fn read_events(
        &self,
        link: &Arc<Link>,
        reader: &mut dyn Read,
        id: i64,
        is_initialize: bool,
    ) -> Result<bool, McpError> {
        let mut parser = SseParser::new(MAX_BODY_BYTES);
        // The stream waits here while its server is idle: a small buffer (the connection's
        // own buffers it) keeps an idle server cheap.
        let mut buf = [0u8; EVENT_READ_BYTES];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            };
            parser.push(&buf[..n]);
            loop {
                let data = match parser.next_event() {
                    Ok(Some(event)) => event.data.to_string(),
                    Ok(None) => break,
                    Err(e) => return Err(McpError::Protocol(e.to_string())),
                };
                if data.trim().is_empty() {
                    continue; // a priming event
                }
                let value: Value = match serde_json::from_str(&data) {
                    Ok(v) => v,
                    Err(e) => {
                        crate::log::warn(&format!(
                            "mcp server {}: ignoring an event that is not JSON: {e}",
                            self.name
                        ));
                        continue;
                    }
                };
                let mut answered = false;
                for message in into_messages(value) {
                    answered |= self.deliver(link, message, id, is_initialize);
                }
                if answered {
                    return Ok(true);
                }
            }
        }
    }

    fn read_error(&self, e: std::io::Error) -> McpError {
        if self.closed.load(Ordering::SeqCst) {
            McpError::Closed("shut down".into())
        } else if e.kind() == std::io::ErrorKind::TimedOut {
            McpError::Timeout(Duration::ZERO)
        } else {
            McpError::Transport(format!("reading the answer failed: {e}"))
        }
    }

    /// Hands one message to the link; true when it is the answer to `id`.
    fn deliver(&self, link: &Arc<Link>, message: Value, id: i64, is_initialize: bool) -> bool {
        let is_answer = message.get("method").is_none()
            && message.get("id").and_then(Value::as_i64) == Some(id);
        if is_answer
            && is_initialize
            && let Some(version) = message
                .get("result")
                .and_then(|r| r.get("protocolVersion"))
                .and_then(Value::as_str)
        {
            *lock(&self.protocol_version) = Some(version.to_string());
        }
        link.dispatch(message);
        is_answer
    }
}
