//! Rollout files: the on-disk record of a thread, in the format OpenAI Codex writes (interop.md
//! §1), so Codex and codex-lite list, read and resume each other's threads in one CODEX_HOME.
//!
//! One JSON object per line, `{timestamp, type, payload}`: `session_meta` first, then per turn a
//! `task_started` event, the `turn_context`, the model history as `response_item` lines, each
//! completed item (an `item_completed` event with Codex's core item, plus the older per-kind
//! event Codex rebuilds turns from), `token_count` events, and `task_complete` or `turn_aborted`;
//! a compaction is a `compacted` line whose `replacement_history` replaces the history before
//! it. Lines are appended as they happen, each entry in one `write`, so a `kill -9` loses at
//! most the entry being written: a torn last line is skipped on read and ended before the next
//! append, a turn that never completed reads as interrupted, a tool call that never got its
//! output reads as aborted.
//!
//! - `writer.rs`: [`Rollout`], our entries as Codex lines.
//! - `reader.rs`: [`load`] (whole thread, one pass) and [`read_summary`] (the head, for
//!   listing), for Codex's line kinds (0.169 and older) and our own earlier ones
//!   (`turn_started`, `thread_item`, `turn_completed`, `token_usage`); each kind applied in
//!   `reader/apply.rs`, a turn being rebuilt in `reader/turn.rs`.
//! - `lines.rs`: single lines: every spelling of `session_meta`, `turn_context`, token counts,
//!   errors; the repairs a history read back needs.
//! - `items.rs`, `events.rs`: thread items between our wire shape and Codex's core items and
//!   its older per-kind events.
//! - `files.rs`: the directory layout (`sessions/YYYY/MM/DD/rollout-<stamp>-<id>.jsonl`,
//!   `archived_sessions/`), archiving, and the names index (`session_index.jsonl`).
//! - `index.rs`: [`Listing`], the in-memory listing cache that keeps `thread/list` paging linear.
//!
//! In-memory thread state is `thread.rs`'s.

mod events;
mod files;
mod index;
pub mod items;
mod lines;
mod reader;
mod writer;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::{ThreadItem, TokenUsage, Turn, TurnError, TurnStatus};

pub use files::{archive, find, id_from_file_name, read_names, unarchive, write_name};
pub use index::{Listing, PageRequest, SortKey};
pub use reader::{load, load_before_turn, read_summary};
pub use writer::{
    APP_SERVER_SOURCE, CLI_VERSION, EXEC_SOURCE, Rollout, new_thread_source, set_new_thread_source,
};

/// What a rollout's `session_meta` line says about its thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionMeta {
    /// Thread id.
    pub id: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Absolute working directory at creation.
    pub cwd: String,
    /// `clientInfo.name` of the creating client.
    pub originator: Option<String>,
    /// Version of the program that wrote it.
    pub cli_version: String,
    /// Where the thread comes from, as Codex records it (`vscode` for app-server threads, `cli`,
    /// `exec`); `thread/list` filters on it.
    pub source: String,
    /// Provider id.
    pub model_provider: String,
    /// Model slug at creation (Codex records it per turn only; empty when unknown).
    pub model: String,
    /// Source thread when forked.
    pub forked_from_id: Option<String>,
    /// Base instructions override, if any.
    pub base_instructions: Option<String>,
    /// Developer instructions, if any.
    pub developer_instructions: Option<String>,
    /// The client's tools (`thread/start.dynamicTools`), offered again on resume (Codex keeps
    /// its own in `dynamic_tools` too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_tools: Option<Vec<Value>>,
}

/// The settings a turn ran with (recorded at each turn start, so resume continues with them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TurnContext {
    /// Working directory.
    pub cwd: String,
    /// Model slug.
    pub model: String,
    /// Reasoning effort.
    #[serde(default)]
    pub effort: Option<String>,
    /// Reasoning summary mode.
    #[serde(default)]
    pub summary: Option<String>,
    /// `untrusted` | `on-request` | `on-failure` | `never`.
    pub approval_policy: String,
    /// The sandbox policy in the helper spelling (the same as Codex's).
    pub sandbox_policy: Value,
}

/// One thing to record, in the order it happens. [`Rollout::append`] turns each into the Codex
/// line(s) that say it.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A turn began.
    TurnStarted {
        /// Turn id.
        turn_id: String,
    },
    /// The settings of the turn that just began.
    TurnContext(TurnContext),
    /// A Responses API item of the conversation as the model sees it.
    ResponseItem(Value),
    /// A completed item of a turn, to rebuild `turns[].items`.
    ThreadItem {
        /// Turn id.
        turn_id: String,
        /// The item as completed.
        item: ThreadItem,
    },
    /// A turn ended.
    TurnCompleted {
        /// Turn id.
        turn_id: String,
        /// Final status.
        status: TurnStatus,
        /// Why it failed.
        error: Option<TurnError>,
    },
    /// Token usage after a model response.
    TokenUsage {
        /// Thread total.
        total: TokenUsage,
        /// That response alone.
        last: TokenUsage,
    },
    /// The history was compacted: from here on the model history is `replacement_history`
    /// (what came before is neither sent nor read again on resume). Written as one `compacted`
    /// line, so a crash leaves either the state before or the state after it. Recorded with
    /// `ThreadState::record` like any entry.
    Compacted {
        /// The summary text.
        message: String,
        /// The whole new history.
        replacement_history: Vec<Value>,
    },
    /// The last `num_turns` turns were taken back (`thread/revert`): written as Codex's
    /// `thread_rolled_back` event (turns and their items go) and a `compacted` line holding the
    /// history as it stood before them, in one write.
    Reverted {
        /// How many turns, counted from the last, are gone.
        num_turns: usize,
        /// The model history from here on.
        replacement_history: Vec<Value>,
    },
}

/// Everything a rollout says about its thread.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The metadata line.
    pub meta: SessionMeta,
    /// The model history in order, each item with the turn it belongs to (`""` before any
    /// turn); from the last compaction on when there was one.
    pub history: Vec<(String, Value)>,
    /// Turns rebuilt from their events; a turn that never ended (the writer died) reads as
    /// interrupted.
    pub turns: Vec<Turn>,
    /// The settings of the last turn, if any turn ran.
    pub last_context: Option<TurnContext>,
    /// The settings recorded at each turn's start, by turn id (what the model had been told by
    /// the end of that turn; a fork that drops later turns continues from there).
    pub turn_contexts: Vec<(String, TurnContext)>,
    /// Accumulated token usage.
    pub total_usage: TokenUsage,
    /// The last recorded response's usage (what the compaction trigger reads on resume).
    pub last_usage: TokenUsage,
    /// First user text.
    pub preview: String,
    /// Lines skipped because they could not be read (torn or corrupt), one message each.
    pub warnings: Vec<String>,
}

/// The text of a user message item, for previews.
pub fn user_text(item: &ThreadItem) -> Option<String> {
    let ThreadItem::UserMessage { content, .. } = item else {
        return None;
    };
    let text: Vec<&str> = content
        .iter()
        .filter_map(|c| match c {
            crate::protocol::UserInput::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    (!text.is_empty()).then(|| text.join("\n"))
}

/// A fresh empty directory for a unit test.
#[cfg(test)]
pub(crate) fn reader_test_home(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "codex-lite-rollout-{name}-{}-{}",
        std::process::id(),
        crate::ids::random_token(6)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A recorded source as the app-server's `SessionSource` name (sources it has no name for, such
/// as sub-agents, are `unknown`).
pub fn source_kind(source: &str) -> &'static str {
    match source {
        "cli" => "cli",
        "vscode" => "vscode",
        "exec" => "exec",
        "mcp" | "appServer" | "app_server" => "appServer",
        _ => "unknown",
    }
}
