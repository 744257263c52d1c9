//! Device-code login flows against the mock issuer.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::mock_issuer::{MockIssuer, options, outcome, reporter, token_endpoint};
use crate::login::{device, oauth};

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
    assert!(!login.cancel());
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
    assert!(login.cancel());
    assert_eq!(outcome(&rx).unwrap_err(), "login canceled");
    assert!(!login.cancel());
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
