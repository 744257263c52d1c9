//! turn/start, turn/interrupt and turn/steer: overrides onto the thread's settings, the
//! turn handle, and the `turn-<id>` thread (`turn/` runs it).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::not_found;
use super::settings::{parse_approval, resolve_cwd};
use crate::protocol::{Turn, UserInput};
use crate::rpc::{RequestId, RpcError};
use crate::sandbox::ProtocolSandboxPolicy;
use crate::server::Server;
use crossbeam_channel::Receiver;

use crate::config::Config;
use crate::thread::{Control, SharedThread, SteerRefused, TurnHandle, lock};
use crate::turn::TurnStart;

/// Messages queued to a running turn: steering input up to one less (then -32001), the last
/// slot kept for an interrupt.
const TURN_CONTROL_QUEUE: usize = 64;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TurnStartParams {
    thread_id: String,
    input: Vec<UserInput>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    approval_policy: Option<Value>,
    #[serde(default)]
    sandbox_policy: Option<ProtocolSandboxPolicy>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    effort: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    output_schema: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TurnInterruptParams {
    thread_id: String,
    turn_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TurnSteerParams {
    thread_id: String,
    input: Vec<UserInput>,
    /// Required, as in the reference: a steer names the turn it means.
    expected_turn_id: String,
}

impl Server {
    pub(super) fn turn_start(
        &mut self,
        id: &RequestId,
        params: TurnStartParams,
    ) -> Result<(), RpcError> {
        let shared = self
            .threads
            .get(&params.thread_id)
            .cloned()
            .ok_or_else(|| not_found(&params.thread_id))?;
        crate::prompt::validate_input(&params.input).map_err(RpcError::invalid_params)?;
        let turn_id = crate::ids::uuid_v7();
        let (control_tx, control_rx) = crossbeam_channel::bounded(TURN_CONTROL_QUEUE);
        let handle = Arc::new(TurnHandle::new(turn_id.clone(), control_tx));
        let config = {
            let mut state = lock(&shared);
            if let Some(active) = &state.active {
                return Err(RpcError::invalid_request(format!(
                    "thread {} already has an active turn {}; use turn/steer to add input",
                    params.thread_id, active.turn_id
                )));
            }
            let settings = &mut state.settings;
            if let Some(cwd) = &params.cwd {
                settings.cwd = resolve_cwd(Some(cwd), &settings.cwd)?;
            }
            if let Some(value) = &params.approval_policy {
                settings.approval = parse_approval(value)?;
            }
            if let Some(policy) = &params.sandbox_policy {
                settings.sandbox = policy.0.clone();
            }
            if let Some(model) = params.model.as_deref().filter(|m| !m.trim().is_empty()) {
                // Resolved against the freshest catalog by the turn thread (which may wait).
                settings.model = model.to_string();
            }
            if let Some(effort) = &params.effort {
                settings.effort = Some(effort.clone());
            }
            if let Some(summary) = &params.summary {
                settings.summary = Some(summary.clone());
            }
            state.active = Some(handle.clone());
            state.settings.config.clone()
        };
        let turn = Turn::in_progress(&turn_id);
        self.rpc.respond(id, json!({ "turn": turn }));
        let mut start = self.new_turn(&shared, &handle, control_rx, &config);
        start.input = params.input;
        start.output_schema = params.output_schema.filter(|s| !s.is_null());
        self.report_unhonoured(&shared);
        spawn_turn(start, "turn");
        Ok(())
    }

    /// A turn on `shared`, whose `active` slot already holds `handle`, with this server's
    /// connection, command environment, and model client and catalog for `config`: no input,
    /// no output schema, neither a review nor a compaction (callers set what theirs needs).
    pub(super) fn new_turn(
        &self,
        shared: &SharedThread,
        handle: &Arc<TurnHandle>,
        control: Receiver<Control>,
        config: &Config,
    ) -> TurnStart {
        TurnStart {
            rpc: self.rpc.clone(),
            thread: shared.clone(),
            handle: handle.clone(),
            control,
            client: self.model_client(config),
            input: Vec::new(),
            tool_env: self.tool_env.clone(),
            catalog: self.catalog_access(config),
            output_schema: None,
            review: None,
            compact: false,
        }
    }

    fn active_turn(&self, thread_id: &str) -> Result<Option<Arc<TurnHandle>>, RpcError> {
        let shared = self
            .threads
            .get(thread_id)
            .ok_or_else(|| not_found(thread_id))?;
        Ok(lock(shared).active.clone())
    }

    pub(super) fn turn_interrupt(
        &mut self,
        id: &RequestId,
        params: TurnInterruptParams,
    ) -> Result<(), RpcError> {
        match self.active_turn(&params.thread_id)? {
            Some(handle) if handle.turn_id == params.turn_id => {
                handle.interrupt();
                self.rpc.respond(id, json!({}));
                Ok(())
            }
            _ => Err(RpcError::invalid_request("no active turn to interrupt")),
        }
    }

    pub(super) fn turn_steer(
        &mut self,
        id: &RequestId,
        params: TurnSteerParams,
    ) -> Result<(), RpcError> {
        crate::prompt::validate_input(&params.input).map_err(RpcError::invalid_params)?;
        let handle = self
            .active_turn(&params.thread_id)?
            .ok_or_else(|| RpcError::invalid_request("no active turn to steer"))?;
        if handle.is_compaction() {
            let mut error = RpcError::invalid_request("cannot steer a compact turn");
            error.data = Some(json!({
                "message": "cannot steer a compact turn",
                "codexErrorInfo": {"activeTurnNotSteerable": {"turnKind": "compact"}},
            }));
            return Err(error);
        }
        if params.expected_turn_id != handle.turn_id {
            return Err(RpcError::invalid_request(format!(
                "expected active turn id {} but found {}",
                params.expected_turn_id, handle.turn_id
            )));
        }
        match handle.steer(params.input) {
            Ok(()) => {}
            Err(SteerRefused::Finished) => {
                return Err(RpcError::invalid_request("no active turn to steer"));
            }
            Err(SteerRefused::Full) => {
                return Err(RpcError::new(
                    crate::rpc::SERVER_OVERLOADED,
                    "Server overloaded; retry later.",
                ));
            }
        }
        self.rpc.respond(id, json!({ "turnId": handle.turn_id }));
        Ok(())
    }

    /// Interrupts every running turn (stdin closed) and waits a little for them to wind down
    /// (their commands are killed at once; the wait lets `turn/completed` go out).
    pub fn interrupt_all_turns(&self, grace: std::time::Duration) {
        let handles: Vec<Arc<TurnHandle>> = self
            .threads
            .values()
            .filter_map(|t| lock(t).active.clone())
            .collect();
        for handle in &handles {
            handle.interrupt();
        }
        let deadline = std::time::Instant::now() + grace;
        while handles.iter().any(|h| !h.is_finished()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Starts `start`'s turn thread (`what` names it in the log). If the thread cannot be made, the
/// thread's `active` slot is freed and the handle finished, so the thread is not left busy.
pub(super) fn spawn_turn(start: TurnStart, what: &str) {
    let (shared, handle) = (start.thread.clone(), start.handle.clone());
    if let Err(e) = crate::turn::spawn(start) {
        crate::log::error(&format!("cannot start {what} {}: {e}", handle.turn_id));
        lock(&shared).active = None;
        handle.set_finished();
    }
}
