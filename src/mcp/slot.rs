//! One configured server's lifecycle (mcp.md §2): not started → starting → ready or failed,
//! each step announced with `mcpServer/startupStatus/updated` (and a `warning` on failure);
//! the connection, what the server said at `initialize`, and its allowed tools. A start runs on
//! the shared start thread (`starter.rs`) bounded by `startup_timeout_sec`, so starting never
//! blocks the caller; waiting for the outcome is a separate, bounded call. A running server is
//! read by its transport (`stdio/`, `http.rs`).
//!
//! A server that dies after it was ready is restarted by the next call that needs it, once;
//! after that its status stays failed until `config/mcpServer/reload`. An HTTP session the
//! server ended is no death: the next call starts a new one, however often that happens.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::client::{Link, McpError, ServerFacts, lock, secs};
use super::config::{McpServerConfig, McpTransport};
use crate::rpc::Rpc;

/// How often a waiter looks at its cancel condition.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Where a server is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Configured, never started.
    NotStarted,
    /// Connecting (spawn, handshake, tool listing) until `deadline`.
    Starting {
        /// When the start gives up.
        deadline: Instant,
    },
    /// Connected; its tools are offered.
    Ready,
    /// Could not start, or died again after its one restart.
    Failed(String),
    /// `enabled = false`.
    Disabled,
    /// Its start was abandoned (reload or shutdown).
    Cancelled,
}

struct State {
    phase: Phase,
    link: Option<Arc<Link>>,
    /// What the ready server said about itself and its allowed tools.
    said: Said,
    /// The one restart after a death was used.
    restarted: bool,
    /// Bumped by every start, so a superseded start's outcome is dropped.
    generation: u64,
}

/// One configured server.
pub struct Slot {
    /// The configured name.
    pub name: String,
    /// Its configuration.
    pub config: McpServerConfig,
    state: Mutex<State>,
    settled: Condvar,
    rpc: Rpc,
}

/// `mcpServer/startupStatus/updated`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartupStatus<'a> {
    thread_id: Option<&'a str>,
    name: &'a str,
    status: &'a str,
    error: Option<&'a str>,
    failure_reason: Option<&'a str>,
}

/// `warning`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Warning<'a> {
    thread_id: Option<&'a str>,
    message: &'a str,
}

/// A snapshot of a slot for listings.
pub struct Snapshot {
    /// Phase (a ready server whose connection dropped reads as failed, with the reason).
    pub phase: Phase,
    /// What `initialize` returned.
    pub facts: ServerFacts,
    /// Allowed tools, raw.
    pub tools: Vec<Value>,
    /// Whether a call would (re)connect it: ready, or dead with its restart unused.
    pub is_callable: bool,
}

impl Slot {
    /// A slot for `config`; disabled servers start disabled.
    pub fn new(name: &str, config: McpServerConfig, rpc: Rpc) -> Arc<Self> {
        let phase = if config.enabled {
            Phase::NotStarted
        } else {
            Phase::Disabled
        };
        Arc::new(Self {
            name: name.to_string(),
            config,
            state: Mutex::new(State {
                phase,
                link: None,
                said: Said::default(),
                restarted: false,
                generation: 0,
            }),
            settled: Condvar::new(),
            rpc,
        })
    }

    /// Starts the server in the background unless it was started already.
    pub fn start_once(self: &Arc<Self>, thread_id: Option<&str>, cwd: &std::path::Path) {
        let mut state = lock(&self.state);
        if state.phase == Phase::NotStarted {
            self.begin(&mut state, thread_id, cwd.to_path_buf());
        }
    }

    fn begin(self: &Arc<Self>, state: &mut State, thread_id: Option<&str>, cwd: PathBuf) {
        state.generation += 1;
        let generation = state.generation;
        let deadline = Instant::now() + self.config.startup_timeout;
        state.phase = Phase::Starting { deadline };
        if let Some(old) = state.link.take() {
            old.shutdown();
        }
        self.announce(thread_id, "starting", None);
        let job = super::starter::Job {
            slot: self.clone(),
            generation,
            cwd,
            deadline,
            thread_id: thread_id.map(str::to_string),
        };
        if let Err(e) = super::starter::submit(job) {
            let message = format!("cannot start a thread: {e}");
            state.phase = Phase::Failed(message.clone());
            self.announce(None, "failed", Some(&message));
        }
    }

    /// Spawns or opens the connection of start `generation` (the handshake is
    /// `starter.rs`'s). The new connection is put in the slot at once, so that stopping the
    /// slot meanwhile ends it.
    pub(super) fn open(&self, generation: u64, cwd: PathBuf) -> Result<Arc<Link>, String> {
        let link = match &self.config.transport {
            McpTransport::Stdio {
                command,
                args,
                env,
                env_vars,
                cwd: server_cwd,
            } => super::stdio::spawn(
                &self.name,
                &super::stdio::StdioSpec {
                    command,
                    args,
                    env,
                    env_vars,
                    cwd: server_cwd.as_ref(),
                },
                self.rpc.clone(),
                cwd,
            ),
            McpTransport::Http { .. } => {
                super::http::open(&self.name, &self.config.transport, self.rpc.clone(), cwd)
            }
        }
        .map_err(|e| e.to_string())?;
        let mut state = lock(&self.state);
        if state.generation != generation {
            drop(state);
            link.shutdown();
            return Err("cancelled".to_string());
        }
        state.link = Some(link.clone());
        Ok(link)
    }

    /// What a failed start reports: the error in words (the exit status and stderr when the
    /// connection closed), and what the server printed that is not JSON-RPC.
    pub(super) fn startup_error(&self, link: &Link, error: &McpError) -> String {
        let mut message = match error {
            McpError::Timeout(_) => format!(
                "no answer within the startup timeout ({})",
                secs(self.config.startup_timeout)
            ),
            // The reader closed the link with the exit status and stderr.
            McpError::Closed(_) => link.close_reason().unwrap_or_else(|| error.to_string()),
            other => other.to_string(),
        };
        if let Some(note) = link.garbage_note() {
            message.push_str(&format!("; {note}"));
        }
        message
    }

    /// The connection of start `generation` ended on its own: after the one restart was used
    /// the server is failed now (its tools leave the catalog); before, the next call restarts
    /// it.
    fn connection_lost(&self, generation: u64, reason: &str) {
        let mut state = lock(&self.state);
        if state.generation != generation || state.phase != Phase::Ready {
            return;
        }
        if state.link.as_ref().is_some_and(|l| l.is_session_expired()) {
            crate::log::info(&format!(
                "mcp server {}: {reason}; a new session starts on its next call",
                self.name
            ));
            return;
        }
        if state.restarted {
            let message = format!(
                "MCP server `{}` stopped again after its restart: {reason}",
                self.name
            );
            state.phase = Phase::Failed(message.clone());
            state.said = Said::default();
            drop(state);
            self.announce(None, "failed", Some(&message));
        } else {
            crate::log::warn(&format!(
                "mcp server {}: {reason}; it restarts on its next call",
                self.name
            ));
        }
    }

    /// Takes the outcome of start `generation` (dropped, its connection shut down, when the
    /// start was superseded).
    pub(super) fn finish(
        self: &Arc<Self>,
        generation: u64,
        outcome: Result<Connected, String>,
        thread_id: Option<&str>,
    ) {
        let mut state = lock(&self.state);
        if state.generation != generation || !matches!(state.phase, Phase::Starting { .. }) {
            if let Ok(connected) = outcome {
                connected.link.shutdown();
            }
            return;
        }
        if outcome.is_err() {
            state.link = None;
        }
        match outcome {
            Ok(connected) => {
                let slot = Arc::downgrade(self);
                connected.link.on_close(Box::new(move |reason| {
                    if let Some(slot) = slot.upgrade() {
                        slot.connection_lost(generation, reason);
                    }
                }));
                state.link = Some(connected.link);
                state.said = Said::keep(&connected.facts, &connected.tools);
                state.phase = Phase::Ready;
                self.announce(thread_id, "ready", None);
            }
            Err(message) => {
                let message = format!("MCP server `{}` failed to start: {message}", self.name);
                state.phase = Phase::Failed(message.clone());
                state.said = Said::default();
                self.announce(thread_id, "failed", Some(&message));
            }
        }
        self.settled.notify_all();
    }

    fn announce(&self, thread_id: Option<&str>, status: &str, error: Option<&str>) {
        self.rpc.notify(
            "mcpServer/startupStatus/updated",
            StartupStatus {
                thread_id,
                name: &self.name,
                status,
                error,
                failure_reason: None,
            },
        );
        if let Some(message) = error {
            crate::log::warn(message);
            self.rpc.notify("warning", Warning { thread_id, message });
        }
    }

    /// Waits until the server is no longer starting (or `cancel()` says stop); true when it is
    /// ready.
    pub fn wait_settled(&self, cancel: &dyn Fn() -> bool) -> bool {
        let mut state = lock(&self.state);
        loop {
            match state.phase {
                Phase::Starting { deadline } => {
                    if cancel() {
                        return false;
                    }
                    // The start gives up by `deadline`; the extra second covers its
                    // clean-up (killing the process) before it reports.
                    let left = (deadline + Duration::from_secs(1))
                        .saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    state = self
                        .settled
                        .wait_timeout(state, left.min(WAIT_SLICE))
                        .map(|(s, _)| s)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
                Phase::Ready => return true,
                _ => return false,
            }
        }
    }

    /// Whether a start is in progress.
    pub fn is_starting(&self) -> bool {
        matches!(lock(&self.state).phase, Phase::Starting { .. })
    }

    /// The connection for a call: waits for a start in progress, restarts a dead server once.
    pub fn connection(
        self: &Arc<Self>,
        context: Option<(&str, &std::path::Path)>,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Arc<Link>, String> {
        loop {
            {
                let mut state = lock(&self.state);
                match &state.phase {
                    Phase::Ready => match &state.link {
                        Some(link) if !link.is_closed() => return Ok(link.clone()),
                        // A new session is no restart: the server did not die.
                        Some(link) if link.is_session_expired() => {
                            crate::log::info(&format!(
                                "mcp server {}: starting a new session",
                                self.name
                            ));
                            let cwd = context.map(|(_, c)| c.to_path_buf()).unwrap_or_default();
                            self.begin(&mut state, context.map(|(t, _)| t), cwd);
                        }
                        _ if !state.restarted => {
                            let reason = state
                                .link
                                .as_ref()
                                .and_then(|l| l.close_reason())
                                .unwrap_or_default();
                            crate::log::warn(&format!(
                                "mcp server {}: restarting it ({reason})",
                                self.name
                            ));
                            state.restarted = true;
                            let cwd = context.map(|(_, c)| c.to_path_buf()).unwrap_or_default();
                            self.begin(&mut state, context.map(|(t, _)| t), cwd);
                        }
                        _ => {
                            let reason = state
                                .link
                                .as_ref()
                                .and_then(|l| l.close_reason())
                                .unwrap_or_else(|| "connection lost".into());
                            let message = format!(
                                "MCP server `{}` stopped again after its restart: {reason}",
                                self.name
                            );
                            state.phase = Phase::Failed(message.clone());
                            state.said = Said::default();
                            self.announce(context.map(|(t, _)| t), "failed", Some(&message));
                            return Err(message);
                        }
                    },
                    Phase::NotStarted => {
                        let cwd = context.map(|(_, c)| c.to_path_buf()).unwrap_or_default();
                        self.begin(&mut state, context.map(|(t, _)| t), cwd);
                    }
                    Phase::Starting { .. } => {}
                    Phase::Failed(message) => return Err(message.clone()),
                    Phase::Disabled => {
                        return Err(format!("MCP server `{}` is disabled", self.name));
                    }
                    Phase::Cancelled => {
                        return Err(format!("MCP server `{}` was stopped", self.name));
                    }
                }
            }
            if cancel() {
                return Err("cancelled".to_string());
            }
            if !self.wait_settled(cancel) && cancel() {
                return Err("cancelled".to_string());
            }
            if self.is_starting() {
                // The start is late to report after its deadline.
                return Err(format!(
                    "MCP server `{}` did not start within {}",
                    self.name,
                    secs(self.config.startup_timeout)
                ));
            }
        }
    }

    /// The current state for listings and tool catalogs.
    pub fn snapshot(&self) -> Snapshot {
        let state = lock(&self.state);
        let dead = state
            .link
            .as_ref()
            .and_then(|l| l.close_reason().filter(|_| l.is_closed()));
        let (facts, tools) = state.said.read();
        let (phase, is_callable) = match (&state.phase, dead) {
            // The session ended, not the server: the next call starts a new one.
            (Phase::Ready, Some(_))
                if state.link.as_ref().is_some_and(|l| l.is_session_expired()) =>
            {
                (Phase::Ready, true)
            }
            (Phase::Ready, Some(reason)) => (Phase::Failed(reason), !state.restarted),
            (Phase::Ready, None) => (Phase::Ready, true),
            (other, _) => (other.clone(), false),
        };
        Snapshot {
            phase,
            facts,
            tools,
            is_callable,
        }
    }

    /// Stops the server for good (reload, shutdown); a start in progress is abandoned.
    pub fn stop(&self) {
        let link = {
            let mut state = lock(&self.state);
            if matches!(state.phase, Phase::Starting { .. }) {
                state.generation += 1;
                state.phase = Phase::Cancelled;
                self.announce(None, "cancelled", None);
                self.settled.notify_all();
            }
            state.link.take()
        };
        if let Some(link) = link {
            link.shutdown();
        }
    }
}

/// What a ready server said (`initialize`, its allowed tools), kept as compact JSON text: a
/// tree of `Value`s costs several times its text in memory, and this is read only to list the
/// server or to offer its tools to a turn.
#[derive(Default)]
struct Said(Option<Box<str>>);

impl Said {
    fn keep(facts: &ServerFacts, tools: &[Value]) -> Self {
        let said = (&facts.server_info, &facts.capabilities, tools);
        Self(
            serde_json::to_string(&said)
                .ok()
                .map(String::into_boxed_str),
        )
    }

    fn read(&self) -> (ServerFacts, Vec<Value>) {
        type Parts = (Option<Value>, Option<Value>, Vec<Value>);
        match self.0.as_deref().map(serde_json::from_str::<Parts>) {
            Some(Ok((server_info, capabilities, tools))) => (
                ServerFacts {
                    server_info,
                    capabilities,
                },
                tools,
            ),
            _ => (ServerFacts::default(), Vec::new()),
        }
    }
}

/// A started connection, what its server said, and its allowed tools.
pub(super) struct Connected {
    /// The connection.
    pub link: Arc<Link>,
    /// What `initialize` returned.
    pub facts: ServerFacts,
    /// The allowed tools, raw.
    pub tools: Vec<Value>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_a_server_said_reads_back_as_it_was_kept() {
        let facts = ServerFacts {
            server_info: Some(json!({"name": "demo", "version": "1"})),
            capabilities: Some(json!({"tools": {}})),
        };
        let tools = vec![json!({"name": "echo", "inputSchema": {"type": "object"}})];
        let (read_facts, read_tools) = Said::keep(&facts, &tools).read();
        assert_eq!(read_facts.server_info, facts.server_info);
        assert_eq!(read_facts.capabilities, facts.capabilities);
        assert_eq!(read_tools, tools);
        let (none, no_tools) = Said::default().read();
        assert!(none.server_info.is_none() && none.capabilities.is_none() && no_tools.is_empty());
    }
}
