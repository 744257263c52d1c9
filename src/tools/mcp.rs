//! The model's MCP tools (mcp.md §3): a call of `mcp__<server>__<tool>` becomes an
//! `mcpToolCall` item (started, then completed or failed), asks first under `untrusted` and
//! `on-request` unless the tool says `readOnlyHint: true` (through
//! `mcpServer/elicitation/request` with `_meta.codex_approval_kind: "mcp_tool_call"`, as the
//! reference does), runs `tools/call` with the server's `tool_timeout_sec`, turns progress into
//! `item/mcpToolCall/progress`, and cancels the call (`notifications/cancelled`) on interrupt or
//! timeout. The connection and the servers are `crate::mcp`'s.

use std::time::Instant;

use serde_json::{Value, json};

use super::client_request::Reply;
use super::{CallResult, ToolCall};
use crate::config::ApprovalPolicy;
use crate::mcp::OfferedTool;
use crate::protocol::{ItemStatus, McpToolCallError, ThreadItem};
use crate::thread::lock;
use crate::turn::TurnRunner;
use call::{Outcome, call_tool};

mod call;

/// The text of a declined call, for the item and the model.
const DECLINED: &str = "user declined";
/// The text of a call the user cancelled (the turn stops).
const CANCELLED: &str = "user cancelled the tool call";

/// The user's answer to an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accept,
    AcceptForSession,
    Decline,
    Cancel,
}

/// Waits for MCP servers still starting (each at most its startup timeout; an interrupt stops
/// the wait), so the turn's first request offers their tools.
pub fn wait_for_servers(turn: &mut TurnRunner) {
    let handle = turn.handle.clone();
    turn.tools()
        .env
        .mcp
        .wait_for_startup(&|| handle.is_interrupted());
}

/// The function tools of every MCP server ready now, for the model request.
pub fn definitions(turn: &mut TurnRunner) -> Vec<Value> {
    turn.tools().env.mcp.definitions()
}

/// The MCP tool the model called `name`, if it is one.
pub fn find(turn: &mut TurnRunner, name: &str) -> Option<OfferedTool> {
    turn.tools().env.mcp.find(name)
}

/// Runs one MCP tool call to completion (or failure, decline, interrupt).
pub fn run(turn: &mut TurnRunner, call: &ToolCall, tool: &OfferedTool) -> CallResult {
    let arguments = match parse_arguments(&call.payload) {
        Ok(arguments) => arguments,
        Err(message) => {
            return CallResult {
                output: call.output_item(&message),
                cancelled: false,
            };
        }
    };
    let started = Instant::now();
    let mut item = ThreadItem::McpToolCall {
        id: call.call_id.clone(),
        server: tool.server.clone(),
        tool: tool.tool.clone(),
        status: ItemStatus::InProgress,
        arguments: arguments.clone(),
        result: None,
        error: None,
        duration_ms: None,
        read_only_hint: tool.read_only.then_some(true),
    };
    turn.item_started(&item);
    match approve(turn, tool, &arguments) {
        Answer::Accept | Answer::AcceptForSession => {}
        answer => {
            let text = if answer == Answer::Cancel {
                CANCELLED
            } else {
                DECLINED
            };
            finish(turn, &mut item, started, Err(text.to_string()));
            return CallResult {
                output: call.output_item(text),
                cancelled: answer == Answer::Cancel,
            };
        }
    }
    let outcome = call_tool(turn, tool, &call.call_id, arguments);
    let (output, cancelled) = match &outcome {
        Outcome::Done(result) => {
            let model = turn.tools().settings.model_info.clone();
            (model_output(call, result, &model), false)
        }
        Outcome::Failed(message) => (call.output_item(message), false),
        Outcome::Interrupted => (call.output_item("aborted: the turn was interrupted"), true),
    };
    let item_outcome = match outcome {
        Outcome::Done(result) => {
            if result.get("isError").and_then(Value::as_bool) == Some(true) {
                let text = content_text(&result);
                Err(if text.is_empty() {
                    "the tool reported an error".to_string()
                } else {
                    text
                })
                .map_err(|message| (message, Some(result)))
            } else {
                Ok(result)
            }
        }
        Outcome::Failed(message) => Err((message, None)),
        Outcome::Interrupted => Err(("interrupted".to_string(), None)),
    };
    match item_outcome {
        Ok(result) => finish(turn, &mut item, started, Ok(result)),
        Err((message, result)) => {
            if let ThreadItem::McpToolCall { result: slot, .. } = &mut item {
                *slot = result.map(|r| item_result(&r));
            }
            finish(turn, &mut item, started, Err(message));
        }
    }
    CallResult { output, cancelled }
}

fn parse_arguments(payload: &str) -> Result<Value, String> {
    if payload.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(payload) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("failed to parse function arguments: expected a JSON object".to_string()),
        Err(e) => Err(format!("failed to parse function arguments: {e}")),
    }
}

/// The `result` field of the item: the content, structured content and `_meta` as returned.
fn item_result(result: &Value) -> Value {
    json!({
        "content": result.get("content").cloned().unwrap_or_else(|| json!([])),
        "structuredContent": result.get("structuredContent").cloned().unwrap_or(Value::Null),
        "_meta": result.get("_meta").cloned().unwrap_or(Value::Null),
    })
}

fn finish(
    turn: &mut TurnRunner,
    item: &mut ThreadItem,
    started: Instant,
    outcome: Result<Value, String>,
) {
    if let ThreadItem::McpToolCall {
        status,
        result,
        error,
        duration_ms,
        ..
    } = item
    {
        *duration_ms = Some(started.elapsed().as_millis() as i64);
        match outcome {
            Ok(value) => {
                *status = ItemStatus::Completed;
                *result = Some(item_result(&value));
            }
            Err(message) => {
                *status = ItemStatus::Failed;
                *error = Some(McpToolCallError { message });
            }
        }
    }
    turn.item_completed(item.clone());
}

/// Asks the user when the policy and the tool require it.
fn approve(turn: &mut TurnRunner, tool: &OfferedTool, arguments: &Value) -> Answer {
    let policy = turn.tools().settings.approval;
    let asks = matches!(
        policy,
        ApprovalPolicy::Untrusted | ApprovalPolicy::OnRequest
    );
    let key = (tool.server.clone(), tool.tool.clone());
    if !asks || tool.read_only || lock(&turn.thread).approvals.mcp_tools.contains(&key) {
        return Answer::Accept;
    }
    let display: Vec<Value> = arguments
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| json!({"name": k, "value": v, "display_name": k}))
                .collect()
        })
        .unwrap_or_default();
    let params = json!({
        "threadId": turn.thread_id,
        "turnId": turn.turn_id,
        "serverName": tool.server,
        "mode": "form",
        "_meta": {
            "codex_approval_kind": "mcp_tool_call",
            "persist": ["session", "always"],
            "tool_name": tool.tool,
            "tool_description": tool.description,
            "tool_params": arguments,
            "tool_params_display": display,
        },
        "message": format!("Allow the {} MCP server to run tool \"{}\"?", tool.server, tool.tool),
        "requestedSchema": {"type": "object", "properties": {}},
    });
    let decision = match super::client_request::ask_approval(
        turn,
        "mcpServer/elicitation/request",
        |_| params,
    ) {
        Reply::Result(result) => parse_answer(&result),
        Reply::Error(_) => Answer::Decline,
        Reply::Cancelled => Answer::Cancel,
    };
    if decision == Answer::AcceptForSession {
        lock(&turn.thread).approvals.mcp_tools.insert(key);
    }
    decision
}

/// `{action, _meta: {persist}}`: accept (for the session when `persist` is `session` or
/// `always`; *decision*: `always` is remembered for this process's thread only), decline,
/// cancel.
fn parse_answer(result: &Value) -> Answer {
    match result.get("action").and_then(Value::as_str) {
        Some("accept") => match result.pointer("/_meta/persist").and_then(Value::as_str) {
            Some("session" | "always") => Answer::AcceptForSession,
            _ => Answer::Accept,
        },
        Some("cancel") => Answer::Cancel,
        _ => Answer::Decline,
    }
}

/// The text parts of a result, joined.
fn content_text(result: &Value) -> String {
    result
        .get("content")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// What the model gets back: the content parts in order (text as text, images as input images,
/// resources by their text or link), `isError` marked; structured content when there is no
/// other content. Text is bounded by the model's truncation policy like other tool output.
fn model_output(call: &ToolCall, result: &Value, model: &crate::models::ModelInfo) -> Value {
    let mut texts: Vec<String> = Vec::new();
    let mut images: Vec<String> = Vec::new();
    let parts = result
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for part in &parts {
        let field = |k: &str| part.get(k).and_then(Value::as_str);
        match field("type") {
            Some("text") => texts.push(field("text").unwrap_or_default().to_string()),
            Some("image") => match (field("mimeType"), field("data")) {
                (Some(mime), Some(data)) => images.push(format!("data:{mime};base64,{data}")),
                _ => texts.push("[an image without data]".to_string()),
            },
            Some("resource") => {
                let resource = part.get("resource");
                let text = resource.and_then(|r| r.get("text")).and_then(Value::as_str);
                let uri = resource
                    .and_then(|r| r.get("uri"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                texts.push(match text {
                    Some(text) => text.to_string(),
                    None => format!("[resource {uri}]"),
                });
            }
            Some("resource_link") => {
                texts.push(format!("[resource link {}]", field("uri").unwrap_or("")))
            }
            Some(other) => texts.push(format!("[{other} content omitted]")),
            None => {}
        }
    }
    if texts.is_empty()
        && images.is_empty()
        && let Some(structured) = result.get("structuredContent").filter(|s| !s.is_null())
    {
        texts.push(structured.to_string());
    }
    let mut text = texts.join("\n");
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        text = format!("error: {text}");
    }
    let text = super::output::truncate_for_model(&text, model);
    if images.is_empty() {
        return call.output_item(&text);
    }
    let mut content = vec![json!({"type": "input_text", "text": text})];
    content.extend(
        images
            .into_iter()
            .map(|url| json!({"type": "input_image", "image_url": url})),
    );
    json!({"type": "function_call_output", "call_id": call.call_id, "output": content})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn call() -> ToolCall {
        ToolCall {
            call_id: "c1".into(),
            name: "mcp__s__t".into(),
            payload: "{}".into(),
            is_custom: false,
            namespace: None,
        }
    }

    #[test]
    fn results_become_model_output() {
        let cases = [
            (
                json!({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
                json!("a\nb"),
            ),
            (
                json!({"content": [{"type": "text", "text": "bad"}], "isError": true}),
                json!("error: bad"),
            ),
            (
                json!({"content": [], "structuredContent": {"x": 1}}),
                json!("{\"x\":1}"),
            ),
            (
                json!({"content": [{"type": "resource_link", "uri": "file:///a"}]}),
                json!("[resource link file:///a]"),
            ),
            (
                json!({"content": [{"type": "text", "text": "see"},
                                   {"type": "image", "mimeType": "image/png", "data": "QUJD"}]}),
                json!([{"type": "input_text", "text": "see"},
                       {"type": "input_image", "image_url": "data:image/png;base64,QUJD"}]),
            ),
        ];
        for (result, want) in cases {
            let out = model_output(&call(), &result, &crate::models::ModelInfo::fallback("m"));
            assert_eq!(out["call_id"], "c1");
            assert_eq!(out["type"], "function_call_output");
            assert_eq!(out["output"], want, "{result}");
        }
    }

    #[test]
    fn arguments_and_answers() {
        assert_eq!(parse_arguments("").unwrap(), json!({}));
        assert_eq!(parse_arguments("{\"a\":1}").unwrap(), json!({"a": 1}));
        assert!(parse_arguments("[1]").is_err());
        assert!(parse_arguments("{").is_err());
        let cases = [
            (json!({"action": "accept"}), Answer::Accept),
            (
                json!({"action": "accept", "_meta": {"persist": "session"}}),
                Answer::AcceptForSession,
            ),
            (
                json!({"action": "accept", "_meta": {"persist": "always"}}),
                Answer::AcceptForSession,
            ),
            (json!({"action": "decline"}), Answer::Decline),
            (json!({"action": "cancel"}), Answer::Cancel),
            (json!({}), Answer::Decline),
        ];
        for (answer, want) in cases {
            assert_eq!(parse_answer(&answer), want, "{answer}");
        }
    }
}
