//! Project instructions (context.md §1): the global `CODEX_HOME/AGENTS.md`, then one file per
//! directory from the git root of the cwd down to the cwd (the cwd alone without a git root) —
//! `AGENTS.override.md`, else `AGENTS.md`, else the configured fallback names — within a byte
//! budget for the project files. Reading is bounded whatever the files' sizes; a binary file is
//! skipped. Each cut or skipped file yields a warning for the client.

use std::io::Read;
use std::path::{Path, PathBuf};

/// How the instructions message starts (clients and our resume logic recognise it by this).
pub const HEADER: &str = "# AGENTS.md instructions for ";
/// The default `project_doc_max_bytes`.
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024;
/// Largest global instructions file read (it is not counted against the project budget, but
/// memory stays bounded).
const MAX_GLOBAL_BYTES: usize = 256 * 1024;
/// The per-directory override that wins over `AGENTS.md`.
const OVERRIDE_NAME: &str = "AGENTS.override.md";
/// The standard file name.
const DEFAULT_NAME: &str = "AGENTS.md";
/// Put between the global instructions and the project files.
const PROJECT_SEPARATOR: &str = "--- project-doc ---";
/// Said when instructions are sent again (another cwd): the earlier ones are void.
const REPLACES_NOTE: &str =
    "(These instructions supersede any AGENTS.md instructions given earlier in this conversation.)";

/// Where and how much to read (from config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocsConfig {
    /// `project_doc_max_bytes`: the budget of the project files together; 0 disables them.
    pub max_bytes: usize,
    /// `project_doc_fallback_filenames`: names tried after `AGENTS.md` in each directory.
    pub fallback_filenames: Vec<String>,
}

impl Default for DocsConfig {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            fallback_filenames: Vec::new(),
        }
    }
}

/// The instructions found for one cwd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectDocs {
    /// The global file's text.
    pub global: Option<String>,
    /// Project files, root first, with their (possibly cut) text.
    pub project: Vec<(PathBuf, String)>,
    /// What the client should be told: cut, skipped or unreadable files.
    pub warnings: Vec<String>,
}

impl ProjectDocs {
    /// Reads the instructions that apply in `cwd`.
    pub fn load(codex_home: &Path, cwd: &Path, config: &DocsConfig) -> Self {
        let mut docs = Self::default();
        let global_names = [OVERRIDE_NAME, DEFAULT_NAME];
        if let Some((_, text)) = docs.first_text_file(codex_home, &global_names, MAX_GLOBAL_BYTES) {
            docs.global = Some(text);
        }
        if config.max_bytes == 0 {
            return docs;
        }
        let mut names: Vec<&str> = vec![OVERRIDE_NAME, DEFAULT_NAME];
        for name in &config.fallback_filenames {
            let name = name.trim();
            if !name.is_empty() && !name.contains(['/', '\\']) && !names.contains(&name) {
                names.push(name);
            }
        }
        let mut remaining = config.max_bytes;
        for dir in search_dirs(cwd) {
            if remaining == 0 {
                if let Some(path) = first_candidate(&dir, &names) {
                    docs.warnings.push(format!(
                        "project instructions in {} were left out: the {}-byte project_doc_max_bytes budget is used up",
                        path.display(),
                        config.max_bytes
                    ));
                }
                continue;
            }
            if let Some((path, text)) = docs.first_text_file(&dir, &names, remaining) {
                remaining -= text.len().min(remaining);
                docs.project.push((path, text));
            }
        }
        docs
    }

    /// The first of `names` in `dir` that is a non-empty text file, read up to `limit` bytes
    /// (a longer file is cut, with a warning). Binary and unreadable files are skipped with a
    /// warning.
    fn first_text_file(
        &mut self,
        dir: &Path,
        names: &[&str],
        limit: usize,
    ) -> Option<(PathBuf, String)> {
        for name in names {
            let path = dir.join(name);
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let bytes = match read_prefix(&path, limit) {
                Ok(bytes) => bytes,
                Err(e) => {
                    self.warnings.push(format!(
                        "project instructions in {} could not be read: {e}",
                        path.display()
                    ));
                    continue;
                }
            };
            if bytes.contains(&0) {
                self.warnings.push(format!(
                    "{} is not a text file (it contains NUL bytes) and was skipped",
                    path.display()
                ));
                continue;
            }
            let text = to_text(&bytes);
            if text.trim().is_empty() {
                continue;
            }
            let size = meta.len();
            if size > limit as u64 {
                self.warnings.push(format!(
                    "project instructions in {} were cut to {} of {size} bytes (project_doc_max_bytes); shorten the file or raise the limit",
                    path.display(),
                    text.len()
                ));
            }
            return Some((path, text));
        }
        None
    }

    /// Whether there is anything to tell the model.
    pub fn is_empty(&self) -> bool {
        self.global.is_none() && self.project.is_empty()
    }

    /// The message text for `cwd`; `replaces` adds a note that earlier instructions are void
    /// (they were sent for another cwd). `None` when there are no instructions.
    pub fn render(&self, cwd: &Path, replaces: bool) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut body = Vec::new();
        if replaces {
            body.push(REPLACES_NOTE.to_string());
        }
        if let Some(global) = &self.global {
            body.push(global.trim_end().to_string());
            if !self.project.is_empty() {
                body.push(PROJECT_SEPARATOR.to_string());
            }
        }
        body.extend(self.project.iter().map(|(_, t)| t.trim_end().to_string()));
        Some(format!(
            "{HEADER}{}\n\n<INSTRUCTIONS>\n{}\n</INSTRUCTIONS>",
            cwd.display(),
            body.join("\n\n")
        ))
    }
}

/// The text that says no instructions apply any more (the cwd moved away from them).
pub fn render_none(cwd: &Path) -> String {
    format!(
        "{HEADER}{}\n\n<INSTRUCTIONS>\nNo AGENTS.md instructions apply in this directory; earlier ones no longer apply.\n</INSTRUCTIONS>",
        cwd.display()
    )
}

/// The instructions text without the "supersedes" note, to compare what was told with what
/// would be told now.
pub fn comparable(text: &str) -> String {
    text.replace(&format!("{REPLACES_NOTE}\n\n"), "")
}

/// The root of the git work tree holding `dir`: the nearest ancestor with a `.git` directory
/// that has a `HEAD`, or a `.git` file pointing elsewhere (`gitdir: …`, worktrees and
/// submodules). An empty `.git` directory does not count, as for git itself.
pub fn git_root(dir: &Path) -> Option<&Path> {
    dir.ancestors().find(|dir| {
        let marker = dir.join(".git");
        match std::fs::metadata(&marker) {
            Ok(meta) if meta.is_dir() => marker.join("HEAD").is_file(),
            Ok(meta) if meta.is_file() => {
                let mut head = [0u8; 7];
                std::fs::File::open(&marker)
                    .and_then(|mut f| f.read_exact(&mut head))
                    .is_ok_and(|()| &head == b"gitdir:")
            }
            _ => false,
        }
    })
}

/// The directories whose files apply in `cwd`: from the git root down to `cwd`, or `cwd`
/// alone when it is not inside a git work tree.
pub fn search_dirs(cwd: &Path) -> Vec<PathBuf> {
    match git_root(cwd) {
        Some(root) => {
            let mut dirs: Vec<PathBuf> = cwd
                .ancestors()
                .take_while(|dir| *dir != root)
                .map(Path::to_path_buf)
                .collect();
            dirs.push(root.to_path_buf());
            dirs.reverse();
            dirs
        }
        None => vec![cwd.to_path_buf()],
    }
}

fn first_candidate(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names
        .iter()
        .map(|name| dir.join(name))
        .find(|path| std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0))
}

/// At most `limit` bytes from the start of the file.
fn read_prefix(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// UTF-8 text of `bytes`, dropping a character cut at the end and replacing invalid bytes.
fn to_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
#[path = "project_docs_tests.rs"]
mod tests;
