//! The servers of the process (mcp.md §2, *decision*: shared by all threads): started in
//! parallel on the first thread start, reloaded from config on request, stopped at shutdown;
//! and the catalog of tools they offer the model, by model-facing name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::client::lock;
use super::config::McpServerConfig;
use super::slot::{Phase, Slot};
use crate::rpc::Rpc;

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedTool {
    /// `mcp__<server>__<tool>`, sanitized and unique.
    pub name: String,
    /// The configured server name.
    pub server: String,
    /// The tool's own name on its server.
    pub tool: String,
    /// Its description (may be empty).
    pub description: String,
    /// Its JSON schema for arguments (always an object schema).
    pub input_schema: Value,
    /// `annotations.readOnlyHint == true`: no approval needed.
    pub read_only: bool,
    /// The server's `tool_timeout_sec`.
    pub timeout: Duration,
}

impl OfferedTool {
    /// The Responses API function-tool definition.
    pub fn definition(&self) -> Value {
        json!({
            "type": "function",
            "name": self.name,
            "description": self.description,
            "strict": false,
            "parameters": self.input_schema,
        })
    }
}

struct Inner {
    slots: BTreeMap<String, Arc<Slot>>,
    started: bool,
    /// The first thread's cwd: the root offered when no call is running.
    default_cwd: PathBuf,
}

/// Every configured MCP server of this process.
pub struct Registry {
    rpc: Rpc,
    inner: Mutex<Inner>,
}

impl Registry {
    /// A registry of `configs`; nothing starts until [`Registry::ensure_started`].
    pub fn new(rpc: Rpc, configs: &BTreeMap<String, McpServerConfig>) -> Self {
        let slots = configs
            .iter()
            .map(|(name, config)| (name.clone(), Slot::new(name, config.clone(), rpc.clone())))
            .collect();
        Self {
            rpc,
            inner: Mutex::new(Inner {
                slots,
                started: false,
                default_cwd: PathBuf::new(),
            }),
        }
    }

    /// Starts every enabled server in the background, the first time only (later calls return
    /// at once).
    pub fn ensure_started(&self, thread_id: Option<&str>, cwd: &Path) {
        let slots = {
            let mut inner = lock(&self.inner);
            if inner.started {
                return;
            }
            inner.started = true;
            inner.default_cwd = cwd.to_path_buf();
            inner.slots.values().cloned().collect::<Vec<_>>()
        };
        for slot in slots {
            slot.start_once(thread_id, cwd);
        }
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        lock(&self.inner).slots.values().cloned().collect()
    }

    /// One server by name.
    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        lock(&self.inner).slots.get(name).cloned()
    }

    /// Every server, by name.
    pub fn all(&self) -> Vec<Arc<Slot>> {
        self.slots()
    }

    /// Whether any `required` enabled server is configured.
    pub fn has_required(&self) -> bool {
        self.slots()
            .iter()
            .any(|s| s.config.required && s.config.enabled)
    }

    /// Waits (each at most its startup timeout, or until `cancel()`) for the servers still
    /// starting.
    pub fn wait_for_startup(&self, cancel: &dyn Fn() -> bool) {
        for slot in self.slots() {
            if slot.is_starting() {
                slot.wait_settled(cancel);
            }
        }
    }

    /// Waits for the `required` servers and returns why each one that is not ready failed.
    pub fn required_failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for slot in self.slots() {
            if !(slot.config.required && slot.config.enabled) {
                continue;
            }
            if !slot.wait_settled(&|| false) {
                let why = match slot.snapshot().phase {
                    Phase::Failed(message) => message,
                    _ => format!(
                        "MCP server `{}` did not start within its startup timeout",
                        slot.name
                    ),
                };
                failures.push(why);
            }
        }
        failures
    }

    /// The tools offered to the model now: every allowed tool of every server that is ready
    /// (or died with its restart unused), in server then server order.
    pub fn tools(&self) -> Vec<OfferedTool> {
        let mut found = Vec::new();
        for slot in self.slots() {
            let snapshot = slot.snapshot();
            if !snapshot.is_callable {
                continue;
            }
            for tool in snapshot.tools {
                let Some(tool_name) = tool.get("name").and_then(Value::as_str) else {
                    continue;
                };
                found.push(OfferedTool {
                    name: String::new(),
                    server: slot.name.clone(),
                    tool: tool_name.to_string(),
                    description: tool
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    input_schema: object_schema(tool.get("inputSchema")),
                    read_only: tool
                        .pointer("/annotations/readOnlyHint")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    timeout: slot.config.tool_timeout,
                });
            }
        }
        let names =
            super::names::assign(found.iter().map(|t| (t.server.as_str(), t.tool.as_str())));
        for (tool, name) in found.iter_mut().zip(names) {
            tool.name = name;
        }
        found
    }

    /// The offered tool the model calls `name`, if any.
    pub fn find(&self, name: &str) -> Option<OfferedTool> {
        if !name.starts_with("mcp__") {
            return None;
        }
        self.tools().into_iter().find(|t| t.name == name)
    }

    /// The function-tool definitions of [`Registry::tools`], for the model request.
    pub fn definitions(&self) -> Vec<Value> {
        self.tools().iter().map(OfferedTool::definition).collect()
    }

    /// Applies a new `mcp_servers` configuration: removed servers stop, changed ones restart,
    /// new ones start (if servers were started already); unchanged ones keep running.
    pub fn reload(&self, configs: &BTreeMap<String, McpServerConfig>) {
        let (stopped, to_start, cwd) = {
            let mut inner = lock(&self.inner);
            let mut stopped = Vec::new();
            let mut to_start = Vec::new();
            let old = std::mem::take(&mut inner.slots);
            for (name, slot) in old {
                match configs.get(&name) {
                    Some(config) if *config == slot.config => {
                        inner.slots.insert(name, slot);
                    }
                    _ => stopped.push(slot),
                }
            }
            for (name, config) in configs {
                if !inner.slots.contains_key(name) {
                    let slot = Slot::new(name, config.clone(), self.rpc.clone());
                    to_start.push(slot.clone());
                    inner.slots.insert(name.clone(), slot);
                }
            }
            let to_start = if inner.started { to_start } else { Vec::new() };
            (stopped, to_start, inner.default_cwd.clone())
        };
        stop_all(&stopped);
        for slot in to_start {
            slot.start_once(None, &cwd);
        }
    }

    /// Stops every server (their processes are ended and reaped; HTTP sessions are ended).
    pub fn shutdown(&self) {
        let slots = std::mem::take(&mut lock(&self.inner).slots);
        stop_all(&slots.into_values().collect::<Vec<_>>());
    }
}

/// Stops servers in parallel (each may take a short grace to exit).
fn stop_all(slots: &[Arc<Slot>]) {
    std::thread::scope(|scope| {
        for slot in slots {
            let spawned = std::thread::Builder::new()
                .name(format!("mcp-stop-{}", slot.name))
                .spawn_scoped(scope, || slot.stop());
            if spawned.is_err() {
                slot.stop();
            }
        }
    });
}

/// The tool's input schema as an object schema the Responses API takes (a missing or odd
/// schema becomes "no arguments").
fn object_schema(schema: Option<&Value>) -> Value {
    match schema {
        Some(Value::Object(map)) => {
            let mut map = map.clone();
            map.insert("type".into(), json!("object"));
            map.entry("properties").or_insert_with(|| json!({}));
            Value::Object(map)
        }
        _ => json!({"type": "object", "properties": {}}),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_object_schemas() {
        assert_eq!(
            object_schema(None),
            json!({"type": "object", "properties": {}})
        );
        assert_eq!(
            object_schema(Some(&json!({"properties": {"a": {"type": "string"}}}))),
            json!({"type": "object", "properties": {"a": {"type": "string"}}})
        );
        assert_eq!(
            object_schema(Some(&json!("x"))),
            json!({"type": "object", "properties": {}})
        );
    }
}
