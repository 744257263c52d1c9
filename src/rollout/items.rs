//! Thread items between our wire shape and Codex's rollout shapes. Our items travel as the
//! app-server's camelCase JSON (`{"type":"agentMessage",…}`); Codex's rollouts hold them twice:
//! as `item_completed` events carrying its core item (`{"type":"AgentMessage",…}`, the
//! 0.169 "paginated" files), and as the older one-event-per-kind messages (`user_message`,
//! `agent_message`, `patch_apply_end`, …) that Codex rebuilds `thread/read` turns from in
//! "legacy" files. Pure JSON-to-JSON functions, no I/O; the reader and the writer decide which
//! to use.

use serde_json::{Map, Value, json};

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn strings(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter(|s| s.is_string()).cloned().collect())
        .unwrap_or_default()
}

/// `{secs, nanos}` (a serialized `std::time::Duration`) to whole milliseconds.
fn duration_ms(v: Option<&Value>) -> Value {
    let Some(d) = v.filter(|d| d.is_object()) else {
        return Value::Null;
    };
    let secs = d.get("secs").and_then(Value::as_u64).unwrap_or(0);
    let nanos = d.get("nanos").and_then(Value::as_u64).unwrap_or(0);
    json!(secs.saturating_mul(1000).saturating_add(nanos / 1_000_000))
}

fn duration_of(ms: &Value) -> Option<Value> {
    let ms = ms.as_u64()?;
    Some(json!({"secs": ms / 1000, "nanos": (ms % 1000) * 1_000_000}))
}

/// A path as the `file://` URI Codex stores (bytes outside the unreserved set and `/` escaped).
pub fn path_uri(path: &str) -> String {
    let mut out = String::from("file://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `file://` URI (or a plain path) back to a path.
pub fn uri_path(uri: &str) -> String {
    let Some(rest) = uri.strip_prefix("file://") else {
        return uri.to_string();
    };
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `someName` → `some_name`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `some_name` → `someName`.
pub fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames a unit variant (`"contextWindowExceeded"`) or the one key of a struct variant and
/// that struct's keys, with `rename`: how `codex_error_info` differs between the wire
/// (camelCase) and rollouts (snake_case).
pub fn rename_variant(value: &Value, rename: fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(rename(s)),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let inner = match v {
                        Value::Object(fields) => Value::Object(
                            fields.iter().map(|(k, v)| (rename(k), v.clone())).collect(),
                        ),
                        other => other.clone(),
                    };
                    (rename(k), inner)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The command string of a Codex argv: one word as it is, several joined as a shell would
/// read them back.
fn command_text(argv: &Value) -> String {
    match argv {
        Value::String(s) => s.clone(),
        Value::Array(words) => {
            let words: Vec<String> = words
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            match words.as_slice() {
                [one] => one.clone(),
                _ => shell_join(&words),
            }
        }
        _ => String::new(),
    }
}

/// Words joined as a POSIX shell reads them back (quoted when they hold anything else than
/// plain characters).
fn shell_join(words: &[String]) -> String {
    let quote = |word: &String| {
        let plain = !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
        if plain {
            word.clone()
        } else {
            format!("'{}'", word.replace('\'', "'\\''"))
        }
    };
    words.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// Our `fileChange.changes` list → Codex's map path → `{type: add|delete, content}` or
/// `{type: update, unified_diff, move_path}`.
fn changes_to_core(changes: &Value) -> Value {
    let mut map = Map::new();
    for change in changes.as_array().into_iter().flatten() {
        let kind = change.pointer("/kind/type").and_then(Value::as_str);
        let diff = text(change, "diff");
        let core = match kind {
            Some("add") => json!({"type": "add", "content": diff}),
            Some("delete") => json!({"type": "delete", "content": diff}),
            _ => json!({
                "type": "update",
                "unified_diff": diff,
                "move_path": change.pointer("/kind/move_path").cloned().unwrap_or(Value::Null),
            }),
        };
        map.insert(text(change, "path"), core);
    }
    Value::Object(map)
}

/// Codex's change map → our list, sorted by path.
fn changes_from_core(changes: &Value) -> Value {
    let mut list: Vec<(String, Value)> = changes
        .as_object()
        .into_iter()
        .flatten()
        .map(|(path, change)| {
            let kind = change
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("update");
            let (kind, diff) = match kind {
                "add" | "delete" => (json!({"type": kind}), text(change, "content")),
                _ => (
                    json!({
                        "type": "update",
                        "move_path": change.get("move_path").cloned().unwrap_or(Value::Null),
                    }),
                    text(change, "unified_diff"),
                ),
            };
            (
                path.clone(),
                json!({"path": path, "kind": kind, "diff": diff}),
            )
        })
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Array(list.into_iter().map(|(_, v)| v).collect())
}

fn user_content_to_core(content: &Value) -> Value {
    let parts = content.as_array().into_iter().flatten().map(|part| {
        match part.get("type").and_then(Value::as_str) {
            Some("image") => json!({"type": "image", "image_url": text(part, "url")}),
            Some("localImage") => json!({"type": "local_image", "path": text(part, "path")}),
            _ => json!({
                "type": "text",
                "text": text(part, "text"),
                "text_elements": part.get("text_elements").cloned().unwrap_or(json!([])),
            }),
        }
    });
    Value::Array(parts.collect())
}

fn user_content_from_core(content: &Value) -> Value {
    let parts = content.as_array().into_iter().flatten().filter_map(|part| {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => Some(json!({
                "type": "text",
                "text": text(part, "text"),
                "text_elements": part.get("text_elements").cloned().unwrap_or(json!([])),
            })),
            Some("image") => {
                let url = part.get("image_url").or_else(|| part.get("url"));
                Some(json!({"type": "image", "url": url.cloned().unwrap_or(json!(""))}))
            }
            Some("local_image") => Some(json!({"type": "localImage", "path": text(part, "path")})),
            _ => None,
        }
    });
    Value::Array(parts.collect())
}

/// Our item as Codex's core item (what an `item_completed` event carries), or `None` for a
/// kind Codex has no core item for.
pub fn to_core(item: &Value) -> Option<Value> {
    let id = item.get("id").cloned().unwrap_or(json!(""));
    let kind = item.get("type").and_then(Value::as_str)?;
    Some(match kind {
        "userMessage" => json!({
            "type": "UserMessage",
            "id": id,
            "content": user_content_to_core(&item["content"]),
        }),
        "agentMessage" => json!({
            "type": "AgentMessage",
            "id": id,
            "content": [{"type": "Text", "text": text(item, "text")}],
        }),
        "reasoning" => json!({
            "type": "Reasoning",
            "id": id,
            "summary_text": strings(item, "summary"),
            "raw_content": strings(item, "content"),
        }),
        "plan" => json!({"type": "Plan", "id": id, "text": text(item, "text")}),
        "commandExecution" => {
            let mut core = json!({
                "type": "CommandExecution",
                "id": id,
                "command": [text(item, "command")],
                "cwd": path_uri(&text(item, "cwd")),
                "parsed_cmd": [],
                "source": snake_case(item.get("source").and_then(Value::as_str).unwrap_or("agent")),
                "status": item.get("status").cloned().unwrap_or(json!("completed")),
            });
            for (ours, theirs) in [
                ("aggregatedOutput", "aggregated_output"),
                ("exitCode", "exit_code"),
                ("processId", "process_id"),
            ] {
                if let Some(v) = item.get(ours).filter(|v| !v.is_null()) {
                    core[theirs] = v.clone();
                }
            }
            if let Some(d) = item.get("durationMs").and_then(duration_of) {
                core["duration"] = d;
            }
            core
        }
        "fileChange" => {
            let mut core = json!({
                "type": "FileChange",
                "id": id,
                "changes": changes_to_core(&item["changes"]),
            });
            if let Some(status) = item
                .get("status")
                .and_then(Value::as_str)
                .filter(|s| *s != "inProgress")
            {
                core["status"] = json!(snake_case(status));
            }
            core
        }
        "mcpToolCall" | "dynamicToolCall" => {
            let mut core = item.clone();
            core["type"] = json!(if kind == "mcpToolCall" {
                "McpToolCall"
            } else {
                "DynamicToolCall"
            });
            if let Some(map) = core.as_object_mut()
                && let Some(ms) = map.remove("durationMs")
                && let Some(d) = duration_of(&ms)
            {
                map.insert("duration".into(), d);
            }
            core
        }
        "webSearch" => json!({
            "type": "WebSearch",
            "id": id,
            "query": text(item, "query"),
            "action": item.get("action").map(|a| rename_action(a, snake_case)).unwrap_or(json!({"type": "other"})),
        }),
        "imageView" => {
            json!({"type": "ImageView", "id": id, "path": path_uri(&text(item, "path"))})
        }
        "contextCompaction" => json!({"type": "ContextCompaction", "id": id}),
        _ => return None,
    })
}

fn rename_action(action: &Value, rename: fn(&str) -> String) -> Value {
    let mut out = action.clone();
    if let Some(kind) = action.get("type").and_then(Value::as_str) {
        out["type"] = json!(rename(kind));
    }
    out
}

/// A Codex core item as our item, or `None` for a kind we do not show.
pub fn from_core(core: &Value) -> Option<Value> {
    let id = core.get("id").cloned().unwrap_or(json!(""));
    let kind = core.get("type").and_then(Value::as_str)?;
    Some(match kind {
        "UserMessage" => json!({
            "type": "userMessage",
            "id": id,
            "content": user_content_from_core(&core["content"]),
        }),
        "AgentMessage" => {
            let text: String = core["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect();
            json!({"type": "agentMessage", "id": id, "text": text})
        }
        "Reasoning" => json!({
            "type": "reasoning",
            "id": id,
            "summary": strings(core, "summary_text"),
            "content": strings(core, "raw_content"),
        }),
        "Plan" => json!({"type": "plan", "id": id, "text": text(core, "text")}),
        "CommandExecution" => json!({
            "type": "commandExecution",
            "id": id,
            "command": command_text(&core["command"]),
            "cwd": uri_path(&text(core, "cwd")),
            "processId": core.get("process_id").cloned().unwrap_or(Value::Null),
            "source": camel_case(core.get("source").and_then(Value::as_str).unwrap_or("agent")),
            "status": core.get("status").and_then(Value::as_str).map(camel_case).unwrap_or("completed".into()),
            "aggregatedOutput": core.get("aggregated_output").cloned().unwrap_or(Value::Null),
            "exitCode": core.get("exit_code").cloned().unwrap_or(Value::Null),
            "durationMs": duration_ms(core.get("duration")),
            "commandActions": [],
        }),
        "FileChange" => json!({
            "type": "fileChange",
            "id": id,
            "changes": changes_from_core(&core["changes"]),
            "status": core.get("status").and_then(Value::as_str).map(camel_case).unwrap_or("inProgress".into()),
        }),
        "McpToolCall" | "DynamicToolCall" => {
            let mut item = core.clone();
            item["type"] = json!(if kind == "McpToolCall" {
                "mcpToolCall"
            } else {
                "dynamicToolCall"
            });
            if let Some(map) = item.as_object_mut() {
                let ms = duration_ms(map.remove("duration").as_ref());
                map.insert("durationMs".into(), ms);
                if kind == "McpToolCall"
                    && let Some(result) = map.get_mut("result").and_then(Value::as_object_mut)
                {
                    result.remove("isError");
                }
            }
            item
        }
        "WebSearch" => json!({
            "type": "webSearch",
            "id": id,
            "query": text(core, "query"),
            "action": core.get("action").map(|a| rename_action(a, camel_case)).unwrap_or(Value::Null),
        }),
        "ImageView" => {
            json!({"type": "imageView", "id": id, "path": uri_path(&text(core, "path"))})
        }
        "ContextCompaction" => json!({"type": "contextCompaction", "id": id}),
        _ => return None,
    })
}

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

    /// Our item → core → ours is the identity for every kind we write.
    #[test]
    fn items_survive_the_core_shape() {
        let cases = [
            json!({"type": "userMessage", "id": "u1", "content": [
                {"type": "text", "text": "hi", "text_elements": []},
                {"type": "image", "url": "https://x/y.png"},
                {"type": "localImage", "path": "/tmp/a b.png"}]}),
            json!({"type": "agentMessage", "id": "m1", "text": "hello"}),
            json!({"type": "reasoning", "id": "r1", "summary": ["s1", "s2"], "content": ["raw"]}),
            json!({"type": "plan", "id": "p1", "text": "1. do"}),
            json!({"type": "commandExecution", "id": "c1", "command": "echo 'a b'", "cwd": "/w s/x",
                "processId": null, "source": "agent", "status": "failed", "aggregatedOutput": "boom\n",
                "exitCode": 2, "durationMs": 1500, "commandActions": []}),
            json!({"type": "fileChange", "id": "f1", "status": "completed", "changes": [
                {"path": "/w/a", "kind": {"type": "add"}, "diff": "x\n"},
                {"path": "/w/b", "kind": {"type": "update", "move_path": "/w/c"}, "diff": "@@\n-a\n+b\n"},
                {"path": "/w/d", "kind": {"type": "delete"}, "diff": "gone\n"}]}),
            json!({"type": "mcpToolCall", "id": "t1", "server": "s", "tool": "echo",
                "arguments": {"a": 1}, "status": "completed",
                "result": {"content": [{"type": "text", "text": "ok"}], "structuredContent": null},
                "error": null, "durationMs": 7}),
            json!({"type": "webSearch", "id": "w1", "query": "q", "action": {"type": "openPage", "url": "u"}}),
            json!({"type": "imageView", "id": "i1", "path": "/w/p.png"}),
            json!({"type": "contextCompaction", "id": "k1"}),
        ];
        for item in cases {
            let core = to_core(&item).unwrap_or_else(|| panic!("no core shape for {item}"));
            assert_eq!(from_core(&core).unwrap(), item, "via {core}");
        }
        assert_eq!(to_core(&json!({"type": "somethingNew", "id": "x"})), None);
        assert_eq!(from_core(&json!({"type": "Sleep", "id": "x"})), None);
    }

    /// The shapes of Codex 0.169.0's own `item_completed` events (fixtures) as our items.
    #[test]
    fn codex_core_items_read_as_ours() {
        let cases = [
            (
                json!({"type": "CommandExecution", "id": "call_1", "process_id": "75681",
                    "command": ["/bin/bash", "-lc", "echo fixture-shell"], "cwd": "file:///tmp/w%20s",
                    "parsed_cmd": [{"type": "unknown", "cmd": "echo fixture-shell"}],
                    "source": "unified_exec_startup", "status": "completed",
                    "aggregated_output": "fixture-shell\n", "exit_code": 0,
                    "duration": {"secs": 1, "nanos": 17_573_000}}),
                json!({"type": "commandExecution", "id": "call_1", "processId": "75681",
                    "command": "/bin/bash -lc 'echo fixture-shell'", "cwd": "/tmp/w s",
                    "source": "unifiedExecStartup", "status": "completed",
                    "aggregatedOutput": "fixture-shell\n", "exitCode": 0, "durationMs": 1017,
                    "commandActions": []}),
            ),
            (
                json!({"type": "FileChange", "id": "call_2", "changes": {
                    "/w/notes.txt": {"type": "update", "unified_diff": "@@ -1 +1 @@\n", "move_path": null}},
                    "status": "completed", "stdout": "Success.", "stderr": ""}),
                json!({"type": "fileChange", "id": "call_2", "status": "completed", "changes": [
                    {"path": "/w/notes.txt", "kind": {"type": "update", "move_path": null},
                     "diff": "@@ -1 +1 @@\n"}]}),
            ),
            (
                json!({"type": "McpToolCall", "id": "call_3", "server": "fixture", "tool": "echo",
                    "arguments": {"text": "x"}, "readOnlyHint": true, "status": "completed",
                    "result": {"content": [], "structuredContent": {"r": 1}, "isError": false},
                    "duration": {"secs": 0, "nanos": 3_993_582}}),
                json!({"type": "mcpToolCall", "id": "call_3", "server": "fixture", "tool": "echo",
                    "arguments": {"text": "x"}, "readOnlyHint": true, "status": "completed",
                    "result": {"content": [], "structuredContent": {"r": 1}}, "durationMs": 3}),
            ),
            (
                json!({"type": "UserMessage", "id": "u", "content": [
                    {"type": "text", "text": "Hi", "text_elements": []}, {"type": "mention", "x": 1}]}),
                json!({"type": "userMessage", "id": "u", "content": [
                    {"type": "text", "text": "Hi", "text_elements": []}]}),
            ),
        ];
        for (core, ours) in cases {
            assert_eq!(from_core(&core).unwrap(), ours);
        }
    }

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

    #[test]
    fn names_paths_and_error_classes() {
        assert_eq!(
            snake_case("contextWindowExceeded"),
            "context_window_exceeded"
        );
        assert_eq!(camel_case("usage_limit_exceeded"), "usageLimitExceeded");
        let ours = json!({"httpConnectionFailed": {"httpStatusCode": 401}});
        let theirs = rename_variant(&ours, snake_case);
        assert_eq!(
            theirs,
            json!({"http_connection_failed": {"http_status_code": 401}})
        );
        assert_eq!(rename_variant(&theirs, camel_case), ours);
        assert_eq!(rename_variant(&json!("other"), snake_case), json!("other"));
        for path in ["/tmp/plain", "/tmp/a b/é%", "/"] {
            assert_eq!(uri_path(&path_uri(path)), path);
        }
        assert_eq!(path_uri("/a b"), "file:///a%20b");
        assert_eq!(uri_path("/not/a/uri"), "/not/a/uri");
        assert_eq!(uri_path("file:///bad%zz"), "/bad%zz");
    }
}
