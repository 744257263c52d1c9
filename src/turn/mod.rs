//! One turn, on its own thread `turn-<id>`: the loop model → tool calls → outputs → model until
//! the model answers without calling a tool; the items and notifications of protocol.md §6–7 in
//! their order; stream-level retries; interrupt and steer; token usage; the failure path. The
//! tools themselves (shell, apply_patch, approvals) are `tools/`'s; HTTP is `client/`'s.
//!
//! This file holds what the main loop, the turn and `tools/` share (the start, the runner, the
//! outcome) and the turn thread itself. `lifecycle` begins and ends a turn, `agent_loop` runs
//! the rounds between, `stream` is one round trip and its event mapping, `items` is the
//! runner's outward surface (status, item notifications, history, usage).

mod agent_loop;
mod items;
mod lifecycle;
mod stream;

use std::sync::Arc;

use crossbeam_channel::Receiver;
use serde_json::Value;

use crate::client::{ClientError, ModelClient};
use crate::protocol::{ThreadItem, TurnError, UserInput};
use crate::review::ReviewRun;
use crate::rpc::Rpc;
use crate::thread::{Control, SharedThread, TurnHandle, lock};
use crate::tools::{ToolCall, ToolEnv, Tools};

/// Everything a turn needs, handed over by the main loop.
pub struct TurnStart {
    /// The connection.
    pub rpc: Rpc,
    /// The thread it runs on (its settings are already updated with the turn's overrides).
    pub thread: SharedThread,
    /// The handle the main loop keeps.
    pub handle: Arc<TurnHandle>,
    /// Interrupt and steer messages.
    pub control: Receiver<Control>,
    /// The model client for this turn.
    pub client: ModelClient,
    /// The user's input.
    pub input: Vec<UserInput>,
    /// Process environment for commands.
    pub tool_env: Arc<ToolEnv>,
    /// The model catalog, to resolve the thread's model when the turn starts.
    pub catalog: crate::models::CatalogAccess,
    /// `turn/start.outputSchema`: the final answer's JSON schema (this turn only).
    pub output_schema: Option<Value>,
    /// Set for a review (`review/start`): the turn runs the review in its own conversation
    /// and `input` is ignored.
    pub review: Option<crate::review::ReviewTarget>,
    /// Set for `thread/compact/start`: the turn only compacts the history (`input` is empty).
    pub compact: bool,
}

/// How a turn ended.
pub enum Outcome {
    /// The model answered without calling tools.
    Completed,
    /// `turn/interrupt`, a `cancel` decision, or the connection closed.
    Interrupted,
    /// A final failure.
    Failed(TurnError),
}

/// What one round trip produced.
pub(crate) enum Round {
    /// `response.completed`: the output items in order and the tool calls among them.
    Done {
        outputs: Vec<Value>,
        calls: Vec<ToolCall>,
    },
    Interrupted,
    Failed(ClientError),
}

/// The running turn's state, shared with `tools/`.
pub struct TurnRunner {
    /// The connection.
    pub rpc: Rpc,
    /// The thread.
    pub thread: SharedThread,
    /// Thread id.
    pub thread_id: String,
    /// Turn id.
    pub turn_id: String,
    /// The main loop's handle (interrupt flag, running command).
    pub handle: Arc<TurnHandle>,
    /// Interrupt and steer messages.
    pub control: Receiver<Control>,
    /// The model client of this turn.
    pub(crate) client: ModelClient,
    /// While set, round trips only collect output items (a compaction): no item
    /// notifications, no tool calls.
    pub(crate) quiet: bool,
    /// The turn's `outputSchema`.
    output_schema: Option<Value>,
    /// Steering input waiting for the next model request.
    pending_input: Vec<Vec<UserInput>>,
    /// Completed items of this turn, for `turn/completed`.
    items: Vec<ThreadItem>,
    /// The tool runner.
    tools: Tools,
    /// The review this turn runs, if it is one.
    review: Option<ReviewRun>,
}

/// Starts the turn thread. The main loop has already answered `turn/start`.
pub fn spawn(start: TurnStart) -> std::io::Result<()> {
    let (thread_id, turn_id) = {
        let state = lock(&start.thread);
        (state.id.clone(), start.handle.turn_id.clone())
    };
    let name = format!("turn-{turn_id}");
    let rpc = start.rpc.clone();
    let thread = start.thread.clone();
    let handle = start.handle.clone();
    std::thread::Builder::new().name(name).spawn(move || {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lifecycle::run(start)));
        if outcome.is_err() {
            // A bug in a turn must cost the turn, not the server.
            crate::log::error(&format!("turn {turn_id} panicked"));
            let error = TurnError {
                message: "internal error: the turn stopped unexpectedly".to_string(),
                codex_error_info: Some(crate::protocol::CodexErrorInfo::Other),
                additional_details: None,
            };
            lifecycle::finish_turn(
                &rpc,
                &thread,
                &thread_id,
                &turn_id,
                &handle,
                Vec::new(),
                Outcome::Failed(error),
            );
        }
    })?;
    Ok(())
}

/// A client error as the turn's error.
pub(crate) fn turn_error(error: &ClientError) -> TurnError {
    TurnError {
        message: error.message.clone(),
        codex_error_info: Some(error.info.clone()),
        additional_details: None,
    }
}
