//! Round trips against a scripted HTTP server on 127.0.0.1: events in order, request-level
//! retries, the 401 loop with a fake [`AuthProvider`], dropped streams, and aborts in every
//! phase (checked by the events channel disconnecting and the server seeing the socket close).
//! Backoffs are shortened to milliseconds; nothing here waits on a real backoff.

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

// ---------- the tests ----------

#[test]
fn streams_events_in_order_with_the_expected_request() {
    let server = Server::start(vec![Reply::Sse(
        vec![
            created(),
            sse(
                json!({"type":"response.output_item.added","item":{"type":"message","id":"msg_1"}}),
            ),
            delta("hel"),
            ": keepalive\n\n".to_string(),
            sse(json!({"type":"response.in_progress"})),
            delta("lo"),
            sse(json!({"type":"response.output_item.done","item":{"type":"message","id":"msg_1"}})),
            completed(),
            delta("after completion: never delivered"),
        ],
        End::Finish,
    )]);
    let client = key_client(&server, 0);
    let stream = client.start(&body(), "thread-42");
    let events = collect(&stream);
    let summary: Vec<String> = events
        .iter()
        .map(|e| match e {
            StreamEvent::Created { response_id } => format!("created {response_id:?}"),
            StreamEvent::ItemAdded(item) => format!("added {}", item["id"]),
            StreamEvent::TextDelta { delta, .. } => format!("delta {delta}"),
            StreamEvent::ItemDone(item) => format!("done {}", item["id"]),
            StreamEvent::Completed { response_id, usage } => {
                format!("completed {response_id} {}", usage.unwrap().total_tokens)
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "created Some(\"resp_1\")",
            "added \"msg_1\"",
            "delta hel",
            "delta lo",
            "done \"msg_1\"",
            "completed resp_1 15",
        ]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/v1/responses");
    assert_eq!(request.header("authorization"), Some("Bearer mock-secret"));
    for name in ["session-id", "thread-id", "x-client-request-id"] {
        assert_eq!(request.header(name), Some("thread-42"), "{name}");
    }
    assert_eq!(request.header("version"), Some(super::CODEX_VERSION));
    assert_eq!(request.header("originator"), Some("codex_test"));
    assert_eq!(request.header("user-agent"), Some("codex_test/0.0"));
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-extra"), Some("yes"));
    assert_eq!(request.header("chatgpt-account-id"), None);
    assert_eq!(
        serde_json::from_slice::<Value>(&request.body).unwrap(),
        body().body
    );
}

#[test]
fn many_deltas_arrive_complete_through_the_bounded_channel() {
    let n = 3 * EVENT_CHANNEL_CAPACITY;
    let mut events: Vec<String> = (0..n).map(|i| delta(&i.to_string())).collect();
    events.push(completed());
    let server = Server::start(vec![Reply::Sse(events, End::Finish)]);
    let stream = key_client(&server, 0).start(&body(), "s");
    // Let the thread fill the channel and block on it before reading.
    std::thread::sleep(Duration::from_millis(100));
    let got = collect(&stream);
    assert_eq!(got.len(), n + 1);
    for (i, event) in got.iter().take(n).enumerate() {
        assert!(
            matches!(event, StreamEvent::TextDelta { delta, .. } if *delta == i.to_string()),
            "{event:?}"
        );
    }
    assert!(matches!(got[n], StreamEvent::Completed { .. }));
}

#[test]
fn server_errors_are_retried_then_succeed() {
    let server = Server::start(vec![
        Reply::Status(500, vec![], "oops".into()),
        Reply::Status(503, vec![], "busy".into()),
        ok_stream(),
    ]);
    let events = collect(&key_client(&server, 4).start(&body(), "s"));
    assert_eq!(retries_announced(&events), [1, 2]);
    assert!(matches!(events.last(), Some(StreamEvent::Completed { .. })));
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn server_errors_exhaust_the_retries() {
    let server = Server::start(vec![
        Reply::Status(500, vec![], r#"{"error":{"message":"first"}}"#.into()),
        Reply::Status(
            502,
            vec![],
            r#"{"error":{"message":"upstream broke"}}"#.into(),
        ),
    ]);
    let events = collect(&key_client(&server, 1).start(&body(), "s"));
    let err = failure(&events);
    assert_eq!(
        err.message,
        "unexpected status 502 Bad Gateway: upstream broke"
    );
    assert_eq!(err.info, CodexErrorInfo::InternalServerError);
    assert_eq!(err.http_status, Some(502));
    assert!(!err.is_stream_disconnect);
    assert_eq!(retries_announced(&events), [1]);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn too_many_requests_honours_retry_after() {
    let server = Server::start(vec![
        Reply::Status(429, vec![("retry-after", "0".into())], "slow down".into()),
        Reply::Status(
            429,
            vec![("retry-after-ms", "7".into())],
            "slow down".into(),
        ),
        ok_stream(),
    ]);
    let events = collect(&key_client(&server, 4).start(&body(), "s"));
    let delays: Vec<Duration> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Retrying { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [Duration::ZERO, Duration::from_millis(7)]);
    assert!(matches!(events.last(), Some(StreamEvent::Completed { .. })));
}

#[test]
fn too_many_requests_exhausted_and_usage_limits() {
    let server = Server::start(vec![
        Reply::Status(
            429,
            vec![("retry-after", "0".into())],
            "rate limited".into(),
        ),
        Reply::Status(
            429,
            vec![("retry-after", "0".into())],
            "rate limited".into(),
        ),
    ]);
    let err = failure(&collect(&key_client(&server, 1).start(&body(), "s"))).clone();
    assert_eq!(
        err.info,
        CodexErrorInfo::ResponseTooManyFailedAttempts {
            http_status_code: Some(429)
        }
    );
    assert!(
        err.message.contains("429 Too Many Requests: rate limited"),
        "{}",
        err.message
    );

    let server = Server::start(vec![Reply::Status(
        429,
        vec![],
        r#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached"}}"#
            .into(),
    )]);
    let events = collect(&key_client(&server, 4).start(&body(), "s"));
    let err = failure(&events);
    assert_eq!(err.info, CodexErrorInfo::UsageLimitExceeded);
    assert!(err.message.contains("The usage limit has been reached"));
    assert!(retries_announced(&events).is_empty());
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn client_errors_are_not_retried() {
    for (status, body_text, info) in [
        (
            400,
            r#"{"error":{"message":"bad model"}}"#,
            CodexErrorInfo::BadRequest,
        ),
        (
            400,
            r#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#,
            CodexErrorInfo::ContextWindowExceeded,
        ),
        (
            404,
            "not here",
            CodexErrorInfo::HttpConnectionFailed {
                http_status_code: Some(404),
            },
        ),
    ] {
        let server = Server::start(vec![Reply::Status(status, vec![], body_text.into())]);
        let events = collect(&key_client(&server, 4).start(&body(), "s"));
        let err = failure(&events);
        assert_eq!(err.info, info, "{status} {body_text}");
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(server.requests().len(), 1);
    }
}

#[test]
fn transport_errors_are_retried() {
    // Closed without an answer, then fine.
    let server = Server::start(vec![Reply::Close, ok_stream()]);
    let events = collect(&key_client(&server, 2).start(&body(), "s"));
    assert_eq!(retries_announced(&events), [1]);
    assert!(matches!(events.last(), Some(StreamEvent::Completed { .. })));

    // Nobody listening at all.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = client(
        provider(&format!("http://127.0.0.1:{port}/v1"), None, false, 2),
        Arc::new(FakeAuth::new(vec![])),
    );
    let events = collect(&client.start(&body(), "s"));
    assert_eq!(retries_announced(&events), [1, 2]);
    let err = failure(&events);
    assert_eq!(
        err.info,
        CodexErrorInfo::HttpConnectionFailed {
            http_status_code: None
        }
    );
    assert!(!err.is_stream_disconnect);
    assert!(
        err.message.starts_with("connection failed: "),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        err.message
    );
}

#[test]
fn unauthorized_recovers_once_with_the_new_credentials() {
    let server = Server::start(vec![
        Reply::Status(
            401,
            vec![],
            r#"{"error":{"message":"token expired"}}"#.into(),
        ),
        ok_stream(),
    ]);
    let auth = Arc::new(FakeAuth::new(vec![
        ("old-token", Some("acc-old")),
        ("new-token", Some("acc-new")),
    ]));
    let client = client(provider(&server.url(), None, true, 0), auth.clone());
    let events = collect(&client.start(&body(), "s"));
    assert!(
        matches!(events.last(), Some(StreamEvent::Completed { .. })),
        "{events:?}"
    );
    assert!(
        retries_announced(&events).is_empty(),
        "a 401 is not a request retry"
    );
    assert_eq!(auth.recoveries.load(Ordering::SeqCst), 1);
    assert_eq!(*auth.failed_with.lock().unwrap(), ["old-token"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer old-token")
    );
    assert_eq!(requests[0].header("chatgpt-account-id"), Some("acc-old"));
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer new-token")
    );
    assert_eq!(requests[1].header("chatgpt-account-id"), Some("acc-new"));
}

#[test]
fn unauthorized_twice_fails_with_the_second_401() {
    let server = Server::start(vec![
        Reply::Status(401, vec![], "first".into()),
        Reply::Status(401, vec![], r#"{"detail":"still not valid"}"#.into()),
    ]);
    let auth = Arc::new(FakeAuth::new(vec![("a", None), ("b", None)]));
    let client = client(provider(&server.url(), None, true, 4), auth.clone());
    let events = collect(&client.start(&body(), "s"));
    let err = failure(&events);
    assert_eq!(
        err.message,
        "unexpected status 401 Unauthorized: still not valid"
    );
    assert_eq!(
        err.info,
        CodexErrorInfo::HttpConnectionFailed {
            http_status_code: Some(401)
        }
    );
    assert_eq!(auth.recoveries.load(Ordering::SeqCst), 1);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn unauthorized_without_recovery() {
    // The auth provider has nothing to offer.
    let server = Server::start(vec![Reply::Status(401, vec![], "nope".into())]);
    let mut fake = FakeAuth::new(vec![("a", None)]);
    fake.recover_result = Ok(false);
    let auth = Arc::new(fake);
    let events =
        collect(&client(provider(&server.url(), None, true, 4), auth.clone()).start(&body(), "s"));
    assert_eq!(
        failure(&events).message,
        "unexpected status 401 Unauthorized: nope"
    );
    assert_eq!(server.requests().len(), 1);

    // Recovery itself fails: its error is the round trip's, as is.
    let server = Server::start(vec![Reply::Status(401, vec![], "nope".into())]);
    let mut fake = FakeAuth::new(vec![("a", None)]);
    fake.recover_result = Err(ClientError::new(
        "auth refresh request timed out after 10s",
        CodexErrorInfo::Other,
        None,
    ));
    let events = collect(
        &client(provider(&server.url(), None, true, 4), Arc::new(fake)).start(&body(), "s"),
    );
    assert_eq!(
        failure(&events).message,
        "auth refresh request timed out after 10s"
    );
    assert_eq!(failure(&events).info, CodexErrorInfo::Other);

    // An env-key provider never asks the auth provider.
    let server = Server::start(vec![Reply::Status(401, vec![], "bad key".into())]);
    let auth = Arc::new(FakeAuth::new(vec![("a", None)]));
    let events = collect(
        &client(
            provider(&server.url(), Some("MOCK_KEY"), false, 4),
            auth.clone(),
        )
        .start(&body(), "s"),
    );
    assert_eq!(
        failure(&events).message,
        "unexpected status 401 Unauthorized: bad key"
    );
    assert_eq!(auth.recoveries.load(Ordering::SeqCst), 0);
}

#[test]
fn auth_set_up_failures_send_no_request() {
    let server = Server::start(vec![]);
    let events = collect(
        &client(
            provider(&server.url(), None, true, 4),
            Arc::new(FakeAuth::new(vec![])),
        )
        .start(&body(), "s"),
    );
    let err = failure(&events);
    assert_eq!(err.message, "not logged in: run account/login/start first");
    assert_eq!(err.info, CodexErrorInfo::Unauthorized);

    let events = collect(
        &client(
            provider(&server.url(), Some("OTHER_KEY"), false, 4),
            Arc::new(FakeAuth::new(vec![])),
        )
        .start(&body(), "s"),
    );
    assert_eq!(
        failure(&events).message,
        "Missing environment variable: `OTHER_KEY`."
    );
    assert!(server.requests().is_empty());
}

#[test]
fn a_stream_ending_before_completion_is_a_disconnect() {
    for end in [End::Drop, End::Finish] {
        let server = Server::start(vec![Reply::Sse(vec![created(), delta("x")], end)]);
        let events = collect(&key_client(&server, 0).start(&body(), "s"));
        assert_eq!(events.len(), 3, "{events:?}");
        let err = failure(&events);
        assert!(err.is_stream_disconnect);
        assert_eq!(
            err.info,
            CodexErrorInfo::ResponseStreamDisconnected {
                http_status_code: Some(200)
            }
        );
        assert!(
            err.message
                .starts_with("stream disconnected before completion: "),
            "{}",
            err.message
        );
    }
}

#[test]
fn response_failed_is_final_with_the_server_message() {
    let server = Server::start(vec![Reply::Sse(
        vec![
            created(),
            sse(json!({"type":"response.failed","response":{"error":{
                "code":"context_length_exceeded","message":"Your input exceeds the context window"}}})),
        ],
        End::Stall,
    )]);
    let events = collect(&key_client(&server, 0).start(&body(), "s"));
    let err = failure(&events);
    assert_eq!(err.message, "Your input exceeds the context window");
    assert_eq!(err.info, CodexErrorInfo::ContextWindowExceeded);
    assert!(!err.is_stream_disconnect);
    server.assert_client_closed();
}

#[test]
fn abort_while_the_body_stalls() {
    let server = Server::start(vec![Reply::Sse(vec![created(), delta("x")], End::Stall)]);
    let stream = key_client(&server, 0).start(&body(), "s");
    let first = stream.events().recv_timeout(PATIENCE).unwrap();
    assert!(matches!(first, StreamEvent::Created { .. }));
    abort_promptly(&stream);
    server.assert_client_closed();
}

#[test]
fn abort_while_waiting_for_the_response_headers() {
    let server = Server::start(vec![Reply::Hang]);
    let stream = key_client(&server, 0).start(&body(), "s");
    let deadline = Instant::now() + PATIENCE;
    while server.requests().is_empty() {
        assert!(Instant::now() < deadline, "request never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    abort_promptly(&stream);
    server.assert_client_closed();
}

#[test]
fn abort_during_a_backoff_sleep() {
    let server = Server::start(vec![Reply::Status(
        429,
        vec![("retry-after", "30".into())],
        "later".into(),
    )]);
    let stream = key_client(&server, 4).start(&body(), "s");
    let first = stream.events().recv_timeout(PATIENCE).unwrap();
    assert!(
        matches!(first, StreamEvent::Retrying { attempt: 1, delay } if delay == Duration::from_secs(30))
    );
    abort_promptly(&stream);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn abort_while_the_reader_is_blocked_on_a_full_channel() {
    let events: Vec<String> = (0..2 * EVENT_CHANNEL_CAPACITY)
        .map(|_| delta("x"))
        .collect();
    let server = Server::start(vec![Reply::Sse(events, End::Stall)]);
    let stream = key_client(&server, 0).start(&body(), "s");
    let deadline = Instant::now() + PATIENCE;
    while stream.events().len() < EVENT_CHANNEL_CAPACITY {
        assert!(Instant::now() < deadline, "channel never filled");
        std::thread::sleep(Duration::from_millis(5));
    }
    abort_promptly(&stream);
    server.assert_client_closed();
}

#[test]
fn abort_before_anything_happened_and_twice() {
    let server = Server::start(vec![Reply::Hang]);
    let stream = key_client(&server, 0).start(&body(), "s");
    stream.abort();
    abort_promptly(&stream);
}

#[test]
fn dropping_the_stream_closes_the_connection() {
    let server = Server::start(vec![Reply::Sse(vec![created()], End::Stall)]);
    let stream = key_client(&server, 0).start(&body(), "s");
    let events = stream.events().clone();
    assert!(matches!(
        events.recv_timeout(PATIENCE).unwrap(),
        StreamEvent::Created { .. }
    ));
    drop(stream);
    server.assert_client_closed();
    assert!(matches!(
        events.recv_timeout(PATIENCE),
        Err(RecvTimeoutError::Disconnected)
    ));
}

#[test]
fn settings_and_their_defaults() {
    let mut p = provider("http://127.0.0.1:1/v1", None, false, 0);
    p.request_max_retries = None;
    let c = client(p.clone(), Arc::new(FakeAuth::new(vec![])));
    assert_eq!(c.request_max_retries(), 4);
    assert_eq!(c.stream_max_retries(), 5);
    assert_eq!(c.stream_idle_timeout(), Duration::from_millis(300_000));
    p.request_max_retries = Some(1);
    p.stream_max_retries = Some(1_000);
    p.stream_idle_timeout_ms = Some(1500);
    let c = client(p, Arc::new(FakeAuth::new(vec![])));
    assert_eq!(c.request_max_retries(), 1);
    assert_eq!(c.stream_max_retries(), 100);
    assert_eq!(c.stream_idle_timeout(), Duration::from_millis(1500));
}

#[test]
fn https_goes_through_rustls_on_our_socket_and_aborts_mid_handshake() {
    // A plain TCP listener: it sees the TLS ClientHello, then keeps quiet.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = client(
        provider(&format!("https://127.0.0.1:{port}/v1"), None, false, 0),
        Arc::new(FakeAuth::new(vec![])),
    );
    let stream = client.start(&body(), "s");
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut record_type = [0u8; 1];
    conn.read_exact(&mut record_type).unwrap();
    assert_eq!(record_type[0], 0x16, "not a TLS handshake record");
    abort_promptly(&stream);
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest); // returns once the client closed the socket
}

#[test]
fn a_tls_failure_is_a_connection_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Answer every ClientHello with plain HTTP: the handshake fails.
        for conn in listener.incoming().take(2) {
            let Ok(mut conn) = conn else { return };
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let client = client(
        provider(&format!("https://127.0.0.1:{port}/v1"), None, false, 1),
        Arc::new(FakeAuth::new(vec![])),
    );
    let events = collect(&client.start(&body(), "s"));
    let err = failure(&events);
    assert!(
        err.message.starts_with("connection failed: "),
        "{}",
        err.message
    );
}

/// 20 000 deltas all arrive, parsed and over loopback; also prints what they cost (`cargo test
/// --release client::tests::bench -- --nocapture`: numbers for reading, the goal is checked by
/// `examples/bench.rs`).
#[test]
fn bench_twenty_thousand_deltas() {
    const N: usize = 20_000;
    let one = delta("token ");
    let bytes = one.repeat(N).into_bytes();

    // Client-side work per delta: SSE framing and event mapping, fed in 32 KiB reads.
    let started = Instant::now();
    let mut parser = super::sse::SseParser::default();
    let mut count = 0;
    for chunk in bytes.chunks(32 * 1024) {
        parser.push(chunk);
        while let Some(event) = parser.next_event().unwrap() {
            if let super::events::Mapped::Event(StreamEvent::TextDelta { .. }) =
                super::events::map_event(event.event, event.data)
            {
                count += 1;
            }
        }
    }
    assert_eq!(count, N);
    println!("parse + map {N} deltas: {:?}", started.elapsed());

    // The whole round trip over loopback, the server writing one chunk per event.
    let mut events: Vec<String> = vec![one; N];
    events.push(completed());
    let server = Server::start(vec![Reply::Sse(events, End::Finish)]);
    let started = Instant::now();
    let got = collect(&key_client(&server, 0).start(&body(), "s"));
    assert_eq!(got.len(), N + 1);
    println!(
        "round trip with {N} deltas over loopback: {:?}",
        started.elapsed()
    );
}

#[test]
fn client_and_stream_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ModelClient>();
    send_sync::<ResponseStream>();
    send_sync::<StreamEvent>();
    send_sync::<ClientError>();
}

#[test]
fn request_body_splices_the_serialized_history_into_input() {
    let history = |items: &[Value]| -> Vec<u8> {
        items
            .iter()
            .map(|i| serde_json::to_string(i).unwrap())
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes()
    };
    let a = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a\"b"}]});
    let b = json!({"type": "function_call_output", "call_id": "c", "output": "x"});
    let pre = json!({"type": "additional_tools", "role": "developer", "tools": []});
    // (body, history items, the input array expected)
    let cases = [
        (json!({"model": "m", "input": []}), vec![], json!([])),
        (
            json!({"model": "m", "input": []}),
            vec![a.clone(), b.clone()],
            json!([a, b]),
        ),
        (
            json!({"model": "m", "input": [pre], "stream": true}),
            vec![a.clone()],
            json!([pre, a]),
        ),
        (json!({"model": "m", "input": [pre]}), vec![], json!([pre])),
        (json!({"model": "m"}), vec![b.clone()], json!([b])),
        (json!({}), vec![a.clone()], json!([a])),
    ];
    for (body, items, input) in cases {
        let request = ModelRequest {
            body: body.clone(),
            history: history(&items),
            lite: false,
        };
        let sent: Value = serde_json::from_slice(&request.to_json().unwrap()).unwrap();
        let mut expected = body;
        expected["input"] = input;
        assert_eq!(sent, expected);
        if items.is_empty() {
            // Nothing to splice: exactly what serde_json writes for the body itself.
            assert_eq!(
                request.to_json().unwrap(),
                serde_json::to_vec(&request.body).unwrap()
            );
        }
    }
}
