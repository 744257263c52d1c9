//! The streamable-HTTP transport (MCP 2025-06-18 §Transports): every message is POSTed to the
//! endpoint; a request's answer comes back as one JSON body or as a server-sent-event stream
//! that may carry the server's own requests and progress before the answer. The
//! `Mcp-Session-Id` the server gives at `initialize` and the negotiated `MCP-Protocol-Version`
//! go with every later message; a 404 on a session means it expired (the link closes and the
//! registry reconnects on the next call).
//!
//! Each POST runs on its own short-lived thread (`mcp-<name>-post`) with a whole-exchange
//! timeout from the caller's deadline, through the project's abortable agent
//! (`client::net`), so a cancelled call closes its connection at once. Once initialized, one
//! thread (`mcp-<name>-events`) keeps the server's GET event stream open, where servers send
//! what is not an answer to a POST (FastMCP sends progress there); a server without it (405)
//! costs no thread while idle. HTTP plumbing (proxies, TLS, abortable connects) and SSE
//! framing are reused from `client/`.
//!
//! This file holds the transport (sending, aborting, ending the session); `headers.rs` resolves
//! the configured headers; `post.rs` runs one POST and reads its answer; `events.rs` keeps the GET
//! event stream.

mod events;
mod headers;
mod post;

use events::start_event_stream;
pub use headers::resolve_headers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Link, McpError, Transport, lock, truncate};
use super::config::McpTransport;
use crate::secret::Secret;

/// Largest JSON answer or SSE event accepted.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// POSTs in flight per server; more are refused (a server that never answers cannot make us
/// pile up threads).
const MAX_IN_FLIGHT: usize = 32;
/// How long ending the session (DELETE) may take at shutdown.
const DELETE_TIMEOUT: Duration = Duration::from_secs(1);
/// The key of the GET stream's agent among those in flight.
const EVENTS_KEY: i64 = i64::MIN;
/// Failed attempts in a row after which the GET stream is given up.
const MAX_EVENT_STREAM_FAILURES: u32 = 5;
/// Read size of the event stream: it waits in that read while its server is idle.
const EVENT_READ_BYTES: usize = 1024;

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
        in_flight: Mutex::new(HashMap::new()),
        count: AtomicUsize::new(0),
        next_key: std::sync::atomic::AtomicI64::new(-1),
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
    /// Agents of POSTs in flight by request id (notifications and answers use negative keys).
    in_flight: Mutex<HashMap<i64, ureq::Agent>>,
    count: AtomicUsize,
    /// Keys of POSTs that are not requests (counting down from -1).
    next_key: std::sync::atomic::AtomicI64,
    closed: AtomicBool,
}

struct HttpTransport(Arc<Shared>);

/// What one POST carries.
struct Outgoing {
    body: Vec<u8>,
    /// The request id when the message is a request (its answer is awaited).
    request_id: Option<i64>,
    is_initialize: bool,
    deadline: Instant,
}

impl Transport for HttpTransport {
    fn send(&self, link: &Arc<Link>, message: &Value, deadline: Instant) -> Result<(), McpError> {
        let shared = &self.0;
        if shared.closed.load(Ordering::SeqCst) {
            return Err(McpError::Closed("the session was ended".into()));
        }
        if shared.count.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            shared.count.fetch_sub(1, Ordering::SeqCst);
            return Err(McpError::Transport(format!(
                "more than {MAX_IN_FLIGHT} requests in flight"
            )));
        }
        let is_request = message.get("method").is_some();
        if message.get("method").and_then(Value::as_str) == Some("notifications/initialized") {
            start_event_stream(shared, link);
        }
        let outgoing = Outgoing {
            body: serde_json::to_vec(message)
                .map_err(|e| McpError::Transport(format!("cannot encode a message: {e}")))?,
            request_id: message
                .get("id")
                .and_then(Value::as_i64)
                .filter(|_| is_request),
            is_initialize: message.get("method").and_then(Value::as_str) == Some("initialize"),
            deadline,
        };
        let (shared, link) = (shared.clone(), link.clone());
        std::thread::Builder::new()
            .name(format!("mcp-{}-post", shared.name))
            .spawn(move || {
                shared.post(&link, &outgoing);
                shared.count.fetch_sub(1, Ordering::SeqCst);
            })
            .map(|_| ())
            .map_err(|e| {
                self.0.count.fetch_sub(1, Ordering::SeqCst);
                McpError::Transport(format!("cannot start a request thread: {e}"))
            })
    }

    fn abort(&self, id: i64) {
        if let Some(agent) = lock(&self.0.in_flight).remove(&id) {
            agent.shutdown();
        }
    }

    fn shutdown(&self) {
        let shared = &self.0;
        if shared.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        for (_, agent) in lock(&shared.in_flight).drain() {
            agent.shutdown();
        }
        // Ending the session is courtesy: best effort, briefly.
        if let Some(session) = lock(&shared.session).take() {
            let agent = crate::client::net::agent(&shared.url, Arc::new(AtomicBool::new(false)));
            let request = agent
                .delete(&shared.url)
                .config()
                .timeout_global(Some(DELETE_TIMEOUT))
                .build()
                .header("mcp-session-id", session.as_str());
            let _ = headers::add_headers(request, &shared.headers).call();
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
