//! Applying one rollout line to the read's state, by kind: metadata, turn context, history
//! items, `compacted`, the `event_msg` events (the core shape and the older per-kind ones), and
//! our own earlier kinds.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::Builder;
use super::turn::upsert;
use crate::protocol::{ThreadItem, TurnStatus};
use crate::rollout::lines::{MetaLine, codex_usage, model_item, turn_context, turn_error};
use crate::rollout::{events, items};

/// Whether a v2 item in JSON is the user's message.
fn is_user_item(item: &Value) -> bool {
    item["type"] == "userMessage"
}
impl Builder {
    /// Applies one line; `Err` says why a known kind could not be used.
    pub(super) fn apply(&mut self, kind: &str, payload: Value) -> Result<(), String> {
        match kind {
            "session_meta" if self.meta.is_none() => {
                let meta: MetaLine = serde_json::from_value(payload).map_err(|e| e.to_string())?;
                self.meta = Some(meta.into_meta());
            }
            "turn_context" => {
                let context = turn_context(&payload).ok_or("no cwd or approval policy")?;
                let turn_id = payload["turn_id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| self.current_turn_id());
                if !turn_id.is_empty() {
                    self.turn_contexts.push((turn_id, context.clone()));
                }
                if let Some(meta) = self.meta.as_mut()
                    && meta.model.is_empty()
                {
                    meta.model = context.model.clone();
                }
                self.last_context = Some(context);
            }
            "response_item" if !self.summary_only => {
                let turn = self.current_turn_id();
                self.history.push((turn, model_item(payload)));
            }
            "compacted" => self.compacted(&payload),
            "event_msg" => self.event(&payload)?,
            // Our format before the Codex one.
            "turn_started" => {
                let id = payload["turn_id"].as_str().ok_or("no turn_id")?;
                if self.is_stop(id) {
                    return Ok(());
                }
                self.open_turn(id.to_string(), true);
            }
            "thread_item" => {
                let item: ThreadItem =
                    serde_json::from_value(payload["item"].clone()).map_err(|e| e.to_string())?;
                self.add_item(payload["turn_id"].as_str(), item, true);
            }
            "turn_completed" => {
                let status: TurnStatus =
                    serde_json::from_value(payload["status"].clone()).map_err(|e| e.to_string())?;
                let error = serde_json::from_value(payload["error"].clone()).ok();
                if let Some(turn) = self.turn_mut(payload["turn_id"].as_str()) {
                    turn.status = status;
                    turn.error = error;
                }
            }
            "token_usage" => {
                if let Ok(total) = serde_json::from_value(payload["total"].clone()) {
                    self.total_usage = total;
                }
                if let Ok(last) = serde_json::from_value(payload["last"].clone()) {
                    self.last_usage = last;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn compacted(&mut self, payload: &Value) {
        if self.summary_only {
            return;
        }
        let turn = self.current_turn_id();
        let replacement: Vec<Value> = match payload.get("replacement_history") {
            Some(Value::Array(items)) => items.iter().cloned().map(model_item).collect(),
            // Older compactions kept only the summary: the user's messages, then the summary.
            _ => {
                let mut kept: Vec<Value> = self
                    .history
                    .iter()
                    .map(|(_, item)| item)
                    .filter(|item| item["type"] == "message" && item["role"] == "user")
                    .filter(|item| {
                        let text = item.pointer("/content/0/text").and_then(Value::as_str);
                        !text.is_some_and(|t| t.starts_with('<'))
                    })
                    .cloned()
                    .collect();
                kept.push(json!({
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": payload["message"]}],
                }));
                kept
            }
        };
        self.history = replacement
            .into_iter()
            .map(|item| (turn.clone(), item))
            .collect();
    }

    fn add_item(&mut self, turn_id: Option<&str>, item: ThreadItem, with_id: bool) {
        let is_user = matches!(item, ThreadItem::UserMessage { .. });
        if self.summary_only && is_user {
            self.done = true;
        }
        if self.turn_mut(turn_id).is_none() {
            // An item outside any turn we saw begin (an older file, or a start line skipped).
            let id = match turn_id {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => format!("turn-{}", self.turns.len() + 1),
            };
            self.open_turn(id, false);
        }
        let Some(turn) = self.turn_mut(turn_id) else {
            return;
        };
        if with_id {
            turn.has_user_item |= is_user;
            upsert(&mut turn.items, item);
        } else {
            upsert(&mut turn.legacy, item);
        }
    }

    fn event(&mut self, payload: &Value) -> Result<(), String> {
        let kind = payload["type"].as_str().unwrap_or_default();
        let turn_id = payload["turn_id"].as_str();
        match kind {
            "task_started" | "turn_started" => {
                let id = match turn_id {
                    Some(id) if !id.is_empty() => id.to_string(),
                    _ => format!("turn-{}", self.turns.len() + 1),
                };
                if self.is_stop(&id) {
                    return Ok(());
                }
                self.open_turn(id, true);
            }
            "task_complete" | "turn_complete" => {
                let error = payload
                    .get("error")
                    .filter(|e| e.is_object())
                    .map(turn_error);
                if let Some(turn) = self.turn_mut(turn_id) {
                    if let Some(error) = error {
                        turn.status = TurnStatus::Failed;
                        turn.error = Some(error);
                    } else if turn.status == TurnStatus::InProgress {
                        turn.status = TurnStatus::Completed;
                    }
                }
                self.current = None;
            }
            "turn_aborted" => {
                if let Some(turn) = self.turn_mut(turn_id) {
                    turn.status = TurnStatus::Interrupted;
                }
                self.current = None;
            }
            "error" => {
                if let Some(turn) = self.current.and_then(|i| self.turns.get_mut(i)) {
                    turn.status = TurnStatus::Failed;
                    turn.error = Some(turn_error(payload));
                }
            }
            "token_count" => {
                if let Some(total) = codex_usage(&payload["info"]["total_token_usage"]) {
                    self.total_usage = total;
                }
                if let Some(last) = codex_usage(&payload["info"]["last_token_usage"]) {
                    self.last_usage = last;
                }
            }
            "thread_rolled_back" => {
                let n = payload["num_turns"].as_u64().unwrap_or(0) as usize;
                let keep = self.turns.len().saturating_sub(n);
                let dropped: HashSet<String> = self.turns.drain(keep..).map(|t| t.id).collect();
                self.history.retain(|(turn, _)| !dropped.contains(turn));
                self.turn_contexts
                    .retain(|(turn, _)| !dropped.contains(turn));
                self.current = None;
            }
            "item_completed" => {
                // Our own kinds without a Codex shape are stored as they are on the wire.
                let ours = |i: &Value| {
                    i["type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_lowercase()))
                };
                let Some(item) = items::from_core(&payload["item"])
                    .or_else(|| Some(payload["item"].clone()).filter(ours))
                else {
                    return Ok(());
                };
                let item: ThreadItem = serde_json::from_value(item).map_err(|e| e.to_string())?;
                self.add_item(turn_id, item, true);
            }
            _ => {
                if kind == "user_message" {
                    // A user message of an older file without turn events begins a turn.
                    let implicit = self.current.is_some_and(|i| !self.turns[i].explicit);
                    if implicit || self.current.is_none() {
                        let id = format!("turn-{}", self.turns.len() + 1);
                        self.open_turn(id, false);
                    }
                }
                let fallback = format!("item-{}", self.next_item);
                if let Some(item) = events::from_legacy_event(payload, &fallback) {
                    if item["id"] == fallback.as_str() {
                        self.next_item += 1;
                    }
                    let user = is_user_item(&item);
                    let item: ThreadItem =
                        serde_json::from_value(item).map_err(|e| e.to_string())?;
                    if self.summary_only && user {
                        self.done = true;
                    }
                    self.add_item(turn_id, item, false);
                }
            }
        }
        Ok(())
    }
}
