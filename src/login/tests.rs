//! Flow tests against a mock issuer (`mock_issuer.rs`): the browser login here, the device
//! login in `device.rs`, refresh and revocation in `tokens.rs`. Loopback only; every server
//! and login is stopped before its test returns.

mod device;
mod mock_issuer;
mod tokens;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use mock_issuer::{MockIssuer, jwt, options, outcome, reporter, token_endpoint};

use super::http::{first, parse_pairs};
use super::{browser, oauth, start_browser_login};
use crate::ids;

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

    // An idle connection (a browser's pre-connection) does not hold up the callback.
    let _idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
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

    // A reload of the callback redirects again and reports nothing more.
    let (status, _, _) = get(port, &format!("/auth/callback?code=c%2F1&state={state}"));
    assert_eq!(status, 302);
    assert_eq!(issuer.requests_to("/oauth/token").len(), 2);

    // The browser follows the redirect; then the server closes.
    let (status, _, body) = get(port, "/success");
    assert_eq!(status, 200);
    assert!(body.contains("Signed in"), "{body}");
    assert!(port_is_free(port));
    assert!(!login.cancel());
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
}

#[test]
fn browser_cancel_reports_once_and_frees_the_port() {
    let issuer = MockIssuer::start(|_, _| (500, "{}".into()));
    let (on_done, rx) = reporter();
    let login = start_browser_login(options(&issuer, None), on_done).unwrap();
    let port = login.callback_port;
    // An idle connection does not keep cancel from closing the server at once.
    let _idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    assert!(login.cancel());
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(outcome(&rx).unwrap_err(), "login canceled");
    // cancel() returns once the listener is closed.
    assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    assert!(!login.cancel());
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
    assert!(!login.cancel());
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
}
