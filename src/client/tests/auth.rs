//! The 401 loop with a fake [`AuthProvider`]: one recovery with new credentials, a second 401,
//! no recovery at all, and auth set-up failures that send nothing.

use super::*;

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
