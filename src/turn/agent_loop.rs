//! The agent loop: model request → tool calls → their outputs → model again, until the model
//! answers without calling a tool; user and steering input into the history; follow-up
//! requests and mid-turn compaction; dispatching each call to `tools/`.

use crate::protocol::{ThreadItem, UserInput};
use crate::review::ReviewRun;
use crate::thread::{Control, lock};

use super::{Outcome, Round, TurnRunner, turn_error};

impl TurnRunner {
    /// Adds user input to the turn: its `userMessage` item (started and completed) and the
    /// model-facing message in the history.
    pub(crate) fn add_user_input(&mut self, input: Vec<UserInput>) {
        let accepts_images = lock(&self.thread).settings.model_info.accepts_images();
        let history_item = crate::prompt::user_message(&input, accepts_images);
        let item = ThreadItem::UserMessage {
            id: crate::ids::uuid_v7(),
            content: input,
        };
        self.item_started(&item);
        self.push_history(history_item);
        self.item_completed(item);
    }

    /// Collects steering input that arrived while no one was listening.
    fn collect_control(&mut self) {
        while let Ok(message) = self.control.try_recv() {
            if let Control::Steer(input) = message {
                self.pending_input.push(input);
            }
        }
    }

    /// Runs rounds until the model answers without calling a tool, the turn is interrupted or
    /// a round fails; compacts between rounds when due.
    pub(super) fn agent_loop(&mut self) -> Outcome {
        crate::tools::mcp::wait_for_servers(self);
        let mut follow_up = false;
        loop {
            if std::mem::replace(&mut follow_up, true)
                && let Err(outcome) = self.compact_if_due(crate::context::compact::Phase::MidTurn)
            {
                return outcome;
            }
            self.collect_control();
            for input in std::mem::take(&mut self.pending_input) {
                self.add_user_input(input);
            }
            if self.handle.is_interrupted() {
                return Outcome::Interrupted;
            }
            let request = match &self.review {
                Some(review) => {
                    let history = review.history.borrow();
                    let mut request = crate::prompt::build_request(
                        &review.settings,
                        &self.thread_id,
                        history.iter(),
                        None,
                        Vec::new(),
                    );
                    ReviewRun::restrict_tools(&mut request.body);
                    request
                }
                None => {
                    let mcp_tools = crate::tools::mcp::definitions(self);
                    let state = lock(&self.thread);
                    crate::prompt::build_request(
                        &state.settings,
                        &self.thread_id,
                        state.history.iter().map(|(_, item)| item),
                        self.output_schema.as_ref(),
                        mcp_tools,
                    )
                }
            };
            let (outputs, calls) = match self.sample(&request) {
                Round::Done { outputs, calls } => (outputs, calls),
                Round::Interrupted => return Outcome::Interrupted,
                Round::Failed(error) => {
                    if error.info == crate::protocol::CodexErrorInfo::ContextWindowExceeded {
                        self.note_window_full();
                    }
                    return Outcome::Failed(turn_error(&error));
                }
            };
            for output in &outputs {
                self.push_history(crate::prompt::output_as_input(output));
            }
            if calls.is_empty() {
                // Input steered in while the model answered has not been seen yet: go again.
                self.collect_control();
                if self.pending_input.is_empty() {
                    return Outcome::Completed;
                }
                continue;
            }
            let mut calls = calls.into_iter();
            while let Some(call) = calls.next() {
                let result = crate::tools::run_call(self, &call);
                self.push_history(result.output);
                if result.cancelled || self.handle.is_interrupted() {
                    // Every call the model made needs an output, or the next request is invalid.
                    for rest in calls {
                        self.push_history(rest.output_item("aborted: the turn was interrupted"));
                    }
                    return Outcome::Interrupted;
                }
            }
        }
    }
}
