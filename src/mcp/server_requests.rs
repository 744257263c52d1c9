//! Requests an MCP server sends us (mcp.md §3): `ping` answered at once; `roots/list` with the
//! calling thread's working directory (*decision*); `elicitation/create` relayed to the client
//! as `mcpServer/elicitation/request` (on its own short-lived thread, so the transport keeps
//! reading) and the client's answer relayed back; everything else answered with -32601.
//!
//! An elicitation is attributed to the newest call in flight on that server; with no call in
//! flight, or under a policy that never asks, it is declined without asking. When the call
//! ends first (interrupt, timeout), the client's request is withdrawn and the server is told
//! `cancel`.

use std::sync::Arc;

use crossbeam_channel::select;
use serde_json::{Map, Value, json};

use super::client::{CallContext, Link};
use crate::protocol::notify::RequestResolved;

/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i64 = -32601;

/// Handles one request from the server (called on the transport's reading thread: must not
/// block).
pub fn handle(link: &Arc<Link>, id: Value, method: &str, params: Value) {
    match method {
        "ping" => link.respond(&id, Ok(json!({}))),
        "roots/list" => {
            let cwd = link
                .current_call()
                .map(|(c, _)| c.cwd)
                .unwrap_or_else(|| link.default_cwd.clone());
            let name = cwd
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| cwd.display().to_string());
            let uri = format!("file://{}", percent_encode_path(&cwd.display().to_string()));
            link.respond(&id, Ok(json!({"roots": [{"uri": uri, "name": name}]})));
        }
        "elicitation/create" => elicit(link, id, params),
        other => link.respond(
            &id,
            Err((METHOD_NOT_FOUND, format!("Method not found: {other}"))),
        ),
    }
}

fn elicit(link: &Arc<Link>, id: Value, params: Value) {
    let Some((context, done)) = link.current_call() else {
        crate::log::warn(&format!(
            "mcp server {}: declining an elicitation outside any tool call",
            link.name
        ));
        return link.respond(&id, Ok(json!({"action": "decline"})));
    };
    if context.never_ask {
        return link.respond(&id, Ok(json!({"action": "decline"})));
    }
    let Some(request) = client_params(&link.name, &context, &params) else {
        crate::log::warn(&format!(
            "mcp server {}: declining an elicitation whose form this protocol cannot describe",
            link.name
        ));
        return link.respond(&id, Ok(json!({"action": "decline"})));
    };
    let relay = link.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("mcp-elicit-{}", link.name))
        .spawn(move || {
            let (request_id, answer) = relay
                .rpc
                .request("mcpServer/elicitation/request", &request);
            let reply = select! {
                recv(answer) -> reply => match reply {
                    Ok(Ok(result)) => server_result(&result),
                    Ok(Err(error)) => {
                        crate::log::warn(&format!("elicitation request {request_id} failed: {error}; declining"));
                        json!({"action": "decline"})
                    }
                    Err(_) => json!({"action": "cancel"}), // the client connection closed
                },
                recv(done) -> _ => {
                    relay.rpc.cancel(request_id);
                    json!({"action": "cancel"})
                }
            };
            relay.rpc.notify(
                "serverRequest/resolved",
                RequestResolved {
                    thread_id: &context.thread_id,
                    request_id,
                },
            );
            relay.respond(&id, Ok(reply));
        });
    if let Err(e) = spawned {
        crate::log::error(&format!("cannot relay an elicitation: {e}"));
    }
}

/// `mcpServer/elicitation/request` params for an `elicitation/create` request, or `None` when
/// its form uses field types the protocol's typed schema cannot carry.
pub fn client_params(server: &str, context: &CallContext, params: &Value) -> Option<Value> {
    let message = params.get("message").and_then(Value::as_str).unwrap_or("");
    let mut out = json!({
        "threadId": context.thread_id,
        "turnId": context.turn_id,
        "serverName": server,
        "message": message,
    });
    if let Some(meta) = params.get("_meta") {
        out["_meta"] = meta.clone();
    }
    if params.get("mode").and_then(Value::as_str) == Some("url") {
        out["mode"] = json!("url");
        out["url"] = params.get("url")?.clone();
        out["elicitationId"] = params.get("elicitationId")?.clone();
        return Some(out);
    }
    out["mode"] = json!("form");
    out["requestedSchema"] = form_schema(params.get("requestedSchema")?)?;
    Some(out)
}

/// The requested schema reduced to what the typed form schema allows: an object of primitive
/// fields (string, number, boolean, enums), unknown keys (`title` of the object, pydantic
/// extras) dropped.
fn form_schema(schema: &Value) -> Option<Value> {
    let properties = schema.get("properties")?.as_object()?;
    let mut fields = Map::new();
    for (name, field) in properties {
        fields.insert(name.clone(), form_field(field)?);
    }
    let mut out = json!({"type": "object", "properties": fields});
    if let Some(required) = schema.get("required").filter(|r| r.is_array()) {
        out["required"] = required.clone();
    }
    Some(out)
}

fn form_field(field: &Value) -> Option<Value> {
    let kind = field.get("type").and_then(Value::as_str);
    let has = |k: &str| field.get(k).is_some();
    let keys: &[&str] = if has("enum") && has("enumNames") {
        &[
            "default",
            "description",
            "enum",
            "enumNames",
            "title",
            "type",
        ]
    } else if has("enum") {
        &["default", "description", "enum", "title", "type"]
    } else if has("oneOf") {
        &["default", "description", "oneOf", "title", "type"]
    } else {
        match kind? {
            "string" => &[
                "default",
                "description",
                "format",
                "maxLength",
                "minLength",
                "title",
                "type",
            ],
            "number" | "integer" => &[
                "default",
                "description",
                "maximum",
                "minimum",
                "title",
                "type",
            ],
            "boolean" => &["default", "description", "title", "type"],
            "array" => &[
                "default",
                "description",
                "items",
                "maxItems",
                "minItems",
                "title",
                "type",
            ],
            _ => return None,
        }
    };
    let mut out = Map::new();
    for key in keys {
        if let Some(value) = field.get(*key) {
            out.insert((*key).to_string(), value.clone());
        }
    }
    if !out.contains_key("type") {
        out.insert("type".into(), json!("string"));
    }
    Some(Value::Object(out))
}

/// The client's `McpServerElicitationRequestResponse` as an MCP `ElicitResult`.
fn server_result(result: &Value) -> Value {
    let action = match result.get("action").and_then(Value::as_str) {
        Some("accept") => "accept",
        Some("cancel") => "cancel",
        _ => "decline",
    };
    let mut out = json!({"action": action});
    if action == "accept"
        && let Some(content) = result.get("content").filter(|c| c.is_object())
    {
        out["content"] = content.clone();
    }
    out
}

fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn context() -> CallContext {
        CallContext {
            thread_id: "t".into(),
            turn_id: "u".into(),
            cwd: "/w".into(),
            never_ask: false,
        }
    }

    #[test]
    fn forms_keep_only_what_the_protocol_describes() {
        let params = json!({
            "message": "Which color?",
            "requestedSchema": {
                "title": "Pick", "type": "object", "required": ["color"],
                "properties": {
                    "color": {"title": "Color", "type": "string", "pattern": "x"},
                    "n": {"type": "integer", "minimum": 1, "extra": 2},
                    "ok": {"type": "boolean"},
                    "size": {"type": "string", "enum": ["s", "m"]}
                }
            }
        });
        let out = client_params("demo", &context(), &params).unwrap();
        assert_eq!(
            out,
            json!({
                "threadId": "t", "turnId": "u", "serverName": "demo",
                "message": "Which color?", "mode": "form",
                "requestedSchema": {
                    "type": "object", "required": ["color"],
                    "properties": {
                        "color": {"title": "Color", "type": "string"},
                        "n": {"type": "integer", "minimum": 1},
                        "ok": {"type": "boolean"},
                        "size": {"type": "string", "enum": ["s", "m"]}
                    }
                }
            })
        );
        let nested = json!({"message": "m", "requestedSchema": {"type": "object",
            "properties": {"x": {"type": "object"}}}});
        assert_eq!(client_params("demo", &context(), &nested), None);
        let url = json!({"mode": "url", "message": "m", "url": "https://x", "elicitationId": "e"});
        assert_eq!(
            client_params("demo", &context(), &url).unwrap()["mode"],
            "url"
        );
    }

    #[test]
    fn client_answers_become_elicit_results() {
        let cases = [
            (
                json!({"action": "accept", "content": {"a": 1}}),
                json!({"action": "accept", "content": {"a": 1}}),
            ),
            (
                json!({"action": "decline", "content": {"a": 1}}),
                json!({"action": "decline"}),
            ),
            (json!({"action": "cancel"}), json!({"action": "cancel"})),
            (json!({"action": "maybe"}), json!({"action": "decline"})),
        ];
        for (answer, want) in cases {
            assert_eq!(server_result(&answer), want, "{answer}");
        }
    }

    #[test]
    fn root_uris_are_percent_encoded() {
        assert_eq!(percent_encode_path("/a b/ü"), "/a%20b/%C3%BC");
    }
}
