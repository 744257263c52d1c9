//! The server's GET event stream: opened once initialized, read by the engine like any
//! response, every message handed to the link; reopened after a pause when it ends or fails,
//! given up on 405 (the server has none) or after repeated failures.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use serde_json::Value;

use super::exchange::{Exchange, Flow, Head, Sink};
use super::{Link, MAX_BODY_BYTES, McpError, Shared, into_messages};
use crate::client::sse::SseParser;

/// Failed attempts in a row after which the GET stream is given up.
pub(super) const MAX_EVENT_STREAM_FAILURES: u32 = 5;

/// One open (or opening) event stream.
pub(super) struct EventsSink {
    shared: Arc<Shared>,
    link: Weak<Link>,
    parser: SseParser,
    /// Failed attempts in a row before this one.
    failures: u32,
    /// The server answered 405: it has no stream.
    refused: bool,
    /// The server answered with another error status.
    failed: bool,
}

/// Opens `shared`'s event stream: the exchange and its sink.
pub(super) fn open(
    shared: &Arc<Shared>,
    link: Weak<Link>,
    failures: u32,
) -> Result<(Exchange, EventsSink), McpError> {
    let head = shared.request("GET", "text/event-stream")?;
    let exchange = Exchange::start(&shared.url, head, None)?;
    let sink = EventsSink {
        shared: shared.clone(),
        link,
        parser: SseParser::new(MAX_BODY_BYTES),
        failures,
        refused: false,
        failed: false,
    };
    Ok((exchange, sink))
}

impl EventsSink {
    /// The stream ended with `outcome`: the failures in a row so far when it should be reopened,
    /// `None` when not (shut down, refused, failed too often, or nobody listens).
    pub(super) fn finish(
        self,
        outcome: Result<(), McpError>,
    ) -> Option<(Arc<Shared>, Weak<Link>, u32)> {
        let mut failures = self.failures;
        if let Err(e) = &outcome {
            crate::log::debug(&format!(
                "mcp server {}: event stream failed: {e}",
                self.shared.name
            ));
            failures += 1;
        } else if self.failed {
            failures += 1;
        }
        let keep = !self.refused
            && failures < MAX_EVENT_STREAM_FAILURES
            && !self.shared.closed.load(Ordering::SeqCst)
            && self.link.strong_count() > 0;
        keep.then_some((self.shared, self.link, failures))
    }
}

impl Sink for EventsSink {
    fn head(&mut self, head: &Head<'_>) -> Result<Flow, McpError> {
        let status = head.status;
        if status == 405 {
            self.refused = true;
            return Ok(Flow::Done);
        }
        if !(200..300).contains(&status) {
            crate::log::debug(&format!(
                "mcp server {}: event stream refused with HTTP {status}",
                self.shared.name
            ));
            self.failed = true;
            return Ok(Flow::Done);
        }
        self.failures = 0;
        Ok(Flow::More)
    }

    fn body(&mut self, bytes: &[u8]) -> Result<Flow, McpError> {
        self.parser.push(bytes);
        let mut messages = Vec::new();
        loop {
            let data = match self.parser.next_event() {
                Ok(Some(event)) => event.data.to_string(),
                Ok(None) => break,
                Err(e) => return Err(McpError::Protocol(e.to_string())),
            };
            if let Ok(value) = serde_json::from_str::<Value>(&data) {
                messages.extend(into_messages(value));
            }
        }
        // An idle stream keeps no buffer.
        self.parser.release_spare();
        let Some(link) = self.link.upgrade() else {
            return Ok(Flow::Done);
        };
        for message in messages {
            link.dispatch(message);
        }
        Ok(Flow::More)
    }
}
