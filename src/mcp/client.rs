//! One live MCP connection (MCP 2025-06-18, JSON-RPC 2.0): requests and their answers, the
//! handshake, paginated `tools/list`, `tools/call` with progress and cancellation. Transports
//! (`stdio.rs`, `http.rs`) move messages; everything they receive comes to
//! [`Link::dispatch`], which routes answers to their waiters, progress to the running call, and
//! server-initiated requests to `server_requests.rs`.
//!
//! Waiting never blocks forever: every request has a deadline, and a transport that dies fails
//! every waiter at once with the reason.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use serde_json::{Value, json};

use crate::rpc::Rpc;

mod incoming;

/// The protocol revision we speak.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// Progress updates buffered for a call; more are dropped until the call reads them.
const PROGRESS_CAPACITY: usize = 64;
/// How long a fire-and-forget message (a notification, an answer) may take to send.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request to an MCP server did not produce a result.
#[derive(Debug, Clone, PartialEq)]
pub enum McpError {
    /// The deadline passed.
    Timeout(Duration),
    /// The server process exited or the session ended; the text says how.
    Closed(String),
    /// The server answered with a JSON-RPC error.
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// The server's message.
        message: String,
    },
    /// Sending failed (a write, an HTTP error status).
    Transport(String),
    /// The server's answer does not have the expected shape.
    Protocol(String),
}

impl std::fmt::Display for McpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            McpError::Timeout(d) => write!(f, "timed out after {}", secs(*d)),
            McpError::Closed(why) => write!(f, "connection closed: {why}"),
            McpError::Rpc { code, message } => write!(f, "server error {code}: {message}"),
            McpError::Transport(why) => f.write_str(why),
            McpError::Protocol(why) => write!(f, "invalid answer: {why}"),
        }
    }
}

/// `1.5s`, `10s`: durations in messages.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}s", s as u64)
    } else {
        format!("{s:.1}s")
    }
}

/// Moves messages to a server. Implementations deliver everything the server sends to
/// [`Link::dispatch`] and call [`Link::close`] when the connection ends.
pub trait Transport: Send + Sync {
    /// Sends one JSON-RPC message, giving up at `deadline`.
    fn send(&self, link: &Arc<Link>, message: &Value, deadline: Instant) -> Result<(), McpError>;
    /// Aborts whatever is in flight for request `id` (HTTP: its POST); a no-op where answers
    /// share one stream.
    fn abort(&self, _id: i64) {}
    /// Ends the connection for good: kills the process / ends the session. Idempotent.
    fn shutdown(&self);
}

/// A progress notification of a running call.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// `progress` so far.
    pub progress: f64,
    /// `total`, when known.
    pub total: Option<f64>,
    /// The server's message, when it sent one.
    pub message: Option<String>,
}

impl Progress {
    /// The text shown to the client: the message, else `3/10` or `3`.
    pub fn describe(&self) -> String {
        let number = |n: f64| {
            if n.fract() == 0.0 && n.abs() < 1e15 {
                format!("{}", n as i64)
            } else {
                format!("{n}")
            }
        };
        match (&self.message, self.total) {
            (Some(m), _) if !m.is_empty() => m.clone(),
            (_, Some(total)) => format!("{}/{}", number(self.progress), number(total)),
            _ => number(self.progress),
        }
    }
}

/// Who is calling: what server-initiated requests during the call are attributed to.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The thread of the calling turn.
    pub thread_id: String,
    /// The calling turn.
    pub turn_id: String,
    /// The thread's working directory (the root offered by `roots/list`).
    pub cwd: PathBuf,
    /// The thread's policy never asks the user: elicitations are declined without asking.
    pub never_ask: bool,
}

struct ActiveCall {
    id: i64,
    context: CallContext,
    /// Disconnects when the call ends, so a relayed elicitation stops waiting.
    done: Receiver<()>,
}

/// The shared core of one connection: the pending answers, progress routes, the calls in
/// flight, and the transport.
pub struct Link {
    /// The server's configured name.
    pub name: String,
    transport: Box<dyn Transport>,
    pending: Mutex<HashMap<i64, Sender<Result<Value, McpError>>>>,
    progress: Mutex<HashMap<i64, Sender<Progress>>>,
    calls: Mutex<Vec<ActiveCall>>,
    next_id: AtomicI64,
    /// Requests of the server we could not answer (it did not read them).
    unanswered: AtomicUsize,
    closed: Mutex<Option<String>>,
    is_closed: AtomicBool,
    /// The server ended our HTTP session (a 404 on it): no death, a new session is due.
    session_expired: AtomicBool,
    /// Lines the server printed that are not JSON-RPC: how many, and the last one.
    garbage: Mutex<(usize, String)>,
    /// Told once when the connection ends (the registry updates the server's status).
    on_close: Mutex<Option<CloseCallback>>,
    /// The app-server connection, for relaying elicitations.
    pub(super) rpc: Rpc,
    /// The root offered when no call is running.
    pub(super) default_cwd: PathBuf,
}

/// What a link runs once when it ends on its own.
pub type CloseCallback = Box<dyn FnOnce(&str) + Send>;

/// A request in flight; dropping it forgets the answer.
pub struct Pending {
    link: Arc<Link>,
    /// The JSON-RPC id we gave it.
    pub id: i64,
    /// The answer, once.
    pub answer: Receiver<Result<Value, McpError>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        lock(&self.link.pending).remove(&self.id);
        lock(&self.link.progress).remove(&self.id);
        lock(&self.link.calls).retain(|c| c.id != self.id);
    }
}

/// Locks a mutex, recovering from poisoning (a panicked reader must not wedge the server).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    /// A link over `transport`; nothing is sent yet.
    pub fn new(name: &str, transport: Box<dyn Transport>, rpc: Rpc, default_cwd: PathBuf) -> Self {
        Self {
            name: name.to_string(),
            transport,
            pending: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            next_id: AtomicI64::new(0),
            unanswered: AtomicUsize::new(0),
            closed: Mutex::new(None),
            is_closed: AtomicBool::new(false),
            session_expired: AtomicBool::new(false),
            garbage: Mutex::new((0, String::new())),
            on_close: Mutex::new(None),
            rpc,
            default_cwd,
        }
    }

    /// Whether the connection has ended (process exited, session gone, shut down).
    pub fn is_closed(&self) -> bool {
        self.is_closed.load(Ordering::SeqCst)
    }

    /// Why the connection ended, if it did.
    pub fn close_reason(&self) -> Option<String> {
        lock(&self.closed).clone()
    }

    /// Sets what to do once the connection ends (replacing what was set).
    pub fn on_close(&self, callback: CloseCallback) {
        *lock(&self.on_close) = Some(callback);
    }

    /// Marks the connection as ended and fails every waiter with `reason`. The first reason
    /// wins.
    pub fn close(&self, reason: &str) {
        {
            let mut closed = lock(&self.closed);
            if closed.is_none() {
                *closed = Some(reason.to_string());
            }
        }
        self.is_closed.store(true, Ordering::SeqCst);
        let waiters: Vec<_> = lock(&self.pending).drain().collect();
        for (_, tx) in waiters {
            let _ = tx.try_send(Err(McpError::Closed(reason.to_string())));
        }
        let callback = lock(&self.on_close).take();
        if let Some(callback) = callback {
            callback(reason);
        }
    }

    /// Ends the connection because the server ended its HTTP session (MCP 2025-06-18: a 404
    /// on a session means a new one must be started): the server is not dead, so starting the
    /// new session does not use its one restart.
    pub fn expire_session(&self, reason: &str) {
        self.session_expired.store(true, Ordering::SeqCst);
        self.close(reason);
    }

    /// Whether the connection ended with its HTTP session ([`Link::expire_session`]).
    pub fn is_session_expired(&self) -> bool {
        self.session_expired.load(Ordering::SeqCst)
    }

    /// Records a line of output that is not a JSON-RPC message (stdio servers printing logs or
    /// garbage on stdout), for error messages.
    pub fn note_garbage(&self, line: &str) {
        let mut garbage = lock(&self.garbage);
        garbage.0 += 1;
        garbage.1 = line.to_string();
    }

    /// `the server printed N lines that are not JSON-RPC (last: …)`, when it did.
    pub fn garbage_note(&self) -> Option<String> {
        let garbage = lock(&self.garbage);
        (garbage.0 > 0).then(|| {
            format!(
                "the server printed {} lines that are not JSON-RPC (last: {:?})",
                garbage.0, garbage.1
            )
        })
    }

    /// Fails the waiter of request `id` with `error` (a transport that lost the request).
    pub fn fail(&self, id: i64, error: McpError) {
        if let Some(tx) = lock(&self.pending).remove(&id) {
            let _ = tx.try_send(Err(error));
        }
    }

    /// Ends the connection: the transport is shut down and waiters fail (the close callback
    /// is dropped: an intended shutdown is no failure).
    pub fn shutdown(&self) {
        drop(lock(&self.on_close).take());
        self.close("shut down");
        self.transport.shutdown();
    }

    /// Sends a request; the answer arrives on the returned [`Pending`]. With `progress`,
    /// `_meta.progressToken` asks the server for progress notifications, delivered there.
    pub fn start_request(
        self: &Arc<Self>,
        method: &str,
        mut params: Value,
        progress: Option<Sender<Progress>>,
        context: Option<(CallContext, Receiver<()>)>,
        deadline: Instant,
    ) -> Result<Pending, McpError> {
        if let Some(reason) = self.close_reason() {
            return Err(McpError::Closed(reason));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = bounded(1);
        lock(&self.pending).insert(id, tx);
        if let Some(progress) = progress {
            if let Some(map) = params.as_object_mut() {
                let meta = map.entry("_meta").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.insert("progressToken".to_string(), json!(id));
                }
            }
            lock(&self.progress).insert(id, progress);
        }
        if let Some((context, done)) = context {
            lock(&self.calls).push(ActiveCall { id, context, done });
        }
        let pending = Pending {
            link: self.clone(),
            id,
            answer: rx,
        };
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.transport.send(self, &message, deadline)?;
        Ok(pending)
    }

    /// The error of a waiter whose answer channel closed: the connection ended, for its
    /// reason.
    pub fn closed_error(&self) -> McpError {
        McpError::Closed(self.close_reason().unwrap_or_else(|| "closed".into()))
    }

    /// Sends a notification (no answer).
    pub fn notify(self: &Arc<Self>, method: &str, params: Value) -> Result<(), McpError> {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.transport
            .send(self, &message, Instant::now() + NOTIFY_TIMEOUT)
    }

    /// Answers a server-initiated request.
    pub fn respond(self: &Arc<Self>, id: &Value, outcome: Result<Value, (i64, String)>) {
        let message = match outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err((code, message)) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
            }
        };
        if let Err(e) = self
            .transport
            .send(self, &message, Instant::now() + NOTIFY_TIMEOUT)
        {
            // A server that floods requests and reads nothing would flood the log too.
            let count = self.unanswered.fetch_add(1, Ordering::Relaxed) + 1;
            if count <= 5 || count.is_power_of_two() {
                crate::log::warn(&format!(
                    "mcp server {}: cannot answer its request {id} ({count} unanswered so far): {e}",
                    self.name
                ));
            }
        }
    }

    /// Gives up on request `id`: forgets it, aborts its transfer, and tells the server
    /// (`notifications/cancelled`).
    pub fn cancel(self: &Arc<Self>, id: i64, reason: &str) {
        lock(&self.pending).remove(&id);
        self.transport.abort(id);
        if self.is_closed() {
            return;
        }
        let params = json!({"requestId": id, "reason": reason});
        if let Err(e) = self.notify("notifications/cancelled", params) {
            crate::log::debug(&format!(
                "mcp server {}: cannot send the cancellation of {id}: {e}",
                self.name
            ));
        }
    }

    /// The caller context of the newest call in flight, with its end signal.
    pub(super) fn current_call(&self) -> Option<(CallContext, Receiver<()>)> {
        lock(&self.calls)
            .last()
            .map(|c| (c.context.clone(), c.done.clone()))
    }
}

/// A bounded channel for a call's progress updates.
pub fn progress_channel() -> (Sender<Progress>, Receiver<Progress>) {
    bounded(PROGRESS_CAPACITY)
}

/// The first `max` bytes of `text` (on a char boundary), with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// What the server said about itself at `initialize`.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    /// `serverInfo`.
    pub server_info: Option<Value>,
    /// `capabilities`.
    pub capabilities: Option<Value>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn progress_text() {
        let p = |progress, total, message: Option<&str>| Progress {
            progress,
            total,
            message: message.map(str::to_string),
        };
        assert_eq!(p(1.0, Some(3.0), Some("step 1")).describe(), "step 1");
        assert_eq!(p(1.0, Some(3.0), None).describe(), "1/3");
        assert_eq!(p(0.5, None, Some("")).describe(), "0.5");
    }

    #[test]
    fn durations_and_truncation() {
        assert_eq!(secs(Duration::from_secs(10)), "10s");
        assert_eq!(secs(Duration::from_millis(1500)), "1.5s");
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
