//! The `exec --json` event stream (interop.md §2): app-server notifications of one turn
//! translated into the TypeScript SDK's events (`turn.started`, `item.started`/`updated`/
//! `completed` with snake_case items, `turn.completed` with the turn's usage, `turn.failed`,
//! `error`). The human-readable mode renders these same events, so both modes agree.
//!
//! Observed on the reference (`codex exec --experimental-json` 0.169): items get ids
//! `item_0`, `item_1`… in order of first appearance; agent messages and reasoning appear only
//! when completed; commands and file changes are started then completed (a command's
//! `exit_code` is `null` until it ends; a non-zero exit makes it `failed`); usage sums the
//! turn's model responses; warnings become `error` items.

use std::collections::HashMap;

use serde_json::{Value, json};

/// Translates one turn's notifications; remembers item ids, the plan and the usage.
#[derive(Default)]
pub struct EventMapper {
    /// Server item id → `item_<n>`.
    ids: HashMap<String, String>,
    /// The turn's to-do list item (id and items), once the model has made a plan.
    todo: Option<(String, Value)>,
    usage: Usage,
    /// The text of the last agent message.
    pub last_message: Option<String>,
    /// Set when the turn ended: whether it completed.
    pub outcome: Option<bool>,
}

#[derive(Default, Clone, Copy)]
struct Usage {
    input: i64,
    cached: i64,
    output: i64,
    reasoning: i64,
}

impl EventMapper {
    fn id_for(&mut self, server_id: &str) -> String {
        let next = self.ids.len();
        self.ids
            .entry(server_id.to_string())
            .or_insert_with(|| format!("item_{next}"))
            .clone()
    }

    fn fresh_id(&mut self) -> String {
        let key = format!("\u{0}synthetic-{}", self.ids.len());
        self.id_for(&key)
    }

    /// The events for one notification of the turn `turn_id` (others are ignored).
    pub fn on_notification(&mut self, method: &str, params: &Value, turn_id: &str) -> Vec<Value> {
        if params
            .get("turnId")
            .or_else(|| params.pointer("/turn/id"))
            .and_then(Value::as_str)
            .is_some_and(|t| t != turn_id)
        {
            return Vec::new();
        }
        match method {
            "turn/started" => vec![json!({"type": "turn.started"})],
            "item/started" => self.item_event("item.started", &params["item"], false),
            "item/completed" => self.item_event("item.completed", &params["item"], true),
            "turn/plan/updated" => self.plan_event(params),
            "thread/tokenUsage/updated" => {
                let last = &params["tokenUsage"]["last"];
                let get = |k: &str| last.get(k).and_then(Value::as_i64).unwrap_or(0);
                self.usage.input += get("inputTokens");
                self.usage.cached += get("cachedInputTokens");
                self.usage.output += get("outputTokens");
                self.usage.reasoning += get("reasoningOutputTokens");
                Vec::new()
            }
            "error" => {
                let message = params
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                vec![json!({"type": "error", "message": message})]
            }
            "turn/completed" => self.turn_completed(&params["turn"]),
            // A non-fatal problem (an ignored param, an unreadable AGENTS.md…): the SDK's
            // `error` item, as the reference reports its warnings.
            "warning" => {
                let message = params["message"].as_str().unwrap_or_default();
                let id = self.fresh_id();
                vec![json!({"type": "item.completed",
                    "item": {"id": id, "type": "error", "message": message}})]
            }
            _ => Vec::new(),
        }
    }

    fn plan_event(&mut self, params: &Value) -> Vec<Value> {
        let items: Vec<Value> = params["plan"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|step| {
                json!({
                    "text": step["step"].as_str().unwrap_or_default(),
                    "completed": step["status"] == "completed",
                })
            })
            .collect();
        let items = Value::Array(items);
        let (kind, id) = match &self.todo {
            Some((id, _)) => ("item.updated", id.clone()),
            None => ("item.started", self.fresh_id()),
        };
        self.todo = Some((id.clone(), items.clone()));
        vec![json!({"type": kind, "item": {"id": id, "type": "todo_list", "items": items}})]
    }

    fn turn_completed(&mut self, turn: &Value) -> Vec<Value> {
        let mut events = Vec::new();
        if let Some((id, items)) = self.todo.take() {
            events.push(json!({"type": "item.completed",
                "item": {"id": id, "type": "todo_list", "items": items}}));
        }
        let completed = turn["status"] == "completed";
        self.outcome = Some(completed);
        if completed {
            let u = self.usage;
            events.push(json!({"type": "turn.completed", "usage": {
                "input_tokens": u.input,
                "cached_input_tokens": u.cached,
                "cache_write_input_tokens": 0,
                "output_tokens": u.output,
                "reasoning_output_tokens": u.reasoning,
            }}));
        } else {
            let message = match turn.pointer("/error/message").and_then(Value::as_str) {
                Some(m) => m.to_string(),
                None if turn["status"] == "interrupted" => "turn interrupted".to_string(),
                None => format!("turn ended with status {}", turn["status"]),
            };
            events.push(json!({"type": "turn.failed", "error": {"message": message}}));
        }
        events
    }

    /// `item.started` / `item.completed` for the item kinds the SDK knows; none for the
    /// others (user messages, and kinds with no SDK counterpart).
    fn item_event(&mut self, kind: &str, item: &Value, done: bool) -> Vec<Value> {
        let server_id = item["id"].as_str().unwrap_or_default();
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let body = match item["type"].as_str().unwrap_or_default() {
            "agentMessage" if done => {
                self.last_message = Some(text(&item["text"]));
                json!({"type": "agent_message", "text": item["text"]})
            }
            "reasoning" if done => {
                let parts = item["summary"]
                    .as_array()
                    .filter(|s| !s.is_empty())
                    .or_else(|| item["content"].as_array());
                let joined: Vec<String> = parts
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(text)
                    .collect();
                let joined = joined.join("\n\n");
                if joined.trim().is_empty() {
                    return Vec::new();
                }
                json!({"type": "reasoning", "text": joined})
            }
            "commandExecution" => {
                let status = match item["status"].as_str() {
                    Some("inProgress") => "in_progress",
                    Some("completed") if item["exitCode"].as_i64().unwrap_or(0) == 0 => "completed",
                    _ => "failed",
                };
                json!({
                    "type": "command_execution",
                    "command": item["command"],
                    "aggregated_output": item["aggregatedOutput"].as_str().unwrap_or_default(),
                    "exit_code": item["exitCode"],
                    "status": status,
                })
            }
            "fileChange" => {
                let changes: Vec<Value> = item["changes"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| json!({"path": c["path"], "kind": c["kind"]["type"]}))
                    .collect();
                json!({"type": "file_change", "changes": changes,
                    "status": snake_status(&item["status"])})
            }
            "mcpToolCall" => {
                let mut body = json!({
                    "type": "mcp_tool_call",
                    "server": item["server"],
                    "tool": item["tool"],
                    "arguments": item["arguments"],
                    "status": snake_status(&item["status"]),
                });
                if let Some(result) = item.get("result").filter(|r| !r.is_null()) {
                    body["result"] = json!({
                        "content": result["content"],
                        "structured_content": result.get("structuredContent").cloned().unwrap_or(Value::Null),
                    });
                }
                if let Some(error) = item.get("error").filter(|e| !e.is_null()) {
                    body["error"] = json!({"message": error["message"]});
                }
                body
            }
            "webSearch" => json!({"type": "web_search", "query": item["query"]}),
            _ => return Vec::new(),
        };
        let mut body = body;
        body["id"] = json!(self.id_for(server_id));
        vec![json!({"type": kind, "item": body})]
    }
}

/// `inProgress` → `in_progress`; `declined` (no SDK counterpart) → `failed`.
fn snake_status(status: &Value) -> &'static str {
    match status.as_str() {
        Some("inProgress") => "in_progress",
        Some("completed") => "completed",
        _ => "failed",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn feed(mapper: &mut EventMapper, method: &str, params: Value) -> Vec<Value> {
        mapper.on_notification(method, &params, "t1")
    }

    #[test]
    fn a_turn_with_every_item_kind() {
        let mut m = EventMapper::default();
        let mut events = Vec::new();
        let cmd = |status: &str, exit: Value| {
            json!({"type": "commandExecution", "id": "call_1",
            "command": "echo hi", "cwd": "/w", "status": status, "aggregatedOutput": if exit.is_null() { Value::Null } else { json!("hi\n") },
            "exitCode": exit, "durationMs": null, "commandActions": []})
        };
        let steps: Vec<(&str, Value)> = vec![
            (
                "turn/started",
                json!({"threadId": "th", "turn": {"id": "t1", "items": [], "status": "inProgress", "error": null}}),
            ),
            (
                "item/started",
                json!({"threadId": "th", "turnId": "t1", "item": {"type": "userMessage", "id": "u", "content": []}}),
            ),
            (
                "item/started",
                json!({"threadId": "th", "turnId": "t1", "item": {"type": "reasoning", "id": "rs", "summary": [], "content": []}}),
            ),
            (
                "item/completed",
                json!({"threadId": "th", "turnId": "t1", "item": {"type": "reasoning", "id": "rs", "summary": ["Look first"], "content": []}}),
            ),
            (
                "item/started",
                json!({"threadId": "th", "turnId": "t1", "item": cmd("inProgress", Value::Null)}),
            ),
            (
                "item/completed",
                json!({"threadId": "th", "turnId": "t1", "item": cmd("completed", json!(0))}),
            ),
            (
                "item/completed",
                json!({"threadId": "th", "turnId": "t1", "item": cmd("completed", json!(3))}),
            ),
            (
                "turn/plan/updated",
                json!({"threadId": "th", "turnId": "t1", "plan": [{"step": "a", "status": "completed"}, {"step": "b", "status": "inProgress"}]}),
            ),
            (
                "turn/plan/updated",
                json!({"threadId": "th", "turnId": "t1", "plan": [{"step": "a", "status": "completed"}, {"step": "b", "status": "completed"}]}),
            ),
            (
                "item/started",
                json!({"threadId": "th", "turnId": "t1", "item": {"type": "fileChange", "id": "call_2", "status": "inProgress",
                "changes": [{"path": "/w/a", "kind": {"type": "add"}, "diff": ""}, {"path": "/w/b", "kind": {"type": "update", "move_path": null}, "diff": ""}]}}),
            ),
            (
                "item/completed",
                json!({"threadId": "th", "turnId": "t1", "item": {"type": "fileChange", "id": "call_2", "status": "declined", "changes": []}}),
            ),
            (
                "item/completed",
                json!({"threadId": "th", "turnId": "t1", "item": {"type": "mcpToolCall", "id": "m", "server": "s", "tool": "t",
                "arguments": {"x": 1}, "status": "completed", "result": {"content": [], "structuredContent": {"ok": true}}, "error": null}}),
            ),
            (
                "item/started",
                json!({"threadId": "th", "turnId": "t1", "item": {"type": "agentMessage", "id": "msg", "text": ""}}),
            ),
            (
                "item/completed",
                json!({"threadId": "th", "turnId": "t1", "item": {"type": "agentMessage", "id": "msg", "text": "Done"}}),
            ),
            (
                "item/completed",
                json!({"threadId": "th", "turnId": "other", "item": {"type": "agentMessage", "id": "x", "text": "not ours"}}),
            ),
            (
                "thread/tokenUsage/updated",
                json!({"threadId": "th", "turnId": "t1", "tokenUsage": {"last": {"inputTokens": 10, "cachedInputTokens": 4, "outputTokens": 5, "reasoningOutputTokens": 2, "totalTokens": 15}, "total": {}}}),
            ),
            (
                "thread/tokenUsage/updated",
                json!({"threadId": "th", "turnId": "t1", "tokenUsage": {"last": {"inputTokens": 20, "cachedInputTokens": 0, "outputTokens": 1, "reasoningOutputTokens": 0, "totalTokens": 21}, "total": {}}}),
            ),
            (
                "turn/completed",
                json!({"threadId": "th", "turn": {"id": "t1", "items": [], "status": "completed", "error": null}}),
            ),
        ];
        for (method, params) in steps {
            events.extend(feed(&mut m, method, params));
        }
        let want = [
            r#"{"type":"turn.started"}"#,
            r#"{"item":{"id":"item_0","text":"Look first","type":"reasoning"},"type":"item.completed"}"#,
            r#"{"item":{"id":"item_1","aggregated_output":"","command":"echo hi","exit_code":null,"status":"in_progress","type":"command_execution"},"type":"item.started"}"#,
            r#"{"item":{"id":"item_1","aggregated_output":"hi\n","command":"echo hi","exit_code":0,"status":"completed","type":"command_execution"},"type":"item.completed"}"#,
            r#"{"item":{"id":"item_1","aggregated_output":"hi\n","command":"echo hi","exit_code":3,"status":"failed","type":"command_execution"},"type":"item.completed"}"#,
            r#"{"item":{"id":"item_2","items":[{"completed":true,"text":"a"},{"completed":false,"text":"b"}],"type":"todo_list"},"type":"item.started"}"#,
            r#"{"item":{"id":"item_2","items":[{"completed":true,"text":"a"},{"completed":true,"text":"b"}],"type":"todo_list"},"type":"item.updated"}"#,
            r#"{"item":{"id":"item_3","changes":[{"kind":"add","path":"/w/a"},{"kind":"update","path":"/w/b"}],"status":"in_progress","type":"file_change"},"type":"item.started"}"#,
            r#"{"item":{"id":"item_3","changes":[],"status":"failed","type":"file_change"},"type":"item.completed"}"#,
            r#"{"item":{"id":"item_4","arguments":{"x":1},"result":{"content":[],"structured_content":{"ok":true}},"server":"s","status":"completed","tool":"t","type":"mcp_tool_call"},"type":"item.completed"}"#,
            r#"{"item":{"id":"item_5","text":"Done","type":"agent_message"},"type":"item.completed"}"#,
            r#"{"item":{"id":"item_2","items":[{"completed":true,"text":"a"},{"completed":true,"text":"b"}],"type":"todo_list"},"type":"item.completed"}"#,
            r#"{"type":"turn.completed","usage":{"cache_write_input_tokens":0,"cached_input_tokens":4,"input_tokens":30,"output_tokens":6,"reasoning_output_tokens":2}}"#,
        ];
        let want: Vec<Value> = want
            .iter()
            .map(|w| serde_json::from_str(w).unwrap())
            .collect();
        assert_eq!(events, want);
        assert_eq!(m.last_message.as_deref(), Some("Done"));
        assert_eq!(m.outcome, Some(true));
    }

    #[test]
    fn warnings_become_error_items() {
        let mut m = EventMapper::default();
        let events = feed(
            &mut m,
            "warning",
            json!({"threadId": "th", "message": "thread/start: `personality` is not supported"}),
        );
        assert_eq!(
            events,
            [
                json!({"type": "item.completed", "item": {"id": "item_0", "type": "error",
                "message": "thread/start: `personality` is not supported"}})
            ]
        );
    }

    #[test]
    fn a_failed_turn() {
        let cases: &[(Value, &str)] = &[
            (
                json!({"id": "t1", "status": "failed", "error": {"message": "boom", "codexErrorInfo": "other"}}),
                "boom",
            ),
            (
                json!({"id": "t1", "status": "interrupted", "error": null}),
                "turn interrupted",
            ),
        ];
        for (turn, message) in cases {
            let mut m = EventMapper::default();
            let mut events = feed(
                &mut m,
                "error",
                json!({"threadId": "th", "turnId": "t1", "willRetry": false, "error": {"message": "boom"}}),
            );
            events.extend(feed(
                &mut m,
                "turn/completed",
                json!({"threadId": "th", "turn": turn}),
            ));
            assert_eq!(events[0], json!({"type": "error", "message": "boom"}));
            assert_eq!(
                events[1],
                json!({"type": "turn.failed", "error": {"message": message}})
            );
            assert_eq!(m.outcome, Some(false));
        }
    }
}
