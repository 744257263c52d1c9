//! Reading rollouts: [`load`] rebuilds a whole thread in one pass over its file; [`read_summary`]
//! reads only the head (what listing shows). Both accept Codex's line kinds (0.169 and older:
//! `session_meta` with `base_instructions` as an object, a string or null; `event_msg` items in
//! the core shape or as older per-kind events; `compacted` with or without a replacement
//! history; 0.169 forks that point into their parent's file with `history_base`) and our own
//! earlier ones (`turn_started`, `thread_item`, `turn_completed`, `token_usage`). Kinds nobody
//! here uses are skipped silently; a line that is not JSON (torn by a crash, corrupted) is
//! skipped with a warning and the rest of the file is still read.
//!
//! This file holds the read's state and reading files (forks followed, summaries stopped early);
//! `reader/apply.rs` applies each line's kind to that state; `reader/turn.rs` is a turn being
//! rebuilt.

mod apply;
mod turn;

use turn::PendingTurn;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use super::lines::{HistoryBase, Line, answer_orphan_calls, contains, head_kind};
use super::{Loaded, SessionMeta, TurnContext};
use crate::protocol::{TokenUsage, Turn};

/// How deep 0.169 fork chains (`history_base`) are followed.
const MAX_FORK_DEPTH: usize = 16;

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
