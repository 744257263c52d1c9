//! Dynamic tools (context.md §3): tools the client defines in `thread/start.dynamicTools`
//! (functions, or namespaces of functions), offered to the model as function tools and run by
//! the client: each call becomes a `dynamicToolCall` item and an `item/tool/call` request; the
//! client's answer is the tool's output. The specs are kept with the thread (rollout metadata)
//! and offered again on resume. Waiting for the client never blocks the server, and an
//! interrupt or a closed connection ends the wait.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{Value, json};

use super::client_request::{self, Reply};
use super::{CallResult, ToolCall};
use crate::protocol::notify::DynamicToolCall;
use crate::protocol::{ItemStatus, ThreadItem};
use crate::turn::TurnRunner;

/// Names of our own tools, which a client tool may not take.
const RESERVED_NAMES: &[&str] = &[
    "shell",
    "shell_command",
    "local_shell",
    "apply_patch",
    "exec_command",
    "write_stdin",
    "update_plan",
    "view_image",
    "web_search",
];
/// Longest tool name the Responses API accepts.
const MAX_NAME_LEN: usize = 64;

/// Checks `thread/start.dynamicTools` (the schema's `DynamicToolSpec`s); the specs are kept
/// as given. Also returns warnings for fields accepted but not honoured.
pub fn validate(specs: &[Value]) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    let mut top = HashSet::new();
    for spec in specs {
        let name = check_name(spec)?;
        if RESERVED_NAMES.contains(&name) {
            return Err(format!(
                "dynamic tool `{name}` has the name of a built-in tool"
            ));
        }
        if !top.insert(name) {
            return Err(format!("dynamic tool `{name}` is defined twice"));
        }
        match kind(spec) {
            "function" => check_function(spec, name, &mut warnings)?,
            "namespace" => {
                let tools = spec
                    .get("tools")
                    .and_then(Value::as_array)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        format!("dynamic tool namespace `{name}` needs a non-empty `tools` list")
                    })?;
                let mut inner = HashSet::new();
                for tool in tools {
                    let tool_name = check_name(tool)?;
                    if kind(tool) != "function" {
                        return Err(format!(
                            "namespace `{name}`: tool `{tool_name}` must be a function"
                        ));
                    }
                    if !inner.insert(tool_name) {
                        return Err(format!(
                            "namespace `{name}`: tool `{tool_name}` is defined twice"
                        ));
                    }
                    check_function(tool, tool_name, &mut warnings)?;
                }
                check_description(spec, name)?;
            }
            other => return Err(format!("dynamic tool `{name}`: unknown type `{other}`")),
        }
    }
    Ok(warnings)
}

fn kind(spec: &Value) -> &str {
    spec.get("type").and_then(Value::as_str).unwrap_or_default()
}

fn check_name(spec: &Value) -> Result<&str, String> {
    let name = spec
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| "every dynamic tool needs a string `name`".to_string())?;
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(format!(
            "dynamic tool name `{name}` must be 1–64 letters, digits, `_` or `-`"
        ));
    }
    Ok(name)
}

fn check_description(spec: &Value, name: &str) -> Result<(), String> {
    match spec.get("description") {
        Some(Value::String(_)) => Ok(()),
        _ => Err(format!(
            "dynamic tool `{name}` needs a string `description`"
        )),
    }
}

fn check_function(spec: &Value, name: &str, warnings: &mut Vec<String>) -> Result<(), String> {
    check_description(spec, name)?;
    if !spec.get("inputSchema").is_some_and(Value::is_object) {
        return Err(format!(
            "dynamic tool `{name}` needs an `inputSchema` object"
        ));
    }
    if spec.get("deferLoading").and_then(Value::as_bool) == Some(true) {
        warnings.push(format!(
            "dynamic tool `{name}`: deferLoading is not supported; the tool is offered from the start"
        ));
    }
    Ok(())
}

fn function_tool(spec: &Value) -> Value {
    json!({
        "type": "function",
        "name": spec["name"],
        "description": spec["description"],
        "strict": false,
        "parameters": spec["inputSchema"],
    })
}

/// The tools offered to the model for `specs`: functions, and namespaces of functions.
pub fn definitions(specs: &[Value]) -> Vec<Value> {
    specs
        .iter()
        .map(|spec| match kind(spec) {
            "namespace" => json!({
                "type": "namespace",
                "name": spec["name"],
                "description": spec["description"],
                "tools": spec["tools"].as_array().map(|t| t.iter().map(function_tool).collect::<Vec<_>>()),
            }),
            _ => function_tool(spec),
        })
        .collect()
}

/// Whether `specs` define the tool a call names.
pub fn defines(specs: &[Value], namespace: Option<&str>, name: &str) -> bool {
    let named =
        |spec: &&Value, wanted: &str| spec.get("name").and_then(Value::as_str) == Some(wanted);
    match namespace {
        None => specs
            .iter()
            .any(|spec| kind(spec) == "function" && named(&spec, name)),
        Some(ns) => specs
            .iter()
            .filter(|spec| kind(spec) == "namespace" && named(spec, ns))
            .flat_map(|spec| spec["tools"].as_array().into_iter().flatten())
            .any(|tool| named(&tool, name)),
    }
}

/// How a call ended.
enum Answer {
    /// The client answered: its content items and verdict.
    Done(Vec<Value>, bool),
    /// The client answered with an error.
    Failed(String),
    /// Interrupted, or the connection closed.
    Aborted,
}

/// Runs one call of a client tool: the item, the request, the wait, the output.
pub fn run(turn: &mut TurnRunner, call: &ToolCall) -> CallResult {
    let arguments = serde_json::from_str::<Value>(&call.payload)
        .unwrap_or_else(|_| Value::String(call.payload.clone()));
    let started = Instant::now();
    let item = |status, content_items, success, duration_ms| ThreadItem::DynamicToolCall {
        id: call.call_id.clone(),
        namespace: call.namespace.clone(),
        tool: call.name.clone(),
        arguments: arguments.clone(),
        status,
        content_items,
        success,
        duration_ms,
    };
    turn.item_started(&item(ItemStatus::InProgress, None, None, None));
    let answer = ask_client(turn, call, &arguments);
    let duration = Some(started.elapsed().as_millis() as i64);
    let (status, items, success, output) = match answer {
        Answer::Done(items, success) => {
            let status = if success {
                ItemStatus::Completed
            } else {
                ItemStatus::Failed
            };
            let output = output_of(&items);
            (status, items, success, output)
        }
        Answer::Failed(message) => {
            let text = format!("dynamic tool call failed: {message}");
            let items = vec![json!({"type": "inputText", "text": text})];
            (ItemStatus::Failed, items, false, Value::String(text))
        }
        Answer::Aborted => {
            let text = "aborted: the turn was interrupted".to_string();
            let items = vec![json!({"type": "inputText", "text": text})];
            (ItemStatus::Failed, items, false, Value::String(text))
        }
    };
    turn.item_completed(item(status, Some(items), Some(success), duration));
    CallResult {
        output: json!({"type": "function_call_output", "call_id": call.call_id, "output": output}),
        cancelled: false,
    }
}

fn ask_client(turn: &mut TurnRunner, call: &ToolCall, arguments: &Value) -> Answer {
    let params = json!(DynamicToolCall {
        thread_id: &turn.thread_id,
        turn_id: &turn.turn_id,
        call_id: &call.call_id,
        namespace: call.namespace.as_deref(),
        tool: &call.name,
        arguments,
    });
    match client_request::send_and_wait(turn, "item/tool/call", &params) {
        (_, Reply::Result(result)) => parse_answer(&result),
        (_, Reply::Error(error)) => Answer::Failed(error.to_string()),
        (request_id, Reply::Cancelled) => {
            // Nobody waits for the answer any more; tell the client the request is moot.
            client_request::resolved(turn, request_id);
            Answer::Aborted
        }
    }
}

/// Reads a `DynamicToolCallResponse`; a malformed one is a failure naming what is wrong.
fn parse_answer(result: &Value) -> Answer {
    let Some(items) = result.get("contentItems").and_then(Value::as_array) else {
        return Answer::Failed("the client's answer has no contentItems list".to_string());
    };
    let Some(success) = result.get("success").and_then(Value::as_bool) else {
        return Answer::Failed("the client's answer has no success flag".to_string());
    };
    let known = |item: &&Value| {
        matches!(
            (item.get("type").and_then(Value::as_str), item),
            (Some("inputText"), i) if i.get("text").is_some_and(Value::is_string)
        ) || matches!(
            (item.get("type").and_then(Value::as_str), item),
            (Some("inputImage"), i) if i.get("imageUrl").is_some_and(Value::is_string)
        )
    };
    if let Some(bad) = items.iter().find(|item| !known(item)) {
        return Answer::Failed(format!(
            "unsupported content item in the client's answer: {bad}"
        ));
    }
    Answer::Done(items.clone(), success)
}

/// The function output for the client's content: plain text when it is only text, else a list
/// of `input_text` / `input_image` parts.
fn output_of(items: &[Value]) -> Value {
    let is_text = |item: &Value| item.get("type").and_then(Value::as_str) == Some("inputText");
    if items.iter().all(is_text) {
        let texts: Vec<&str> = items
            .iter()
            .filter_map(|i| i.get("text").and_then(Value::as_str))
            .collect();
        return Value::String(texts.join("\n"));
    }
    Value::Array(
        items
            .iter()
            .map(|item| match item.get("type").and_then(Value::as_str) {
                Some("inputImage") => json!({"type": "input_image", "image_url": item["imageUrl"]}),
                _ => json!({"type": "input_text", "text": item["text"]}),
            })
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn function(name: &str) -> Value {
        json!({"type": "function", "name": name, "description": "d", "inputSchema": {"type": "object"}})
    }

    #[test]
    fn specs_are_checked() {
        let namespace = json!({"type": "namespace", "name": "crm", "description": "CRM", "tools": [function("get")]});
        assert_eq!(
            validate(&[function("lookup"), namespace.clone()])
                .unwrap()
                .len(),
            0
        );
        let deferred = json!({"type": "function", "name": "later", "description": "d", "inputSchema": {}, "deferLoading": true});
        assert_eq!(validate(&[deferred]).unwrap().len(), 1);
        let bad: Vec<(Vec<Value>, &str)> = vec![
            (vec![function("shell")], "built-in"),
            (vec![function("a"), function("a")], "twice"),
            (vec![function("has space")], "letters"),
            (vec![function(&"x".repeat(65))], "letters"),
            (
                vec![json!({"type": "function", "name": "n", "description": "d"})],
                "inputSchema",
            ),
            (
                vec![json!({"type": "function", "name": "n", "inputSchema": {}})],
                "description",
            ),
            (
                vec![json!({"type": "other", "name": "n", "description": "d"})],
                "unknown type",
            ),
            (
                vec![json!({"type": "namespace", "name": "n", "description": "d", "tools": []})],
                "non-empty",
            ),
            (
                vec![
                    json!({"type": "namespace", "name": "n", "description": "d", "tools": [function("x"), function("x")]}),
                ],
                "twice",
            ),
            (vec![json!({"name": 5})], "name"),
        ];
        for (specs, needle) in bad {
            let error = validate(&specs).unwrap_err();
            assert!(error.contains(needle), "{specs:?}: {error}");
        }
    }

    #[test]
    fn definitions_and_lookup() {
        let specs = vec![
            function("lookup"),
            json!({"type": "namespace", "name": "crm", "description": "CRM", "tools": [function("get")]}),
        ];
        let defs = definitions(&specs);
        assert_eq!(
            defs[0],
            json!({"type": "function", "name": "lookup", "description": "d", "strict": false, "parameters": {"type": "object"}})
        );
        assert_eq!(defs[1]["type"], "namespace");
        assert_eq!(defs[1]["tools"][0]["name"], "get");
        assert_eq!(defs[1]["tools"][0]["parameters"], json!({"type": "object"}));
        assert!(defines(&specs, None, "lookup"));
        assert!(defines(&specs, Some("crm"), "get"));
        assert!(!defines(&specs, None, "get"));
        assert!(!defines(&specs, None, "crm"));
        assert!(!defines(&specs, Some("crm"), "lookup"));
    }

    #[test]
    fn answers_and_outputs() {
        let text = json!({"contentItems": [{"type": "inputText", "text": "a"}, {"type": "inputText", "text": "b"}], "success": true});
        let Answer::Done(items, true) = parse_answer(&text) else {
            panic!()
        };
        assert_eq!(output_of(&items), json!("a\nb"));
        let mixed = json!({"contentItems": [{"type": "inputText", "text": "see"}, {"type": "inputImage", "imageUrl": "data:image/png;base64,AA=="}], "success": false});
        let Answer::Done(items, false) = parse_answer(&mixed) else {
            panic!()
        };
        assert_eq!(
            output_of(&items),
            json!([{"type": "input_text", "text": "see"}, {"type": "input_image", "image_url": "data:image/png;base64,AA=="}])
        );
        for bad in [
            json!({"success": true}),
            json!({"contentItems": []}),
            json!({"contentItems": [{"type": "inputAudio", "audioUrl": "x"}], "success": true}),
            json!({"contentItems": [{"type": "inputText"}], "success": true}),
        ] {
            assert!(matches!(parse_answer(&bad), Answer::Failed(_)), "{bad}");
        }
    }
}
