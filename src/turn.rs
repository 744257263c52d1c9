//! One turn, on its own thread `turn-<id>`: the loop model → tool calls → outputs → model until
//! the model answers without calling a tool; the items and notifications of protocol.md §6–7 in
//! their order; stream-level retries; interrupt and steer; token usage; the failure path. The
//! tools themselves (shell, apply_patch, approvals) are `tools/`'s; HTTP is `client/`'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};
use serde_json::Value;

use crate::client::{ClientError, ModelClient, ModelRequest, StreamEvent};
use crate::protocol::notify;
use crate::protocol::{
    ActiveFlag, ThreadItem, ThreadStatus, ThreadTokenUsage, TokenUsage, Turn, TurnError,
    TurnStatus, UserInput,
};
use crate::review::ReviewRun;
use crate::rollout::Entry;
use crate::rpc::Rpc;
use crate::thread::{Control, SharedThread, TurnHandle, lock};
use crate::tools::{ToolCall, ToolEnv, Tools, web_search};

/// Longest pause between stream-level retries.
const MAX_STREAM_BACKOFF: Duration = Duration::from_secs(5);
/// Most text one model response may stream before it is cut off: whatever the model does,
/// a turn holds bounded memory.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

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

/// Longest a turn waits for the model catalog before running with what is known.
const CATALOG_WAIT: Duration = Duration::from_secs(15);

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

struct OpenItem {
    item: ThreadItem,
    got_delta: bool,
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
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(start)));
        if outcome.is_err() {
            // A bug in a turn must cost the turn, not the server.
            crate::log::error(&format!("turn {turn_id} panicked"));
            let error = TurnError {
                message: "internal error: the turn stopped unexpectedly".to_string(),
                codex_error_info: Some(crate::protocol::CodexErrorInfo::Other),
                additional_details: None,
            };
            finish_turn(
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

fn run(start: TurnStart) {
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
fn finish_turn(
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

    /// Ends a review: the `exitedReviewMode` item with the review text, the text as an agent
    /// message, and (when it finished) the result in the thread's own history.
    fn finish_review(&mut self, finished: bool) {
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

    fn begin(&mut self) {
        let warnings;
        {
            let mut state = lock(&self.thread);
            state.turns.push(Turn {
                id: self.turn_id.clone(),
                items: Vec::new(),
                status: TurnStatus::InProgress,
                error: None,
            });
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
        let turn = Turn {
            id: self.turn_id.clone(),
            items: Vec::new(),
            status: TurnStatus::InProgress,
            error: None,
        };
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

    fn agent_loop(&mut self) -> Outcome {
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

    /// One model round trip with stream-level retries.
    pub(crate) fn sample(&mut self, request: &ModelRequest) -> Round {
        let max_retries = self.client.stream_max_retries();
        let mut attempt = 0;
        loop {
            let stream = self.client.start(request, &self.thread_id);
            match self.consume(&stream) {
                Round::Failed(error) if error.is_stream_disconnect && attempt < max_retries => {
                    drop(stream);
                    attempt += 1;
                    let notice = TurnError {
                        message: format!("Reconnecting... {attempt}/{max_retries}"),
                        codex_error_info: Some(error.info.clone()),
                        additional_details: Some(error.message.clone()),
                    };
                    self.rpc.notify(
                        "error",
                        notify::Error {
                            thread_id: &self.thread_id,
                            turn_id: &self.turn_id,
                            will_retry: true,
                            error: &notice,
                        },
                    );
                    let backoff = (Duration::from_millis(200) * 2u32.pow(attempt as u32 - 1))
                        .min(MAX_STREAM_BACKOFF);
                    if self.wait_interruptibly(backoff) {
                        return Round::Interrupted;
                    }
                }
                other => return other,
            }
        }
    }

    /// Sleeps up to `duration`, collecting steering input; true when interrupted meanwhile.
    fn wait_interruptibly(&mut self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            if self.handle.is_interrupted() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.control.recv_timeout(left) {
                Ok(Control::Interrupt) => return true,
                Ok(Control::Steer(input)) => self.pending_input.push(input),
                Err(_) => {}
            }
        }
    }

    /// Reads one stream to its end, turning events into items and notifications.
    fn consume(&mut self, stream: &crate::client::ResponseStream) -> Round {
        let idle = self.client.stream_idle_timeout();
        let control = self.control.clone();
        let mut deadline = Instant::now() + idle;
        let mut open: Vec<OpenItem> = Vec::new();
        let mut outputs = Vec::new();
        let mut calls = Vec::new();
        let mut received = 0usize;
        // Usage windows this response reported (its headers, then any stream event).
        let mut rate_limits = None;
        loop {
            if received > MAX_RESPONSE_BYTES {
                stream.abort();
                self.close_all(&mut open);
                return Round::Failed(ClientError::new(
                    format!(
                        "the model response exceeded {} MiB and was stopped",
                        MAX_RESPONSE_BYTES >> 20
                    ),
                    crate::protocol::CodexErrorInfo::Other,
                    None,
                ));
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            select! {
                recv(stream.events()) -> event => {
                    deadline = Instant::now() + idle;
                    let event = match event {
                        Ok(event) => event,
                        Err(_) => StreamEvent::Failed(ClientError::stream_disconnected(
                            "stream closed before response.completed",
                        )),
                    };
                    match event {
                        StreamEvent::Retrying { attempt, delay } => {
                            crate::log::debug(&format!("turn {}: request retry {attempt} in {delay:?}", self.turn_id));
                            deadline += delay;
                        }
                        StreamEvent::Created { response_id } => {
                            crate::log::debug(&format!("turn {}: response {response_id:?} started", self.turn_id));
                        }
                        StreamEvent::ItemAdded(_) if self.quiet => {}
                        StreamEvent::TextDelta { delta, .. } | StreamEvent::ReasoningSummaryDelta { delta, .. } if self.quiet => {
                            received += delta.len();
                        }
                        StreamEvent::ItemDone(item) if self.quiet => {
                            received += payload_len(&item);
                            outputs.push(item);
                        }
                        StreamEvent::ItemAdded(item) => self.open_item(&mut open, &item),
                        StreamEvent::TextDelta { item_id, delta } => {
                            received += delta.len();
                            let index = self.find_or_open(&mut open, &item_id, false);
                            if let ThreadItem::AgentMessage { text, .. } = &mut open[index].item {
                                text.push_str(&delta);
                            }
                            open[index].got_delta = true;
                            self.item_delta("item/agentMessage/delta", &item_id, &delta);
                        }
                        StreamEvent::ReasoningSummaryDelta { item_id, summary_index, delta } => {
                            received += delta.len();
                            let index = self.find_or_open(&mut open, &item_id, true);
                            if let ThreadItem::Reasoning { summary, .. } = &mut open[index].item {
                                let slot = usize::try_from(summary_index).unwrap_or(0).min(64);
                                if summary.len() <= slot {
                                    summary.resize(slot + 1, String::new());
                                }
                                summary[slot].push_str(&delta);
                            }
                            open[index].got_delta = true;
                            self.rpc.notify(
                                "item/reasoning/summaryTextDelta",
                                notify::SummaryDelta {
                                    thread_id: &self.thread_id,
                                    turn_id: &self.turn_id,
                                    item_id: &item_id,
                                    summary_index,
                                    delta: &delta,
                                },
                            );
                        }
                        StreamEvent::ItemDone(item) => {
                            received += payload_len(&item);
                            self.close_item(&mut open, &item);
                            if let Some(call) = ToolCall::from_item(&item) {
                                calls.push(call);
                            }
                            if is_history_item(&item) || self.keeps_other_output(&item) {
                                outputs.push(item);
                            }
                        }
                        StreamEvent::RateLimits(snapshot) => rate_limits = Some(snapshot),
                        StreamEvent::Completed { usage, response_id } => {
                            crate::log::debug(&format!("turn {}: response {response_id} completed", self.turn_id));
                            self.close_all(&mut open);
                            if let Some(usage) = usage {
                                self.record_usage(usage);
                            }
                            if let Some(snapshot) = rate_limits.take() {
                                self.client.record_rate_limits(&snapshot);
                                self.rpc.notify(
                                    "account/rateLimits/updated",
                                    serde_json::json!({ "rateLimits": snapshot }),
                                );
                            }
                            return Round::Done { outputs, calls };
                        }
                        StreamEvent::Failed(error) => {
                            self.close_all(&mut open);
                            return Round::Failed(error);
                        }
                    }
                }
                recv(control) -> message => match message {
                    Ok(Control::Steer(input)) => self.pending_input.push(input),
                    Ok(Control::Interrupt) | Err(_) => {
                        stream.abort();
                        self.close_all(&mut open);
                        return Round::Interrupted;
                    }
                },
                default(wait) => {
                    stream.abort();
                    self.close_all(&mut open);
                    return Round::Failed(ClientError::idle_timeout(idle));
                }
            }
        }
    }

    fn open_item(&self, open: &mut Vec<OpenItem>, item: &Value) {
        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                self.find_or_open(open, id, false);
            }
            Some("reasoning") => {
                self.find_or_open(open, id, true);
            }
            Some(web_search::CALL_TYPE) if !open.iter().any(|o| o.item.id() == id) => {
                let item = web_search::item(item);
                self.item_started(&item);
                open.push(OpenItem {
                    item,
                    got_delta: false,
                });
            }
            _ => {}
        }
    }

    fn find_or_open(&self, open: &mut Vec<OpenItem>, id: &str, reasoning: bool) -> usize {
        if let Some(index) = open.iter().position(|o| o.item.id() == id) {
            return index;
        }
        let item = if reasoning {
            ThreadItem::Reasoning {
                id: id.to_string(),
                summary: Vec::new(),
                content: Vec::new(),
            }
        } else {
            ThreadItem::AgentMessage {
                id: id.to_string(),
                text: String::new(),
            }
        };
        self.item_started(&item);
        open.push(OpenItem {
            item,
            got_delta: false,
        });
        open.len() - 1
    }

    fn close_item(&mut self, open: &mut Vec<OpenItem>, item: &Value) {
        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        let kind = item.get("type").and_then(Value::as_str);
        let reasoning = match kind {
            Some("message") => false,
            Some("reasoning") => true,
            Some(web_search::CALL_TYPE) => {
                match open.iter().position(|o| o.item.id() == id) {
                    Some(index) => drop(open.remove(index)),
                    None => self.item_started(&web_search::item(item)),
                }
                self.item_completed(web_search::item(item));
                return;
            }
            _ => return,
        };
        let index = self.find_or_open(open, id, reasoning);
        let mut entry = open.remove(index);
        if !entry.got_delta {
            match &mut entry.item {
                ThreadItem::AgentMessage { text, .. } => {
                    *text = message_text(item);
                    // Keep "concatenated deltas equal the final text" even when the model sent
                    // the text only with the finished item.
                    if !text.is_empty() {
                        self.item_delta("item/agentMessage/delta", id, text);
                    }
                }
                ThreadItem::Reasoning { summary, .. } => *summary = summary_texts(item),
                _ => {}
            }
        }
        self.item_completed(entry.item);
    }

    fn close_all(&mut self, open: &mut Vec<OpenItem>) {
        for entry in open.drain(..) {
            self.item_completed(entry.item);
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

/// Output items worth sending back: messages, reasoning, tool calls and hosted web searches
/// (other kinds are dropped).
fn is_history_item(item: &Value) -> bool {
    matches!(
        item.get("type").and_then(Value::as_str),
        Some(
            "message" | "reasoning" | "function_call" | "custom_tool_call" | web_search::CALL_TYPE
        )
    )
}

impl TurnRunner {
    /// Whether an output item of a kind we do not handle is sent back anyway: never silently
    /// dropped, it is logged, and kept (as received) when it has the id the backend needs to
    /// recognise it.
    fn keeps_other_output(&self, item: &Value) -> bool {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("?");
        let has_id = item
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| !id.is_empty());
        crate::log::debug(&format!(
            "turn {}: output item of unhandled kind {kind}: {}",
            self.turn_id,
            if has_id {
                "sent back as received"
            } else {
                "not sent back (no id)"
            }
        ));
        has_id
    }
}

/// Roughly how many bytes an output item holds (its texts, call payloads, encrypted reasoning).
fn payload_len(item: &Value) -> usize {
    let field = |name: &str| item.get(name).and_then(Value::as_str).map_or(0, str::len);
    message_text(item).len() + field("arguments") + field("input") + field("encrypted_content")
}

fn message_text(item: &Value) -> String {
    item.get("content")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<String>()
        })
        .unwrap_or_default()
}

fn summary_texts(item: &Value) -> Vec<String> {
    item.get("summary")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A client error as the turn's error.
pub(crate) fn turn_error(error: &ClientError) -> TurnError {
    TurnError {
        message: error.message.clone(),
        codex_error_info: Some(error.info.clone()),
        additional_details: None,
    }
}
