//! What a Responses API server-sent event means for a round trip (model-api.md §4): the
//! mapping from one SSE event's name and JSON data to a [`StreamEvent`], the end of the
//! round, a failure, or nothing (unknown events are ignored). Pure; framing is `sse.rs`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::{ClientError, StreamEvent};
use crate::protocol::{CodexErrorInfo, TokenUsage};

/// What one SSE event amounts to.
#[derive(Debug)]
pub(super) enum Mapped {
    /// Deliver this and keep reading.
    Event(StreamEvent),
    /// Deliver this (`Completed`) and stop: the round trip succeeded.
    Completed(StreamEvent),
    /// The server ended the response unsuccessfully; final.
    Failed(ClientError),
    /// Nothing we use.
    Ignored,
}

/// The fields of every event type we handle, deserialized in one pass. Strings we hand on
/// are owned (the event needs them); the `type` is borrowed when it has no escapes.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    delta: Option<String>,
    #[serde(default)]
    summary_index: Option<i64>,
    #[serde(default)]
    item: Option<Value>,
    #[serde(default)]
    response: Option<Value>,
}

/// Maps one SSE event. The type comes from the data's `type` and falls back to the SSE
/// `event:` name. Data that is not JSON is ignored (and logged at debug level).
pub(super) fn map_event(name: &str, data: &str) -> Mapped {
    let wire: Wire<'_> = match serde_json::from_str(data) {
        Ok(wire) => wire,
        Err(err) => {
            if crate::log::enabled(crate::log::Level::Debug) {
                crate::log::debug(&format!(
                    "ignoring sse event {name:?} whose data is not json: {err}"
                ));
            }
            return Mapped::Ignored;
        }
    };
    let kind = wire.kind.as_deref().unwrap_or(name);
    match kind {
        "response.output_text.delta" => Mapped::Event(StreamEvent::TextDelta {
            item_id: wire.item_id.unwrap_or_default(),
            delta: wire.delta.unwrap_or_default(),
        }),
        "response.reasoning_summary_text.delta" => {
            Mapped::Event(StreamEvent::ReasoningSummaryDelta {
                item_id: wire.item_id.unwrap_or_default(),
                summary_index: wire.summary_index.unwrap_or(0),
                delta: wire.delta.unwrap_or_default(),
            })
        }
        "response.output_item.added" => match wire.item {
            Some(item) => Mapped::Event(StreamEvent::ItemAdded(item)),
            None => Mapped::Ignored,
        },
        "response.output_item.done" => match wire.item {
            Some(item) => Mapped::Event(StreamEvent::ItemDone(item)),
            None => Mapped::Ignored,
        },
        "response.created" => Mapped::Event(StreamEvent::Created {
            response_id: response_id(wire.response.as_ref()),
        }),
        "response.completed" => {
            let response = wire.response.as_ref();
            Mapped::Completed(StreamEvent::Completed {
                response_id: response_id(response).unwrap_or_default(),
                usage: response.and_then(|r| r.get("usage")).and_then(map_usage),
            })
        }
        "codex.rate_limits" => match serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|event| super::rate_limits::from_event(&event))
        {
            Some(snapshot) => Mapped::Event(StreamEvent::RateLimits(snapshot)),
            None => Mapped::Ignored,
        },
        "response.failed" => Mapped::Failed(response_failed(wire.response.as_ref())),
        "response.incomplete" => Mapped::Failed(response_incomplete(wire.response.as_ref())),
        _ => Mapped::Ignored,
    }
}

fn response_id(response: Option<&Value>) -> Option<String> {
    response
        .and_then(|r| r.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The Responses API `usage` object as our [`TokenUsage`]; absent counts are 0.
pub(super) fn map_usage(usage: &Value) -> Option<TokenUsage> {
    if !usage.is_object() {
        return None;
    }
    let count = |path: &[&str]| -> i64 {
        path.iter()
            .try_fold(usage, |v, key| v.get(key))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    Some(TokenUsage {
        input_tokens: count(&["input_tokens"]),
        cached_input_tokens: count(&["input_tokens_details", "cached_tokens"]),
        output_tokens: count(&["output_tokens"]),
        reasoning_output_tokens: count(&["output_tokens_details", "reasoning_tokens"]),
        total_tokens: count(&["total_tokens"]),
    })
}

/// `response.failed`: the server's `error.message`, classified by `error.code`.
fn response_failed(response: Option<&Value>) -> ClientError {
    let error = response.and_then(|r| r.get("error"));
    let field = |key: &str| error.and_then(|e| e.get(key)).and_then(Value::as_str);
    let code = field("code").or_else(|| field("type")).unwrap_or("");
    let message = match (field("message"), code) {
        (Some(message), _) if !message.is_empty() => message.to_string(),
        (_, "") => "response failed".to_string(),
        (_, code) => format!("response failed: {code}"),
    };
    let info = match code {
        "context_length_exceeded" => CodexErrorInfo::ContextWindowExceeded,
        "insufficient_quota" | "usage_limit_reached" => CodexErrorInfo::UsageLimitExceeded,
        _ => CodexErrorInfo::Other,
    };
    ClientError::new(message, info, None)
}

/// `response.incomplete`: the reason from `response.incomplete_details.reason`.
fn response_incomplete(response: Option<&Value>) -> ClientError {
    let reason = response
        .and_then(|r| r.get("incomplete_details"))
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    ClientError::new(
        format!("incomplete response returned, reason: {reason}"),
        CodexErrorInfo::Other,
        None,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, data: &str) -> StreamEvent {
        match map_event(name, data) {
            Mapped::Event(ev) | Mapped::Completed(ev) => ev,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn maps_the_handled_events() {
        let cases: Vec<(&str, String, StreamEvent)> = vec![
            (
                "response.created",
                json!({"type":"response.created","response":{"id":"resp_1"}}).to_string(),
                StreamEvent::Created {
                    response_id: Some("resp_1".into()),
                },
            ),
            (
                "response.output_text.delta",
                json!({"type":"response.output_text.delta","item_id":"msg_1","delta":"hé\n","logprobs":[],"output_index":0}).to_string(),
                StreamEvent::TextDelta {
                    item_id: "msg_1".into(),
                    delta: "hé\n".into(),
                },
            ),
            (
                "response.reasoning_summary_text.delta",
                json!({"type":"response.reasoning_summary_text.delta","item_id":"rs_1","summary_index":2,"delta":"think"}).to_string(),
                StreamEvent::ReasoningSummaryDelta {
                    item_id: "rs_1".into(),
                    summary_index: 2,
                    delta: "think".into(),
                },
            ),
            (
                "response.output_item.added",
                json!({"type":"response.output_item.added","item":{"type":"message","id":"m"}}).to_string(),
                StreamEvent::ItemAdded(json!({"type":"message","id":"m"})),
            ),
            (
                "response.output_item.done",
                json!({"type":"response.output_item.done","item":{"type":"function_call","call_id":"c"}}).to_string(),
                StreamEvent::ItemDone(json!({"type":"function_call","call_id":"c"})),
            ),
            (
                // The `event:` name is the fallback when the data has no type.
                "response.output_text.delta",
                json!({"item_id":"m","delta":"x"}).to_string(),
                StreamEvent::TextDelta {
                    item_id: "m".into(),
                    delta: "x".into(),
                },
            ),
            (
                // The data's type wins over the `event:` name.
                "message",
                json!({"type":"response.created","response":{}}).to_string(),
                StreamEvent::Created { response_id: None },
            ),
        ];
        for (name, data, want) in cases {
            assert_eq!(
                format!("{:?}", event(name, &data)),
                format!("{want:?}"),
                "{data}"
            );
        }
    }

    #[test]
    fn completed_carries_id_and_usage() {
        let data = json!({"type":"response.completed","response":{"id":"resp_9","usage":{
            "input_tokens":100,"input_tokens_details":{"cached_tokens":40},
            "output_tokens":20,"output_tokens_details":{"reasoning_tokens":5},"total_tokens":120}}})
        .to_string();
        let Mapped::Completed(StreamEvent::Completed { response_id, usage }) =
            map_event("response.completed", &data)
        else {
            panic!("not completed");
        };
        assert_eq!(response_id, "resp_9");
        assert_eq!(
            usage,
            Some(TokenUsage {
                input_tokens: 100,
                cached_input_tokens: 40,
                output_tokens: 20,
                reasoning_output_tokens: 5,
                total_tokens: 120,
            })
        );
        let bare = json!({"type":"response.completed","response":{"id":"r"}}).to_string();
        assert!(matches!(
            map_event("response.completed", &bare),
            Mapped::Completed(StreamEvent::Completed { usage: None, .. })
        ));
    }

    #[test]
    fn usage_mapping_defaults_missing_counts_to_zero() {
        assert_eq!(
            map_usage(&json!({"input_tokens":3,"output_tokens":4,"total_tokens":7})),
            Some(TokenUsage {
                input_tokens: 3,
                output_tokens: 4,
                total_tokens: 7,
                ..TokenUsage::default()
            })
        );
        assert_eq!(map_usage(&json!(null)), None);
    }

    #[test]
    fn failures_keep_the_server_message_and_classify_the_code() {
        let cases: &[(Value, &str, CodexErrorInfo)] = &[
            (
                json!({"type":"response.failed","response":{"error":{"code":"context_length_exceeded","message":"Your input exceeds the context window"}}}),
                "Your input exceeds the context window",
                CodexErrorInfo::ContextWindowExceeded,
            ),
            (
                json!({"type":"response.failed","response":{"error":{"code":"insufficient_quota","message":"quota"}}}),
                "quota",
                CodexErrorInfo::UsageLimitExceeded,
            ),
            (
                json!({"type":"response.failed","response":{"error":{"code":"usage_limit_reached","message":"limit"}}}),
                "limit",
                CodexErrorInfo::UsageLimitExceeded,
            ),
            (
                json!({"type":"response.failed","response":{"error":{"code":"server_error","message":"boom"}}}),
                "boom",
                CodexErrorInfo::Other,
            ),
            (
                json!({"type":"response.failed","response":{"error":{"code":"server_error"}}}),
                "response failed: server_error",
                CodexErrorInfo::Other,
            ),
            (
                json!({"type":"response.failed","response":{}}),
                "response failed",
                CodexErrorInfo::Other,
            ),
            (
                json!({"type":"response.incomplete","response":{"incomplete_details":{"reason":"max_output_tokens"}}}),
                "incomplete response returned, reason: max_output_tokens",
                CodexErrorInfo::Other,
            ),
            (
                json!({"type":"response.incomplete","response":{}}),
                "incomplete response returned, reason: unknown",
                CodexErrorInfo::Other,
            ),
        ];
        for (data, message, info) in cases {
            let Mapped::Failed(err) = map_event("x", &data.to_string()) else {
                panic!("{data} did not fail");
            };
            assert_eq!(err.message, *message, "{data}");
            assert_eq!(err.info, *info, "{data}");
            assert!(!err.is_stream_disconnect);
        }
    }

    #[test]
    fn unknown_and_malformed_events_are_ignored() {
        for (name, data) in [
            ("response.in_progress", r#"{"type":"response.in_progress"}"#),
            (
                "response.content_part.added",
                r#"{"type":"response.content_part.added"}"#,
            ),
            ("message", "[DONE]"),
            ("message", "not json"),
            (
                "response.output_item.done",
                r#"{"type":"response.output_item.done"}"#,
            ),
        ] {
            assert!(
                matches!(map_event(name, data), Mapped::Ignored),
                "{name} {data}"
            );
        }
    }
}
