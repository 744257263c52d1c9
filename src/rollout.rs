//! Rollout files: the on-disk record of a thread (protocol.md §5). One JSON object per line,
//! `{timestamp, type, payload}`: first the session metadata, then every history item, every
//! completed thread item and every turn boundary, appended and flushed as they happen so a
//! `kill -9` loses at most the line being written (a torn last line is skipped on read and
//! ended before the next append; a turn that never completed reads as interrupted, a tool call
//! that never got its output reads as aborted).
//!
//! Also the names index (`CODEX_HOME/session_index.jsonl`) and the directory layout:
//! `sessions/YYYY/MM/DD/rollout-<YYYY-MM-DDThh-mm-ss>-<id>.jsonl` (UTC) and
//! `archived_sessions/<same file name>`. In-memory thread state is `thread.rs`'s.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::{ThreadItem, TokenUsage, Turn, TurnError, TurnStatus};

/// Directory of live rollouts under CODEX_HOME.
pub const SESSIONS_DIR: &str = "sessions";
/// Directory of archived rollouts under CODEX_HOME.
pub const ARCHIVED_DIR: &str = "archived_sessions";
const NAMES_INDEX: &str = "session_index.jsonl";

/// The first line of a rollout: what the thread is and how it was configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionMeta {
    /// Thread id.
    pub id: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Absolute working directory at creation.
    pub cwd: String,
    /// `clientInfo.name` of the creating client.
    pub originator: Option<String>,
    /// Version of codex-lite that wrote it.
    pub cli_version: String,
    /// Provider id.
    pub model_provider: String,
    /// Model slug.
    pub model: String,
    /// Source thread when forked.
    #[serde(default)]
    pub forked_from_id: Option<String>,
    /// Base instructions override, if any.
    #[serde(default)]
    pub base_instructions: Option<String>,
    /// Developer instructions, if any.
    #[serde(default)]
    pub developer_instructions: Option<String>,
    /// The client's tools (`thread/start.dynamicTools`), offered again on resume.
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
    /// `untrusted` | `on-request` | `never`.
    pub approval_policy: String,
    /// The sandbox policy in the helper spelling.
    pub sandbox_policy: Value,
}

/// One line of a rollout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum Entry {
    /// First line.
    SessionMeta(SessionMeta),
    /// A turn began.
    TurnStarted {
        /// Turn id.
        turn_id: String,
    },
    /// The settings of the turn that just began.
    TurnContext(TurnContext),
    /// A Responses API input item (the conversation as the model sees it).
    ResponseItem(Value),
    /// A completed protocol item, to rebuild `turns[].items`.
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
        #[serde(default)]
        error: Option<TurnError>,
    },
    /// Accumulated token usage after a model response.
    TokenUsage {
        /// Thread total.
        total: TokenUsage,
    },
}

#[derive(Serialize)]
struct LineOut<'a> {
    timestamp: String,
    #[serde(flatten)]
    entry: &'a Entry,
}

/// An open rollout file, appended to and flushed line by line.
#[derive(Debug)]
pub struct Rollout {
    file: File,
    path: PathBuf,
}

impl Rollout {
    /// Creates `sessions/YYYY/MM/DD/rollout-…-<id>.jsonl` for a new thread and writes `meta`.
    pub fn create(codex_home: &Path, meta: &SessionMeta) -> Result<Self> {
        let c = crate::time::civil(meta.created_at);
        let dir = codex_home
            .join(SESSIONS_DIR)
            .join(format!("{:04}", c.year))
            .join(format!("{:02}", c.month))
            .join(format!("{:02}", c.day));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = format!(
            "rollout-{:04}-{:02}-{:02}T{:02}-{:02}-{:02}-{}.jsonl",
            c.year, c.month, c.day, c.hour, c.minute, c.second, meta.id
        );
        let path = dir.join(name);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let mut rollout = Self { file, path };
        rollout.append(&Entry::SessionMeta(meta.clone()))?;
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
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry as a single `write` of a whole line, so readers never see half of a
    /// line unless the process dies inside that one syscall.
    pub fn append(&mut self, entry: &Entry) -> Result<()> {
        let mut line = serde_json::to_string(&LineOut {
            timestamp: crate::time::rfc3339_millis(crate::time::unix_millis()),
            entry,
        })?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("appending to {}", self.path.display()))
    }
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

/// Everything a rollout says about its thread.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The metadata line.
    pub meta: SessionMeta,
    /// History items in order, each with the turn it belongs to.
    pub history: Vec<(String, Value)>,
    /// Turns rebuilt from boundaries and completed items; a turn that never completed (the
    /// server died) reads as interrupted.
    pub turns: Vec<Turn>,
    /// The settings of the last turn, if any turn ran.
    pub last_context: Option<TurnContext>,
    /// The settings recorded at each turn's start, by turn id (what the model had been told by
    /// the end of that turn; a fork that drops later turns continues from there).
    pub turn_contexts: Vec<(String, TurnContext)>,
    /// Accumulated token usage.
    pub total_usage: TokenUsage,
    /// First user text.
    pub preview: String,
}

#[derive(Deserialize)]
struct LineIn {
    #[serde(flatten)]
    entry: Entry,
}

/// Reads a whole rollout. Unparseable lines (a torn last line after a crash) are skipped with
/// a warning; a file without a metadata line is an error.
pub fn load(path: &Path) -> Result<Loaded> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut meta = None;
    let mut loaded = Loaded {
        meta: SessionMeta {
            id: String::new(),
            created_at: 0,
            cwd: String::new(),
            originator: None,
            cli_version: String::new(),
            model_provider: String::new(),
            model: String::new(),
            forked_from_id: None,
            base_instructions: None,
            developer_instructions: None,
            dynamic_tools: None,
        },
        history: Vec::new(),
        turns: Vec::new(),
        last_context: None,
        turn_contexts: Vec::new(),
        total_usage: TokenUsage::default(),
        preview: String::new(),
    };
    let mut current_turn = String::new();
    for (index, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry = match serde_json::from_slice::<LineIn>(&line) {
            Ok(l) => l.entry,
            Err(e) => {
                crate::log::warn(&format!(
                    "{}: skipping unreadable line {}: {e}",
                    path.display(),
                    index + 1
                ));
                continue;
            }
        };
        match entry {
            Entry::SessionMeta(m) => meta = meta.or(Some(m)),
            Entry::TurnStarted { turn_id } => {
                current_turn = turn_id.clone();
                loaded.turns.push(Turn {
                    id: turn_id,
                    items: Vec::new(),
                    status: TurnStatus::Interrupted,
                    error: None,
                });
            }
            Entry::TurnContext(context) => {
                if !current_turn.is_empty() {
                    loaded
                        .turn_contexts
                        .push((current_turn.clone(), context.clone()));
                }
                loaded.last_context = Some(context);
            }
            Entry::ResponseItem(item) => loaded.history.push((current_turn.clone(), item)),
            Entry::ThreadItem { turn_id, item } => {
                if loaded.preview.is_empty()
                    && let Some(text) = user_text(&item)
                {
                    loaded.preview = text;
                }
                if let Some(turn) = loaded.turns.iter_mut().rev().find(|t| t.id == turn_id) {
                    turn.items.push(item);
                }
            }
            Entry::TurnCompleted {
                turn_id,
                status,
                error,
            } => {
                if let Some(turn) = loaded.turns.iter_mut().rev().find(|t| t.id == turn_id) {
                    turn.status = status;
                    turn.error = error;
                }
            }
            Entry::TokenUsage { total } => loaded.total_usage = total,
        }
    }
    loaded.meta = meta.with_context(|| format!("{} has no session metadata", path.display()))?;
    answer_orphan_calls(&mut loaded.history);
    Ok(loaded)
}

/// The output given to a tool call that never got one.
const ORPHAN_CALL_OUTPUT: &str = "aborted: the session ended before this call finished";

/// Gives every tool call without an output (the process died while it ran or waited for
/// approval) an output right after it. The Responses API rejects an input holding a call without
/// its output, so without this a thread cut mid-call could never continue.
fn answer_orphan_calls(history: &mut Vec<(String, Value)>) {
    let kind = |item: &Value| item.get("type").and_then(Value::as_str).map(str::to_string);
    let call_id = |item: &Value| {
        item.get("call_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let answered: std::collections::HashSet<String> = history
        .iter()
        .filter(|(_, item)| kind(item).is_some_and(|k| k.ends_with("_call_output")))
        .filter_map(|(_, item)| call_id(item))
        .collect();
    let mut repaired = Vec::with_capacity(history.len());
    for (turn, item) in history.drain(..) {
        let orphan = match (kind(&item).as_deref(), call_id(&item)) {
            (Some(k @ ("function_call" | "custom_tool_call")), Some(id))
                if !answered.contains(&id) =>
            {
                Some(serde_json::json!({
                    "type": format!("{k}_output"),
                    "call_id": id,
                    "output": ORPHAN_CALL_OUTPUT,
                }))
            }
            _ => None,
        };
        repaired.push((turn.clone(), item));
        if let Some(output) = orphan {
            repaired.push((turn, output));
        }
    }
    *history = repaired;
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

/// What listing needs from a rollout without reading all of it: the metadata and the first
/// user text.
pub fn read_summary(path: &Path) -> Result<(SessionMeta, String)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut meta = None;
    for line in BufReader::new(file).split(b'\n') {
        let Ok(line) = line else { break };
        let Ok(LineIn { entry }) = serde_json::from_slice::<LineIn>(&line) else {
            continue;
        };
        match entry {
            Entry::SessionMeta(m) if meta.is_none() => meta = Some(m),
            Entry::ThreadItem { item, .. } => {
                if let Some(text) = user_text(&item) {
                    let meta =
                        meta.with_context(|| format!("{} has no metadata", path.display()))?;
                    return Ok((meta, text));
                }
            }
            _ => {}
        }
    }
    let meta = meta.with_context(|| format!("{} has no session metadata", path.display()))?;
    Ok((meta, String::new()))
}

/// The thread id in a rollout file name (`rollout-<stamp>-<uuid>.jsonl`).
pub fn id_from_file_name(name: &str) -> Option<&str> {
    let stem = name.strip_prefix("rollout-")?.strip_suffix(".jsonl")?;
    let id = stem.get(stem.len().checked_sub(36)?..)?;
    crate::ids::is_uuid(id).then_some(id)
}

/// Every rollout file under `sessions/` (or `archived_sessions/`), unsorted.
pub fn list_files(codex_home: &Path, archived: bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if archived {
        collect_rollouts(&codex_home.join(ARCHIVED_DIR), 0, &mut files);
    } else {
        collect_rollouts(&codex_home.join(SESSIONS_DIR), 3, &mut files);
    }
    files
}

fn collect_rollouts(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if depth > 0 {
            if path.is_dir() {
                collect_rollouts(&path, depth - 1, out);
            }
        } else if entry
            .file_name()
            .to_str()
            .and_then(id_from_file_name)
            .is_some()
        {
            out.push(path);
        }
    }
}

/// Finds the rollout of thread `id`: `(path, archived)`.
pub fn find(codex_home: &Path, id: &str) -> Option<(PathBuf, bool)> {
    if !crate::ids::is_uuid(id) {
        return None;
    }
    let suffix = format!("-{id}.jsonl");
    for archived in [false, true] {
        if let Some(path) = list_files(codex_home, archived)
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(&suffix))
        {
            return Some((path, archived));
        }
    }
    None
}

/// Moves a rollout into `archived_sessions/`; returns the new path.
pub fn archive(codex_home: &Path, path: &Path) -> Result<PathBuf> {
    let dir = codex_home.join(ARCHIVED_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = dir.join(path.file_name().context("rollout path has no file name")?);
    std::fs::rename(path, &target)
        .with_context(|| format!("moving {} to {}", path.display(), target.display()))?;
    Ok(target)
}

/// Moves an archived rollout back under `sessions/YYYY/MM/DD/` (from its file name's date).
pub fn unarchive(codex_home: &Path, path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("rollout path has no file name")?;
    let date = name
        .strip_prefix("rollout-")
        .and_then(|s| s.get(..10))
        .context("rollout file name has no date")?;
    let (year, month, day) = (&date[..4], &date[5..7], &date[8..10]);
    let dir = codex_home
        .join(SESSIONS_DIR)
        .join(year)
        .join(month)
        .join(day);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = dir.join(name);
    std::fs::rename(path, &target)
        .with_context(|| format!("moving {} to {}", path.display(), target.display()))?;
    Ok(target)
}

#[derive(Serialize, Deserialize)]
struct NameLine {
    id: String,
    thread_name: Option<String>,
}

/// Records a thread's name in the names index (append-only; the last line per id wins).
pub fn write_name(codex_home: &Path, id: &str, name: Option<&str>) -> Result<()> {
    let path = codex_home.join(NAMES_INDEX);
    let mut line = serde_json::to_string(&NameLine {
        id: id.to_string(),
        thread_name: name.map(str::to_string),
    })?;
    line.push('\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .with_context(|| format!("appending to {}", path.display()))
}

/// Every thread name in the index.
pub fn read_names(codex_home: &Path) -> std::collections::HashMap<String, String> {
    let mut names = std::collections::HashMap::new();
    let Ok(file) = File::open(codex_home.join(NAMES_INDEX)) else {
        return names;
    };
    for line in BufReader::new(file).split(b'\n').map_while(Result::ok) {
        if let Ok(entry) = serde_json::from_slice::<NameLine>(&line) {
            match entry.thread_name {
                Some(name) => names.insert(entry.id, name),
                None => names.remove(&entry.id),
            };
        }
    }
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::protocol::UserInput;

    fn home(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("codex-lite-rollout-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn meta(id: &str) -> SessionMeta {
        SessionMeta {
            id: id.into(),
            created_at: 1_795_987_328,
            cwd: "/w".into(),
            originator: Some("t".into()),
            cli_version: "0.1.0".into(),
            model_provider: "mock".into(),
            model: "m".into(),
            forked_from_id: None,
            base_instructions: None,
            developer_instructions: None,
            dynamic_tools: None,
        }
    }

    #[test]
    fn write_then_load_rebuilds_turns_and_history_and_skips_a_torn_line() {
        let home = home("load");
        let id = crate::ids::uuid_v7();
        let mut rollout = Rollout::create(&home, &meta(&id)).unwrap();
        let user = ThreadItem::UserMessage {
            id: "u1".into(),
            content: vec![UserInput::Text {
                text: "hello".into(),
                text_elements: vec![],
            }],
        };
        let context = TurnContext {
            cwd: "/w".into(),
            model: "m".into(),
            effort: None,
            summary: Some("auto".into()),
            approval_policy: "never".into(),
            sandbox_policy: serde_json::json!({"type": "read-only"}),
        };
        for entry in [
            Entry::TurnStarted {
                turn_id: "t1".into(),
            },
            Entry::TurnContext(context.clone()),
            Entry::ResponseItem(serde_json::json!({"type":"message","role":"user"})),
            Entry::ThreadItem {
                turn_id: "t1".into(),
                item: user.clone(),
            },
            Entry::TurnCompleted {
                turn_id: "t1".into(),
                status: TurnStatus::Completed,
                error: None,
            },
            Entry::TurnStarted {
                turn_id: "t2".into(),
            },
        ] {
            rollout.append(&entry).unwrap();
        }
        let path = rollout.path().to_path_buf();
        assert!(
            path.to_string_lossy()
                .contains("sessions/2026/11/29/rollout-2026-11-29T21-22-08-")
        );
        drop(rollout);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"timestamp\":\"x\",\"type\":\"response_it")
            .unwrap();

        let loaded = load(&path).unwrap();
        assert_eq!(loaded.meta.id, id);
        assert_eq!(loaded.preview, "hello");
        assert_eq!(loaded.history.len(), 1);
        assert_eq!(loaded.history[0].0, "t1");
        assert_eq!(loaded.turns.len(), 2);
        assert_eq!(loaded.turns[0].items, vec![user]);
        assert_eq!(loaded.turns[0].status, TurnStatus::Completed);
        assert_eq!(loaded.turns[1].status, TurnStatus::Interrupted);
        assert_eq!(
            loaded.turn_contexts,
            vec![("t1".to_string(), context.clone())]
        );
        assert_eq!(loaded.last_context, Some(context));
        assert_eq!(read_summary(&path).unwrap().1, "hello");

        // Appending after the torn line keeps the new entries readable.
        Rollout::open(&path)
            .unwrap()
            .append(&Entry::TurnCompleted {
                turn_id: "t2".into(),
                status: TurnStatus::Completed,
                error: None,
            })
            .unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.turns[1].status, TurnStatus::Completed);
        Rollout::open(&path).unwrap();
        assert!(
            std::fs::read(&path).unwrap().ends_with(b"}\n"),
            "no blank lines added"
        );

        assert_eq!(find(&home, &id).unwrap(), (path.clone(), false));
        let archived = archive(&home, &path).unwrap();
        assert_eq!(find(&home, &id).unwrap(), (archived.clone(), true));
        assert_eq!(unarchive(&home, &archived).unwrap(), path);
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn calls_without_outputs_get_one_right_after_them() {
        use serde_json::json;
        let call = |kind: &str, id: &str| json!({"type": kind, "call_id": id});
        let mut history: Vec<(String, Value)> = vec![
            ("t".into(), call("function_call", "a")),
            ("t".into(), call("custom_tool_call", "b")),
            ("t".into(), call("function_call_output", "a")),
            ("u".into(), call("function_call", "c")),
        ];
        answer_orphan_calls(&mut history);
        let shape: Vec<(String, String, String)> = history
            .iter()
            .map(|(turn, item)| {
                (
                    turn.clone(),
                    item["type"].as_str().unwrap().to_string(),
                    item["call_id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let expected = [
            ("t", "function_call", "a"),
            ("t", "custom_tool_call", "b"),
            ("t", "custom_tool_call_output", "b"),
            ("t", "function_call_output", "a"),
            ("u", "function_call", "c"),
            ("u", "function_call_output", "c"),
        ]
        .map(|(t, k, c)| (t.to_string(), k.to_string(), c.to_string()));
        assert_eq!(shape, expected);
        assert_eq!(history[2].1["output"], ORPHAN_CALL_OUTPUT);
    }

    #[test]
    fn names_index_last_write_wins() {
        let home = home("names");
        write_name(&home, "a", Some("one")).unwrap();
        write_name(&home, "b", Some("two")).unwrap();
        write_name(&home, "a", Some("three")).unwrap();
        write_name(&home, "b", None).unwrap();
        let names = read_names(&home);
        assert_eq!(names.get("a").map(String::as_str), Some("three"));
        assert!(!names.contains_key("b"));
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn ids_from_file_names() {
        let id = "019a1b2c-3d4e-7f00-8123-456789abcdef";
        assert_eq!(
            id_from_file_name(&format!("rollout-2026-01-02T03-04-05-{id}.jsonl")),
            Some(id)
        );
        assert_eq!(id_from_file_name("rollout-x.jsonl"), None);
        assert_eq!(id_from_file_name("other.jsonl"), None);
    }
}
