//! The mock Responses server itself: framing, recording, statuses, stalls and drops, checked
//! with a raw HTTP client so later suites can trust it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::support::mock_responses::*;

fn raw_post(mock: &MockServer, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(mock.base().trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[test]
fn sse_replies_are_chunked_event_streams_and_requests_are_recorded() {
    let mock = MockServer::start();
    mock.push(text_reply("resp_1", "msg_1", &["he", "llo"]));
    let response = raw_post(&mock, "/v1/responses", r#"{"model":"m"}"#);
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("content-type: text/event-stream"));
    assert!(response.contains("transfer-encoding: chunked"));
    assert!(response.contains("event: response.output_text.delta\ndata: {"));
    assert!(response.contains(r#""delta":"llo""#));
    assert!(response.ends_with("0\r\n\r\n"), "{response}");
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v1/responses");
    assert_eq!(requests[0].header("authorization"), Some("Bearer k"));
    assert_eq!(requests[0].json(), json!({"model": "m"}));
}

#[test]
fn replies_come_in_order_then_default_to_500() {
    let mock = MockServer::start();
    mock.push(status_with_headers(
        429,
        &[("Retry-After", "1")],
        r#"{"error":{"message":"slow"}}"#,
    ));
    mock.push(status(400, "bad"));
    let first = raw_post(&mock, "/v1/responses", "{}");
    assert!(
        first.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{first}"
    );
    assert!(first.contains("Retry-After: 1\r\n"));
    assert!(first.ends_with(r#"{"error":{"message":"slow"}}"#));
    assert!(raw_post(&mock, "/v1/responses", "{}").starts_with("HTTP/1.1 400"));
    let unscripted = raw_post(&mock, "/v1/responses", "{}");
    assert!(unscripted.starts_with("HTTP/1.1 500"), "{unscripted}");
    assert!(unscripted.contains("no reply scripted"));
    assert_eq!(mock.wait_for_requests(3).len(), 3);
}

#[test]
fn routes_and_dynamic_replies() {
    let mock = MockServer::start();
    mock.push_route("/oauth/token", status(200, r#"{"access_token":"a"}"#));
    mock.set_route(
        "/echo",
        Reply::Dynamic(std::sync::Arc::new(|req: &RecordedRequest| {
            status(
                200,
                req.header("authorization").unwrap_or("none").to_string(),
            )
        })),
    );
    assert!(raw_post(&mock, "/oauth/token?x=1", "grant").ends_with(r#"{"access_token":"a"}"#));
    assert!(raw_post(&mock, "/oauth/token", "grant").starts_with("HTTP/1.1 500"));
    assert!(raw_post(&mock, "/echo", "").ends_with("Bearer k"));
    assert!(raw_post(&mock, "/echo", "").ends_with("Bearer k"));
    assert_eq!(mock.requests_to("/oauth/token").len(), 2);
    assert_eq!(mock.requests_to("/oauth/token")[0].text(), "grant");
}

#[test]
fn stalls_hold_the_connection_and_drops_cut_the_body() {
    let mock = MockServer::start();
    mock.push(sse_then_stall(vec![ev_created("r")]));
    mock.push(sse_then_drop(vec![ev_created("r")]));
    let mut stream = TcpStream::connect(mock.base().trim_start_matches("http://")).unwrap();
    stream
        .write_all(b"POST /v1/responses HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut seen = String::new();
    while !seen.contains("response.created") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let err = stream.read(&mut buf).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    drop(stream);

    let dropped = raw_post(&mock, "/v1/responses", "{}");
    assert!(dropped.contains("response.created"));
    assert!(!dropped.ends_with("0\r\n\r\n"), "{dropped}");
}
