//! Reading rollouts: [`load`] rebuilds a whole thread in one pass over its file; [`read_summary`]
//! reads only the head (what listing shows). Both accept Codex's line kinds (0.169 and older:
//! `session_meta` with `base_instructions` as an object, a string or null; `event_msg` items in
//! the core shape or as older per-kind events; `compacted` with or without a replacement
//! history; 0.169 forks that point into their parent's file with `history_base`) and our own
//! earlier ones (`turn_started`, `thread_item`, `turn_completed`, `token_usage`). Kinds nobody
//! here uses are skipped silently; a line that is not JSON (torn by a crash, corrupted) is
//! skipped with a warning and the rest of the file is still read.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::lines::{
    HistoryBase, Line, MetaLine, answer_orphan_calls, codex_usage, contains, head_kind, model_item,
    turn_context, turn_error,
};
use super::{Loaded, SessionMeta, TurnContext, events, items};
use crate::protocol::{ThreadItem, TokenUsage, Turn, TurnError, TurnStatus};

/// How deep 0.169 fork chains (`history_base`) are followed.
const MAX_FORK_DEPTH: usize = 16;
struct PendingTurn {
    id: String,
    status: TurnStatus,
    error: Option<TurnError>,
    /// Opened by a start event (not implied by a user message of an older file).
    explicit: bool,
    /// Items with ids of their own (`item_completed`, our `thread_item`).
    items: Vec<ThreadItem>,
    /// Items rebuilt from older per-kind events.
    legacy: Vec<ThreadItem>,
    /// Whether `items` holds the user's message (then it is complete and `legacy` is a copy).
    has_user_item: bool,
}

impl PendingTurn {
    fn new(id: String, explicit: bool) -> Self {
        Self {
            id,
            status: if explicit {
                TurnStatus::InProgress
            } else {
                TurnStatus::Completed
            },
            error: None,
            explicit,
            items: Vec::new(),
            legacy: Vec::new(),
            has_user_item: false,
        }
    }

    fn finish(self) -> Turn {
        let items = if self.has_user_item || self.legacy.is_empty() {
            self.items
        } else {
            let mut merged = self.legacy;
            for item in self.items {
                upsert(&mut merged, item);
            }
            merged
        };
        Turn {
            id: self.id,
            items,
            status: match self.status {
                TurnStatus::InProgress => TurnStatus::Interrupted,
                other => other,
            },
            error: self.error,
        }
    }
}

fn upsert(items: &mut Vec<ThreadItem>, item: ThreadItem) {
    match items.iter_mut().find(|i| i.id() == item.id()) {
        Some(existing) => *existing = item,
        None => items.push(item),
    }
}

/// Whether a v2 item in JSON is the user's message.
fn is_user_item(item: &Value) -> bool {
    item["type"] == "userMessage"
}

/// The state of a read in progress.
struct Builder {
    meta: Option<SessionMeta>,
    history: Vec<(String, Value)>,
    turns: Vec<PendingTurn>,
    /// Index in `turns` of the turn receiving events.
    current: Option<usize>,
    last_context: Option<TurnContext>,
    turn_contexts: Vec<(String, TurnContext)>,
    total_usage: TokenUsage,
    last_usage: TokenUsage,
    warnings: Vec<String>,
    next_item: u64,
    /// Stop before the turn with this id begins (the history as it stood then).
    stop_at_turn: Option<String>,
    /// Whether only the head is wanted: stop at the first user message, skip history items.
    summary_only: bool,
    done: bool,
    codex_home: Option<PathBuf>,
}

/// Where a file stops being read (a 0.169 fork's parent is read only up to the fork point).
#[derive(Clone, Copy, Default)]
struct Until {
    ordinal: Option<u64>,
    offset: Option<u64>,
}

impl Builder {
    fn new(path: &Path, summary_only: bool) -> Self {
        Self {
            meta: None,
            history: Vec::new(),
            turns: Vec::new(),
            current: None,
            last_context: None,
            turn_contexts: Vec::new(),
            total_usage: TokenUsage::default(),
            last_usage: TokenUsage::default(),
            warnings: Vec::new(),
            next_item: 1,
            stop_at_turn: None,
            summary_only,
            done: false,
            codex_home: super::files::codex_home_of(path),
        }
    }

    fn current_turn_id(&self) -> String {
        self.current
            .map(|i| self.turns[i].id.clone())
            .unwrap_or_default()
    }

    fn open_turn(&mut self, id: String, explicit: bool) {
        self.turns.push(PendingTurn::new(id, explicit));
        self.current = Some(self.turns.len() - 1);
    }

    /// The turn `id`, else the current one.
    fn turn_mut(&mut self, id: Option<&str>) -> Option<&mut PendingTurn> {
        let index = id
            .filter(|id| !id.is_empty())
            .and_then(|id| self.turns.iter().rposition(|t| t.id == id))
            .or(self.current)?;
        self.turns.get_mut(index)
    }

    /// Reads `path` (up to `until`) into the state; follows a 0.169 fork's `history_base` on
    /// the first line.
    fn feed_file(&mut self, path: &Path, until: Until, depth: usize) -> Result<()> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut offset = 0u64;
        let mut number = 0usize;
        loop {
            buf.clear();
            let read = reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if read == 0 || self.done {
                break;
            }
            if until.offset.is_some_and(|end| offset >= end) {
                break;
            }
            offset += read as u64;
            number += 1;
            while buf.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if self.summary_only && !self.is_wanted_for_summary(&buf) {
                continue;
            }
            let line = match serde_json::from_slice::<Line>(&buf) {
                Ok(line) => line,
                Err(e) => {
                    self.warn(format!(
                        "{}: skipping unreadable line {number}: {e}",
                        path.display()
                    ));
                    continue;
                }
            };
            if until
                .ordinal
                .zip(line.ordinal)
                .is_some_and(|(end, at)| at >= end)
            {
                break;
            }
            if number == 1 && line.kind == "session_meta" && depth < MAX_FORK_DEPTH {
                self.follow_history_base(&line.payload, depth)?;
            }
            if let Err(message) = self.apply(&line.kind, line.payload) {
                self.warn(format!(
                    "{}: skipping line {number} ({}): {message}",
                    path.display(),
                    line.kind
                ));
            }
        }
        Ok(())
    }

    /// Whether the head of a thread may need this raw line: its metadata, the first turn's
    /// model, the first user message. Listing reads many files; the rest is not even parsed.
    fn is_wanted_for_summary(&self, line: &[u8]) -> bool {
        match head_kind(line) {
            None => true,
            Some("session_meta") => self.meta.is_none(),
            Some("turn_context") => self.meta.as_ref().is_none_or(|m| m.model.is_empty()),
            Some("event_msg") => {
                contains(line, b"\"user_message\"") || contains(line, b"\"UserMessage\"")
            }
            Some("thread_item") => contains(line, b"\"userMessage\""),
            Some(_) => false,
        }
    }

    fn follow_history_base(&mut self, meta: &Value, depth: usize) -> Result<()> {
        let Some(base) = meta
            .get("history_base")
            .cloned()
            .and_then(|b| serde_json::from_value::<HistoryBase>(b).ok())
        else {
            return Ok(());
        };
        if self.summary_only {
            return Ok(());
        }
        let parent = self
            .codex_home
            .as_deref()
            .and_then(|home| super::find(home, &base.thread_id));
        let Some((parent, _)) = parent else {
            self.warn(format!(
                "the history this fork starts from (thread {}) is not found",
                base.thread_id
            ));
            return Ok(());
        };
        let until = Until {
            ordinal: base.end_ordinal_exclusive,
            offset: base
                .end_byte_offset
                .filter(|_| base.end_ordinal_exclusive.is_none()),
        };
        // The parent's own metadata line must not replace the fork's.
        let own_meta = self.meta.take();
        self.meta = Some(SessionMeta {
            id: String::new(),
            created_at: 0,
            cwd: String::new(),
            originator: None,
            cli_version: String::new(),
            source: String::new(),
            model_provider: String::new(),
            model: String::new(),
            forked_from_id: None,
            base_instructions: None,
            developer_instructions: None,
            dynamic_tools: None,
        });
        let result = self.feed_file(&parent, until, depth + 1);
        self.meta = own_meta;
        self.current = None;
        result
    }

    /// Whether the turn `id` is where reading stops (then nothing more is read).
    fn is_stop(&mut self, id: &str) -> bool {
        if self.stop_at_turn.as_deref() == Some(id) {
            self.done = true;
        }
        self.done
    }

    fn warn(&mut self, message: String) {
        crate::log::warn(&message);
        self.warnings.push(message);
    }

    /// Applies one line; `Err` says why a known kind could not be used.
    fn apply(&mut self, kind: &str, payload: Value) -> Result<(), String> {
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

    fn finish(self, path: &Path) -> Result<Loaded> {
        let meta = self
            .meta
            .filter(|m| !m.id.is_empty())
            .with_context(|| format!("{} has no session metadata", path.display()))?;
        let turns: Vec<Turn> = self
            .turns
            .into_iter()
            .filter(|t| t.explicit || !t.items.is_empty() || !t.legacy.is_empty())
            .map(PendingTurn::finish)
            .collect();
        let preview = turns
            .iter()
            .flat_map(|t| &t.items)
            .find_map(super::user_text)
            .unwrap_or_default();
        let mut history = self.history;
        answer_orphan_calls(&mut history);
        Ok(Loaded {
            meta,
            history,
            turns,
            last_context: self.last_context,
            turn_contexts: self.turn_contexts,
            total_usage: self.total_usage,
            last_usage: self.last_usage,
            preview,
            warnings: self.warnings,
        })
    }
}

/// Reads a whole rollout in one pass. Unreadable lines are skipped, each with a warning (in
/// [`Loaded::warnings`] and the log); a file without a metadata line is an error.
pub fn load(path: &Path) -> Result<Loaded> {
    let mut builder = Builder::new(path, false);
    builder.feed_file(path, Until::default(), 0)?;
    builder.finish(path)
}

/// The thread as it stood right before turn `turn_id` began (everything when no such turn is
/// recorded): what `thread/revert` keeps. One pass, stopping at that turn's start.
pub fn load_before_turn(path: &Path, turn_id: &str) -> Result<Loaded> {
    let mut builder = Builder::new(path, false);
    builder.stop_at_turn = Some(turn_id.to_string());
    builder.feed_file(path, Until::default(), 0)?;
    builder.finish(path)
}

/// What listing needs without reading the whole file: the metadata (with the model of the
/// first turn when the metadata has none) and the first user text.
pub fn read_summary(path: &Path) -> Result<(SessionMeta, String)> {
    let mut builder = Builder::new(path, true);
    builder.feed_file(path, Until::default(), 0)?;
    let loaded = builder.finish(path)?;
    Ok((loaded.meta, loaded.preview))
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
