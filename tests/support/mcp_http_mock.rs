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
//! expired session ([`McpHttpMock::expire_sessions`]) is answered 404; a request without the
//! session, 400; a POST without the `Accept` or `Content-Type` the spec requires, 406 / 415.
//!
//! Every loop is bounded; dropping the mock stops the listener and joins every thread.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde_json::{Value, json};

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
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// How `tools/call` of one tool is answered.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// `200 application/json` with `Content-Length`: a result whose content is this text.
    Json(String),
    /// The same, with `Transfer-Encoding: chunked` in several chunks.
    Chunked(String),
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
}

/// One request as the mock read it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The connection it came on (numbered from 1 in accept order).
    pub conn: u64,
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// The path.
    pub path: String,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not).
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
            tls: self.tls.then(super::mock_responses::tls_config),
            workers: Mutex::new(Vec::new()),
        });
        let acceptor_shared = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("mcp-http-mock".into())
            .spawn(move || accept(&listener, &acceptor_shared))
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

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.state().requests.clone()
    }

    /// The POSTs of JSON-RPC `method` so far.
    pub fn rpc(&self, method: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.rpc_method().as_deref() == Some(method))
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
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        loop {
            if done(&state.requests) {
                return state.requests.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "mcp mock: timed out waiting for {what}; requests: {:?}",
                summary(&state.requests)
            );
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until the POST of JSON-RPC `method` number `n` (from 1) arrived; returns it.
    pub fn wait_rpc(&self, method: &str, n: usize, timeout: Duration) -> Request {
        let found = self.wait_for(&format!("{method} #{n}"), timeout, |requests| {
            requests
                .iter()
                .filter(|r| r.method == "POST" && r.rpc_method().as_deref() == Some(method))
                .count()
                >= n
        });
        found
            .into_iter()
            .filter(|r| r.method == "POST" && r.rpc_method().as_deref() == Some(method))
            .nth(n - 1)
            .unwrap()
    }

    /// Whether the client closed connection `conn`, waiting at most `timeout` for it.
    pub fn wait_closed(&self, conn: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        while !state.closed.contains(&conn) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Waits (at most `timeout`) until `n` event streams are open at once; panics otherwise.
    pub fn wait_event_streams(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        while state.streams.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "mcp mock: {} event streams open, want {n}; requests: {:?}",
                state.streams.len(),
                summary(&state.requests)
            );
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
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

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped() {
            return;
        }
        let Ok(stream) = stream else { continue };
        let conn = {
            let mut state = shared.state();
            state.accepted += 1;
            state.accepted
        };
        if conn as usize > MAX_CONNECTIONS {
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let worker_shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name(format!("mcp-http-mock-{conn}"))
            .spawn(move || serve(stream, conn, &worker_shared));
        if let Ok(worker) = worker {
            shared.workers.lock().unwrap().push(worker);
        }
    }
}

/// What reading from the peer gave.
enum Input {
    Request(Request),
    /// The peer closed (EOF or an error).
    Closed,
    /// The mock stops, the connection outlived [`MAX_CONNECTION`], or the request is broken.
    Stopped,
}

/// A plain or TLS connection.
trait Io: Read + Write + Send {
    /// The TCP socket underneath (timeouts, shutdown).
    fn tcp(&self) -> &TcpStream;
}

impl Io for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Io for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// A connection's read side: bytes read ahead are kept for the next request.
struct Conn {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
    id: u64,
    deadline: Instant,
}

impl Conn {
    /// Reads more bytes (waiting at most one [`SLICE`]): `Some(true)` when some came,
    /// `Some(false)` when none yet, `None` at EOF or on an error.
    fn fill(&mut self) -> Option<bool> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => None,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                Some(false)
            }
            Err(_) => None,
        }
    }

    /// Reads until `ready(buf)` gives a length, bounded by the stop flag and the deadline.
    fn read_until(
        &mut self,
        shared: &Shared,
        ready: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Vec<u8>, Input> {
        loop {
            if let Some(n) = ready(&self.buf) {
                return Ok(self.buf.drain(..n).collect());
            }
            if shared.stopped()
                || Instant::now() > self.deadline
                || self.buf.len() > MAX_REQUEST_BYTES
            {
                return Err(Input::Stopped);
            }
            if self.fill().is_none() {
                return Err(Input::Closed);
            }
        }
    }

    fn request(&mut self, shared: &Shared) -> Input {
        match self.read_request(shared) {
            Ok(request) => Input::Request(request),
            Err(input) => input,
        }
    }

    fn read_request(&mut self, shared: &Shared) -> Result<Request, Input> {
        let head = self.read_until(shared, |b| {
            b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
        })?;
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split_whitespace();
        let method = first.next().unwrap_or_default().to_string();
        let path = first.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let mut body = Vec::new();
        if let Some(length) = find("content-length") {
            let length: usize = length.parse().map_err(|_| Input::Stopped)?;
            body = self.read_until(shared, |b| (b.len() >= length).then_some(length))?;
        } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let line = self.read_until(shared, |b| {
                    b.windows(2).position(|w| w == b"\r\n").map(|p| p + 2)
                })?;
                let line = String::from_utf8_lossy(&line);
                let size = line.trim().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size, 16).map_err(|_| Input::Stopped)?;
                let chunk =
                    self.read_until(shared, |b| (b.len() >= size + 2).then_some(size + 2))?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        Ok(Request {
            conn: self.id,
            method,
            path,
            headers,
            body,
        })
    }

    /// Waits one slice for the peer: false once it closed.
    fn is_open(&mut self) -> bool {
        self.fill().is_some()
    }

    fn write(&mut self, bytes: &[u8]) -> bool {
        // A write may meet the read timeout of the TLS handshake's reads: retried, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(0) => return false,
                Ok(n) => rest = &rest[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) && Instant::now() < deadline => {}
                Err(_) => return false,
            }
        }
        self.stream.flush().is_ok()
    }
}

fn serve(stream: TcpStream, id: u64, shared: &Arc<Shared>) {
    let _ = stream.set_read_timeout(Some(SLICE));
    // Small writes (a dribbled answer) go at once, not when the previous one is acknowledged.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let stream: Box<dyn Io> = match &shared.tls {
        Some(config) => match rustls::ServerConnection::new(config.clone()) {
            Ok(tls) => Box::new(rustls::StreamOwned::new(tls, stream)),
            Err(_) => return,
        },
        None => Box::new(stream),
    };
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        id,
        deadline: Instant::now() + MAX_CONNECTION,
    };
    loop {
        let request = match conn.request(shared) {
            Input::Request(request) => request,
            Input::Closed => {
                shared.mark_closed(id);
                break;
            }
            Input::Stopped => break,
        };
        let wants_close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        {
            let mut state = shared.state();
            state.requests.push(request.clone());
        }
        shared.changed.notify_all();
        match respond(&mut conn, &request, shared) {
            Next::KeepAlive if !wants_close => {}
            Next::KeepAlive | Next::Close => break,
            Next::PeerClosed => {
                shared.mark_closed(id);
                break;
            }
        }
    }
    let _ = conn.stream.tcp().shutdown(Shutdown::Both);
}

/// What becomes of a connection after an answer.
enum Next {
    KeepAlive,
    /// The mock closes it.
    Close,
    /// The client closed it meanwhile.
    PeerClosed,
}

fn respond(conn: &mut Conn, request: &Request, shared: &Shared) -> Next {
    if shared.sessions
        && let Some(refusal) = session_refusal(request, shared)
    {
        return refusal.send(conn);
    }
    match request.method.as_str() {
        "GET" => event_stream(conn, request, shared),
        "DELETE" => Answer::status(200, "").send(conn),
        "POST" => post(conn, request, shared),
        _ => Answer::status(405, "").send(conn),
    }
}

/// 400 without a session, 404 for an expired or unknown one (`initialize` needs none).
fn session_refusal(request: &Request, shared: &Shared) -> Option<Answer> {
    if request.method == "POST" && request.rpc_method().as_deref() == Some("initialize") {
        return None;
    }
    let state = shared.state();
    match request.header("mcp-session-id") {
        None => Some(Answer::status(400, "missing Mcp-Session-Id")),
        Some(id) if state.expired.contains(id) || !state.issued.iter().any(|s| s == id) => {
            Some(Answer::json(
                404,
                &json!({"jsonrpc": "2.0", "id": null,
                        "error": {"code": -32001, "message": "Session not found"}}),
            ))
        }
        Some(_) => None,
    }
}

fn post(conn: &mut Conn, request: &Request, shared: &Shared) -> Next {
    let accept = request.header("accept").unwrap_or_default();
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return Answer::status(
            406,
            "Accept must list application/json and text/event-stream",
        )
        .send(conn);
    }
    if !request
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return Answer::status(415, "Content-Type must be application/json").send(conn);
    }
    let message = request.json();
    let (Some(method), Some(id)) = (
        message.get("method").and_then(Value::as_str),
        message.get("id").cloned(),
    ) else {
        // A notification or an answer.
        return Answer::status(202, "").send(conn);
    };
    let result = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    match method {
        "initialize" => {
            let mut answer = Answer::json(
                200,
                &result(json!({
                    "protocolVersion": shared.protocol_version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "mcp-http-mock", "version": "1.0.0"},
                })),
            );
            if shared.sessions {
                let mut state = shared.state();
                let session = format!("mock-session-{}", state.issued.len() + 1);
                state.issued.push(session.clone());
                answer.headers.push(("Mcp-Session-Id".into(), session));
            }
            answer.send(conn)
        }
        "tools/list" => {
            let tools: Vec<Value> = shared
                .state()
                .tools
                .iter()
                .map(|(name, _)| {
                    json!({
                        "name": name,
                        "description": format!("mock tool {name}"),
                        "inputSchema": {"type": "object", "properties": {}},
                        "annotations": {"readOnlyHint": true},
                    })
                })
                .collect();
            Answer::json(200, &result(json!({"tools": tools}))).send(conn)
        }
        "tools/call" => {
            let name = message
                .pointer("/params/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let behaviour = shared
                .state()
                .tools
                .iter()
                .find(|(tool, _)| tool == name)
                .map(|(_, b)| b.clone());
            let Some(behaviour) = behaviour else {
                let error = json!({"jsonrpc": "2.0", "id": id,
                                   "error": {"code": -32602, "message": format!("unknown tool {name}")}});
                return Answer::json(200, &error).send(conn);
            };
            let token = message
                .pointer("/params/_meta/progressToken")
                .cloned()
                .unwrap_or(Value::Null);
            call(conn, shared, behaviour, &token, result)
        }
        other => {
            let error = json!({"jsonrpc": "2.0", "id": id,
                               "error": {"code": -32601, "message": format!("Method not found: {other}")}});
            Answer::json(200, &error).send(conn)
        }
    }
}

/// A tool's result whose content is `text`.
fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

fn call(
    conn: &mut Conn,
    shared: &Shared,
    behaviour: Behaviour,
    token: &Value,
    result: impl Fn(Value) -> Value,
) -> Next {
    match behaviour {
        Behaviour::Json(text) => Answer::json(200, &result(text_result(&text))).send(conn),
        Behaviour::Chunked(text) => {
            let body = result(text_result(&text)).to_string().into_bytes();
            let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            for part in body.chunks(body.len().div_ceil(3).max(1)) {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            sent(conn.write(&out))
        }
        Behaviour::Sse(steps, text) => {
            if !conn.write(SSE_HEAD.as_bytes()) {
                return Next::PeerClosed;
            }
            if let Some(next) = run_steps(steps, token, shared, &mut |m| conn.write(&sse_chunk(m)))
            {
                return next;
            }
            let done = conn.write(&sse_chunk(&result(text_result(&text))));
            sent(done && conn.write(b"0\r\n\r\n"))
        }
        Behaviour::SseWithoutResult(steps) => {
            if !conn.write(SSE_HEAD.as_bytes()) {
                return Next::PeerClosed;
            }
            if let Some(next) = run_steps(steps, token, shared, &mut |m| conn.write(&sse_chunk(m)))
            {
                return next;
            }
            sent(conn.write(b"0\r\n\r\n"))
        }
        Behaviour::JsonAfterEvents(steps, text) => {
            let on_streams = &mut |m: &Value| shared.push_event(m) > 0;
            if run_steps(steps, token, shared, on_streams).is_some() {
                return Next::Close;
            }
            Answer::json(200, &result(text_result(&text))).send(conn)
        }
        Behaviour::Dribble(text) => {
            let mut out = SSE_HEAD.as_bytes().to_vec();
            out.extend_from_slice(&sse_chunk(&result(text_result(&text))));
            out.extend_from_slice(b"0\r\n\r\n");
            for piece in out.chunks(5) {
                if shared.stopped() || !conn.write(piece) {
                    return Next::PeerClosed;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Next::KeepAlive
        }
        Behaviour::Hang => {
            while !shared.stopped() && Instant::now() < conn.deadline {
                if !conn.is_open() {
                    return Next::PeerClosed;
                }
            }
            Next::Close
        }
        Behaviour::Delayed(pause, text) => {
            let until = Instant::now() + pause;
            while Instant::now() < until {
                if shared.stopped() {
                    return Next::Close;
                }
                std::thread::sleep(SLICE);
            }
            Answer::json(200, &result(text_result(&text))).send(conn)
        }
        Behaviour::Raw {
            status,
            content_type,
            body,
        } => Answer {
            status,
            headers: vec![("Content-Type".into(), content_type)],
            body,
        }
        .send(conn),
    }
}

/// Sends each step's message through `send` (false: it could not be sent); `None` when all
/// went, else what becomes of the connection.
fn run_steps(
    steps: Vec<Step>,
    token: &Value,
    shared: &Shared,
    send: &mut dyn FnMut(&Value) -> bool,
) -> Option<Next> {
    for step in steps {
        let message = match step {
            Step::Progress {
                progress,
                total,
                message,
            } => json!({"jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": token, "progress": progress,
                                   "total": total, "message": message}}),
            Step::Send(message) => message,
            Step::AwaitAnswer(id) => {
                if !await_state(shared, |s| s.requests.iter().any(|r| r.is_answer_to(&id))) {
                    return Some(Next::Close);
                }
                continue;
            }
            Step::Gate(name) => {
                if !await_state(shared, |s| s.gates.contains(&name)) {
                    return Some(Next::Close);
                }
                continue;
            }
        };
        if !send(&message) {
            return Some(Next::PeerClosed);
        }
    }
    None
}

/// Waits (at most [`MAX_AWAIT`]) until `done` holds for the mock's state; false if it did not.
fn await_state(shared: &Shared, done: impl Fn(&State) -> bool) -> bool {
    let deadline = Instant::now() + MAX_AWAIT;
    let mut state = shared.state();
    while !done(&state) {
        if shared.stopped() || Instant::now() > deadline {
            return false;
        }
        state = shared
            .changed
            .wait_timeout(state, SLICE)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";

/// One SSE event carrying `message`, as one chunk.
fn sse_chunk(message: &Value) -> Vec<u8> {
    let event = format!("event: message\ndata: {message}\n\n");
    format!("{:x}\r\n{event}\r\n", event.len()).into_bytes()
}

fn sent(ok: bool) -> Next {
    if ok {
        Next::KeepAlive
    } else {
        Next::PeerClosed
    }
}

/// A GET: 405, or an event stream fed by the test until it closes it, the client leaves, or
/// the mock stops.
fn event_stream(conn: &mut Conn, request: &Request, shared: &Shared) -> Next {
    if shared.events == Events::Refuse {
        return Answer::status(405, "").send(conn);
    }
    if !request
        .header("accept")
        .is_some_and(|v| v.contains("text/event-stream"))
    {
        return Answer::status(406, "Accept must list text/event-stream").send(conn);
    }
    if !conn.write(SSE_HEAD.as_bytes()) {
        return Next::PeerClosed;
    }
    let (tx, rx): (Sender<StreamCommand>, Receiver<StreamCommand>) = unbounded();
    shared.state().streams.push((conn.id, tx));
    shared.changed.notify_all();
    let next = loop {
        if shared.stopped() || Instant::now() > conn.deadline {
            break Next::Close;
        }
        match rx.try_recv() {
            Ok(StreamCommand::Event(message)) => {
                if !conn.write(&sse_chunk(&message)) {
                    break Next::PeerClosed;
                }
                continue;
            }
            Ok(StreamCommand::Close) => {
                let _ = conn.write(b"0\r\n\r\n");
                break Next::Close;
            }
            Err(_) => {}
        }
        if !conn.is_open() {
            break Next::PeerClosed;
        }
    };
    shared.state().streams.retain(|(id, _)| *id != conn.id);
    shared.changed.notify_all();
    next
}

/// A whole answer with a length.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn status(status: u16, text: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    fn send(self, conn: &mut Conn) -> Next {
        let reason = match self.status {
            200 => "OK",
            202 => "Accepted",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            500 => "Internal Server Error",
            406 => "Not Acceptable",
            415 => "Unsupported Media Type",
            _ => "Status",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-length: {}\r\n",
            self.status,
            self.body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        sent(conn.write(&out))
    }
}
