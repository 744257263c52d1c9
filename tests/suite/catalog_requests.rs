//! What the catalog entry of a thread's model does to the request (models.md §3–4), through
//! the real binary against the mock Responses server: the classic and the Responses Lite
//! shapes, reasoning, verbosity, `outputSchema`, the shell_command tool with escalation, tool
//! output formatted and truncated per the catalog, and `modelContextWindow`. A custom provider
//! uses the bundled catalog of facts (no fetch); the ChatGPT catalog is `catalog_fetch.rs`.

use serde_json::{Value, json};

use crate::suite::turns::{finish_turn, server_for, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::mock_responses::*;

/// A reply calling `name` with `arguments`.
fn call(name: &str, arguments: Value) -> Reply {
    sse(vec![
        ev_created("r_call"),
        ev_reasoning_done("rs_1", "", "ENC"),
        ev_function_call("call_1", name, &arguments),
        ev_completed("r_call"),
    ])
}

fn bodies(mock: &MockServer) -> Vec<Value> {
    mock.requests_to("/v1/responses")
        .iter()
        .map(|r| r.json())
        .collect()
}

fn output_of(body: &Value, call_id: &str) -> String {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call_output" && i["call_id"] == call_id)
        .unwrap_or_else(|| panic!("no output for {call_id}: {body}"))["output"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn responses_lite_shape_for_lite_models() {
    let mock = MockServer::start();
    // `login: false`: a non-login shell, so the machine's profile scripts add nothing.
    mock.push(call(
        "shell_command",
        json!({"command": "echo lite", "login": false}),
    ));
    mock.push(text_reply("r2", "m2", &["done"]));
    let mut server = server_for(&mock);
    let cwd = TempDir::new("cwd");
    let thread_id = start_thread(
        &mut server,
        json!({"model": "gpt-6.1-sol", "cwd": cwd.path(), "approvalPolicy": "never"}),
    );
    start_turn(&mut server, &thread_id, "go");
    let messages = finish_turn(&mut server);
    assert_eq!(
        messages.last().unwrap()["params"]["turn"]["status"],
        "completed"
    );
    let requests = mock.requests_to("/v1/responses");
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(
            request.header("x-openai-internal-codex-responses-lite"),
            Some("true")
        );
    }
    let body = requests[0].json();
    assert!(body.get("tools").is_none(), "no top-level tools: {body}");
    assert!(body.get("instructions").is_none());
    assert_eq!(body["parallel_tool_calls"], false);
    assert_eq!(
        body["reasoning"],
        json!({"effort": "low", "context": "all_turns"}),
        "catalog effort; default summary none: no summary"
    );
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(body["text"], json!({"verbosity": "low"}));
    let input = body["input"].as_array().unwrap();
    assert_eq!(input[0]["type"], "additional_tools");
    assert_eq!(input[0]["role"], "developer");
    let namespace = &input[0]["tools"][0];
    assert_eq!(namespace["type"], "namespace");
    assert_eq!(namespace["name"], "functions");
    let names: Vec<&str> = namespace["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[..3], ["exec_command", "write_stdin", "apply_patch"]);
    assert!(
        names.contains(&"view_image"),
        "the model takes images: {names:?}"
    );
    assert!(
        !names.contains(&"web_search"),
        "no hosted tools in the Lite shape"
    );
    assert_eq!(namespace["tools"][2]["type"], "custom");
    assert_eq!(input[1]["type"], "message");
    assert_eq!(input[1]["role"], "developer");
    assert!(
        input[1]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("coding agent"),
        "our base instructions as a developer message"
    );
    // The call ran and its output went back in the same shape.
    let second = requests[1].json();
    assert_eq!(second["input"][0]["type"], "additional_tools");
    let output = output_of(&second, "call_1");
    assert!(output.starts_with("Exit code: 0\nWall time: "), "{output}");
    assert!(output.ends_with("Output:\nlite\n"), "{output}");
}

#[test]
fn classic_shape_reasoning_verbosity_and_output_schema() {
    let mock = MockServer::start();
    // A reasoning item without encrypted content must never be replayed.
    mock.push(sse(vec![
        ev_created("r1"),
        ev(
            "response.output_item.done",
            json!({"item": {"type": "reasoning", "id": "rs_plain", "summary": []}}),
        ),
        ev_message_added("m1"),
        ev_message_done("m1", "{\"a\":\"x\"}"),
        ev_completed("r1"),
    ]));
    mock.push(text_reply("r2", "m2", &["ok"]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({"model": "gpt-5.5"}));
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false});
    server
        .call(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "json please"}],
                   "outputSchema": schema, "effort": "high"}),
        )
        .unwrap();
    finish_turn(&mut server);
    start_turn(&mut server, &thread_id, "again");
    finish_turn(&mut server);
    let bodies = bodies(&mock);
    let body = &bodies[0];
    assert!(
        mock.requests_to("/v1/responses")[0]
            .header("x-openai-internal-codex-responses-lite")
            .is_none()
    );
    assert!(!body["instructions"].as_str().unwrap().trim().is_empty());
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["parallel_tool_calls"], true);
    assert_eq!(body["reasoning"], json!({"effort": "high"}));
    assert_eq!(
        body["text"],
        json!({"verbosity": "low", "format": {"type": "json_schema", "name": "codex_output_schema", "strict": true, "schema": schema}})
    );
    let tools: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().or(t["type"].as_str()).unwrap())
        .collect();
    assert_eq!(tools[..3], ["exec_command", "write_stdin", "apply_patch"]);
    assert!(
        tools.contains(&"web_search"),
        "hosted tools in the classic shape: {tools:?}"
    );
    // The schema is for that turn only; the effort stays the thread's choice.
    let second = &bodies[1];
    assert_eq!(second["text"], json!({"verbosity": "low"}));
    assert_eq!(second["reasoning"], json!({"effort": "high"}));
    let kinds: Vec<&str> = second["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"reasoning"), "{kinds:?}");
}

#[test]
fn shell_command_escalation_asks_with_the_justification() {
    for (args, label) in [
        (
            json!({"command": "echo out", "sandbox_permissions": "require_escalated", "justification": "needs the network"}),
            "sandbox_permissions",
        ),
        (
            json!({"command": "echo out", "with_escalated_permissions": true, "justification": "needs the network"}),
            "with_escalated_permissions",
        ),
    ] {
        let mock = MockServer::start();
        mock.push(call("shell_command", args));
        mock.push(text_reply("r2", "m2", &["ok"]));
        let mut server = server_for(&mock);
        let cwd = TempDir::new("cwd");
        let thread_id = start_thread(
            &mut server,
            json!({"model": "gpt-5.5", "cwd": cwd.path(), "approvalPolicy": "on-request"}),
        );
        start_turn(&mut server, &thread_id, "go");
        let (request, _) = server.read_until("item/commandExecution/requestApproval");
        assert_eq!(request["params"]["reason"], "needs the network", "{label}");
        let command = request["params"]["command"].as_str().unwrap();
        assert!(command.ends_with("-lc 'echo out'"), "{label}: {command}");
        server.answer(&request["id"], json!({"decision": "accept"}));
        finish_turn(&mut server);
        let output = output_of(&bodies(&mock)[1], "call_1");
        assert!(output.starts_with("Exit code: 0\n"), "{label}: {output}");
        assert!(output.ends_with("Output:\nout\n"), "{label}: {output}");
    }
}

#[test]
fn tool_output_is_truncated_per_the_catalog_policy() {
    // 60 000 bytes of output: over gpt-5.5's 10 000-token (≈40 000-byte) budget and over the
    // 10 000-byte budget of an unknown model.
    let script = "seq 1 11000";
    for (model, tool, args, unit, budget) in [
        (
            "gpt-5.5",
            "shell_command",
            json!({"command": script, "login": false}),
            "tokens truncated…",
            40_000,
        ),
        (
            "mock-model",
            "shell",
            json!({"command": ["bash", "-c", script]}),
            "bytes truncated…",
            10_000,
        ),
    ] {
        let mock = MockServer::start();
        mock.push(call(tool, args));
        mock.push(text_reply("r2", "m2", &["ok"]));
        let mut server = server_for(&mock);
        let cwd = TempDir::new("cwd");
        let thread_id = start_thread(
            &mut server,
            json!({"model": model, "cwd": cwd.path(), "approvalPolicy": "never"}),
        );
        start_turn(&mut server, &thread_id, "go");
        let messages = finish_turn(&mut server);
        let item = messages
            .iter()
            .find(|m| {
                m["method"] == "item/completed" && m["params"]["item"]["type"] == "commandExecution"
            })
            .unwrap();
        let full = item["params"]["item"]["aggregatedOutput"].as_str().unwrap();
        assert!(full.ends_with("10999\n11000\n"), "the item keeps it all");
        let output = output_of(&bodies(&mock)[1], "call_1");
        let text = if tool == "shell" {
            serde_json::from_str::<Value>(&output).unwrap()["output"]
                .as_str()
                .unwrap()
                .to_string()
        } else {
            output.clone()
        };
        assert!(text.contains(unit), "{model}: {}", &text[..200]);
        assert!(text.contains("1\n2\n3\n"), "{model}: head kept");
        assert!(
            text.ends_with("10999\n11000\n"),
            "{model}: head and tail kept"
        );
        assert!(
            text.len() < budget + 200,
            "{model}: {} bytes over a {budget}-byte budget",
            text.len()
        );
        if tool == "shell_command" {
            assert!(
                output.contains("Total output lines: 11000\n"),
                "{output:.300}"
            );
        }
    }
}

#[test]
fn token_usage_reports_the_catalog_context_window() {
    for (model, window) in [("gpt-6.1-terra", 475_000), ("mock-model", 258_400)] {
        let mock = MockServer::start();
        mock.push(text_reply("r1", "m1", &["hi"]));
        let mut server = server_for(&mock);
        let thread_id = start_thread(&mut server, json!({"model": model}));
        start_turn(&mut server, &thread_id, "hi");
        let messages = finish_turn(&mut server);
        let usage = messages
            .iter()
            .find(|m| m["method"] == "thread/tokenUsage/updated")
            .unwrap();
        assert_eq!(
            usage["params"]["tokenUsage"]["modelContextWindow"], window,
            "{model}: window × 95 %"
        );
    }
}
