//! A scriptable MCP server over streamable HTTP (MCP 2025-06-18 §Transports) on 127.0.0.1, for
//! the transport's integration tests (`suite/mcp_http.rs`). Raw `TcpListener`, one thread per
//! connection, HTTP/1.1 with keep-alive: a request line, headers, a `Content-Length` or chunked
//! body. Every request is recorded (connection, method, path, headers, body), and so is every
//! connection the client closed, so tests can see a cancelled request's connection end.
//!
//! It answers `initialize` (with a new `Mcp-Session-Id` each time, unless sessions are off),
//! notifications and answers with 202, `tools/list` with its tools, and `tools/call` by each
//! tool's [`Behaviour`]: JSON with a length, JSON chunked, an SSE stream of [`Step`]s before the
//! result, never, after a delay, or a raw body. A GET for the event stream is refused (405) or
//! opens a stream the test pushes messages into ([`McpHttpMock::push_event`]) or closes. An
//! expired session ([`McpHttpMock::expire_sessions`]) is answered 404; a `CONNECT` is accepted
//! (the mock is its own proxy: [`McpHttpMock::proxy_url`]); a request without the
//! session, 400; a POST without the `Accept` or `Content-Type` the spec requires, 406 / 415.
//!
//! Every loop is bounded; dropping the mock stops the listener and joins every thread.
//!
//! This file holds the scripting and inspection API; `conn.rs` reads requests and writes bytes
//! on one connection (plain or TLS); `serve.rs` accepts connections and answers each request.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde_json::{Value, json};

use super::mock_responses::RecordedRequest;

mod conn;
mod serve;

/// How long one connection lives at most (a held request, an event stream, keep-alive idling).
const MAX_CONNECTION: Duration = Duration::from_secs(120);
/// Connections accepted at most; later ones are closed at once (a reconnection storm cannot
/// pile up threads in the test process).
const MAX_CONNECTIONS: usize = 500;
/// The slice in which waits look at the stop flag and the peer.
const SLICE: Duration = Duration::from_millis(20);
/// Longest wait of a [`Step::AwaitAnswer`] or a [`Step::Gate`].
const MAX_AWAIT: Duration = Duration::from_secs(20);
/// Largest request head or body read.
const MAX_REQUEST_BYTES: usize = 32 << 20;

/// How `tools/call` of one tool is answered.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// `200 application/json` with `Content-Length`: a result whose content is this text.
    Json(String),
    /// The same, with `Transfer-Encoding: chunked` in several chunks.
    Chunked(String),
    /// The same with neither: the body ends when the mock closes the connection.
    UntilClose(String),
    /// A JSON batch: a log notification, then the result (MCP 2025-03-26 allowed batches).
    Batch(String),
    /// `Chunked` with a chunk extension on every chunk and a trailer after the last.
    ChunkedWithTrailer(String),
    /// `Json` after an interim `100 Continue` response (RFC 9110 §15.2: clients must take 1xx
    /// responses they did not ask for).
    AfterContinue(String),
    /// `200 text/event-stream`: the steps, then the result with this text, then the end.
    Sse(Vec<Step>, String),
    /// Nothing: the connection is held until the client closes it (recorded).
    Hang,
    /// `Json` after this pause.
    Delayed(Duration, String),
    /// The steps sent on the open GET event streams (not on this POST), then `Json`.
    JsonAfterEvents(Vec<Step>, String),
    /// An SSE answer written a few bytes at a time, head included: every piece of the
    /// response arrives in reads of its own.
    Dribble(String),
    /// `200 text/event-stream`: the steps, then the end of the stream without any result.
    SseWithoutResult(Vec<Step>),
    /// `200 text/event-stream`: the steps, then the connection is cut mid-body (no end chunk).
    SseThenDrop(Vec<Step>),
    /// These bytes as the whole response, then the connection closed (malformed HTTP).
    Bytes(Vec<u8>),
    /// This status, content type and body, as is (not JSON, too large, an error page…).
    Raw {
        /// The status code.
        status: u16,
        /// The `Content-Type`.
        content_type: String,
        /// The body.
        body: Vec<u8>,
    },
}

/// What an SSE answer sends before its result.
#[derive(Clone, Debug)]
pub enum Step {
    /// `notifications/progress` with the request's progress token.
    Progress {
        /// `progress`.
        progress: f64,
        /// `total`.
        total: Option<f64>,
        /// `message`.
        message: String,
    },
    /// Any message (a server request, a notification), as is.
    Send(Value),
    /// Waits until the client POSTed the answer to the server request `id` (bounded).
    AwaitAnswer(Value),
    /// Waits until the test opens the gate of this name ([`McpHttpMock::open_gate`], bounded):
    /// the test decides when the answer goes, e.g. once it saw what came before.
    Gate(String),
}

/// What a GET for the event stream gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Events {
    /// An SSE stream, open until the test closes it.
    Open,
    /// `405 Method Not Allowed`: the server has no event stream.
    Refuse,
    /// This error status, every time (a broken stream endpoint).
    Fail(u16),
}

/// One request as the mock read it: what [`RecordedRequest`] holds (method, path, headers, body;
/// `header()`, `text()`), and the connection it came on.
#[derive(Clone, Debug)]
pub struct Request {
    /// The connection it came on (numbered from 1 in accept order).
    pub conn: u64,
    request: RecordedRequest,
}

impl std::ops::Deref for Request {
    type Target = RecordedRequest;

    fn deref(&self) -> &RecordedRequest {
        &self.request
    }
}

impl Request {
    /// The body as JSON (`Null` when it is not: the mock also records GETs, CONNECTs and
    /// broken bodies).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The JSON-RPC method of a POSTed message, if it has one.
    pub fn rpc_method(&self) -> Option<String> {
        self.json()
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Whether this is a POST of JSON-RPC `method`.
    pub fn is_rpc(&self, method: &str) -> bool {
        self.method == "POST" && self.rpc_method().as_deref() == Some(method)
    }

    /// Whether this POSTs the answer to the server request `id` (a message without method).
    pub fn is_answer_to(&self, id: &Value) -> bool {
        let body = self.json();
        self.method == "POST" && body.get("method").is_none() && body.get("id") == Some(id)
    }
}

/// A mock being configured.
pub struct Builder {
    tools: Vec<(String, Behaviour)>,
    sessions: bool,
    protocol_version: String,
    events: Events,
    tls: bool,
    initialize_hangs: bool,
}

impl Builder {
    /// Adds a tool answered by `behaviour`.
    pub fn tool(mut self, name: &str, behaviour: Behaviour) -> Self {
        self.tools.push((name.to_string(), behaviour));
        self
    }

    /// Without sessions: no `Mcp-Session-Id` at `initialize`, none checked.
    pub fn without_sessions(mut self) -> Self {
        self.sessions = false;
        self
    }

    /// The `protocolVersion` the mock answers `initialize` with (default `2025-06-18`).
    pub fn protocol_version(mut self, version: &str) -> Self {
        self.protocol_version = version.to_string();
        self
    }

    /// What a GET for the event stream gets (default [`Events::Open`]).
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Never answers `initialize` (the connection is held until the client closes it).
    pub fn initialize_hangs(mut self) -> Self {
        self.initialize_hangs = true;
        self
    }

    /// Serves HTTPS with the test certificate (`tests/fixtures/tls/`; the client trusts it
    /// through `CODEX_CA_CERTIFICATE` = [`super::mock_responses::test_ca_path`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Listens on a free loopback port.
    pub fn start(self) -> McpHttpMock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                tools: self.tools,
                ..State::default()
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            sessions: self.sessions,
            protocol_version: self.protocol_version,
            events: self.events,
            initialize_hangs: self.initialize_hangs,
            tls: self.tls.then(super::mock_responses::tls_config),
            workers: Mutex::new(Vec::new()),
        });
        let acceptor_shared = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("mcp-http-mock".into())
            .spawn(move || serve::accept(&listener, &acceptor_shared))
            .unwrap();
        McpHttpMock {
            shared,
            port,
            acceptor: Some(acceptor),
        }
    }
}

#[derive(Default)]
struct State {
    tools: Vec<(String, Behaviour)>,
    requests: Vec<Request>,
    /// Connections the client closed (EOF or reset seen).
    closed: HashSet<u64>,
    accepted: u64,
    /// Sessions handed out, in order.
    issued: Vec<String>,
    expired: HashSet<String>,
    /// The open event streams: their connection and their command queue.
    streams: Vec<(u64, Sender<StreamCommand>)>,
    /// Gates the test opened.
    gates: HashSet<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
    sessions: bool,
    protocol_version: String,
    events: Events,
    initialize_hangs: bool,
    tls: Option<Arc<rustls::ServerConfig>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn push_event(&self, message: &Value) -> usize {
        self.state()
            .streams
            .iter()
            .filter(|(_, tx)| tx.send(StreamCommand::Event(message.clone())).is_ok())
            .count()
    }

    fn mark_closed(&self, conn: u64) {
        self.state().closed.insert(conn);
        self.changed.notify_all();
    }
}

enum StreamCommand {
    Event(Value),
    Close,
}

/// The running mock; dropping it stops the listener and every connection.
pub struct McpHttpMock {
    shared: Arc<Shared>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
}

impl McpHttpMock {
    /// A mock with no tools, sessions on, protocol `2025-06-18`, an open event stream.
    pub fn builder() -> Builder {
        Builder {
            tools: Vec::new(),
            sessions: true,
            protocol_version: "2025-06-18".to_string(),
            events: Events::Open,
            tls: false,
            initialize_hangs: false,
        }
    }

    /// The MCP endpoint (`https://` with [`Builder::tls`]).
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}/mcp", self.port)
    }

    /// The mock as an HTTP proxy (`CONNECT` tunnels end at the mock, which serves what comes
    /// through them), for `HTTP_PROXY`.
    pub fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The endpoint by the host name `localhost` (which the client must look up).
    pub fn url_as_localhost(&self) -> String {
        self.url().replacen("127.0.0.1", "localhost", 1)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.state().requests.clone()
    }

    /// The POSTs of JSON-RPC `method` so far.
    pub fn rpc(&self, method: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_rpc(method))
            .collect()
    }

    /// The requests of HTTP `method` (`GET`, `DELETE`) so far.
    pub fn of_method(&self, method: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method)
            .collect()
    }

    /// The session ids handed out, in order.
    pub fn sessions(&self) -> Vec<String> {
        self.shared.state().issued.clone()
    }

    /// Waits (at most `timeout`) until `done` holds for the requests so far; returns them.
    /// Panics, naming `what`, when it does not.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Request]) -> bool,
    ) -> Vec<Request> {
        let (state, held) = self.wait_state(timeout, |s| done(&s.requests));
        assert!(
            held,
            "mcp mock: timed out waiting for {what}; requests: {:?}",
            summary(&state.requests)
        );
        state.requests.clone()
    }

    /// Waits until the POST of JSON-RPC `method` number `n` (from 1) arrived; returns it.
    pub fn wait_rpc(&self, method: &str, n: usize, timeout: Duration) -> Request {
        let found = self.wait_for(&format!("{method} #{n}"), timeout, |requests| {
            requests.iter().filter(|r| r.is_rpc(method)).count() >= n
        });
        found
            .into_iter()
            .filter(|r| r.is_rpc(method))
            .nth(n - 1)
            .unwrap()
    }

    /// Whether the client closed connection `conn`, waiting at most `timeout` for it.
    pub fn wait_closed(&self, conn: u64, timeout: Duration) -> bool {
        self.wait_state(timeout, |s| s.closed.contains(&conn)).1
    }

    /// Waits (at most `timeout`) until `n` event streams are open at once; panics otherwise.
    pub fn wait_event_streams(&self, n: usize, timeout: Duration) {
        let (state, held) = self.wait_state(timeout, |s| s.streams.len() >= n);
        assert!(
            held,
            "mcp mock: {} event streams open, want {n}; requests: {:?}",
            state.streams.len(),
            summary(&state.requests)
        );
    }

    /// Waits (at most `timeout`) until `done` holds for the mock's state; returns the state and
    /// whether it does.
    fn wait_state(
        &self,
        timeout: Duration,
        done: impl Fn(&State) -> bool,
    ) -> (MutexGuard<'_, State>, bool) {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (state, false);
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        (state, true)
    }

    /// Sends `message` on every open event stream; returns on how many.
    pub fn push_event(&self, message: Value) -> usize {
        self.shared.push_event(&message)
    }

    /// Ends every open event stream (the chunked body is terminated and the connection
    /// closed).
    pub fn close_event_streams(&self) {
        for (_, tx) in self.shared.state().streams.drain(..) {
            let _ = tx.send(StreamCommand::Close);
        }
    }

    /// Opens gate `name`: the answers waiting at [`Step::Gate`] of that name go on.
    pub fn open_gate(&self, name: &str) {
        self.shared.state().gates.insert(name.to_string());
        self.shared.changed.notify_all();
    }

    /// Ends every session handed out so far: requests carrying one are answered 404 from now
    /// on; the next `initialize` gets a new one.
    pub fn expire_sessions(&self) {
        let mut state = self.shared.state();
        let issued = state.issued.clone();
        state.expired.extend(issued);
    }
}

impl Drop for McpHttpMock {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the acceptor
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let workers = std::mem::take(&mut *self.shared.workers.lock().unwrap());
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// `POST initialize`, `GET`, … for failure messages.
fn summary(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            let body = r.json();
            let what = body
                .get("method")
                .map(|m| m.to_string())
                .or_else(|| body.get("id").map(|id| format!("answer {id}")))
                .unwrap_or_default();
            format!("#{} {} {what}", r.conn, r.method)
        })
        .collect()
}
