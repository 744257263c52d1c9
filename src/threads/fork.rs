//! `thread/fork`: a new thread from another's history (loaded or on disk), up to a given turn,
//! with its own rollout written as a copy that reads back like the source.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::protocol::{TokenUsage, Turn, TurnStatus};
use crate::rollout::{self, Entry, Rollout, TurnContext};
use crate::rpc::{RequestId, RpcError};
use crate::server::Server;

use crate::thread::{Settings, lock};

use super::settings::{ThreadOverrides, build_settings};
use super::{meta_of, new_state, not_found};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadForkParams {
    thread_id: String,
    #[serde(flatten)]
    overrides: ThreadOverrides,
    #[serde(default)]
    ephemeral: bool,
    #[serde(default)]
    exclude_turns: bool,
    #[serde(default)]
    last_turn_id: Option<String>,
}

/// What a fork copies from its source.
struct ForkSource {
    history: Vec<(String, Value)>,
    turns: Vec<Turn>,
    turn_contexts: Vec<(String, TurnContext)>,
    settings: Settings,
    preview: String,
    usage: TokenUsage,
}

impl Server {
    /// `thread/fork`.
    pub(super) fn thread_fork(
        &mut self,
        id: &RequestId,
        params: ThreadForkParams,
    ) -> Result<(), RpcError> {
        // The source as it stands: loaded (possibly running a turn) or only on disk.
        let source = match self.threads.get(&params.thread_id) {
            Some(shared) => {
                let state = lock(shared);
                ForkSource {
                    history: state.history.clone(),
                    turns: state.turns.clone(),
                    turn_contexts: state.turn_contexts.clone(),
                    settings: state.settings.clone(),
                    preview: state.preview.clone(),
                    usage: state.total_usage,
                }
            }
            None => {
                let (path, _) = rollout::find(&self.config.codex_home, &params.thread_id)
                    .ok_or_else(|| not_found(&params.thread_id))?;
                let loaded = self.load_rollout(&path)?;
                let state = self.load_state(loaded, &path, &ThreadOverrides::default())?;
                ForkSource {
                    history: state.history,
                    turns: state.turns,
                    turn_contexts: state.turn_contexts,
                    settings: state.settings,
                    preview: state.preview,
                    usage: state.total_usage,
                }
            }
        };
        let ForkSource {
            mut history,
            mut turns,
            mut turn_contexts,
            settings: source_settings,
            preview,
            usage,
        } = source;
        if turns
            .last()
            .is_some_and(|t| t.status == TurnStatus::InProgress)
            && params.last_turn_id.is_none()
        {
            // The running turn is not part of the fork.
            turns.pop();
        }
        if let Some(last) = &params.last_turn_id {
            let position = turns
                .iter()
                .position(|t| &t.id == last)
                .ok_or_else(|| RpcError::invalid_request(format!("turn not found: {last}")))?;
            if turns[position].status == TurnStatus::InProgress {
                return Err(RpcError::invalid_request(format!(
                    "turn {last} is still in progress"
                )));
            }
            turns.truncate(position + 1);
        }
        let is_kept = |turn_id: &str| turns.iter().any(|t| t.id == turn_id);
        history.retain(|(turn, _)| turn.is_empty() || is_kept(turn));
        turn_contexts.retain(|(turn, _)| is_kept(turn));
        let settings = build_settings(
            &self.config,
            Some(&source_settings),
            &params.overrides,
            &self.catalog_snapshot(),
        )?;
        let mut state = new_state(
            crate::ids::uuid_v7(),
            settings,
            self.originator(),
            params.ephemeral,
        );
        state.forked_from_id = Some(params.thread_id.clone());
        state.preview = preview;
        state.total_usage = usage;
        // What the model was told by the last kept turn; without it the fork's next turn would
        // repeat the context messages its history already holds.
        state.told_context = turn_contexts.last().map(|(_, context)| context.clone());
        state.context =
            crate::context::ContextState::from_history(history.iter().map(|(_, item)| item));
        if !params.ephemeral {
            let mut rollout = Rollout::create(&self.config.codex_home, &meta_of(&state))
                .map_err(|e| RpcError::internal(format!("{e:#}")))?;
            write_copy(&mut rollout, &history, &turns, &turn_contexts, usage)
                .map_err(|e| RpcError::internal(format!("{e:#}")))?;
            state.rollout = Some(rollout);
        }
        state.history = history;
        state.turns = turns;
        state.turn_contexts = turn_contexts;
        let shared = self.register(state);
        self.announce_new_thread(id, &shared, !params.exclude_turns);
        self.report_unhonoured(&shared);
        Ok(())
    }
}

/// Writes a forked history into a new rollout, turn by turn: boundaries, each turn's context,
/// its history and completed items, then the token usage, so the copy reads back (and resumes)
/// like the source.
fn write_copy(
    rollout: &mut Rollout,
    history: &[(String, Value)],
    turns: &[Turn],
    turn_contexts: &[(String, TurnContext)],
    usage: TokenUsage,
) -> anyhow::Result<()> {
    let mut by_turn: HashMap<&str, Vec<&Value>> = HashMap::new();
    for (turn, item) in history {
        by_turn.entry(turn.as_str()).or_default().push(item);
    }
    for item in by_turn.remove("").unwrap_or_default() {
        rollout.append(&Entry::ResponseItem(item.clone()))?;
    }
    for turn in turns {
        rollout.append(&Entry::TurnStarted {
            turn_id: turn.id.clone(),
        })?;
        for (_, context) in turn_contexts.iter().filter(|(t, _)| *t == turn.id) {
            rollout.append(&Entry::TurnContext(context.clone()))?;
        }
        for item in by_turn.remove(turn.id.as_str()).unwrap_or_default() {
            rollout.append(&Entry::ResponseItem(item.clone()))?;
        }
        for item in &turn.items {
            rollout.append(&Entry::ThreadItem {
                turn_id: turn.id.clone(),
                item: item.clone(),
            })?;
        }
        rollout.append(&Entry::TurnCompleted {
            turn_id: turn.id.clone(),
            status: turn.status,
            error: turn.error.clone(),
        })?;
    }
    if usage != TokenUsage::default() {
        rollout.append(&Entry::TokenUsage {
            total: usage,
            last: TokenUsage::default(),
        })?;
    }
    Ok(())
}
