//! How a turn begins and ends: resolving the model, the `turn/started` boundary with the
//! context the model is told first, the review mode's entry and exit items, and the end of the
//! turn (`error`, the thread's status, the rollout boundary, `turn/completed`). The loop in
//! between is `agent_loop`'s.

use std::time::Duration;

use crate::protocol::notify;
use crate::protocol::{ThreadItem, ThreadStatus, Turn, TurnStatus, UserInput};
use crate::review::ReviewRun;
use crate::rollout::Entry;
use crate::rpc::Rpc;
use crate::thread::{SharedThread, TurnHandle, lock};
use crate::tools::Tools;

use super::{Outcome, TurnRunner, TurnStart};

/// Longest a turn waits for the model catalog before running with what is known.
const CATALOG_WAIT: Duration = Duration::from_secs(15);

/// Resolves the thread's model in the freshest catalog (fetching it if due, bounded) before
/// the turn uses it; warns once when the model changed to one the catalog does not know.
fn resolve_model(start: &TurnStart) {
    let snapshot = start.catalog.snapshot_waiting(CATALOG_WAIT);
    let mut state = lock(&start.thread);
    let slug = state.settings.model.clone();
    crate::log::debug(&format!(
        "turn {}: model {slug} from the {:?} catalog",
        start.handle.turn_id, snapshot.origin
    ));
    let was_fallback =
        state.settings.model_info.is_fallback && state.settings.model_info.slug == slug;
    if state.settings.set_model(&slug, &snapshot) && !was_fallback {
        start.rpc.notify(
            "warning",
            serde_json::json!({
                "threadId": state.id,
                "message": crate::models::unknown_model_warning(&slug),
            }),
        );
    }
}

/// The body of the turn thread: resolve the model, begin, compact or loop, end the turn.
pub(super) fn run(start: TurnStart) {
    resolve_model(&start);
    let (thread_id, settings) = {
        let state = lock(&start.thread);
        (state.id.clone(), state.settings.clone())
    };
    let turn_id = start.handle.turn_id.clone();
    let review = start.review.as_ref().map(|target| {
        (
            target.prompt(&settings.cwd),
            ReviewRun::new(target.display(), &settings),
        )
    });
    let tools = Tools::new(start.tool_env.clone(), settings);
    let mut runner = TurnRunner {
        rpc: start.rpc,
        thread: start.thread,
        thread_id,
        turn_id,
        handle: start.handle,
        control: start.control,
        client: start.client,
        output_schema: start.output_schema,
        pending_input: Vec::new(),
        items: Vec::new(),
        tools,
        review: None,
        quiet: false,
    };
    let mut input = start.input;
    if let Some((prompt, review)) = review {
        input = vec![UserInput::Text {
            text: prompt,
            text_elements: Vec::new(),
        }];
        runner.review = Some(review);
    }
    runner.begin();
    let outcome = if start.compact {
        // `thread/compact/start`: the whole turn is one compaction.
        match runner.compact(crate::context::compact::Phase::Manual) {
            Ok(()) => Outcome::Completed,
            Err(outcome) => outcome,
        }
    } else {
        match runner.compact_if_due(crate::context::compact::Phase::PreTurn) {
            Ok(()) => {
                runner.add_user_input(input);
                runner.agent_loop()
            }
            Err(outcome) => outcome,
        }
    };
    if runner.review.is_some() {
        runner.finish_review(matches!(outcome, Outcome::Completed));
    }
    let items = std::mem::take(&mut runner.items);
    finish_turn(
        &runner.rpc,
        &runner.thread,
        &runner.thread_id,
        &runner.turn_id,
        &runner.handle,
        items,
        outcome,
    );
}

/// Ends a turn: history note on interrupt, `error` on failure, the thread's status, the rollout
/// boundary, `turn/completed` last.
pub(super) fn finish_turn(
    rpc: &Rpc,
    thread: &SharedThread,
    thread_id: &str,
    turn_id: &str,
    handle: &TurnHandle,
    items: Vec<ThreadItem>,
    outcome: Outcome,
) {
    let (status, error) = match outcome {
        Outcome::Completed => (TurnStatus::Completed, None),
        Outcome::Interrupted => (TurnStatus::Interrupted, None),
        Outcome::Failed(error) => (TurnStatus::Failed, Some(error)),
    };
    if let Some(error) = &error {
        rpc.notify(
            "error",
            notify::Error {
                thread_id,
                turn_id,
                will_retry: false,
                error,
            },
        );
    }
    let thread_status = if error.is_some() {
        ThreadStatus::SystemError
    } else {
        ThreadStatus::Idle
    };
    let turn = Turn {
        id: turn_id.to_string(),
        items,
        status,
        error: error.clone(),
    };
    {
        let mut state = lock(thread);
        if status == TurnStatus::Interrupted {
            state.push_history(turn_id, crate::prompt::interrupted_note());
            // An interrupt stops the thread's unified exec sessions too.
            state.exec_sessions.terminate_all();
        }
        state.record(&Entry::TurnCompleted {
            turn_id: turn_id.to_string(),
            status,
            error,
        });
        if let Some(t) = state.turns.iter_mut().rev().find(|t| t.id == turn_id) {
            t.status = status;
            t.error = turn.error.clone();
        }
        state.status = thread_status.clone();
        state.active = None;
        handle.set_finished();
        // Emitted under the lock so no other status change can slip in between.
        rpc.notify(
            "thread/status/changed",
            notify::StatusChanged {
                thread_id,
                status: &thread_status,
            },
        );
        rpc.notify(
            "turn/completed",
            notify::TurnEvent {
                thread_id,
                turn: &turn,
            },
        );
    }
}

impl TurnRunner {
    /// Ends a review: the `exitedReviewMode` item with the review text, the text as an agent
    /// message, and (when it finished) the result in the thread's own history.
    pub(super) fn finish_review(&mut self, finished: bool) {
        let Some(review) = self.review.take() else {
            return;
        };
        let answer = self.items.iter().rev().find_map(|item| match item {
            ThreadItem::AgentMessage { text, .. } => Some(text.clone()),
            _ => None,
        });
        let text = match (finished, answer) {
            (true, Some(answer)) => crate::review::review_text(&answer),
            (true, None) => "The review ended without an answer.".to_string(),
            (false, _) => "The review did not finish.".to_string(),
        };
        let exited = ThreadItem::ExitedReviewMode {
            id: crate::ids::uuid_v7(),
            review: text.clone(),
        };
        self.item_started(&exited);
        self.item_completed(exited);
        if !finished {
            return;
        }
        let message = ThreadItem::AgentMessage {
            id: crate::ids::uuid_v7(),
            text: text.clone(),
        };
        self.item_started(&message);
        self.item_delta("item/agentMessage/delta", message.id(), &text);
        self.item_completed(message);
        let mut state = lock(&self.thread);
        for item in review.history_items(&text) {
            state.push_history(&self.turn_id, item);
        }
    }

    /// Opens the turn: records it, tells the model the context that changed, emits
    /// `turn/started` (and `enteredReviewMode` for a review).
    pub(super) fn begin(&mut self) {
        let warnings;
        {
            let mut state = lock(&self.thread);
            state.turns.push(Turn::in_progress(&self.turn_id));
            state.record(&Entry::TurnStarted {
                turn_id: self.turn_id.clone(),
            });
            let context = state.settings.context();
            state.record(&Entry::TurnContext(context.clone()));
            if let Some(review) = &self.review {
                // A review starts its own conversation: permissions, then instructions and
                // environment, then the request.
                let mut history = review.history.borrow_mut();
                history.push(crate::prompt::developer_message(&review.settings));
                let update = crate::context::ContextState::default().update(&review.settings);
                history.extend(update.message);
                warnings = Vec::new();
            } else if state.told_context.as_ref() != Some(&context) {
                let developer = crate::prompt::developer_message(&state.settings);
                state.push_history(&self.turn_id, developer);
                state.told_context = Some(context);
                warnings = self.update_context(&mut state);
            } else {
                warnings = self.update_context(&mut state);
            }
        }
        for message in &warnings {
            self.warn(message);
        }
        self.set_waiting_on_approval(false);
        let turn = Turn::in_progress(&self.turn_id);
        self.rpc.notify(
            "turn/started",
            notify::TurnEvent {
                thread_id: &self.thread_id,
                turn: &turn,
            },
        );
        if let Some(review) = &self.review {
            let entered = ThreadItem::EnteredReviewMode {
                id: crate::ids::uuid_v7(),
                review: review.display.clone(),
            };
            self.item_started(&entered);
            self.item_completed(entered);
        }
    }

    /// Adds the project instructions and environment context when they changed; returns the
    /// warnings reading the instructions produced.
    fn update_context(&self, state: &mut crate::thread::ThreadState) -> Vec<String> {
        let settings = state.settings.clone();
        let update = state.context.update(&settings);
        if let Some(message) = update.message {
            state.push_history(&self.turn_id, message);
        }
        update.warnings
    }
}
