//! A scripted HTTP server on 127.0.0.1 standing in for the Responses API (and, for auth tests,
//! the OAuth issuer): FIFOs of replies per path, every request recorded with headers and body.
//! Only the model is mocked; the server under test talks real HTTP to it — or real HTTPS
//! ([`MockServer::start_tls`]), with the test CA of `tests/fixtures/tls/` that the server under
//! test is told to trust through `CODEX_CA_CERTIFICATE` ([`test_ca_path`]).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::app_server::AppServer;

/// Longest a stalled reply holds its connection before giving up on its own.
const MAX_STALL: Duration = Duration::from_secs(120);

/// Computes a reply from the request (for replies that depend on headers, e.g. 401 on demand).
pub type ReplyFn = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

/// What the mock answers one request with.
#[derive(Clone)]
pub enum Reply {
    /// `200 text/event-stream`, the events sent as chunks, then the end given.
    Sse {
        /// Preformatted SSE events (`event: …\ndata: …\n\n`).
        events: Vec<String>,
        /// Pause before each event.
        delay: Duration,
        /// What happens after the last event.
        end: End,
    },
    /// A plain HTTP status with headers and body.
    Status {
        /// HTTP status code.
        code: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Body text.
        body: String,
    },
    /// Accept the request and never answer (until the client leaves or the mock stops).
    Hang,
    /// Decide per request.
    Dynamic(ReplyFn),
    /// The inner reply with these extra response headers (e.g. `x-codex-*` on an SSE reply).
    WithHeaders(Vec<(String, String)>, Box<Reply>),
}

/// How an SSE reply ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    /// Terminate the chunked body properly and close.
    Close,
    /// Keep the connection open and silent.
    Stall,
    /// Close the socket mid-body (no terminating chunk): a dropped stream.
    Drop,
}

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Default)]
struct State {
    /// Replies for POST …/responses, in order.
    responses: VecDeque<Reply>,
    /// Replies for other paths (matched without the query), in order.
    routes: HashMap<String, VecDeque<Reply>>,
    /// Fallback per path once its FIFO is empty.
    sticky: HashMap<String, Reply>,
    requests: Vec<RecordedRequest>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

/// The running mock; stops (and closes stalled connections) on drop.
pub struct MockServer {
    shared: Arc<Shared>,
    port: u16,
    tls: bool,
    acceptor: Option<JoinHandle<()>>,
}

/// One accepted connection, plain or TLS (the MCP mock's too).
pub trait Conn: Read + Write + Send {
    /// The TCP socket underneath (timeouts, shutdown).
    fn tcp(&self) -> &TcpStream;
}

impl Conn for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Conn for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// The test CA certificate (PEM) the HTTPS mock's certificate chains to.
pub fn test_ca_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem")
}

/// The server side of the test certificate (`tests/fixtures/tls/server.pem`, for `localhost` and
/// `127.0.0.1`), for the HTTPS mocks.
pub fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

/// An app-server over the existing CODEX_HOME `home`, pointed at `mock`
/// ([`MockServer::provider_overrides`], its key in `MOCK_KEY`), handshake done. A restart is
/// dropping the old one and calling this again with the same `home`.
pub fn server_in(mock: &MockServer, home: &Path) -> AppServer {
    server_in_with(mock, home, &[])
}

/// [`server_in`] with more `-c` settings.
pub fn server_in_with(mock: &MockServer, home: &Path, configs: &[&str]) -> AppServer {
    let mut builder = AppServer::builder()
        .codex_home(home)
        .configs(mock.provider_overrides())
        .env("MOCK_KEY", "test-key");
    for config in configs {
        builder = builder.config(*config);
    }
    let mut server = builder.spawn();
    server.initialize();
    server
}

impl MockServer {
    /// Binds 127.0.0.1 on a free port and starts serving plain HTTP.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Like [`MockServer::start`], serving HTTPS with the certificate of
    /// `tests/fixtures/tls/` (for `localhost` and `127.0.0.1`).
    pub fn start_tls() -> Self {
        Self::start_with(Some(tls_config()))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let is_tls = tls.is_some();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let accept_shared = shared.clone();
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let conn_shared = accept_shared.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let conn: Box<dyn Conn> = match tls {
                        Some(config) => match rustls::ServerConnection::new(config) {
                            Ok(server) => Box::new(rustls::StreamOwned::new(server, stream)),
                            Err(_) => return,
                        },
                        None => Box::new(stream),
                    };
                    serve_connection(conn, conn_shared)
                });
            }
        });
        Self {
            shared,
            port,
            tls: is_tls,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:<port>` (`https://` for a TLS mock).
    pub fn base(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The same server under the name `localhost` (`https://localhost:<port>` for a TLS mock):
    /// another origin that reaches this mock.
    pub fn base_as_localhost(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://localhost:{}", self.port)
    }

    /// The Responses base URL, `http://127.0.0.1:<port>/v1`.
    pub fn url(&self) -> String {
        format!("{}/v1", self.base())
    }

    /// The `-c` overrides that point the server at this mock as provider `mock` (bearer from
    /// `MOCK_KEY`, one request retry and one stream retry).
    pub fn provider_overrides(&self) -> Vec<String> {
        vec![
            "model_provider=mock".into(),
            format!(
                "model_providers.mock={{name=\"mock\",base_url=\"{}\",wire_api=\"responses\",env_key=\"MOCK_KEY\",request_max_retries=1,stream_max_retries=1}}",
                self.url()
            ),
            "model=mock-model".into(),
        ]
    }

    /// Queues a reply for the next POST to `…/responses`.
    pub fn push(&self, reply: Reply) -> &Self {
        self.shared.state.lock().unwrap().responses.push_back(reply);
        self
    }

    /// Queues a reply for the next request to `path` (query ignored).
    pub fn push_route(&self, path: &str, reply: Reply) -> &Self {
        let mut state = self.shared.state.lock().unwrap();
        state
            .routes
            .entry(path.into())
            .or_default()
            .push_back(reply);
        self
    }

    /// Answers every request to `path` with `reply` once its FIFO is empty.
    pub fn set_route(&self, path: &str, reply: Reply) -> &Self {
        self.shared
            .state
            .lock()
            .unwrap()
            .sticky
            .insert(path.into(), reply);
        self
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    /// Requests received so far whose path ends with `suffix` (query ignored).
    pub fn requests_to(&self, suffix: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| strip_query(&r.path).ends_with(suffix))
            .collect()
    }

    /// Waits until at least `n` requests arrived (panics after 20 s); returns them all.
    pub fn wait_for_requests(&self, n: usize) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut state = self.shared.state.lock().unwrap();
        while state.requests.len() < n {
            let wait = deadline.saturating_duration_since(Instant::now());
            assert!(
                !wait.is_zero(),
                "timed out waiting for {n} requests; got {}",
                state.requests.len()
            );
            state = self.shared.changed.wait_timeout(state, wait).unwrap().0;
        }
        state.requests.clone()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the acceptor
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn strip_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

fn read_request(reader: &mut impl BufRead) -> Option<RecordedRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (k, v) = header.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = find("content-length") {
        body.resize(len.parse().ok()?, 0);
        reader.read_exact(&mut body).ok()?;
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
    })
}

fn serve_connection(mut stream: Box<dyn Conn>, shared: Arc<Shared>) {
    // One request per connection (`connection: close`): nothing read ahead is lost.
    let Some(request) = read_request(&mut BufReader::new(&mut stream)) else {
        return;
    };
    let reply = {
        let mut state = shared.state.lock().unwrap();
        state.requests.push(request.clone());
        shared.changed.notify_all();
        let path = strip_query(&request.path).to_string();
        let queued = if request.method == "POST" && path.ends_with("/responses") {
            state.responses.pop_front()
        } else {
            state.routes.get_mut(&path).and_then(VecDeque::pop_front)
        };
        queued.or_else(|| state.sticky.get(&path).cloned())
    };
    let reply = reply.unwrap_or_else(|| Reply::Status {
        code: 500,
        headers: vec![],
        body: format!(
            "mock: no reply scripted for {} {}",
            request.method, request.path
        ),
    });
    send_reply(stream, reply, &request, &shared, &[]);
}

fn send_reply(
    mut stream: Box<dyn Conn>,
    reply: Reply,
    request: &RecordedRequest,
    shared: &Shared,
    extra: &[(String, String)],
) {
    let extra_head: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    match reply {
        Reply::Dynamic(f) => return send_reply(stream, f(request), request, shared, extra),
        Reply::WithHeaders(headers, inner) => {
            let mut all = extra.to_vec();
            all.extend(headers);
            return send_reply(stream, *inner, request, shared, &all);
        }
        Reply::Status {
            code,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {code} {}\r\ncontent-length: {}\r\nconnection: close\r\n",
                reason(code),
                body.len()
            );
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                head.push_str("content-type: application/json\r\n");
            }
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str(&extra_head);
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
            let _ = stream.flush();
        }
        Reply::Hang => hold_open(&mut stream, shared),
        Reply::Sse { events, delay, end } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: close\r\n{extra_head}\r\n"
            );
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            for event in events {
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                if stream
                    .write_all(chunk.as_bytes())
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
            }
            match end {
                End::Close => {
                    let _ = stream.write_all(b"0\r\n\r\n");
                    let _ = stream.flush();
                }
                End::Stall => hold_open(&mut stream, shared),
                End::Drop => {}
            }
        }
    }
    let _ = stream.flush();
    let _ = stream.tcp().shutdown(Shutdown::Both);
}

/// Keeps a connection open and silent until the peer closes it, the mock stops, or
/// [`MAX_STALL`] passes.
fn hold_open(stream: &mut Box<dyn Conn>, shared: &Shared) {
    let _ = stream
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(20)));
    let deadline = Instant::now() + MAX_STALL;
    let mut probe = [0u8; 256];
    while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
        match stream.read(&mut probe) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

// ---- reply builders -------------------------------------------------------------------------

/// An SSE reply that ends properly.
pub fn sse(events: Vec<String>) -> Reply {
    Reply::Sse {
        events,
        delay: Duration::ZERO,
        end: End::Close,
    }
}

/// An SSE reply that sends `events`, then stays open and silent.
pub fn sse_then_stall(events: Vec<String>) -> Reply {
    Reply::Sse {
        events,
        delay: Duration::ZERO,
        end: End::Stall,
    }
}

/// An SSE reply that sends `events`, then drops the connection mid-body.
pub fn sse_then_drop(events: Vec<String>) -> Reply {
    Reply::Sse {
        events,
        delay: Duration::ZERO,
        end: End::Drop,
    }
}

/// `reply` with extra response headers.
pub fn with_headers(headers: &[(&str, &str)], reply: Reply) -> Reply {
    Reply::WithHeaders(
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Box::new(reply),
    )
}

/// A plain status reply with a JSON (or any) body.
pub fn status(code: u16, body: impl Into<String>) -> Reply {
    Reply::Status {
        code,
        headers: vec![],
        body: body.into(),
    }
}

/// A status reply with extra headers (e.g. `Retry-After`).
pub fn status_with_headers(code: u16, headers: &[(&str, &str)], body: impl Into<String>) -> Reply {
    Reply::Status {
        code,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.into(),
    }
}

/// One SSE event: `event: <type>` and `data: <json>` (the data carries `type` too).
pub fn ev(kind: &str, mut data: Value) -> String {
    data["type"] = json!(kind);
    format!("event: {kind}\ndata: {data}\n\n")
}

/// `response.created`.
pub fn ev_created(response_id: &str) -> String {
    ev("response.created", json!({"response": {"id": response_id}}))
}

/// `response.completed` with a usage block.
pub fn ev_completed_usage(
    response_id: &str,
    input: u64,
    cached: u64,
    output: u64,
    reasoning: u64,
) -> String {
    ev(
        "response.completed",
        json!({"response": {"id": response_id, "usage": {
            "input_tokens": input, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input + output}}}),
    )
}

/// `response.completed` with a small fixed usage.
pub fn ev_completed(response_id: &str) -> String {
    ev_completed_usage(response_id, 10, 0, 5, 0)
}

/// `response.output_item.added` for an assistant message.
pub fn ev_message_added(item_id: &str) -> String {
    ev(
        "response.output_item.added",
        json!({"output_index": 0, "item": {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []}}),
    )
}

/// `response.output_text.delta`.
pub fn ev_text_delta(item_id: &str, delta: &str) -> String {
    ev(
        "response.output_text.delta",
        json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": delta}),
    )
}

/// `response.output_item.done` for an assistant message with `text`.
pub fn ev_message_done(item_id: &str, text: &str) -> String {
    ev(
        "response.output_item.done",
        json!({"output_index": 0, "item": {"type": "message", "id": item_id, "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}}),
    )
}

/// `response.output_item.added` for a reasoning item.
pub fn ev_reasoning_added(item_id: &str) -> String {
    ev(
        "response.output_item.added",
        json!({"output_index": 0, "item": {"type": "reasoning", "id": item_id, "summary": []}}),
    )
}

/// `response.reasoning_summary_text.delta`.
pub fn ev_reasoning_delta(item_id: &str, delta: &str) -> String {
    ev(
        "response.reasoning_summary_text.delta",
        json!({"item_id": item_id, "output_index": 0, "summary_index": 0, "delta": delta}),
    )
}

/// `response.output_item.done` for a reasoning item with one summary and encrypted content.
pub fn ev_reasoning_done(item_id: &str, summary: &str, encrypted: &str) -> String {
    ev(
        "response.output_item.done",
        json!({"output_index": 0, "item": {"type": "reasoning", "id": item_id,
            "summary": [{"type": "summary_text", "text": summary}], "encrypted_content": encrypted}}),
    )
}

/// `response.output_item.done` for a function call.
pub fn ev_function_call(call_id: &str, name: &str, arguments: &Value) -> String {
    ev(
        "response.output_item.done",
        json!({"output_index": 0, "item": {"type": "function_call", "id": format!("fc_{call_id}"),
            "call_id": call_id, "name": name, "arguments": arguments.to_string(), "status": "completed"}}),
    )
}

/// `response.output_item.done` for a custom (freeform) tool call.
pub fn ev_custom_tool_call(call_id: &str, name: &str, input: &str) -> String {
    ev(
        "response.output_item.done",
        json!({"output_index": 0, "item": {"type": "custom_tool_call", "id": format!("ctc_{call_id}"),
            "call_id": call_id, "name": name, "input": input, "status": "completed"}}),
    )
}

/// `response.failed` with an error code and message.
pub fn ev_failed(response_id: &str, code: &str, message: &str) -> String {
    ev(
        "response.failed",
        json!({"response": {"id": response_id, "error": {"code": code, "message": message}}}),
    )
}

/// A whole assistant text reply streamed as `deltas`.
pub fn text_reply(response_id: &str, item_id: &str, deltas: &[&str]) -> Reply {
    let mut events = vec![ev_created(response_id), ev_message_added(item_id)];
    events.extend(deltas.iter().map(|d| ev_text_delta(item_id, d)));
    events.push(ev_message_done(item_id, &deltas.concat()));
    events.push(ev_completed(response_id));
    sse(events)
}
