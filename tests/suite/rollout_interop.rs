//! Rollouts shared with Codex (interop.md §1), through the real binary: our reader on every
//! Codex 0.169.0 fixture (what its README says a reader should show), resume / fork / continue
//! of Codex threads against the mock, a thread we write checked line by line against the
//! fixtures' shapes, our earlier format, torn, corrupt and unknown lines, the `thread/list`
//! defaults, and the listing index (missing, corrupt, stale, files added, changed and deleted
//! behind the server's back).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::suite::turns::{finish_turn, last_turn, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

const FIXTURES: &str = "tests/fixtures/rollouts/codex-0.169.0";
const LEGACY_FIXTURE: &str = "tests/fixtures/rollouts/codex-0.169.0-legacy";
const SHELL: &str = "01a22d40-c3fc-7fb2-9f93-d6333a09ba17";
const PLAIN: &str = "01a22d40-c305-7e90-a00f-09559d100346";
const FORKED: &str = "01a22d40-c796-7383-9ebe-2d9c838ef66c";
const COMPACTED: &str = "01a22d40-c88f-7982-a028-6099a35865b6";
const ARCHIVED: &str = "01a22d40-c820-7150-93a6-edef1b069a93";
const INDEX_FILE: &str = "codex-lite-list-index.jsonl";

fn fixture_dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.path().extension().is_some_and(|e| e == "jsonl") {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A CODEX_HOME holding a copy of a fixture tree.
fn home_with(fixture: &str) -> TempDir {
    let home = TempDir::new("codex-home");
    copy_tree(&fixture_dir(fixture), home.path());
    home
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// `turns` as the fixtures' README writes them: item types joined by `,`, turns by `|`.
fn turn_shapes(turns: &Value) -> String {
    turns
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["type"].as_str().unwrap())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("|")
}

fn read_turns(server: &mut AppServer, thread_id: &str) -> Value {
    server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap_or_else(|e| panic!("thread/read {thread_id}: {e}"))["thread"]["turns"]
        .clone()
}

/// Every `(thread id, expected "turns=N items=…")` the fixtures' README gives as what a reader
/// should show (its "as the client saw it" lines).
fn readme_expectations(fixture: &str) -> Vec<(String, usize, String)> {
    let readme = std::fs::read_to_string(fixture_dir(fixture).join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut thread = None;
    for line in readme.lines() {
        if let Some(rest) = line.strip_prefix("- thread `") {
            thread = rest.split('`').next().map(str::to_string);
        }
        if let Some(rest) = line.strip_prefix("- as the client saw it: `listed=yes turns=") {
            let rest = rest.trim_end_matches('`');
            let (count, items) = rest.split_once(" items=").unwrap();
            out.push((
                thread.clone().expect("a thread line before"),
                count.parse().unwrap(),
                items.to_string(),
            ));
        }
    }
    out
}

/// The texts of a model request's input, in order (tool calls by their kind).
fn input_texts(body: &Value) -> Vec<String> {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| match item["content"].as_array() {
            Some(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<String>(),
            None => item["type"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn run_text_turn(server: &mut AppServer, mock: &MockServer, thread_id: &str, text: &str) -> Value {
    mock.push(text_reply("resp_x", "msg_x", &["noted"]));
    start_turn(server, thread_id, text);
    last_turn(&finish_turn(server)).clone()
}

fn last_request(mock: &MockServer) -> Value {
    mock.requests_to("/v1/responses").last().unwrap().json()
}

fn rollout_path(home: &Path, id: &str) -> PathBuf {
    fn walk(dir: &Path, suffix: &str) -> Option<PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if let Some(found) = walk(&path, suffix) {
                    return Some(found);
                }
            } else if path.to_string_lossy().ends_with(suffix) {
                return Some(path);
            }
        }
        None
    }
    walk(home, &format!("-{id}.jsonl")).unwrap_or_else(|| panic!("no rollout for {id}"))
}

fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ---- our reader on Codex's files --------------------------------------------------------------

#[test]
fn codex_fixtures_read_as_their_readme_says() {
    let mock = MockServer::start();
    let home = home_with(FIXTURES);
    let mut server = server_in(&mock, home.path());
    let expectations = readme_expectations(FIXTURES);
    assert_eq!(expectations.len(), 8, "one per fixture");
    for (thread_id, count, items) in &expectations {
        let turns = read_turns(&mut server, thread_id);
        assert_eq!(
            turns.as_array().unwrap().len(),
            *count,
            "{thread_id}: {turns}"
        );
        assert_eq!(&turn_shapes(&turns), items, "{thread_id}");
    }
    // Statuses and contents behind those shapes.
    let interrupted = read_turns(&mut server, "01a22d40-c586-78e3-95ea-ac5f9b5bf45e");
    assert_eq!(interrupted[0]["status"], "interrupted");
    assert_eq!(interrupted[1]["status"], "completed");
    let shell = read_turns(&mut server, SHELL);
    let command = &shell[0]["items"][1];
    assert_eq!(command["id"], "call_fixture_shell");
    assert_eq!(command["command"], "/bin/bash -lc 'echo fixture-shell'");
    assert_eq!(command["aggregatedOutput"], "fixture-shell\n");
    assert_eq!(command["exitCode"], 0);
    assert_eq!(command["cwd"], "/tmp/codex-fixtures-02c08hub/workspace");
    let patch = &read_turns(&mut server, "01a22d40-c4a4-7473-9ab5-4a6d4206ea96")[1]["items"][1];
    assert_eq!(
        patch["changes"][0]["kind"],
        json!({"type": "update", "move_path": null})
    );
    assert_eq!(patch["status"], "completed");
    let mcp = &read_turns(&mut server, "01a22d40-ca77-7b92-9e16-0b9ebb4d56a2")[0]["items"][1];
    assert_eq!(
        (&mcp["server"], &mcp["tool"], &mcp["status"]),
        (&json!("fixture"), &json!("echo"), &json!("completed"))
    );
    let forked = server
        .call("thread/read", json!({"threadId": FORKED}))
        .unwrap();
    assert_eq!(forked["thread"]["forkedFromId"], PLAIN);
    assert_eq!(forked["thread"]["source"], "vscode");
    assert_eq!(forked["thread"]["modelProvider"], "fixture-client_mock");
    assert_eq!(forked["thread"]["model"], "mock-model");
    assert_eq!(forked["thread"]["cliVersion"], "0.169.0");
    assert_eq!(forked["thread"]["originator"], "fixture-client");
}

#[test]
fn codex_fixtures_list_as_the_reference_lists_them() {
    let mock = MockServer::start();
    let home = home_with(FIXTURES);
    let mut server = server_in(&mock, home.path());
    // What 0.169.0 listed for these files (newest first, previews from the first user message).
    let listed = server
        .call("thread/list", json!({"modelProviders": []}))
        .unwrap();
    let previews: Vec<(&str, &str)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["preview"].as_str().unwrap()))
        .collect();
    assert_eq!(
        previews,
        [
            (
                "01a22d40-ca77-7b92-9e16-0b9ebb4d56a2",
                "Echo 'fixture' with the MCP server"
            ),
            (COMPACTED, "Tell me something"),
            (FORKED, "And the third-largest city?"),
            ("01a22d40-c586-78e3-95ea-ac5f9b5bf45e", "Talk slowly"),
            ("01a22d40-c4a4-7473-9ab5-4a6d4206ea96", "Create notes.txt"),
            (SHELL, "Run echo fixture-shell"),
            (PLAIN, "Hi there"),
        ]
    );
    for thread in listed["data"].as_array().unwrap() {
        assert_eq!(thread["status"], json!({"type": "notLoaded"}));
        assert_eq!(
            thread["createdAt"].as_i64().unwrap() / 86_400,
            1_796_055_548 / 86_400
        );
        assert!(
            thread["path"]
                .as_str()
                .unwrap()
                .starts_with(home.path().to_str().unwrap())
        );
    }
    let archived = server
        .call(
            "thread/list",
            json!({"modelProviders": [], "archived": true}),
        )
        .unwrap();
    assert_eq!(ids(&archived), [ARCHIVED]);
    // The default is the current provider's threads only (ours is `mock`).
    assert_eq!(
        ids(&server.call("thread/list", json!({})).unwrap()),
        Vec::<String>::new()
    );
    let by_provider = server
        .call(
            "thread/list",
            json!({"modelProviders": ["fixture-client_mock"], "limit": 2}),
        )
        .unwrap();
    assert_eq!(ids(&by_provider).len(), 2);
    assert!(by_provider["nextCursor"].is_string());
}

#[test]
fn a_legacy_thread_written_by_codex_reads() {
    let mock = MockServer::start();
    let home = home_with(LEGACY_FIXTURE);
    let mut server = server_in(&mock, home.path());
    let turns = read_turns(&mut server, SHELL);
    assert_eq!(
        turn_shapes(&turns),
        "userMessage,commandExecution,agentMessage|userMessage,agentMessage|userMessage,agentMessage"
    );
    assert_eq!(turns[1]["items"][0]["content"][0]["text"], "run it");
    assert_eq!(turns[1]["items"][1]["text"], "done");
    assert_eq!(turns[2]["items"][1]["text"], "patched");
    // Items of the older events have no ids of their own: numbered as the reference numbers them.
    assert_eq!(turns[1]["items"][0]["id"], "item-1");
}

// ---- resume, fork and continue Codex threads --------------------------------------------------

#[test]
fn resume_and_continue_a_codex_thread() {
    let mock = MockServer::start();
    let home = home_with(FIXTURES);
    let mut server = server_in(&mock, home.path());
    let resumed = server
        .call("thread/resume", json!({"threadId": SHELL}))
        .unwrap();
    assert_eq!(
        turn_shapes(&resumed["thread"]["turns"]),
        "userMessage,commandExecution,agentMessage"
    );
    // Its provider is not configured here, and its directory is gone: the thread continues
    // with the current provider, in the server's directory, and the client is told.
    assert_eq!(resumed["modelProvider"], "mock");
    assert_eq!(
        resumed["cwd"],
        std::env::current_dir().unwrap().to_str().unwrap()
    );
    let (warning, _) = server.read_until("warning");
    assert_eq!(warning["params"]["threadId"], SHELL);
    assert!(
        warning["params"]["message"]
            .as_str()
            .unwrap()
            .contains("/tmp/codex-fixtures-02c08hub/workspace does not exist"),
        "{warning}"
    );
    let turn = run_text_turn(&mut server, &mock, SHELL, "And now?");
    assert_eq!(turn["status"], "completed");
    let body = last_request(&mock);
    let texts = input_texts(&body);
    let expected_start = [
        "<developer instructions elided from this fixture><developer instructions elided from this fixture>",
    ];
    assert_eq!(texts[..1], expected_start);
    let at = |text: &str| {
        texts
            .iter()
            .position(|t| t == text)
            .unwrap_or_else(|| panic!("{text:?} not in {texts:#?}"))
    };
    assert!(at("Run echo fixture-shell") < at("function_call"));
    assert!(at("function_call") < at("function_call_output"));
    assert!(at("function_call_output") < at("It printed fixture-shell."));
    assert!(at("It printed fixture-shell.") < at("And now?"));
    for item in body["input"].as_array().unwrap() {
        assert!(
            item.get("internal_chat_message_metadata_passthrough")
                .is_none(),
            "Codex-internal metadata sent to the model: {item}"
        );
    }
    let call = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap();
    assert_eq!(call["call_id"], "call_fixture_shell");
    assert_eq!(call["name"], "exec_command");
    drop(server);
    // Codex numbers the lines of its 0.169 threads and refuses to resume one whose last line
    // has no number: what we appended continues the numbering.
    let ordinals: Vec<Option<u64>> = lines_of(&rollout_path(home.path(), SHELL))
        .iter()
        .map(|l| l["ordinal"].as_u64())
        .collect();
    assert!(ordinals.len() > 19);
    for (n, ordinal) in ordinals.iter().enumerate() {
        assert_eq!(*ordinal, Some(n as u64), "line {n}");
    }

    // What we appended reads back after a restart, after Codex's own turn.
    let mut server = server_in(&mock, home.path());
    let turns = read_turns(&mut server, SHELL);
    assert_eq!(
        turn_shapes(&turns),
        "userMessage,commandExecution,agentMessage|userMessage,agentMessage"
    );
    assert_eq!(turns[1]["items"][1]["text"], "noted");
}

#[test]
fn resume_a_compacted_codex_thread_continues_from_the_compaction() {
    let mock = MockServer::start();
    let home = home_with(FIXTURES);
    let mut server = server_in(&mock, home.path());
    server
        .call("thread/resume", json!({"threadId": COMPACTED}))
        .unwrap();
    run_text_turn(&mut server, &mock, COMPACTED, "After resume");
    let texts = input_texts(&last_request(&mock));
    assert!(
        texts.contains(&"<text elided from this fixture>".to_string()),
        "{texts:#?}"
    );
    assert!(texts.contains(&"Continuing after the compaction.".to_string()));
    assert!(
        !texts.contains(&"Here is a long answer worth summarizing later.".to_string()),
        "history from before the compaction was sent: {texts:#?}"
    );
    assert_eq!(
        texts.iter().filter(|t| *t == "Tell me something").count(),
        1
    );
}

#[test]
fn fork_codex_threads_and_continue() {
    let mock = MockServer::start();
    let home = home_with(FIXTURES);
    let mut server = server_in(&mock, home.path());
    // A 0.169 fork inherits its parent's history through `history_base`.
    server
        .call("thread/resume", json!({"threadId": FORKED}))
        .unwrap();
    run_text_turn(&mut server, &mock, FORKED, "And the fourth?");
    let texts = input_texts(&last_request(&mock));
    for said in [
        "Hi there",
        "What is the capital of France?",
        "And the third-largest city?",
        "Lyon is the third-largest city.",
        "And the fourth?",
    ] {
        assert!(
            texts.iter().any(|t| t == said),
            "{said:?} not in {texts:#?}"
        );
    }

    // Our fork of a Codex thread keeps its history and turns, in a file of its own.
    let fork = server
        .call("thread/fork", json!({"threadId": PLAIN}))
        .unwrap();
    let fork_id = fork["thread"]["id"].as_str().unwrap().to_string();
    assert_eq!(fork["thread"]["forkedFromId"], PLAIN);
    assert_eq!(
        turn_shapes(&fork["thread"]["turns"]),
        "userMessage,agentMessage|userMessage,agentMessage"
    );
    run_text_turn(&mut server, &mock, &fork_id, "Next in the fork");
    let texts = input_texts(&last_request(&mock));
    let at = |text: &str| {
        texts
            .iter()
            .position(|t| t == text)
            .unwrap_or_else(|| panic!("{text:?} not in {texts:#?}"))
    };
    assert!(at("Hi there") < at("What is the capital of France?"));
    assert!(at("What is the capital of France?") < at("Next in the fork"));
    drop(server);
    let mut server = server_in(&mock, home.path());
    assert_eq!(
        turn_shapes(&read_turns(&mut server, &fork_id)),
        "userMessage,agentMessage|userMessage,agentMessage|userMessage,agentMessage"
    );
}

// ---- what we write ----------------------------------------------------------------------------

/// `kind` of a line for comparing shapes: its type, and the payload's type for events and items.
fn line_kind(line: &Value) -> String {
    let kind = line["type"].as_str().unwrap();
    match (kind, line["payload"]["type"].as_str()) {
        ("event_msg" | "response_item", Some(sub)) => format!("{kind}:{sub}"),
        _ => kind.to_string(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every line of every fixture file, by kind.
fn fixture_lines() -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut files = Vec::new();
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.path().is_dir() {
                walk(&entry.path(), files);
            } else if entry.path().extension().is_some_and(|e| e == "jsonl") {
                files.push(entry.path());
            }
        }
    }
    walk(&fixture_dir(FIXTURES), &mut files);
    walk(&fixture_dir(LEGACY_FIXTURE), &mut files);
    for file in files {
        for line in lines_of(&file) {
            out.entry(line_kind(&line)).or_default().push(line);
        }
    }
    out
}

/// Checks `ours` against a fixture line of the same kind: the fields Codex's readers need are
/// there, and every field both have holds the same JSON type (or null) — recursively in
/// objects.
fn assert_same_shape(ours: &Value, theirs: &Value, at: &str) {
    if let (Value::Object(o), Value::Object(t)) = (ours, theirs) {
        for (key, value) in o {
            let Some(their) = t.get(key) else { continue };
            if value.is_null() || their.is_null() {
                continue;
            }
            assert_eq!(
                json_type(value),
                json_type(their),
                "{at}.{key}: ours {value}, Codex {their}"
            );
            assert_same_shape(value, their, &format!("{at}.{key}"));
        }
    }
}

#[test]
fn a_thread_we_write_has_the_shapes_codex_writes() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let cwd = TempDir::new("cwd");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(
        &mut server,
        json!({"cwd": cwd.path(), "approvalPolicy": "never", "sandbox": "danger-full-access"}),
    );
    mock.push(sse(vec![
        ev_created("resp_1"),
        ev_function_call("call_echo", "shell", &json!({"command": ["echo", "hi"]})),
        ev_completed("resp_1"),
    ]));
    mock.push(sse(vec![
        ev_created("resp_2"),
        ev_function_call(
            "call_patch",
            "apply_patch",
            &json!({"input": "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch\n"}),
        ),
        ev_completed("resp_2"),
    ]));
    mock.push(text_reply("resp_3", "msg_3", &["all done"]));
    start_turn(&mut server, &thread_id, "run and patch");
    assert_eq!(last_turn(&finish_turn(&mut server))["status"], "completed");
    mock.push(status(
        400,
        r#"{"error":{"message":"bad thing","type":"invalid_request_error"}}"#,
    ));
    start_turn(&mut server, &thread_id, "this fails");
    assert_eq!(last_turn(&finish_turn(&mut server))["status"], "failed");
    drop(server);

    let theirs = fixture_lines();
    let ours = lines_of(&rollout_path(home.path(), &thread_id));
    let mut kinds = Vec::new();
    for (n, line) in ours.iter().enumerate() {
        let kind = line_kind(line);
        assert!(line["timestamp"].is_string(), "line {n}: {line}");
        // Older per-kind events the fixtures lack; 0.169.0 reads them (observed).
        let read_by_codex = [
            "event_msg:patch_apply_end",
            "event_msg:agent_reasoning",
            "event_msg:mcp_tool_call_end",
            "event_msg:web_search_end",
        ];
        let Some(fixtures) = theirs.get(&kind) else {
            assert!(
                read_by_codex.contains(&kind.as_str()),
                "line {n}: Codex writes no `{kind}` line: {line}"
            );
            kinds.push(kind);
            continue;
        };
        for fixture in fixtures {
            assert_same_shape(
                &line["payload"],
                &fixture["payload"],
                &format!("line {n} {kind}"),
            );
        }
        kinds.push(kind);
    }
    for kind in [
        "session_meta",
        "event_msg:task_started",
        "turn_context",
        "response_item:message",
        "response_item:function_call",
        "response_item:function_call_output",
        "event_msg:item_completed",
        "event_msg:user_message",
        "event_msg:agent_message",
        "event_msg:token_count",
        "event_msg:task_complete",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no {kind} line in {kinds:?}"
        );
    }
    // The fields Codex's readers need, by kind.
    let first = |kind: &str| ours.iter().find(|l| line_kind(l) == kind).unwrap()["payload"].clone();
    let meta = first("session_meta");
    for key in [
        "id",
        "timestamp",
        "cwd",
        "originator",
        "cli_version",
        "source",
        "model_provider",
        "base_instructions",
    ] {
        assert!(meta.get(key).is_some(), "session_meta lacks {key}: {meta}");
    }
    assert_eq!(meta["id"], thread_id.as_str());
    assert_eq!(meta["source"], "vscode");
    assert_eq!(meta["cwd"], cwd.path().to_str().unwrap());
    let context = first("turn_context");
    for key in [
        "turn_id",
        "cwd",
        "approval_policy",
        "sandbox_policy",
        "model",
        "summary",
    ] {
        assert!(
            context.get(key).is_some(),
            "turn_context lacks {key}: {context}"
        );
    }
    assert_eq!(
        context["sandbox_policy"],
        json!({"type": "danger-full-access"})
    );
    assert_eq!(
        first("event_msg:task_started")["turn_id"],
        context["turn_id"]
    );
    let items: Vec<Value> = ours
        .iter()
        .filter(|l| line_kind(l) == "event_msg:item_completed")
        .map(|l| l["payload"]["item"].clone())
        .collect();
    let item_kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        item_kinds,
        [
            "UserMessage",
            "CommandExecution",
            "FileChange",
            "AgentMessage",
            "UserMessage"
        ]
    );
    assert_eq!(items[1]["command"], json!(["echo hi"]));
    assert!(items[1]["cwd"].as_str().unwrap().starts_with("file:///"));
    let patch_end = ours
        .iter()
        .find(|l| line_kind(l) == "event_msg:patch_apply_end")
        .unwrap();
    assert_eq!(patch_end["payload"]["call_id"], "call_patch");
    let completes: Vec<&Value> = ours
        .iter()
        .filter(|l| line_kind(l) == "event_msg:task_complete")
        .map(|l| &l["payload"])
        .collect();
    assert_eq!(completes[0]["last_agent_message"], "all done");
    assert_eq!(completes[1]["error"]["codex_error_info"], "bad_request");
    assert!(
        completes[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad thing")
    );
}

// ---- our earlier format, bad lines, newer versions --------------------------------------------

#[test]
fn threads_in_our_earlier_format_still_read_and_resume() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let id = "019a0000-0000-7000-8000-0000000000e1";
    let dir = home.path().join("sessions/2026/01/02");
    std::fs::create_dir_all(&dir).unwrap();
    let line = |kind: &str, payload: Value| {
        json!({"timestamp": "2026-01-02T03:04:05.000Z", "type": kind, "payload": payload})
            .to_string()
    };
    let lines = [
        line(
            "session_meta",
            json!({"id": id, "created_at": 1_767_323_045, "cwd": "/tmp", "originator": "old",
            "cli_version": "0.1.0", "model_provider": "mock", "model": "mock-model"}),
        ),
        line("turn_started", json!({"turn_id": "t1"})),
        line(
            "turn_context",
            json!({"cwd": "/tmp", "model": "mock-model", "effort": null, "summary": "auto",
            "approval_policy": "never", "sandbox_policy": {"type": "read-only"}}),
        ),
        line(
            "response_item",
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "old question"}]}),
        ),
        line(
            "thread_item",
            json!({"turn_id": "t1", "item": {"type": "userMessage", "id": "u1",
            "content": [{"type": "text", "text": "old question", "text_elements": []}]}}),
        ),
        line(
            "response_item",
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "old answer"}]}),
        ),
        line(
            "thread_item",
            json!({"turn_id": "t1", "item": {"type": "agentMessage", "id": "m1", "text": "old answer"}}),
        ),
        line(
            "turn_completed",
            json!({"turn_id": "t1", "status": "completed", "error": null}),
        ),
    ];
    std::fs::write(
        dir.join(format!("rollout-2026-01-02T03-04-05-{id}.jsonl")),
        lines.join("\n") + "\n",
    )
    .unwrap();
    let mut server = server_in(&mock, home.path());
    let listed = server.call("thread/list", json!({})).unwrap();
    assert_eq!(ids(&listed), [id]);
    assert_eq!(listed["data"][0]["preview"], "old question");
    assert_eq!(listed["data"][0]["source"], "vscode");
    assert_eq!(
        turn_shapes(&read_turns(&mut server, id)),
        "userMessage,agentMessage"
    );
    server
        .call("thread/resume", json!({"threadId": id}))
        .unwrap();
    run_text_turn(&mut server, &mock, id, "new question");
    let texts = input_texts(&last_request(&mock));
    let at = |text: &str| {
        texts
            .iter()
            .position(|t| t == text)
            .unwrap_or_else(|| panic!("{text:?} not in {texts:#?}"))
    };
    assert!(at("old question") < at("old answer") && at("old answer") < at("new question"));
}

#[test]
fn corrupt_and_torn_lines_warn_and_the_rest_reads() {
    let mock = MockServer::start();
    let home = home_with(FIXTURES);
    let path = rollout_path(home.path(), PLAIN);
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // A line corrupted in the middle of the file, and one torn at its end.
    lines.insert(
        12,
        "{\"timestamp\":\"2026-11-30T16:19:08.9Z\",\"type\":\"event_msg\",\"payl\u{0}oad"
            .to_string(),
    );
    std::fs::write(
        &path,
        lines.join("\n") + "\n{\"timestamp\":\"2026-11-30T16:19:09Z\",\"type\":\"resp",
    )
    .unwrap();
    let mut server = server_in(&mock, home.path());
    let turns = read_turns(&mut server, PLAIN);
    assert_eq!(
        turn_shapes(&turns),
        "userMessage,agentMessage|userMessage,agentMessage"
    );
    let (warning, _) = server.read_until("warning");
    assert_eq!(warning["params"]["threadId"], PLAIN);
    let message = warning["params"]["message"].as_str().unwrap();
    assert!(
        message.contains("skipping unreadable line 13") && message.contains("(and 1 more)"),
        "{message}"
    );

    server
        .call("thread/resume", json!({"threadId": PLAIN}))
        .unwrap();
    server.read_until("warning");
    let turn = run_text_turn(&mut server, &mock, PLAIN, "still there?");
    assert_eq!(turn["status"], "completed");
    let texts = input_texts(&last_request(&mock));
    assert!(texts.contains(&"What is the capital of France?".to_string()));
    drop(server);
    // The torn end was closed before appending: the new turn reads back.
    let mut server = server_in(&mock, home.path());
    assert_eq!(read_turns(&mut server, PLAIN).as_array().unwrap().len(), 3);
}

#[test]
fn lines_from_a_newer_version_are_skipped_silently() {
    let mock = MockServer::start();
    let home = home_with(FIXTURES);
    let path = rollout_path(home.path(), PLAIN);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    for line in [
        json!({"timestamp": "2026-12-01T00:00:00Z", "type": "hologram_state", "payload": {"dimensions": 4}}),
        json!({"timestamp": "2026-12-01T00:00:00Z", "type": "event_msg", "payload": {"type": "telepathy_started", "turn_id": "x"}}),
        json!({"timestamp": "2026-12-01T00:00:00Z", "type": "event_msg", "payload": {"type": "item_completed", "turn_id": "x", "item": {"type": "Teleport", "id": "t"}}}),
        json!({"timestamp": "2026-12-01T00:00:00Z", "type": "response_item", "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "newer"}], "future_field": true}}),
    ] {
        writeln!(file, "{line}").unwrap();
    }
    let cwd = TempDir::new("cwd");
    let mut server = server_in(&mock, home.path());
    assert_eq!(
        turn_shapes(&read_turns(&mut server, PLAIN)),
        "userMessage,agentMessage|userMessage,agentMessage"
    );
    server
        .call(
            "thread/resume",
            json!({"threadId": PLAIN, "cwd": cwd.path()}),
        )
        .unwrap();
    mock.push(text_reply("resp_x", "msg_x", &["noted"]));
    start_turn(&mut server, PLAIN, "after the future");
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "completed");
    assert!(input_texts(&last_request(&mock)).contains(&"newer".to_string()));
    let about_lines: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "warning")
        .filter(|m| {
            m["params"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("line")
        })
        .collect();
    assert!(about_lines.is_empty(), "{about_lines:?}");
}

// ---- thread/list ------------------------------------------------------------------------------

#[test]
fn list_defaults_to_the_current_provider_and_interactive_sources() {
    let mock = MockServer::start();
    let home = home_with(FIXTURES);
    let mut server = server_in(&mock, home.path());
    let ours = start_thread(&mut server, json!({}));
    run_text_turn(&mut server, &mock, &ours, "mine");
    assert_eq!(
        ids(&server.call("thread/list", json!({})).unwrap()),
        [ours.as_str()]
    );
    assert_eq!(
        ids(&server
            .call("thread/list", json!({"modelProviders": []}))
            .unwrap())
        .len(),
        8
    );
    // A thread recorded by `codex exec` is listed only when asked for.
    let path = rollout_path(home.path(), SHELL);
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "\"source\":\"vscode\"",
        "\"source\":\"exec\"",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let all = server
        .call("thread/list", json!({"modelProviders": []}))
        .unwrap();
    assert!(!ids(&all).contains(&SHELL.to_string()));
    let exec = server
        .call(
            "thread/list",
            json!({"modelProviders": [], "sourceKinds": ["exec"]}),
        )
        .unwrap();
    assert_eq!(ids(&exec), [SHELL]);
    assert_eq!(exec["data"][0]["source"], "exec");
    let error = server
        .call("thread/list", json!({"sourceKinds": ["martian"]}))
        .unwrap_err();
    assert_eq!(error["code"], -32602);
}

#[test]
fn list_index_is_rebuilt_and_never_trusted_over_the_files() {
    let mock = MockServer::start();
    let home = home_with(FIXTURES);
    let all = json!({"modelProviders": [], "limit": 3});
    let page_through = |server: &mut AppServer| -> Vec<String> {
        let mut seen = Vec::new();
        let mut params = all.clone();
        loop {
            let page = server.call("thread/list", params.clone()).unwrap();
            seen.extend(ids(&page));
            match page["nextCursor"].as_str() {
                Some(cursor) => params["cursor"] = json!(cursor),
                None => return seen,
            }
        }
    };
    let mut server = server_in(&mock, home.path());
    let first = page_through(&mut server);
    assert_eq!(first.len(), 7);
    let index = home.path().join(INDEX_FILE);
    let saved = std::fs::read_to_string(&index).expect("the index is saved after a paging run");
    assert_eq!(
        saved.lines().count(),
        8,
        "a version line and one line per thread"
    );

    // Added, appended to and deleted behind the server's back: seen on the next page.
    let added = "01a22d40-0000-7000-8000-00000000add1";
    let plain = rollout_path(home.path(), PLAIN);
    let text = std::fs::read_to_string(&plain).unwrap();
    let copy = plain.with_file_name(format!("rollout-2026-11-30T23-59-59-{added}.jsonl"));
    std::fs::write(
        &copy,
        text.replace(PLAIN, added)
            .replace("Hi there", "Hi from the copy"),
    )
    .unwrap();
    std::fs::remove_file(rollout_path(home.path(), SHELL)).unwrap();
    let compacted = rollout_path(home.path(), COMPACTED);
    let renamed = std::fs::read_to_string(&compacted).unwrap().replacen(
        "Tell me something",
        "Tell me more",
        2,
    );
    std::fs::write(&compacted, renamed).unwrap();
    let page = server.call("thread/list", all.clone()).unwrap();
    assert_eq!(page["data"][0]["id"], added);
    assert_eq!(page["data"][0]["preview"], "Hi from the copy");
    let second = page_through(&mut server);
    assert!(!second.contains(&SHELL.to_string()));
    assert_eq!(second.len(), 7);
    let previews = server
        .call(
            "thread/list",
            json!({"modelProviders": [], "searchTerm": "tell me more"}),
        )
        .unwrap();
    assert_eq!(ids(&previews), [COMPACTED]);
    drop(server);

    // A stale saved entry (its file changed since) is read again; a corrupt or missing index is
    // rebuilt.
    let stale: String = std::fs::read_to_string(&index)
        .unwrap()
        .lines()
        .map(|l| {
            if l.contains(added) {
                l.replace("Hi from the copy", "stale preview")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&index, stale + "\n").unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&copy)
        .unwrap()
        .write_all(b"\n")
        .unwrap();
    let mut server = server_in(&mock, home.path());
    let page = server.call("thread/list", all.clone()).unwrap();
    assert_eq!(page["data"][0]["preview"], "Hi from the copy");
    drop(server);
    for broken in [
        "not an index\n",
        "{\"version\":999}\n{\"path\":\"x\"}\n",
        "",
    ] {
        std::fs::write(&index, broken).unwrap();
        let mut server = server_in(&mock, home.path());
        assert_eq!(page_through(&mut server), second, "with index {broken:?}");
        drop(server);
        let rewritten = std::fs::read_to_string(&index).unwrap();
        assert!(rewritten.starts_with("{\"version\":1}"), "{rewritten}");
    }
    std::fs::remove_file(&index).unwrap();
    let mut server = server_in(&mock, home.path());
    assert_eq!(page_through(&mut server), second);
}
