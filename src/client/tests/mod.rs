//! Round trips against a scripted HTTP server on 127.0.0.1: events in order, request-level
//! retries, the 401 loop with a fake [`AuthProvider`], dropped streams, and aborts in every
//! phase (checked by the events channel disconnecting and the server seeing the socket close).
//! Backoffs are shortened to milliseconds; nothing here waits on a real backoff.
//!
//! This file is the harness (the scripted server, SSE builders, the fake auth, client set-up);
//! the tests are in `streams`, `retries`, `auth` and `aborts`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::{Value, json};

use super::*;
use crate::config::ModelProviderInfo;
use crate::protocol::CodexErrorInfo;

mod aborts;
mod auth;
mod retries;
mod streams;

/// How long a test waits for anything that should be quick.
const PATIENCE: Duration = Duration::from_secs(10);
/// How soon after an abort the stream thread must be gone.
const PROMPT: Duration = Duration::from_secs(1);

// ---------- the scripted server ----------

#[derive(Clone)]
enum Reply {
    /// A status with headers and a body (Content-Length).
    Status(u16, Vec<(&'static str, String)>, String),
    /// `200 text/event-stream`, chunked, these events, then `end`.
    Sse(Vec<String>, End),
    /// Read the request, never answer.
    Hang,
    /// Read the request, close the socket without a word.
    Close,
}

#[derive(Clone, Copy, PartialEq)]
enum End {
    /// Finish the chunked body.
    Finish,
    /// Close mid-body (no terminating chunk).
    Drop,
    /// Keep the connection open and silent.
    Stall,
}

#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// Signalled when a connection that hung or stalled sees the client close it.
    closed: Receiver<()>,
}

impl Server {
    fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (closed_tx, closed) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, q, s) = (replies, requests.clone(), stop.clone());
        std::thread::Builder::new()
            .name("test-http-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { return };
                    let (r, q, closed_tx) = (r.clone(), q.clone(), closed_tx.clone());
                    // Connections end when the client closes them.
                    std::thread::spawn(move || serve(stream, &r, &q, &closed_tx));
                }
            })
            .unwrap();
        Self {
            port,
            stop,
            requests,
            closed,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn assert_client_closed(&self) {
        self.closed
            .recv_timeout(PATIENCE)
            .expect("the client never closed the connection");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the acceptor
    }
}

fn serve(
    stream: TcpStream,
    replies: &Mutex<VecDeque<Reply>>,
    requests: &Mutex<Vec<Recorded>>,
    closed: &crossbeam_channel::Sender<()>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    requests.lock().unwrap().push(Recorded {
        path,
        headers,
        body,
    });
    let reply = replies.lock().unwrap().pop_front().unwrap_or(Reply::Status(
        599,
        vec![],
        "no reply scripted".into(),
    ));
    let mut out = stream;
    let wait_for_close = |mut s: TcpStream| {
        let mut sink = [0u8; 64];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        let _ = closed.send(());
    };
    match reply {
        Reply::Status(code, extra, text) => {
            let mut head = format!(
                "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                text.len()
            );
            for (k, v) in extra {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            let _ = out.write_all(format!("{head}\r\n{text}").as_bytes());
        }
        Reply::Sse(events, end) => {
            let _ = out.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
            );
            for event in events {
                let _ = out.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
            }
            match end {
                End::Finish => {
                    let _ = out.write_all(b"0\r\n\r\n");
                }
                End::Drop => {}
                End::Stall => wait_for_close(out),
            }
        }
        Reply::Hang => wait_for_close(out),
        Reply::Close => {}
    }
}

// ---------- SSE builders ----------

fn sse(value: Value) -> String {
    let kind = value["type"].as_str().unwrap_or("message").to_string();
    format!("event: {kind}\ndata: {value}\n\n")
}

fn created() -> String {
    sse(json!({"type":"response.created","response":{"id":"resp_1"}}))
}

fn delta(text: &str) -> String {
    sse(json!({"type":"response.output_text.delta","item_id":"msg_1","delta":text}))
}

fn completed() -> String {
    sse(
        json!({"type":"response.completed","response":{"id":"resp_1","usage":{
        "input_tokens":10,"output_tokens":5,"total_tokens":15}}}),
    )
}

fn ok_stream() -> Reply {
    Reply::Sse(vec![created(), delta("hi"), completed()], End::Finish)
}

// ---------- fake auth ----------

/// Serves `tokens[n]` after `n` recoveries; counts calls.
struct FakeAuth {
    tokens: Vec<(&'static str, Option<&'static str>)>,
    recover_result: Result<bool, ClientError>,
    recoveries: AtomicUsize,
    failed_with: Mutex<Vec<String>>,
}

impl FakeAuth {
    fn new(tokens: Vec<(&'static str, Option<&'static str>)>) -> Self {
        Self {
            tokens,
            recover_result: Ok(true),
            recoveries: AtomicUsize::new(0),
            failed_with: Mutex::new(Vec::new()),
        }
    }
}

impl AuthProvider for FakeAuth {
    fn credentials(&self) -> Result<Option<Credentials>, ClientError> {
        let n = self
            .recoveries
            .load(Ordering::SeqCst)
            .min(self.tokens.len().max(1) - 1);
        Ok(self.tokens.get(n).map(|(token, account)| Credentials {
            kind: CredentialKind::ChatGpt,
            token: Secret::new(*token),
            account_id: account.map(str::to_string),
        }))
    }

    fn recover_unauthorized(&self, failed: &Credentials) -> Result<bool, ClientError> {
        self.failed_with
            .lock()
            .unwrap()
            .push(failed.token.expose().to_string());
        self.recoveries.fetch_add(1, Ordering::SeqCst);
        self.recover_result.clone()
    }
}

// ---------- client set-up and helpers ----------

fn provider(
    url: &str,
    env_key: Option<&str>,
    openai_auth: bool,
    retries: u64,
) -> ModelProviderInfo {
    ModelProviderInfo {
        name: "mock".into(),
        base_url: Some(url.into()),
        env_key: env_key.map(str::to_string),
        requires_openai_auth: openai_auth,
        request_max_retries: Some(retries),
        http_headers: [("x-extra".to_string(), "yes".to_string())].into(),
        ..ModelProviderInfo::openai()
    }
}

fn client(provider: ModelProviderInfo, auth: Arc<dyn AuthProvider>) -> ModelClient {
    let mut client = ModelClient::from_settings(
        Settings {
            provider,
            openai_base_url: "http://127.0.0.1:9/unused".into(),
            chatgpt_base_url: "http://127.0.0.1:9/unused".into(),
            originator: "codex_test".into(),
            user_agent: "codex_test/0.0".into(),
        },
        auth,
    );
    client.retry_base_delay = Duration::from_millis(1);
    client.env_lookup = |name| (name == "MOCK_KEY").then(|| "mock-secret".to_string());
    client
}

fn key_client(server: &Server, retries: u64) -> ModelClient {
    client(
        provider(&server.url(), Some("MOCK_KEY"), false, retries),
        Arc::new(FakeAuth::new(vec![])),
    )
}

fn body() -> ModelRequest {
    ModelRequest {
        body: json!({"model":"mock-model","input":[],"stream":true}),
        history: Vec::new(),
        lite: false,
    }
}

/// Every event until the channel disconnects (panics if that takes too long).
fn collect(stream: &ResponseStream) -> Vec<StreamEvent> {
    let deadline = Instant::now() + PATIENCE;
    let mut events = Vec::new();
    loop {
        match stream.events().recv_deadline(deadline) {
            Ok(event) => events.push(event),
            Err(RecvTimeoutError::Disconnected) => return events,
            Err(RecvTimeoutError::Timeout) => panic!("stream never finished: {events:?}"),
        }
    }
}

fn failure(events: &[StreamEvent]) -> &ClientError {
    match events.last() {
        Some(StreamEvent::Failed(err)) => err,
        other => panic!("expected a failure last, got {other:?} in {events:?}"),
    }
}

fn retries_announced(events: &[StreamEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Retrying { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect()
}

/// Aborts and asserts the stream thread is gone promptly (the channel disconnects), with
/// nothing but already-queued events after the abort.
fn abort_promptly(stream: &ResponseStream) {
    let started = Instant::now();
    stream.abort();
    loop {
        match stream.events().recv_timeout(PROMPT) {
            Ok(StreamEvent::Failed(err)) => panic!("failure sent after abort: {err}"),
            Ok(_) => {}
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("stream thread still running after abort"),
        }
    }
    assert!(started.elapsed() < PROMPT, "took {:?}", started.elapsed());
}
