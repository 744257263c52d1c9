//! Unified exec through the real binary (`exec_command`, `write_stdin`): a command that ends
//! within the yield, a long-running session polled, typed input on a terminal, the refusal to
//! type into a pipe session, bounded output, the sandbox and the approvals of the shell tool, and
//! the items, deltas and model-facing text as the reference shapes them.

use std::sync::Arc;

use serde_json::{Value, json};

use super::turns::{finish_turn, methods, server_for, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// One model reply calling `exec_command` with `args`.
pub fn exec_call(call_id: &str, args: Value) -> Reply {
    sse(vec![
        ev_created("r_exec"),
        ev_function_call(call_id, "exec_command", &args),
        ev_completed("r_exec"),
    ])
}

/// One model reply calling `write_stdin` on the session that call `of_call` started (its id read
/// from the request, as a model would), typing `chars`.
pub fn write_call(call_id: &str, of_call: &str, chars: &str, yield_ms: u64) -> Reply {
    let (call_id, of_call, chars) = (call_id.to_string(), of_call.to_string(), chars.to_string());
    Reply::Dynamic(Arc::new(move |request: &RecordedRequest| {
        let id = session_id(&request.json(), &of_call)
            .unwrap_or_else(|| panic!("no session id for {of_call} in the request"));
        sse(vec![
            ev_created("r_write"),
            ev_function_call(
                &call_id,
                "write_stdin",
                &json!({"session_id": id, "chars": chars, "yield_time_ms": yield_ms}),
            ),
            ev_completed("r_write"),
        ])
    }))
}

/// The text the model got back for `call_id` in a request body.
pub fn output_of(body: &Value, call_id: &str) -> Option<String> {
    body["input"]
        .as_array()?
        .iter()
        .find(|i| i["type"] == "function_call_output" && i["call_id"] == call_id)
        .and_then(|i| i["output"].as_str())
        .map(str::to_string)
}

/// The session id the output for `call_id` announced.
pub fn session_id(body: &Value, call_id: &str) -> Option<i64> {
    let text = output_of(body, call_id)?;
    let rest = text.split("Process running with session ID ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The output the model got for `call_id`, from the last request that carried it.
pub fn model_output(mock: &MockServer, call_id: &str) -> String {
    mock.requests_to("/v1/responses")
        .iter()
        .rev()
        .find_map(|r| output_of(&r.json(), call_id))
        .unwrap_or_else(|| panic!("no output for {call_id}"))
}

/// The `item/completed` of `item_id` among `messages`.
pub fn completed(messages: &[Value], item_id: &str) -> Value {
    messages
        .iter()
        .find(|m| m["method"] == "item/completed" && m["params"]["item"]["id"] == item_id)
        .unwrap_or_else(|| panic!("no item/completed for {item_id}: {messages:?}"))["params"]
        ["item"]
        .clone()
}

/// Everything streamed as output deltas of `item_id`.
pub fn deltas(messages: &[Value], item_id: &str) -> String {
    messages
        .iter()
        .filter(|m| {
            m["method"] == "item/commandExecution/outputDelta" && m["params"]["itemId"] == item_id
        })
        .map(|m| m["params"]["delta"].as_str().unwrap().to_string())
        .collect()
}

/// A server on `mock` with a thread in a fresh cwd under `params`; returns both and the cwd.
pub fn thread_on(mock: &MockServer, params: Value) -> (AppServer, String, TempDir) {
    let mut server = server_for(mock);
    let cwd = TempDir::new("uexec");
    let mut params = params;
    params["cwd"] = json!(cwd.path());
    let thread_id = start_thread(&mut server, params);
    (server, thread_id, cwd)
}

#[test]
fn a_command_that_ends_within_the_yield_answers_with_its_exit_code() {
    let mock = MockServer::start();
    mock.push(exec_call(
        "c1",
        json!({"cmd": "echo hello; echo err >&2; exit 3", "shell": "/bin/sh", "login": false, "yield_time_ms": 5000}),
    ));
    mock.push(text_reply("r2", "m2", &["done"]));
    let (mut server, thread_id, cwd) = thread_on(&mock, json!({"approvalPolicy": "never"}));
    let turn_id = start_turn(&mut server, &thread_id, "go");
    let messages = finish_turn(&mut server);
    let started = messages
        .iter()
        .find(|m| m["method"] == "item/started" && m["params"]["item"]["id"] == "c1")
        .expect("item/started");
    let item = &started["params"]["item"];
    assert_eq!(item["type"], "commandExecution");
    assert_eq!(
        item["command"],
        "/bin/sh -c 'echo hello; echo err >&2; exit 3'"
    );
    assert_eq!(item["cwd"], json!(cwd.path()));
    assert_eq!(item["source"], "unifiedExecStartup");
    assert_eq!(item["status"], "inProgress");
    assert_eq!(
        item["commandActions"],
        json!([{"type": "unknown", "command": "echo hello; echo err >&2; exit 3"}])
    );
    let process_id = item["processId"].as_str().expect("processId").to_string();
    let done = completed(&messages, "c1");
    assert_eq!(done["status"], "failed");
    assert_eq!(done["exitCode"], 3);
    assert_eq!(done["processId"], process_id.as_str());
    let aggregated = done["aggregatedOutput"].as_str().unwrap();
    assert!(
        aggregated.contains("hello\n") && aggregated.contains("err\n"),
        "{aggregated}"
    );
    assert_eq!(deltas(&messages, "c1").len(), aggregated.len());
    // Started, streamed and completed before the next model request's reply.
    let order = methods(&messages);
    let first_start = order.iter().position(|m| m == "item/started").unwrap();
    let agent = messages
        .iter()
        .position(|m| {
            m["method"] == "item/started" && m["params"]["item"]["type"] == "agentMessage"
        })
        .unwrap();
    let command_done = messages
        .iter()
        .position(|m| m["method"] == "item/completed" && m["params"]["item"]["id"] == "c1")
        .unwrap();
    assert!(
        first_start < command_done && command_done < agent,
        "{order:?}"
    );
    // The turn lists it.
    let turn = &messages.last().unwrap()["params"]["turn"];
    assert_eq!(turn["id"], turn_id.as_str());
    assert!(
        turn["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == "c1"),
        "{turn}"
    );
    let text = model_output(&mock, "c1");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("Chunk ID: ") && lines[0].len() == 16,
        "{text}"
    );
    assert!(
        lines[1].starts_with("Wall time: ") && lines[1].ends_with(" seconds"),
        "{text}"
    );
    assert_eq!(lines[2], "Process exited with code 3");
    assert_eq!(lines[3], "Original token count: 3");
    assert_eq!(lines[4], "Output:");
    assert!(text.contains("hello\n") && text.contains("err\n"), "{text}");
}

#[test]
fn the_default_shell_is_the_login_shell_with_the_session_environment() {
    let mock = MockServer::start();
    mock.push(exec_call(
        "c1",
        json!({"cmd": "echo \"term=$TERM color=$NO_COLOR pager=$PAGER\""}),
    ));
    mock.push(text_reply("r2", "m2", &["done"]));
    let (mut server, thread_id, _cwd) = thread_on(&mock, json!({"approvalPolicy": "never"}));
    start_turn(&mut server, &thread_id, "go");
    let messages = finish_turn(&mut server);
    let item = completed(&messages, "c1");
    let command = item["command"].as_str().unwrap();
    assert!(
        command.starts_with('/') && command.contains(" -lc "),
        "the passwd shell as a login shell: {command}"
    );
    let text = model_output(&mock, "c1");
    assert!(text.contains("term=dumb color=1 pager=cat"), "{text}");
}

#[test]
fn a_long_running_session_is_polled_until_it_ends() {
    let mock = MockServer::start();
    mock.push(exec_call(
        "c1",
        json!({"cmd": "echo start; sleep 3; echo end", "shell": "/bin/sh", "login": false, "yield_time_ms": 1000}),
    ));
    mock.push(write_call("c2", "c1", "", 20_000));
    mock.push(write_call("c3", "c1", "", 300));
    mock.push(text_reply("r4", "m4", &["done"]));
    let (mut server, thread_id, _cwd) = thread_on(&mock, json!({"approvalPolicy": "never"}));
    start_turn(&mut server, &thread_id, "go");
    let messages = finish_turn(&mut server);
    let first = model_output(&mock, "c1");
    let id = session_id(&mock.requests_to("/v1/responses")[1].json(), "c1").expect("session id");
    assert!(
        first.contains(&format!("Process running with session ID {id}\n")),
        "{first}"
    );
    assert!(first.ends_with("Output:\nstart\n"), "{first}");
    // The poll waited for the end (not only its 5 s minimum), and gave only the new output.
    let second = model_output(&mock, "c2");
    assert!(second.contains("Process exited with code 0\n"), "{second}");
    assert!(second.ends_with("Output:\nend\n"), "{second}");
    let third = model_output(&mock, "c3");
    assert_eq!(
        third,
        format!("write_stdin failed: Unknown process id {id}")
    );
    let item = completed(&messages, "c1");
    assert_eq!(item["status"], "completed");
    assert_eq!(item["exitCode"], 0);
    assert_eq!(item["processId"], id.to_string());
    assert_eq!(item["aggregatedOutput"], "start\nend\n");
    assert_eq!(deltas(&messages, "c1"), "start\nend\n");
    // Completed while the poll waited: before the reply that called c3.
    let completed_at = messages
        .iter()
        .position(|m| m["method"] == "item/completed" && m["params"]["item"]["id"] == "c1")
        .unwrap();
    let requests = mock.requests_to("/v1/responses");
    assert_eq!(requests.len(), 4);
    assert!(completed_at < messages.len() - 1);
    // No item for write_stdin itself.
    assert!(!messages.iter().any(|m| m["method"] == "item/started"
        && (m["params"]["item"]["id"] == "c2" || m["params"]["item"]["id"] == "c3")));
}

#[test]
fn typed_input_reaches_a_terminal_session() {
    let mock = MockServer::start();
    mock.push(exec_call(
        "c1",
        json!({"cmd": "test -t 0 && test -t 1 && echo tty; stty size; read a; read b; echo \"sum:$a+$b\"",
               "shell": "/bin/sh", "login": false, "tty": true, "yield_time_ms": 2000}),
    ));
    mock.push(write_call("c2", "c1", "one\n", 1000));
    mock.push(write_call("c3", "c1", "two\n", 5000));
    mock.push(exec_call(
        "c4",
        json!({"cmd": "cat", "shell": "/bin/sh", "login": false, "tty": true, "yield_time_ms": 250}),
    ));
    mock.push(write_call("c5", "c4", "line\n", 1500));
    mock.push(write_call("c6", "c4", "\u{4}", 5000));
    mock.push(text_reply("r7", "m7", &["done"]));
    let (mut server, thread_id, _cwd) = thread_on(&mock, json!({"approvalPolicy": "never"}));
    let turn_id = start_turn(&mut server, &thread_id, "go");
    let messages = finish_turn(&mut server);
    let first = model_output(&mock, "c1");
    assert!(first.ends_with("Output:\ntty\r\n24 80\r\n"), "{first}");
    let second = model_output(&mock, "c2");
    assert!(
        second.contains("Process running with session ID"),
        "{second}"
    );
    assert!(second.ends_with("Output:\none\r\n"), "the echo: {second}");
    let third = model_output(&mock, "c3");
    assert!(third.contains("Process exited with code 0"), "{third}");
    assert!(third.contains("two\r\nsum:one+two\r\n"), "{third}");
    let item = completed(&messages, "c1");
    assert_eq!(
        item["aggregatedOutput"],
        "tty\r\n24 80\r\none\r\ntwo\r\nsum:one+two\r\n"
    );
    // cat echoes and repeats the line; Ctrl-D ends its input.
    assert!(model_output(&mock, "c5").ends_with("Output:\nline\r\nline\r\n"));
    assert!(model_output(&mock, "c6").contains("Process exited with code 0"));
    // One terminalInteraction per non-empty write, before the item it ended completes.
    let interactions: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "item/commandExecution/terminalInteraction")
        .collect();
    assert_eq!(interactions.len(), 4, "{interactions:?}");
    let c1 = &interactions[0]["params"];
    assert_eq!(c1["threadId"], thread_id.as_str());
    assert_eq!(c1["turnId"], turn_id.as_str());
    assert_eq!(c1["itemId"], "c1");
    assert_eq!(c1["processId"], item["processId"]);
    assert_eq!(c1["stdin"], "one\n");
    assert_eq!(interactions[3]["params"]["stdin"], "\u{4}");
    let position = |pred: &dyn Fn(&Value) -> bool| messages.iter().position(pred).unwrap();
    let last_interaction = position(&|m| {
        m["method"] == "item/commandExecution/terminalInteraction"
            && m["params"]["stdin"] == "\u{4}"
    });
    let cat_done =
        position(&|m| m["method"] == "item/completed" && m["params"]["item"]["id"] == "c4");
    assert!(last_interaction < cat_done);
}

#[test]
fn a_pipe_session_has_no_stdin() {
    let mock = MockServer::start();
    mock.push(exec_call(
        "c1",
        json!({"cmd": "cat; echo cat-ended; sleep 3", "shell": "/bin/sh", "login": false, "yield_time_ms": 1500}),
    ));
    mock.push(write_call("c2", "c1", "hello\n", 250));
    mock.push(text_reply("r3", "m3", &["done"]));
    let (mut server, thread_id, _cwd) = thread_on(&mock, json!({"approvalPolicy": "never"}));
    start_turn(&mut server, &thread_id, "go");
    finish_turn(&mut server);
    // cat read the null device: it ended at once.
    assert!(model_output(&mock, "c1").ends_with("Output:\ncat-ended\n"));
    assert_eq!(
        model_output(&mock, "c2"),
        "write_stdin failed: stdin is closed for this session; rerun exec_command with tty=true to keep stdin open"
    );
}

#[test]
fn output_is_bounded_per_call_head_and_tail() {
    let mock = MockServer::start();
    mock.push(exec_call(
        "c1",
        json!({"cmd": "seq 1 3000", "shell": "/bin/sh", "login": false, "max_output_tokens": 50}),
    ));
    mock.push(exec_call(
        "c2",
        json!({"cmd": "head -c 2000000 /dev/zero | tr '\\0' x; echo; echo tail-end", "shell": "/bin/sh", "login": false, "max_output_tokens": 100, "yield_time_ms": 30000}),
    ));
    mock.push(text_reply("r3", "m3", &["done"]));
    let (mut server, thread_id, _cwd) = thread_on(&mock, json!({"approvalPolicy": "never"}));
    start_turn(&mut server, &thread_id, "go");
    let messages = finish_turn(&mut server);
    let seq = model_output(&mock, "c1");
    let body = seq.split_once("Output:\n").unwrap().1;
    assert!(
        body.starts_with(
            "Warning: truncated output (original token count: 3474)\nTotal output lines: 3000\n\n1\n2\n"
        ),
        "{seq}"
    );
    assert!(body.contains("…3424 tokens truncated…"), "{seq}");
    assert!(body.ends_with("2999\n3000\n"), "{seq}");
    let big = model_output(&mock, "c2");
    assert!(big.len() < 1000, "{} bytes", big.len());
    assert!(big.ends_with("tail-end\n"), "{big}");
    assert!(big.contains("Original token count: 500003\n"), "{big}");
    let item = completed(&messages, "c2");
    let aggregated = item["aggregatedOutput"].as_str().unwrap();
    assert!(aggregated.len() <= 64 * 1024 + 100, "{}", aggregated.len());
    assert!(aggregated.ends_with("tail-end\n"));
}

#[test]
fn the_sandbox_applies_and_denials_reach_the_model() {
    let mock = MockServer::start();
    let outside = TempDir::new_outside_tmp("uexec-outside");
    let target = outside.path().join("x");
    mock.push(exec_call(
        "c1",
        json!({"cmd": format!("touch '{}'", target.display()), "shell": "/bin/sh", "login": false}),
    ));
    mock.push(exec_call(
        "c2",
        json!({"cmd": "touch inside && echo made", "shell": "/bin/sh", "login": false}),
    ));
    mock.push(text_reply("r3", "m3", &["done"]));
    let (mut server, thread_id, cwd) = thread_on(
        &mock,
        json!({"approvalPolicy": "never", "sandbox": "workspace-write"}),
    );
    start_turn(&mut server, &thread_id, "go");
    let messages = finish_turn(&mut server);
    assert!(!target.exists(), "written outside the workspace");
    let denied = model_output(&mock, "c1");
    assert!(!denied.contains("Process exited with code 0"), "{denied}");
    assert_eq!(completed(&messages, "c1")["status"], "failed");
    assert!(cwd.path().join("inside").exists());
    assert!(model_output(&mock, "c2").ends_with("Output:\nmade\n"));
}

/// Runs one escalated exec_command under `on-request` and answers with `decision`.
fn escalated(decision: &str) -> (Vec<Value>, Value, MockServer, TempDir) {
    let mock = MockServer::start();
    let outside = TempDir::new_outside_tmp("uexec-escalated");
    mock.push(exec_call(
        "c1",
        json!({"cmd": format!("touch '{}/x' && echo wrote", outside.path().display()), "shell": "/bin/sh", "login": false,
               "sandbox_permissions": "require_escalated", "justification": "needs the other dir"}),
    ));
    mock.push(text_reply("r2", "m2", &["done"]));
    let (mut server, thread_id, _cwd) = thread_on(
        &mock,
        json!({"approvalPolicy": "on-request", "sandbox": "workspace-write"}),
    );
    start_turn(&mut server, &thread_id, "go");
    let (request, before) = server.read_until("item/commandExecution/requestApproval");
    let started = before.last().unwrap();
    assert_eq!(started["method"], "item/started");
    assert_eq!(started["params"]["item"]["processId"], Value::Null);
    assert_eq!(started["params"]["item"]["source"], "agent");
    server.answer(&request["id"], json!({"decision": decision}));
    let messages = finish_turn(&mut server);
    (messages, request, mock, outside)
}

#[test]
fn escalation_asks_like_the_shell_tool_and_accept_runs_outside_the_sandbox() {
    let (messages, request, mock, outside) = escalated("accept");
    assert_eq!(request["params"]["reason"], "needs the other dir");
    assert_eq!(request["params"]["itemId"], "c1");
    assert!(
        request["params"]["command"]
            .as_str()
            .unwrap()
            .starts_with("/bin/sh -c "),
        "{request}"
    );
    assert!(outside.path().join("x").exists());
    let item = completed(&messages, "c1");
    assert_eq!(item["status"], "completed");
    assert_eq!(item["source"], "unifiedExecStartup");
    assert!(item["processId"].is_string());
    assert!(model_output(&mock, "c1").ends_with("Output:\nwrote\n"));
}

#[test]
fn a_declined_escalation_runs_nothing() {
    let (messages, _request, mock, outside) = escalated("decline");
    assert!(!outside.path().join("x").exists());
    assert_eq!(completed(&messages, "c1")["status"], "declined");
    assert!(model_output(&mock, "c1").starts_with("rejected by user"));
}

#[test]
fn untrusted_asks_before_an_unknown_command_and_not_before_a_read_only_one() {
    let mock = MockServer::start();
    mock.push(exec_call(
        "c1",
        json!({"cmd": "ls", "shell": "/bin/sh", "login": false}),
    ));
    mock.push(exec_call(
        "c2",
        json!({"cmd": "touch made", "shell": "/bin/sh", "login": false}),
    ));
    mock.push(text_reply("r3", "m3", &["done"]));
    let (mut server, thread_id, cwd) = thread_on(
        &mock,
        json!({"approvalPolicy": "untrusted", "sandbox": "workspace-write"}),
    );
    start_turn(&mut server, &thread_id, "go");
    let (request, before) = server.read_until("item/commandExecution/requestApproval");
    assert_eq!(request["params"]["itemId"], "c2", "ls ran without asking");
    assert!(
        before
            .iter()
            .any(|m| m["method"] == "item/completed" && m["params"]["item"]["id"] == "c1")
    );
    server.answer(&request["id"], json!({"decision": "accept"}));
    finish_turn(&mut server);
    assert!(cwd.path().join("made").exists());
}

#[test]
fn bad_arguments_and_spawn_failures_are_answered_to_the_model() {
    let mock = MockServer::start();
    mock.push(exec_call("c1", json!({"cmd": ""})));
    mock.push(exec_call("c2", json!({"command": "ls"})));
    mock.push(exec_call(
        "c3",
        json!({"cmd": "echo x", "shell": "/bin/sh", "login": false, "workdir": "/nonexistent/dir"}),
    ));
    mock.push(write_call_raw(
        "c4",
        json!({"session_id": 12345, "chars": ""}),
    ));
    mock.push(text_reply("r5", "m5", &["done"]));
    let (mut server, thread_id, _cwd) = thread_on(&mock, json!({"approvalPolicy": "never"}));
    start_turn(&mut server, &thread_id, "go");
    let messages = finish_turn(&mut server);
    assert_eq!(
        model_output(&mock, "c1"),
        "exec_command failed: cmd must not be empty"
    );
    assert!(model_output(&mock, "c2").starts_with("failed to parse function arguments"));
    let spawn = model_output(&mock, "c3");
    assert!(spawn.starts_with("exec_command failed: "), "{spawn}");
    let item = completed(&messages, "c3");
    assert_eq!(item["status"], "failed");
    assert_eq!(item["exitCode"], -1);
    assert_eq!(
        model_output(&mock, "c4"),
        "write_stdin failed: Unknown process id 12345"
    );
    assert_eq!(
        messages.last().unwrap()["params"]["turn"]["status"],
        "completed"
    );
}

/// One model reply calling `write_stdin` with fixed `args`.
pub fn write_call_raw(call_id: &str, args: Value) -> Reply {
    sse(vec![
        ev_created("r_write"),
        ev_function_call(call_id, "write_stdin", &args),
        ev_completed("r_write"),
    ])
}

#[test]
fn a_session_outlives_its_turn_and_completes_under_it() {
    let mock = MockServer::start();
    mock.push(exec_call(
        "c1",
        json!({"cmd": "sleep 1; echo late", "shell": "/bin/sh", "login": false, "yield_time_ms": 250}),
    ));
    mock.push(text_reply("r2", "m2", &["left running"]));
    mock.push(write_call("c3", "c1", "", 5000));
    mock.push(text_reply("r4", "m4", &["done"]));
    let (mut server, thread_id, _cwd) = thread_on(&mock, json!({"approvalPolicy": "never"}));
    let first_turn = start_turn(&mut server, &thread_id, "start it");
    let messages = finish_turn(&mut server);
    // The process ends between turns (or, on a slow machine, before the turn ends): its item
    // completes under the turn that started it.
    let is_done = |m: &Value| m["method"] == "item/completed" && m["params"]["item"]["id"] == "c1";
    let done = match messages.iter().find(|m| is_done(m)) {
        Some(done) => done.clone(),
        None => server.take_matching("item/completed of c1", is_done),
    };
    assert_eq!(done["params"]["turnId"], first_turn.as_str());
    assert_eq!(done["params"]["item"]["aggregatedOutput"], "late\n");
    start_turn(&mut server, &thread_id, "poll it");
    finish_turn(&mut server);
    // The unread output waited for the model.
    let polled = model_output(&mock, "c3");
    assert!(polled.contains("Process exited with code 0"), "{polled}");
    assert!(polled.ends_with("Output:\nlate\n"), "{polled}");
    // thread/read shows the item in the first turn.
    let read = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    let turns = read["thread"]["turns"].as_array().unwrap();
    assert!(
        turns[0]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == "c1")
    );
}

#[test]
fn under_untrusted_a_sandbox_denial_is_offered_again_outside_the_sandbox() {
    let mock = MockServer::start();
    let outside = TempDir::new_outside_tmp("uexec-retry");
    let target = outside.path().join("x");
    mock.push(exec_call(
        "c1",
        json!({"cmd": format!("touch '{}' && echo wrote", target.display()), "shell": "/bin/sh", "login": false}),
    ));
    mock.push(text_reply("r2", "m2", &["done"]));
    let (mut server, thread_id, _cwd) = thread_on(
        &mock,
        json!({"approvalPolicy": "untrusted", "sandbox": "workspace-write"}),
    );
    start_turn(&mut server, &thread_id, "go");
    // First: may it run at all (not a read-only command)?
    let (first, _) = server.read_until("item/commandExecution/requestApproval");
    assert_eq!(first["params"]["reason"], Value::Null);
    server.answer(&first["id"], json!({"decision": "accept"}));
    // It ran in the sandbox and was denied: may it run outside?
    let (second, _) = server.read_until("item/commandExecution/requestApproval");
    assert_eq!(
        second["params"]["reason"],
        "command failed; retry without sandbox?"
    );
    assert!(!target.exists());
    server.answer(&second["id"], json!({"decision": "accept"}));
    let messages = finish_turn(&mut server);
    assert!(target.exists());
    // One item, completed once, by the rerun.
    let completions: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "item/completed" && m["params"]["item"]["id"] == "c1")
        .collect();
    assert_eq!(completions.len(), 1, "{messages:?}");
    assert_eq!(completions[0]["params"]["item"]["status"], "completed");
    assert!(model_output(&mock, "c1").ends_with("Output:\nwrote\n"));
}
