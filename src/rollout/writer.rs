//! [`Rollout`]: an open rollout file, appended to entry by entry in Codex's line format (see
//! `mod.rs` for the shape of a file). Each entry is serialized whole and written with one
//! `write`, so a reader never sees half an entry unless the process died inside that call.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::files::new_rollout_path;
use super::{Entry, SessionMeta, events, items};
use crate::protocol::{ThreadItem, TokenUsage, TurnStatus};

/// Our `session_meta.source` for threads created through the app-server: what Codex records
/// for its own app-server threads, so its `thread/list` shows ours by default.
pub const APP_SERVER_SOURCE: &str = "vscode";
/// The `source` of threads `codex-lite exec` creates, as Codex records its own exec threads
/// (its `thread/list` shows them only when asked for with `sourceKinds`).
pub const EXEC_SOURCE: &str = "exec";

/// The `source` this process records new threads with ([`set_new_thread_source`]).
static NEW_THREAD_SOURCE: OnceLock<&'static str> = OnceLock::new();

/// Sets the `source` of every thread this process creates, once, at startup: `app-server
/// --session-source exec` (how `codex-lite exec` runs it) sets [`EXEC_SOURCE`]. A later call
/// changes nothing.
pub fn set_new_thread_source(source: &'static str) {
    let _ = NEW_THREAD_SOURCE.set(source);
}

/// The `source` new threads are recorded with: [`APP_SERVER_SOURCE`] unless set at startup.
pub fn new_thread_source() -> &'static str {
    NEW_THREAD_SOURCE
        .get()
        .copied()
        .unwrap_or(APP_SERVER_SOURCE)
}

/// The `cli_version` of the threads we create, in their `session_meta` and as
/// `Thread.cliVersion`: the Codex version whose rollout format and protocol we follow, with ours
/// as SemVer build metadata (`0.169.0+codex-lite.0.1.0`). Codex shows the value as is and
/// nothing in it depends on it; tools that compare it to choose how to parse a rollout see
/// 0.169.0 (build metadata does not count in SemVer precedence), and a reader still sees what
/// wrote the thread.
pub const CLI_VERSION: &str = concat!("0.169.0+codex-lite.", env!("CARGO_PKG_VERSION"));

/// An open rollout file, appended to and flushed line by line.
#[derive(Debug)]
pub struct Rollout {
    file: File,
    path: PathBuf,
    thread_id: String,
    /// The turn whose entries are being written: its id and last agent message.
    turn: Option<(String, Option<String>)>,
    /// The `ordinal` of the next line, in a file whose lines are numbered (Codex 0.169's
    /// "paginated" threads, which it refuses to resume when a line lacks one).
    next_ordinal: Option<u64>,
}

impl Rollout {
    /// Creates `sessions/YYYY/MM/DD/rollout-…-<id>.jsonl` for a new thread and writes its
    /// `session_meta` line.
    pub fn create(codex_home: &Path, meta: &SessionMeta) -> Result<Self> {
        let path = new_rollout_path(codex_home, meta.created_at, &meta.id)?;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let mut rollout = Self {
            file,
            path,
            thread_id: meta.id.clone(),
            turn: None,
            next_ordinal: None,
        };
        let line = line("session_meta", session_meta(meta), None);
        rollout.write(&line)?;
        Ok(rollout)
    }

    /// Opens an existing rollout for appending (resume). A torn last line (the process died
    /// inside a write) is ended with a newline first: otherwise the next entry would be glued to
    /// it, and the pair skipped as one unreadable line on the next read.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        if !ends_with_newline(&mut file).with_context(|| format!("reading {}", path.display()))? {
            file.write_all(b"\n")
                .with_context(|| format!("appending to {}", path.display()))?;
        }
        let next_ordinal = last_ordinal(&mut file)
            .with_context(|| format!("reading {}", path.display()))?
            .map(|n| n + 1);
        let thread_id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(super::id_from_file_name)
            .unwrap_or_default()
            .to_string();
        Ok(Self {
            file,
            path: path.to_path_buf(),
            thread_id,
            turn: None,
            next_ordinal,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry: all the lines that say it, in a single `write`.
    pub fn append(&mut self, entry: &Entry) -> Result<()> {
        let mut text = String::new();
        for (kind, payload) in self.lines_of(entry) {
            let ordinal = self.next_ordinal;
            self.next_ordinal = ordinal.map(|n| n + 1);
            text.push_str(&line(kind, payload, ordinal));
        }
        self.write(&text)
    }

    fn write(&mut self, text: &str) -> Result<()> {
        self.file
            .write_all(text.as_bytes())
            .with_context(|| format!("appending to {}", self.path.display()))
    }

    /// The `(type, payload)` lines of an entry.
    fn lines_of(&mut self, entry: &Entry) -> Vec<(&'static str, Value)> {
        let now_secs = crate::time::unix_seconds();
        match entry {
            Entry::TurnStarted { turn_id } => {
                self.turn = Some((turn_id.clone(), None));
                vec![event(json!({
                    "type": "task_started",
                    "turn_id": turn_id,
                    "started_at": now_secs,
                    "model_context_window": null,
                    "collaboration_mode_kind": "default",
                }))]
            }
            Entry::TurnContext(context) => {
                let mut payload = json!({
                    "cwd": context.cwd,
                    "approval_policy": context.approval_policy,
                    "sandbox_policy": context.sandbox_policy,
                    "model": context.model,
                    "effort": context.effort,
                    "summary": context.summary.as_deref().unwrap_or("auto"),
                });
                if let Some((turn_id, _)) = &self.turn {
                    payload["turn_id"] = json!(turn_id);
                }
                vec![("turn_context", payload)]
            }
            Entry::ResponseItem(item) => vec![("response_item", item.clone())],
            Entry::ThreadItem { turn_id, item } => {
                if let (ThreadItem::AgentMessage { text, .. }, Some((current, last))) =
                    (item, self.turn.as_mut())
                    && current == turn_id
                {
                    *last = Some(text.clone());
                }
                let item = serde_json::to_value(item).unwrap_or(Value::Null);
                let core = items::to_core(&item).unwrap_or_else(|| item.clone());
                let mut lines = vec![event(json!({
                    "type": "item_completed",
                    "thread_id": self.thread_id,
                    "turn_id": turn_id,
                    "item": core,
                }))];
                lines.extend(
                    events::to_legacy_events(&item, turn_id)
                        .into_iter()
                        .map(event),
                );
                lines
            }
            Entry::TurnCompleted {
                turn_id,
                status,
                error,
            } => {
                let last_message = match self.turn.take() {
                    Some((current, last)) if &current == turn_id => last,
                    _ => None,
                };
                let payload = match status {
                    TurnStatus::Interrupted | TurnStatus::InProgress => json!({
                        "type": "turn_aborted",
                        "turn_id": turn_id,
                        "reason": "interrupted",
                    }),
                    TurnStatus::Completed => json!({
                        "type": "task_complete",
                        "turn_id": turn_id,
                        "last_agent_message": last_message,
                        "completed_at": now_secs,
                    }),
                    TurnStatus::Failed => {
                        let (message, info) =
                            error.as_ref().map_or((String::new(), Value::Null), |e| {
                                let info = serde_json::to_value(&e.codex_error_info)
                                    .map(|v| items::rename_variant(&v, items::snake_case))
                                    .unwrap_or(Value::Null);
                                (e.message.clone(), info)
                            });
                        json!({
                            "type": "task_complete",
                            "turn_id": turn_id,
                            "last_agent_message": null,
                            "completed_at": now_secs,
                            "error": {"message": message, "codex_error_info": info},
                        })
                    }
                };
                vec![event(payload)]
            }
            Entry::TokenUsage { total, last } => vec![event(json!({
                "type": "token_count",
                "info": {
                    "total_token_usage": usage(total),
                    "last_token_usage": usage(last),
                    "model_context_window": null,
                },
                "rate_limits": null,
            }))],
            Entry::Compacted {
                message,
                replacement_history,
            } => vec![(
                "compacted",
                json!({"message": message, "replacement_history": replacement_history}),
            )],
            Entry::Reverted {
                num_turns,
                replacement_history,
            } => {
                self.turn = None;
                vec![
                    event(json!({"type": "thread_rolled_back", "num_turns": num_turns})),
                    (
                        "compacted",
                        json!({"message": "", "replacement_history": replacement_history}),
                    ),
                ]
            }
        }
    }
}

fn event(payload: Value) -> (&'static str, Value) {
    ("event_msg", payload)
}

/// One line, newline included (keys in Codex's order: `timestamp`, `ordinal`, `type`,
/// `payload`).
fn line(kind: &str, payload: Value, ordinal: Option<u64>) -> String {
    let timestamp = crate::time::rfc3339_millis(crate::time::unix_millis());
    let mut text = match ordinal {
        Some(n) => format!("{{\"timestamp\":\"{timestamp}\",\"ordinal\":{n},"),
        None => format!("{{\"timestamp\":\"{timestamp}\","),
    };
    text.push_str(&format!("\"type\":{},\"payload\":{payload}}}", json!(kind)));
    text.push('\n');
    text
}

/// Token counts in Codex's spelling.
pub(super) fn usage(u: &TokenUsage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "output_tokens": u.output_tokens,
        "reasoning_output_tokens": u.reasoning_output_tokens,
        "total_tokens": u.total_tokens,
    })
}

/// The `session_meta` payload: Codex's fields (its readers need `id`, `timestamp`, `cwd`,
/// `originator`, `cli_version`, `source`, `model_provider`, `base_instructions`), plus the
/// creation model and developer instructions, which Codex keeps elsewhere and ignores here.
fn session_meta(meta: &SessionMeta) -> Value {
    let millis = u64::try_from(meta.created_at)
        .unwrap_or(0)
        .saturating_mul(1000);
    let mut payload = json!({
        "id": meta.id,
        "timestamp": crate::time::rfc3339_millis(millis),
        "cwd": meta.cwd,
        "originator": meta.originator.as_deref().unwrap_or_default(),
        "cli_version": meta.cli_version,
        "source": meta.source,
        "model_provider": meta.model_provider,
        "base_instructions": meta.base_instructions.as_ref().map(|text| json!({"text": text})),
        "model": meta.model,
    });
    if let Some(parent) = &meta.forked_from_id {
        payload["forked_from_id"] = json!(parent);
    }
    if let Some(text) = &meta.developer_instructions {
        payload["developer_instructions"] = json!(text);
    }
    if let Some(tools) = &meta.dynamic_tools {
        payload["dynamic_tools"] = json!(tools);
    }
    payload
}

/// The `ordinal` of the file's last numbered line, looking back over at most
/// [`ORDINAL_LOOKBACK_LINES`] lines (a torn last line has none): only the head of each line is
/// read, found by reading back from the end in chunks.
fn last_ordinal(file: &mut File) -> std::io::Result<Option<u64>> {
    const CHUNK: usize = 8 * 1024;
    let len = file.metadata()?.len();
    // Line ends, newest first: each line is [previous end + 1, this end).
    let mut end = len.saturating_sub(1);
    let mut pos = end;
    let mut lines = 0;
    while lines < ORDINAL_LOOKBACK_LINES && end > 0 {
        let from = pos.saturating_sub(CHUNK as u64);
        let mut buf = vec![0u8; (pos - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut buf)?;
        let newline = buf.iter().rposition(|&b| b == b'\n');
        let start = match newline {
            Some(i) => from + i as u64 + 1,
            None if from == 0 => 0,
            None => {
                pos = from;
                continue;
            }
        };
        if let Some(n) = ordinal_in_head(file, start, end)? {
            return Ok(Some(n));
        }
        lines += 1;
        end = start.saturating_sub(1);
        pos = end;
    }
    Ok(None)
}

/// Lines looked at for the last `ordinal`.
const ORDINAL_LOOKBACK_LINES: usize = 4;

/// The top-level `"ordinal":N` of the line spanning `[start, end)`, from its first bytes.
fn ordinal_in_head(file: &mut File, start: u64, end: u64) -> std::io::Result<Option<u64>> {
    let mut head = vec![0u8; (end.saturating_sub(start)).min(256) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut head)?;
    let find = |needle: &[u8]| head.windows(needle.len()).position(|w| w == needle);
    let Some(at) = find(b"\"ordinal\":") else {
        return Ok(None);
    };
    if find(b"\"type\":").is_some_and(|kind| kind < at) {
        return Ok(None);
    }
    let digits: String = head[at + 10..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    Ok(digits.parse().ok())
}

/// Whether `file` is empty or its last byte is `\n`.
fn ends_with_newline(file: &mut File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Appending to a file with numbered lines continues the numbering (past a torn line);
    /// a file without numbers stays without.
    #[test]
    fn ordinals_continue_where_the_file_has_them() {
        let home = crate::rollout::reader_test_home("ordinals");
        let path = home.join("rollout.jsonl");
        let long = "x".repeat(20_000);
        let cases: [(String, Option<u64>); 5] = [
            (String::new(), None),
            (
                "{\"timestamp\":\"t\",\"type\":\"session_meta\",\"payload\":{\"ordinal\":5}}\n"
                    .into(),
                None,
            ),
            (
                format!(
                    "{{\"timestamp\":\"t\",\"ordinal\":7,\"type\":\"x\",\"payload\":\"{long}\"}}\n"
                ),
                Some(8),
            ),
            (
                format!(
                    "{{\"timestamp\":\"t\",\"ordinal\":3,\"type\":\"x\"}}\n{{\"timestamp\":\"t\",\"ordinal\":4,\"type\":\"x\",\"payload\":\"{long}\"}}\n{{\"timestamp\":\"t\",\"ord"
                ),
                Some(5),
            ),
            (
                "{\"timestamp\":\"t\",\"ordinal\":41,\"type\":\"x\"}".into(),
                Some(42),
            ),
        ];
        for (text, next) in cases {
            std::fs::write(&path, &text).unwrap();
            let mut rollout = Rollout::open(&path).unwrap();
            assert_eq!(
                rollout.next_ordinal,
                next,
                "{}",
                &text[..text.len().min(60)]
            );
            rollout
                .append(&Entry::TurnStarted {
                    turn_id: "t".into(),
                })
                .unwrap();
            let written = std::fs::read_to_string(&path).unwrap();
            let last: Value = serde_json::from_str(written.lines().last().unwrap()).unwrap();
            assert_eq!(last["ordinal"].as_u64(), next);
            assert!(
                written
                    .lines()
                    .last()
                    .unwrap()
                    .starts_with("{\"timestamp\":")
            );
        }
        std::fs::remove_dir_all(home).unwrap();
    }
}
