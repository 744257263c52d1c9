//! Compaction on the backend and on disk (context.md §4): remote compaction for the built-in
//! `openai` provider (`compaction_trigger` → a `compaction` item replayed as received, the Lite
//! header for Lite models), a local compaction of a Lite model (no tools, no preamble), the
//! `compacted` rollout line, resume after a local and after a remote compaction, and a `kill -9`
//! in the middle of one (the thread resumes from its last complete state).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::suite::compaction::{
    SUMMARY_PREFIX, answer, bodies, item_events, said, turn, user_words,
};
use crate::suite::turns::{finish_turn, last_turn, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// A server whose built-in `openai` provider (API key) talks to `mock`, model `model`, with
/// compaction at 1000 tokens.
fn openai_server(mock: &MockServer, model: &str) -> AppServer {
    let mut server = AppServer::builder()
        .config(format!("openai_base_url={}/v1", mock.base()))
        .config(format!("model={model}"))
        .config("model_auto_compact_token_limit=1000")
        .config("model_providers.openai.request_max_retries=0")
        .config("model_providers.openai.stream_max_retries=0")
        .spawn();
    server.initialize();
    server
        .call(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-test-key"}),
        )
        .unwrap();
    server
}

/// A reply holding the one `compaction` item of a remote compaction.
fn compaction_reply(id: &str, encrypted: &str) -> Reply {
    sse(vec![
        ev_created(id),
        ev(
            "response.output_item.done",
            json!({"output_index": 0, "item": {"type": "compaction", "id": format!("cmp_{id}"), "encrypted_content": encrypted}}),
        ),
        ev_completed_usage(id, 295, 0, 5, 0),
    ])
}

#[test]
fn the_openai_provider_compacts_remotely_and_replays_the_item() {
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 5000));
    mock.push(compaction_reply("r2", "ENC-ONE"));
    mock.push(answer("r3", "second answer", 400));
    let mut server = openai_server(&mock, "gpt-5.5");
    let thread_id = start_thread(&mut server, json!({}));
    turn(&mut server, &thread_id, "first question");
    let second = turn(&mut server, &thread_id, "second question");
    assert_eq!(item_events(&second)[0].1, "contextCompaction");

    let requests = bodies(&mock);
    assert_eq!(requests.len(), 3);
    // A normal request (tools and all) whose input ends with the trigger.
    let compaction = &requests[1];
    let input = compaction["input"].as_array().unwrap();
    assert_eq!(input.last(), Some(&json!({"type": "compaction_trigger"})));
    assert!(!compaction["tools"].as_array().unwrap().is_empty());
    assert!(
        said(compaction)
            .iter()
            .any(|(who, t)| who == "assistant" && t == "first answer")
    );
    // The new history: context, the user's words, the item as received, the new question.
    let next = requests[2]["input"].as_array().unwrap();
    let at = next
        .iter()
        .position(|i| i["type"] == "compaction")
        .expect("the compaction item is replayed");
    assert_eq!(
        next[at],
        json!({"type": "compaction", "id": "cmp_r2", "encrypted_content": "ENC-ONE"})
    );
    assert_eq!(
        user_words(&requests[2]),
        ["first question", "second question"]
    );
    assert_eq!(next[at - 1]["content"][0]["text"], "first question");
    assert_eq!(next[at + 1]["content"][0]["text"], "second question");
    assert!(!said(&requests[2]).iter().any(|(_, t)| t == "first answer"));
}

#[test]
fn a_remote_compaction_without_its_item_fails_the_turn() {
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 5000));
    mock.push(answer("r2", "not a compaction", 300));
    let mut server = openai_server(&mock, "gpt-5.5");
    let thread_id = start_thread(&mut server, json!({}));
    turn(&mut server, &thread_id, "first question");
    start_turn(&mut server, &thread_id, "second question");
    let messages = finish_turn(&mut server);
    let failed = last_turn(&messages);
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exactly one compaction output item"),
        "{failed}"
    );
}

#[test]
fn a_lite_model_compacts_with_the_lite_header() {
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 5000));
    mock.push(compaction_reply("r2", "ENC-LITE"));
    mock.push(answer("r3", "second answer", 400));
    let mut server = openai_server(&mock, "gpt-6.1-sol");
    let thread_id = start_thread(&mut server, json!({}));
    turn(&mut server, &thread_id, "first question");
    turn(&mut server, &thread_id, "second question");
    let requests = mock.requests_to("/v1/responses");
    let compaction = &requests[1];
    assert_eq!(
        compaction.header("x-openai-internal-codex-responses-lite"),
        Some("true")
    );
    let input = compaction.json()["input"].as_array().unwrap().clone();
    assert_eq!(input[0]["type"], "additional_tools");
    assert_eq!(input.last(), Some(&json!({"type": "compaction_trigger"})));
}

// ---- on disk --------------------------------------------------------------------------------

/// [`server_in_with`] compacting past 1 000 tokens.
fn server_in(mock: &MockServer, home: &Path) -> AppServer {
    server_in_with(mock, home, &["model_auto_compact_token_limit=1000"])
}

fn rollout_of(home: &Path, thread_id: &str) -> PathBuf {
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
    walk(&home.join("sessions"), &format!("{thread_id}.jsonl")).expect("rollout file")
}

fn lines_of_type(path: &Path, kind: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == kind)
        .collect()
}

#[test]
fn a_resumed_thread_continues_from_the_compacted_history() {
    let home = TempDir::new("compaction-resume");
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 5000));
    mock.push(answer("r2", "SUMMARY SAVED", 300));
    mock.push(answer("r3", "second answer", 400));
    let thread_id = {
        let mut server = server_in(&mock, home.path());
        let thread_id = start_thread(&mut server, json!({}));
        turn(&mut server, &thread_id, "first question");
        turn(&mut server, &thread_id, "second question");
        thread_id
    };
    let path = rollout_of(home.path(), &thread_id);
    let compacted = lines_of_type(&path, "compacted");
    assert_eq!(compacted.len(), 1);
    assert_eq!(compacted[0]["payload"]["message"], "SUMMARY SAVED");
    let replacement = compacted[0]["payload"]["replacement_history"]
        .as_array()
        .unwrap();
    assert!(
        replacement.last().unwrap()["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with(SUMMARY_PREFIX)
    );

    mock.push(answer("r4", "third answer", 400));
    let mut server = server_in(&mock, home.path());
    let resumed = server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    let turns = resumed["thread"]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[1]["items"][0]["type"], "contextCompaction");
    let third = turn(&mut server, &thread_id, "third question");
    assert!(
        !item_events(&third)
            .iter()
            .any(|(_, k)| k == "contextCompaction")
    );
    let request = &bodies(&mock)[3];
    let conversation = said(request);
    assert!(
        conversation
            .iter()
            .any(|(_, t)| t.ends_with("SUMMARY SAVED"))
    );
    assert!(!conversation.iter().any(|(_, t)| t == "first answer"));
    assert_eq!(
        user_words(request),
        ["first question", "second question", "third question"]
    );
    // The context is not told twice.
    let contexts = conversation
        .iter()
        .filter(|(_, t)| t.starts_with("<environment_context>"))
        .count();
    assert_eq!(contexts, 1, "{conversation:?}");
}

#[cfg(unix)]
#[test]
fn a_kill_during_a_compaction_loses_nothing() {
    let home = TempDir::new("compaction-kill");
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 5000));
    mock.push(sse_then_stall(vec![ev_created("r2")]));
    let thread_id = {
        let mut server = server_in(&mock, home.path());
        let thread_id = start_thread(&mut server, json!({}));
        turn(&mut server, &thread_id, "first question");
        start_turn(&mut server, &thread_id, "second question");
        server.take_matching("the compaction item", |m| {
            m["method"] == "item/started" && m["params"]["item"]["type"] == "contextCompaction"
        });
        mock.wait_for_requests(2);
        let pid = server.pid() as libc::pid_t;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        assert!(
            server
                .wait_exit(std::time::Duration::from_secs(10))
                .is_some()
        );
        thread_id
    };
    let path = rollout_of(home.path(), &thread_id);
    assert!(lines_of_type(&path, "compacted").is_empty());

    // The thread reads as it stood: the first turn, the second one cut short.
    mock.push(answer("r3", "SUMMARY AFTER KILL", 300));
    mock.push(answer("r4", "third answer", 400));
    let mut server = server_in(&mock, home.path());
    let resumed = server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    let statuses: Vec<&Value> = resumed["thread"]["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["status"])
        .collect();
    assert_eq!(statuses, [&json!("completed"), &json!("interrupted")]);
    // Still over the limit, so the next turn compacts the intact history first.
    let third = turn(&mut server, &thread_id, "third question");
    assert_eq!(item_events(&third)[0].1, "contextCompaction");
    let requests = bodies(&mock);
    assert!(crate::suite::compaction::is_local_compaction(&requests[2]));
    assert!(
        said(&requests[2])
            .iter()
            .any(|(who, t)| who == "assistant" && t == "first answer")
    );
    assert!(
        said(&requests[3])
            .iter()
            .any(|(_, t)| t.ends_with("SUMMARY AFTER KILL"))
    );
    assert_eq!(lines_of_type(&path, "compacted").len(), 1);
}

#[test]
fn a_thread_resumed_after_a_remote_compaction_replays_its_item() {
    let home = TempDir::new("compaction-remote-resume");
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 5000));
    mock.push(compaction_reply("r2", "ENC-KEPT"));
    mock.push(answer("r3", "second answer", 400));
    let spawn = |mock: &MockServer| {
        let mut server = AppServer::builder()
            .codex_home(home.path())
            .config(format!("openai_base_url={}/v1", mock.base()))
            .config("model=gpt-5.5")
            .config("model_auto_compact_token_limit=1000")
            .spawn();
        server.initialize();
        server
            .call(
                "account/login/start",
                json!({"type": "apiKey", "apiKey": "sk-test-key"}),
            )
            .unwrap();
        server
    };
    let thread_id = {
        let mut server = spawn(&mock);
        let thread_id = start_thread(&mut server, json!({}));
        turn(&mut server, &thread_id, "first question");
        let second = turn(&mut server, &thread_id, "second question");
        assert_eq!(item_events(&second)[0].1, "contextCompaction");
        thread_id
    };
    let path = rollout_of(home.path(), &thread_id);
    let compacted = lines_of_type(&path, "compacted");
    assert_eq!(compacted.len(), 1);
    let kept = json!({"type": "compaction", "id": "cmp_r2", "encrypted_content": "ENC-KEPT"});
    assert!(
        compacted[0]["payload"]["replacement_history"]
            .as_array()
            .unwrap()
            .contains(&kept),
        "{}",
        compacted[0]
    );

    mock.push(answer("r4", "third answer", 400));
    let mut server = spawn(&mock);
    server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    let third = turn(&mut server, &thread_id, "third question");
    assert!(
        !item_events(&third)
            .iter()
            .any(|(_, k)| k == "contextCompaction")
    );
    let requests = bodies(&mock);
    assert_eq!(requests.len(), 4);
    let input = requests[3]["input"].as_array().unwrap();
    let at = input
        .iter()
        .position(|i| i["type"] == "compaction")
        .expect("the compaction item is replayed after resume");
    assert_eq!(input[at], kept);
    assert_eq!(
        user_words(&requests[3]),
        ["first question", "second question", "third question"]
    );
    assert!(!said(&requests[3]).iter().any(|(_, t)| t == "first answer"));
    assert_eq!(
        input.last().unwrap()["content"][0]["text"],
        "third question"
    );
}

#[test]
fn a_local_compaction_of_a_lite_model_offers_no_tools() {
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 5000));
    mock.push(answer("r2", "LITE SUMMARY", 300));
    mock.push(answer("r3", "second answer", 400));
    let mut server = crate::suite::compaction::server_with(
        &mock,
        &[
            "model=\"gpt-6.1-sol\"",
            "model_auto_compact_token_limit=1000",
        ],
    );
    let thread_id = start_thread(&mut server, json!({}));
    turn(&mut server, &thread_id, "first question");
    turn(&mut server, &thread_id, "second question");
    let requests = mock.requests_to("/v1/responses");
    assert_eq!(requests.len(), 3);
    // A normal Lite request offers the client tools in its preamble...
    let normal = requests[0].json();
    assert_eq!(normal["input"][0]["type"], "additional_tools");
    // ...the summary request has neither that preamble nor tools, and still the history.
    assert_eq!(
        requests[1].header("x-openai-internal-codex-responses-lite"),
        Some("true")
    );
    let compaction = requests[1].json();
    let input = compaction["input"].as_array().unwrap();
    assert!(
        !input.iter().any(|i| i["type"] == "additional_tools"),
        "{compaction}"
    );
    assert!(compaction.get("tools").is_none_or(|t| t == &json!([])));
    assert_eq!(compaction["parallel_tool_calls"], false);
    assert_eq!(input[0]["role"], "developer");
    let conversation = said(&compaction);
    assert!(
        conversation
            .iter()
            .any(|(who, t)| who == "assistant" && t == "first answer")
    );
    let ask = conversation.last().unwrap();
    assert!(ask.0 == "user" && ask.1.contains("handoff note"), "{ask:?}");
    // The next request offers the tools again and carries the summary.
    let next = requests[2].json();
    assert_eq!(next["input"][0]["type"], "additional_tools");
    assert!(said(&next).iter().any(|(_, t)| t.ends_with("LITE SUMMARY")));
    assert_eq!(user_words(&next), ["first question", "second question"]);
}
