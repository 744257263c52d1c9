//! The refresh grant and revocation against the mock issuer.

use std::net::TcpListener;

use serde_json::json;

use super::mock_issuer::MockIssuer;
use crate::login::oauth::{self, RefreshError};
use crate::secret::Secret;

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
