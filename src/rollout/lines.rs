//! The shapes of single rollout lines, each read without the others: the envelope, every
//! spelling of `session_meta`, `turn_context`, token counts, error objects, a line's kind seen
//! from its first bytes, and the repairs a history read back needs (Codex-internal fields
//! removed, tool calls left without output by a crash answered). `reader.rs` puts them together.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::writer::APP_SERVER_SOURCE;
use super::{SessionMeta, TurnContext, items};
use crate::protocol::{TokenUsage, TurnError};

/// Codex-internal metadata on history items; never sent to a model.
pub(super) const INTERNAL_ITEM_KEYS: [&str; 1] = ["internal_chat_message_metadata_passthrough"];

/// One line: its kind and payload (timestamp and ordinal are not needed to rebuild a thread).
#[derive(Deserialize)]
pub(super) struct Line {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) payload: Value,
    #[serde(default)]
    pub(super) ordinal: Option<u64>,
}

/// `session_meta` in any of its spellings (ours before, Codex's old and new).
#[derive(Deserialize)]
pub(super) struct MetaLine {
    id: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default)]
    cwd: String,
    #[serde(default)]
    originator: Option<String>,
    #[serde(default)]
    cli_version: Option<String>,
    #[serde(default)]
    source: Option<Value>,
    #[serde(default)]
    model_provider: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    forked_from_id: Option<String>,
    #[serde(default)]
    base_instructions: Option<Value>,
    #[serde(default)]
    developer_instructions: Option<String>,
    #[serde(default)]
    dynamic_tools: Option<Vec<Value>>,
}

/// Where a 0.169 fork's inherited history ends in its parent's file.
#[derive(Deserialize, Clone)]
pub(super) struct HistoryBase {
    pub(super) thread_id: String,
    #[serde(default)]
    pub(super) end_ordinal_exclusive: Option<u64>,
    #[serde(default)]
    pub(super) end_byte_offset: Option<u64>,
}

impl MetaLine {
    pub(super) fn into_meta(self) -> SessionMeta {
        let created_at = self
            .created_at
            .or_else(|| {
                self.timestamp
                    .as_deref()
                    .and_then(crate::time::parse_rfc3339)
                    .map(|ms| ms.div_euclid(1000))
            })
            .unwrap_or(0);
        let base_instructions = match self.base_instructions {
            Some(Value::String(text)) => Some(text),
            Some(Value::Object(map)) => map.get("text").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        SessionMeta {
            id: self.id,
            created_at,
            cwd: self.cwd,
            originator: self.originator.filter(|o| !o.is_empty()),
            cli_version: self.cli_version.unwrap_or_default(),
            source: source_name(self.source.as_ref()),
            model_provider: self.model_provider.unwrap_or_else(|| "openai".to_string()),
            model: self.model.unwrap_or_default(),
            forked_from_id: self.forked_from_id,
            base_instructions,
            developer_instructions: self.developer_instructions,
            dynamic_tools: self.dynamic_tools,
        }
    }
}

/// A recorded source as a plain name (sub-agent sources are objects: `subagent`).
pub(super) fn source_name(source: Option<&Value>) -> String {
    match source {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
        // Our rollouts before the Codex format carried no source: app-server threads.
        _ => APP_SERVER_SOURCE.to_string(),
    }
}

pub(super) fn turn_context(payload: &Value) -> Option<TurnContext> {
    let approval = match &payload["approval_policy"] {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        // Newer structured policies: the closest plain one.
        _ => "on-request".to_string(),
    };
    Some(TurnContext {
        cwd: payload.get("cwd")?.as_str()?.to_string(),
        model: payload["model"].as_str().unwrap_or_default().to_string(),
        effort: payload["effort"].as_str().map(str::to_string),
        summary: payload["summary"].as_str().map(str::to_string),
        approval_policy: approval,
        sandbox_policy: payload["sandbox_policy"].clone(),
    })
}

pub(super) fn codex_usage(v: &Value) -> Option<TokenUsage> {
    let n = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    v.is_object().then(|| TokenUsage {
        input_tokens: n("input_tokens"),
        cached_input_tokens: n("cached_input_tokens"),
        output_tokens: n("output_tokens"),
        reasoning_output_tokens: n("reasoning_output_tokens"),
        total_tokens: n("total_tokens"),
    })
}

/// A Codex error object (`{message, codex_error_info}`) as ours; an unknown class reads as
/// `other`.
pub(super) fn turn_error(v: &Value) -> TurnError {
    let info = v.get("codex_error_info").filter(|i| !i.is_null()).map(|i| {
        serde_json::from_value(items::rename_variant(i, items::camel_case))
            .unwrap_or(crate::protocol::CodexErrorInfo::Other)
    });
    TurnError {
        message: v["message"].as_str().unwrap_or_default().to_string(),
        codex_error_info: info,
        additional_details: v["additional_details"].as_str().map(str::to_string),
    }
}

/// A history item as it may be sent again: Codex's internal metadata removed.
pub(super) fn model_item(mut item: Value) -> Value {
    if let Some(map) = item.as_object_mut() {
        for key in INTERNAL_ITEM_KEYS {
            map.remove(key);
        }
    }
    item
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A raw line's top-level `type`, judged from its first bytes without parsing it (writers put
/// `timestamp` and `type` before the payload); `None` when it cannot be seen there.
pub(super) fn head_kind(line: &[u8]) -> Option<&str> {
    let head = &line[..line.len().min(160)];
    let find = |needle: &[u8]| head.windows(needle.len()).position(|w| w == needle);
    let start = find(b"\"type\":\"")? + 8;
    if find(b"\"payload\"").is_some_and(|payload| payload < start) {
        return None;
    }
    let len = head[start..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&head[start..start + len]).ok()
}

/// The output given to a tool call that never got one.
pub(super) const ORPHAN_CALL_OUTPUT: &str = "aborted: the session ended before this call finished";

/// Gives every tool call without an output (the process died while it ran or waited for
/// approval) an output right after it. The Responses API rejects an input holding a call without
/// its output, so without this a thread cut mid-call could never continue.
pub(super) fn answer_orphan_calls(history: &mut Vec<(String, Value)>) {
    let kind = |item: &Value| item.get("type").and_then(Value::as_str).map(str::to_string);
    let call_id = |item: &Value| {
        item.get("call_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let answered: HashSet<String> = history
        .iter()
        .filter(|(_, item)| kind(item).is_some_and(|k| k.ends_with("_call_output")))
        .filter_map(|(_, item)| call_id(item))
        .collect();
    let mut repaired = Vec::with_capacity(history.len());
    for (turn, item) in history.drain(..) {
        let orphan = match (kind(&item).as_deref(), call_id(&item)) {
            (Some(k @ ("function_call" | "custom_tool_call")), Some(id))
                if !answered.contains(&id) =>
            {
                Some(json!({
                    "type": format!("{k}_output"),
                    "call_id": id,
                    "output": ORPHAN_CALL_OUTPUT,
                }))
            }
            _ => None,
        };
        repaired.push((turn.clone(), item));
        if let Some(output) = orphan {
            repaired.push((turn, output));
        }
    }
    *history = repaired;
}
