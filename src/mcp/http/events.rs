//! The server's GET event stream (`mcp-<name>-events`): opened once initialized, reconnected
//! after failures, given up on 405 or repeated failures, every message handed to the link.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::{
    EVENT_READ_BYTES, EVENTS_KEY, Link, MAX_BODY_BYTES, MAX_EVENT_STREAM_FAILURES, Shared,
    into_messages, lock,
};
use crate::client::sse::SseParser;

/// Starts the `mcp-<name>-events` thread reading the server's GET stream.
pub(super) fn start_event_stream(shared: &Arc<Shared>, link: &Arc<Link>) {
    let (shared, link) = (shared.clone(), Arc::downgrade(link));
    let spawned = std::thread::Builder::new()
        .name(format!("mcp-{}-events", shared.name))
        .stack_size(256 * 1024)
        .spawn(move || shared.listen(&link));
    if let Err(e) = spawned {
        crate::log::warn(&format!("cannot start the MCP event stream: {e}"));
    }
}

impl Shared {
    /// Keeps the GET stream open until the link ends, the server refuses it (405: it has
    /// none), or it failed [`MAX_EVENT_STREAM_FAILURES`] times in a row.
    fn listen(&self, link: &std::sync::Weak<Link>) {
        let mut failures = 0;
        while !self.closed.load(Ordering::SeqCst) && failures < MAX_EVENT_STREAM_FAILURES {
            let agent =
                crate::client::net::quiet_stream_agent(&self.url, Arc::new(AtomicBool::new(false)));
            lock(&self.in_flight).insert(EVENTS_KEY, agent.clone());
            if self.closed.load(Ordering::SeqCst) {
                break;
            }
            let mut request = agent
                .get(&self.url)
                .config()
                .http_status_as_error(false)
                .build()
                .header("accept", "text/event-stream");
            if let Some(session) = lock(&self.session).as_deref() {
                request = request.header("mcp-session-id", session);
            }
            if let Some(version) = lock(&self.protocol_version).as_deref() {
                request = request.header("mcp-protocol-version", version);
            }
            match super::headers::add_headers(request, &self.headers).call() {
                Ok(response) if response.status().as_u16() == 405 => break,
                Ok(response) if response.status().is_success() => {
                    failures = 0;
                    let mut reader = response.into_body().into_reader();
                    self.pump_events(link, &mut reader);
                }
                Ok(response) => {
                    crate::log::debug(&format!(
                        "mcp server {}: event stream refused with HTTP {}",
                        self.name,
                        response.status()
                    ));
                    failures += 1;
                }
                Err(e) => {
                    crate::log::debug(&format!(
                        "mcp server {}: event stream failed: {e}",
                        self.name
                    ));
                    failures += 1;
                }
            }
            if link.strong_count() == 0 {
                break;
            }
            // Reconnect after a pause, unless shut down meanwhile.
            for _ in 0..10 {
                if self.closed.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        lock(&self.in_flight).remove(&EVENTS_KEY);
    }

    fn pump_events(&self, link: &std::sync::Weak<Link>, reader: &mut dyn Read) {
        let mut parser = SseParser::new(MAX_BODY_BYTES);
        // The stream waits here while its server is idle: a small buffer (the connection's
        // own buffers it) keeps an idle server cheap.
        let mut buf = [0u8; EVENT_READ_BYTES];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            parser.push(&buf[..n]);
            loop {
                let data = match parser.next_event() {
                    Ok(Some(event)) => event.data.to_string(),
                    Ok(None) => break,
                    Err(_) => return,
                };
                let Ok(value) = serde_json::from_str::<Value>(&data) else {
                    continue;
                };
                let Some(link) = link.upgrade() else {
                    return;
                };
                for message in into_messages(value) {
                    link.dispatch(message);
                }
            }
        }
    }
}
