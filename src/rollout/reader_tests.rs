//! Reader tables: our writer's lines read back, Codex's kinds old and new, our earlier format,
//! torn and unknown lines, compactions, rollbacks and 0.169 fork bases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use serde_json::{Value, json};

use super::*;
use crate::protocol::{ThreadItem, TurnError, TurnStatus, UserInput};
use crate::rollout::lines::{ORPHAN_CALL_OUTPUT, head_kind};
use crate::rollout::{Entry, Rollout, reader_test_home};

const ID: &str = "01a22e00-0000-7000-8000-000000000001";

fn meta(id: &str) -> SessionMeta {
    SessionMeta {
        id: id.into(),
        created_at: 1_795_987_328,
        cwd: "/w".into(),
        originator: Some("t".into()),
        cli_version: "0.1.0".into(),
        source: "vscode".into(),
        model_provider: "mock".into(),
        model: "m".into(),
        forked_from_id: None,
        base_instructions: Some("be brief".into()),
        developer_instructions: None,
        dynamic_tools: None,
    }
}

fn context() -> TurnContext {
    TurnContext {
        cwd: "/w".into(),
        model: "m".into(),
        effort: None,
        summary: Some("auto".into()),
        approval_policy: "never".into(),
        sandbox_policy: json!({"type": "read-only"}),
    }
}

fn user(id: &str, text: &str) -> ThreadItem {
    ThreadItem::UserMessage {
        id: id.into(),
        content: vec![UserInput::Text {
            text: text.into(),
            text_elements: vec![],
        }],
    }
}

fn agent(id: &str, text: &str) -> ThreadItem {
    ThreadItem::AgentMessage {
        id: id.into(),
        text: text.into(),
    }
}

/// A rollout file under a fresh CODEX_HOME holding `lines` (JSON values, or raw text).
fn file_with(home: &Path, id: &str, lines: &[Value]) -> PathBuf {
    let dir = home.join("sessions/2026/11/30");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("rollout-2026-11-30T10-00-00-{id}.jsonl"));
    let mut f = std::fs::File::create(&path).unwrap();
    for line in lines {
        match line {
            Value::String(raw) => writeln!(f, "{raw}").unwrap(),
            other => writeln!(f, "{other}").unwrap(),
        }
    }
    path
}

fn l(kind: &str, payload: Value) -> Value {
    json!({"timestamp": "2026-11-30T10:00:00.000Z", "type": kind, "payload": payload})
}

fn ev(payload: Value) -> Value {
    l("event_msg", payload)
}

fn codex_meta(id: &str, extra: Value) -> Value {
    let mut payload = json!({"id": id, "timestamp": "2026-11-30T10:00:00.500Z", "cwd": "/w",
        "originator": "codex_cli_rs", "cli_version": "0.150.0", "source": "cli",
        "model_provider": "openai"});
    for (k, v) in extra.as_object().unwrap() {
        payload[k] = v.clone();
    }
    l("session_meta", payload)
}

fn shapes(turns: &[Turn]) -> Vec<(String, TurnStatus, Vec<String>)> {
    turns
        .iter()
        .map(|t| {
            let kinds = t
                .items
                .iter()
                .map(|i| {
                    serde_json::to_value(i).unwrap()["type"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            (t.id.clone(), t.status, kinds)
        })
        .collect()
}

fn history_texts(history: &[(String, Value)]) -> Vec<String> {
    history
        .iter()
        .map(|(_, item)| {
            item.pointer("/content/0/text")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| item["type"].as_str().unwrap().to_string())
        })
        .collect()
}

/// What our writer puts in a file, line by line, and that it reads back the same.
#[test]
fn written_lines_have_codex_shapes_and_read_back() {
    let home = reader_test_home("written");
    let mut rollout = Rollout::create(&home, &meta(ID)).unwrap();
    let error = TurnError {
        message: "too long".into(),
        codex_error_info: Some(crate::protocol::CodexErrorInfo::ContextWindowExceeded),
        additional_details: None,
    };
    let usage = TokenUsage {
        input_tokens: 10,
        cached_input_tokens: 2,
        output_tokens: 3,
        reasoning_output_tokens: 1,
        total_tokens: 13,
    };
    for entry in [
        Entry::TurnStarted {
            turn_id: "t1".into(),
        },
        Entry::TurnContext(context()),
        Entry::ResponseItem(
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}),
        ),
        Entry::ThreadItem {
            turn_id: "t1".into(),
            item: user("u1", "hello"),
        },
        Entry::ResponseItem(
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}),
        ),
        Entry::ThreadItem {
            turn_id: "t1".into(),
            item: agent("m1", "hi"),
        },
        Entry::TokenUsage {
            total: usage,
            last: usage,
        },
        Entry::TurnCompleted {
            turn_id: "t1".into(),
            status: TurnStatus::Completed,
            error: None,
        },
        Entry::TurnStarted {
            turn_id: "t2".into(),
        },
        Entry::TurnContext(context()),
        Entry::ThreadItem {
            turn_id: "t2".into(),
            item: user("u2", "again"),
        },
        Entry::TurnCompleted {
            turn_id: "t2".into(),
            status: TurnStatus::Failed,
            error: Some(error.clone()),
        },
        Entry::TurnStarted {
            turn_id: "t3".into(),
        },
        Entry::TurnCompleted {
            turn_id: "t3".into(),
            status: TurnStatus::Interrupted,
            error: None,
        },
    ] {
        rollout.append(&entry).unwrap();
    }
    let path = rollout.path().to_path_buf();
    assert!(path.ends_with(format!(
        "sessions/2026/11/29/rollout-2026-11-29T21-22-08-{ID}.jsonl"
    )));
    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for line in &lines {
        assert!(crate::time::parse_rfc3339(line["timestamp"].as_str().unwrap()).is_some());
    }
    let kinds: Vec<String> = lines
        .iter()
        .map(|l| match l["payload"]["type"].as_str() {
            Some(t) if l["type"] != "turn_context" => {
                format!("{}:{t}", l["type"].as_str().unwrap())
            }
            _ => l["type"].as_str().unwrap().to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "session_meta",
            "event_msg:task_started",
            "turn_context",
            "response_item:message",
            "event_msg:item_completed",
            "event_msg:user_message",
            "response_item:message",
            "event_msg:item_completed",
            "event_msg:agent_message",
            "event_msg:token_count",
            "event_msg:task_complete",
            "event_msg:task_started",
            "turn_context",
            "event_msg:item_completed",
            "event_msg:user_message",
            "event_msg:task_complete",
            "event_msg:task_started",
            "event_msg:turn_aborted",
        ]
    );
    let meta_line = &lines[0]["payload"];
    assert_eq!(meta_line["id"], ID);
    assert_eq!(meta_line["timestamp"], "2026-11-29T21:22:08.000Z");
    assert_eq!(meta_line["source"], "vscode");
    assert_eq!(meta_line["model_provider"], "mock");
    assert_eq!(meta_line["base_instructions"], json!({"text": "be brief"}));
    assert_eq!(lines[1]["payload"]["turn_id"], "t1");
    assert_eq!(lines[2]["payload"]["turn_id"], "t1");
    assert_eq!(
        lines[2]["payload"]["sandbox_policy"],
        json!({"type": "read-only"})
    );
    assert_eq!(lines[2]["payload"]["approval_policy"], "never");
    assert_eq!(
        lines[4]["payload"],
        json!({"type": "item_completed", "thread_id": ID, "turn_id": "t1", "item": {"type": "UserMessage",
            "id": "u1", "content": [{"type": "text", "text": "hello", "text_elements": []}]}})
    );
    assert_eq!(
        lines[5]["payload"],
        json!({"type": "user_message", "message": "hello", "images": [], "local_images": [], "text_elements": []})
    );
    assert_eq!(
        lines[7]["payload"]["item"],
        json!({"type": "AgentMessage", "id": "m1", "content": [{"type": "Text", "text": "hi"}]})
    );
    assert_eq!(
        lines[9]["payload"]["info"]["last_token_usage"]["reasoning_output_tokens"],
        1
    );
    assert_eq!(lines[10]["payload"]["last_agent_message"], "hi");
    assert_eq!(
        lines[15]["payload"]["error"],
        json!({"message": "too long", "codex_error_info": "context_window_exceeded"})
    );
    assert_eq!(lines[17]["payload"]["reason"], "interrupted");

    let loaded = load(&path).unwrap();
    assert_eq!(loaded.meta, meta(ID));
    assert_eq!(loaded.preview, "hello");
    assert_eq!(loaded.total_usage, usage);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        loaded.turns[0].items,
        vec![user("u1", "hello"), agent("m1", "hi")]
    );
    assert_eq!(loaded.turns[0].status, TurnStatus::Completed);
    assert_eq!(loaded.turns[1].status, TurnStatus::Failed);
    assert_eq!(loaded.turns[1].error, Some(error));
    assert_eq!(loaded.turns[2].status, TurnStatus::Interrupted);
    assert_eq!(history_texts(&loaded.history), ["hello", "hi"]);
    assert_eq!(loaded.turn_contexts.len(), 2);
    assert_eq!(
        read_summary(&path).unwrap(),
        (meta(ID), "hello".to_string())
    );
    std::fs::remove_dir_all(home).unwrap();
}

/// Our format before the Codex one still reads.
#[test]
fn earlier_codex_lite_lines_read() {
    let home = reader_test_home("lite");
    let item = |i: &ThreadItem| serde_json::to_value(i).unwrap();
    let path = file_with(
        &home,
        ID,
        &[
            l(
                "session_meta",
                json!({"id": ID, "created_at": 1_795_987_328, "cwd": "/w", "originator": "t",
            "cli_version": "0.1.0", "model_provider": "mock", "model": "m", "base_instructions": "be brief"}),
            ),
            l("turn_started", json!({"turn_id": "t1"})),
            l("turn_context", serde_json::to_value(context()).unwrap()),
            l(
                "response_item",
                json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}),
            ),
            l(
                "thread_item",
                json!({"turn_id": "t1", "item": item(&user("u1", "hello"))}),
            ),
            l(
                "thread_item",
                json!({"turn_id": "t1", "item": item(&agent("m1", "hi"))}),
            ),
            l(
                "token_usage",
                json!({"total": {"inputTokens": 5, "cachedInputTokens": 0, "outputTokens": 1,
            "reasoningOutputTokens": 0, "totalTokens": 6}}),
            ),
            l(
                "turn_completed",
                json!({"turn_id": "t1", "status": "completed", "error": null}),
            ),
            l("turn_started", json!({"turn_id": "t2"})),
        ],
    );
    let loaded = load(&path).unwrap();
    assert_eq!(loaded.meta, meta(ID));
    assert_eq!(
        shapes(&loaded.turns),
        [
            (
                "t1".into(),
                TurnStatus::Completed,
                vec!["userMessage".into(), "agentMessage".into()]
            ),
            ("t2".into(), TurnStatus::Interrupted, vec![]),
        ]
    );
    assert_eq!(loaded.total_usage.total_tokens, 6);
    assert_eq!(loaded.turn_contexts, [("t1".to_string(), context())]);
    std::fs::remove_dir_all(home).unwrap();
}

/// Older Codex files: `base_instructions` a string or null, no turn events (a user message
/// begins a turn), per-kind events, a compaction without a replacement history.
#[test]
fn older_codex_shapes_read() {
    let home = reader_test_home("older");
    let msg = |role: &str, text: &str| json!({"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]});
    let path = file_with(
        &home,
        ID,
        &[
            codex_meta(
                ID,
                json!({"base_instructions": null, "instructions": "old"}),
            ),
            l(
                "turn_context",
                json!({"cwd": "/w", "approval_policy": "on-request", "sandbox_policy": {"type": "read-only"}, "model": "gpt-old", "summary": "auto"}),
            ),
            l(
                "response_item",
                msg("user", "<environment_context>x</environment_context>"),
            ),
            l("response_item", msg("user", "one")),
            ev(json!({"type": "user_message", "message": "one", "images": null})),
            ev(json!({"type": "agent_reasoning", "text": "thinking"})),
            ev(
                json!({"type": "exec_command_end", "call_id": "c1", "command": ["ls"], "cwd": "/w", "stdout": "",
            "stderr": "", "aggregated_output": "a\n", "exit_code": 0, "duration": {"secs": 0, "nanos": 0}, "formatted_output": ""}),
            ),
            l("response_item", msg("assistant", "first")),
            ev(json!({"type": "agent_message", "message": "first"})),
            l("response_item", msg("user", "two")),
            ev(json!({"type": "user_message", "message": "two"})),
            l("compacted", json!({"message": "summary of it all"})),
            l("response_item", msg("user", "three")),
        ],
    );
    let loaded = load(&path).unwrap();
    assert_eq!(loaded.meta.source, "cli");
    assert_eq!(loaded.meta.model, "gpt-old");
    assert_eq!(loaded.meta.base_instructions, None);
    assert_eq!(loaded.meta.created_at, 1_796_032_800);
    assert_eq!(
        shapes(&loaded.turns),
        [
            (
                "turn-1".into(),
                TurnStatus::Completed,
                vec![
                    "userMessage".into(),
                    "reasoning".into(),
                    "commandExecution".into(),
                    "agentMessage".into()
                ]
            ),
            (
                "turn-2".into(),
                TurnStatus::Completed,
                vec!["userMessage".into()]
            ),
        ]
    );
    assert_eq!(loaded.turns[0].items[0].id(), "item-1");
    assert_eq!(loaded.turns[0].items[2].id(), "c1");
    assert_eq!(loaded.preview, "one");
    assert_eq!(
        history_texts(&loaded.history),
        ["one", "two", "summary of it all", "three"]
    );
    assert_eq!(
        read_summary(Path::new(&path)).unwrap().1,
        "one",
        "the summary stops at the first user message"
    );

    let string_meta = file_with(
        &home,
        "01a22e00-0000-7000-8000-000000000002",
        &[codex_meta(
            "01a22e00-0000-7000-8000-000000000002",
            json!({"base_instructions": "custom"}),
        )],
    );
    assert_eq!(
        load(&string_meta)
            .unwrap()
            .meta
            .base_instructions
            .as_deref(),
        Some("custom")
    );
    let object_meta = file_with(
        &home,
        "01a22e00-0000-7000-8000-000000000003",
        &[codex_meta(
            "01a22e00-0000-7000-8000-000000000003",
            json!({"base_instructions": {"text": "obj", "provenance": {"type": "model"}}}),
        )],
    );
    assert_eq!(
        load(&object_meta)
            .unwrap()
            .meta
            .base_instructions
            .as_deref(),
        Some("obj")
    );
    std::fs::remove_dir_all(home).unwrap();
}

/// Torn and corrupt lines are skipped with a warning each; kinds nobody reads, from a newer
/// version, are skipped silently; the rest of the thread is intact.
#[test]
fn bad_and_unknown_lines() {
    let home = reader_test_home("bad");
    let path = file_with(
        &home,
        ID,
        &[
            codex_meta(ID, json!({})),
            ev(json!({"type": "task_started", "turn_id": "t1"})),
            json!("{\"timestamp\":\"x\",\"type\":\"response_it"),
            json!("not json at all"),
            l("world_state", json!({"full": true})),
            l("some_future_kind", json!({"x": 1})),
            ev(json!({"type": "some_future_event"})),
            json!({"no_type": true}),
            l("session_meta", json!({"no": "id"})),
            ev(
                json!({"type": "item_completed", "turn_id": "t1", "item": {"type": "UserMessage", "id": "u", "content": [{"type": "text", "text": "kept"}]}}),
            ),
            ev(
                json!({"type": "item_completed", "turn_id": "t1", "item": {"type": "Sleep", "id": "s", "duration_ms": 5}}),
            ),
            ev(json!({"type": "task_complete", "turn_id": "t1"})),
            json!(
                "{\"timestamp\":\"2026-11-30T10:00:00.000Z\",\"type\":\"event_msg\",\"payload\":{\"type\":\"task_st"
            ),
        ],
    );
    let loaded = load(&path).unwrap();
    assert_eq!(
        shapes(&loaded.turns),
        [(
            "t1".into(),
            TurnStatus::Completed,
            vec!["userMessage".into()]
        )]
    );
    assert_eq!(loaded.warnings.len(), 4, "{:#?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("line 3"),
        "{}",
        loaded.warnings[0]
    );
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.contains(&path.display().to_string()))
    );

    let empty = file_with(
        &home,
        "01a22e00-0000-7000-8000-000000000009",
        &[json!("{\"timestamp\":")],
    );
    let error = load(&empty).unwrap_err().to_string();
    assert!(error.contains("has no session metadata"), "{error}");
    std::fs::remove_dir_all(home).unwrap();
}

/// A compaction replaces the history before it; a rollback drops the last turns and their
/// history; a tool call without an output gets one.
#[test]
fn compaction_rollback_and_orphan_calls() {
    let home = reader_test_home("compact");
    let msg = |role: &str, text: &str| json!({"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]});
    let path = file_with(
        &home,
        ID,
        &[
            codex_meta(ID, json!({})),
            ev(json!({"type": "task_started", "turn_id": "t1"})),
            l("response_item", msg("user", "old question")),
            l("response_item", msg("assistant", "old answer")),
            ev(json!({"type": "task_complete", "turn_id": "t1"})),
            ev(json!({"type": "task_started", "turn_id": "t2"})),
            l(
                "compacted",
                json!({"message": "s", "replacement_history": [msg("user", "old question"), msg("user", "summary")]}),
            ),
            ev(
                json!({"type": "item_completed", "turn_id": "t2", "item": {"type": "ContextCompaction", "id": "k"}}),
            ),
            ev(json!({"type": "task_complete", "turn_id": "t2"})),
            ev(json!({"type": "task_started", "turn_id": "t3"})),
            l("response_item", msg("user", "new")),
            l(
                "response_item",
                json!({"type": "function_call", "call_id": "c", "name": "shell", "arguments": "{}"}),
            ),
            ev(json!({"type": "task_complete", "turn_id": "t3"})),
            ev(json!({"type": "task_started", "turn_id": "t4"})),
            l("response_item", msg("user", "dropped")),
            ev(json!({"type": "task_complete", "turn_id": "t4"})),
            ev(json!({"type": "thread_rolled_back", "num_turns": 1})),
        ],
    );
    let loaded = load(&path).unwrap();
    assert_eq!(
        history_texts(&loaded.history),
        [
            "old question",
            "summary",
            "new",
            "function_call",
            "function_call_output"
        ]
    );
    assert_eq!(loaded.history[4].1["output"], ORPHAN_CALL_OUTPUT);
    assert_eq!(
        shapes(&loaded.turns),
        [
            ("t1".into(), TurnStatus::Completed, vec![]),
            (
                "t2".into(),
                TurnStatus::Completed,
                vec!["contextCompaction".into()]
            ),
            ("t3".into(), TurnStatus::Completed, vec![]),
        ]
    );
    std::fs::remove_dir_all(home).unwrap();
}

/// A 0.169 fork inherits its parent's lines up to `history_base`; when the parent is gone the
/// fork still reads, with a warning.
#[test]
fn fork_reads_its_parent_up_to_the_base() {
    let home = reader_test_home("fork");
    let parent = "01a22e00-0000-7000-8000-0000000000f1";
    let child = "01a22e00-0000-7000-8000-0000000000f2";
    let msg = |text: &str| json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]});
    let with_ordinal = |mut v: Value, n: u64| {
        v["ordinal"] = json!(n);
        v
    };
    let parent_lines: Vec<Value> = [
        codex_meta(parent, json!({})),
        ev(json!({"type": "task_started", "turn_id": "p1"})),
        l("response_item", msg("kept")),
        ev(json!({"type": "task_complete", "turn_id": "p1"})),
        ev(json!({"type": "task_started", "turn_id": "p2"})),
        l("response_item", msg("after the fork point")),
        ev(json!({"type": "task_complete", "turn_id": "p2"})),
    ]
    .into_iter()
    .enumerate()
    .map(|(n, v)| with_ordinal(v, n as u64))
    .collect();
    file_with(&home, parent, &parent_lines);
    let base = json!({"forked_from_id": parent, "history_base": {"thread_id": parent, "end_ordinal_exclusive": 4, "end_byte_offset": 99_999}});
    let child_path = file_with(
        &home,
        child,
        &[
            with_ordinal(codex_meta(child, base), 4),
            ev(json!({"type": "task_started", "turn_id": "c1"})),
            l("response_item", msg("own")),
            ev(json!({"type": "task_complete", "turn_id": "c1"})),
        ],
    );
    let loaded = load(&child_path).unwrap();
    assert_eq!(loaded.meta.id, child);
    assert_eq!(loaded.meta.forked_from_id.as_deref(), Some(parent));
    assert_eq!(history_texts(&loaded.history), ["kept", "own"]);
    let ids: Vec<&str> = loaded.turns.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["p1", "c1"]);

    std::fs::remove_file(home.join(format!(
        "sessions/2026/11/30/rollout-2026-11-30T10-00-00-{parent}.jsonl"
    )))
    .unwrap();
    let loaded = load(&child_path).unwrap();
    assert_eq!(history_texts(&loaded.history), ["own"]);
    assert_eq!(loaded.warnings.len(), 1);
    std::fs::remove_dir_all(home).unwrap();
}

#[test]
fn line_kind_is_seen_from_the_head() {
    let cases: [(&[u8], Option<&str>); 4] = [
        (
            br#"{"timestamp":"t","type":"response_item","payload":{}}"#,
            Some("response_item"),
        ),
        (
            br#"{"timestamp":"t","ordinal":3,"type":"event_msg","payload":{"type":"x"}}"#,
            Some("event_msg"),
        ),
        (
            br#"{"payload":{"type":"response_item"},"type":"event_msg"}"#,
            None,
        ),
        (br#"{"timestamp":"t","type":"#, None),
    ];
    for (line, kind) in cases {
        assert_eq!(head_kind(line), kind, "{}", String::from_utf8_lossy(line));
    }
}

/// A `kill -9` while a compaction was being written leaves a torn `compacted` line: the thread
/// reads as it was before the compaction (the last complete state), with a warning.
#[test]
fn a_torn_compaction_leaves_the_state_before_it() {
    let home = reader_test_home("torn-compact");
    let msg = |role: &str, text: &str| json!({"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]});
    let mut rollout = Rollout::create(&home, &meta(ID)).unwrap();
    rollout
        .append(&Entry::TurnStarted {
            turn_id: "t1".into(),
        })
        .unwrap();
    for item in [msg("user", "question"), msg("assistant", "answer")] {
        rollout.append(&Entry::ResponseItem(item)).unwrap();
    }
    let path = rollout.path().to_path_buf();
    drop(rollout);
    let whole = {
        let mut probe = Rollout::open(&path).unwrap();
        probe
            .append(&Entry::Compacted {
                message: "summary".into(),
                replacement_history: vec![msg("user", "summary")],
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let (before, compacted) = text.trim_end().rsplit_once('\n').unwrap();
        assert!(compacted.contains("\"type\":\"compacted\""), "{compacted}");
        let after = history_texts(&load(&path).unwrap().history);
        assert_eq!(after, ["summary"]);
        std::fs::write(
            &path,
            format!("{before}\n{}", &compacted[..compacted.len() / 2]),
        )
        .unwrap();
        before.to_string()
    };
    let loaded = load(&path).unwrap();
    assert_eq!(history_texts(&loaded.history), ["question", "answer"]);
    assert_eq!(loaded.warnings.len(), 1);
    // Resuming ends the torn line first; what follows reads.
    Rollout::open(&path)
        .unwrap()
        .append(&Entry::ResponseItem(msg("user", "next")))
        .unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().starts_with(&whole));
    let loaded = load(&path).unwrap();
    assert_eq!(
        history_texts(&loaded.history),
        ["question", "answer", "next"]
    );
    std::fs::remove_dir_all(home).unwrap();
}

/// Rollouts written on Windows keep their paths byte for byte, whatever platform reads them:
/// drive letters, `\` separators, UNC shares.
#[test]
fn windows_paths_read_back_verbatim() {
    let home = reader_test_home("winpaths");
    let drive = r"C:\Users\me\proj";
    let unc = r"\\server\share\repo";
    let path = file_with(
        &home,
        ID,
        &[
            codex_meta(ID, json!({"cwd": drive})),
            l(
                "turn_context",
                json!({"cwd": unc, "approval_policy": "never", "sandbox_policy": {"type": "danger-full-access"}, "model": "m", "summary": "auto"}),
            ),
            ev(json!({"type": "user_message", "message": "one"})),
            ev(
                json!({"type": "exec_command_end", "call_id": "c1", "command": ["dir"], "cwd": r"D:\x y\z", "stdout": "",
            "stderr": "", "aggregated_output": "", "exit_code": 0, "duration": {"secs": 0, "nanos": 0}, "formatted_output": ""}),
            ),
        ],
    );
    let loaded = load(&path).unwrap();
    assert_eq!(loaded.meta.cwd, drive);
    assert_eq!(loaded.last_context.unwrap().cwd, unc);
    let _ = std::fs::remove_dir_all(&home);
}

/// On Windows the session tree is found and moved with `\` separators.
#[cfg(windows)]
#[test]
fn windows_session_tree_is_found_archived_and_restored() {
    let home = reader_test_home("wintree");
    let path = file_with(&home, ID, &[codex_meta(ID, json!({"cwd": r"C:\w"}))]);
    let (found, archived) = crate::rollout::files::find(&home, ID).unwrap();
    assert!(!archived);
    assert_eq!(
        std::fs::canonicalize(&found).unwrap(),
        std::fs::canonicalize(&path).unwrap()
    );
    let moved = crate::rollout::files::archive(&home, &found).unwrap();
    assert!(moved.exists() && !path.exists());
    let restored = crate::rollout::files::unarchive(&home, &moved).unwrap();
    assert!(restored.starts_with(home.join("sessions").join("2026").join("11").join("30")));
    assert!(restored.exists());
}
