//! The JSON-RPC transport of protocol.md §1–2: wire types, JSONL framing on stdin/stdout, the
//! single writer, bounded ingress, and the pending map of our own server→client requests.
//!
//! Threads: `app-server-stdin` reads and classifies lines; answers to our requests go straight
//! into the pending map (so a turn waiting on the client never blocks the reading of other
//! requests), client requests and notifications go to the bounded [`Inbox`].
//! `app-server-stdout` is the only writer of stdout. This module knows nothing of methods; the
//! server decides what a request means.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest accepted input line; a longer one is discarded (and answered with -32600 when its
/// id can be recovered), never buffered.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Most client messages queued for the main loop before new ones get -32001.
const INGRESS_CAPACITY: usize = 4096;
/// Most bytes of client messages queued for the main loop before new ones get -32001.
const INGRESS_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Reasons to stop queued for the main loop (the first one decides; the rest are extra).
const STOP_QUEUE: usize = 4;
/// Most lines queued for stdout; writers block beyond it (back-pressure from a slow client).
const EGRESS_CAPACITY: usize = 1024;
/// Most bytes queued for stdout; writers block beyond it (one larger line still goes through
/// when the queue is empty), so a client that stops reading costs bounded memory.
const EGRESS_MAX_BYTES: usize = 16 * 1024 * 1024;

/// JSON-RPC: the request is not a valid request (also `Not initialized` and domain errors).
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: the method does not exist here.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the params do not decode.
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: an internal failure.
pub const INTERNAL_ERROR: i64 = -32603;
/// The ingress queue is full; the client should retry later.
pub const SERVER_OVERLOADED: i64 = -32001;

/// A request id: an integer or a string, echoed verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// An integer id (ours are always integers counting up from 0).
    Integer(i64),
    /// A string id.
    String(String),
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Integer(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// The error object of a JSON-RPC error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// One of the codes above (or the client's own code in answers to us).
    pub code: i64,
    /// Human-readable text; fixed strings of the spec are kept to the letter.
    pub message: String,
    /// Optional structured detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// -32600 with `message` (used for domain errors too, as the reference does).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, message)
    }

    /// -32601 `Method not found: <method>`.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    /// -32602 `Invalid params: <detail>`.
    pub fn invalid_params(detail: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("Invalid params: {detail}"))
    }

    /// -32603 with a short description.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(INTERNAL_ERROR, message)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code={}: {}", self.code, self.message)
    }
}

/// A message from the client that the main loop must handle.
#[derive(Debug)]
pub enum Incoming {
    /// A request; it must be answered exactly once.
    Request {
        /// Echoed in the answer.
        id: RequestId,
        /// The method name.
        method: String,
        /// The params, if any (absent and `null` are both `None`).
        params: Option<Value>,
    },
    /// A notification; it is never answered (the only one in scope, `initialized`, carries
    /// nothing we use, so params are not kept).
    Notification {
        /// The method name.
        method: String,
    },
}

/// What a server→client request finally got: the client's result or its error.
pub type ClientAnswer = Result<Value, RpcError>;

enum Outgoing {
    Line(String),
    Shutdown,
}

/// Bytes queued for stdout, with a condition variable for writers waiting for room.
#[derive(Default)]
struct ByteBudget {
    queued: Mutex<usize>,
    room: Condvar,
}

impl ByteBudget {
    /// Waits until `len` more bytes fit (or the queue is empty), then reserves them.
    fn reserve(&self, len: usize) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        while *queued > 0 && *queued + len > EGRESS_MAX_BYTES {
            queued = self.room.wait(queued).unwrap_or_else(|e| e.into_inner());
        }
        *queued += len;
    }

    /// Returns `len` bytes written out.
    fn release(&self, len: usize) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        *queued = queued.saturating_sub(len);
        self.room.notify_all();
    }
}

struct Shared {
    out: Sender<Outgoing>,
    egress: Arc<ByteBudget>,
    pending: Mutex<HashMap<i64, Sender<ClientAnswer>>>,
    next_id: AtomicI64,
    opt_out: OnceLock<HashSet<String>>,
    /// Threads whose turn and item notifications this connection no longer wants
    /// (`thread/unsubscribe`), and whether there are any (checked first, without a lock).
    muted: Mutex<HashSet<String>>,
    any_muted: AtomicBool,
}

/// A cheap, cloneable handle for writing to the client: responses, notifications and our own
/// requests. All methods are safe to call from any thread; they block only when the stdout
/// queue is full (the client is not reading).
#[derive(Clone)]
pub struct Rpc {
    shared: Arc<Shared>,
}

#[derive(Serialize)]
struct ResultOut<'a, R> {
    id: &'a RequestId,
    result: R,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    id: &'a RequestId,
    error: &'a RpcError,
}

#[derive(Serialize)]
struct NotificationOut<'a, P> {
    method: &'a str,
    params: P,
    #[serde(rename = "emittedAtMs")]
    emitted_at_ms: u64,
}

#[derive(Serialize)]
struct RequestOut<'a, P> {
    id: i64,
    method: &'a str,
    params: P,
}

impl Rpc {
    fn send_line(&self, line: String) {
        self.shared.egress.reserve(line.len());
        // A send fails only after shutdown, when nothing more may be written.
        let _ = self.shared.out.send(Outgoing::Line(line));
    }

    fn send_serialized(&self, what: &str, value: &impl Serialize) {
        match serde_json::to_string(value) {
            Ok(line) => self.send_line(line),
            Err(e) => crate::log::error(&format!("cannot serialize {what}: {e}")),
        }
    }

    /// Answers request `id` with `result`.
    pub fn respond(&self, id: &RequestId, result: impl Serialize) {
        self.send_serialized("response", &ResultOut { id, result });
    }

    /// Answers request `id` with an error.
    pub fn respond_error(&self, id: &RequestId, error: &RpcError) {
        self.send_serialized("error response", &ErrorOut { id, error });
    }

    /// Answers with `result` or the error, whichever `outcome` holds.
    pub fn respond_with<R: Serialize>(&self, id: &RequestId, outcome: Result<R, RpcError>) {
        match outcome {
            Ok(result) => self.respond(id, result),
            Err(error) => self.respond_error(id, &error),
        }
    }

    /// Sends a notification stamped with `emittedAtMs`, unless the client opted out of
    /// `method` at `initialize`.
    pub fn notify(&self, method: &str, params: impl Serialize) {
        if self.is_opted_out(method) || self.is_muted(method, &params) {
            return;
        }
        self.send_serialized(
            method,
            &NotificationOut {
                method,
                params,
                emitted_at_ms: crate::time::unix_millis(),
            },
        );
    }

    /// Stops turn and item notifications about `thread_id` (`thread/unsubscribe`); false when
    /// they were stopped already.
    pub fn mute_thread(&self, thread_id: &str) -> bool {
        let mut muted = self.shared.muted.lock().unwrap_or_else(|e| e.into_inner());
        let added = muted.insert(thread_id.to_string());
        self.shared.any_muted.store(true, Ordering::SeqCst);
        added
    }

    /// Sends `thread_id`'s notifications again (the thread was resumed or is gone).
    pub fn unmute_thread(&self, thread_id: &str) {
        if !self.shared.any_muted.load(Ordering::SeqCst) {
            return;
        }
        let mut muted = self.shared.muted.lock().unwrap_or_else(|e| e.into_inner());
        muted.remove(thread_id);
        self.shared
            .any_muted
            .store(!muted.is_empty(), Ordering::SeqCst);
    }

    /// Whether notification `method` with `params` concerns a muted thread: turn and item
    /// notifications, usage and errors carry its `threadId` (status changes and thread-level
    /// events still go out). Free while no thread is muted.
    fn is_muted(&self, method: &str, params: &impl Serialize) -> bool {
        if !self.shared.any_muted.load(Ordering::Relaxed) {
            return false;
        }
        let scoped = method.starts_with("turn/")
            || method.starts_with("item/")
            || matches!(
                method,
                "thread/tokenUsage/updated" | "error" | "serverRequest/resolved"
            );
        if !scoped {
            return false;
        }
        let Ok(value) = serde_json::to_value(params) else {
            return false;
        };
        let Some(thread_id) = value.get("threadId").and_then(Value::as_str) else {
            return false;
        };
        self.shared
            .muted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(thread_id)
    }

    /// Whether the client asked never to receive `method`.
    pub fn is_opted_out(&self, method: &str) -> bool {
        self.shared
            .opt_out
            .get()
            .is_some_and(|set| set.contains(method))
    }

    /// Records the notification methods the client opted out of; only the first call counts
    /// (there is one `initialize` per connection).
    pub fn set_opt_out(&self, methods: impl IntoIterator<Item = String>) {
        let _ = self.shared.opt_out.set(methods.into_iter().collect());
    }

    /// Sends a server→client request. The answer arrives on the returned receiver, delivered
    /// by the reader thread; wait on it with `recv_timeout`. The receiver disconnects when the
    /// connection closes. Call [`Rpc::cancel`] when giving up so a late answer is ignored.
    pub fn request(&self, method: &str, params: impl Serialize) -> (i64, Receiver<ClientAnswer>) {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = bounded(1);
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.insert(id, tx);
        }
        self.send_serialized(method, &RequestOut { id, method, params });
        (id, rx)
    }

    /// Forgets a pending server→client request; its answer, if it ever comes, is ignored.
    pub fn cancel(&self, id: i64) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.remove(&id);
        }
    }

    fn deliver(&self, id: &RequestId, answer: ClientAnswer) {
        let waiter = match id {
            RequestId::Integer(n) => self
                .shared
                .pending
                .lock()
                .ok()
                .and_then(|mut pending| pending.remove(n)),
            RequestId::String(_) => None,
        };
        match waiter {
            Some(tx) => {
                let _ = tx.send(answer);
            }
            None => crate::log::warn(&format!(
                "ignoring an answer to request id {id}, which is not pending"
            )),
        }
    }

    fn drop_all_pending(&self) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.clear();
        }
    }
}

/// The receiving end for client requests and notifications, in arrival order.
pub struct Inbox {
    rx: Receiver<(Incoming, usize)>,
    queued_bytes: Arc<AtomicUsize>,
    stop: Receiver<StopReason>,
}

impl Inbox {
    /// Waits for the next client message; `None` once stdin is closed and the queue drained.
    pub fn recv(&self) -> Option<Incoming> {
        let (message, size) = self.rx.recv().ok()?;
        self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        Some(message)
    }

    /// Waits for the next client message or the next job another thread handed the main loop
    /// (work that had to wait off the main loop, e.g. for MCP servers); `None` once stdin is
    /// closed and the queue drained.
    /// Also returns [`Next::Stop`] as soon as a reason to stop arrives (the client stopped
    /// reading our output, a termination signal), ahead of queued messages.
    pub fn recv_or_job<T>(&self, jobs: &Receiver<T>) -> Option<Next<T>> {
        if let Ok(reason) = self.stop.try_recv() {
            return Some(Next::Stop(reason));
        }
        crossbeam_channel::select! {
            recv(self.rx) -> message => {
                let (message, size) = message.ok()?;
                self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                Some(Next::Message(message))
            }
            recv(jobs) -> job => match job {
                Ok(job) => Some(Next::Job(job)),
                Err(_) => self.recv().map(Next::Message),
            },
            recv(self.stop) -> reason => match reason {
                Ok(reason) => Some(Next::Stop(reason)),
                // Never: the transport keeps a sender.
                Err(_) => self.recv().map(Next::Message),
            },
        }
    }
}

/// What [`Inbox::recv_or_job`] got.
pub enum Next<T> {
    /// A client message.
    Message(Incoming),
    /// A job for the main loop.
    Job(T),
    /// The connection must end now, before stdin's end.
    Stop(StopReason),
}

/// Why the server stops before the client closed stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The client closed its end of our stdout (a write failed, or the pipe reports no
    /// reader): nobody hears us any more.
    ClientGone,
    /// A termination signal (SIGTERM, SIGHUP, SIGINT, or Ctrl-C/close on Windows).
    Signal(i32),
}

/// The running transport: the writer handle, the inbox and the two I/O threads.
pub struct Transport {
    /// Handle for writing; clone it freely.
    pub rpc: Rpc,
    /// Client requests and notifications.
    pub inbox: Inbox,
    writer: JoinHandle<()>,
    stop: Sender<StopReason>,
}

impl Transport {
    /// Starts the `app-server-stdin` and `app-server-stdout` threads over `input`/`output`.
    pub fn start(
        input: impl Read + Send + 'static,
        output: impl Write + Send + 'static,
    ) -> std::io::Result<Transport> {
        let (out_tx, out_rx) = bounded(EGRESS_CAPACITY);
        let egress = Arc::new(ByteBudget::default());
        let rpc = Rpc {
            shared: Arc::new(Shared {
                out: out_tx,
                egress: egress.clone(),
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicI64::new(0),
                opt_out: OnceLock::new(),
                muted: Mutex::new(HashSet::new()),
                any_muted: AtomicBool::new(false),
            }),
        };
        let (stop_tx, stop_rx) = bounded(STOP_QUEUE);
        let writer_stop = stop_tx.clone();
        let writer = std::thread::Builder::new()
            .name("app-server-stdout".into())
            .spawn(move || write_loop(out_rx, output, &egress, &writer_stop))?;
        let (in_tx, in_rx) = bounded(INGRESS_CAPACITY);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let reader = Reader {
            rpc: rpc.clone(),
            inbox: in_tx,
            queued_bytes: queued_bytes.clone(),
        };
        std::thread::Builder::new()
            .name("app-server-stdin".into())
            .spawn(move || reader.run(input))?;
        Ok(Transport {
            rpc,
            inbox: Inbox {
                rx: in_rx,
                queued_bytes,
                stop: stop_rx,
            },
            writer,
            stop: stop_tx,
        })
    }

    /// A sender of reasons to stop the main loop ([`Next::Stop`]), for watchers of signals
    /// and of the client.
    pub fn stop_sender(&self) -> Sender<StopReason> {
        self.stop.clone()
    }

    /// Flushes everything queued so far and stops the writer, waiting at most `timeout` (a
    /// client that stopped reading stdout must not keep us alive).
    pub fn finish(self, timeout: Duration) {
        let done = {
            let (tx, rx) = bounded::<()>(1);
            let out = self.rpc.shared.out.clone();
            let writer = self.writer;
            std::thread::spawn(move || {
                let _ = out.send(Outgoing::Shutdown);
                let _ = writer.join();
                let _ = tx.send(());
            });
            rx
        };
        let _ = done.recv_timeout(timeout);
    }
}

fn write_loop(
    rx: Receiver<Outgoing>,
    output: impl Write,
    egress: &ByteBudget,
    stop: &Sender<StopReason>,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, output);
    let mut broken = false;
    while let Ok(message) = rx.recv() {
        let Outgoing::Line(line) = message else {
            break;
        };
        egress.release(line.len());
        if broken {
            continue; // keep draining so producers never block on a dead client
        }
        let written = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"));
        // Flush once the queue is empty: every line is out as soon as nothing else is
        // waiting, without a syscall per line during a burst of deltas.
        let flushed = written.and_then(|()| if rx.is_empty() { out.flush() } else { Ok(()) });
        if let Err(e) = flushed {
            crate::log::error(&format!(
                "writing to stdout failed: {e}; the client is gone, stopping"
            ));
            broken = true;
            let _ = stop.try_send(StopReason::ClientGone);
        }
    }
    let _ = out.flush();
}

struct Reader {
    rpc: Rpc,
    inbox: Sender<(Incoming, usize)>,
    queued_bytes: Arc<AtomicUsize>,
}

impl Reader {
    fn run(self, input: impl Read) {
        let mut input = BufReader::with_capacity(64 * 1024, input);
        let mut line = Vec::new();
        loop {
            match read_bounded_line(&mut input, &mut line) {
                Ok(LineRead::Eof) => break,
                Ok(LineRead::Line) => self.handle_line(&line),
                Ok(LineRead::TooLong) => self.reject_long_line(&line),
                Err(e) => {
                    crate::log::error(&format!("reading stdin failed: {e}"));
                    break;
                }
            }
        }
        // The connection is gone: waiters on our requests see a disconnect at once.
        self.rpc.drop_all_pending();
    }

    fn reject_long_line(&self, prefix: &[u8]) {
        let message =
            format!("Invalid request: message exceeds the {MAX_LINE_BYTES}-byte line limit");
        match top_level_id(prefix) {
            Some(id) => self
                .rpc
                .respond_error(&id, &RpcError::invalid_request(message)),
            None => crate::log::error(&format!("dropping input line: {message}")),
        }
    }

    fn handle_line(&self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let value: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                crate::log::error(&format!("ignoring input line that is not JSON: {e}"));
                return;
            }
        };
        match classify(value) {
            Classified::Request(message) => self.enqueue(message, line.len()),
            Classified::Notification(message) => self.enqueue(message, line.len()),
            Classified::Answer(id, answer) => self.rpc.deliver(&id, answer),
            Classified::Invalid(id, reason) => self.rpc.respond_error(
                &id,
                &RpcError::invalid_request(format!("Invalid request: {reason}")),
            ),
            Classified::Unanswerable(reason) => {
                crate::log::error(&format!("ignoring input message: {reason}"));
            }
        }
    }

    fn enqueue(&self, message: Incoming, size: usize) {
        let over_budget =
            self.queued_bytes.fetch_add(size, Ordering::Relaxed) + size > INGRESS_MAX_BYTES;
        let refused = if over_budget {
            Some(message)
        } else {
            match self.inbox.try_send((message, size)) {
                Ok(()) => None,
                Err(TrySendError::Full((m, _)) | TrySendError::Disconnected((m, _))) => Some(m),
            }
        };
        let Some(message) = refused else {
            return;
        };
        self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        match message {
            Incoming::Request { id, .. } => self.rpc.respond_error(
                &id,
                &RpcError::new(SERVER_OVERLOADED, "Server overloaded; retry later."),
            ),
            Incoming::Notification { method, .. } => {
                crate::log::warn(&format!(
                    "dropping notification {method}: server overloaded"
                ));
            }
        }
    }
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one `\n`-terminated line into `line` (without the newline and a trailing `\r`). A line
/// longer than [`MAX_LINE_BYTES`] keeps only its first bytes in `line` and the rest is skipped.
fn read_bounded_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<LineRead> {
    line.clear();
    let mut too_long = false;
    let mut saw_any = false;
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if !saw_any {
                return Ok(LineRead::Eof);
            }
            break;
        }
        saw_any = true;
        let (chunk, found_newline) = match memchr(b'\n', buf) {
            Some(pos) => (&buf[..pos], true),
            None => (buf, false),
        };
        if !too_long {
            let room = MAX_LINE_BYTES - line.len();
            if chunk.len() > room {
                line.extend_from_slice(&chunk[..room]);
                too_long = true;
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = chunk.len() + usize::from(found_newline);
        input.consume(consumed);
        if found_newline {
            break;
        }
    }
    if too_long {
        return Ok(LineRead::TooLong);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(LineRead::Line)
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

enum Classified {
    Request(Incoming),
    Notification(Incoming),
    Answer(RequestId, ClientAnswer),
    Invalid(RequestId, String),
    Unanswerable(String),
}

fn parse_id(value: &Value) -> Option<RequestId> {
    match value {
        Value::String(s) => Some(RequestId::String(s.clone())),
        Value::Number(n) => n.as_i64().map(RequestId::Integer),
        _ => None,
    }
}

fn classify(value: Value) -> Classified {
    let Value::Object(mut map) = value else {
        return Classified::Unanswerable("not a JSON object".into());
    };
    let id = match map.get("id") {
        None => None,
        Some(raw) => match parse_id(raw) {
            Some(id) => Some(id),
            None => {
                return Classified::Unanswerable(format!(
                    "id {raw} is neither a string nor a 64-bit integer"
                ));
            }
        },
    };
    let params = match map.remove("params") {
        None | Some(Value::Null) => None,
        Some(p) => Some(p),
    };
    match (map.remove("method"), id) {
        (Some(Value::String(method)), Some(id)) => {
            Classified::Request(Incoming::Request { id, method, params })
        }
        (Some(Value::String(method)), None) => {
            Classified::Notification(Incoming::Notification { method })
        }
        (Some(_), Some(id)) => Classified::Invalid(id, "method must be a string".into()),
        (Some(_), None) => Classified::Unanswerable("method must be a string".into()),
        (None, Some(id)) => {
            if let Some(error) = map.remove("error") {
                let error = serde_json::from_value::<RpcError>(error).unwrap_or_else(|e| {
                    RpcError::internal(format!("malformed error answer from the client: {e}"))
                });
                Classified::Answer(id, Err(error))
            } else if let Some(result) = map.remove("result") {
                Classified::Answer(id, Ok(result))
            } else {
                Classified::Invalid(id, "missing method".into())
            }
        }
        (None, None) => {
            Classified::Unanswerable("neither a request, a notification nor an answer".into())
        }
    }
}

/// Finds the top-level `"id"` member in the prefix of an over-long JSON object, so the refusal
/// can be addressed. Only plain integer and escape-free string ids are recovered.
fn top_level_id(prefix: &[u8]) -> Option<RequestId> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < prefix.len() {
        match prefix[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < prefix.len() && prefix[j] != b'"' {
                    j += if prefix[j] == b'\\' { 2 } else { 1 };
                }
                let key = prefix.get(start..j)?;
                i = j + 1;
                if depth == 1 && key == b"id" {
                    let rest = &prefix[i.min(prefix.len())..];
                    let rest = trim_ascii_start(rest);
                    let value = trim_ascii_start(rest.strip_prefix(b":")?);
                    return parse_id_prefix(value);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn trim_ascii_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

fn parse_id_prefix(value: &[u8]) -> Option<RequestId> {
    if let Some(rest) = value.strip_prefix(b"\"") {
        let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
        if rest[end] != b'"' {
            return None;
        }
        return Some(RequestId::String(
            std::str::from_utf8(&rest[..end]).ok()?.to_string(),
        ));
    }
    let len = value
        .iter()
        .enumerate()
        .take_while(|&(k, &b)| b.is_ascii_digit() || (k == 0 && b == b'-'))
        .count();
    let text = std::str::from_utf8(&value[..len]).ok()?;
    match value.get(len) {
        Some(b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n') => {
            text.parse().ok().map(RequestId::Integer)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_messages() {
        let cases: &[(Value, &str)] = &[
            (json!({"id": 1, "method": "m"}), "request"),
            (
                json!({"jsonrpc": "2.0", "id": "a", "method": "m", "params": {}}),
                "request",
            ),
            (json!({"method": "m"}), "notification"),
            (json!({"id": 3, "result": {}}), "answer"),
            (
                json!({"id": 3, "error": {"code": 1, "message": "x"}}),
                "answer",
            ),
            (json!({"id": 3}), "invalid"),
            (json!({"id": 3, "method": 7}), "invalid"),
            (json!({"id": null, "method": "m"}), "unanswerable"),
            (json!({"id": 1.5, "method": "m"}), "unanswerable"),
            (json!({"method": 7}), "unanswerable"),
            (json!([1, 2]), "unanswerable"),
            (json!({}), "unanswerable"),
        ];
        for (value, want) in cases {
            let got = match classify(value.clone()) {
                Classified::Request(_) => "request",
                Classified::Notification(_) => "notification",
                Classified::Answer(..) => "answer",
                Classified::Invalid(..) => "invalid",
                Classified::Unanswerable(_) => "unanswerable",
            };
            assert_eq!(got, *want, "{value}");
        }
    }

    #[test]
    fn recovers_top_level_ids_from_prefixes() {
        let cases: &[(&str, Option<RequestId>)] = &[
            (
                r#"{"id":12,"method":"x","params":{"#,
                Some(RequestId::Integer(12)),
            ),
            (
                r#"{"method":"x", "id" : "abc" ,"params":"#,
                Some(RequestId::String("abc".into())),
            ),
            (
                r#"{"params":{"id":5},"id":-3,"#,
                Some(RequestId::Integer(-3)),
            ),
            (r#"{"params":{"id":5,"text":"aaaa"#, None),
            (r#"{"method":"id","params":"#, None),
            (r#"{"id":12"#, None),
        ];
        for (prefix, want) in cases {
            assert_eq!(&top_level_id(prefix.as_bytes()), want, "{prefix}");
        }
    }

    #[test]
    fn bounded_lines() {
        let big = "x".repeat(MAX_LINE_BYTES + 10);
        let input = format!("a\r\n\n{big}\nb");
        let mut reader = BufReader::with_capacity(1024, input.as_bytes());
        let mut line = Vec::new();
        let mut got = Vec::new();
        loop {
            match read_bounded_line(&mut reader, &mut line).unwrap() {
                LineRead::Eof => break,
                LineRead::Line => got.push(String::from_utf8(line.clone()).unwrap()),
                LineRead::TooLong => {
                    assert_eq!(line.len(), MAX_LINE_BYTES);
                    got.push("<too long>".into());
                }
            }
        }
        assert_eq!(got, ["a", "", "<too long>", "b"]);
    }

    /// Output that tests can read while the writer thread writes it.
    #[derive(Clone, Default)]
    struct SharedOutput(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedOutput {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_ingress_queue_answers_server_overloaded() {
        let extra = 5;
        let mut input = String::new();
        for id in 0..INGRESS_CAPACITY + extra {
            input.push_str(&format!("{{\"id\":{id},\"method\":\"m\"}}\n"));
        }
        let output = SharedOutput::default();
        // Nobody drains the inbox: everything past its capacity must be refused, not queued.
        let transport = Transport::start(std::io::Cursor::new(input), output.clone()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let lines = loop {
            let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
            if text.lines().count() >= extra || std::time::Instant::now() > deadline {
                break text.lines().map(str::to_string).collect::<Vec<_>>();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(lines.len(), extra, "{lines:?}");
        for (line, id) in lines.iter().zip(INGRESS_CAPACITY..) {
            let value: Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                value,
                json!({"id": id, "error": {"code": -32001, "message": "Server overloaded; retry later."}})
            );
        }
        assert!(matches!(
            transport.inbox.recv(),
            Some(Incoming::Request {
                id: RequestId::Integer(0),
                ..
            })
        ));
    }

    #[test]
    fn the_egress_budget_holds_writers_until_bytes_are_written() {
        let budget = Arc::new(ByteBudget::default());
        budget.reserve(EGRESS_MAX_BYTES - 10);
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let waiter = budget.clone();
        std::thread::spawn(move || {
            waiter.reserve(100);
            done_tx.send(()).unwrap();
        });
        assert!(
            done_rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "over budget: waits"
        );
        budget.release(EGRESS_MAX_BYTES - 10);
        assert!(
            done_rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "room again: goes on"
        );
        // A single line larger than the whole budget still passes an empty queue.
        let big = ByteBudget::default();
        big.reserve(EGRESS_MAX_BYTES * 2);
    }
}
