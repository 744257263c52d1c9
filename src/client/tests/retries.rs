//! Request-level retries: server errors, 429 with `Retry-After`, usage limits, client errors
//! that are never retried, transport errors, and the retry settings with their defaults.

use super::*;

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
