//! Compaction through the real binary (context.md §4): the automatic trigger before a turn and
//! between tool calls, from the config limit and from the window cap, `thread/compact/start`,
//! recovery after `context_length_exceeded`, local (summary) compaction. Remote compaction,
//! persistence and crashes are in `compaction_remote.rs`. The mock's recorded requests show
//! what the model was sent before and after.

use serde_json::{Value, json};

use crate::suite::turns::{finish_turn, last_turn, methods, start_thread, start_turn};
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

// ---- helpers shared with compaction_remote.rs and history.rs --------------------------------

/// How our summary message starts (src/context/compact/history.rs).
pub const SUMMARY_PREFIX: &str = "[Compacted conversation]";

/// A server for `mock` (provider `mock`, model `mock-model`) with extra `-c` settings.
pub fn server_with(mock: &MockServer, configs: &[&str]) -> AppServer {
    let mut builder = AppServer::builder()
        .configs(mock.provider_overrides())
        .env("MOCK_KEY", "test-key");
    for kv in configs {
        builder = builder.config(*kv);
    }
    let mut server = builder.spawn();
    server.initialize();
    server
}

/// An assistant answer `text` whose response reports `total` tokens.
pub fn answer(id: &str, text: &str, total: u64) -> Reply {
    let item = format!("msg_{id}");
    sse(vec![
        ev_created(id),
        ev_message_added(&item),
        ev_text_delta(&item, text),
        ev_message_done(&item, text),
        ev_completed_usage(id, total.saturating_sub(5), 0, 5, 0),
    ])
}

/// A shell call (`echo hi`) whose response reports `total` tokens.
pub fn shell_call(id: &str, call_id: &str, total: u64) -> Reply {
    sse(vec![
        ev_created(id),
        ev_function_call(call_id, "shell", &json!({"command": ["echo", "hi"]})),
        ev_completed_usage(id, total.saturating_sub(5), 0, 5, 0),
    ])
}

/// The model request bodies so far.
pub fn bodies(mock: &MockServer) -> Vec<Value> {
    mock.requests_to("/v1/responses")
        .iter()
        .map(|r| r.json())
        .collect()
}

/// A request's input as `(role or type, text)`, text parts joined.
pub fn said(body: &Value) -> Vec<(String, String)> {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let who = item["role"].as_str().or(item["type"].as_str()).unwrap();
            let text: String = item["content"]
                .as_array()
                .map(|parts| parts.iter().filter_map(|p| p["text"].as_str()).collect())
                .unwrap_or_default();
            (who.to_string(), text)
        })
        .collect()
}

/// The user's own words in a request (context messages and summaries left out).
pub fn user_words(body: &Value) -> Vec<String> {
    said(body)
        .into_iter()
        .filter(|(who, text)| {
            who == "user"
                && !text.starts_with("<environment_context>")
                && !text.starts_with(SUMMARY_PREFIX)
        })
        .map(|(_, text)| text)
        .collect()
}

/// Whether a request is a local compaction: no tools, and it ends asking for the summary.
pub fn is_local_compaction(body: &Value) -> bool {
    let last = said(body).pop().unwrap_or_default();
    body["tools"] == json!([]) && last.0 == "user" && last.1.contains("handoff note")
}

/// Every `item/started` / `item/completed` type in `messages`, with the method.
pub fn item_events(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|m| {
            m["method"]
                .as_str()
                .is_some_and(|s| s == "item/started" || s == "item/completed")
        })
        .map(|m| {
            (
                m["method"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("item/")
                    .to_string(),
                m["params"]["item"]["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The `thread/tokenUsage/updated` params among `messages`.
pub fn usages(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m["method"] == "thread/tokenUsage/updated")
        .map(|m| m["params"]["tokenUsage"].clone())
        .collect()
}

/// Runs one turn; returns its messages (it must complete).
pub fn turn(server: &mut AppServer, thread_id: &str, text: &str) -> Vec<Value> {
    start_turn(server, thread_id, text);
    let messages = finish_turn(server);
    assert_eq!(last_turn(&messages)["status"], "completed", "{messages:?}");
    messages
}

fn started_completed(kind: &str) -> Vec<(String, String)> {
    vec![
        ("started".to_string(), kind.to_string()),
        ("completed".to_string(), kind.to_string()),
    ]
}

// ---- tests ----------------------------------------------------------------------------------

#[test]
fn a_turn_over_the_limit_makes_the_next_turn_compact_first() {
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 5000));
    mock.push(answer("r2", "SUMMARY ONE", 300));
    mock.push(answer("r3", "second answer", 400));
    let mut server = server_with(&mock, &["model_auto_compact_token_limit=1000"]);
    let thread_id = start_thread(&mut server, json!({}));
    let first = turn(&mut server, &thread_id, "first question");
    assert_eq!(usages(&first)[0]["modelContextWindow"], 258_400);
    let second = turn(&mut server, &thread_id, "second question");

    // The compaction came first, before the turn's own user message, and showed no answer.
    let mut expected = started_completed("contextCompaction");
    expected.extend(started_completed("userMessage"));
    expected.extend(started_completed("agentMessage"));
    assert_eq!(item_events(&second), expected);
    let answers: Vec<&Value> = second
        .iter()
        .filter(|m| {
            m["method"] == "item/completed" && m["params"]["item"]["type"] == "agentMessage"
        })
        .collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["params"]["item"]["text"], "second answer");

    let requests = bodies(&mock);
    assert_eq!(requests.len(), 3);
    // The compaction request: the whole history and our prompt, without tools.
    assert!(
        is_local_compaction(&requests[1]),
        "{:?}",
        said(&requests[1])
    );
    assert_eq!(requests[1]["parallel_tool_calls"], false);
    assert!(
        said(&requests[1])
            .iter()
            .any(|(who, text)| who == "assistant" && text == "first answer")
    );
    // The next request: context, the user's words, the summary, the new question.
    let after = said(&requests[2]);
    assert_eq!(after[0].0, "developer");
    assert!(after[1].1.starts_with("<environment_context>"), "{after:?}");
    assert_eq!(after[2], ("user".to_string(), "first question".to_string()));
    assert!(after[3].1.starts_with(SUMMARY_PREFIX) && after[3].1.ends_with("SUMMARY ONE"));
    assert_eq!(
        after[4],
        ("user".to_string(), "second question".to_string())
    );
    assert_eq!(after.len(), 5, "the first answer is gone: {after:?}");

    // Usage: the compaction's own response, then the estimate of the new history, each with
    // the window.
    let reported = usages(&second);
    assert_eq!(reported[0]["last"]["totalTokens"], 300);
    assert_eq!(reported[0]["total"]["totalTokens"], 5300);
    assert_eq!(reported[1]["last"]["inputTokens"], 0);
    let estimate = reported[1]["last"]["totalTokens"].as_i64().unwrap();
    assert!(estimate > 0 && estimate < 1000, "{estimate}");
    assert!(reported.iter().all(|u| u["modelContextWindow"] == 258_400));
    assert_eq!(reported[2]["total"]["totalTokens"], 5700);
}

#[test]
fn a_tool_round_over_the_limit_compacts_before_the_follow_up() {
    let mock = MockServer::start();
    mock.push(shell_call("r1", "call_1", 6000));
    mock.push(answer("r2", "SUMMARY MID", 300));
    mock.push(answer("r3", "all done", 400));
    let mut server = server_with(
        &mock,
        &[
            "model_auto_compact_token_limit=1000",
            "approval_policy=\"never\"",
        ],
    );
    let thread_id = start_thread(&mut server, json!({}));
    let messages = turn(&mut server, &thread_id, "run it");
    let events = item_events(&messages);
    let mut expected = started_completed("userMessage");
    expected.extend(started_completed("commandExecution"));
    expected.extend(started_completed("contextCompaction"));
    expected.extend(started_completed("agentMessage"));
    assert_eq!(events, expected);

    let requests = bodies(&mock);
    assert_eq!(requests.len(), 3);
    // The compaction saw the call and its output; the follow-up sees neither, only the
    // question and the summary, and may still use its tools.
    let kinds = |body: &Value| -> Vec<String> {
        body["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(is_local_compaction(&requests[1]));
    assert!(kinds(&requests[1]).contains(&"function_call_output".to_string()));
    assert!(
        !kinds(&requests[2])
            .iter()
            .any(|k| k.starts_with("function_call"))
    );
    let last = said(&requests[2]).pop().unwrap();
    assert!(last.1.starts_with(SUMMARY_PREFIX) && last.1.ends_with("SUMMARY MID"));
    assert_eq!(user_words(&requests[2]), ["run it"]);
    assert!(requests[2]["tools"].as_array().unwrap().len() > 1);
}

#[test]
fn the_window_caps_the_limit_at_ninety_percent() {
    let mock = MockServer::start();
    mock.push(answer("r1", "one", 1799));
    mock.push(answer("r2", "two", 1800));
    mock.push(answer("r3", "SUMMARY CAP", 10));
    mock.push(answer("r4", "three", 10));
    // A configured limit above 90 % of the configured window does not count.
    let mut server = server_with(
        &mock,
        &[
            "model_context_window=2000",
            "model_auto_compact_token_limit=1000000",
        ],
    );
    let thread_id = start_thread(&mut server, json!({}));
    let first = turn(&mut server, &thread_id, "q1");
    assert_eq!(usages(&first)[0]["modelContextWindow"], 1900);
    let second = turn(&mut server, &thread_id, "q2");
    assert!(
        !item_events(&second)
            .iter()
            .any(|(_, k)| k == "contextCompaction")
    );
    let third = turn(&mut server, &thread_id, "q3");
    assert_eq!(item_events(&third)[0].1, "contextCompaction");
    let requests = bodies(&mock);
    assert_eq!(requests.len(), 4);
    assert!(is_local_compaction(&requests[2]));
    assert!(!is_local_compaction(&requests[1]));
}

#[test]
fn compact_prompt_replaces_ours() {
    let mock = MockServer::start();
    mock.push(answer("r1", "one", 50));
    mock.push(answer("r2", "SUMMARY", 10));
    let mut server = server_with(&mock, &["compact_prompt=\"Summarise in one line.\""]);
    let thread_id = start_thread(&mut server, json!({}));
    turn(&mut server, &thread_id, "q1");
    server
        .call("thread/compact/start", json!({"threadId": thread_id}))
        .unwrap();
    finish_turn(&mut server);
    let request = &bodies(&mock)[1];
    assert_eq!(said(request).pop().unwrap().1, "Summarise in one line.");
    assert_eq!(request["tools"], json!([]));
}

#[test]
fn thread_compact_start_runs_a_compaction_turn() {
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 50));
    mock.push(answer("r2", "MANUAL SUMMARY", 20));
    mock.push(answer("r3", "after", 30));
    let mut server = server_with(&mock, &[]);
    let thread_id = start_thread(&mut server, json!({}));
    turn(&mut server, &thread_id, "first question");

    assert_eq!(
        server.call("thread/compact/start", json!({"threadId": thread_id})),
        Ok(json!({}))
    );
    let messages = finish_turn(&mut server);
    let order: Vec<String> = methods(&messages)
        .into_iter()
        .filter(|m| !m.starts_with("account/") && m != "thread/tokenUsage/updated")
        .collect();
    assert_eq!(
        order,
        [
            "thread/status/changed",
            "turn/started",
            "item/started",
            "item/completed",
            "thread/status/changed",
            "turn/completed"
        ]
    );
    assert_eq!(
        item_events(&messages),
        started_completed("contextCompaction")
    );
    let done = last_turn(&messages);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["items"][0]["type"], "contextCompaction");
    assert!(is_local_compaction(&bodies(&mock)[1]));

    turn(&mut server, &thread_id, "next question");
    let next = &bodies(&mock)[2];
    assert_eq!(user_words(next), ["first question", "next question"]);
    assert!(
        said(next)
            .iter()
            .any(|(_, t)| t.ends_with("MANUAL SUMMARY"))
    );
    assert!(!said(next).iter().any(|(_, t)| t == "first answer"));

    // The compaction turn is part of the thread.
    let read = server
        .call(
            "thread/read",
            json!({"threadId": thread_id, "includeTurns": true}),
        )
        .unwrap();
    let turns = read["thread"]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(
        turns[1]["items"],
        json!([{"type": "contextCompaction", "id": done["items"][0]["id"]}])
    );
}

#[test]
fn compaction_turns_refuse_steering_and_stop_on_interrupt() {
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 50));
    mock.push(sse_then_stall(vec![ev_created("r2")]));
    let mut server = server_with(&mock, &[]);
    let thread_id = start_thread(&mut server, json!({}));
    turn(&mut server, &thread_id, "first question");
    server
        .call("thread/compact/start", json!({"threadId": thread_id}))
        .unwrap();
    let (started, _) = server.read_until("turn/started");
    let turn_id = started["params"]["turn"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    mock.wait_for_requests(2);

    let refused = server
        .call(
            "turn/steer",
            json!({"threadId": thread_id, "expectedTurnId": turn_id, "input": [{"type": "text", "text": "also this"}]}),
        )
        .unwrap_err();
    assert_eq!(refused["code"], -32600);
    assert_eq!(refused["message"], "cannot steer a compact turn");
    assert_eq!(
        refused["data"]["codexErrorInfo"],
        json!({"activeTurnNotSteerable": {"turnKind": "compact"}})
    );
    let busy = server
        .call(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "x"}]}),
        )
        .unwrap_err();
    assert_eq!(busy["code"], -32600);

    server
        .call(
            "turn/interrupt",
            json!({"threadId": thread_id, "turnId": turn_id}),
        )
        .unwrap();
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "interrupted");
    assert_eq!(
        item_events(&messages),
        started_completed("contextCompaction")
    );
    // The history is what it was.
    mock.push(answer("r3", "still here", 30));
    turn(&mut server, &thread_id, "second question");
    let next = said(&bodies(&mock)[2]);
    assert!(
        next.iter()
            .any(|(who, t)| who == "assistant" && t == "first answer")
    );
}

#[test]
fn compact_start_interrupts_the_running_turn_then_compacts() {
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 50));
    mock.push(sse_then_stall(vec![ev_created("r2")]));
    mock.push(answer("r3", "SUMMARY AFTER", 20));
    let mut server = server_with(&mock, &[]);
    let thread_id = start_thread(&mut server, json!({}));
    turn(&mut server, &thread_id, "first question");
    let running = start_turn(&mut server, &thread_id, "slow question");
    mock.wait_for_requests(2);
    assert_eq!(
        server.call("thread/compact/start", json!({"threadId": thread_id})),
        Ok(json!({}))
    );
    let interrupted = finish_turn(&mut server);
    let stopped = last_turn(&interrupted);
    assert_eq!(stopped["id"], running.as_str());
    assert_eq!(stopped["status"], "interrupted");
    let compaction = finish_turn(&mut server);
    assert_ne!(last_turn(&compaction)["id"], running.as_str());
    assert_eq!(last_turn(&compaction)["status"], "completed");
    assert_eq!(
        item_events(&compaction),
        started_completed("contextCompaction")
    );
    assert!(is_local_compaction(&bodies(&mock)[2]));
}

#[test]
fn compact_start_rejects_bad_ids() {
    let mock = MockServer::start();
    let mut server = server_with(&mock, &[]);
    let bad = server
        .call("thread/compact/start", json!({"threadId": "nope"}))
        .unwrap_err();
    assert_eq!(bad["code"], -32600);
    assert_eq!(bad["message"], "invalid thread id: nope");
    let unknown = "01a22df1-83c2-7031-86ee-000000000000";
    let missing = server
        .call("thread/compact/start", json!({"threadId": unknown}))
        .unwrap_err();
    assert_eq!(missing["code"], -32600);
    assert_eq!(missing["message"], format!("thread not found: {unknown}"));
    let no_params = server.call("thread/compact/start", json!({})).unwrap_err();
    assert_eq!(no_params["code"], -32602);
}

#[test]
fn after_context_length_exceeded_the_next_turn_compacts_first() {
    let mock = MockServer::start();
    mock.push(answer("r1", "first answer", 50));
    mock.push(sse(vec![
        ev_created("r2"),
        ev_failed(
            "r2",
            "context_length_exceeded",
            "Your input exceeds the context window of this model.",
        ),
    ]));
    mock.push(answer("r3", "SUMMARY RECOVERY", 100));
    mock.push(answer("r4", "third answer", 200));
    let mut server = server_with(&mock, &[]);
    let thread_id = start_thread(&mut server, json!({}));
    turn(&mut server, &thread_id, "first question");
    start_turn(&mut server, &thread_id, "second question");
    let failed = finish_turn(&mut server);
    let failure = last_turn(&failed);
    assert_eq!(failure["status"], "failed");
    assert_eq!(failure["error"]["codexErrorInfo"], "contextWindowExceeded");

    let third = turn(&mut server, &thread_id, "third question");
    assert_eq!(item_events(&third)[0].1, "contextCompaction");
    let requests = bodies(&mock);
    assert_eq!(requests.len(), 4);
    assert!(is_local_compaction(&requests[2]));
    // The failed turn's question is kept.
    assert_eq!(
        user_words(&requests[3]),
        ["first question", "second question", "third question"]
    );
    // And the thread is healthy again: no compaction before the next turn.
    mock.push(answer("r5", "fourth answer", 200));
    let fourth = turn(&mut server, &thread_id, "fourth question");
    assert!(
        !item_events(&fourth)
            .iter()
            .any(|(_, k)| k == "contextCompaction")
    );
}
