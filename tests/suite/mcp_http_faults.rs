//! The streamable-HTTP transport of MCP servers when things go wrong (mcp.md, MCP 2025-06-18
//! §Transports), against the scriptable server of `support/mcp_http_mock.rs`: an expired session,
//! a call outliving its timeout or interrupted (its connection closed, the server told), a
//! server that is not there or never answers `initialize`, answers that are not JSON, too large,
//! an error status, cut or without a result, and an event stream that keeps failing. In every
//! case the thread goes on and the error is clear.

use std::time::{Duration, Instant};

use serde_json::json;

use super::mcp::{call_reply, completed_item, output_sent, ready_thread, toml_str};
use super::mcp_http::{
    SOON, call_error, http_server, new_thread, push_calls, run_turn, spawn, spawn_web, start_error,
};
use super::turns::{finish_turn, interrupt_turn, last_turn, start_turn};
use crate::support::mcp_http_mock::{Behaviour, Events, McpHttpMock, Step};
use crate::support::mock_responses::*;

#[test]
fn an_expired_session_is_replaced_and_the_call_that_met_it_is_sent_again() {
    let mcp = McpHttpMock::builder()
        .tool("echo", Behaviour::Json("echoed".into()))
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["echo"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    let messages = run_turn(&mut server, &thread);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");

    // Twice: a session's end is routine for HTTP servers, not a death, so it does not use up
    // the server's one restart.
    for (round, session) in [(2, "mock-session-2"), (3, "mock-session-3")] {
        mcp.expire_sessions();
        let call = format!("c{round}");
        mock.push(call_reply(
            &format!("r{round}a"),
            &call,
            "mcp__web__echo",
            json!({}),
        ));
        mock.push(text_reply(&format!("r{round}b"), "m", &["again"]));
        start_turn(&mut server, &thread, "again");
        let messages = finish_turn(&mut server);
        assert_eq!(last_turn(&messages)["status"], "completed");
        // The call that met the 404 went again on a new session: a new `initialize`.
        let item = completed_item(&messages, &call);
        assert_eq!(item["status"], "completed", "round {round}: {item}");
        let calls = mcp.rpc("tools/call");
        let last = calls.last().unwrap();
        assert_eq!(
            last.header("mcp-session-id"),
            Some(session),
            "round {round}"
        );
        assert_eq!(mcp.rpc("initialize").len(), round, "round {round}");
    }
    assert_eq!(
        mcp.sessions(),
        ["mock-session-1", "mock-session-2", "mock-session-3"]
    );
    let initializes = mcp.rpc("initialize");
    for later in &initializes[1..] {
        assert_eq!(
            later.header("mcp-session-id"),
            None,
            "a new session starts clean"
        );
    }
    // Each expired call was sent twice: on the dead session, then on the new one.
    let calls = mcp.rpc("tools/call");
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[1].header("mcp-session-id"), Some("mock-session-1"));
    assert_eq!(calls[2].header("mcp-session-id"), Some("mock-session-2"));
    let status = server.call("mcpServerStatus/list", json!({})).unwrap();
    assert_eq!(status["data"][0]["runtimeStatus"], "connected", "{status}");
}

#[test]
fn a_call_that_outlives_its_timeout_fails_and_its_connection_is_closed() {
    let mcp = McpHttpMock::builder()
        .tool("stuck", Behaviour::Hang)
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["stuck"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "tool_timeout_sec=1");
    let messages = run_turn(&mut server, &thread);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let error = call_error(&messages, "c1");
    assert!(error.contains("timed out"), "{error}");
    let output = output_sent(&mock, 1, "c1");
    assert!(output.as_str().unwrap().contains("timed out"), "{output}");
    let call = mcp.wait_rpc("tools/call", 1, SOON);
    assert!(
        mcp.wait_closed(call.conn, Duration::from_secs(5)),
        "the held connection is closed by the client"
    );
}

#[test]
fn an_interrupt_closes_the_calls_connection_and_cancels_it() {
    let mcp = McpHttpMock::builder()
        .tool("stuck", Behaviour::Hang)
        .tool("echo", Behaviour::Json("after the interrupt".into()))
        .start();
    let mock = MockServer::start();
    mock.push(call_reply("r1", "c1", "mcp__web__stuck", json!({})));
    let (mut server, thread) = spawn_web(&mock, &mcp, "tool_timeout_sec=60");
    let turn = start_turn(&mut server, &thread, "go");
    server.take_matching("the call starts", |m| {
        m["method"] == "item/started" && m["params"]["item"]["id"] == "c1"
    });
    let call = mcp.wait_rpc("tools/call", 1, SOON);
    let started = Instant::now();
    let messages = interrupt_turn(&mut server, &thread, &turn);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the turn ended {:?} after the interrupt, not promptly",
        started.elapsed()
    );
    assert_eq!(call_error(&messages, "c1"), "interrupted");
    assert!(
        mcp.wait_closed(call.conn, Duration::from_secs(5)),
        "the call's connection is closed"
    );
    let cancelled = mcp.wait_rpc("notifications/cancelled", 1, SOON);
    assert_eq!(
        cancelled.json()["params"],
        json!({"requestId": call.json()["id"], "reason": "the user interrupted the turn"})
    );
    assert_eq!(cancelled.header("mcp-session-id"), Some("mock-session-1"));
    // The server is still usable.
    mock.push(call_reply("r2", "c2", "mcp__web__echo", json!({})));
    mock.push(text_reply("r3", "m1", &["done"]));
    let messages = run_turn(&mut server, &thread);
    assert_eq!(completed_item(&messages, "c2")["status"], "completed");
}

#[test]
fn a_server_that_is_not_there_fails_its_start_naming_the_url() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mock = MockServer::start();
    mock.push(text_reply("r1", "m1", &["still here"]));
    let mut server = spawn(
        &mock,
        &[format!("mcp_servers.gone={{url={}}}", toml_str(&url))],
        &[],
    );
    let thread = new_thread(&mut server);
    let error = start_error(&mut server, "gone");
    assert!(error.contains(&url), "the error names the URL: {error}");
    // The thread works without it.
    let messages = run_turn(&mut server, &thread);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let tools = mock.requests_to("/v1/responses")[0].json()["tools"].to_string();
    assert!(!tools.contains("mcp__gone"), "{tools}");
}

#[test]
fn answers_that_are_not_json_or_too_large_fail_their_call_and_the_server_stays_usable() {
    // Valid JSON in itself, but past the 16 MiB an answer may take.
    let mut huge = Vec::with_capacity(17 << 20);
    huge.push(b'"');
    huge.resize((17 << 20) - 1, b'a');
    huge.push(b'"');
    let mcp = McpHttpMock::builder()
        .tool(
            "garbage",
            Behaviour::Raw {
                status: 200,
                content_type: "application/json".into(),
                body: b"<html>this is not json</html>".to_vec(),
            },
        )
        .tool(
            "huge",
            Behaviour::Raw {
                status: 200,
                content_type: "application/json".into(),
                body: huge,
            },
        )
        .tool("fine", Behaviour::Json("fine".into()))
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["garbage", "huge", "fine"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    let messages = run_turn(&mut server, &thread);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let error = call_error(&messages, "c1");
    assert!(
        error.contains("web") && error.contains("not JSON"),
        "{error}"
    );
    let error = call_error(&messages, "c2");
    assert!(
        error.contains("web") && error.contains("larger than"),
        "{error}"
    );
    let output = output_sent(&mock, 2, "c2");
    assert!(output.as_str().unwrap().contains("larger than"), "{output}");
    assert_eq!(completed_item(&messages, "c3")["status"], "completed");
    assert_eq!(output_sent(&mock, 3, "c3"), json!("fine"));
    assert_eq!(mcp.rpc("initialize").len(), 1, "no reconnection was needed");
}

#[test]
fn error_statuses_and_streams_that_end_without_a_result_fail_their_call() {
    let mcp = McpHttpMock::builder()
        .tool(
            "broken",
            Behaviour::Raw {
                status: 500,
                content_type: "text/plain".into(),
                body: b"internal oops".to_vec(),
            },
        )
        .tool(
            "cut",
            Behaviour::SseWithoutResult(vec![Step::Progress {
                progress: 1.0,
                total: None,
                message: "about to vanish".into(),
            }]),
        )
        .tool(
            "dropped",
            Behaviour::SseThenDrop(vec![Step::Progress {
                progress: 1.0,
                total: None,
                message: "about to be cut".into(),
            }]),
        )
        .tool("fine", Behaviour::Json("fine".into()))
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["broken", "cut", "dropped", "fine"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    let messages = run_turn(&mut server, &thread);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let error = call_error(&messages, "c1");
    assert!(
        error.contains("500") && error.contains("internal oops"),
        "the status and the body: {error}"
    );
    let error = call_error(&messages, "c2");
    assert!(error.contains("no answer"), "{error}");
    let error = call_error(&messages, "c3");
    assert!(error.contains("web"), "{error}");
    assert_eq!(completed_item(&messages, "c4")["status"], "completed");
    assert_eq!(mcp.rpc("initialize").len(), 1, "no reconnection was needed");
}

#[test]
fn an_initialize_that_never_answers_fails_the_start_within_its_timeout() {
    let mcp = McpHttpMock::builder().initialize_hangs().start();
    let mock = MockServer::start();
    mock.push(text_reply("r1", "m1", &["still here"]));
    let mut server = spawn(
        &mock,
        &[http_server("mute", &mcp, "startup_timeout_sec=1")],
        &[],
    );
    let thread = new_thread(&mut server);
    let error = start_error(&mut server, "mute");
    assert!(
        error.contains("mute") && error.contains("startup timeout"),
        "{error}"
    );
    let initialize = mcp.wait_rpc("initialize", 1, SOON);
    assert!(
        mcp.wait_closed(initialize.conn, Duration::from_secs(5)),
        "the unanswered initialize's connection is closed"
    );
    let messages = run_turn(&mut server, &thread);
    assert_eq!(last_turn(&messages)["status"], "completed");
}

#[test]
fn an_event_stream_that_keeps_failing_is_retried_with_pauses() {
    let mcp = McpHttpMock::builder()
        .tool("echo", Behaviour::Json("works anyway".into()))
        .events(Events::Fail(500))
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["echo"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    mcp.wait_for("the event stream's GET", SOON, |rs| {
        rs.iter().any(|r| r.method == "GET")
    });
    let messages = run_turn(&mut server, &thread);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
    // Today: a pause of a second between attempts, five at most. A loop without pauses would
    // have sent hundreds by now.
    std::thread::sleep(Duration::from_millis(2500));
    let gets = mcp.of_method("GET").len();
    assert!((1..=5).contains(&gets), "{gets} GETs in 2.5 s");
}

/// A tool that sends one progress and then nothing, its SSE answer held open.
fn streaming_forever() -> Behaviour {
    Behaviour::Sse(
        vec![
            Step::Progress {
                progress: 1.0,
                total: None,
                message: "started".into(),
            },
            Step::Gate("never".into()),
        ],
        "unreached".into(),
    )
}

#[test]
fn an_interrupt_during_a_streamed_answer_closes_its_connection_and_cancels_it() {
    let mcp = McpHttpMock::builder()
        .tool("stream", streaming_forever())
        .start();
    let mock = MockServer::start();
    mock.push(call_reply("r1", "c1", "mcp__web__stream", json!({})));
    let (mut server, thread) = spawn_web(&mock, &mcp, "tool_timeout_sec=60");
    let turn = start_turn(&mut server, &thread, "go");
    // The answer's head and a first event came: the body is being read when the turn stops.
    let (progress, _) = server.read_until("item/mcpToolCall/progress");
    assert_eq!(progress["params"]["message"], "started");
    let call = mcp.wait_rpc("tools/call", 1, SOON);
    let messages = interrupt_turn(&mut server, &thread, &turn);
    assert_eq!(call_error(&messages, "c1"), "interrupted");
    assert!(
        mcp.wait_closed(call.conn, Duration::from_secs(5)),
        "the streamed answer's connection is closed"
    );
    let cancelled = mcp.wait_rpc("notifications/cancelled", 1, SOON);
    assert_eq!(cancelled.json()["params"]["requestId"], call.json()["id"]);
}

#[test]
fn a_streamed_answer_that_outlives_its_timeout_is_cut() {
    let mcp = McpHttpMock::builder()
        .tool("stream", streaming_forever())
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["stream"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "tool_timeout_sec=1");
    let messages = run_turn(&mut server, &thread);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let error = call_error(&messages, "c1");
    assert!(error.contains("timed out"), "{error}");
    let call = mcp.wait_rpc("tools/call", 1, SOON);
    assert!(
        mcp.wait_closed(call.conn, Duration::from_secs(5)),
        "the streamed answer's connection is closed"
    );
}

#[test]
fn a_missing_credential_variable_fails_the_start_naming_it_and_a_missing_header_variable_is_left_out()
 {
    let locked = McpHttpMock::builder().start();
    let open = McpHttpMock::builder()
        .tool("echo", Behaviour::Json("no extra header".into()))
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "open", &["echo"]);
    let mut server = spawn(
        &mock,
        &[
            http_server(
                "locked",
                &locked,
                "bearer_token_env_var=\"MCP_TEST_NO_TOKEN\"",
            ),
            http_server(
                "open",
                &open,
                "env_http_headers={\"X-Missing\"=\"MCP_TEST_NO_HEADER\"}",
            ),
        ],
        &[],
    );
    let thread = ready_thread(&mut server, "open", "never");
    let error = start_error(&mut server, "locked");
    assert!(
        error.contains("locked") && error.contains("MCP_TEST_NO_TOKEN"),
        "{error}"
    );
    assert!(
        locked.requests().is_empty(),
        "nothing sent without the credential"
    );
    let messages = run_turn(&mut server, &thread);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
    let requests = open.requests();
    assert!(
        requests.iter().all(|r| r.header("x-missing").is_none()),
        "{requests:?}"
    );
    let stderr = server.stderr_within("MCP_TEST_NO_HEADER", SOON);
    assert!(stderr.contains("MCP_TEST_NO_HEADER"), "a warning names it");
}

#[test]
fn malformed_http_answers_fail_their_call_at_once_and_clearly() {
    let short = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"jsonrpc\":".to_vec();
    let mut huge_head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-filler: ".to_vec();
    huge_head.resize(huge_head.len() + (256 << 10), b'x');
    huge_head.extend_from_slice(b"\r\ncontent-length: 2\r\n\r\n{}");
    let bad_chunk = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec();
    let mcp = McpHttpMock::builder()
        .tool("short", Behaviour::Bytes(short))
        .tool("head", Behaviour::Bytes(huge_head))
        .tool("chunk", Behaviour::Bytes(bad_chunk))
        .tool(
            "garbage",
            Behaviour::Bytes(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()),
        )
        .tool("fine", Behaviour::Json("fine".into()))
        .start();
    let mock = MockServer::start();
    let tools = ["short", "head", "chunk", "garbage", "fine"];
    push_calls(&mock, "web", &tools);
    let (mut server, thread) = spawn_web(&mock, &mcp, "tool_timeout_sec=30");
    let started = Instant::now();
    let messages = run_turn(&mut server, &thread);
    assert_eq!(last_turn(&messages)["status"], "completed");
    for (n, tool) in (1..).zip(&tools[..4]) {
        let error = call_error(&messages, &format!("c{n}"));
        assert!(
            error.contains("web") && !error.contains("timed out"),
            "{tool}: {error}"
        );
    }
    assert_eq!(completed_item(&messages, "c5")["status"], "completed");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "no call waited for its timeout: {:?}",
        started.elapsed()
    );
}
