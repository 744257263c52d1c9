//! Where rollouts live under CODEX_HOME: `sessions/YYYY/MM/DD/rollout-<YYYY-MM-DDThh-mm-ss>-<id>.jsonl`
//! (we name ours in UTC; Codex uses local time, and both are read) and
//! `archived_sessions/<same file name>`; archiving moves a file between the two. Also the names
//! index, `session_index.jsonl`, shared with Codex (`{id, thread_name}` per line, last wins).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Directory of live rollouts under CODEX_HOME.
pub const SESSIONS_DIR: &str = "sessions";
/// Directory of archived rollouts under CODEX_HOME.
pub const ARCHIVED_DIR: &str = "archived_sessions";
const NAMES_INDEX: &str = "session_index.jsonl";

/// The path of a new thread's rollout (its day directory is created).
pub(super) fn new_rollout_path(codex_home: &Path, created_at: i64, id: &str) -> Result<PathBuf> {
    let c = crate::time::civil(created_at);
    let dir = codex_home
        .join(SESSIONS_DIR)
        .join(format!("{:04}", c.year))
        .join(format!("{:02}", c.month))
        .join(format!("{:02}", c.day));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join(format!(
        "rollout-{:04}-{:02}-{:02}T{:02}-{:02}-{:02}-{id}.jsonl",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )))
}

/// The CODEX_HOME a rollout path lies in (`…/sessions/Y/M/D/f` or `…/archived_sessions/f`).
pub(super) fn codex_home_of(path: &Path) -> Option<PathBuf> {
    let parent = path.parent()?;
    if parent.file_name()? == ARCHIVED_DIR {
        return parent.parent().map(Path::to_path_buf);
    }
    let sessions = parent.parent()?.parent()?.parent()?;
    (sessions.file_name()? == SESSIONS_DIR)
        .then(|| sessions.parent().map(Path::to_path_buf))
        .flatten()
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
        .filter(|d| d.len() == 10 && d.is_ascii())
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

    #[test]
    fn names_index_last_write_wins() {
        let home = crate::rollout::reader_test_home("names");
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
    fn ids_from_file_names_and_homes_from_paths() {
        let id = "019a1b2c-3d4e-7f00-8123-456789abcdef";
        assert_eq!(
            id_from_file_name(&format!("rollout-2026-01-02T03-04-05-{id}.jsonl")),
            Some(id)
        );
        assert_eq!(id_from_file_name("rollout-x.jsonl"), None);
        assert_eq!(id_from_file_name("other.jsonl"), None);
        let home = Path::new("/h/.codex");
        for (path, expected) in [
            ("/h/.codex/sessions/2026/01/02/rollout-x.jsonl", Some(home)),
            ("/h/.codex/archived_sessions/rollout-x.jsonl", Some(home)),
            ("/h/.codex/elsewhere/rollout-x.jsonl", None),
            ("rollout-x.jsonl", None),
        ] {
            assert_eq!(
                codex_home_of(Path::new(path)).as_deref(),
                expected,
                "{path}"
            );
        }
    }
}
