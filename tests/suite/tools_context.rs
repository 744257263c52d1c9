//! The tools beyond shell and apply_patch (context.md §3): which are offered and when,
//! `web_search` items and replay, `update_plan` → `turn/plan/updated`, `view_image` → an image
//! in the next request, and client (dynamic) tools through `item/tool/call`, including clients
//! that fail or never answer, and resume.

use std::time::Duration;

use serde_json::{Value, json};

use super::turns::{finish_turn, interrupt_turn, last_turn, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

fn spawn(mock: &MockServer, configs: &[&str]) -> AppServer {
    let mut server = AppServer::builder()
        .configs(mock.provider_overrides())
        .configs(configs.iter().map(|c| c.to_string()))
        .env("MOCK_KEY", "test-key")
        .spawn();
    server.initialize();
    server
}

/// One SSE reply carrying these finished output items.
fn reply_with(items: &[Value]) -> Reply {
    let mut events = vec![ev_created("r")];
    for item in items {
        events.push(ev(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        ));
        events.push(ev(
            "response.output_item.done",
            json!({"output_index": 0, "item": item}),
        ));
    }
    events.push(ev_completed("r"));
    sse(events)
}

fn call(call_id: &str, name: &str, arguments: Value) -> Value {
    json!({"type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id,
           "name": name, "arguments": arguments.to_string(), "status": "completed"})
}

fn message(text: &str) -> Value {
    json!({"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn requests(mock: &MockServer) -> Vec<Value> {
    mock.requests_to("/v1/responses")
        .iter()
        .map(|r| r.json())
        .collect()
}

fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["name"]
                .as_str()
                .or(t["type"].as_str())
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The input item of `kind` for `call_id` in a request body.
fn input_item(body: &Value, kind: &str, call_id: &str) -> Value {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == kind && i["call_id"] == call_id)
        .unwrap_or_else(|| panic!("no {kind} for {call_id} in {body}"))
        .clone()
}

/// The completed items of one kind among `messages`.
fn completed(messages: &[Value], kind: &str) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m["method"] == "item/completed" && m["params"]["item"]["type"] == kind)
        .map(|m| m["params"]["item"].clone())
        .collect()
}

/// The items of one kind in the turn that `turn/completed` (the last message) reports.
fn turn_items(messages: &[Value], kind: &str) -> Vec<Value> {
    last_turn(messages)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == kind)
        .cloned()
        .collect()
}

#[test]
fn the_tools_offered_follow_the_configuration() {
    /// Config overrides, tools offered, tools not offered, whether web search is live.
    type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], Option<bool>);
    let cases: &[Case] = &[
        // (config, offered, not offered, web search live?)
        (
            &[],
            &["view_image", "web_search"],
            &["update_plan"],
            Some(false),
        ),
        (
            &["tools.update_plan={enabled=true}", "web_search=\"live\""],
            &["update_plan", "view_image", "web_search"],
            &[],
            Some(true),
        ),
        (
            &["tools.update_plan=true", "web_search=\"disabled\""],
            &["update_plan"],
            &["web_search"],
            None,
        ),
    ];
    for (configs, offered, absent, live) in cases {
        let mock = MockServer::start();
        let mut server = spawn(&mock, configs);
        let thread_id = start_thread(&mut server, json!({}));
        mock.push(text_reply("r", "m", &["ok"]));
        start_turn(&mut server, &thread_id, "hi");
        finish_turn(&mut server);
        let body = &requests(&mock)[0];
        let names = tool_names(body);
        for name in *offered {
            assert!(
                names.iter().any(|n| n == name),
                "{configs:?}: {name} not in {names:?}"
            );
        }
        for name in *absent {
            assert!(
                !names.iter().any(|n| n == name),
                "{configs:?}: {name} in {names:?}"
            );
        }
        let search = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "web_search");
        assert_eq!(
            search.map(|s| s["external_web_access"] == true),
            *live,
            "{configs:?}"
        );
        assert_eq!(
            names.last().map(String::as_str) == Some("web_search"),
            live.is_some()
        );
    }
}

#[test]
fn web_search_calls_become_items_and_are_replayed() {
    let mock = MockServer::start();
    let mut server = spawn(&mock, &[]);
    let thread_id = start_thread(&mut server, json!({}));
    let search = json!({"type": "web_search_call", "id": "ws_1", "status": "completed",
        "action": {"type": "search", "query": "rust lang", "sources": [{"type": "url", "url": "https://rust-lang.org"}]}});
    let open = json!({"type": "web_search_call", "id": "ws_2", "status": "completed",
        "action": {"type": "open_page", "url": "https://example.com"}});
    mock.push(reply_with(&[
        search.clone(),
        open.clone(),
        message("found it"),
    ]));
    start_turn(&mut server, &thread_id, "search");
    let messages = finish_turn(&mut server);
    let items = completed(&messages, "webSearch");
    assert_eq!(
        items,
        [
            json!({"type": "webSearch", "id": "ws_1", "query": "rust lang",
                   "action": {"type": "search", "query": "rust lang", "queries": null}}),
            json!({"type": "webSearch", "id": "ws_2", "query": "https://example.com",
                   "action": {"type": "openPage", "url": "https://example.com"}}),
        ]
    );
    let started = messages
        .iter()
        .filter(|m| m["method"] == "item/started" && m["params"]["item"]["type"] == "webSearch")
        .count();
    assert_eq!(started, 2, "each search is started and completed");
    assert_eq!(last_turn(&messages)["status"], "completed");

    mock.push(text_reply("r2", "m2", &["again"]));
    start_turn(&mut server, &thread_id, "more");
    finish_turn(&mut server);
    let input = requests(&mock)[1]["input"].clone();
    let replayed: Vec<&Value> = input
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "web_search_call")
        .collect();
    assert_eq!(
        replayed,
        [
            &json!({"type": "web_search_call", "id": "ws_1", "status": "completed",
                    "action": {"type": "search", "query": "rust lang"}}),
            &open
        ]
    );
    let read = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    let kinds: Vec<&str> = read["thread"]["turns"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["userMessage", "webSearch", "webSearch", "agentMessage"]
    );
}

#[test]
fn output_items_of_other_kinds_go_back_only_with_an_id() {
    let mock = MockServer::start();
    let mut server = spawn(&mock, &[]);
    let thread_id = start_thread(&mut server, json!({}));
    let with_id = json!({"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "AAAA"});
    let without_id = json!({"type": "mystery_call", "payload": 1});
    mock.push(reply_with(&[with_id.clone(), without_id, message("made")]));
    start_turn(&mut server, &thread_id, "draw");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    mock.push(text_reply("r2", "m2", &["again"]));
    start_turn(&mut server, &thread_id, "more");
    finish_turn(&mut server);
    let input = requests(&mock)[1]["input"].clone();
    let kinds: Vec<&str> = input
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert!(
        input.as_array().unwrap().contains(&with_id),
        "sent back whole: {input}"
    );
    assert!(!kinds.contains(&"mystery_call"), "{kinds:?}");
}

#[test]
fn update_plan_emits_turn_plan_updated() {
    let mock = MockServer::start();
    let mut server = spawn(&mock, &["tools.update_plan={enabled=true}"]);
    let thread_id = start_thread(&mut server, json!({}));
    let plan = json!({"explanation": "why", "plan": [
        {"step": "a", "status": "completed"}, {"step": "b", "status": "in_progress"},
        {"step": "c", "status": "pending"}]});
    mock.push(reply_with(&[call("call_plan", "update_plan", plan)]));
    mock.push(reply_with(&[call(
        "call_bad",
        "update_plan",
        json!({"plan": "a, b"}),
    )]));
    mock.push(text_reply("r3", "m3", &["planned"]));
    let turn_id = start_turn(&mut server, &thread_id, "plan it");
    let messages = finish_turn(&mut server);
    let updates: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "turn/plan/updated")
        .collect();
    assert_eq!(updates.len(), 1, "the malformed call updates nothing");
    assert_eq!(
        updates[0]["params"],
        json!({"threadId": thread_id, "turnId": turn_id, "explanation": "why", "plan": [
            {"step": "a", "status": "completed"}, {"step": "b", "status": "inProgress"},
            {"step": "c", "status": "pending"}]})
    );
    let bodies = requests(&mock);
    assert_eq!(
        input_item(&bodies[1], "function_call_output", "call_plan")["output"],
        "Plan updated"
    );
    let bad = input_item(&bodies[2], "function_call_output", "call_bad");
    assert!(
        bad["output"].as_str().unwrap().contains("failed to parse"),
        "{bad}"
    );
}

#[test]
fn update_plan_is_off_by_default() {
    let mock = MockServer::start();
    let mut server = spawn(&mock, &[]);
    let thread_id = start_thread(&mut server, json!({}));
    mock.push(reply_with(&[call(
        "c1",
        "update_plan",
        json!({"plan": []}),
    )]));
    mock.push(text_reply("r2", "m2", &["ok"]));
    start_turn(&mut server, &thread_id, "plan");
    let messages = finish_turn(&mut server);
    assert!(!messages.iter().any(|m| m["method"] == "turn/plan/updated"));
    let output = input_item(&requests(&mock)[1], "function_call_output", "c1");
    assert_eq!(output["output"], "unsupported call: update_plan");
}

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0xf8, 0xcf, 0x50,
    0x0f, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5a, 0x34, 0x7d, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

#[test]
fn view_image_puts_the_image_in_the_next_request() {
    let mock = MockServer::start();
    let mut server = spawn(&mock, &[]);
    let dir = TempDir::new("view-image");
    std::fs::write(dir.path().join("a.png"), PNG).unwrap();
    std::fs::write(dir.path().join("fake.png"), b"this is text, not a png").unwrap();
    let thread_id = start_thread(&mut server, json!({"cwd": dir.path()}));
    mock.push(reply_with(&[call(
        "c_ok",
        "view_image",
        json!({"path": "a.png"}),
    )]));
    mock.push(reply_with(&[call(
        "c_fake",
        "view_image",
        json!({"path": "fake.png"}),
    )]));
    mock.push(reply_with(&[call(
        "c_missing",
        "view_image",
        json!({"path": "/no/such.png"}),
    )]));
    mock.push(text_reply("r4", "m4", &["seen"]));
    start_turn(&mut server, &thread_id, "look");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let views = completed(&messages, "imageView");
    assert_eq!(
        views,
        [
            json!({"type": "imageView", "id": "c_ok", "path": dir.path().join("a.png").display().to_string()})
        ],
        "only the image that could be shown has an item"
    );
    let bodies = requests(&mock);
    let output = input_item(&bodies[1], "function_call_output", "c_ok")["output"].clone();
    use base64::Engine;
    let url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(PNG)
    );
    assert_eq!(
        output,
        json!([{"type": "input_image", "image_url": url, "detail": "high"}])
    );
    let fake = input_item(&bodies[2], "function_call_output", "c_fake")["output"].clone();
    assert!(fake.as_str().unwrap().contains("is not an image"), "{fake}");
    let missing = input_item(&bodies[3], "function_call_output", "c_missing")["output"].clone();
    assert!(
        missing
            .as_str()
            .unwrap()
            .contains("cannot read image /no/such.png"),
        "{missing}"
    );
}

fn dynamic_tools() -> Value {
    json!([
        {"type": "function", "name": "lookup", "description": "Look something up",
         "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
        {"type": "namespace", "name": "crm", "description": "CRM tools",
         "tools": [{"type": "function", "name": "get", "description": "Get a record",
                    "inputSchema": {"type": "object", "properties": {"id": {"type": "integer"}}}}]}
    ])
}

#[test]
fn dynamic_tools_are_offered_and_run_by_the_client() {
    let mock = MockServer::start();
    let mut server = spawn(&mock, &[]);
    let thread_id = start_thread(&mut server, json!({"dynamicTools": dynamic_tools()}));
    let namespaced = json!({"type": "function_call", "id": "fc_ns", "call_id": "call_ns",
        "name": "get", "namespace": "crm", "arguments": "{\"id\":7}", "status": "completed"});
    mock.push(reply_with(&[call("call_1", "lookup", json!({"q": "x"}))]));
    mock.push(reply_with(&[namespaced]));
    mock.push(text_reply("r3", "m3", &["done"]));
    let turn_id = start_turn(&mut server, &thread_id, "use the tools");

    let (request, before) = server.read_until("item/tool/call");
    let started = before
        .iter()
        .find(|m| m["method"] == "item/started" && m["params"]["item"]["type"] == "dynamicToolCall")
        .expect("the item starts before the request");
    assert_eq!(
        started["params"]["item"],
        json!({"type": "dynamicToolCall", "id": "call_1", "namespace": null, "tool": "lookup",
               "arguments": {"q": "x"}, "status": "inProgress", "contentItems": null,
               "success": null, "durationMs": null})
    );
    assert_eq!(
        request["params"],
        json!({"threadId": thread_id, "turnId": turn_id, "callId": "call_1", "namespace": null,
               "tool": "lookup", "arguments": {"q": "x"}})
    );
    server.answer(
        &request["id"],
        json!({"contentItems": [{"type": "inputText", "text": "42"}], "success": true}),
    );
    let (request, _) = server.read_until("item/tool/call");
    assert_eq!(request["params"]["namespace"], "crm");
    assert_eq!(request["params"]["tool"], "get");
    server.answer(
        &request["id"],
        json!({"contentItems": [{"type": "inputText", "text": "record"},
                                {"type": "inputImage", "imageUrl": "data:image/png;base64,AA=="}],
               "success": true}),
    );
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let items = turn_items(&messages, "dynamicToolCall");
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0]["contentItems"],
        json!([{"type": "inputText", "text": "42"}])
    );
    assert_eq!(items[1]["namespace"], "crm");
    assert_eq!(items[1]["status"], "completed");
    assert_eq!(items[1]["success"], true);
    assert!(items[1]["durationMs"].is_i64());

    let bodies = requests(&mock);
    let names = tool_names(&bodies[0]);
    assert!(
        names.contains(&"lookup".to_string()) && names.contains(&"crm".to_string()),
        "{names:?}"
    );
    let lookup = bodies[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "lookup")
        .unwrap()
        .clone();
    assert_eq!(
        lookup,
        json!({"type": "function", "name": "lookup", "description": "Look something up", "strict": false,
               "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}})
    );
    assert_eq!(
        input_item(&bodies[1], "function_call_output", "call_1")["output"],
        "42"
    );
    assert_eq!(
        input_item(&bodies[2], "function_call_output", "call_ns")["output"],
        json!([{"type": "input_text", "text": "record"},
               {"type": "input_image", "image_url": "data:image/png;base64,AA=="}])
    );
    assert_eq!(
        input_item(&bodies[2], "function_call", "call_ns")["namespace"],
        "crm"
    );
}

#[test]
fn a_client_that_fails_the_call_does_not_fail_the_turn() {
    let mock = MockServer::start();
    let mut server = spawn(&mock, &[]);
    let thread_id = start_thread(&mut server, json!({"dynamicTools": dynamic_tools()}));
    mock.push(reply_with(&[call("call_1", "lookup", json!({"q": "x"}))]));
    mock.push(reply_with(&[call("call_2", "lookup", json!({"q": "y"}))]));
    mock.push(text_reply("r3", "m3", &["sorry"]));
    start_turn(&mut server, &thread_id, "try");
    let (request, _) = server.read_until("item/tool/call");
    server.answer_error(&request["id"], -32000, "client blew up");
    let (request, _) = server.read_until("item/tool/call");
    server.answer(
        &request["id"],
        json!({"contentItems": [{"type": "inputText", "text": "no such record"}], "success": false}),
    );
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let items = turn_items(&messages, "dynamicToolCall");
    assert_eq!(items[0]["status"], "failed");
    assert_eq!(items[0]["success"], false);
    let bodies = requests(&mock);
    let first = input_item(&bodies[1], "function_call_output", "call_1")["output"].clone();
    assert!(
        first.as_str().unwrap().contains("client blew up"),
        "{first}"
    );
    assert_eq!(items[1]["status"], "failed", "success: false");
    assert_eq!(items[1]["contentItems"][0]["text"], "no such record");
    let second = input_item(&bodies[2], "function_call_output", "call_2")["output"].clone();
    assert_eq!(second, "no such record");
}

#[test]
fn a_client_that_never_answers_can_be_interrupted() {
    let mock = MockServer::start();
    let mut server = spawn(&mock, &[]);
    let thread_id = start_thread(&mut server, json!({"dynamicTools": dynamic_tools()}));
    mock.push(reply_with(&[call("call_1", "lookup", json!({"q": "x"}))]));
    let turn_id = start_turn(&mut server, &thread_id, "wait forever");
    let (request, _) = server.read_until("item/tool/call");
    // The server keeps answering other requests meanwhile.
    let loaded = server.call("thread/loaded/list", json!({})).unwrap();
    assert_eq!(loaded["data"], json!([thread_id]));
    let messages = interrupt_turn(&mut server, &thread_id, &turn_id);
    let resolved = messages
        .iter()
        .find(|m| m["method"] == "serverRequest/resolved")
        .expect("the pending request is resolved");
    assert_eq!(resolved["params"]["requestId"], request["id"]);
    let items = completed(&messages, "dynamicToolCall");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "failed");
    // A late answer is ignored and the thread takes the next turn.
    server.answer(&request["id"], json!({"contentItems": [], "success": true}));
    mock.push(text_reply("r2", "m2", &["next"]));
    start_turn(&mut server, &thread_id, "next");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let output =
        input_item(&requests(&mock)[1], "function_call_output", "call_1")["output"].clone();
    assert!(output.as_str().unwrap().contains("interrupted"), "{output}");
}

#[test]
fn dynamic_tools_are_persisted_and_offered_again_on_resume() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let spawn_in = |home: &std::path::Path| {
        let mut server = AppServer::builder()
            .configs(mock.provider_overrides())
            .env("MOCK_KEY", "test-key")
            .codex_home(home)
            .spawn();
        server.initialize();
        server
    };
    let thread_id = {
        let mut server = spawn_in(home.path());
        let thread_id = start_thread(&mut server, json!({"dynamicTools": dynamic_tools()}));
        mock.push(text_reply("r1", "m1", &["one"]));
        start_turn(&mut server, &thread_id, "one");
        finish_turn(&mut server);
        thread_id
    };
    let mut server = spawn_in(home.path());
    server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    mock.push(reply_with(&[call(
        "call_1",
        "lookup",
        json!({"q": "again"}),
    )]));
    mock.push(text_reply("r3", "m3", &["two"]));
    start_turn(&mut server, &thread_id, "two");
    let (request, _) = server.read_until("item/tool/call");
    server.answer(
        &request["id"],
        json!({"contentItems": [{"type": "inputText", "text": "ok"}], "success": true}),
    );
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    let names = tool_names(&requests(&mock)[1]);
    assert!(
        names.contains(&"lookup".to_string()) && names.contains(&"crm".to_string()),
        "{names:?}"
    );
    // A fork keeps them too.
    let fork = server
        .call("thread/fork", json!({"threadId": thread_id}))
        .unwrap();
    let fork_id = fork["thread"]["id"].as_str().unwrap().to_string();
    server.read_until("thread/started");
    mock.push(text_reply("r4", "m4", &["forked"]));
    start_turn(&mut server, &fork_id, "in the fork");
    finish_turn(&mut server);
    assert!(tool_names(&requests(&mock)[3]).contains(&"lookup".to_string()));
}

#[test]
fn invalid_dynamic_tools_are_refused() {
    let mock = MockServer::start();
    let mut server = spawn(&mock, &[]);
    for tools in [
        json!([{"type": "function", "name": "shell", "description": "d", "inputSchema": {}}]),
        json!([{"type": "function", "name": "no spaces", "description": "d", "inputSchema": {}}]),
        json!([{"type": "function", "name": "x", "description": "d"}]),
    ] {
        let error = server
            .call("thread/start", json!({"dynamicTools": tools}))
            .unwrap_err();
        assert_eq!(error["code"], -32602, "{error}");
        assert!(
            error["message"].as_str().unwrap().contains("dynamicTools"),
            "{error}"
        );
    }
    server.assert_silent(Duration::from_millis(200));
}

#[test]
fn view_image_is_offered_only_to_models_that_take_images() {
    let mock = MockServer::start();
    // The ChatGPT catalog: one text-only model.
    let catalog = json!({"models": [{"slug": "text-only", "display_name": "Text only",
        "visibility": "list", "priority": 1, "shell_type": "shell_command",
        "input_modalities": ["text"]}]});
    mock.set_route(
        "/backend-api/codex/models",
        status(200, catalog.to_string()),
    );
    let mut server = AppServer::builder()
        .config(format!("chatgpt_base_url={}/backend-api", mock.base()))
        .config("model_providers.openai.request_max_retries=0")
        .spawn();
    server.initialize();
    let token = super::auth::fake_jwt(json!({"exp": 4_102_444_800i64,
        "https://api.openai.com/auth": {"chatgpt_account_id": "org-1", "chatgpt_plan_type": "pro"}}));
    server
        .call(
            "account/login/start",
            json!({"type": "chatgptAuthTokens", "accessToken": token, "chatgptAccountId": "org-1"}),
        )
        .unwrap();
    let thread_id = start_thread(&mut server, json!({"model": "text-only"}));
    mock.push(reply_with(&[call(
        "c1",
        "view_image",
        json!({"path": "/x.png"}),
    )]));
    mock.push(text_reply("r2", "m2", &["ok"]));
    start_turn(&mut server, &thread_id, "look");
    let messages = finish_turn(&mut server);
    assert!(completed(&messages, "imageView").is_empty());
    let bodies: Vec<Value> = mock
        .requests_to("/codex/responses")
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(bodies[0]["model"], "text-only");
    let names = tool_names(&bodies[0]);
    assert!(
        !names.iter().any(|n| n == "shell"),
        "the catalog entry applies (its shell type): {names:?}"
    );
    assert!(!names.iter().any(|n| n == "view_image"), "{names:?}");
    let output = input_item(&bodies[1], "function_call_output", "c1")["output"].clone();
    assert_eq!(output, "unsupported call: view_image");
}
