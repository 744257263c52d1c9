//! MCP servers that misbehave (`tests/mcp/misbehaving.py`, and FastMCP with a short
//! `tool_timeout_sec`): one that never answers, one that crashes mid-call, one that prints
//! garbage, one with 500 tools, a tool that outlives its timeout, a missing command, a
//! `required` one that fails. In every case the thread keeps working and the client sees a
//! clear status or error. Also: the stdio environment, config errors, and no orphans.

use std::time::Duration;

use serde_json::{Value, json};

use super::mcp::{
    call_reply, completed_item, fastmcp_stdio, output_sent, ready_thread, script, server_with,
    stdio_server, tool_names, wait_startup,
};
use super::turns::{finish_turn, last_turn, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// `misbehaving.py MODE [LOG]` as server `name`.
fn misbehaving(name: &str, mode: &str, log: Option<&str>, extra: &str) -> String {
    let script = script("misbehaving.py");
    let mut args = vec![script.as_str(), mode];
    if let Some(log) = log {
        args.push(log);
    }
    stdio_server(name, &args, extra)
}

/// Checks that a plain turn still completes (the thread keeps working).
fn plain_turn_works(server: &mut AppServer, mock: &MockServer, thread: &str, id: &str) {
    mock.push(text_reply(&format!("r-{id}"), id, &["still here"]));
    start_turn(server, thread, "still there?");
    let messages = finish_turn(server);
    assert_eq!(last_turn(&messages)["status"], "completed", "{messages:?}");
}

fn status_of(server: &mut AppServer, name: &str) -> Value {
    let list = server
        .call("mcpServerStatus/list", json!({"serverName": name}))
        .unwrap();
    list["data"][0].clone()
}

#[test]
fn a_server_that_never_answers_fails_its_startup_without_holding_anything_up() {
    let mock = MockServer::start();
    let mut server = server_with(
        &mock,
        &[misbehaving("mute", "never", None, "startup_timeout_sec=1")],
    );
    // thread/start is answered while the server is still starting.
    let thread = start_thread(&mut server, json!({"approvalPolicy": "never"}));
    let status = wait_startup(&mut server, "mute");
    assert_eq!(status["status"], "failed");
    assert_eq!(status["threadId"], thread.as_str());
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("`mute`") && error.contains("startup timeout (1s)"),
        "{error}"
    );
    let warning = server.take_matching("warning", |m| m["method"] == "warning");
    assert!(
        warning["params"]["message"]
            .as_str()
            .unwrap()
            .contains("mute")
    );
    let listed = status_of(&mut server, "mute");
    assert_eq!(listed["runtimeStatus"], "failed");
    assert_eq!(listed["toolsError"], error);
    plain_turn_works(&mut server, &mock, &thread, "m1");
    assert!(tool_names(&mock, 0).iter().all(|n| !n.starts_with("mcp__")));
}

#[test]
fn a_server_that_prints_garbage_is_named_in_its_failure_and_noise_is_tolerated() {
    let mock = MockServer::start();
    mock.push(call_reply("r1", "c1", "mcp__noisy__work", json!({})));
    mock.push(text_reply("r2", "m1", &["ok"]));
    let mut server = server_with(
        &mock,
        &[
            misbehaving("junk", "garbage", None, "startup_timeout_sec=1"),
            misbehaving("noisy", "noisy", None, ""),
        ],
    );
    let thread = start_thread(&mut server, json!({"approvalPolicy": "never"}));
    let junk = wait_startup(&mut server, "junk");
    assert_eq!(junk["status"], "failed");
    let error = junk["error"].as_str().unwrap();
    assert!(error.contains("not JSON-RPC"), "{error}");
    assert!(error.contains("Starting server"), "{error}");
    assert_eq!(wait_startup(&mut server, "noisy")["status"], "ready");
    start_turn(&mut server, &thread, "go");
    let messages = finish_turn(&mut server);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
    assert_eq!(output_sent(&mock, 1, "c1"), json!("ran work"));
}

#[test]
fn a_server_that_crashes_mid_call_is_restarted_once_then_failed() {
    let mock = MockServer::start();
    let log = TempDir::new("mcp-crash");
    let log_file = log.path().join("lines").display().to_string();
    for (i, call) in ["c1", "c2", "c3"].iter().enumerate() {
        mock.push(call_reply(
            &format!("r{i}"),
            call,
            "mcp__boom__work",
            json!({}),
        ));
    }
    mock.push(text_reply("r9", "m1", &["ok"]));
    let mut server = server_with(&mock, &[misbehaving("boom", "crash", Some(&log_file), "")]);
    let thread = ready_thread(&mut server, "boom", "never");
    start_turn(&mut server, &thread, "go");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let first = completed_item(&messages, "c1");
    assert_eq!(first["status"], "failed");
    let error = first["error"]["message"].as_str().unwrap();
    assert!(
        error.contains("stopped during the call")
            && error.contains("exited with status 3")
            && error.contains("boom: the server crashed"),
        "{error}"
    );
    // The second call restarted it (a second initialize), and it crashed again.
    let second = completed_item(&messages, "c2");
    assert_eq!(second["status"], "failed");
    let initializes = std::fs::read_to_string(&log_file)
        .unwrap()
        .matches("\"initialize\"")
        .count();
    assert_eq!(initializes, 2, "restarted exactly once");
    let mut restart_status: Vec<Value> = messages
        .iter()
        .filter(|m| m["method"] == "mcpServer/startupStatus/updated")
        .map(|m| m["params"].clone())
        .collect();
    // The server's reader reports the second crash on its own thread: that status may come
    // after the turn's completion.
    if restart_status.len() == 2 {
        let update =
            server.take_matching_within("the failed status", Duration::from_secs(30), |m| {
                m["method"] == "mcpServer/startupStatus/updated"
            });
        restart_status.push(update["params"].clone());
    }
    assert_eq!(restart_status.len(), 3, "{restart_status:?}");
    assert_eq!(restart_status[0]["status"], "starting");
    assert_eq!(restart_status[1]["status"], "ready");
    assert_eq!(restart_status[2]["status"], "failed");
    assert!(
        restart_status[2]["error"]
            .as_str()
            .unwrap()
            .contains("stopped again after its restart"),
        "{restart_status:?}"
    );
    // Its tools are gone: a third call is not an MCP call any more.
    assert!(
        !messages
            .iter()
            .any(|m| m["method"] == "item/started" && m["params"]["item"]["id"] == "c3")
    );
    assert_eq!(
        output_sent(&mock, 3, "c3"),
        json!("unsupported call: mcp__boom__work")
    );
    assert_eq!(status_of(&mut server, "boom")["runtimeStatus"], "failed");
    plain_turn_works(&mut server, &mock, &thread, "m2");
    assert!(
        tool_names(&mock, 4)
            .iter()
            .all(|n| !n.starts_with("mcp__boom")),
        "a failed server's tools are gone"
    );
}

#[test]
fn five_hundred_tools_are_listed_across_pages_and_offered() {
    let mock = MockServer::start();
    mock.push(call_reply("r1", "c1", "mcp__many__tool_499", json!({})));
    mock.push(text_reply("r2", "m1", &["ok"]));
    let mut server = server_with(&mock, &[misbehaving("many", "many", None, "")]);
    let thread = ready_thread(&mut server, "many", "never");
    let listed = status_of(&mut server, "many");
    assert_eq!(listed["tools"].as_object().unwrap().len(), 500);
    start_turn(&mut server, &thread, "go");
    let messages = finish_turn(&mut server);
    let offered = tool_names(&mock, 0);
    assert_eq!(
        offered
            .iter()
            .filter(|n| n.starts_with("mcp__many__"))
            .count(),
        500
    );
    assert_eq!(output_sent(&mock, 1, "c1"), json!("ran tool_499"));
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
}

#[test]
fn a_tool_that_outlives_its_timeout_fails_and_is_cancelled() {
    let mock = MockServer::start();
    mock.push(call_reply(
        "r1",
        "c1",
        "mcp__demo__sleep",
        json!({"seconds": 30}),
    ));
    mock.push(call_reply(
        "r2",
        "c2",
        "mcp__demo__add",
        json!({"a": 1, "b": 2}),
    ));
    mock.push(text_reply("r3", "m1", &["ok"]));
    let mut server = server_with(&mock, &[fastmcp_stdio("tool_timeout_sec=1")]);
    let thread = ready_thread(&mut server, "demo", "never");
    start_turn(&mut server, &thread, "go");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let item = completed_item(&messages, "c1");
    assert_eq!(item["status"], "failed");
    assert_eq!(
        item["error"]["message"],
        "tool call timed out after 1s (tool_timeout_sec of MCP server `demo`)"
    );
    assert_eq!(completed_item(&messages, "c2")["status"], "completed");
}

#[test]
fn a_hung_call_is_cancelled_on_the_wire() {
    let mock = MockServer::start();
    let log = TempDir::new("mcp-hang");
    let log_file = log.path().join("lines").display().to_string();
    mock.push(call_reply("r1", "c1", "mcp__hang__work", json!({})));
    mock.push(text_reply("r2", "m1", &["ok"]));
    let mut server = server_with(
        &mock,
        &[misbehaving(
            "hang",
            "hang",
            Some(&log_file),
            "tool_timeout_sec=0.5",
        )],
    );
    let thread = ready_thread(&mut server, "hang", "never");
    start_turn(&mut server, &thread, "go");
    let messages = finish_turn(&mut server);
    assert_eq!(completed_item(&messages, "c1")["status"], "failed");
    let mut lines = String::new();
    for _ in 0..100 {
        lines = std::fs::read_to_string(&log_file).unwrap();
        if lines.contains("notifications/cancelled") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cancelled: Value = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|m| m["method"] == "notifications/cancelled")
        .expect("notifications/cancelled sent");
    let call: Value = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|m| m["method"] == "tools/call")
        .unwrap();
    assert_eq!(cancelled["params"]["requestId"], call["id"]);
    assert!(call["params"]["_meta"]["progressToken"].is_number());
}

#[test]
fn a_missing_command_fails_with_its_name_and_required_servers_fail_thread_start() {
    let mock = MockServer::start();
    let mut server = server_with(
        &mock,
        &["mcp_servers.gone={command=\"/nonexistent/mcp-server\"}".to_string()],
    );
    let thread = start_thread(&mut server, json!({"approvalPolicy": "never"}));
    let status = wait_startup(&mut server, "gone");
    assert_eq!(status["status"], "failed");
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("cannot run `/nonexistent/mcp-server`") && error.contains("No such file"),
        "{error}"
    );
    plain_turn_works(&mut server, &mock, &thread, "m1");
    drop(server);

    let mut server = server_with(
        &mock,
        &["mcp_servers.gone={command=\"/nonexistent/mcp-server\",required=true}".to_string()],
    );
    let error = server
        .call("thread/start", json!({"approvalPolicy": "never"}))
        .unwrap_err();
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("required MCP server failed") && message.contains("`gone`"),
        "{message}"
    );
    // Other requests are answered meanwhile and after.
    assert!(server.call("model/list", json!({})).is_ok());
}

#[test]
fn a_required_server_that_starts_lets_thread_start_through() {
    let mock = MockServer::start();
    let mut server = server_with(&mock, &[fastmcp_stdio("required=true")]);
    let id = server.request("thread/start", json!({"approvalPolicy": "never"}));
    // The main loop keeps answering while thread/start waits for the server.
    assert!(server.call("model/list", json!({})).is_ok());
    let answer = server.take_matching_within("thread/start", Duration::from_secs(150), |m| {
        m["id"] == json!(id) && m.get("method").is_none()
    });
    assert!(answer["result"]["thread"]["id"].is_string(), "{answer}");
    let status = wait_startup(&mut server, "demo");
    assert_eq!(status["status"], "ready");
}

#[test]
fn stdio_servers_get_only_their_configured_environment() {
    let mock = MockServer::start();
    mock.push(call_reply("r1", "c1", "mcp__envy__env", json!({})));
    mock.push(text_reply("r2", "m1", &["ok"]));
    let overrides = [misbehaving(
        "envy",
        "env",
        None,
        "env={FROM_TABLE=\"1\"},env_vars=[\"PASSED_THROUGH\"]",
    )];
    let mut server = AppServer::builder()
        .configs(mock.provider_overrides())
        .configs(overrides.iter().cloned())
        .env("MOCK_KEY", "test-key")
        .env("PASSED_THROUGH", "yes")
        .env("NOT_PASSED", "secret")
        .spawn();
    server.initialize();
    let thread = ready_thread(&mut server, "envy", "never");
    start_turn(&mut server, &thread, "go");
    finish_turn(&mut server);
    let names = output_sent(&mock, 1, "c1");
    let names: Vec<&str> = names.as_str().unwrap().split(' ').collect();
    assert!(names.contains(&"FROM_TABLE"), "{names:?}");
    assert!(names.contains(&"PASSED_THROUGH"), "{names:?}");
    assert!(names.contains(&"PATH"), "{names:?}");
    for hidden in ["NOT_PASSED", "MOCK_KEY", "CODEX_HOME"] {
        assert!(!names.contains(&hidden), "{hidden} leaked: {names:?}");
    }
}

#[test]
fn server_requests_other_than_elicitation_and_roots_are_answered() {
    let mock = MockServer::start();
    mock.push(call_reply("r1", "c1", "mcp__asker__work", json!({})));
    mock.push(text_reply("r2", "m1", &["ok"]));
    let mut server = server_with(&mock, &[misbehaving("asker", "asks", None, "")]);
    let thread = ready_thread(&mut server, "asker", "never");
    start_turn(&mut server, &thread, "go");
    let messages = finish_turn(&mut server);
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");
    // ping gets {}, sampling gets "method not found".
    assert_eq!(
        output_sent(&mock, 1, "c1"),
        json!("ping={} sampling=-32601")
    );
}

#[test]
fn config_errors_name_the_server() {
    let mut server = AppServer::builder()
        .config("mcp_servers.broken={args=[\"x\"]}")
        .spawn();
    let status = server.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(1));
    let stderr = server.stderr_within("missing", Duration::from_secs(10));
    assert!(stderr.contains("mcp_servers.broken"), "{stderr}");
    assert!(stderr.contains("missing `command`"), "{stderr}");
}

#[test]
fn no_server_process_outlives_the_app_server() {
    let mock = MockServer::start();
    let pids = TempDir::new("mcp-pids");
    let stdio_pid = pids.path().join("stdio");
    // The pid file's name reaches the server only because env_vars passes it through.
    let mut server = AppServer::builder()
        .configs(mock.provider_overrides())
        .config(fastmcp_stdio("env_vars=[\"MCP_TEST_PIDFILE\"]"))
        .env("MOCK_KEY", "test-key")
        .env("MCP_TEST_PIDFILE", stdio_pid.display().to_string())
        .spawn();
    server.initialize();
    ready_thread(&mut server, "demo", "never");
    let pid: i32 = std::fs::read_to_string(&stdio_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(is_alive(pid), "the server runs");
    server.close_stdin();
    let status = server.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success());
    for _ in 0..100 {
        if !is_alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("MCP server {pid} outlived the app-server");
}

fn is_alive(pid: i32) -> bool {
    // A zombie still answers kill(0); look at its state instead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}
