//! Round trips that work (events in order, the request sent, many deltas, the history spliced
//! into the body) and streams that end early or fail, with what 20 000 deltas cost.

use super::*;

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

/// 20 000 deltas all arrive, parsed and over loopback; also prints what they cost (`cargo test
/// --release client::tests::streams::bench -- --nocapture`: numbers for reading, the goal is
/// checked by `examples/bench.rs`).
#[test]
fn bench_twenty_thousand_deltas() {
    const N: usize = 20_000;
    let one = delta("token ");
    let bytes = one.repeat(N).into_bytes();

    // Client-side work per delta: SSE framing and event mapping, fed in 32 KiB reads.
    let started = Instant::now();
    let mut parser = crate::client::sse::SseParser::default();
    let mut count = 0;
    for chunk in bytes.chunks(32 * 1024) {
        parser.push(chunk);
        while let Some(event) = parser.next_event().unwrap() {
            if let crate::client::events::Mapped::Event(StreamEvent::TextDelta { .. }) =
                crate::client::events::map_event(event.event, event.data)
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
