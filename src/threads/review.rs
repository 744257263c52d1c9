//! `review/start` (context.md §3): checks the target, picks the thread the review runs on —
//! the given one (`inline`, the default) or a new one (`detached`, announced with
//! `thread/started`) — and starts a turn in review mode there. What the review asks and how
//! its result reads is `review.rs`'s; running it is `turn/`'s.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::{meta_of, new_state, not_found};
use crate::protocol::{Turn, notify};
use crate::review::ReviewTarget;
use crate::rollout::Rollout;
use crate::rpc::{RequestId, RpcError};
use crate::server::Server;
use crate::thread::{SharedThread, TurnHandle, lock};

/// Where the review's turn runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Delivery {
    /// In the given thread.
    #[default]
    Inline,
    /// In a new thread with the given thread's settings.
    Detached,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReviewStartParams {
    thread_id: String,
    target: ReviewTarget,
    #[serde(default)]
    delivery: Option<Delivery>,
}

impl Server {
    pub(super) fn review_start(
        &mut self,
        id: &RequestId,
        params: ReviewStartParams,
    ) -> Result<(), RpcError> {
        params.target.validate().map_err(RpcError::invalid_params)?;
        let source = self
            .threads
            .get(&params.thread_id)
            .cloned()
            .ok_or_else(|| not_found(&params.thread_id))?;
        let (settings, busy) = {
            let state = lock(&source);
            (state.settings.clone(), state.active.is_some())
        };
        if params.target.needs_git()
            && crate::context::project_docs::git_root(&settings.cwd).is_none()
        {
            return Err(RpcError::invalid_request(format!(
                "cannot review {}: {} is not inside a git repository",
                params.target.display(),
                settings.cwd.display()
            )));
        }
        let shared = match params.delivery.unwrap_or_default() {
            Delivery::Inline => {
                if busy {
                    return Err(RpcError::invalid_request(format!(
                        "thread {} already has an active turn; wait for it or interrupt it before a review",
                        params.thread_id
                    )));
                }
                source
            }
            Delivery::Detached => self.detached_thread(settings)?,
        };
        self.start_review_turn(id, &shared, params.target)
    }

    /// A new thread with `settings` for a detached review, announced with `thread/started`.
    fn detached_thread(
        &mut self,
        settings: crate::thread::Settings,
    ) -> Result<SharedThread, RpcError> {
        let mut state = new_state(crate::ids::uuid_v7(), settings, self.originator(), false);
        let rollout = Rollout::create(&self.config.codex_home, &meta_of(&state))
            .map_err(|e| RpcError::internal(format!("{e:#}")))?;
        state.rollout = Some(rollout);
        let shared = self.register(state);
        let thread = lock(&shared).to_protocol(false);
        self.rpc
            .notify("thread/started", notify::ThreadEvent { thread: &thread });
        Ok(shared)
    }

    /// Answers `review/start` with the new turn and starts it in review mode.
    fn start_review_turn(
        &mut self,
        id: &RequestId,
        shared: &SharedThread,
        target: ReviewTarget,
    ) -> Result<(), RpcError> {
        let turn_id = crate::ids::uuid_v7();
        let (control_tx, control_rx) = crossbeam_channel::bounded(64);
        let handle = Arc::new(TurnHandle::new(turn_id.clone(), control_tx));
        let (thread_id, config) = {
            let mut state = lock(shared);
            if let Some(active) = &state.active {
                return Err(RpcError::invalid_request(format!(
                    "thread {} already has an active turn {}",
                    state.id, active.turn_id
                )));
            }
            state.active = Some(handle.clone());
            (state.id.clone(), state.settings.config.clone())
        };
        let turn = Turn::in_progress(&turn_id);
        self.rpc
            .respond(id, json!({"turn": turn, "reviewThreadId": thread_id}));
        let mut start = self.new_turn(shared, &handle, control_rx, &config);
        start.review = Some(target);
        super::turns::spawn_turn(start, "review turn");
        Ok(())
    }
}
