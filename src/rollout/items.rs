//! Thread items between our wire shape and Codex's rollout shapes. Our items travel as the
//! app-server's camelCase JSON (`{"type":"agentMessage",…}`); Codex's rollouts hold them twice:
//! as `item_completed` events carrying its core item (`{"type":"AgentMessage",…}`, the
//! 0.169 "paginated" files), and as the older one-event-per-kind messages (`user_message`,
//! `agent_message`, `patch_apply_end`, …) that Codex rebuilds `thread/read` turns from in
//! "legacy" files (those are `events.rs`'s). Pure JSON-to-JSON functions, no I/O; the reader
//! and the writer decide which to use.

use serde_json::{Map, Value, json};

pub(super) fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub(super) fn strings(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter(|s| s.is_string()).cloned().collect())
        .unwrap_or_default()
}

/// `{secs, nanos}` (a serialized `std::time::Duration`) to whole milliseconds.
pub(super) fn duration_ms(v: Option<&Value>) -> Value {
    let Some(d) = v.filter(|d| d.is_object()) else {
        return Value::Null;
    };
    let secs = d.get("secs").and_then(Value::as_u64).unwrap_or(0);
    let nanos = d.get("nanos").and_then(Value::as_u64).unwrap_or(0);
    json!(secs.saturating_mul(1000).saturating_add(nanos / 1_000_000))
}

pub(super) fn duration_of(ms: &Value) -> Option<Value> {
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
pub(super) fn command_text(argv: &Value) -> String {
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
                _ => crate::exec::shell_join(&words),
            }
        }
        _ => String::new(),
    }
}

/// Our `fileChange.changes` list → Codex's map path → `{type: add|delete, content}` or
/// `{type: update, unified_diff, move_path}`.
pub(super) fn changes_to_core(changes: &Value) -> Value {
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
pub(super) fn changes_from_core(changes: &Value) -> Value {
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

pub(super) fn rename_action(action: &Value, rename: fn(&str) -> String) -> Value {
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
