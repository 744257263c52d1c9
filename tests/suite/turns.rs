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

/// Interrupts the running turn (answered `{}` at once) and reads up to its `turn/completed`,
/// which must say `interrupted`; returns the messages.
pub fn interrupt_turn(server: &mut AppServer, thread_id: &str, turn_id: &str) -> Vec<Value> {
    let answer = server
        .call(
            "turn/interrupt",
            json!({"threadId": thread_id, "turnId": turn_id}),
        )
        .unwrap();
    assert_eq!(answer, json!({}));
    let messages = finish_turn(server);
    assert_eq!(last_turn(&messages)["status"], "interrupted");
    messages
}

/// The turn in the last message (`turn/completed`).
pub fn last_turn(messages: &[Value]) -> &Value {
    &messages.last().expect("messages")["params"]["turn"]
}

/// The `kind` (`function_call_output`, `custom_tool_call_output`) item the second model request
/// carried back.
fn tool_output(mock: &MockServer, kind: &str) -> Value {
    let input = mock.requests_to("/v1/responses")[1].json()["input"].clone();
    input
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == kind)
        .unwrap()
        .clone()
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
    for name in ["session-id", "thread-id", "x-client-request-id"] {
        assert_eq!(request.header(name), Some(thread_id.as_str()), "{name}");
    }
    assert_eq!(request.header("version"), Some("0.169.0"));
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("codex_lite_tests/0.169.0 ")
    );
    let body = request.json();
    assert_eq!(body["model"], "mock-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["store"], false);
    assert_eq!(body["prompt_cache_key"], thread_id.as_str());
    // `mock-model` is not in the catalog: fallback metadata, reasoning on (models.md §2).
    assert_eq!(body["reasoning"], json!({"summary": "auto"}));
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(body["parallel_tool_calls"], false);
    assert!(!body["instructions"].as_str().unwrap().is_empty());
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
        .map(|t| t["name"].as_str().or(t["type"].as_str()).unwrap())
        .collect();
    assert_eq!(tools, ["shell", "apply_patch", "view_image", "web_search"]);
}

/// The shell call `argv` as one function call reply.
fn shell_call(call_id: &str, args: Value) -> Reply {
    sse(vec![
        ev_created("r_call"),
        ev_function_call(call_id, "shell", &args),
        ev_completed("r_call"),
    ])
}

fn item_of<'a>(messages: &'a [Value], method: &str, kind: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["method"] == method && m["params"]["item"]["type"] == kind)
        .map(|m| &m["params"]["item"])
        .collect()
}

#[test]
fn reasoning_summary_deltas_and_encrypted_reasoning_in_the_next_request() {
    let mock = MockServer::start();
    mock.push(sse(vec![
        ev_created("r1"),
        ev_reasoning_added("rs_1"),
        ev_reasoning_delta("rs_1", "Think"),
        ev_reasoning_delta("rs_1", "ing"),
        ev_reasoning_done("rs_1", "Thinking", "ENCRYPTED"),
        ev_message_added("msg_1"),
        ev_text_delta("msg_1", "done"),
        ev_message_done("msg_1", "done"),
        ev_completed("r1"),
    ]));
    mock.push(text_reply("r2", "msg_2", &["again"]));
    let mut server = server_for(&mock);
    // A classic (non-Lite) model of the catalog: effort from the catalog, no summary because
    // its default summary is `none`, freeform apply_patch, parallel tool calls.
    let thread_id = start_thread(&mut server, json!({"model": "gpt-5.5"}));
    start_turn(&mut server, &thread_id, "first");
    let messages = finish_turn(&mut server);
    let deltas: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "item/reasoning/summaryTextDelta")
        .collect();
    assert_eq!(deltas.len(), 2);
    assert_eq!(deltas[0]["params"]["itemId"], "rs_1");
    assert_eq!(deltas[0]["params"]["summaryIndex"], 0);
    let reasoning = item_of(&messages, "item/completed", "reasoning");
    assert_eq!(reasoning[0]["summary"], json!(["Thinking"]));
    let body = mock.requests_to("/v1/responses")[0].json();
    assert_eq!(body["reasoning"], json!({"effort": "medium"}));
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(body["parallel_tool_calls"], true);
    assert_eq!(body["text"], json!({"verbosity": "low"}));
    let freeform = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["type"] == "custom" && t["name"] == "apply_patch");
    assert!(
        freeform,
        "the catalog gives gpt-5.5 the freeform apply_patch tool"
    );

    start_turn(&mut server, &thread_id, "second");
    finish_turn(&mut server);
    let input = mock.requests_to("/v1/responses")[1].json()["input"].clone();
    let kinds: Vec<String> = input
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["type"].as_str().unwrap(),
                i["role"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "message:developer",
            "message:user",
            "message:user",
            "reasoning:",
            "message:assistant",
            "message:user"
        ]
    );
    assert_eq!(input[3]["encrypted_content"], "ENCRYPTED");
    assert!(
        input[3].get("id").is_none(),
        "ids are not sent back with store:false"
    );
    assert_eq!(input[4]["content"][0]["text"], "done");
}

#[test]
fn shell_under_never_runs_in_the_sandbox_without_asking() {
    let mock = MockServer::start();
    mock.push(shell_call(
        "call_1",
        json!({"command": ["bash", "-lc", "echo hi; echo oops >&2; exit 3"]}),
    ));
    mock.push(text_reply("r2", "msg_2", &["ok"]));
    let mut server = server_for(&mock);
    let cwd = TempDir::new("cwd");
    let thread_id = start_thread(
        &mut server,
        json!({"cwd": cwd.path(), "approvalPolicy": "never"}),
    );
    start_turn(&mut server, &thread_id, "run it");
    let messages = finish_turn(&mut server);
    assert!(
        !methods(&messages)
            .iter()
            .any(|m| m.contains("requestApproval"))
    );
    let started = item_of(&messages, "item/started", "commandExecution");
    assert_eq!(started[0]["id"], "call_1");
    assert_eq!(started[0]["status"], "inProgress");
    assert_eq!(
        started[0]["command"],
        "bash -lc 'echo hi; echo oops >&2; exit 3'"
    );
    assert_eq!(started[0]["cwd"], cwd.path().display().to_string());
    let output: String = messages
        .iter()
        .filter(|m| m["method"] == "item/commandExecution/outputDelta")
        .map(|m| m["params"]["delta"].as_str().unwrap())
        .collect();
    assert!(
        output.contains("hi\n") && output.contains("oops\n"),
        "{output}"
    );
    let done = item_of(&messages, "item/completed", "commandExecution");
    assert_eq!(done[0]["status"], "failed");
    assert_eq!(done[0]["exitCode"], 3);
    assert!(done[0]["aggregatedOutput"].as_str().unwrap().contains("hi"));
    assert!(done[0]["durationMs"].is_number());

    let second = mock.requests_to("/v1/responses")[1].json();
    let input = second["input"].as_array().unwrap();
    let call = input.iter().find(|i| i["type"] == "function_call").unwrap();
    assert_eq!(call["call_id"], "call_1");
    let out = input
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .unwrap();
    assert_eq!(out["call_id"], "call_1");
    let payload: Value = serde_json::from_str(out["output"].as_str().unwrap()).unwrap();
    assert_eq!(payload["metadata"]["exit_code"], 3);
    assert!(payload["output"].as_str().unwrap().contains("oops"));
}

/// Runs one shell call under `policy` and answers its approval with `decision`; returns the
/// turn's messages and the approval request.
fn approve_shell(
    decision: &str,
    command: Value,
    thread_params: Value,
) -> (Vec<Value>, Value, MockServer, TempDir) {
    let mock = MockServer::start();
    let args = if command.is_object() {
        command
    } else {
        json!({"command": command})
    };
    mock.push(shell_call("call_a", args));
    mock.push(text_reply("r2", "msg_2", &["after"]));
    let mut server = server_for(&mock);
    let cwd = TempDir::new("cwd");
    let mut params = thread_params;
    params["cwd"] = json!(cwd.path());
    let thread_id = start_thread(&mut server, params);
    let turn_id = start_turn(&mut server, &thread_id, "go");
    let (request, before) = server.read_until("item/commandExecution/requestApproval");
    let tail: Vec<&str> = before
        .iter()
        .rev()
        .take(2)
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        tail,
        ["item/started", "thread/status/changed"],
        "order before the request"
    );
    assert_eq!(
        before[before.len() - 2]["params"]["status"]["activeFlags"],
        json!(["waitingOnApproval"])
    );
    assert_eq!(request["params"]["threadId"], thread_id.as_str());
    assert_eq!(request["params"]["turnId"], turn_id.as_str());
    assert_eq!(request["params"]["itemId"], "call_a");
    server.answer(&request["id"], json!({"decision": decision}));
    let mut messages = finish_turn(&mut server);
    assert_eq!(messages[0]["method"], "serverRequest/resolved");
    assert_eq!(messages[0]["params"]["requestId"], request["id"]);
    assert_eq!(
        messages[1]["params"]["status"],
        json!({"type": "active", "activeFlags": []})
    );
    messages.insert(0, request.clone());
    drop(server);
    (messages, request, mock, cwd)
}

#[test]
fn untrusted_asks_for_unsafe_commands_and_accept_runs_them() {
    let (messages, request, _mock, cwd) = approve_shell(
        "accept",
        json!(["touch", "made.txt"]),
        json!({"approvalPolicy": "untrusted", "sandbox": "workspace-write"}),
    );
    assert_eq!(request["params"]["command"], "touch made.txt");
    assert!(cwd.path().join("made.txt").exists());
    let done = item_of(&messages, "item/completed", "commandExecution");
    assert_eq!(done[0]["status"], "completed");
    assert_eq!(last_turn(&messages)["status"], "completed");
}

#[test]
fn decline_runs_nothing_and_tells_the_model() {
    let (messages, _request, mock, cwd) = approve_shell(
        "decline",
        json!(["touch", "made.txt"]),
        json!({"approvalPolicy": "untrusted", "sandbox": "workspace-write"}),
    );
    assert!(!cwd.path().join("made.txt").exists());
    let done = item_of(&messages, "item/completed", "commandExecution");
    assert_eq!(done[0]["status"], "declined");
    assert_eq!(last_turn(&messages)["status"], "completed");
    let out = tool_output(&mock, "function_call_output");
    assert!(
        out["output"].as_str().unwrap().contains("rejected by user"),
        "{out}"
    );
}

#[test]
fn cancel_declines_and_interrupts_the_turn() {
    let (messages, _request, mock, cwd) = approve_shell(
        "cancel",
        json!(["touch", "made.txt"]),
        json!({"approvalPolicy": "untrusted", "sandbox": "workspace-write"}),
    );
    assert!(!cwd.path().join("made.txt").exists());
    assert_eq!(
        item_of(&messages, "item/completed", "commandExecution")[0]["status"],
        "declined"
    );
    assert_eq!(last_turn(&messages)["status"], "interrupted");
    assert_eq!(
        mock.requests_to("/v1/responses").len(),
        1,
        "no further model request"
    );
}

#[test]
fn on_request_asks_only_for_escalation_and_shows_the_justification() {
    let (messages, request, _mock, _cwd) = approve_shell(
        "accept",
        json!({"command": ["bash", "-lc", "echo escalated > /tmp/codex-lite-escalated-test"], "with_escalated_permissions": true, "justification": "need /tmp"}),
        json!({"approvalPolicy": "on-request"}),
    );
    assert_eq!(request["params"]["reason"], "need /tmp");
    assert_eq!(
        item_of(&messages, "item/completed", "commandExecution")[0]["exitCode"],
        0
    );
    let _ = std::fs::remove_file("/tmp/codex-lite-escalated-test");
}

const PATCH: &str = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** Update File: old.txt\n@@\n-one\n+uno\n*** End Patch";

fn patch_turn(
    call: String,
    thread_params: Value,
    decision: Option<&str>,
) -> (Vec<Value>, MockServer, TempDir) {
    let mock = MockServer::start();
    mock.push(sse(vec![ev_created("r1"), call, ev_completed("r1")]));
    mock.push(text_reply("r2", "msg_2", &["patched"]));
    let mut server = server_for(&mock);
    let cwd = TempDir::new("cwd");
    std::fs::write(cwd.path().join("old.txt"), "one\ntwo\n").unwrap();
    let mut params = thread_params;
    params["cwd"] = json!(cwd.path());
    let thread_id = start_thread(&mut server, params);
    start_turn(&mut server, &thread_id, "patch it");
    let mut prefix = Vec::new();
    if let Some(decision) = decision {
        let (request, before) = server.read_until("item/fileChange/requestApproval");
        let started = item_of(&before, "item/started", "fileChange");
        assert_eq!(
            started.len(),
            1,
            "fileChange item started before the request"
        );
        assert!(
            !cwd.path().join("hello.txt").exists(),
            "nothing written before approval"
        );
        server.answer(&request["id"], json!({"decision": decision}));
        prefix = before;
        prefix.push(request);
    }
    prefix.extend(finish_turn(&mut server));
    (prefix, mock, cwd)
}

fn check_patched(messages: &[Value], cwd: &TempDir) {
    let started = item_of(messages, "item/started", "fileChange");
    let changes = started[0]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "changes complete on item/started");
    assert_eq!(
        changes[0]["path"],
        cwd.path().join("hello.txt").display().to_string()
    );
    assert_eq!(changes[0]["kind"], json!({"type": "add"}));
    assert_eq!(
        changes[1]["kind"],
        json!({"type": "update", "move_path": null})
    );
    assert!(
        changes[1]["diff"]
            .as_str()
            .unwrap()
            .contains("-one\n+uno\n")
    );
    assert_eq!(
        item_of(messages, "item/completed", "fileChange")[0]["status"],
        "completed"
    );
    assert_eq!(
        std::fs::read_to_string(cwd.path().join("hello.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(cwd.path().join("old.txt")).unwrap(),
        "uno\ntwo\n"
    );
    let diff = messages
        .iter()
        .find(|m| m["method"] == "turn/diff/updated")
        .expect("turn/diff/updated");
    let diff = diff["params"]["diff"].as_str().unwrap();
    assert!(
        diff.contains("diff --git a/hello.txt b/hello.txt"),
        "{diff}"
    );
    assert!(
        diff.contains("+++ b/old.txt") && diff.contains("+uno"),
        "{diff}"
    );
    assert!(
        !methods(messages)
            .iter()
            .any(|m| m == "item/commandExecution/outputDelta")
    );
}

#[test]
fn patch_via_the_custom_tool_in_the_workspace_needs_no_approval() {
    let (messages, mock, cwd) = patch_turn(
        ev_custom_tool_call("call_p", "apply_patch", PATCH),
        json!({"sandbox": "workspace-write", "approvalPolicy": "on-request", "model": "gpt-5-codex"}),
        None,
    );
    check_patched(&messages, &cwd);
    let out = tool_output(&mock, "custom_tool_call_output");
    assert_eq!(out["call_id"], "call_p");
    assert!(
        out["output"]
            .as_str()
            .unwrap()
            .starts_with("Success. Updated the following files:\nA hello.txt\nM old.txt"),
        "{out}"
    );
}

#[test]
fn patch_via_a_shell_heredoc_is_a_file_change_with_approval() {
    let script = format!("apply_patch <<'EOF'\n{PATCH}\nEOF");
    let (messages, _mock, cwd) = patch_turn(
        ev_function_call(
            "call_h",
            "shell",
            &json!({"command": ["bash", "-lc", script]}),
        ),
        json!({"sandbox": "workspace-write", "approvalPolicy": "untrusted"}),
        Some("accept"),
    );
    assert!(
        item_of(&messages, "item/started", "commandExecution").is_empty(),
        "not a command"
    );
    check_patched(&messages, &cwd);
}

#[test]
fn a_declined_patch_writes_nothing() {
    let (messages, _mock, cwd) = patch_turn(
        ev_custom_tool_call("call_p", "apply_patch", PATCH),
        json!({"sandbox": "workspace-write", "approvalPolicy": "untrusted"}),
        Some("decline"),
    );
    assert_eq!(
        item_of(&messages, "item/completed", "fileChange")[0]["status"],
        "declined"
    );
    assert!(!cwd.path().join("hello.txt").exists());
    assert_eq!(
        std::fs::read_to_string(cwd.path().join("old.txt")).unwrap(),
        "one\ntwo\n"
    );
}

#[test]
fn a_read_only_sandbox_asks_before_patching_under_on_request() {
    let (messages, _mock, cwd) = patch_turn(
        ev_custom_tool_call("call_p", "apply_patch", PATCH),
        json!({"sandbox": "read-only", "approvalPolicy": "on-request"}),
        Some("accept"),
    );
    check_patched(&messages, &cwd);
}

#[test]
fn a_bad_patch_goes_back_to_the_model() {
    let (messages, mock, _cwd) = patch_turn(
        ev_custom_tool_call(
            "call_p",
            "apply_patch",
            "*** Begin Patch\n*** Update File: missing.txt\n@@\n-a\n+b\n*** End Patch",
        ),
        json!({"sandbox": "workspace-write"}),
        None,
    );
    assert!(item_of(&messages, "item/started", "fileChange").is_empty());
    let out = tool_output(&mock, "custom_tool_call_output");
    assert!(
        out["output"]
            .as_str()
            .unwrap()
            .contains("verification failed"),
        "{out}"
    );
}

#[test]
fn interrupt_during_a_stalled_stream_closes_the_open_item() {
    let mock = MockServer::start();
    mock.push(sse_then_stall(vec![
        ev_created("r1"),
        ev_message_added("msg_1"),
        ev_text_delta("msg_1", "par"),
    ]));
    mock.push(text_reply("r2", "msg_2", &["next"]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({}));
    let turn_id = start_turn(&mut server, &thread_id, "first");
    server.read_until("item/agentMessage/delta");
    let messages = interrupt_turn(&mut server, &thread_id, &turn_id);
    let done = item_of(&messages, "item/completed", "agentMessage");
    assert_eq!(
        done[0]["text"], "par",
        "the open item completes with what arrived"
    );
    let error = server
        .call(
            "turn/interrupt",
            json!({"threadId": thread_id, "turnId": turn_id}),
        )
        .unwrap_err();
    assert_eq!(error["message"], "no active turn to interrupt");

    start_turn(&mut server, &thread_id, "second");
    finish_turn(&mut server);
    let input = mock.requests_to("/v1/responses")[1].json()["input"].clone();
    let texts: Vec<String> = input
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["content"][0]["text"].as_str().unwrap_or("").to_string())
        .collect();
    let first = texts
        .iter()
        .position(|t| t == "first")
        .expect("the interrupted turn's message");
    assert!(texts[first + 1].contains("interrupted"), "{texts:?}");
    assert_eq!(texts.last().unwrap(), "second");
}

fn processes_with_arg(needle: &str) -> usize {
    processes_with_arg_where(needle, |_| true)
}

/// The processes of the command itself, without the sandbox helper's own two (which carry the
/// command line after `--`).
fn command_processes_with_arg(needle: &str) -> usize {
    processes_with_arg_where(needle, |cmd| !cmd.starts_with(b"codex-linux-sandbox\0"))
}

fn processes_with_arg_where(needle: &str, keep: impl Fn(&[u8]) -> bool) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmd| keep(cmd))
        .filter(|cmd| cmd.split(|b| *b == 0).any(|arg| arg == needle.as_bytes()))
        .count()
}

#[test]
fn interrupt_during_a_long_command_kills_it_at_once() {
    let mock = MockServer::start();
    mock.push(shell_call("call_s", json!({"command": ["sleep", "31.77"]})));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({"approvalPolicy": "never"}));
    let turn_id = start_turn(&mut server, &thread_id, "sleep");
    server.read_until("item/started");
    server.read_until("item/started");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while command_processes_with_arg("31.77") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(command_processes_with_arg("31.77"), 1, "the command runs");
    let asked = std::time::Instant::now();
    let messages = interrupt_turn(&mut server, &thread_id, &turn_id);
    let took = asked.elapsed();
    println!(
        "turn/completed {} ms after turn/interrupt",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let done = item_of(&messages, "item/completed", "commandExecution");
    assert_eq!(done.len(), 1);
    assert_eq!(processes_with_arg("31.77"), 0, "no process left");
}

fn error_notifications(messages: &[Value]) -> Vec<&Value> {
    messages
        .iter()
        .filter(|m| m["method"] == "error")
        .map(|m| &m["params"])
        .collect()
}

#[test]
fn a_500_then_success_is_retried_silently() {
    let mock = MockServer::start();
    mock.push(status(500, r#"{"error":{"message":"hiccup"}}"#));
    mock.push(text_reply("r1", "msg_1", &["fine"]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    assert!(error_notifications(&messages).is_empty());
    assert_eq!(last_turn(&messages)["status"], "completed");
    assert_eq!(mock.requests_to("/v1/responses").len(), 2);
}

#[test]
fn a_persistent_500_fails_the_turn_and_the_thread_stays_usable() {
    let mock = MockServer::start();
    mock.push(status(500, r#"{"error":{"message":"backend down"}}"#));
    mock.push(status(500, r#"{"error":{"message":"backend down"}}"#));
    mock.push(text_reply("r1", "msg_1", &["back"]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    let errors = error_notifications(&messages);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["willRetry"], false);
    assert_eq!(errors[0]["error"]["codexErrorInfo"], "internalServerError");
    assert!(
        errors[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backend down")
    );
    let n = messages.len();
    assert_eq!(
        messages[n - 2]["params"]["status"],
        json!({"type": "systemError"})
    );
    let turn = &messages[n - 1]["params"]["turn"];
    assert_eq!(turn["status"], "failed");
    assert_eq!(turn["error"]["codexErrorInfo"], "internalServerError");
    start_turn(&mut server, &thread_id, "again");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
}

#[test]
fn a_429_waits_for_retry_after() {
    let mock = MockServer::start();
    mock.push(status_with_headers(
        429,
        &[("Retry-After", "1")],
        r#"{"error":{"message":"slow down"}}"#,
    ));
    mock.push(text_reply("r1", "msg_1", &["ok"]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({}));
    let started = std::time::Instant::now();
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    assert_eq!(mock.requests_to("/v1/responses").len(), 2);
}

#[test]
fn a_dropped_stream_is_announced_and_retried() {
    let mock = MockServer::start();
    mock.push(sse_then_drop(vec![
        ev_created("r1"),
        ev_message_added("msg_1"),
        ev_text_delta("msg_1", "half"),
    ]));
    mock.push(text_reply("r2", "msg_2", &["whole"]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    let errors = error_notifications(&messages);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["willRetry"], true);
    assert_eq!(errors[0]["error"]["message"], "Reconnecting... 1/1");
    assert!(
        errors[0]["error"]["codexErrorInfo"]
            .get("responseStreamDisconnected")
            .is_some()
    );
    let started = item_of(&messages, "item/started", "agentMessage").len();
    let completed = item_of(&messages, "item/completed", "agentMessage").len();
    assert_eq!((started, completed), (2, 2), "every started item completes");
    assert_eq!(last_turn(&messages)["status"], "completed");
    let requests = mock.requests_to("/v1/responses");
    assert_eq!(
        requests[0].json(),
        requests[1].json(),
        "the same request is re-sent"
    );
}

#[test]
fn response_failed_fails_the_turn_with_the_server_message() {
    let mock = MockServer::start();
    mock.push(sse(vec![
        ev_created("r1"),
        ev_failed("r1", "server_error", "the model exploded"),
    ]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    let turn = last_turn(&messages);
    assert_eq!(turn["status"], "failed");
    assert!(
        turn["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the model exploded"),
        "{turn}"
    );
    assert_eq!(
        mock.requests_to("/v1/responses").len(),
        1,
        "response.failed is final"
    );
}

#[test]
fn a_silent_stream_times_out_and_is_retried() {
    let mock = MockServer::start();
    mock.push(sse_then_stall(vec![ev_created("r1")]));
    mock.push(sse_then_stall(vec![ev_created("r2")]));
    let mut server = AppServer::builder()
        .configs(mock.provider_overrides())
        .config("model_providers.mock.stream_idle_timeout_ms=300")
        .env("MOCK_KEY", "test-key")
        .spawn();
    server.initialize();
    let thread_id = start_thread(&mut server, json!({}));
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    let errors = error_notifications(&messages);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["willRetry"], true);
    assert_eq!(errors[1]["willRetry"], false);
    assert!(
        errors[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idle"),
        "{}",
        errors[1]
    );
    assert_eq!(last_turn(&messages)["status"], "failed");
    assert_eq!(mock.requests_to("/v1/responses").len(), 2);
}

#[test]
fn two_threads_run_turns_at_once() {
    let mock = MockServer::start();
    let slow = |id: &str| Reply::Sse {
        events: vec![
            ev_created(id),
            ev_message_added(id),
            ev_text_delta(id, "a"),
            ev_text_delta(id, "b"),
            ev_message_done(id, "ab"),
            ev_completed(id),
        ],
        delay: Duration::from_millis(100),
        end: End::Close,
    };
    mock.push(slow("one"));
    mock.push(slow("two"));
    let mut server = server_for(&mock);
    let first = start_thread(&mut server, json!({}));
    let second = start_thread(&mut server, json!({}));
    let turn_a = start_turn(&mut server, &first, "a");
    let turn_b = start_turn(&mut server, &second, "b");
    let mut completed = Vec::new();
    let mut all = Vec::new();
    while completed.len() < 2 {
        let (done, before) = server.read_until("turn/completed");
        all.extend(before);
        completed.push(done["params"]["threadId"].as_str().unwrap().to_string());
        all.push(done);
    }
    completed.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(completed, expected);
    for m in all
        .iter()
        .filter(|m| m["method"].as_str().is_some_and(|s| s.starts_with("item/")))
    {
        let pair = (
            m["params"]["threadId"].as_str().unwrap(),
            m["params"]["turnId"].as_str().unwrap(),
        );
        assert!(
            pair == (first.as_str(), turn_a.as_str()) || pair == (second.as_str(), turn_b.as_str()),
            "{m}"
        );
    }
    let first_done = all
        .iter()
        .position(|m| m["method"] == "turn/completed")
        .unwrap();
    let other_started_before = all[..first_done]
        .iter()
        .filter(|m| m["method"] == "turn/started")
        .count();
    assert_eq!(other_started_before, 2, "the turns overlapped");
}

#[test]
fn steer_adds_input_to_the_running_turn() {
    let mock = MockServer::start();
    mock.push(Reply::Sse {
        events: vec![
            ev_created("r1"),
            ev_message_added("m1"),
            ev_text_delta("m1", "wor"),
            ev_text_delta("m1", "king"),
            ev_message_done("m1", "working"),
            ev_completed("r1"),
        ],
        delay: Duration::from_millis(150),
        end: End::Close,
    });
    mock.push(text_reply("r2", "m2", &["saw it"]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({}));
    let turn_id = start_turn(&mut server, &thread_id, "start");
    server.read_until("item/agentMessage/delta");
    let wrong = server
        .call("turn/steer", json!({"threadId": thread_id, "expectedTurnId": "nope", "input": [{"type": "text", "text": "x"}]}))
        .unwrap_err();
    assert!(
        wrong["message"]
            .as_str()
            .unwrap()
            .contains("expected active turn id nope"),
        "{wrong}"
    );
    // As in the reference, a steer must name the turn it means.
    let unnamed = server
        .crafted()
        .call(
            "turn/steer",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "x"}]}),
        )
        .unwrap_err();
    assert_eq!(unnamed["code"], -32602, "{unnamed}");
    assert!(
        unnamed["message"]
            .as_str()
            .unwrap()
            .contains("expectedTurnId"),
        "{unnamed}"
    );
    let result = server
        .call("turn/steer", json!({"threadId": thread_id, "expectedTurnId": turn_id, "input": [{"type": "text", "text": "also this"}]}))
        .unwrap();
    assert_eq!(result, json!({"turnId": turn_id}));
    let messages = finish_turn(&mut server);
    let users = item_of(&messages, "item/completed", "userMessage");
    assert_eq!(users.last().unwrap()["content"][0]["text"], "also this");
    let requests = mock.requests_to("/v1/responses");
    assert_eq!(
        requests.len(),
        2,
        "the steered input goes out with the next request"
    );
    let input = requests[1].json()["input"].clone();
    assert_eq!(
        input.as_array().unwrap().last().unwrap()["content"][0]["text"],
        "also this"
    );
    let error = server
        .call(
            "turn/steer",
            json!({"threadId": thread_id, "expectedTurnId": turn_id, "input": [{"type": "text", "text": "late"}]}),
        )
        .unwrap_err();
    assert_eq!(error["message"], "no active turn to steer");
}

#[test]
fn accept_for_session_is_remembered_per_thread() {
    let mock = MockServer::start();
    for call in ["c1", "c2"] {
        mock.push(shell_call(call, json!({"command": ["touch", "again.txt"]})));
        mock.push(text_reply("r", "m", &["ok"]));
    }
    let mut server = server_for(&mock);
    let cwd = TempDir::new("cwd");
    let thread_id = start_thread(
        &mut server,
        json!({"cwd": cwd.path(), "approvalPolicy": "untrusted", "sandbox": "workspace-write"}),
    );
    start_turn(&mut server, &thread_id, "one");
    let (request, _) = server.read_until("item/commandExecution/requestApproval");
    server.answer(&request["id"], json!({"decision": "acceptForSession"}));
    finish_turn(&mut server);
    start_turn(&mut server, &thread_id, "two");
    let messages = finish_turn(&mut server);
    assert!(
        !methods(&messages)
            .iter()
            .any(|m| m.contains("requestApproval")),
        "not asked again"
    );
    assert_eq!(
        item_of(&messages, "item/completed", "commandExecution")[0]["status"],
        "completed"
    );
}

#[test]
fn untrusted_offers_to_rerun_a_sandbox_denial_without_the_sandbox() {
    let mock = MockServer::start();
    let target = format!("/var/tmp/codex-lite-denial-{}", std::process::id());
    mock.push(shell_call("c1", json!({"command": ["touch", target]})));
    mock.push(text_reply("r", "m", &["ok"]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(
        &mut server,
        json!({"approvalPolicy": "untrusted", "sandbox": "read-only"}),
    );
    start_turn(&mut server, &thread_id, "touch");
    let (first, _) = server.read_until("item/commandExecution/requestApproval");
    assert_eq!(first["params"]["reason"], Value::Null);
    server.answer(&first["id"], json!({"decision": "accept"}));
    let (second, before) = server.read_until("item/commandExecution/requestApproval");
    assert_eq!(
        second["params"]["reason"],
        "command failed; retry without sandbox?"
    );
    let denied: String = before
        .iter()
        .filter(|m| m["method"] == "item/commandExecution/outputDelta")
        .map(|m| m["params"]["delta"].as_str().unwrap())
        .collect();
    assert!(
        denied.to_lowercase().contains("permission denied")
            || denied.to_lowercase().contains("read-only"),
        "{denied}"
    );
    assert!(!std::path::Path::new(&target).exists());
    server.answer(&second["id"], json!({"decision": "accept"}));
    let messages = finish_turn(&mut server);
    assert_eq!(
        item_of(&messages, "item/completed", "commandExecution")[0]["exitCode"],
        0
    );
    assert!(std::path::Path::new(&target).exists());
    std::fs::remove_file(&target).unwrap();
}

#[test]
fn opted_out_notifications_are_never_sent() {
    let mock = MockServer::start();
    mock.push(text_reply("r1", "msg_1", &["a", "b"]));
    let mut server = AppServer::builder()
        .configs(mock.provider_overrides())
        .env("MOCK_KEY", "k")
        .spawn();
    server.initialize_with(json!({
        "clientInfo": {"name": "optout", "version": "1"},
        "capabilities": {"optOutNotificationMethods": ["item/agentMessage/delta", "thread/started"]}
    }));
    let thread = server.call("thread/start", json!({})).unwrap();
    let thread_id = thread["thread"]["id"].as_str().unwrap().to_string();
    start_turn(&mut server, &thread_id, "hi");
    let messages = finish_turn(&mut server);
    let names = methods(&messages);
    assert!(
        !names
            .iter()
            .any(|m| m == "item/agentMessage/delta" || m == "thread/started"),
        "{names:?}"
    );
    assert_eq!(
        item_of(&messages, "item/completed", "agentMessage")[0]["text"],
        "ab"
    );
}

#[test]
fn stdin_eof_during_a_turn_stops_it_and_exits() {
    let mock = MockServer::start();
    mock.push(shell_call("c1", json!({"command": ["sleep", "32.88"]})));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({"approvalPolicy": "never"}));
    start_turn(&mut server, &thread_id, "sleep");
    server.read_until("item/started");
    server.read_until("item/started");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while processes_with_arg("32.88") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.close_stdin();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("exits after EOF");
    assert_eq!(status.code(), Some(0));
    let (completed, _) = server.read_until("turn/completed");
    assert_eq!(completed["params"]["turn"]["status"], "interrupted");
    assert_eq!(processes_with_arg("32.88"), 0, "no process left");
}

#[test]
fn turn_errors() {
    let mock = MockServer::start();
    mock.push(sse_then_stall(vec![ev_created("r1")]));
    let mut server = server_for(&mock);
    let missing = server
        .call(
            "turn/start",
            json!({"threadId": "nope", "input": [{"type": "text", "text": "x"}]}),
        )
        .unwrap_err();
    assert_eq!(
        missing,
        json!({"code": -32600, "message": "thread not found: nope"})
    );
    let thread_id = start_thread(&mut server, json!({}));
    let bad_kind = server
        .call(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "skill", "name": "x", "path": "y"}]}),
        )
        .unwrap_err();
    assert_eq!(bad_kind["code"], -32602);
    let empty = server
        .call("turn/start", json!({"threadId": thread_id, "input": []}))
        .unwrap_err();
    assert_eq!(empty["code"], -32602);
    let image = server.call("turn/start", json!({"threadId": thread_id, "input": [{"type": "localImage", "path": "/nonexistent.png"}]})).unwrap_err();
    assert!(
        image["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent.png"),
        "{image}"
    );
    let turn_id = start_turn(&mut server, &thread_id, "first");
    let busy = server
        .call(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "x"}]}),
        )
        .unwrap_err();
    assert!(
        busy["message"]
            .as_str()
            .unwrap()
            .contains("already has an active turn"),
        "{busy}"
    );
    interrupt_turn(&mut server, &thread_id, &turn_id);
}

#[test]
fn interrupt_while_the_request_hangs_before_headers() {
    let mock = MockServer::start();
    mock.push(Reply::Hang);
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({}));
    let turn_id = start_turn(&mut server, &thread_id, "hi");
    mock.wait_for_requests(1);
    let messages = interrupt_turn(&mut server, &thread_id, &turn_id);
    assert!(error_notifications(&messages).is_empty());
}

#[test]
fn a_model_response_that_never_ends_is_cut_off() {
    let mock = MockServer::start();
    let chunk = "y".repeat(64 * 1024);
    let mut events = vec![ev_created("r1"), ev_message_added("m1")];
    events.extend((0..(33 * 16)).map(|_| ev_text_delta("m1", &chunk)));
    events.push(ev_completed("r1"));
    mock.push(sse(events));
    let mut server = AppServer::builder()
        .configs(mock.provider_overrides())
        .env("MOCK_KEY", "k")
        .spawn();
    server.initialize_with(json!({
        "clientInfo": {"name": "t", "version": "1"},
        "capabilities": {"optOutNotificationMethods": ["item/agentMessage/delta"]}
    }));
    let thread = server
        .call("thread/start", json!({"ephemeral": true}))
        .unwrap();
    let thread_id = thread["thread"]["id"].as_str().unwrap().to_string();
    start_turn(&mut server, &thread_id, "talk forever");
    // 32 MiB of deltas through a debug build: 13 s at a load of 10 on 2 cores, 90 s with six
    // copies of this test running, so not the default wait but a generous bound (the cut-off
    // itself is by size, not time).
    let (completed, mut messages) =
        server.read_until_within("turn/completed", Duration::from_secs(300));
    messages.push(completed);
    let turn = last_turn(&messages);
    assert_eq!(turn["status"], "failed");
    assert!(
        turn["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeded 32 MiB"),
        "{turn}"
    );
    assert_eq!(
        item_of(&messages, "item/completed", "agentMessage").len(),
        1,
        "the open item is closed"
    );
}
