//! The streamable-HTTP transport's GET event stream and exchanges side by side (mcp.md, MCP
//! 2025-06-18 §Transports), against the scriptable server of `support/mcp_http_mock.rs`: server
//! requests and notifications on the idle stream answered by POST, progress and an elicitation
//! sent there during a call, a server without a stream (405) or that closes it (reopened), calls
//! of three threads in flight at once, one server's held call not holding up another's, and a
//! server reached through a proxy's CONNECT tunnel; a server removed by reload ends its session
//! and its stream.

use std::time::Duration;

use serde_json::{Value, json};

use super::mcp::{call_reply, completed_item, output_sent, ready_thread, toml_str, wait_startup};
use super::mcp_http::{
    SOON, http_server, new_thread, push_calls, read_progress, run_turn, spawn, spawn_web,
    wait_delete,
};
use super::turns::{finish_turn, interrupt_turn, last_turn, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mcp_http_mock::{Behaviour, Events, McpHttpMock, Step};
use crate::support::mock_responses::*;

#[test]
fn server_requests_on_the_idle_event_stream_are_answered_by_post() {
    let mcp = McpHttpMock::builder()
        .tool("echo", Behaviour::Json("still fine".into()))
        .start();
    let mock = MockServer::start();
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    mcp.wait_event_streams(1, SOON);
    let stream = mcp.of_method("GET")[0].clone();
    assert_eq!(stream.header("mcp-session-id"), Some("mock-session-1"));
    // A notification (and one we do not know) first: neither breaks the stream.
    let log = json!({"jsonrpc": "2.0", "method": "notifications/message",
                     "params": {"level": "info", "data": "hello from the server"}});
    let unknown = json!({"jsonrpc": "2.0", "method": "notifications/whatever", "params": {}});
    assert_eq!(mcp.push_event(log), 1);
    assert_eq!(mcp.push_event(unknown), 1);
    for id in [json!("idle-ping"), json!(77)] {
        let ping = json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
        assert_eq!(mcp.push_event(ping), 1);
        let requests = mcp.wait_for(&format!("the answer to ping {id}"), SOON, |rs| {
            rs.iter().any(|r| r.is_answer_to(&id))
        });
        let answer = requests.iter().find(|r| r.is_answer_to(&id)).unwrap();
        assert_eq!(
            answer.json(),
            json!({"jsonrpc": "2.0", "id": id, "result": {}})
        );
        assert_eq!(answer.header("mcp-session-id"), Some("mock-session-1"));
        assert_ne!(answer.conn, stream.conn);
    }
    // The stream stayed open throughout, and the server still works.
    assert_eq!(mcp.of_method("GET").len(), 1, "the stream was not reopened");
    push_calls(&mock, "web", &["echo"]);
    let messages = run_turn(&mut server, &thread);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
}

#[test]
fn a_stateless_server_without_an_event_stream_works_and_is_not_asked_again_and_again() {
    let mcp = McpHttpMock::builder()
        .tool("echo", Behaviour::Json("no stream needed".into()))
        .events(Events::Refuse)
        .without_sessions()
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["echo", "echo"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    mcp.wait_for("the event stream's GET", SOON, |rs| {
        rs.iter().any(|r| r.method == "GET")
    });
    let messages = run_turn(&mut server, &thread);
    for call in ["c1", "c2"] {
        assert_eq!(completed_item(&messages, call)["status"], "completed");
    }
    // Longer than a reconnection pause: a client retrying the refused GET would show by now.
    std::thread::sleep(Duration::from_millis(1500));
    let gets = mcp.of_method("GET").len();
    assert!((1..=2).contains(&gets), "{gets} GETs after a 405");
    // No session was given: none is made up.
    let requests = mcp.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.header("mcp-session-id").is_none()),
        "{requests:?}"
    );
}

#[test]
fn an_event_stream_the_server_closes_is_reopened() {
    let mcp = McpHttpMock::builder().start();
    let mock = MockServer::start();
    let (_server, _) = spawn_web(&mock, &mcp, "");
    mcp.wait_event_streams(1, SOON);
    mcp.close_event_streams();
    let requests = mcp.wait_for("a second GET", Duration::from_secs(5), |rs| {
        rs.iter().filter(|r| r.method == "GET").count() >= 2
    });
    let again = requests
        .iter()
        .filter(|r| r.method == "GET")
        .nth(1)
        .unwrap();
    assert_eq!(again.header("mcp-session-id"), Some("mock-session-1"));
    assert_eq!(again.header("accept"), Some("text/event-stream"));
    // The new stream works: a ping on it is answered.
    mcp.wait_event_streams(1, SOON);
    let ping = json!({"jsonrpc": "2.0", "id": "after-reopen", "method": "ping"});
    assert_eq!(mcp.push_event(ping), 1);
    mcp.wait_for("the answer to the ping", SOON, |rs| {
        rs.iter().any(|r| r.is_answer_to(&json!("after-reopen")))
    });
}

#[test]
fn progress_sent_on_the_event_stream_during_a_call_reaches_the_client() {
    let progress = |progress: f64, message: &str| Step::Progress {
        progress,
        total: None,
        message: message.into(),
    };
    let mcp = McpHttpMock::builder()
        .tool(
            "busy",
            Behaviour::JsonAfterEvents(
                vec![
                    progress(1.0, "on the stream"),
                    progress(2.0, "still on the stream"),
                    Step::Gate("answer".into()),
                ],
                "answered by POST".into(),
            ),
        )
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["busy"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    mcp.wait_event_streams(1, SOON);
    start_turn(&mut server, &thread, "go");
    assert_eq!(
        read_progress(&mut server, "c1", 2),
        ["on the stream", "still on the stream"]
    );
    mcp.open_gate("answer");
    let messages = finish_turn(&mut server);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
    assert_eq!(output_sent(&mock, 1, "c1"), json!("answered by POST"));
}

#[test]
fn a_call_held_by_one_server_does_not_hold_up_another() {
    let stuck = McpHttpMock::builder().tool("wait", Behaviour::Hang).start();
    let quick = McpHttpMock::builder()
        .tool("echo", Behaviour::Json("quick answer".into()))
        .start();
    let mock = MockServer::start();
    mock.push(call_reply("r1", "c1", "mcp__stuck__wait", json!({})));
    mock.push(call_reply("r2", "c2", "mcp__quick__echo", json!({})));
    mock.push(text_reply("r3", "m1", &["done"]));
    let mut server = spawn(
        &mock,
        &[
            http_server("stuck", &stuck, "tool_timeout_sec=60"),
            http_server("quick", &quick, ""),
        ],
        &[],
    );
    let held = ready_thread(&mut server, "stuck", "never");
    let status = wait_startup(&mut server, "quick");
    assert_eq!(status["status"], "ready", "{status}");
    let held_turn = start_turn(&mut server, &held, "wait");
    server.take_matching("the held call starts", |m| {
        m["method"] == "item/started" && m["params"]["item"]["id"] == "c1"
    });
    let call = stuck.wait_rpc("tools/call", 1, SOON);
    // Meanwhile another thread calls the other server: its turn completes.
    let other = new_thread(&mut server);
    let other_turn = start_turn(&mut server, &other, "echo");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["id"], other_turn.as_str());
    assert_eq!(last_turn(&messages)["status"], "completed");
    assert_eq!(completed_item(&messages, "c2")["status"], "completed");
    assert_eq!(output_sent(&mock, 2, "c2"), json!("quick answer"));
    assert!(
        !stuck.wait_closed(call.conn, Duration::ZERO),
        "the held call is still in flight"
    );
    interrupt_turn(&mut server, &held, &held_turn);
    assert!(stuck.wait_closed(call.conn, Duration::from_secs(5)));
}

#[test]
fn a_server_request_on_the_event_stream_during_a_call_is_relayed_and_answered_by_post() {
    let elicit = json!({"jsonrpc": "2.0", "id": "stream-elicit", "method": "elicitation/create",
                        "params": {"message": "Continue?",
                                   "requestedSchema": {"type": "object",
                                                       "properties": {"ok": {"type": "boolean"}}}}});
    let mcp = McpHttpMock::builder()
        .tool(
            "confirm",
            Behaviour::JsonAfterEvents(
                vec![
                    Step::Send(elicit),
                    Step::AwaitAnswer(json!("stream-elicit")),
                ],
                "confirmed".into(),
            ),
        )
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["confirm"]);
    let mut server = spawn(&mock, &[http_server("web", &mcp, "")], &[]);
    let thread = ready_thread(&mut server, "web", "on-request");
    mcp.wait_event_streams(1, SOON);
    let turn = start_turn(&mut server, &thread, "go");
    // It came on the event stream, not on the call's POST: still it belongs to the call.
    let (relayed, _) = server.read_until("mcpServer/elicitation/request");
    assert_eq!(relayed["params"]["threadId"], thread.as_str());
    assert_eq!(relayed["params"]["turnId"], turn.as_str());
    assert_eq!(relayed["params"]["message"], "Continue?");
    server.answer(
        &relayed["id"],
        json!({"action": "accept", "content": {"ok": true}}),
    );
    let messages = finish_turn(&mut server);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
    assert_eq!(output_sent(&mock, 1, "c1"), json!("confirmed"));
    let call = mcp.wait_rpc("tools/call", 1, SOON);
    let answer = mcp
        .requests()
        .into_iter()
        .find(|r| r.is_answer_to(&json!("stream-elicit")))
        .unwrap();
    assert_eq!(
        answer.json()["result"],
        json!({"action": "accept", "content": {"ok": true}})
    );
    assert_ne!(answer.conn, call.conn);
}

#[test]
fn calls_from_three_threads_are_in_flight_at_once_on_one_server() {
    let mcp = McpHttpMock::builder()
        .tool(
            "gate",
            Behaviour::Sse(vec![Step::Gate("all".into())], "released".into()),
        )
        .start();
    let mock = MockServer::start();
    for _ in 0..3 {
        mock.push(call_reply("r1", "c1", "mcp__web__gate", json!({})));
    }
    for _ in 0..3 {
        mock.push(text_reply("r2", "m1", &["done"]));
    }
    let mut server = spawn(&mock, &[http_server("web", &mcp, "")], &[]);
    let mut threads = vec![ready_thread(&mut server, "web", "never")];
    for _ in 0..2 {
        threads.push(new_thread(&mut server));
    }
    for thread in &threads {
        start_turn(&mut server, thread, "go");
    }
    // The mock answers none until all three are in: they are in flight together.
    let calls = mcp
        .wait_for("three calls at once", SOON, |rs| {
            rs.iter().filter(|r| r.is_rpc("tools/call")).count() == 3
        })
        .into_iter()
        .filter(|r| r.is_rpc("tools/call"))
        .collect::<Vec<_>>();
    let mut ids: Vec<String> = calls.iter().map(|c| c.json()["id"].to_string()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct request ids: {ids:?}");
    mcp.open_gate("all");
    let mut done = Vec::new();
    for _ in 0..3 {
        let messages = finish_turn(&mut server);
        // The turns' messages interleave: each turn's own record says how its call went.
        let turn = last_turn(&messages);
        assert_eq!(turn["status"], "completed");
        let call = turn["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "mcpToolCall")
            .unwrap();
        assert_eq!(call["status"], "completed", "{call}");
        assert_eq!(call["result"]["content"][0]["text"], "released");
        done.push(messages.last().unwrap()["params"]["threadId"].clone());
    }
    done.sort_by_key(|t| t.to_string());
    let mut expected: Vec<Value> = threads.iter().map(|t| json!(t)).collect();
    expected.sort_by_key(|t| t.to_string());
    assert_eq!(done, expected, "each thread's turn completed");
}

#[test]
fn a_server_behind_a_proxy_is_reached_through_a_connect_tunnel() {
    let mcp = McpHttpMock::builder()
        .tool("echo", Behaviour::Json("through the tunnel".into()))
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "far", &["echo"]);
    // A name nobody resolves: only the proxy (the mock) is reached, by its address.
    let overrides = ["mcp_servers.far={url=\"http://mcp.example.test/mcp\"}".to_string()];
    let proxy = mcp.proxy_url();
    let mut server = spawn(
        &mock,
        &overrides,
        &[("HTTP_PROXY", &proxy), ("NO_PROXY", "")],
    );
    let thread = ready_thread(&mut server, "far", "never");
    let messages = run_turn(&mut server, &thread);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
    assert_eq!(output_sent(&mock, 1, "c1"), json!("through the tunnel"));
    let requests = mcp.requests();
    let tunnels: Vec<_> = requests.iter().filter(|r| r.method == "CONNECT").collect();
    assert!(!tunnels.is_empty(), "{requests:?}");
    assert!(
        tunnels.iter().all(|r| r.path == "mcp.example.test:80"),
        "{tunnels:?}"
    );
    let call = mcp.wait_rpc("tools/call", 1, SOON);
    assert_eq!(call.header("host"), Some("mcp.example.test"));
}

#[test]
fn a_server_removed_by_reload_ends_its_session_and_its_event_stream() {
    let mcp = McpHttpMock::builder().start();
    let home = TempDir::new("mcp-http-reload");
    let table = format!("[mcp_servers.web]\nurl = {}\n", toml_str(&mcp.url()));
    std::fs::write(home.path().join("config.toml"), &table).unwrap();
    let mut server = AppServer::builder().codex_home(home.path()).spawn();
    server.initialize();
    server.call("mcpServerStatus/list", json!({})).unwrap();
    assert_eq!(wait_startup(&mut server, "web")["status"], "ready");
    mcp.wait_event_streams(1, SOON);
    let stream = mcp.of_method("GET")[0].clone();
    std::fs::write(home.path().join("config.toml"), "").unwrap();
    server.call("config/mcpServer/reload", json!(null)).unwrap();
    let delete = wait_delete(&mcp);
    assert_eq!(delete.header("mcp-session-id"), Some("mock-session-1"));
    assert!(
        mcp.wait_closed(stream.conn, Duration::from_secs(5)),
        "the event stream is closed"
    );
    // Nothing reopens it: the server is gone.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(mcp.of_method("GET").len(), 1, "no stream reopened");
    let list = server.call("mcpServerStatus/list", json!({})).unwrap();
    assert_eq!(list["data"], json!([]));
}
