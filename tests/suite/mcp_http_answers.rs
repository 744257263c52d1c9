//! Answers of a streamable-HTTP MCP server (mcp.md, MCP 2025-06-18 §Transports) reaching the
//! model, against the scriptable server of `support/mcp_http_mock.rs`: JSON with a length,
//! chunked, dribbled, delimited by the close, batched, large; SSE streams carrying progress (all
//! of it, before the result), a server request and an elicitation; large arguments to a server
//! named by host name.

use std::time::Duration;

use serde_json::json;

use super::mcp::{completed_item, output_sent, ready_thread, toml_str};
use super::mcp_http::{
    SOON, http_server, push_calls, push_calls_with, read_progress, run_turn, spawn, spawn_web,
    varied,
};
use super::turns::{finish_turn, last_turn, start_turn};
use crate::support::mcp_http_mock::{Behaviour, McpHttpMock, Step};
use crate::support::mock_responses::*;

/// JSON with a length, chunked (with extensions and a trailer too), delimited by the close,
/// late, after a `100 Continue`, batched; SSE dribbled five bytes at a time, and one large event.
#[test]
fn answers_in_every_framing_reach_the_model() {
    // One SSE event of 256 KiB: read in many pieces. (Bigger costs seconds today: the SSE
    // parser rescans a partial line at every read, bugs.md.)
    let big = varied(256 << 10);
    let mcp = McpHttpMock::builder()
        .tool("plain", Behaviour::Json("forty-two".into()))
        .tool("chunked", Behaviour::Chunked("in three chunks".into()))
        .tool(
            "late",
            Behaviour::Delayed(Duration::from_millis(300), "after a pause".into()),
        )
        .tool(
            "dribbled",
            Behaviour::Dribble("five bytes at a time".into()),
        )
        .tool("big", Behaviour::Sse(vec![], big.clone()))
        .tool("closing", Behaviour::UntilClose("read to the end".into()))
        .tool("batched", Behaviour::Batch("in a batch".into()))
        .tool(
            "trailed",
            Behaviour::ChunkedWithTrailer("extensions and a trailer".into()),
        )
        .tool("continued", Behaviour::AfterContinue("after a 100".into()))
        .start();
    let mock = MockServer::start();
    let none = json!({});
    push_calls_with(
        &mock,
        "web",
        &[
            ("plain", none.clone()),
            ("chunked", json!({"x": 1})),
            ("late", none.clone()),
            ("dribbled", none.clone()),
            ("big", none.clone()),
            ("closing", none.clone()),
            ("batched", none.clone()),
            ("trailed", none.clone()),
            ("continued", none),
        ],
    );
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    let messages = run_turn(&mut server, &thread);
    assert_eq!(last_turn(&messages)["status"], "completed");
    for (n, call, text) in [
        (1, "c1", "forty-two"),
        (2, "c2", "in three chunks"),
        (3, "c3", "after a pause"),
        (4, "c4", "five bytes at a time"),
        (6, "c6", "read to the end"),
        (7, "c7", "in a batch"),
        (8, "c8", "extensions and a trailer"),
        (9, "c9", "after a 100"),
    ] {
        let item = completed_item(&messages, call);
        assert_eq!(item["status"], "completed", "{item}");
        assert_eq!(item["result"]["content"][0]["text"], text);
        assert_eq!(output_sent(&mock, n, call), json!(text));
    }
    let item = completed_item(&messages, "c5");
    assert_eq!(item["status"], "completed");
    assert!(
        item["result"]["content"][0]["text"] == big.as_str(),
        "the 256 KiB answer arrived whole"
    );
    let calls = mcp.rpc("tools/call");
    assert_eq!(calls[1].json()["params"]["arguments"], json!({"x": 1}));
}

#[test]
fn an_sse_answer_carries_progress_and_a_server_request_before_the_result() {
    let ping = json!({"jsonrpc": "2.0", "id": "srv-ping-1", "method": "ping"});
    let progress = |progress: f64, message: &str| Step::Progress {
        progress,
        total: Some(2.0),
        message: message.into(),
    };
    let mcp = McpHttpMock::builder()
        .tool(
            "slow",
            Behaviour::Sse(
                vec![
                    progress(1.0, "step one"),
                    Step::Send(ping),
                    // The result waits for our answer, which must come while this POST is open.
                    Step::AwaitAnswer(json!("srv-ping-1")),
                    progress(2.0, "step two"),
                    // The result goes once the test saw the progress (progress right behind
                    // the result is `every_progress_sent_before_the_result_reaches_the_client`).
                    Step::Gate("result".into()),
                ],
                "all steps done".into(),
            ),
        )
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["slow"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    start_turn(&mut server, &thread, "go");
    assert_eq!(
        read_progress(&mut server, "c1", 2),
        ["step one", "step two"]
    );
    mcp.open_gate("result");
    let messages = finish_turn(&mut server);
    let item = completed_item(&messages, "c1");
    assert_eq!(item["status"], "completed", "{item}");
    assert_eq!(output_sent(&mock, 1, "c1"), json!("all steps done"));
    let call = mcp.wait_rpc("tools/call", 1, SOON);
    assert!(
        call.json()["params"]["_meta"]["progressToken"].is_number(),
        "{}",
        call.json()
    );
    let answer = mcp
        .requests()
        .into_iter()
        .find(|r| r.is_answer_to(&json!("srv-ping-1")))
        .unwrap();
    assert_eq!(
        answer.json(),
        json!({"jsonrpc": "2.0", "id": "srv-ping-1", "result": {}})
    );
    assert_ne!(answer.conn, call.conn, "the answer is a POST of its own");
    assert_eq!(answer.header("mcp-session-id"), Some("mock-session-1"));
}

#[test]
fn an_elicitation_in_an_sse_answer_is_relayed_and_its_answer_posted() {
    let elicit = json!({"jsonrpc": "2.0", "id": 5, "method": "elicitation/create",
                        "params": {"message": "Your name?",
                                   "requestedSchema": {"type": "object",
                                                       "properties": {"name": {"type": "string"}},
                                                       "required": ["name"]}}});
    let mcp = McpHttpMock::builder()
        .tool(
            "ask",
            Behaviour::Sse(
                vec![Step::Send(elicit), Step::AwaitAnswer(json!(5))],
                "asked".into(),
            ),
        )
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["ask"]);
    let mut server = spawn(&mock, &[http_server("web", &mcp, "")], &[]);
    // The mock's tools are read-only: no approval is asked before the call.
    let thread = ready_thread(&mut server, "web", "on-request");
    let turn = start_turn(&mut server, &thread, "go");
    let (relayed, _) = server.read_until("mcpServer/elicitation/request");
    assert_eq!(
        relayed["params"],
        json!({"threadId": thread, "turnId": turn, "serverName": "web", "mode": "form",
               "message": "Your name?",
               "requestedSchema": {"type": "object", "required": ["name"],
                                   "properties": {"name": {"type": "string"}}}})
    );
    server.answer(
        &relayed["id"],
        json!({"action": "accept", "content": {"name": "Ada"}}),
    );
    let messages = finish_turn(&mut server);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
    let answer = mcp
        .requests()
        .into_iter()
        .find(|r| r.is_answer_to(&json!(5)))
        .unwrap();
    assert_eq!(
        answer.json()["result"],
        json!({"action": "accept", "content": {"name": "Ada"}})
    );
}

#[test]
fn a_large_sse_answer_arrives_in_time_linear_in_its_size() {
    let big = varied(4 << 20);
    let mcp = McpHttpMock::builder()
        .tool("big", Behaviour::Sse(vec![], big.clone()))
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["big"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    let messages = run_turn(&mut server, &thread);
    let item = completed_item(&messages, "c1");
    assert!(item["result"]["content"][0]["text"] == big.as_str());
}

#[test]
fn a_server_named_by_host_name_takes_large_arguments() {
    let mcp = McpHttpMock::builder()
        .tool("store", Behaviour::Json("stored".into()))
        .start();
    let mock = MockServer::start();
    // 1 MiB of arguments: the request body takes many writes.
    let text = varied(1 << 20);
    push_calls_with(&mock, "web", &[("store", json!({"text": text}))]);
    let overrides = [format!(
        "mcp_servers.web={{url={}}}",
        toml_str(&mcp.url_as_localhost())
    )];
    let mut server = spawn(&mock, &overrides, &[]);
    let thread = ready_thread(&mut server, "web", "never");
    let messages = run_turn(&mut server, &thread);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
    let call = mcp.wait_rpc("tools/call", 1, SOON);
    assert!(
        call.json()["params"]["arguments"]["text"] == text.as_str(),
        "the 1 MiB of arguments arrived whole"
    );
    assert!(call.header("host").unwrap().starts_with("localhost"));
}

#[test]
fn every_progress_sent_before_the_result_reaches_the_client() {
    // The call's wait picks at random among ready channels: progress queued when the result
    // comes must still be told, first.
    let steps: Vec<Step> = (1..=50)
        .map(|n| Step::Progress {
            progress: n as f64,
            total: Some(50.0),
            message: format!("step {n}"),
        })
        .collect();
    let mcp = McpHttpMock::builder()
        .tool("busy", Behaviour::Sse(steps, "all done".into()))
        .start();
    let mock = MockServer::start();
    push_calls(&mock, "web", &["busy"]);
    let (mut server, thread) = spawn_web(&mock, &mcp, "");
    let messages = run_turn(&mut server, &thread);
    let progress: Vec<&str> = messages
        .iter()
        .filter(|m| m["method"] == "item/mcpToolCall/progress")
        .map(|m| m["params"]["message"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=50).map(|n| format!("step {n}")).collect();
    assert_eq!(progress, expected);
}
