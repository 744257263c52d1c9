//! Turns through the real binary against the mock Responses server (protocol.md §5–7,
//! model-api.md): order and content of notifications, the requests the mock received.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// A server pointed at `mock`, handshake done.
pub fn server_for(mock: &MockServer) -> AppServer {
    let mut server = AppServer::builder()
        .configs(mock.provider_overrides())
        .env("MOCK_KEY", "test-key")
        .spawn();
    server.initialize();
    server
}

/// Starts a thread with `params`; returns its id.
pub fn start_thread(server: &mut AppServer, params: Value) -> String {
    let result = server.call("thread/start", params).expect("thread/start");
    let (started, _) = server.read_until("thread/started");
    assert_eq!(started["params"]["thread"]["id"], result["thread"]["id"]);
    result["thread"]["id"].as_str().unwrap().to_string()
}

/// Starts a turn with one text input; returns the turn id.
pub fn start_turn(server: &mut AppServer, thread_id: &str, text: &str) -> String {
    let result = server
        .call(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": text}]}),
        )
        .expect("turn/start");
    assert_eq!(result["turn"]["status"], "inProgress");
    result["turn"]["id"].as_str().unwrap().to_string()
}

/// Every message up to and including `turn/completed`.
pub fn finish_turn(server: &mut AppServer) -> Vec<Value> {
    let (completed, mut before) = server.read_until("turn/completed");
    before.push(completed);
    before
}

/// The methods of `messages` in order (responses as `response`).
pub fn methods(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            m.get("method")
                .and_then(Value::as_str)
                .unwrap_or("response")
                .to_string()
        })
        .collect()
}

#[test]
fn plain_text_turn_in_reference_order() {
    let mock = MockServer::start();
    mock.push(text_reply("resp_1", "msg_1", &["Hel", "lo", " world"]));
    let mut server = server_for(&mock);
    let cwd = TempDir::new("cwd");
    let thread_id = start_thread(&mut server, json!({"cwd": cwd.path()}));
    let turn_id = start_turn(&mut server, &thread_id, "say hello");
    let messages = finish_turn(&mut server);
    assert_eq!(
        methods(&messages),
        [
            "thread/status/changed",
            "turn/started",
            "item/started",
            "item/completed",
            "item/started",
            "item/agentMessage/delta",
            "item/agentMessage/delta",
            "item/agentMessage/delta",
            "item/completed",
            "thread/tokenUsage/updated",
            "thread/status/changed",
            "turn/completed",
        ]
    );
    assert_eq!(
        messages[0]["params"]["status"],
        json!({"type": "active", "activeFlags": []})
    );
    assert_eq!(messages[2]["params"]["item"]["type"], "userMessage");
    assert_eq!(
        messages[2]["params"]["item"]["content"][0]["text"],
        "say hello"
    );
    assert_eq!(
        messages[4]["params"]["item"],
        json!({"type": "agentMessage", "id": "msg_1", "text": ""})
    );
    let deltas: String = messages[5..8]
        .iter()
        .map(|m| m["params"]["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "Hello world");
    assert_eq!(messages[8]["params"]["item"]["text"], "Hello world");
    for m in &messages[2..10] {
        assert_eq!(m["params"]["threadId"], thread_id.as_str());
        assert_eq!(m["params"]["turnId"], turn_id.as_str());
    }
    let usage = &messages[9]["params"]["tokenUsage"];
    assert_eq!(usage["last"]["inputTokens"], 10);
    assert_eq!(usage["total"]["totalTokens"], 15);
    assert_eq!(messages[10]["params"]["status"], json!({"type": "idle"}));
    let turn = &messages[11]["params"]["turn"];
    assert_eq!(turn["status"], "completed");
    assert_eq!(turn["error"], Value::Null);
    assert_eq!(turn["items"].as_array().unwrap().len(), 2);

    let requests = mock.requests_to("/v1/responses");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.header("authorization"), Some("Bearer test-key"));
    assert_eq!(request.header("originator"), Some("codex_lite_tests"));
    assert_eq!(request.header("session_id"), Some(thread_id.as_str()));
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("codex_lite_tests/")
    );
    let body = request.json();
    assert_eq!(body["model"], "mock-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["store"], false);
    assert_eq!(body["prompt_cache_key"], thread_id.as_str());
    assert!(body.get("reasoning").is_none());
    let input = body["input"].as_array().unwrap();
    assert_eq!(input[0]["role"], "developer");
    assert!(
        input[1]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("<environment_context>")
    );
    assert_eq!(
        input.last().unwrap()["content"][0],
        json!({"type": "input_text", "text": "say hello"})
    );
    let tools: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["shell", "apply_patch"]);
}
