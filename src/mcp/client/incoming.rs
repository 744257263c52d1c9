//! What a server sends us, routed ([`Link::dispatch`]): answers to their waiters, progress to
//! the running call, its own requests to `server_requests.rs`, notifications logged.

use std::sync::Arc;

use crossbeam_channel::TrySendError;
use serde_json::Value;

use super::{Link, McpError, Progress, lock, truncate};

impl Link {
    /// Routes one message from the server: answers to waiters, progress to calls, requests to
    /// their handlers; anything else is logged.
    pub fn dispatch(self: &Arc<Self>, message: Value) {
        let Value::Object(mut map) = message else {
            crate::log::warn(&format!(
                "mcp server {}: ignoring a message that is not an object",
                self.name
            ));
            return;
        };
        let method = map.remove("method");
        let id = map.remove("id");
        match (method, id) {
            (Some(Value::String(method)), Some(id)) => {
                let params = map.remove("params").unwrap_or(Value::Null);
                super::super::server_requests::handle(self, id, &method, params);
            }
            (Some(Value::String(method)), None) => {
                self.notification(&method, map.remove("params").unwrap_or(Value::Null));
            }
            (None, Some(id)) => {
                let Some(id) = id.as_i64() else {
                    crate::log::warn(&format!(
                        "mcp server {}: answer to an id we never used: {id}",
                        self.name
                    ));
                    return;
                };
                let answer = if let Some(error) = map.remove("error") {
                    let (code, message) = crate::rpc::error_parts(&error);
                    Err(McpError::Rpc { code, message })
                } else if let Some(result) = map.remove("result") {
                    Ok(result)
                } else {
                    Err(McpError::Protocol(
                        "an answer without result or error".into(),
                    ))
                };
                if let Some(tx) = lock(&self.pending).remove(&id) {
                    let _ = tx.try_send(answer);
                }
            }
            _ => crate::log::warn(&format!(
                "mcp server {}: ignoring a message that is neither request, notification nor answer",
                self.name
            )),
        }
    }

    fn notification(&self, method: &str, params: Value) {
        match method {
            "notifications/progress" => {
                let Some(token) = params.get("progressToken").and_then(Value::as_i64) else {
                    return;
                };
                let update = Progress {
                    progress: params
                        .get("progress")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0),
                    total: params.get("total").and_then(Value::as_f64),
                    message: params
                        .get("message")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                };
                if let Some(tx) = lock(&self.progress).get(&token)
                    && let Err(TrySendError::Full(_)) = tx.try_send(update)
                {
                    crate::log::debug(&format!(
                        "mcp server {}: dropping a progress update (reader behind)",
                        self.name
                    ));
                }
            }
            "notifications/message" => {
                let text = params.get("data").map(Value::to_string).unwrap_or_default();
                crate::log::info(&format!(
                    "mcp server {}: {}",
                    self.name,
                    truncate(&text, 2000)
                ));
            }
            "notifications/cancelled" => {} // a request of theirs we may be relaying; harmless
            other => crate::log::debug(&format!(
                "mcp server {}: ignoring notification {other}",
                self.name
            )),
        }
    }
}
