//! The mock issuer of the login tests: a std `TcpListener` on 127.0.0.1:0 answering each
//! request by a per-test function and recording it; plus JWT, options and callback helpers.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use crossbeam_channel::Receiver;
use serde_json::{Value, json};

use super::super::http::{parse_pairs, parse_request_line};
use super::super::{LoginCallback, LoginOptions, LoginSuccess};

/// One request the mock issuer received.
#[derive(Debug, Clone)]
pub(super) struct Recorded {
    pub(super) path: String,
    pub(super) content_type: String,
    pub(super) body: String,
}

impl Recorded {
    pub(super) fn form(&self) -> HashMap<String, String> {
        assert_eq!(self.content_type, "application/x-www-form-urlencoded");
        parse_pairs(&self.body).into_iter().collect()
    }

    pub(super) fn json(&self) -> Value {
        assert_eq!(self.content_type, "application/json");
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Answers a request: the request and how many earlier requests went to the same path.
pub(super) type Handler = dyn Fn(&Recorded, usize) -> (u16, String) + Send + Sync;

pub(super) struct MockIssuer {
    pub(super) url: String,
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockIssuer {
    pub(super) fn start(
        handler: impl Fn(&Recorded, usize) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::Builder::new()
                .name("mock-issuer".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if let Ok(stream) = stream {
                            serve_one(stream, &requests, &*handler);
                        }
                    }
                })
                .unwrap()
        };
        Self {
            url: format!("http://{addr}"),
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub(super) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub(super) fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

impl Drop for MockIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(super) fn serve_one(mut stream: TcpStream, requests: &Mutex<Vec<Recorded>>, handler: &Handler) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let length: usize = header("content-length")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    while data.len() < head_end + length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let request = parse_request_line(&head).unwrap();
    assert_eq!(request.method, "POST");
    let recorded = Recorded {
        path: request.path,
        content_type: header("content-type").unwrap_or_default(),
        body: String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned(),
    };
    let nth = {
        let mut all = requests.lock().unwrap();
        let nth = all.iter().filter(|r| r.path == recorded.path).count();
        all.push(recorded.clone());
        nth
    };
    let (status, body) = handler(&recorded, nth);
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// An unsigned JWT whose claims name `account` as the workspace.
pub(super) fn jwt(account: &str) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = json!({
        "email": "user@example.com",
        "https://api.openai.com/auth": {"chatgpt_account_id": account, "chatgpt_plan_type": "plus"}
    });
    format!(
        "{}.{}.sig",
        e.encode(br#"{"alg":"none"}"#),
        e.encode(claims.to_string())
    )
}

/// The usual `/oauth/token`: code exchange → tokens for `account`; token exchange → a key.
pub(super) fn token_endpoint(account: &str, r: &Recorded) -> (u16, String) {
    let form = r.form();
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => (
            200,
            json!({"id_token": jwt(account), "access_token": "acc-1", "refresh_token": "ref-1"})
                .to_string(),
        ),
        Some("urn:ietf:params:oauth:grant-type:token-exchange") => {
            (200, json!({"access_token": "sk-exchanged"}).to_string())
        }
        other => panic!("unexpected grant {other:?}"),
    }
}

pub(super) fn options(issuer: &MockIssuer, forced: Option<Vec<&str>>) -> LoginOptions {
    LoginOptions {
        issuer: issuer.url.clone(),
        callback_port: 0,
        originator: "codex_test".into(),
        forced_workspace_ids: forced.map(|ids| ids.into_iter().map(String::from).collect()),
    }
}

pub(super) type Outcome = Result<LoginSuccess, String>;

/// A callback that forwards the outcome to the returned receiver.
pub(super) fn reporter() -> (LoginCallback, Receiver<Outcome>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let callback: LoginCallback = Box::new(move |outcome| {
        tx.send(outcome).unwrap();
    });
    (callback, rx)
}

pub(super) fn outcome(rx: &Receiver<Outcome>) -> Outcome {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the login reported nothing")
}
