//! The streamable-HTTP transport (MCP 2025-06-18 §Transports): every message is POSTed to the
//! endpoint; a request's answer comes back as one JSON body or as a server-sent-event stream
//! that may carry the server's own requests and progress before the answer. The
//! `Mcp-Session-Id` the server gives at `initialize` and the negotiated `MCP-Protocol-Version`
//! go with every later message; a 404 on a session means it expired: the link closes as
//! expired, and the next call starts a new session (the call that met the 404 is sent again
//! on it; `slot.rs`, `tools/mcp/call.rs`).
//!
//! Every exchange runs on one shared thread, `mcp-http` (`engine.rs`), over non-blocking
//! sockets: a POST has a deadline from its caller and an abort drops it, closing its
//! connection; once initialized, the server's GET event stream is held open there too (servers
//! send there what is not an answer to a POST; FastMCP sends progress there). An idle server
//! therefore costs no thread of its own and only its stream's connection and parser state.
//!
//! This file holds the transport (sending, aborting, ending the session) and the request every
//! exchange starts from; `headers.rs` resolves the configured headers; `exchange.rs` runs one
//! HTTP/1.1 exchange; `post.rs` reads a POST's answer; `events.rs` keeps the GET event stream;
//! `engine.rs` drives them all.

mod engine;
mod events;
mod exchange;
mod headers;
mod post;

pub use headers::resolve_headers;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Link, McpError, Transport, lock, truncate};
use super::config::McpTransport;
use crate::secret::Secret;
use engine::{Job, Purpose};
use exchange::{Exchange, RequestHead};

/// Largest JSON answer or SSE event accepted.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// POSTs in flight per server; more are refused (a server that never answers cannot make us
/// pile up connections).
const MAX_IN_FLIGHT: usize = 32;
/// How long ending the session (DELETE) may take at shutdown.
const DELETE_TIMEOUT: Duration = Duration::from_secs(1);
/// The key of the GET event stream among a server's exchanges.
const EVENTS_KEY: i64 = i64::MIN;
/// The key of the session's end (DELETE) among a server's exchanges.
const DELETE_KEY: i64 = i64::MIN + 1;

/// Connects nothing yet: returns the link whose messages will be POSTed to the server.
/// Fails when a configured credential variable is missing.
pub fn open(
    name: &str,
    transport: &McpTransport,
    rpc: crate::rpc::Rpc,
    default_cwd: std::path::PathBuf,
) -> Result<Arc<Link>, McpError> {
    let McpTransport::Http {
        url,
        bearer_token_env_var,
        http_headers,
        env_http_headers,
    } = transport
    else {
        return Err(McpError::Transport("not an HTTP server".into()));
    };
    let headers = resolve_headers(
        bearer_token_env_var.as_deref(),
        http_headers,
        env_http_headers,
        &|k| std::env::var(k).ok(),
    )?;
    let shared = Arc::new(Shared {
        name: name.to_string(),
        url: url.clone(),
        headers,
        session: Mutex::new(None),
        protocol_version: Mutex::new(None),
        count: AtomicUsize::new(0),
        next_key: AtomicI64::new(-1),
        closed: AtomicBool::new(false),
    });
    Ok(Arc::new(Link::new(
        name,
        Box::new(HttpTransport(shared)),
        rpc,
        default_cwd,
    )))
}

struct Shared {
    name: String,
    url: String,
    headers: Vec<(String, Secret)>,
    session: Mutex<Option<String>>,
    protocol_version: Mutex<Option<String>>,
    /// POSTs in flight.
    count: AtomicUsize,
    /// Keys of POSTs that are not requests (counting down from -1).
    next_key: AtomicI64,
    closed: AtomicBool,
}

struct HttpTransport(Arc<Shared>);

impl Shared {
    /// A request to the endpoint with what every exchange carries: the session, the negotiated
    /// protocol version and the configured headers.
    fn request(&self, method: &str, accept: &str) -> Result<RequestHead, McpError> {
        let mut head = RequestHead::new(method, &self.url)?;
        head.header("accept", accept)?;
        if let Some(session) = lock(&self.session).as_deref() {
            head.header("mcp-session-id", session)?;
        }
        if let Some(version) = lock(&self.protocol_version).as_deref() {
            head.header("mcp-protocol-version", version)?;
        }
        for (name, value) in &self.headers {
            head.header(name, value.expose())?;
        }
        Ok(head)
    }
}

impl Transport for HttpTransport {
    fn send(&self, link: &Arc<Link>, message: &Value, deadline: Instant) -> Result<(), McpError> {
        let shared = &self.0;
        if shared.closed.load(Ordering::SeqCst) {
            return Err(McpError::Closed("the session was ended".into()));
        }
        if shared.count.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
            return Err(McpError::Transport(format!(
                "more than {MAX_IN_FLIGHT} requests in flight"
            )));
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return Err(McpError::Timeout(Duration::ZERO));
        }
        let body = serde_json::to_vec(message)
            .map_err(|e| McpError::Transport(format!("cannot encode a message: {e}")))?;
        let mut head = shared.request("POST", "application/json, text/event-stream")?;
        head.header("content-type", "application/json")?;
        let exchange = Exchange::start(&shared.url, head, Some(&body))?;
        let sink = post::PostSink::new(shared.clone(), link.clone(), message, timeout);
        engine::start(Job {
            server: shared.clone(),
            key: sink.key(),
            exchange,
            purpose: Purpose::Post(sink),
            deadline: Some(deadline),
        })?;
        if message.get("method").and_then(Value::as_str) == Some("notifications/initialized") {
            match events::open(shared, Arc::downgrade(link), 0) {
                Ok((exchange, sink)) => engine::start(Job {
                    server: shared.clone(),
                    key: EVENTS_KEY,
                    exchange,
                    purpose: Purpose::Events(sink),
                    deadline: None,
                })?,
                Err(e) => crate::log::warn(&format!(
                    "mcp server {}: cannot open the event stream: {e}",
                    shared.name
                )),
            }
        }
        Ok(())
    }

    fn abort(&self, id: i64) {
        engine::abort(&self.0, Some(id));
    }

    fn shutdown(&self) {
        let shared = &self.0;
        if shared.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        engine::abort(shared, None);
        // Ending the session is courtesy: best effort, briefly.
        if lock(&shared.session).is_none() {
            return;
        }
        let exchange = shared
            .request("DELETE", "*/*")
            .and_then(|head| Exchange::start(&shared.url, head, None));
        let Ok(exchange) = exchange else {
            return;
        };
        let (done, ended) = crossbeam_channel::bounded(1);
        // The engine itself cannot wait for its own work.
        let waits = !engine::on_engine_thread();
        let job = Job {
            server: shared.clone(),
            key: DELETE_KEY,
            exchange,
            purpose: Purpose::Delete(waits.then_some(done)),
            deadline: Some(Instant::now() + DELETE_TIMEOUT),
        };
        if engine::start(job).is_ok() && waits {
            let _ = ended.recv_timeout(DELETE_TIMEOUT);
        }
    }
}

impl Drop for HttpTransport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn into_messages(value: Value) -> Vec<Value> {
    match value {
        Value::Array(batch) => batch,
        other => vec![other],
    }
}
