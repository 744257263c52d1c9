//! Aborts in every phase (headers, body, backoff, a full channel, before anything, twice), a
//! dropped stream closing its connection, and TLS on our own socket (aborted mid-handshake, a
//! failed handshake as a connection failure).

use super::*;

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
