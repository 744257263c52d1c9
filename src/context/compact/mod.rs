//! Compaction (context.md §4): when a thread's history nears the model's context window, it is
//! replaced by a short one — the initial context, the user's own messages, and a summary.
//!
//! - The trigger: the last model response's `total_tokens` (or, after a compaction or a revert,
//!   an estimate of the new history; after `context_length_exceeded`, the whole window) against
//!   [`limit`]: `model_auto_compact_token_limit` or the catalog's `auto_compact_token_limit`,
//!   capped at 90 % of [`window`]. Checked before a turn samples and before each follow-up
//!   request within a turn ([`TurnRunner::compact_if_due`]); `thread/compact/start` runs one
//!   unconditionally ([`TurnRunner::compact`]).
//! - Local (any provider): one request with the history and our handoff prompt
//!   (`compact_prompt` replaces it), no tools; the last assistant message is the summary.
//! - Remote (the built-in `openai` provider): a normal request whose input ends with
//!   `{"type":"compaction_trigger"}`; the backend's one `compaction` item ends the new history
//!   and is replayed as received.
//! - The new history is `history.rs`'s; it is written to the rollout as one `compacted` line, so
//!   a crash leaves either the state before or the state after.
//!
//! Items: a `contextCompaction` item around the work; usage updates when the compaction's
//! response arrives and once more with the estimate of the new history.

pub mod history;

use serde_json::{Value, json};

use crate::client::ModelRequest;
use crate::protocol::{CodexErrorInfo, ThreadItem, ThreadTokenUsage, TokenUsage, TurnError};
use crate::rollout::Entry;
use crate::thread::{Settings, ThreadState, lock};
use crate::turn::{Outcome, Round, TurnRunner};
use history::Ending;

/// Our prompt asking for the handoff summary (written for this project).
pub const SUMMARY_PROMPT: &str = include_str!("../../prompts/compact_summary.md");

/// Share of the context window the automatic trigger may use at most, in percent.
const LIMIT_PERCENT_OF_WINDOW: i64 = 90;

/// How many times a compaction request that does not fit the window is sent again with its
/// oldest items dropped.
const MAX_TRIMMED_ATTEMPTS: usize = 12;

/// When a compaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before a turn's first request (its `contextCompaction` item precedes its `userMessage`).
    PreTurn,
    /// Between tool outputs and the follow-up request of a turn.
    MidTurn,
    /// `thread/compact/start`.
    Manual,
}

/// The model's context window in tokens: `model_context_window` from config, else the
/// catalog's.
pub fn window(settings: &Settings) -> i64 {
    settings
        .config
        .model_context_window
        .unwrap_or_else(|| settings.model_info.context_window())
}

/// `modelContextWindow` as clients are told: the window × the catalog's effective percent
/// (default 95).
pub fn reported_window(settings: &Settings) -> i64 {
    let percent = settings
        .model_info
        .effective_context_window_percent
        .unwrap_or(crate::models::DEFAULT_EFFECTIVE_WINDOW_PERCENT)
        .clamp(1, 100);
    window(settings) * percent / 100
}

/// The token count at which the history is compacted: the configured or catalog limit, never
/// above 90 % of the window (the 90 % alone when neither sets one).
pub fn limit(settings: &Settings) -> i64 {
    let cap = window(settings) * LIMIT_PERCENT_OF_WINDOW / 100;
    settings
        .config
        .model_auto_compact_token_limit
        .or(settings.model_info.auto_compact_token_limit)
        .map_or(cap, |limit| limit.min(cap))
}

/// Whether the built-in provider compacts on the backend (`compaction_trigger`).
pub fn is_remote(settings: &Settings) -> bool {
    settings.config.model_provider == crate::config::OPENAI_PROVIDER_ID
}

/// Whether `state` must be compacted before its next request: the last usage reached the
/// limit and something was added since the history was last compacted (a history that ends
/// with its summary cannot get shorter).
pub fn is_due(state: &ThreadState) -> bool {
    let Some((_, last)) = state.history.last() else {
        return false;
    };
    let ends_compacted = last.get("type").and_then(Value::as_str) == Some("compaction")
        || last
            .pointer("/content/0/text")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with(history::SUMMARY_PREFIX));
    state.last_usage.total_tokens >= limit(&state.settings) && !ends_compacted
}

/// The estimated size of what a request carries for `history` under `settings`: the base
/// instructions and the items (tool definitions aside).
pub fn estimate(settings: &Settings, history: &[Value]) -> i64 {
    let instructions = crate::prompt::base_instructions(settings).len().div_ceil(4) as i64;
    instructions + history::estimate_tokens(history)
}

/// `history` without its first `n` items, and without outputs whose calls went with them (the
/// Responses API refuses an output without its call).
fn trim_front(history: &[Value], n: usize) -> Vec<Value> {
    let rest = &history[n.min(history.len())..];
    let call_id = |item: &Value| {
        item.get("call_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let is_output = |item: &Value| {
        item.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("_call_output"))
    };
    let calls: std::collections::HashSet<String> = rest
        .iter()
        .filter(|item| !is_output(item))
        .filter_map(call_id)
        .collect();
    rest.iter()
        .filter(|item| !is_output(item) || call_id(item).is_some_and(|id| calls.contains(&id)))
        .cloned()
        .collect()
}

/// The request of a compaction: the history plus our prompt and no tools (local), or the
/// history plus `compaction_trigger` as a normal request (remote).
fn request(
    settings: &Settings,
    thread_id: &str,
    history: &[Value],
    remote: bool,
    live_tools: Vec<Value>,
) -> ModelRequest {
    if remote {
        let trigger = json!({"type": "compaction_trigger"});
        return crate::prompt::build_request(
            settings,
            thread_id,
            history.iter().chain(std::iter::once(&trigger)),
            None,
            live_tools,
        );
    }
    let prompt = settings
        .config
        .compact_prompt
        .as_deref()
        .unwrap_or(SUMMARY_PROMPT);
    let ask = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]});
    let mut request = crate::prompt::build_request(
        settings,
        thread_id,
        history.iter().chain(std::iter::once(&ask)),
        None,
        Vec::new(),
    );
    // A summary, not an action: no tools at all.
    if let Some(body) = request.body.as_object_mut() {
        if body.contains_key("tools") {
            body.insert("tools".into(), json!([]));
        }
        body.insert("parallel_tool_calls".into(), json!(false));
        if let Some(Value::Array(input)) = body.get_mut("input") {
            input.retain(|item| {
                item.get("type").and_then(Value::as_str) != Some("additional_tools")
            });
        }
    }
    request
}

fn failure(message: impl Into<String>) -> Outcome {
    Outcome::Failed(TurnError {
        message: message.into(),
        codex_error_info: Some(CodexErrorInfo::Other),
        additional_details: None,
    })
}

impl TurnRunner {
    /// Compacts the history when [`is_due`] (never inside a review, which has its own
    /// conversation). `Err` is how the turn ends (the compaction failed or was interrupted).
    pub(crate) fn compact_if_due(&mut self, phase: Phase) -> Result<(), Outcome> {
        if self.is_review() || !is_due(&lock(&self.thread)) {
            return Ok(());
        }
        self.compact(phase)
    }

    /// Compacts the history now, inside a `contextCompaction` item.
    pub(crate) fn compact(&mut self, phase: Phase) -> Result<(), Outcome> {
        crate::log::debug(&format!(
            "turn {}: compacting the history ({phase:?})",
            self.turn_id
        ));
        let item = ThreadItem::ContextCompaction {
            id: crate::ids::uuid_v7(),
        };
        self.item_started(&item);
        let outcome = self.run_compaction();
        self.item_completed(item);
        outcome
    }

    fn run_compaction(&mut self) -> Result<(), Outcome> {
        let (settings, items) = {
            let state = lock(&self.thread);
            let items: Vec<Value> = state.history.iter().map(|(_, i)| i.clone()).collect();
            (state.settings.clone(), items)
        };
        if items.is_empty() {
            return Ok(()); // nothing to compact
        }
        let remote = is_remote(&settings);
        let live_tools = if remote {
            crate::tools::mcp::definitions(self)
        } else {
            Vec::new()
        };
        let (mut dropped, mut attempts) = (0, 0);
        let outputs = loop {
            let sent = trim_front(&items, dropped);
            let request = request(
                &settings,
                &self.thread_id,
                &sent,
                remote,
                live_tools.clone(),
            );
            self.quiet = true;
            let round = self.sample(&request);
            self.quiet = false;
            match round {
                Round::Done { outputs, .. } => break outputs,
                Round::Interrupted => return Err(Outcome::Interrupted),
                Round::Failed(error)
                    if error.info == CodexErrorInfo::ContextWindowExceeded
                        && attempts < MAX_TRIMMED_ATTEMPTS
                        && dropped + 1 < items.len() =>
                {
                    // The history does not even fit for its summary: drop the oldest tenth.
                    attempts += 1;
                    dropped += (items.len() - dropped).div_ceil(10);
                }
                Round::Failed(error) => {
                    return Err(Outcome::Failed(crate::turn::turn_error(&error)));
                }
            }
        };
        let ending = if remote {
            Ending::Remote(history::compaction_item(&outputs).map_err(failure)?)
        } else {
            Ending::Summary(
                history::summary_text(&outputs)
                    .ok_or_else(|| failure("compaction failed: the model returned no summary"))?,
            )
        };
        self.replace_history(ending);
        Ok(())
    }

    /// Puts the compacted history in place, in memory and in the rollout, and reports the new
    /// estimated usage.
    fn replace_history(&mut self, ending: Ending) {
        let (total, last, window) = {
            let mut state = lock(&self.thread);
            let settings = state.settings.clone();
            let kept = history::kept_user_messages(state.history.iter().map(|(_, item)| item));
            let mut initial = vec![crate::prompt::developer_message(&settings)];
            initial.extend(state.context.retell(&settings));
            let message = match &ending {
                Ending::Summary(text) => text.clone(),
                Ending::Remote(_) => String::new(),
            };
            let replacement = history::rebuild(initial, kept, ending);
            state.told_context = Some(settings.context());
            state.record(&Entry::Compacted {
                message,
                replacement_history: replacement.clone(),
            });
            let last = TokenUsage {
                total_tokens: estimate(&settings, &replacement),
                ..TokenUsage::default()
            };
            state.history = replacement
                .into_iter()
                .map(|item| (self.turn_id.clone(), item))
                .collect();
            state.last_usage = last;
            let total = state.total_usage;
            state.record(&Entry::TokenUsage { total, last });
            (total, last, reported_window(&settings))
        };
        self.rpc.notify(
            "thread/tokenUsage/updated",
            crate::protocol::notify::TokenUsageUpdated {
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

    /// After `context_length_exceeded`: the last usage becomes the whole window, so the next
    /// turn compacts before it samples (also after a restart: it is recorded).
    pub(crate) fn note_window_full(&self) {
        let mut state = lock(&self.thread);
        state.last_usage = TokenUsage {
            total_tokens: window(&state.settings),
            ..TokenUsage::default()
        };
        let (total, last) = (state.total_usage, state.last_usage);
        state.record(&Entry::TokenUsage { total, last });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn trimming_drops_outputs_of_dropped_calls() {
        let history = vec![
            json!({"type": "message", "role": "user", "content": []}),
            json!({"type": "function_call", "call_id": "a", "name": "shell", "arguments": "{}"}),
            json!({"type": "function_call_output", "call_id": "a", "output": "x"}),
            json!({"type": "custom_tool_call", "call_id": "b", "name": "apply_patch", "input": ""}),
            json!({"type": "custom_tool_call_output", "call_id": "b", "output": "y"}),
        ];
        assert_eq!(trim_front(&history, 0), history);
        let trimmed = trim_front(&history, 2);
        assert_eq!(trimmed, history[3..].to_vec());
        assert!(trim_front(&history, 9).is_empty());
    }
}
