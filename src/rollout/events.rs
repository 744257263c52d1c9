//! Thread items as the older per-kind events (`user_message`, `agent_message`,
//! `agent_reasoning`, `patch_apply_end`, `mcp_tool_call_end`, `web_search_end`,
//! `context_compacted`, …): what Codex rebuilds the turns of a "legacy" thread from (the kind
//! we write), and what older Codex files hold instead of `item_completed`. Pure JSON-to-JSON.

use serde_json::{Value, json};

use super::items::{
    camel_case, changes_from_core, changes_to_core, command_text, duration_ms, duration_of,
    rename_action, snake_case, strings, text, uri_path,
};

/// The older per-kind events Codex rebuilds a legacy thread's turns from, for our item (none
/// for kinds it does not rebuild).
pub fn to_legacy_events(item: &Value, turn_id: &str) -> Vec<Value> {
    let Some(kind) = item.get("type").and_then(Value::as_str) else {
        return Vec::new();
    };
    match kind {
        "userMessage" => {
            let parts = item["content"].as_array().cloned().unwrap_or_default();
            let of = |t: &str, key: &str| -> Vec<Value> {
                parts
                    .iter()
                    .filter(|p| p["type"] == t)
                    .map(|p| p[key].clone())
                    .collect()
            };
            let message: String = parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect();
            vec![json!({
                "type": "user_message",
                "message": message,
                "images": of("image", "url"),
                "local_images": of("localImage", "path"),
                "text_elements": [],
            })]
        }
        "agentMessage" => vec![json!({
            "type": "agent_message",
            "message": text(item, "text"),
            "phase": null,
        })],
        "reasoning" => {
            let mut events: Vec<Value> = strings(item, "summary")
                .into_iter()
                .map(|t| json!({"type": "agent_reasoning", "text": t}))
                .collect();
            events.extend(
                strings(item, "content")
                    .into_iter()
                    .map(|t| json!({"type": "agent_reasoning_raw_content", "text": t})),
            );
            events
        }
        "fileChange" => {
            let status = item.get("status").and_then(Value::as_str).unwrap_or("");
            if status == "inProgress" {
                return Vec::new();
            }
            vec![json!({
                "type": "patch_apply_end",
                "call_id": item["id"],
                "turn_id": turn_id,
                "stdout": "",
                "stderr": "",
                "success": status == "completed",
                "changes": changes_to_core(&item["changes"]),
                "status": snake_case(status),
            })]
        }
        "mcpToolCall" => {
            if item["status"] == "inProgress" {
                return Vec::new();
            }
            let result = match (&item["error"], &item["result"]) {
                (Value::Object(error), _) => {
                    json!({"Err": error.get("message").cloned().unwrap_or(json!(""))})
                }
                (_, Value::Object(result)) => {
                    let mut ok = Value::Object(result.clone());
                    ok["isError"] = json!(item["status"] == "failed");
                    json!({"Ok": ok})
                }
                _ => json!({"Err": item["status"]}),
            };
            vec![json!({
                "type": "mcp_tool_call_end",
                "call_id": item["id"],
                "invocation": {
                    "server": item["server"],
                    "tool": item["tool"],
                    "arguments": item["arguments"],
                },
                "duration": duration_of(&item["durationMs"]).unwrap_or(json!({"secs": 0, "nanos": 0})),
                "result": result,
            })]
        }
        "webSearch" => vec![json!({
            "type": "web_search_end",
            "call_id": item["id"],
            "query": text(item, "query"),
            "action": item.get("action").filter(|a| !a.is_null()).map(|a| rename_action(a, snake_case)).unwrap_or(json!({"type": "other"})),
        })],
        "contextCompaction" => vec![json!({"type": "context_compacted"})],
        _ => Vec::new(),
    }
}

/// One older per-kind event as our item. Events without an id of their own take
/// `fallback_id`. `None` for events that are not items.
pub fn from_legacy_event(event: &Value, fallback_id: &str) -> Option<Value> {
    let kind = event.get("type").and_then(Value::as_str)?;
    let call_id = || event.get("call_id").cloned().unwrap_or(json!(fallback_id));
    Some(match kind {
        "user_message" => {
            let mut content = Vec::new();
            let message = text(event, "message");
            if !message.trim().is_empty() {
                content.push(json!({
                    "type": "text",
                    "text": message,
                    "text_elements": event.get("text_elements").cloned().unwrap_or(json!([])),
                }));
            }
            for url in strings(event, "images") {
                content.push(json!({"type": "image", "url": url}));
            }
            for path in strings(event, "local_images") {
                content.push(json!({"type": "localImage", "path": path}));
            }
            json!({"type": "userMessage", "id": fallback_id, "content": content})
        }
        "agent_message" => {
            json!({"type": "agentMessage", "id": fallback_id, "text": text(event, "message")})
        }
        "agent_reasoning" => json!({
            "type": "reasoning", "id": fallback_id, "summary": [text(event, "text")], "content": [],
        }),
        "agent_reasoning_raw_content" => json!({
            "type": "reasoning", "id": fallback_id, "summary": [], "content": [text(event, "text")],
        }),
        "exec_command_end" => json!({
            "type": "commandExecution",
            "id": call_id(),
            "command": command_text(&event["command"]),
            "cwd": uri_path(&text(event, "cwd")),
            "processId": event.get("process_id").cloned().unwrap_or(Value::Null),
            "source": camel_case(event.get("source").and_then(Value::as_str).unwrap_or("agent")),
            "status": event.get("status").and_then(Value::as_str).map(camel_case).unwrap_or_else(|| {
                if event["exit_code"] == 0 { "completed".into() } else { "failed".into() }
            }),
            "aggregatedOutput": event.get("aggregated_output").cloned().unwrap_or(Value::Null),
            "exitCode": event.get("exit_code").cloned().unwrap_or(Value::Null),
            "durationMs": duration_ms(event.get("duration")),
            "commandActions": [],
        }),
        "patch_apply_end" => json!({
            "type": "fileChange",
            "id": call_id(),
            "changes": changes_from_core(&event["changes"]),
            "status": event.get("status").and_then(Value::as_str).map(camel_case).unwrap_or_else(|| {
                if event["success"] == true { "completed".into() } else { "failed".into() }
            }),
        }),
        "mcp_tool_call_end" => {
            let invocation = &event["invocation"];
            let (result, error, ok) =
                match (event.pointer("/result/Ok"), event.pointer("/result/Err")) {
                    (Some(ok), _) => {
                        let failed = ok.get("isError").and_then(Value::as_bool).unwrap_or(false);
                        let mut ok = ok.clone();
                        if let Some(map) = ok.as_object_mut() {
                            map.remove("isError");
                        }
                        (ok, Value::Null, !failed)
                    }
                    (None, Some(err)) => (Value::Null, json!({"message": err}), false),
                    _ => (Value::Null, Value::Null, false),
                };
            json!({
                "type": "mcpToolCall",
                "id": call_id(),
                "server": text(invocation, "server"),
                "tool": text(invocation, "tool"),
                "arguments": invocation.get("arguments").cloned().unwrap_or(Value::Null),
                "status": if ok { "completed" } else { "failed" },
                "result": result,
                "error": error,
                "durationMs": duration_ms(event.get("duration")),
            })
        }
        "web_search_end" => json!({
            "type": "webSearch",
            "id": call_id(),
            "query": text(event, "query"),
            "action": event.get("action").map(|a| rename_action(a, camel_case)).unwrap_or(Value::Null),
        }),
        "view_image_tool_call" => json!({
            "type": "imageView", "id": call_id(), "path": uri_path(&text(event, "path")),
        }),
        "context_compacted" => json!({"type": "contextCompaction", "id": fallback_id}),
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Legacy events: what we write reads back as the item (ids aside, which these events lack
    /// for messages), and Codex's older shapes read as items.
    #[test]
    fn legacy_events_round_trip_and_read() {
        let user = json!({"type": "userMessage", "id": "item-1", "content": [
            {"type": "text", "text": "look", "text_elements": []},
            {"type": "image", "url": "data:image/png;base64,AA"}]});
        let events = to_legacy_events(&user, "t");
        assert_eq!(events.len(), 1);
        assert_eq!(from_legacy_event(&events[0], "item-1").unwrap(), user);

        let change = json!({"type": "fileChange", "id": "call_9", "status": "declined", "changes": [
            {"path": "/w/a", "kind": {"type": "add"}, "diff": "x\n"}]});
        let events = to_legacy_events(&change, "t");
        assert_eq!(events[0]["turn_id"], "t");
        assert_eq!(events[0]["status"], "declined");
        assert_eq!(from_legacy_event(&events[0], "unused").unwrap(), change);

        for item in [
            json!({"type": "mcpToolCall", "id": "m1", "server": "s", "tool": "t", "arguments": {"a": 1},
                "status": "completed", "result": {"content": [{"type": "text", "text": "ok"}], "structuredContent": null},
                "error": null, "durationMs": 12}),
            json!({"type": "mcpToolCall", "id": "m2", "server": "s", "tool": "t", "arguments": null,
                "status": "failed", "result": null, "error": {"message": "boom"}, "durationMs": 0}),
            json!({"type": "webSearch", "id": "w1", "query": "q", "action": {"type": "openPage", "url": "u"}}),
        ] {
            let events = to_legacy_events(&item, "t");
            assert_eq!(events.len(), 1, "{item}");
            assert_eq!(
                from_legacy_event(&events[0], "unused").unwrap(),
                item,
                "via {}",
                events[0]
            );
        }
        let reasoning =
            json!({"type": "reasoning", "id": "r", "summary": ["a", "b"], "content": []});
        assert_eq!(to_legacy_events(&reasoning, "t").len(), 2);
        assert_eq!(
            to_legacy_events(&json!({"type": "commandExecution", "id": "c"}), "t"),
            Vec::<Value>::new()
        );

        let cases = [
            (
                json!({"type": "exec_command_end", "call_id": "c1", "turn_id": "t",
                    "command": ["ls", "-l"], "cwd": "/w", "parsed_cmd": [], "stdout": "", "stderr": "",
                    "aggregated_output": "out", "exit_code": 1, "duration": {"secs": 0, "nanos": 2_000_000},
                    "formatted_output": ""}),
                json!({"type": "commandExecution", "id": "c1", "command": "ls -l", "cwd": "/w",
                    "processId": null, "source": "agent", "status": "failed", "aggregatedOutput": "out",
                    "exitCode": 1, "durationMs": 2, "commandActions": []}),
            ),
            (
                json!({"type": "mcp_tool_call_end", "call_id": "m1",
                    "invocation": {"server": "s", "tool": "t", "arguments": null},
                    "duration": {"secs": 0, "nanos": 0}, "result": {"Err": "no such tool"}}),
                json!({"type": "mcpToolCall", "id": "m1", "server": "s", "tool": "t", "arguments": null,
                    "status": "failed", "result": null, "error": {"message": "no such tool"},
                    "durationMs": 0}),
            ),
            (
                json!({"type": "context_compacted"}),
                json!({"type": "contextCompaction", "id": "item-7"}),
            ),
        ];
        for (event, item) in cases {
            assert_eq!(from_legacy_event(&event, "item-7").unwrap(), item);
        }
        assert_eq!(
            from_legacy_event(&json!({"type": "token_count"}), "x"),
            None
        );
    }
}
