//! MCP servers (mcp.md) against the official Python SDK's FastMCP (`tests/mcp/fastmcp_server.py`)
//! over stdio and streamable HTTP: tools offered to the model, `mcpToolCall` items, progress,
//! approvals through `mcpServer/elicitation/request`, the server's own elicitations and roots,
//! interrupt, status listing and reload. Faulty servers are `mcp_faults.rs`'s.
//!
//! The SDK comes from `CODEX_LITE_MCP_PYTHON` or a venv the tests build once under
//! `target/mcp-venv` (`support/python.rs`); without either these tests fail, loudly.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::turns::{finish_turn, interrupt_turn, last_turn, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// The Python interpreter that has the `mcp` package.
pub fn python() -> PathBuf {
    crate::support::python::mcp_python()
}

/// A test script under `tests/mcp/`.
pub fn script(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp")
        .join(name)
        .display()
        .to_string()
}

/// A TOML string literal.
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// `-c mcp_servers.<name>={command=…, args=[…], <extra>}` for a stdio server run by our Python.
pub fn stdio_server(name: &str, args: &[&str], extra: &str) -> String {
    let args: Vec<String> = args.iter().map(|a| toml_str(a)).collect();
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(",{extra}")
    };
    format!(
        "mcp_servers.{name}={{command={},args=[{}]{extra}}}",
        toml_str(&python().display().to_string()),
        args.join(",")
    )
}

/// FastMCP over stdio as server `demo`. Importing the SDK takes seconds of CPU, many times
/// that when tests run in parallel on a small machine: the startup timeout is generous.
pub fn fastmcp_stdio(extra: &str) -> String {
    let extra = if extra.contains("startup_timeout") {
        extra.to_string()
    } else if extra.is_empty() {
        "startup_timeout_sec=120".to_string()
    } else {
        format!("startup_timeout_sec=120,{extra}")
    };
    stdio_server("demo", &[&script("fastmcp_server.py")], &extra)
}

/// A server with `mcp_overrides` pointed at `mock`, handshake done.
pub fn server_with(mock: &MockServer, mcp_overrides: &[String]) -> AppServer {
    let mut server = AppServer::builder()
        .configs(mock.provider_overrides())
        .configs(mcp_overrides.iter().cloned())
        .env("MOCK_KEY", "test-key")
        .spawn();
    server.initialize();
    server
}

/// Reads `mcpServer/startupStatus/updated` for `name` until it is no longer `starting`;
/// returns its params.
pub fn wait_startup(server: &mut AppServer, name: &str) -> Value {
    loop {
        // Python servers can take long to import under load (see `fastmcp_stdio`).
        let update = server.take_matching_within(
            &format!("startup status of {name}"),
            Duration::from_secs(150),
            |m| m["method"] == "mcpServer/startupStatus/updated" && m["params"]["name"] == name,
        );
        if update["params"]["status"] != "starting" {
            return update["params"].clone();
        }
    }
}

/// A function call of `name` with `arguments`, as one model reply.
pub fn call_reply(response_id: &str, call_id: &str, name: &str, arguments: Value) -> Reply {
    sse(vec![
        ev_created(response_id),
        ev_function_call(call_id, name, &arguments),
        ev_completed(response_id),
    ])
}

/// The `item/completed` of item `id` among `messages`.
pub fn completed_item(messages: &[Value], id: &str) -> Value {
    messages
        .iter()
        .find(|m| m["method"] == "item/completed" && m["params"]["item"]["id"] == id)
        .unwrap_or_else(|| panic!("no item/completed for {id} in {messages:?}"))["params"]["item"]
        .clone()
}

/// The `function_call_output` for `call_id` in the `n`th model request.
pub fn output_sent(mock: &MockServer, n: usize, call_id: &str) -> Value {
    let requests = mock.requests_to("/v1/responses");
    let input = requests[n].json()["input"].clone();
    input
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call_output" && i["call_id"] == call_id)
        .unwrap_or_else(|| panic!("no output for {call_id} in request {n}"))["output"]
        .clone()
}

/// The tool names of the `n`th model request.
pub fn tool_names(mock: &MockServer, n: usize) -> Vec<String> {
    mock.requests_to("/v1/responses")[n].json()["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect()
}

/// Starts a ready thread (approval `policy`) once server `name` settled; returns its id.
pub fn ready_thread(server: &mut AppServer, name: &str, policy: &str) -> String {
    let thread = start_thread(
        server,
        json!({"approvalPolicy": policy, "sandbox": "read-only"}),
    );
    let status = wait_startup(server, name);
    assert_eq!(status["status"], "ready", "{status}");
    thread
}

#[test]
fn fastmcp_tools_reach_the_model_and_calls_complete_over_stdio() {
    let mock = MockServer::start();
    mock.push(call_reply(
        "r1",
        "c1",
        "mcp__demo__add",
        json!({"a": 2, "b": 3}),
    ));
    mock.push(text_reply("r2", "m1", &["five"]));
    let mut server = server_with(&mock, &[fastmcp_stdio("")]);
    let thread = start_thread(
        &mut server,
        json!({"approvalPolicy": "never", "sandbox": "read-only"}),
    );
    // The turn waits for the server (still starting) before its first request.
    start_turn(&mut server, &thread, "add 2 and 3");
    assert_eq!(wait_startup(&mut server, "demo")["status"], "ready");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let tools = tool_names(&mock, 0);
    for name in ["mcp__demo__add", "mcp__demo__echo", "mcp__demo__slow"] {
        assert!(tools.contains(&name.to_string()), "{name} not in {tools:?}");
    }
    let add = mock.requests_to("/v1/responses")[0].json()["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "mcp__demo__add")
        .unwrap()
        .clone();
    assert_eq!(add["type"], "function");
    assert_eq!(add["description"], "Add two numbers.");
    assert_eq!(add["parameters"]["required"], json!(["a", "b"]));

    let started = messages
        .iter()
        .find(|m| m["method"] == "item/started" && m["params"]["item"]["type"] == "mcpToolCall")
        .unwrap();
    assert_eq!(
        started["params"]["item"],
        json!({"type": "mcpToolCall", "id": "c1", "server": "demo", "tool": "add",
               "status": "inProgress", "arguments": {"a": 2, "b": 3}, "result": null,
               "error": null, "durationMs": null, "readOnlyHint": null})
    );
    let done = completed_item(&messages, "c1");
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["result"]["content"],
        json!([{"type": "text", "text": "5"}])
    );
    assert_eq!(done["result"]["structuredContent"], json!({"result": 5}));
    assert!(done["durationMs"].as_i64().is_some());
    assert_eq!(output_sent(&mock, 1, "c1"), json!("5"));
}

#[test]
fn progress_errors_and_images_over_stdio() {
    let mock = MockServer::start();
    mock.push(call_reply(
        "r1",
        "c1",
        "mcp__demo__slow",
        json!({"steps": 3}),
    ));
    mock.push(call_reply("r2", "c2", "mcp__demo__fail", json!({})));
    mock.push(call_reply("r3", "c3", "mcp__demo__picture", json!({})));
    mock.push(call_reply("r4", "c4", "mcp__demo__nope", json!({})));
    mock.push(text_reply("r5", "m1", &["ok"]));
    let mut server = server_with(&mock, &[fastmcp_stdio("")]);
    let thread = ready_thread(&mut server, "demo", "never");
    start_turn(&mut server, &thread, "go");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "item/mcpToolCall/progress")
        .map(|m| &m["params"]["message"])
        .collect();
    assert_eq!(
        progress,
        [&json!("step 1"), &json!("step 2"), &json!("step 3")]
    );
    assert_eq!(
        messages
            .iter()
            .find(|m| m["method"] == "item/mcpToolCall/progress")
            .unwrap()["params"]["itemId"],
        "c1"
    );
    assert_eq!(completed_item(&messages, "c1")["status"], "completed");

    let failed = completed_item(&messages, "c2");
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this tool always fails"),
        "{failed}"
    );
    let sent = output_sent(&mock, 2, "c2");
    assert!(sent.as_str().unwrap().starts_with("error: "), "{sent}");

    let picture = output_sent(&mock, 3, "c3");
    assert_eq!(
        picture[0],
        json!({"type": "input_text", "text": "a red dot"})
    );
    assert_eq!(picture[1]["type"], "input_image");
    assert!(
        picture[1]["image_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(
        output_sent(&mock, 4, "c4"),
        json!("unsupported call: mcp__demo__nope")
    );
}

#[test]
fn approvals_ask_for_tools_that_are_not_read_only() {
    let mock = MockServer::start();
    // Turn 1: declined, then accepted for the session; turn 2: not asked again.
    mock.push(call_reply(
        "r1",
        "c1",
        "mcp__demo__add",
        json!({"a": 1, "b": 2}),
    ));
    mock.push(call_reply(
        "r2",
        "c2",
        "mcp__demo__add",
        json!({"a": 3, "b": 4}),
    ));
    mock.push(call_reply(
        "r3",
        "c3",
        "mcp__demo__echo",
        json!({"text": "hi"}),
    ));
    mock.push(text_reply("r4", "m1", &["done"]));
    mock.push(call_reply(
        "r5",
        "c4",
        "mcp__demo__add",
        json!({"a": 5, "b": 6}),
    ));
    mock.push(text_reply("r6", "m2", &["done"]));
    let mut server = server_with(&mock, &[fastmcp_stdio("")]);
    let thread = ready_thread(&mut server, "demo", "on-request");
    let turn = start_turn(&mut server, &thread, "go");

    let (request, before) = server.read_until("mcpServer/elicitation/request");
    assert!(
        before
            .iter()
            .any(|m| m["method"] == "item/started" && m["params"]["item"]["id"] == "c1"),
        "the item starts before the approval request"
    );
    assert_eq!(
        request["params"],
        json!({"threadId": thread, "turnId": turn, "serverName": "demo", "mode": "form",
               "_meta": {"codex_approval_kind": "mcp_tool_call", "persist": ["session", "always"],
                         "tool_name": "add", "tool_description": "Add two numbers.",
                         "tool_params": {"a": 1, "b": 2},
                         "tool_params_display": [{"name": "a", "value": 1, "display_name": "a"},
                                                 {"name": "b", "value": 2, "display_name": "b"}]},
               "message": "Allow the demo MCP server to run tool \"add\"?",
               "requestedSchema": {"type": "object", "properties": {}}})
    );
    server.answer(&request["id"], json!({"action": "decline"}));
    let (second, before) = server.read_until("mcpServer/elicitation/request");
    let declined = completed_item(&before, "c1");
    assert_eq!(declined["status"], "failed");
    assert_eq!(declined["error"], json!({"message": "user declined"}));
    server.answer(
        &second["id"],
        json!({"action": "accept", "content": null, "_meta": {"persist": "session"}}),
    );
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    assert_eq!(completed_item(&messages, "c2")["status"], "completed");
    let echo = completed_item(&messages, "c3");
    assert_eq!(
        echo["status"], "completed",
        "read-only tools are not asked about"
    );
    assert_eq!(echo["readOnlyHint"], true);
    assert_eq!(output_sent(&mock, 1, "c1"), json!("user declined"));

    start_turn(&mut server, &thread, "again");
    let messages = finish_turn(&mut server);
    assert!(
        !messages
            .iter()
            .any(|m| m["method"] == "mcpServer/elicitation/request"),
        "acceptForSession is remembered for the thread"
    );
    assert_eq!(completed_item(&messages, "c4")["status"], "completed");
}

#[test]
fn server_elicitations_are_relayed_and_roots_are_the_thread_cwd() {
    let mock = MockServer::start();
    mock.push(call_reply("r1", "c1", "mcp__demo__ask", json!({})));
    mock.push(call_reply("r2", "c2", "mcp__demo__roots", json!({})));
    mock.push(text_reply("r3", "m1", &["ok"]));
    let cwd = TempDir::new("mcp-roots");
    let mut server = server_with(&mock, &[fastmcp_stdio("")]);
    let thread = start_thread(
        &mut server,
        json!({"approvalPolicy": "untrusted", "sandbox": "read-only",
               "cwd": cwd.path().display().to_string()}),
    );
    assert_eq!(wait_startup(&mut server, "demo")["status"], "ready");
    let turn = start_turn(&mut server, &thread, "go");
    let (approval, _) = server.read_until("mcpServer/elicitation/request");
    assert_eq!(
        approval["params"]["_meta"]["codex_approval_kind"],
        "mcp_tool_call"
    );
    server.answer(
        &approval["id"],
        json!({"action": "accept", "_meta": {"persist": "session"}}),
    );
    let (relayed, _) = server.read_until("mcpServer/elicitation/request");
    assert_eq!(
        relayed["params"],
        json!({"threadId": thread, "turnId": turn, "serverName": "demo", "mode": "form",
               "message": "Which color?",
               "requestedSchema": {"type": "object", "required": ["color"],
                                   "properties": {"color": {"title": "Color", "type": "string"}}}})
    );
    server.answer(
        &relayed["id"],
        json!({"action": "accept", "content": {"color": "red"}}),
    );
    let (approval, _) = server.read_until("mcpServer/elicitation/request");
    server.answer(&approval["id"], json!({"action": "accept"}));
    let messages = finish_turn(&mut server);
    assert_eq!(output_sent(&mock, 1, "c1"), json!("accept:red"));
    let canonical = cwd.path().canonicalize().unwrap();
    assert_eq!(
        output_sent(&mock, 2, "c2"),
        json!(format!("file://{}", canonical.display()))
    );
    assert!(
        messages
            .iter()
            .any(|m| m["method"] == "serverRequest/resolved"),
        "{messages:?}"
    );
}

#[test]
fn interrupt_cancels_a_running_call() {
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
        json!({"a": 1, "b": 1}),
    ));
    mock.push(text_reply("r3", "m1", &["ok"]));
    let mut server = server_with(&mock, &[fastmcp_stdio("")]);
    let thread = ready_thread(&mut server, "demo", "never");
    let turn = start_turn(&mut server, &thread, "sleep");
    server.take_matching("the call starts", |m| {
        m["method"] == "item/started" && m["params"]["item"]["id"] == "c1"
    });
    let messages = interrupt_turn(&mut server, &thread, &turn);
    let item = completed_item(&messages, "c1");
    assert_eq!(item["status"], "failed");
    assert_eq!(item["error"]["message"], "interrupted");
    // The server is still usable.
    start_turn(&mut server, &thread, "add");
    let messages = finish_turn(&mut server);
    assert_eq!(completed_item(&messages, "c2")["status"], "completed");
}

/// FastMCP over streamable HTTP on a free port; killed on drop.
pub struct HttpServer {
    child: Child,
    /// The MCP endpoint.
    pub url: String,
}

impl HttpServer {
    /// Starts the server and waits until it listens.
    pub fn start() -> Self {
        let mut child = Command::new(python())
            .args([script("fastmcp_server.py").as_str(), "http"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        // uvicorn accepts once its loop runs; wait for the port to take connections.
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .to_string();
        for _ in 0..200 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Self { child, url }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn fastmcp_over_streamable_http() {
    let http = HttpServer::start();
    let mock = MockServer::start();
    mock.push(call_reply(
        "r1",
        "c1",
        "mcp__web__add",
        json!({"a": 20, "b": 22}),
    ));
    mock.push(call_reply(
        "r2",
        "c2",
        "mcp__web__slow",
        json!({"steps": 2}),
    ));
    mock.push(text_reply("r3", "m1", &["ok"]));
    let overrides = [format!(
        "mcp_servers.web={{url={},http_headers={{\"X-Test\"=\"1\"}}}}",
        toml_str(&http.url)
    )];
    let mut server = server_with(&mock, &overrides);
    let thread = ready_thread(&mut server, "web", "never");
    start_turn(&mut server, &thread, "go");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    assert_eq!(
        completed_item(&messages, "c1")["result"]["content"][0]["text"],
        "42"
    );
    assert_eq!(output_sent(&mock, 1, "c1"), json!("42"));
    let progress = messages
        .iter()
        .filter(|m| m["method"] == "item/mcpToolCall/progress")
        .count();
    assert_eq!(progress, 2, "progress arrives over the SSE answer");

    let list = server.call("mcpServerStatus/list", json!({})).unwrap();
    let web = &list["data"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["runtimeStatus"], "connected");
    assert_eq!(web["authStatus"], "unsupported");
    assert_eq!(web["httpOrigin"], http.url.trim_end_matches("/mcp"));
    assert_eq!(web["serverInfo"]["name"], "demo");
    assert!(web["tools"]["add"]["inputSchema"].is_object());
}

#[test]
fn status_list_and_reload() {
    let home = TempDir::new("mcp-reload");
    let demo = fastmcp_stdio("").replacen("mcp_servers.demo=", "", 1);
    let slow_start = "startup_timeout_sec=120";
    std::fs::write(
        home.path().join("config.toml"),
        format!("[mcp_servers]\ndemo = {demo}\noff = {{ command = \"x\", enabled = false }}\n"),
    )
    .unwrap();
    let mut server = AppServer::builder().codex_home(home.path()).spawn();
    server.initialize();
    // Listing starts the servers when no thread did.
    let list = server.call("mcpServerStatus/list", json!({})).unwrap();
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo", "off"]);
    assert_eq!(list["data"][1]["runtimeStatus"], "disabled");
    assert_eq!(wait_startup(&mut server, "demo")["status"], "ready");
    let list = server
        .call("mcpServerStatus/list", json!({"limit": 1}))
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["nextCursor"], "1");
    let demo_status = &list["data"][0];
    assert_eq!(demo_status["runtimeStatus"], "connected");
    assert_eq!(demo_status["authStatus"], "unsupported");
    assert_eq!(
        demo_status["tools"]["echo"]["annotations"]["readOnlyHint"],
        true
    );
    assert_eq!(demo_status["serverInfo"]["name"], "demo");

    // Reload: `demo` is gone, `echoonly` appears with a tool allow-list.
    let echo_only = stdio_server(
        "x",
        &[&script("fastmcp_server.py")],
        &format!("enabled_tools=[\"echo\"],{slow_start}"),
    )
    .replacen("mcp_servers.x=", "", 1);
    std::fs::write(
        home.path().join("config.toml"),
        format!("[mcp_servers]\nechoonly = {echo_only}\n"),
    )
    .unwrap();
    assert_eq!(
        server.call("config/mcpServer/reload", Value::Null).unwrap(),
        json!({})
    );
    assert_eq!(wait_startup(&mut server, "echoonly")["status"], "ready");
    let list = server.call("mcpServerStatus/list", json!({})).unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let tools: Vec<&String> = list["data"][0]["tools"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(tools, ["echo"]);

    // A broken file is an error naming the server; the running servers stay.
    std::fs::write(
        home.path().join("config.toml"),
        "[mcp_servers.bad]\nargs = []\n",
    )
    .unwrap();
    let error = server
        .call("config/mcpServer/reload", Value::Null)
        .unwrap_err();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("mcp_servers.bad"),
        "{error}"
    );
}
