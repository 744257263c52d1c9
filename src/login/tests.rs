//! Flow tests against a mock issuer: a std `TcpListener` on 127.0.0.1:0 answering the OAuth
//! and device endpoints by a per-test function and recording every request. Loopback only;
//! every server and login is stopped before its test returns.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use crossbeam_channel::Receiver;
use serde_json::{Value, json};

use super::http::{first, parse_pairs, parse_request_line};
use super::oauth::{self, RefreshError};
use super::*;
use crate::ids;

/// One request the mock issuer received.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    content_type: String,
    body: String,
}

impl Recorded {
    fn form(&self) -> HashMap<String, String> {
        assert_eq!(self.content_type, "application/x-www-form-urlencoded");
        parse_pairs(&self.body).into_iter().collect()
    }

    fn json(&self) -> Value {
        assert_eq!(self.content_type, "application/json");
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Answers a request: the request and how many earlier requests went to the same path.
type Handler = dyn Fn(&Recorded, usize) -> (u16, String) + Send + Sync;

struct MockIssuer {
    url: String,
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockIssuer {
    fn start(handler: impl Fn(&Recorded, usize) -> (u16, String) + Send + Sync + 'static) -> Self {
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

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn requests_to(&self, path: &str) -> Vec<Recorded> {
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

fn serve_one(mut stream: TcpStream, requests: &Mutex<Vec<Recorded>>, handler: &Handler) {
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
fn jwt(account: &str) -> String {
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
fn token_endpoint(account: &str, r: &Recorded) -> (u16, String) {
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

fn options(issuer: &MockIssuer, forced: Option<Vec<&str>>) -> LoginOptions {
    LoginOptions {
        issuer: issuer.url.clone(),
        callback_port: 0,
        originator: "codex_test".into(),
        forced_workspace_ids: forced.map(|ids| ids.into_iter().map(String::from).collect()),
    }
}

type Outcome = Result<LoginSuccess, String>;

/// A callback that forwards the outcome to the returned receiver.
fn reporter() -> (LoginCallback, Receiver<Outcome>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let callback: LoginCallback = Box::new(move |outcome| {
        tx.send(outcome).unwrap();
    });
    (callback, rx)
}

fn outcome(rx: &Receiver<Outcome>) -> Outcome {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the login reported nothing")
}

/// A plain HTTP GET to the callback server: status, headers, body.
fn get(port: u16, target: &str) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn query_of(url: &str) -> Vec<(String, String)> {
    parse_pairs(url.split_once('?').unwrap().1)
}

/// Whether the port can be bound again within a second (the listener is closed).
fn port_is_free(port: u16) -> bool {
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn browser_login_end_to_end() {
    let issuer = MockIssuer::start(|r, _| match r.path.as_str() {
        "/oauth/token" => token_endpoint("org-1", r),
        _ => (404, "{}".into()),
    });
    let (on_done, rx) = reporter();
    let login = start_browser_login(options(&issuer, Some(vec!["org-1"])), on_done).unwrap();
    let port = login.callback_port;
    let params = query_of(&login.auth_url);
    let param = |k: &str| first(&params, k).unwrap().to_string();
    assert!(
        login
            .auth_url
            .starts_with(&format!("{}/oauth/authorize?", issuer.url))
    );
    assert_eq!(
        param("redirect_uri"),
        format!("http://localhost:{port}/auth/callback")
    );
    assert_eq!(param("client_id"), oauth::CLIENT_ID);
    assert_eq!(param("originator"), "codex_test");
    assert_eq!(param("allowed_workspace_id"), "org-1");
    assert!(ids::is_uuid(&login.login_id));
    let state = param("state");

    // Wrong or missing state: 400, still pending; unknown paths: 404.
    for target in [
        "/auth/callback?code=c1&state=wrong".to_string(),
        "/auth/callback?code=c1".to_string(),
        format!("/auth/callback?error=access_denied&state={state}x"),
    ] {
        assert_eq!(get(port, &target).0, 400, "{target}");
    }
    assert_eq!(get(port, "/elsewhere").0, 404);
    assert_eq!(get(port, "/success").0, 404);
    assert!(rx.try_recv().is_err());
    assert!(issuer.requests().is_empty());

    let (status, headers, _) = get(port, &format!("/auth/callback?code=c%2F1&state={state}"));
    assert_eq!(status, 302);
    let location = headers.iter().find(|(k, _)| k == "location").unwrap();
    assert_eq!(location.1, format!("http://localhost:{port}/success"));
    let success = outcome(&rx).unwrap();
    assert_eq!(success.tokens.id_token.expose(), jwt("org-1"));
    assert_eq!(success.tokens.access_token.expose(), "acc-1");
    assert_eq!(success.tokens.refresh_token.expose(), "ref-1");
    assert_eq!(success.tokens.account_id.as_deref(), Some("org-1"));
    assert_eq!(success.api_key.unwrap().expose(), "sk-exchanged");

    let token_requests = issuer.requests_to("/oauth/token");
    assert_eq!(token_requests.len(), 2);
    let exchange = token_requests[0].form();
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange["client_id"], oauth::CLIENT_ID);
    assert_eq!(exchange["code"], "c/1");
    assert_eq!(exchange["redirect_uri"], param("redirect_uri"));
    assert_eq!(
        browser::code_challenge(&exchange["code_verifier"]),
        param("code_challenge")
    );
    assert_eq!(param("code_challenge_method"), "S256");
    let key = token_requests[1].form();
    assert_eq!(
        key["grant_type"],
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(key["client_id"], oauth::CLIENT_ID);
    assert_eq!(key["requested_token"], "openai-api-key");
    assert_eq!(key["subject_token"], jwt("org-1"));
    assert_eq!(
        key["subject_token_type"],
        "urn:ietf:params:oauth:token-type:id_token"
    );

    // The browser follows the redirect; then the server closes.
    let (status, _, body) = get(port, "/success");
    assert_eq!(status, 200);
    assert!(body.contains("Signed in"), "{body}");
    assert!(port_is_free(port));
    login.cancel();
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
}

#[test]
fn browser_cancel_reports_once_and_frees_the_port() {
    let issuer = MockIssuer::start(|_, _| (500, "{}".into()));
    let (on_done, rx) = reporter();
    let login = start_browser_login(options(&issuer, None), on_done).unwrap();
    let port = login.callback_port;
    login.cancel();
    assert_eq!(outcome(&rx).unwrap_err(), "login canceled");
    // cancel() returns once the listener is closed.
    assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    login.cancel();
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    assert!(issuer.requests().is_empty());
}

#[test]
fn browser_workspace_mismatch_fails_the_login() {
    let issuer = MockIssuer::start(|r, _| token_endpoint("org-other", r));
    let (on_done, rx) = reporter();
    let opts = options(&issuer, Some(vec!["org-allowed", "org-second"]));
    let login = start_browser_login(opts, on_done).unwrap();
    let state = first(&query_of(&login.auth_url), "state")
        .unwrap()
        .to_string();
    assert_eq!(
        first(&query_of(&login.auth_url), "allowed_workspace_id"),
        Some("org-allowed,org-second")
    );
    let (status, _, body) = get(
        login.callback_port,
        &format!("/auth/callback?code=c&state={state}"),
    );
    let message = "Login is restricted to workspace(s) org-allowed, org-second, but current credentials belong to org-other";
    assert_eq!(outcome(&rx).unwrap_err(), message);
    assert_eq!(status, 200);
    assert!(body.contains(message), "{body}");
    // No API key is asked for a refused login, and the server is closed.
    assert_eq!(issuer.requests_to("/oauth/token").len(), 1);
    assert!(port_is_free(login.callback_port));
}

#[test]
fn browser_callback_errors_fail_the_login() {
    let issuer = MockIssuer::start(|_, _| {
        (
            400,
            r#"{"error":"invalid_grant","error_description":"code expired"}"#.into(),
        )
    });
    // An `error` with the right state.
    let (on_done, rx) = reporter();
    let login = start_browser_login(options(&issuer, None), on_done).unwrap();
    let state = first(&query_of(&login.auth_url), "state")
        .unwrap()
        .to_string();
    let target =
        format!("/auth/callback?error=access_denied&error_description=not+allowed&state={state}");
    assert_eq!(get(login.callback_port, &target).0, 200);
    assert_eq!(outcome(&rx).unwrap_err(), "Sign-in failed: not allowed");
    assert!(issuer.requests().is_empty());
    // A failing code exchange.
    let (on_done, rx) = reporter();
    let login = start_browser_login(options(&issuer, None), on_done).unwrap();
    let state = first(&query_of(&login.auth_url), "state")
        .unwrap()
        .to_string();
    get(
        login.callback_port,
        &format!("/auth/callback?code=c&state={state}"),
    );
    let message = outcome(&rx).unwrap_err();
    assert!(message.starts_with("token exchange failed: "), "{message}");
    assert!(
        message.ends_with("/oauth/token returned status 400 Bad Request: code expired"),
        "{message}"
    );
    assert!(port_is_free(login.callback_port));
}

#[test]
fn browser_login_times_out() {
    let issuer = MockIssuer::start(|_, _| (500, "{}".into()));
    let (on_done, rx) = reporter();
    let started = Instant::now();
    let login =
        browser::start(options(&issuer, None), on_done, Duration::from_millis(200)).unwrap();
    assert_eq!(outcome(&rx).unwrap_err(), "login timed out");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(port_is_free(login.callback_port));
    login.cancel();
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
}

const FAST: device::Timing = device::Timing {
    overall: Duration::from_secs(20),
    min_interval: Duration::from_millis(10),
};

fn device_issuer(pending_polls: usize, interval: Value, key_status: u16) -> MockIssuer {
    MockIssuer::start(move |r, nth| {
        match r.path.as_str() {
        "/api/accounts/deviceauth/usercode" => (
            200,
            json!({"device_auth_id": "dev-1", "user_code": "ABCD-1234", "interval": interval}).to_string(),
        ),
        "/api/accounts/deviceauth/token" if nth < pending_polls => {
            (if nth % 2 == 0 { 403 } else { 404 }, r#"{"error":"pending"}"#.into())
        }
        "/api/accounts/deviceauth/token" => (
            200,
            json!({"authorization_code": "dev-code", "code_challenge": "x", "code_verifier": "dev-verifier"})
                .to_string(),
        ),
        "/oauth/token" if r.body.contains("token-exchange") && key_status != 200 => {
            (key_status, "{}".into())
        }
        "/oauth/token" => token_endpoint("org-1", r),
        _ => (404, "{}".into()),
    }
    })
}

#[test]
fn device_login_polls_until_approved() {
    let issuer = device_issuer(2, json!("0"), 200);
    let (on_done, rx) = reporter();
    let login = device::start(options(&issuer, None), on_done, FAST).unwrap();
    assert_eq!(
        login.verification_url,
        format!("{}/codex/device", issuer.url)
    );
    assert_eq!(login.user_code, "ABCD-1234");
    let success = outcome(&rx).unwrap();
    assert_eq!(success.tokens.account_id.as_deref(), Some("org-1"));
    assert_eq!(success.api_key.unwrap().expose(), "sk-exchanged");

    let usercode = issuer.requests_to("/api/accounts/deviceauth/usercode");
    assert_eq!(usercode.len(), 1);
    assert_eq!(usercode[0].json(), json!({"client_id": oauth::CLIENT_ID}));
    let polls = issuer.requests_to("/api/accounts/deviceauth/token");
    assert_eq!(polls.len(), 3);
    for poll in &polls {
        assert_eq!(
            poll.json(),
            json!({"device_auth_id": "dev-1", "user_code": "ABCD-1234"})
        );
    }
    let exchange = issuer.requests_to("/oauth/token")[0].form();
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange["code"], "dev-code");
    assert_eq!(exchange["code_verifier"], "dev-verifier");
    assert_eq!(
        exchange["redirect_uri"],
        format!("{}/deviceauth/callback", issuer.url)
    );
    login.cancel();
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
}

#[test]
fn device_login_without_api_key_still_succeeds() {
    let issuer = device_issuer(0, json!(0.01), 400);
    let (on_done, rx) = reporter();
    let _login = device::start(options(&issuer, None), on_done, FAST).unwrap();
    let success = outcome(&rx).unwrap();
    assert_eq!(success.api_key, None);
    assert_eq!(success.tokens.access_token.expose(), "acc-1");
}

#[test]
fn device_login_cancel_timeout_and_failure() {
    // Cancel while waiting out a long interval: reported at once, polling stops.
    let issuer = device_issuer(usize::MAX, json!(30), 200);
    let (on_done, rx) = reporter();
    let login = device::start(options(&issuer, None), on_done, FAST).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while issuer
        .requests_to("/api/accounts/deviceauth/token")
        .is_empty()
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    login.cancel();
    assert_eq!(outcome(&rx).unwrap_err(), "login canceled");
    login.cancel();
    std::thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err());
    assert_eq!(
        issuer.requests_to("/api/accounts/deviceauth/token").len(),
        1
    );

    // Still pending at the cap.
    let (on_done, rx) = reporter();
    let short = device::Timing {
        overall: Duration::from_millis(100),
        min_interval: Duration::from_millis(10),
    };
    let _login = device::start(options(&issuer, None), on_done, short).unwrap();
    assert_eq!(
        outcome(&rx).unwrap_err(),
        "device auth timed out after 15 minutes"
    );

    // A poll answered with neither success nor pending.
    let failing = MockIssuer::start(|r, _| match r.path.as_str() {
        "/api/accounts/deviceauth/usercode" => (
            200,
            r#"{"device_auth_id":"d","user_code":"U","interval":0}"#.into(),
        ),
        _ => (500, "boom".into()),
    });
    let (on_done, rx) = reporter();
    let _login = device::start(options(&failing, None), on_done, FAST).unwrap();
    let message = outcome(&rx).unwrap_err();
    assert!(message.starts_with("device auth failed: "), "{message}");
    assert!(
        message.ends_with("returned status 500 Internal Server Error: boom"),
        "{message}"
    );

    // No device code at all: start fails and never reports.
    let refusing = MockIssuer::start(|_, _| (404, "{}".into()));
    let (on_done, rx) = reporter();
    assert!(device::start(options(&refusing, None), on_done, FAST).is_err());
    assert!(rx.try_recv().is_err());
}

#[test]
fn refresh_grant_outcomes() {
    let issuer = MockIssuer::start(|r, _| {
        let body = r.json();
        match body["refresh_token"].as_str().unwrap() {
            "good" => (
                200,
                json!({"id_token": "i2", "access_token": "a2", "refresh_token": "r2"}).to_string(),
            ),
            "partial" => (200, json!({"access_token": "a3"}).to_string()),
            "reused" => (
                401,
                json!({"error": {"code": "refresh_token_reused", "message": "x"}}).to_string(),
            ),
            "expired" => (400, json!({"error": "refresh_token_expired"}).to_string()),
            "invalidated" => (
                401,
                json!({"error": {"code": "refresh_token_invalidated"}}).to_string(),
            ),
            _ => (500, "upstream unavailable".into()),
        }
    });
    let tokens = oauth::refresh(&issuer.url, &Secret::new("good")).unwrap();
    assert_eq!(tokens.id_token.unwrap().expose(), "i2");
    assert_eq!(tokens.access_token.unwrap().expose(), "a2");
    assert_eq!(tokens.refresh_token.unwrap().expose(), "r2");
    assert_eq!(
        issuer.requests()[0].json(),
        json!({"client_id": oauth::CLIENT_ID, "grant_type": "refresh_token", "refresh_token": "good"})
    );
    let partial = oauth::refresh(&issuer.url, &Secret::new("partial")).unwrap();
    assert_eq!((partial.id_token, partial.refresh_token), (None, None));
    assert_eq!(partial.access_token.unwrap().expose(), "a3");
    for code in ["reused", "expired", "invalidated"] {
        match oauth::refresh(&issuer.url, &Secret::new(code)) {
            Err(RefreshError::Permanent { code: got, message }) => {
                assert_eq!(got, format!("refresh_token_{code}"));
                assert!(message.contains("log out and sign in again"), "{message}");
            }
            other => panic!("{code}: {other:?}"),
        }
    }
    match oauth::refresh(&issuer.url, &Secret::new("other")) {
        Err(RefreshError::Transient(message)) => assert_eq!(
            message,
            format!(
                "token refresh failed: {}/oauth/token returned status 500 Internal Server Error: upstream unavailable",
                issuer.url
            )
        ),
        other => panic!("{other:?}"),
    }
    // Nothing listening: transient, and the message never carries the token.
    let closed = format!(
        "http://{}",
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    );
    match oauth::refresh(&closed, &Secret::new("secret-refresh-token")) {
        Err(RefreshError::Transient(message)) => {
            assert!(
                message.starts_with("token refresh failed: request to "),
                "{message}"
            );
            assert!(!message.contains("secret-refresh-token"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn revoke_posts_the_refresh_token() {
    let issuer = MockIssuer::start(|r, _| match r.json()["token"].as_str() {
        Some("r-ok") => (200, "{}".into()),
        _ => (503, "{}".into()),
    });
    oauth::revoke(&issuer.url, &Secret::new("r-ok")).unwrap();
    let requests = issuer.requests_to("/oauth/revoke");
    assert_eq!(
        requests[0].json(),
        json!({"token": "r-ok", "token_type_hint": "refresh_token", "client_id": oauth::CLIENT_ID})
    );
    let err = oauth::revoke(&issuer.url, &Secret::new("r-bad")).unwrap_err();
    assert_eq!(err.status(), Some(503));
}
