//! The MCP server methods (mcp.md §2): `mcpServerStatus/list`, `config/mcpServer/reload`, and
//! the gate that holds `thread/start` until `required` servers have started (on a waiting
//! thread; the main loop goes on and runs the request again when they have).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::client::ServerFacts;
use super::config::McpTransport;
use super::slot::{Phase, Slot};
use crate::rpc::{RequestId, RpcError};
use crate::server::{Server, decode};

/// Page size of `mcpServerStatus/list` when the client gives none, and the largest accepted.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // servers are shared by every thread: the list is the same for all
    thread_id: Option<String>,
}

impl Server {
    /// Handles the `mcpServerStatus/list` and `config/mcpServer/reload` requests; `None` for
    /// other methods.
    pub fn handle_mcp_request(
        &mut self,
        id: &RequestId,
        method: &str,
        params: Option<Value>,
    ) -> Option<Result<(), RpcError>> {
        match method {
            "mcpServerStatus/list" => Some(decode(params).and_then(|p| {
                let page = self.mcp_status_list(p)?;
                self.rpc.respond(id, page);
                Ok(())
            })),
            "config/mcpServer/reload" => Some(self.mcp_reload().map(|()| {
                self.rpc.respond(id, json!({}));
            })),
            _ => None,
        }
    }

    fn mcp_status_list(&self, params: ListParams) -> Result<Value, RpcError> {
        // Listing is a reason to connect: start the servers if no thread did yet.
        self.mcp.ensure_started(None, &process_cwd());
        let mut slots: Vec<Arc<Slot>> = self.mcp.all();
        if let Some(name) = &params.server_name {
            slots.retain(|s| &s.name == name);
        }
        let start = match params.cursor.as_deref() {
            None => 0,
            Some(c) => c
                .parse::<usize>()
                .map_err(|_| RpcError::invalid_request(format!("invalid cursor: {c}")))?,
        };
        let limit = params
            .limit
            .map_or(DEFAULT_PAGE, |l| (l as usize).clamp(1, MAX_PAGE));
        let tools_only = params.detail.as_deref() == Some("toolsAndAuthOnly");
        let end = (start + limit).min(slots.len());
        let data: Vec<Value> = slots
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|slot| status_of(slot, tools_only))
            .collect();
        let next = (end < slots.len()).then(|| end.to_string());
        Ok(json!({"data": data, "nextCursor": next}))
    }

    fn mcp_reload(&mut self) -> Result<(), RpcError> {
        let fresh = self
            .config
            .reloaded()
            .map_err(|e| RpcError::invalid_request(format!("{e:#}")))?;
        let unknown = super::config::unknown_keys(fresh.raw_value("mcp_servers").as_ref());
        if !unknown.is_empty() {
            crate::log::warn(&format!(
                "ignoring unknown configuration keys: {}",
                unknown.join(", ")
            ));
        }
        self.mcp.reload(&fresh.mcp_servers);
        self.config.mcp_servers = fresh.mcp_servers;
        Ok(())
    }

    /// For `thread/start`: `None` when it may run now; otherwise it was answered (a required
    /// server failed) or deferred until the required servers settle, when it runs again.
    pub fn gate_on_required_mcp_servers(
        &mut self,
        id: &RequestId,
        method: &str,
        params: &Option<Value>,
    ) -> Option<Result<(), RpcError>> {
        if !self.mcp.has_required() {
            return None;
        }
        self.mcp.ensure_started(None, &process_cwd());
        let settled = self
            .mcp
            .all()
            .iter()
            .filter(|s| s.config.required && s.config.enabled)
            .all(|s| !s.is_starting());
        if settled {
            let failures = self.mcp.required_failures();
            return (!failures.is_empty()).then(|| Err(required_error(&failures)));
        }
        let registry = self.mcp.clone();
        let jobs = self.jobs.clone();
        let (id, method, params) = (id.clone(), method.to_string(), params.clone());
        let spawned = std::thread::Builder::new()
            .name("mcp-required-wait".into())
            .spawn(move || {
                let failures = registry.required_failures();
                let _ = jobs.send(Box::new(move |server: &mut Server| {
                    if failures.is_empty() {
                        server.redispatch(&id, &method, params);
                    } else {
                        server.rpc.respond_error(&id, &required_error(&failures));
                    }
                }));
            });
        Some(
            spawned
                .map(|_| ())
                .map_err(|e| RpcError::internal(format!("cannot wait for MCP servers: {e}"))),
        )
    }
}

fn required_error(failures: &[String]) -> RpcError {
    RpcError::invalid_request(format!(
        "required MCP server failed: {}",
        failures.join("; ")
    ))
}

fn process_cwd() -> std::path::PathBuf {
    std::env::current_dir().unwrap_or_default()
}

/// One `McpServerStatus`.
fn status_of(slot: &Slot, tools_only: bool) -> Value {
    let snapshot = slot.snapshot();
    let (runtime, tools_error) = match &snapshot.phase {
        Phase::NotStarted => ("notStarted", None),
        Phase::Starting { .. } => ("starting", None),
        Phase::Ready => ("connected", None),
        Phase::Failed(message) => ("failed", Some(message.clone())),
        Phase::Disabled => ("disabled", None),
        Phase::Cancelled => ("cancelled", None),
    };
    let mut tools = Map::new();
    for tool in &snapshot.tools {
        if let Some(name) = tool.get("name").and_then(Value::as_str) {
            let mut tool = tool.clone();
            if tool.get("inputSchema").is_none() {
                tool["inputSchema"] = json!({"type": "object"});
            }
            tools.insert(name.to_string(), tool);
        }
    }
    let (auth, origin) = match &slot.config.transport {
        McpTransport::Stdio { .. } => ("unsupported", None),
        McpTransport::Http {
            url,
            bearer_token_env_var,
            ..
        } => (
            if bearer_token_env_var.is_some() {
                "bearerToken"
            } else {
                "unsupported"
            },
            Some(origin_of(url)),
        ),
    };
    let facts = if tools_only {
        ServerFacts::default()
    } else {
        snapshot.facts
    };
    json!({
        "name": slot.name,
        "authStatus": auth,
        "tools": tools,
        "resources": [],
        "resourceTemplates": [],
        "serverInfo": facts.server_info.as_ref().and_then(server_info),
        "serverCapabilities": facts.capabilities,
        "runtimeStatus": runtime,
        "toolsError": tools_error,
        "httpOrigin": origin,
        "pluginId": null,
        "toolListMeta": null,
    })
}

/// `McpServerInfo` from the server's `serverInfo` (name and version are required there).
fn server_info(info: &Value) -> Option<Value> {
    let text = |k: &str| info.get(k).and_then(Value::as_str);
    Some(json!({
        "name": text("name")?,
        "version": text("version").unwrap_or(""),
        "title": text("title"),
        "description": text("description"),
        "websiteUrl": text("websiteUrl"),
        "icons": info.get("icons").filter(|i| i.is_array()),
    }))
}

/// `scheme://host[:port]` of a URL, without credentials or path.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}://{host}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn origins_drop_credentials_and_paths() {
        let cases = [
            ("http://127.0.0.1:8000/mcp", "http://127.0.0.1:8000"),
            ("https://u:p@example.test/a?b#c", "https://example.test"),
            ("https://h", "https://h"),
        ];
        for (url, want) in cases {
            assert_eq!(origin_of(url), want, "{url}");
        }
    }

    #[test]
    fn server_info_keeps_the_schema_fields() {
        assert_eq!(
            server_info(&json!({"name": "demo", "version": "1", "extra": 1})).unwrap(),
            json!({"name": "demo", "version": "1", "title": null, "description": null,
                   "websiteUrl": null, "icons": null})
        );
        assert_eq!(server_info(&json!({"version": "1"})), None);
    }
}
