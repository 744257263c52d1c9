//! The running turn's outward surface, used by the loop and by `tools/`: the thread's status,
//! item notifications (started, delta, completed), warnings, the model-facing history, token
//! usage, steering input and the tool runner.

use serde_json::Value;

use crate::protocol::notify;
use crate::protocol::{
    ActiveFlag, ThreadItem, ThreadStatus, ThreadTokenUsage, TokenUsage, UserInput,
};
use crate::rollout::Entry;
use crate::thread::lock;
use crate::tools::Tools;

use super::TurnRunner;

impl TurnRunner {
    /// Sets the thread's status and tells the client.
    pub fn set_status(&self, status: ThreadStatus) {
        let mut state = lock(&self.thread);
        state.status = status.clone();
        self.rpc.notify(
            "thread/status/changed",
            notify::StatusChanged {
                thread_id: &self.thread_id,
                status: &status,
            },
        );
    }

    /// `active` with or without the waiting-on-approval flag.
    pub fn set_waiting_on_approval(&self, waiting: bool) {
        let flags = if waiting {
            vec![ActiveFlag::WaitingOnApproval]
        } else {
            Vec::new()
        };
        self.set_status(ThreadStatus::Active {
            active_flags: flags,
        });
    }

    /// Emits `item/started`.
    pub fn item_started(&self, item: &ThreadItem) {
        self.rpc.notify(
            "item/started",
            notify::ItemStarted {
                thread_id: &self.thread_id,
                turn_id: &self.turn_id,
                item,
                started_at_ms: crate::time::unix_millis(),
            },
        );
    }

    /// Emits `item/completed`, records the item, and keeps it for `turn/completed`.
    pub fn item_completed(&mut self, item: ThreadItem) {
        self.rpc.notify(
            "item/completed",
            notify::ItemCompleted {
                thread_id: &self.thread_id,
                turn_id: &self.turn_id,
                item: &item,
                completed_at_ms: crate::time::unix_millis(),
            },
        );
        lock(&self.thread).push_item(&self.turn_id, &item);
        self.items.push(item);
    }

    /// Emits a delta notification (`item/agentMessage/delta`, `item/commandExecution/outputDelta`).
    pub fn item_delta(&self, method: &str, item_id: &str, delta: &str) {
        self.rpc.notify(
            method,
            notify::ItemDelta {
                thread_id: &self.thread_id,
                turn_id: &self.turn_id,
                item_id,
                delta,
            },
        );
    }

    /// Emits a `warning` notification for this thread.
    pub fn warn(&self, message: &str) {
        self.rpc.notify(
            "warning",
            notify::Warning {
                thread_id: Some(&self.thread_id),
                message,
            },
        );
    }

    /// Adds a model-facing history item (to the review's own conversation during a review).
    pub fn push_history(&self, item: Value) {
        match &self.review {
            Some(review) => review.history.borrow_mut().push(item),
            None => lock(&self.thread).push_history(&self.turn_id, item),
        }
    }

    /// Adds a response's usage to the thread's, records it, and tells the client.
    pub(crate) fn record_usage(&self, last: TokenUsage) {
        let (total, window) = {
            let mut state = lock(&self.thread);
            state.total_usage.add(&last);
            state.last_usage = last;
            let total = state.total_usage;
            state.record(&Entry::TokenUsage { total, last });
            (
                total,
                crate::context::compact::reported_window(&state.settings),
            )
        };
        self.rpc.notify(
            "thread/tokenUsage/updated",
            notify::TokenUsageUpdated {
                thread_id: &self.thread_id,
                turn_id: &self.turn_id,
                token_usage: ThreadTokenUsage {
                    total,
                    last,
                    model_context_window: Some(window),
                },
            },
        );
    }

    /// Whether this turn runs a review (in its own conversation, never compacted).
    pub(crate) fn is_review(&self) -> bool {
        self.review.is_some()
    }

    /// Queues steering input for the next model request.
    pub fn pending_steer(&mut self, input: Vec<UserInput>) {
        self.pending_input.push(input);
    }

    /// The tool runner and its per-turn state.
    pub fn tools(&mut self) -> &mut Tools {
        &mut self.tools
    }
}
