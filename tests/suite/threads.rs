//! Thread lifecycle and persistence through the real binary (protocol.md §5): thread/start and
//! its overrides, rollout files, list/read/resume after a restart over the same CODEX_HOME, torn
//! rollout lines, fork, archive/unarchive, names, the loaded list. Turns are answered by the mock
//! Responses server, whose recorded requests show what history the model was sent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::suite::turns::{
    finish_turn, interrupt_turn, last_turn, server_for, start_thread, start_turn,
};
use crate::support::TempDir;
use crate::support::app_server::{AppServer, DEFAULT_TIMEOUT};
use crate::support::mock_responses::*;

// ---- helpers --------------------------------------------------------------------------------

/// Runs one turn whose model reply is `reply`; returns the turn id. The turn must complete.
fn run_turn(
    server: &mut AppServer,
    mock: &MockServer,
    thread_id: &str,
    text: &str,
    reply: &str,
) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    mock.push(text_reply(
        &format!("resp_{n}"),
        &format!("msg_{n}"),
        &[reply],
    ));
    let turn_id = start_turn(server, thread_id, text);
    let messages = finish_turn(server);
    let turn = last_turn(&messages);
    assert_eq!(turn["id"], turn_id.as_str());
    assert_eq!(turn["status"], "completed", "{messages:?}");
    turn_id
}

/// The model request bodies the mock received, in order.
fn model_requests(mock: &MockServer) -> Vec<Value> {
    mock.requests_to("/v1/responses")
        .iter()
        .map(|r| r.json())
        .collect()
}

/// A request's `input` as `(role, text)` pairs, text parts concatenated.
fn conversation(body: &Value) -> Vec<(String, String)> {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let role = item["role"].as_str().or(item["type"].as_str()).unwrap();
            let text: String = item["content"]
                .as_array()
                .map(|parts| parts.iter().filter_map(|p| p["text"].as_str()).collect())
                .unwrap_or_default();
            (role.to_string(), text)
        })
        .collect()
}

/// The conversation without the context messages (permissions, environment), and how many of
/// those there were.
fn dialogue(body: &Value) -> (Vec<(String, String)>, usize) {
    let all = conversation(body);
    let is_context = |(role, text): &(String, String)| {
        role == "developer" || text.contains("<environment_context>")
    };
    let contexts = all.iter().filter(|m| is_context(m)).count();
    (
        all.into_iter().filter(|m| !is_context(m)).collect(),
        contexts,
    )
}

fn said(role: &str, text: &str) -> (String, String) {
    (role.to_string(), text.to_string())
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

fn list(server: &mut AppServer, params: Value) -> Value {
    server.call("thread/list", params).expect("thread/list")
}

/// Every rollout file under `dir` (recursively).
fn rollout_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rollout_files(&path));
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
    out
}

/// The rollout's lines as JSON (all must parse).
fn rollout_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

/// Unix seconds → (year, month, day) in UTC (civil-from-days).
fn utc_date(secs: i64) -> (i64, u32, u32) {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn unix_now() -> (i64, u128) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (d.as_secs() as i64, d.as_millis())
}

fn assert_error(result: Result<Value, Value>, code: i64, message: &str) {
    let error = result.expect_err("expected an error");
    assert_eq!(error["code"], code, "{error}");
    assert_eq!(error["message"], message, "{error}");
}

fn assert_error_contains(result: Result<Value, Value>, code: i64, part: &str) {
    let error = result.expect_err("expected an error");
    assert_eq!(error["code"], code, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(part), "{message:?} lacks {part:?}");
}

// ---- thread/start ---------------------------------------------------------------------------

#[test]
fn start_returns_the_thread_then_announces_it() {
    let mock = MockServer::start();
    let mut server = server_for(&mock);
    let cwd = TempDir::new("cwd");
    let (before_s, before_ms) = unix_now();
    let id = server.request("thread/start", json!({"cwd": cwd.path()}));
    let response = server.read_message(DEFAULT_TIMEOUT).expect("response");
    // `mock-model` is not in the catalog: one warning, right after the answer.
    let warning = server.read_message(DEFAULT_TIMEOUT).expect("warning");
    let started = server
        .read_message(DEFAULT_TIMEOUT)
        .expect("thread/started");
    let (after_s, after_ms) = unix_now();
    assert_eq!(response["id"], id, "the response comes first: {response}");
    assert_eq!(warning["method"], "warning");
    assert_eq!(
        warning["params"]["threadId"],
        response["result"]["thread"]["id"]
    );
    assert!(
        warning["params"]["message"]
            .as_str()
            .unwrap()
            .contains("`mock-model`")
    );
    assert_eq!(started["method"], "thread/started");
    let result = &response["result"];
    let thread = &result["thread"];
    assert_eq!(started["params"]["thread"], *thread);

    // UUID v7 whose timestamp is now.
    let thread_id = thread["id"].as_str().unwrap();
    let hex: String = thread_id.split('-').collect();
    assert_eq!(
        thread_id.split('-').map(str::len).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert_eq!(&hex[12..13], "7", "{thread_id}");
    assert!(matches!(&hex[16..17], "8" | "9" | "a" | "b"), "{thread_id}");
    let ms = u128::from_str_radix(&hex[..12], 16).unwrap();
    assert!(before_ms <= ms && ms <= after_ms, "{thread_id}");

    let created = thread["createdAt"].as_i64().unwrap();
    assert!(
        before_s <= created && created <= after_s,
        "createdAt {created} is not unix seconds"
    );
    assert_eq!(thread["updatedAt"], created);
    assert_eq!(thread["status"], json!({"type": "idle"}));
    assert_eq!(thread["ephemeral"], false);
    assert_eq!(thread["preview"], "");
    assert_eq!(thread["name"], Value::Null);
    assert_eq!(thread["turns"], json!([]));
    assert_eq!(thread["forkedFromId"], Value::Null);
    assert_eq!(thread["model"], "mock-model");
    assert_eq!(thread["modelProvider"], "mock");
    assert_eq!(thread["cwd"], cwd.path().to_str().unwrap());
    assert_eq!(thread["originator"], "codex_lite_tests");
    // What the reference reports (and records) for threads started through its app-server.
    assert_eq!(thread["source"], "vscode");

    assert_eq!(result["model"], "mock-model");
    assert_eq!(result["modelProvider"], "mock");
    assert_eq!(result["cwd"], cwd.path().to_str().unwrap());
    assert_eq!(result["approvalPolicy"], "on-request");
    assert_eq!(result["sandbox"], json!({"type": "readOnly"}));
    assert_eq!(result["reasoningEffort"], Value::Null);

    // The rollout: CODEX_HOME/sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<id>.jsonl.
    let path = PathBuf::from(thread["path"].as_str().unwrap());
    let (y, m, d) = utc_date(created);
    let dir = server
        .codex_home
        .join("sessions")
        .join(format!("{y:04}"))
        .join(format!("{m:02}"))
        .join(format!("{d:02}"));
    assert_eq!(path.parent().unwrap(), dir);
    let name = path.file_name().unwrap().to_str().unwrap();
    let stamp = name
        .strip_prefix(&format!("rollout-{y:04}-{m:02}-{d:02}T"))
        .and_then(|rest| rest.strip_suffix(&format!("-{thread_id}.jsonl")))
        .unwrap_or_else(|| panic!("bad rollout name {name}"));
    let secs = created.rem_euclid(86_400);
    assert_eq!(
        stamp,
        format!("{:02}-{:02}-{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    );
    let lines = rollout_lines(&path);
    assert_eq!(lines.len(), 1, "only the metadata so far: {lines:?}");
    assert_eq!(lines[0]["type"], "session_meta");
    assert_eq!(lines[0]["payload"]["id"], thread_id);
    assert_eq!(lines[0]["payload"]["cwd"], cwd.path().to_str().unwrap());
    assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn start_applies_overrides_and_the_config_map() {
    let mock = MockServer::start();
    let mut server = server_for(&mock);
    let cwd = TempDir::new("cwd");

    let direct = server
        .call(
            "thread/start",
            json!({"cwd": cwd.path(), "model": "other-model", "approvalPolicy": "never",
                   "sandbox": "danger-full-access", "developerInstructions": "Be terse."}),
        )
        .unwrap();
    server.read_until("thread/started");
    assert_eq!(direct["model"], "other-model");
    assert_eq!(direct["thread"]["model"], "other-model");
    assert_eq!(direct["approvalPolicy"], "never");
    assert_eq!(direct["sandbox"], json!({"type": "dangerFullAccess"}));
    assert_eq!(direct["cwd"], cwd.path().to_str().unwrap());

    let via_config = server
        .call(
            "thread/start",
            json!({"cwd": cwd.path(), "sandbox": "workspace-write", "config": {
                "model": "config-model",
                "approval_policy": "untrusted",
                "sandbox_workspace_write": {"network_access": true, "writable_roots": ["/opt/extra"]},
            }}),
        )
        .unwrap();
    server.read_until("thread/started");
    assert_eq!(via_config["model"], "config-model");
    assert_eq!(via_config["approvalPolicy"], "untrusted");
    assert_eq!(
        via_config["sandbox"],
        json!({"type": "workspaceWrite", "writableRoots": ["/opt/extra"], "networkAccess": true,
               "excludeTmpdirEnvVar": false, "excludeSlashTmp": false})
    );

    // The overrides are what the turns run with.
    for (result, reply) in [(&direct, "one"), (&via_config, "two")] {
        let thread_id = result["thread"]["id"].as_str().unwrap();
        run_turn(&mut server, &mock, thread_id, "hi", reply);
    }
    let requests = model_requests(&mock);
    assert_eq!(requests[0]["model"], "other-model");
    let conversation0 = conversation(&requests[0]);
    assert!(
        conversation0[0].1.contains("Be terse."),
        "{conversation0:?}"
    );
    assert!(
        conversation0[1]
            .1
            .contains("<approval_policy>never</approval_policy>")
    );
    assert!(
        conversation0[1]
            .1
            .contains("<sandbox_mode>danger-full-access</sandbox_mode>")
    );
    assert_eq!(requests[1]["model"], "config-model");
    let conversation1 = conversation(&requests[1]);
    assert!(
        conversation1[1]
            .1
            .contains("<approval_policy>untrusted</approval_policy>")
    );
    assert!(
        conversation1[1]
            .1
            .contains("<sandbox_mode>workspace-write</sandbox_mode>")
    );
    assert!(
        conversation1[1]
            .1
            .contains("<network_access>enabled</network_access>")
    );
}

#[test]
fn ephemeral_thread_writes_no_file() {
    let mock = MockServer::start();
    let mut server = server_for(&mock);
    let result = server
        .call("thread/start", json!({"ephemeral": true}))
        .unwrap();
    let (started, _) = server.read_until("thread/started");
    let thread = &result["thread"];
    assert_eq!(thread["ephemeral"], true);
    assert_eq!(thread["path"], Value::Null);
    assert_eq!(started["params"]["thread"]["path"], Value::Null);
    let thread_id = thread["id"].as_str().unwrap().to_string();
    run_turn(&mut server, &mock, &thread_id, "keep this in memory", "ok");

    let home = server.codex_home.clone();
    assert_eq!(rollout_files(&home.join("sessions")), Vec::<PathBuf>::new());
    assert_eq!(ids(&list(&mut server, json!({}))), Vec::<String>::new());
    // Still readable while loaded, from memory.
    let read = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    assert_eq!(read["thread"]["preview"], "keep this in memory");
    assert_eq!(read["thread"]["turns"].as_array().unwrap().len(), 1);
    assert_error(
        server.call("thread/archive", json!({"threadId": thread_id})),
        -32600,
        &format!("thread {thread_id} is ephemeral and has nothing to archive"),
    );
}

#[test]
fn start_rejects_bad_cwd_approval_policy_and_provider() {
    let mock = MockServer::start();
    let mut server = server_for(&mock);
    let dir = TempDir::new("cwd");
    let missing = dir.path().join("missing");
    assert_error_contains(
        server.call("thread/start", json!({"cwd": missing})),
        -32600,
        &format!("invalid cwd {}", missing.display()),
    );
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    assert_error(
        server.call("thread/start", json!({"cwd": file})),
        -32600,
        &format!("invalid cwd {}: not a directory", file.display()),
    );
    assert_error(
        server.call("thread/start", json!({"approvalPolicy": "sometimes"})),
        -32602,
        "Invalid params: unknown approvalPolicy `sometimes`",
    );
    assert_error_contains(
        server.call("thread/start", json!({"modelProvider": "nope"})),
        -32602,
        "model_provider `nope` is not defined in model_providers",
    );
    assert_error_contains(
        server.call("thread/start", json!({"sandbox": "wide-open"})),
        -32602,
        "Invalid params",
    );
    // Nothing was created.
    let loaded = server.call("thread/loaded/list", json!({})).unwrap();
    assert_eq!(loaded["data"], json!([]));
    assert_eq!(
        rollout_files(&server.codex_home.join("sessions")),
        Vec::<PathBuf>::new()
    );
}

// ---- after a restart: list, read, resume ----------------------------------------------------

#[test]
fn list_after_restart_is_newest_first_and_not_loaded() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let cwd = TempDir::new("cwd");
    let mut server = server_in(&mock, home.path());
    let mut created = Vec::new();
    for text in ["first thread", "second thread", "third thread"] {
        let id = start_thread(&mut server, json!({"cwd": cwd.path()}));
        run_turn(&mut server, &mock, &id, text, "ok");
        run_turn(&mut server, &mock, &id, "a later message", "ok");
        created.push(id);
    }
    let untouched = start_thread(&mut server, json!({"cwd": cwd.path()}));
    drop(server);

    let mut server = server_in(&mock, home.path());
    let result = list(&mut server, json!({}));
    let mut newest_first = created.clone();
    newest_first.push(untouched.clone());
    newest_first.reverse();
    assert_eq!(ids(&result), newest_first);
    assert_eq!(result["nextCursor"], Value::Null);
    let data = result["data"].as_array().unwrap();
    let previews: Vec<&str> = data
        .iter()
        .map(|t| t["preview"].as_str().unwrap())
        .collect();
    assert_eq!(
        previews,
        ["", "third thread", "second thread", "first thread"]
    );
    for thread in data {
        assert_eq!(thread["status"], json!({"type": "notLoaded"}));
        assert_eq!(thread["turns"], json!([]));
        assert_eq!(thread["cwd"], cwd.path().to_str().unwrap());
        assert_eq!(thread["modelProvider"], "mock");
        assert_eq!(thread["model"], "mock-model");
        assert_eq!(thread["ephemeral"], false);
        let path = Path::new(thread["path"].as_str().unwrap());
        assert!(path.starts_with(home.path().join("sessions")) && path.is_file());
        assert!(thread["updatedAt"].as_i64().unwrap() >= thread["createdAt"].as_i64().unwrap());
    }
    assert_eq!(
        server.call("thread/loaded/list", json!({})).unwrap()["data"],
        json!([]),
        "listing loads nothing"
    );
}

#[test]
fn list_pages_cover_every_thread_once() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    // Many, sent without waiting: several are created within the same millisecond.
    let requests: Vec<i64> = (0..12)
        .map(|_| server.request("thread/start", json!({})))
        .collect();
    let mut created: Vec<String> = requests
        .iter()
        .map(|id| {
            let response = server.read_response(&json!(id));
            response["result"]["thread"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    drop(server);
    created.reverse();

    let mut server = server_in(&mock, home.path());
    for limit in [1, 2, 5, 12, 20] {
        let mut seen = Vec::new();
        let mut cursor = Value::Null;
        let mut pages = 0;
        loop {
            let page = list(&mut server, json!({"limit": limit, "cursor": cursor}));
            pages += 1;
            assert!(pages <= created.len(), "paging does not end");
            let page_ids = ids(&page);
            assert!(page_ids.len() <= limit, "page larger than {limit}");
            seen.extend(page_ids);
            cursor = page["nextCursor"].clone();
            if cursor.is_null() {
                break;
            }
        }
        assert_eq!(seen, created, "limit {limit}");
        assert_eq!(pages, created.len().div_ceil(limit), "limit {limit}");
    }
    // Oldest first on request, with the same paging.
    let first = list(&mut server, json!({"limit": 7, "sortDirection": "asc"}));
    let second = list(
        &mut server,
        json!({"limit": 7, "sortDirection": "asc", "cursor": first["nextCursor"]}),
    );
    let mut ascending = ids(&first);
    ascending.extend(ids(&second));
    created.reverse();
    assert_eq!(ascending, created);
    assert_eq!(second["nextCursor"], Value::Null);
}

#[test]
fn list_filters_by_search_term_and_cwd() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let (a, b) = (TempDir::new("cwd-a"), TempDir::new("cwd-b"));
    let mut server = server_in(&mock, home.path());
    let apples = start_thread(&mut server, json!({"cwd": a.path()}));
    run_turn(&mut server, &mock, &apples, "Tell me about Apples", "ok");
    let pears = start_thread(&mut server, json!({"cwd": b.path()}));
    run_turn(&mut server, &mock, &pears, "tell me about pears", "ok");
    let named = start_thread(&mut server, json!({"cwd": b.path()}));
    run_turn(&mut server, &mock, &named, "something else", "ok");
    server
        .call(
            "thread/name/set",
            json!({"threadId": named, "name": "Apple pie plans"}),
        )
        .unwrap();
    drop(server);

    let mut server = server_in(&mock, home.path());
    let search = |server: &mut AppServer, params: Value| ids(&list(server, params));
    assert_eq!(
        search(&mut server, json!({"searchTerm": "apple"})),
        [named.clone(), apples.clone()]
    );
    assert_eq!(
        search(&mut server, json!({"searchTerm": "PEARS"})),
        [pears.as_str()]
    );
    assert_eq!(
        search(&mut server, json!({"searchTerm": "nothing like it"})),
        Vec::<String>::new()
    );
    assert_eq!(
        search(&mut server, json!({"cwd": a.path()})),
        [apples.as_str()]
    );
    assert_eq!(
        search(&mut server, json!({"cwd": [b.path()]})),
        [named.clone(), pears.clone()]
    );
    assert_eq!(
        search(
            &mut server,
            json!({"cwd": [a.path(), b.path()], "searchTerm": "about"})
        ),
        [pears.clone(), apples.clone()]
    );
    assert_eq!(
        search(&mut server, json!({"cwd": b.path(), "searchTerm": "apple"})),
        [named.as_str()]
    );
}

#[test]
fn list_sorts_by_updated_at() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    let older = start_thread(&mut server, json!({}));
    run_turn(&mut server, &mock, &older, "older", "ok");
    let newer = start_thread(&mut server, json!({}));
    run_turn(&mut server, &mock, &newer, "newer", "ok");
    drop(server);

    let mut server = server_in(&mock, home.path());
    server
        .call("thread/resume", json!({"threadId": older}))
        .unwrap();
    run_turn(&mut server, &mock, &older, "older again", "ok");
    drop(server);

    let mut server = server_in(&mock, home.path());
    assert_eq!(
        ids(&list(&mut server, json!({}))),
        [newer.clone(), older.clone()]
    );
    let by_update = list(&mut server, json!({"sortKey": "updated_at"}));
    assert_eq!(ids(&by_update), [older.clone(), newer.clone()]);
    let data = by_update["data"].as_array().unwrap();
    assert!(data[0]["updatedAt"].as_i64() >= data[1]["updatedAt"].as_i64());
    let page = list(&mut server, json!({"sortKey": "updated_at", "limit": 1}));
    assert_eq!(ids(&page), [older.as_str()]);
    let page = list(
        &mut server,
        json!({"sortKey": "updated_at", "limit": 1, "cursor": page["nextCursor"]}),
    );
    assert_eq!(ids(&page), [newer.as_str()]);
    assert_eq!(page["nextCursor"], Value::Null);
}

#[test]
fn read_after_restart_rebuilds_turns() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(&mut server, json!({}));
    let t1 = run_turn(
        &mut server,
        &mock,
        &thread_id,
        "first question",
        "first answer",
    );
    let t2 = run_turn(
        &mut server,
        &mock,
        &thread_id,
        "second question",
        "second answer",
    );
    let live = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    drop(server);

    let mut server = server_in(&mock, home.path());
    let bare = server
        .call("thread/read", json!({"threadId": thread_id}))
        .unwrap();
    let thread = &bare["thread"];
    assert_eq!(thread["id"], thread_id.as_str());
    assert_eq!(thread["status"], json!({"type": "notLoaded"}));
    assert_eq!(thread["preview"], "first question");
    assert_eq!(thread["turns"], json!([]));

    let full = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    let turns = full["thread"]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["id"], t1.as_str());
    assert_eq!(turns[1]["id"], t2.as_str());
    for (turn, (question, answer)) in turns.iter().zip([
        ("first question", "first answer"),
        ("second question", "second answer"),
    ]) {
        assert_eq!(turn["status"], "completed");
        assert_eq!(turn["error"], Value::Null);
        let items = turn["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0]["type"], "userMessage");
        assert_eq!(
            items[0]["content"],
            json!([{"type": "text", "text": question, "text_elements": []}])
        );
        assert_eq!(items[1]["type"], "agentMessage");
        assert_eq!(items[1]["text"], answer);
    }
    assert_eq!(
        full["thread"]["turns"], live["thread"]["turns"],
        "the same turns as before"
    );
    assert_eq!(
        server.call("thread/loaded/list", json!({})).unwrap()["data"],
        json!([]),
        "reading loads nothing"
    );

    let unknown = "019a0000-0000-7000-8000-000000000000";
    assert_error(
        server.call("thread/read", json!({"threadId": unknown})),
        -32600,
        &format!("thread not found: {unknown}"),
    );
    assert_error(
        server.call("thread/read", json!({"threadId": "not-a-uuid"})),
        -32600,
        "thread not found: not-a-uuid",
    );
}

#[test]
fn resume_sends_the_whole_history_with_the_next_turn() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let cwd = TempDir::new("cwd");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(
        &mut server,
        json!({"cwd": cwd.path(), "approvalPolicy": "never"}),
    );
    let t1 = run_turn(
        &mut server,
        &mock,
        &thread_id,
        "remember the number 7",
        "Noted: 7",
    );
    drop(server);

    let mut server = server_in(&mock, home.path());
    let resumed = server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    let thread = &resumed["thread"];
    assert_eq!(thread["id"], thread_id.as_str());
    assert_eq!(thread["status"], json!({"type": "idle"}));
    assert_eq!(thread["preview"], "remember the number 7");
    assert_eq!(thread["turns"].as_array().unwrap().len(), 1);
    assert_eq!(thread["turns"][0]["id"], t1.as_str());
    assert_eq!(resumed["cwd"], cwd.path().to_str().unwrap());
    assert_eq!(
        resumed["approvalPolicy"], "never",
        "the thread's settings survive"
    );
    assert_eq!(resumed["model"], "mock-model");
    assert_eq!(resumed["modelProvider"], "mock");
    assert_eq!(
        server.call("thread/loaded/list", json!({})).unwrap()["data"],
        json!([thread_id])
    );
    let read = server
        .call("thread/read", json!({"threadId": thread_id}))
        .unwrap();
    assert_eq!(read["thread"]["status"], json!({"type": "idle"}));

    run_turn(&mut server, &mock, &thread_id, "what was it?", "It was 7.");
    let requests = model_requests(&mock);
    assert_eq!(requests.len(), 2);
    let first = requests[0]["input"].as_array().unwrap();
    let second = requests[1]["input"].as_array().unwrap();
    assert_eq!(
        second[..first.len()],
        first[..],
        "the earlier request's input is sent again unchanged"
    );
    let (said_so_far, contexts) = dialogue(&requests[1]);
    assert_eq!(
        said_so_far,
        [
            said("user", "remember the number 7"),
            said("assistant", "Noted: 7"),
            said("user", "what was it?"),
        ]
    );
    assert_eq!(contexts, 2, "the context messages are not sent twice");
    assert_eq!(requests[1]["prompt_cache_key"], thread_id.as_str());

    // Resuming a loaded thread answers with its live state.
    let again = server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    assert_eq!(again["thread"]["turns"].as_array().unwrap().len(), 2);

    let unknown = "019a0000-0000-7000-8000-000000000000";
    assert_error(
        server.call("thread/resume", json!({"threadId": unknown})),
        -32600,
        &format!("no rollout found for thread id {unknown}"),
    );
}

#[test]
fn resume_applies_overrides_and_tells_the_model() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(&mut server, json!({"approvalPolicy": "never"}));
    run_turn(&mut server, &mock, &thread_id, "one", "uno");
    drop(server);

    let mut server = server_in(&mock, home.path());
    let resumed = server
        .call(
            "thread/resume",
            json!({"threadId": thread_id, "model": "resumed-model", "approvalPolicy": "untrusted",
                   "sandbox": "workspace-write"}),
        )
        .unwrap();
    assert_eq!(resumed["model"], "resumed-model");
    assert_eq!(resumed["approvalPolicy"], "untrusted");
    assert_eq!(resumed["sandbox"]["type"], "workspaceWrite");
    run_turn(&mut server, &mock, &thread_id, "two", "dos");
    let request = &model_requests(&mock)[1];
    assert_eq!(request["model"], "resumed-model");
    let conversation = conversation(request);
    let environments: Vec<&String> = conversation
        .iter()
        .map(|(_, text)| text)
        .filter(|text| text.contains("<environment_context>"))
        .collect();
    assert_eq!(environments.len(), 2, "the changed settings are sent again");
    assert!(environments[0].contains("<approval_policy>never</approval_policy>"));
    assert!(environments[1].contains("<approval_policy>untrusted</approval_policy>"));
    assert!(environments[1].contains("<sandbox_mode>workspace-write</sandbox_mode>"));
    let (said_so_far, _) = dialogue(request);
    assert_eq!(
        said_so_far,
        [
            said("user", "one"),
            said("assistant", "uno"),
            said("user", "two")
        ]
    );
}

#[test]
fn torn_last_line_is_skipped() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(&mut server, json!({}));
    run_turn(&mut server, &mock, &thread_id, "before the crash", "saved");
    let path = rollout_path(&mut server, &thread_id);
    drop(server);
    // What a kill -9 in the middle of a write leaves behind.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(br#"{"timestamp":"2026-01-01T00:00:00.000Z","type":"response_item","payload":{"type":"mess"#)
        .unwrap();

    let mut server = server_in(&mock, home.path());
    let listed = list(&mut server, json!({}));
    assert_eq!(ids(&listed), [thread_id.as_str()]);
    assert_eq!(listed["data"][0]["preview"], "before the crash");
    let read = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    assert_eq!(read["thread"]["turns"].as_array().unwrap().len(), 1);
    server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    run_turn(
        &mut server,
        &mock,
        &thread_id,
        "after the crash",
        "still here",
    );
    let (said_so_far, _) = dialogue(&model_requests(&mock)[1]);
    assert_eq!(
        said_so_far,
        [
            said("user", "before the crash"),
            said("assistant", "saved"),
            said("user", "after the crash"),
        ]
    );
    drop(server);

    // What was appended after the torn line is intact.
    let mut server = server_in(&mock, home.path());
    let read = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    let turns = read["thread"]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2, "{turns:?}");
    assert_eq!(turns[1]["status"], "completed");
    assert_eq!(
        turns[1]["items"][0]["content"][0]["text"],
        "after the crash"
    );
    assert_eq!(turns[1]["items"][1]["text"], "still here");
}

#[test]
fn a_turn_cut_by_kill_9_reads_back_as_interrupted() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(&mut server, json!({}));
    mock.push(sse_then_stall(vec![
        ev_created("resp_1"),
        ev_message_added("msg_1"),
        ev_text_delta("msg_1", "half an ans"),
    ]));
    let turn_id = start_turn(&mut server, &thread_id, "survive this");
    server.read_until("item/agentMessage/delta");
    let status = std::process::Command::new("kill")
        .args(["-9", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(server.wait_exit(DEFAULT_TIMEOUT).is_some());
    drop(server);

    let mut server = server_in(&mock, home.path());
    let listed = list(&mut server, json!({}));
    assert_eq!(listed["data"][0]["preview"], "survive this");
    let read = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    let turns = read["thread"]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0]["id"], turn_id.as_str());
    assert_eq!(turns[0]["status"], "interrupted");
    let items = turns[0]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the completed user message: {items:?}");
    assert_eq!(items[0]["content"][0]["text"], "survive this");

    server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    run_turn(&mut server, &mock, &thread_id, "go on", "done");
    let (said_so_far, contexts) = dialogue(&model_requests(&mock)[1]);
    assert_eq!(
        said_so_far,
        [said("user", "survive this"), said("user", "go on")]
    );
    assert_eq!(contexts, 2);
}

#[test]
fn a_tool_call_cut_by_kill_9_gets_an_output_on_resume() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let cwd = TempDir::new("cwd");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(
        &mut server,
        json!({"cwd": cwd.path(), "approvalPolicy": "untrusted"}),
    );
    mock.push(sse(vec![
        ev_created("resp_1"),
        ev_function_call(
            "call_1",
            "shell",
            &json!({"command": ["touch", "made-by-the-model"]}),
        ),
        ev_completed("resp_1"),
    ]));
    start_turn(&mut server, &thread_id, "make a file");
    // The call is in the history; the turn waits for the user's decision when the server dies.
    server.read_until("item/commandExecution/requestApproval");
    let status = std::process::Command::new("kill")
        .args(["-9", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(server.wait_exit(DEFAULT_TIMEOUT).is_some());
    drop(server);

    let mut server = server_in(&mock, home.path());
    server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    run_turn(&mut server, &mock, &thread_id, "never mind", "ok");
    let request = &model_requests(&mock)[1];
    let input = request["input"].as_array().unwrap();
    let call = input
        .iter()
        .position(|i| i["type"] == "function_call")
        .expect("the call is in the history");
    assert_eq!(input[call]["call_id"], "call_1");
    let outputs: Vec<&Value> = input
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .collect();
    assert_eq!(
        outputs.len(),
        1,
        "every call has exactly one output: {input:?}"
    );
    assert_eq!(outputs[0]["call_id"], "call_1");
    assert!(
        input
            .iter()
            .position(|i| i["type"] == "function_call_output")
            > Some(call),
        "the output follows its call"
    );
    assert_eq!(
        conversation(request).last().unwrap(),
        &said("user", "never mind")
    );
    assert!(!cwd.path().join("made-by-the-model").exists());
}

// ---- fork -----------------------------------------------------------------------------------

#[test]
fn fork_copies_the_history_and_leaves_the_source_alone() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    let source = start_thread(&mut server, json!({}));
    let t1 = run_turn(&mut server, &mock, &source, "one", "uno");
    let t2 = run_turn(&mut server, &mock, &source, "two", "dos");
    let source_path = rollout_path(&mut server, &source);
    let source_bytes = std::fs::read(&source_path).unwrap();

    let request = server.request("thread/fork", json!({"threadId": source}));
    let response = server.read_message(DEFAULT_TIMEOUT).unwrap();
    assert_eq!(response["id"], request, "{response}");
    let (started, _) = server.read_until("thread/started");
    let fork = &response["result"]["thread"];
    let fork_id = fork["id"].as_str().unwrap().to_string();
    assert_ne!(fork_id, source);
    assert_eq!(started["params"]["thread"]["id"], fork_id.as_str());
    assert_eq!(fork["forkedFromId"], source.as_str());
    assert_eq!(fork["status"], json!({"type": "idle"}));
    assert_eq!(fork["preview"], "one");
    let turn_ids: Vec<&str> = fork["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(turn_ids, [t1.as_str(), t2.as_str()]);
    let fork_path = fork["path"].as_str().unwrap();
    assert_ne!(fork_path, source_path);
    assert!(fork_path.ends_with(&format!("-{fork_id}.jsonl")));

    run_turn(&mut server, &mock, &fork_id, "three", "tres");
    let requests = model_requests(&mock);
    assert_eq!(requests[2]["prompt_cache_key"], fork_id.as_str());
    let (fork_dialogue, contexts) = dialogue(&requests[2]);
    assert_eq!(
        fork_dialogue,
        [
            said("user", "one"),
            said("assistant", "uno"),
            said("user", "two"),
            said("assistant", "dos"),
            said("user", "three"),
        ]
    );
    assert_eq!(contexts, 2, "the context messages are not sent twice");

    // The source did not change, on disk or in memory.
    assert_eq!(std::fs::read(&source_path).unwrap(), source_bytes);
    let source_read = server
        .call(
            "thread/read",
            json!({"threadId": source, "includeTurns": true}),
        )
        .unwrap();
    assert_eq!(source_read["thread"]["turns"].as_array().unwrap().len(), 2);
    run_turn(&mut server, &mock, &source, "four", "cuatro");
    let (source_dialogue, _) = dialogue(&model_requests(&mock)[3]);
    assert_eq!(source_dialogue.len(), 5, "{source_dialogue:?}");
    assert_eq!(source_dialogue[4], said("user", "four"));
    drop(server);

    // The fork's rollout stands on its own.
    let mut server = server_in(&mock, home.path());
    let read = server
        .call(
            "thread/read",
            json!({"threadId": fork_id, "includeTurns": true}),
        )
        .unwrap();
    assert_eq!(read["thread"]["forkedFromId"], source.as_str());
    assert_eq!(read["thread"]["turns"].as_array().unwrap().len(), 3);
    server
        .call("thread/resume", json!({"threadId": fork_id}))
        .unwrap();
    run_turn(&mut server, &mock, &fork_id, "five", "cinco");
    let (resumed_dialogue, contexts) = dialogue(&model_requests(&mock)[4]);
    assert_eq!(resumed_dialogue.len(), 7, "{resumed_dialogue:?}");
    assert_eq!(resumed_dialogue[4], said("user", "three"));
    assert_eq!(contexts, 2, "the context messages are not sent twice");
}

#[test]
fn fork_through_last_turn_id_drops_later_turns() {
    let mock = MockServer::start();
    let mut server = server_for(&mock);
    let source = start_thread(&mut server, json!({}));
    let t1 = run_turn(&mut server, &mock, &source, "one", "uno");
    run_turn(&mut server, &mock, &source, "two", "dos");

    let result = server
        .call("thread/fork", json!({"threadId": source, "lastTurnId": t1}))
        .unwrap();
    server.read_until("thread/started");
    let fork_id = result["thread"]["id"].as_str().unwrap().to_string();
    let turns = result["thread"]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0]["id"], t1.as_str());

    run_turn(&mut server, &mock, &fork_id, "three", "tres");
    let (fork_dialogue, contexts) = dialogue(&model_requests(&mock)[2]);
    assert_eq!(
        fork_dialogue,
        [
            said("user", "one"),
            said("assistant", "uno"),
            said("user", "three")
        ]
    );
    assert_eq!(contexts, 2, "the context messages are not sent twice");

    let lines = rollout_lines(Path::new(result["thread"]["path"].as_str().unwrap()));
    assert!(
        !lines.iter().any(|l| l.to_string().contains("\"dos\"")),
        "the dropped turn is not in the fork's rollout"
    );

    let unknown = "019a0000-0000-7000-8000-000000000000";
    assert_error(
        server.call(
            "thread/fork",
            json!({"threadId": source, "lastTurnId": unknown}),
        ),
        -32600,
        &format!("turn not found: {unknown}"),
    );
    assert_error(
        server.call("thread/fork", json!({"threadId": unknown})),
        -32600,
        &format!("thread not found: {unknown}"),
    );
}

#[test]
fn fork_of_an_unloaded_thread() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    let source = start_thread(&mut server, json!({}));
    run_turn(&mut server, &mock, &source, "one", "uno");
    let source_path = rollout_path(&mut server, &source);
    drop(server);
    let source_bytes = std::fs::read(&source_path).unwrap();

    let mut server = server_in(&mock, home.path());
    let result = server
        .call("thread/fork", json!({"threadId": source}))
        .unwrap();
    server.read_until("thread/started");
    let fork_id = result["thread"]["id"].as_str().unwrap().to_string();
    assert_eq!(result["thread"]["forkedFromId"], source.as_str());
    assert_eq!(result["thread"]["turns"].as_array().unwrap().len(), 1);
    assert_eq!(
        server.call("thread/loaded/list", json!({})).unwrap()["data"],
        json!([fork_id]),
        "the source stays unloaded"
    );
    run_turn(&mut server, &mock, &fork_id, "two", "dos");
    let (fork_dialogue, contexts) = dialogue(&model_requests(&mock)[1]);
    assert_eq!(
        fork_dialogue,
        [
            said("user", "one"),
            said("assistant", "uno"),
            said("user", "two")
        ]
    );
    assert_eq!(contexts, 2, "the context messages are not sent twice");
    assert_eq!(std::fs::read(&source_path).unwrap(), source_bytes);
    let listed = list(&mut server, json!({}));
    assert_eq!(ids(&listed), [fork_id.clone(), source.clone()]);
    assert_eq!(listed["data"][1]["status"], json!({"type": "notLoaded"}));
}

#[test]
fn fork_while_a_turn_runs_leaves_that_turn_out() {
    let mock = MockServer::start();
    let mut server = server_for(&mock);
    let source = start_thread(&mut server, json!({}));
    let t1 = run_turn(&mut server, &mock, &source, "one", "uno");
    mock.push(sse_then_stall(vec![
        ev_created("resp_stall"),
        ev_message_added("msg_stall"),
    ]));
    let running = start_turn(&mut server, &source, "two");
    server.read_until("item/started"); // the user message
    server.read_until("item/started"); // the agent message: the model is streaming

    assert_error(
        server.call(
            "thread/fork",
            json!({"threadId": source, "lastTurnId": running}),
        ),
        -32600,
        &format!("turn {running} is still in progress"),
    );
    let result = server
        .call("thread/fork", json!({"threadId": source}))
        .unwrap();
    let (started, _) = server.read_until("thread/started");
    let fork_id = result["thread"]["id"].as_str().unwrap().to_string();
    assert_eq!(started["params"]["thread"]["id"], fork_id.as_str());
    let turns = result["thread"]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0]["id"], t1.as_str());
    assert_eq!(result["thread"]["status"], json!({"type": "idle"}));

    run_turn(&mut server, &mock, &fork_id, "three", "tres");
    let (fork_dialogue, contexts) = dialogue(&model_requests(&mock)[2]);
    assert_eq!(
        fork_dialogue,
        [
            said("user", "one"),
            said("assistant", "uno"),
            said("user", "three")
        ]
    );
    assert_eq!(contexts, 2);

    let messages = interrupt_turn(&mut server, &source, &running);
    let completed = &messages.last().unwrap()["params"];
    assert_eq!(completed["threadId"], source.as_str());
    assert_eq!(completed["turn"]["status"], "interrupted");
}

// ---- archive / unarchive --------------------------------------------------------------------

#[test]
fn archive_moves_the_rollout_and_unarchive_brings_it_back() {
    let mock = MockServer::start();
    let mut server = server_for(&mock);
    let home = server.codex_home.clone();
    let thread_id = start_thread(&mut server, json!({}));
    run_turn(&mut server, &mock, &thread_id, "keep me", "kept");
    let other = start_thread(&mut server, json!({}));
    let path = PathBuf::from(
        server
            .call("thread/read", json!({"threadId": thread_id}))
            .unwrap()["thread"]["path"]
            .as_str()
            .unwrap(),
    );
    let bytes = std::fs::read(&path).unwrap();

    let request = server.request("thread/archive", json!({"threadId": thread_id}));
    let response = server.read_message(DEFAULT_TIMEOUT).unwrap();
    assert_eq!(response, json!({"id": request, "result": {}}));
    let (archived, _) = server.read_until("thread/archived");
    assert_eq!(archived["params"], json!({"threadId": thread_id}));
    let moved = home
        .join("archived_sessions")
        .join(path.file_name().unwrap());
    assert!(!path.exists(), "the rollout left sessions/");
    assert_eq!(std::fs::read(&moved).unwrap(), bytes);

    assert_eq!(ids(&list(&mut server, json!({}))), [other.as_str()]);
    let archived_list = list(&mut server, json!({"archived": true}));
    assert_eq!(ids(&archived_list), [thread_id.as_str()]);
    let entry = &archived_list["data"][0];
    assert_eq!(entry["status"], json!({"type": "notLoaded"}));
    assert_eq!(entry["preview"], "keep me");
    assert_eq!(entry["path"], moved.to_str().unwrap());
    assert_eq!(
        server.call("thread/loaded/list", json!({})).unwrap()["data"],
        json!([other]),
        "archiving unloads the thread"
    );
    assert_error(
        server.call(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "hi"}]}),
        ),
        -32600,
        &format!("thread not found: {thread_id}"),
    );
    assert_error(
        server.call("thread/archive", json!({"threadId": thread_id})),
        -32600,
        &format!("thread {thread_id} is already archived"),
    );

    let request = server.request("thread/unarchive", json!({"threadId": thread_id}));
    let response = server.read_message(DEFAULT_TIMEOUT).unwrap();
    assert_eq!(response["id"], request, "{response}");
    let (unarchived, _) = server.read_until("thread/unarchived");
    assert_eq!(unarchived["params"], json!({"threadId": thread_id}));
    let thread = &response["result"]["thread"];
    assert_eq!(thread["id"], thread_id.as_str());
    assert_eq!(thread["path"], path.to_str().unwrap());
    assert_eq!(thread["preview"], "keep me");
    assert_eq!(thread["status"], json!({"type": "notLoaded"}));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(!moved.exists());
    assert_eq!(
        ids(&list(&mut server, json!({}))),
        [other.clone(), thread_id.clone()]
    );
    assert_eq!(
        ids(&list(&mut server, json!({"archived": true}))),
        Vec::<String>::new()
    );
    assert_error(
        server.call("thread/unarchive", json!({"threadId": thread_id})),
        -32600,
        &format!("thread {thread_id} is not archived"),
    );

    // It can be resumed and continued after all that.
    server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    run_turn(&mut server, &mock, &thread_id, "back again", "welcome back");
    let (back, _) = dialogue(&model_requests(&mock)[1]);
    assert_eq!(
        back[..2],
        [said("user", "keep me"), said("assistant", "kept")]
    );

    let unknown = "019a0000-0000-7000-8000-000000000000";
    for method in ["thread/archive", "thread/unarchive"] {
        assert_error(
            server.call(method, json!({"threadId": unknown})),
            -32600,
            &format!("thread not found: {unknown}"),
        );
    }
}

#[test]
fn archive_while_a_turn_runs_is_refused() {
    let mock = MockServer::start();
    mock.push(sse_then_stall(vec![
        ev_created("resp_1"),
        ev_message_added("msg_1"),
    ]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(&mut server, json!({}));
    let turn_id = start_turn(&mut server, &thread_id, "take your time");
    server.read_until("item/started"); // the user message
    server.read_until("item/started"); // the agent message: the model is streaming
    assert_error(
        server.call("thread/archive", json!({"threadId": thread_id})),
        -32600,
        &format!("cannot archive thread {thread_id} while a turn is running"),
    );
    interrupt_turn(&mut server, &thread_id, &turn_id);
    server
        .call("thread/archive", json!({"threadId": thread_id}))
        .unwrap();
    server.read_until("thread/archived");
}

// ---- names ----------------------------------------------------------------------------------

#[test]
fn name_set_notifies_and_persists() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(&mut server, json!({}));
    let request = server.request(
        "thread/name/set",
        json!({"threadId": thread_id, "name": "  Release plan  "}),
    );
    let response = server.read_message(DEFAULT_TIMEOUT).unwrap();
    assert_eq!(response, json!({"id": request, "result": {}}));
    let (updated, _) = server.read_until("thread/name/updated");
    assert_eq!(
        updated["params"],
        json!({"threadId": thread_id, "threadName": "Release plan"})
    );
    let read = server
        .call("thread/read", json!({"threadId": thread_id}))
        .unwrap();
    assert_eq!(read["thread"]["name"], "Release plan");
    assert_error(
        server.call(
            "thread/name/set",
            json!({"threadId": thread_id, "name": " "}),
        ),
        -32602,
        "Invalid params: name must not be empty",
    );
    let unknown = "019a0000-0000-7000-8000-000000000000";
    assert_error(
        server.call("thread/name/set", json!({"threadId": unknown, "name": "x"})),
        -32600,
        &format!("thread not found: {unknown}"),
    );
    drop(server);

    let mut server = server_in(&mock, home.path());
    assert_eq!(
        list(&mut server, json!({}))["data"][0]["name"],
        "Release plan"
    );
    let read = server
        .call("thread/read", json!({"threadId": thread_id}))
        .unwrap();
    assert_eq!(read["thread"]["name"], "Release plan");
    // Renaming an unloaded thread works too, and the last name wins.
    server
        .call(
            "thread/name/set",
            json!({"threadId": thread_id, "name": "Shipped"}),
        )
        .unwrap();
    let (updated, _) = server.read_until("thread/name/updated");
    assert_eq!(updated["params"]["threadName"], "Shipped");
    drop(server);

    let mut server = server_in(&mock, home.path());
    let resumed = server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    assert_eq!(resumed["thread"]["name"], "Shipped");
    assert_eq!(list(&mut server, json!({}))["data"][0]["name"], "Shipped");
}

// ---- loaded list ----------------------------------------------------------------------------

#[test]
fn loaded_list_pages() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    let mut loaded: Vec<String> = (0..3)
        .map(|_| start_thread(&mut server, json!({})))
        .collect();
    loaded.sort();
    let all = server.call("thread/loaded/list", json!({})).unwrap();
    assert_eq!(all, json!({"data": loaded, "nextCursor": null}));

    let first = server
        .call("thread/loaded/list", json!({"limit": 2}))
        .unwrap();
    assert_eq!(first["data"], json!(loaded[..2]));
    assert!(first["nextCursor"].is_string());
    let second = server
        .call(
            "thread/loaded/list",
            json!({"limit": 2, "cursor": first["nextCursor"]}),
        )
        .unwrap();
    assert_eq!(second, json!({"data": loaded[2..], "nextCursor": null}));
    drop(server);

    let mut server = server_in(&mock, home.path());
    assert_eq!(
        server.call("thread/loaded/list", json!({})).unwrap(),
        json!({"data": [], "nextCursor": null})
    );
    server
        .call("thread/resume", json!({"threadId": loaded[1]}))
        .unwrap();
    assert_eq!(
        server.call("thread/loaded/list", json!({})).unwrap()["data"],
        json!([loaded[1]])
    );
}

/// The rollout file of a thread, as `thread/read` reports it.
fn rollout_path(server: &mut AppServer, thread_id: &str) -> String {
    server
        .call("thread/read", json!({"threadId": thread_id}))
        .unwrap()["thread"]["path"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn resuming_a_loaded_thread_applies_its_overrides() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = server_in(&mock, home.path());
    let thread_id = start_thread(&mut server, json!({"approvalPolicy": "untrusted"}));
    let resumed = server
        .call(
            "thread/resume",
            json!({"threadId": thread_id, "approvalPolicy": "never", "model": "other-model"}),
        )
        .unwrap();
    assert_eq!(resumed["approvalPolicy"], "never");
    assert_eq!(resumed["model"], "other-model");
    run_turn(&mut server, &mock, &thread_id, "hi", "ok");
    let body = mock.requests_to("/v1/responses")[0].json();
    assert_eq!(body["model"], "other-model");
}
