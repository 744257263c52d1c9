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

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Link, McpError, Transport, lock, truncate};
use super::config::McpTransport;
use crate::client::sse::SseParser;
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

/// The headers of every request: `Authorization` from `bearer_token_env_var`, the configured
/// `http_headers`, and `env_http_headers` read from the environment (a missing variable there
/// is skipped with a warning; a missing bearer variable is an error).
pub fn resolve_headers(
    bearer_var: Option<&str>,
    plain: &std::collections::BTreeMap<String, Secret>,
    from_env: &std::collections::BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Secret)>, McpError> {
    let mut headers: Vec<(String, Secret)> =
        plain.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (header, var) in from_env {
        match env(var).filter(|v| !v.is_empty()) {
            Some(value) => headers.push((header.clone(), Secret::new(value))),
            None => crate::log::warn(&format!(
                "env_http_headers: environment variable {var} for header {header} is not set; header left out"
            )),
        }
    }
    if let Some(var) = bearer_var {
        let token = env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
            McpError::Transport(format!(
                "environment variable {var} (bearer_token_env_var) is not set"
            ))
        })?;
        headers.push((
            "authorization".to_string(),
            Secret::new(format!("Bearer {token}")),
        ));
    }
    Ok(headers)
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
            let mut request = agent
                .delete(&shared.url)
                .config()
                .timeout_global(Some(DELETE_TIMEOUT))
                .build()
                .header("mcp-session-id", session.as_str());
            for (name, value) in &shared.headers {
                if let Ok(mut v) = ureq::http::HeaderValue::from_str(value.expose()) {
                    v.set_sensitive(true);
                    request = request.header(name.as_str(), v);
                }
            }
            let _ = request.call();
        }
    }
}

impl Drop for HttpTransport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn post(&self, link: &Arc<Link>, out: &Outgoing) {
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
        for (name, value) in &self.headers {
            let mut value = ureq::http::HeaderValue::from_str(value.expose()).map_err(|_| {
                McpError::Transport(format!("header {name}: value is not a valid header"))
            })?;
            value.set_sensitive(true);
            request = request.header(name.as_str(), value);
        }
        let response = match request.send(&out.body[..]) {
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
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
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

/// Starts the `mcp-<name>-events` thread reading the server's GET stream.
fn start_event_stream(shared: &Arc<Shared>, link: &Arc<Link>) {
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
            for (name, value) in &self.headers {
                if let Ok(mut v) = ureq::http::HeaderValue::from_str(value.expose()) {
                    v.set_sensitive(true);
                    request = request.header(name.as_str(), v);
                }
            }
            match request.call() {
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

fn into_messages(value: Value) -> Vec<Value> {
    match value {
        Value::Array(batch) => batch,
        other => vec![other],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn headers_come_from_the_table_the_environment_and_the_bearer_variable() {
        let plain: BTreeMap<String, Secret> = [("X-A".to_string(), Secret::new("1"))].into();
        let from_env: BTreeMap<String, String> = [
            ("X-B".to_string(), "B_VAR".to_string()),
            ("X-C".to_string(), "MISSING".to_string()),
        ]
        .into();
        let env = |k: &str| match k {
            "B_VAR" => Some("b".to_string()),
            "TOKEN" => Some("tok".to_string()),
            _ => None,
        };
        let headers = resolve_headers(Some("TOKEN"), &plain, &from_env, &env).unwrap();
        let shown: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                ("X-A".to_string(), "1".to_string()),
                ("X-B".to_string(), "b".to_string()),
                ("authorization".to_string(), "Bearer tok".to_string()),
            ]
        );
        let err = resolve_headers(Some("NOPE"), &plain, &from_env, &env).unwrap_err();
        assert!(err.to_string().contains("NOPE"), "{err}");
    }
}
