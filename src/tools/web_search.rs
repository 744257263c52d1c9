//! The hosted `web_search` tool (context.md §3): the backend runs the searches; we only offer
//! the tool (per the `web_search` config key, never to Responses Lite models), turn each
//! `web_search_call` output item into a `webSearch` item, and send the calls back in later
//! requests as the backend produced them.

use serde_json::{Value, json};

use crate::config::WebSearchMode;
use crate::protocol::ThreadItem;

/// The Responses output item type of a hosted web search.
pub const CALL_TYPE: &str = "web_search_call";

/// The hosted tool for `mode`; `None` when disabled.
pub fn definition(mode: WebSearchMode) -> Option<Value> {
    match mode {
        WebSearchMode::Disabled => None,
        WebSearchMode::Cached => Some(json!({"type": "web_search", "external_web_access": false})),
        WebSearchMode::Indexed => Some(json!({
            "type": "web_search",
            "external_web_access": true,
            "indexed_web_access": true,
        })),
        WebSearchMode::Live => Some(json!({"type": "web_search", "external_web_access": true})),
    }
}

/// Whether an output item is a hosted web search call.
pub fn is_call(item: &Value) -> bool {
    item.get("type").and_then(Value::as_str) == Some(CALL_TYPE)
}

/// The `webSearch` item of a `web_search_call` output item (possibly still without its action).
pub fn item(call: &Value) -> ThreadItem {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let id = text(call, "id").unwrap_or_default();
    let action = call.get("action").unwrap_or(&Value::Null);
    let (query, action) = match action.get("type").and_then(Value::as_str) {
        Some("search") => {
            let query = text(action, "query");
            let queries: Option<Vec<String>> =
                action.get("queries").and_then(Value::as_array).map(|q| {
                    q.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                });
            let shown = match (&query, &queries) {
                (Some(q), _) => q.clone(),
                (None, Some(list)) if list.len() > 1 => format!("{} ...", list[0]),
                (None, Some(list)) => list.first().cloned().unwrap_or_default(),
                (None, None) => String::new(),
            };
            (
                shown,
                json!({"type": "search", "query": query, "queries": queries}),
            )
        }
        Some("open_page") => {
            let url = text(action, "url");
            (
                url.clone().unwrap_or_default(),
                json!({"type": "openPage", "url": url}),
            )
        }
        Some("find_in_page") => {
            let (url, pattern) = (text(action, "url"), text(action, "pattern"));
            let shown = match (&pattern, &url) {
                (Some(p), Some(u)) => format!("'{p}' in {u}"),
                (Some(p), None) => format!("'{p}'"),
                (None, Some(u)) => u.clone(),
                (None, None) => String::new(),
            };
            (
                shown,
                json!({"type": "findInPage", "url": url, "pattern": pattern}),
            )
        }
        _ => (String::new(), json!({"type": "other"})),
    };
    ThreadItem::WebSearch {
        id,
        query,
        action: Some(action),
    }
}

/// The call as sent back to the model: as received (its `id` and `status` included: the
/// backend needs them to match the call), without the `sources` it listed.
pub fn as_input(call: &Value) -> Value {
    let mut call = call.clone();
    if let Some(action) = call.get_mut("action").and_then(Value::as_object_mut) {
        action.remove("sources");
    }
    call
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn call(action: Value) -> Value {
        json!({"type": "web_search_call", "id": "ws_1", "status": "completed", "action": action})
    }

    #[test]
    fn items_from_calls() {
        let cases = [
            (
                call(
                    json!({"type": "search", "query": "rust lang", "sources": [{"type": "url", "url": "https://rust-lang.org"}]}),
                ),
                "rust lang",
                json!({"type": "search", "query": "rust lang", "queries": null}),
            ),
            (
                call(json!({"type": "search", "queries": ["a b", "c"]})),
                "a b ...",
                json!({"type": "search", "query": null, "queries": ["a b", "c"]}),
            ),
            (
                call(json!({"type": "open_page", "url": "https://example.com"})),
                "https://example.com",
                json!({"type": "openPage", "url": "https://example.com"}),
            ),
            (
                call(json!({"type": "find_in_page", "url": "https://e.com", "pattern": "needle"})),
                "'needle' in https://e.com",
                json!({"type": "findInPage", "url": "https://e.com", "pattern": "needle"}),
            ),
            (call(json!({"type": "other"})), "", json!({"type": "other"})),
            (
                json!({"type": "web_search_call", "id": "ws_1", "status": "in_progress"}),
                "",
                json!({"type": "other"}),
            ),
        ];
        for (input, query, action) in cases {
            assert_eq!(
                item(&input),
                ThreadItem::WebSearch {
                    id: "ws_1".into(),
                    query: query.into(),
                    action: Some(action)
                },
                "{input}"
            );
        }
    }

    #[test]
    fn replay_keeps_the_call_but_not_its_sources() {
        let received = call(json!({"type": "search", "query": "q", "sources": [{"url": "u"}]}));
        assert_eq!(
            as_input(&received),
            call(json!({"type": "search", "query": "q"}))
        );
        assert!(is_call(&received));
        assert!(!is_call(&json!({"type": "message"})));
    }

    #[test]
    fn definitions_by_mode() {
        assert_eq!(definition(WebSearchMode::Disabled), None);
        assert_eq!(
            definition(WebSearchMode::Cached).unwrap()["external_web_access"],
            false
        );
        assert_eq!(
            definition(WebSearchMode::Live).unwrap()["external_web_access"],
            true
        );
        assert_eq!(
            definition(WebSearchMode::Indexed).unwrap()["indexed_web_access"],
            true
        );
    }
}
