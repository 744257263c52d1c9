//! Applying a parsed [`Patch`] to files: the per-hunk rules (Add, Delete,
//! Update, Move), the cursor and `@@` context search, bottom-up replacement,
//! and the fidelity rules of the spec (line endings, BOM, missing final
//! newline, loosely matched context keeping the file's text). Also the
//! write-free preview of a patch as [`FileChange`]s with unified diffs.
//!
//! Does not parse patch text (`parser.rs`), match lines (`seek.rs`) or print
//! anything (the CLI in `mod.rs` does).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::diff::{FILE_CHANGE_CONTEXT_LINES, unified_diff};
use super::parser::{Chunk, ChunkLine, Hunk, Patch};
use super::seek::seek;

const BOM: char = '\u{FEFF}';

/// Why a patch could not be applied. `Display` is the exact stderr text of
/// the CLI; paths in it are absolute and resolved against the working
/// directory.
#[derive(Debug)]
pub enum ApplyError {
    /// The patch has no hunks: `No files were modified.`
    NoFilesModified,
    /// An `@@ context` line was not found after the cursor.
    ContextNotFound {
        /// The context text as written after `@@ `.
        context: String,
        /// The file searched.
        path: PathBuf,
    },
    /// A chunk's old lines were not found; `lines` are they, joined by `\n`.
    LinesNotFound {
        /// The file searched.
        path: PathBuf,
        /// The chunk's old lines, one per line.
        lines: String,
    },
    /// The file to update could not be read (missing, a directory, not UTF-8).
    ReadUpdate {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Preview only: the file to delete could not be read.
    ReadDelete {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file to delete could not be removed (missing, a directory).
    Delete {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The parent directories of a new or moved file could not be created.
    CreateDirs {
        /// The file whose parents were wanted.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A file could not be written.
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The source of a move could not be removed after the destination was written.
    RemoveOriginal {
        /// The source file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::NoFilesModified => write!(f, "No files were modified."),
            ApplyError::ContextNotFound { context, path } => {
                write!(
                    f,
                    "Failed to find context '{context}' in {}",
                    path.display()
                )
            }
            ApplyError::LinesNotFound { path, lines } => {
                write!(
                    f,
                    "Failed to find expected lines in {}:\n{lines}",
                    path.display()
                )
            }
            ApplyError::ReadUpdate { path, source } => {
                write!(
                    f,
                    "Failed to read file to update {}: {source}",
                    path.display()
                )
            }
            ApplyError::ReadDelete { path, source } => {
                write!(f, "Failed to read {}: {source}", path.display())
            }
            ApplyError::Delete { path, .. } => {
                write!(f, "Failed to delete file {}", path.display())
            }
            ApplyError::CreateDirs { path, .. } => {
                write!(
                    f,
                    "Failed to create parent directories for {}",
                    path.display()
                )
            }
            ApplyError::Write { path, .. } => write!(f, "Failed to write file {}", path.display()),
            ApplyError::RemoveOriginal { path, .. } => {
                write!(f, "Failed to remove original {}", path.display())
            }
        }
    }
}

impl std::error::Error for ApplyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApplyError::ReadUpdate { source, .. }
            | ApplyError::ReadDelete { source, .. }
            | ApplyError::Delete { source, .. }
            | ApplyError::CreateDirs { source, .. }
            | ApplyError::Write { source, .. }
            | ApplyError::RemoveOriginal { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What a hunk does to its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new file (or an existing one overwritten).
    Add,
    /// A removed file.
    Delete,
    /// An edited file, moved to `move_path` (absolute) when set.
    Update {
        /// The absolute destination of a move.
        move_path: Option<PathBuf>,
    },
}

/// One file's change as a patch would make it, computed before anything is
/// written (the server reports these as `fileChange` items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The absolute, resolved path of the file the hunk names.
    pub path: PathBuf,
    /// Add, delete or update (with move destination).
    pub kind: ChangeKind,
    /// For an update the unified-diff hunks (no `---`/`+++` headers, one line
    /// of context); for an add the new contents; for a delete the old ones.
    pub unified_diff: String,
    /// The contents before (a delete or update; lossy UTF-8 for a delete).
    pub old_contents: Option<String>,
    /// The contents to write (an add or update), BOM included.
    pub new_contents: Option<String>,
}

/// The files a successful patch touched, with paths as written in the
/// patch (a move is listed under its destination). `Display` is the CLI's
/// stdout text, every line ending in `\n`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// `A` lines.
    pub added: Vec<PathBuf>,
    /// `M` lines.
    pub modified: Vec<PathBuf>,
    /// `D` lines.
    pub deleted: Vec<PathBuf>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Success. Updated the following files:")?;
        for (tag, paths) in [
            ("A", &self.added),
            ("M", &self.modified),
            ("D", &self.deleted),
        ] {
            for path in paths {
                writeln!(f, "{tag} {}", path.display())?;
            }
        }
        Ok(())
    }
}

/// Applies the hunks in patch order, each one fully before the next; when
/// one fails, the effects of the earlier ones stay and the error names the
/// failing file. Relative paths are resolved against `cwd`.
pub fn apply_patch(patch: &Patch, cwd: &Path) -> Result<Summary, ApplyError> {
    if patch.hunks.is_empty() {
        return Err(ApplyError::NoFilesModified);
    }
    let mut summary = Summary::default();
    for hunk in &patch.hunks {
        match hunk {
            Hunk::Add { path, contents } => {
                write_file(&resolve(cwd, path), contents)?;
                summary.added.push(path.clone());
            }
            Hunk::Delete { path } => {
                let abs = resolve(cwd, path);
                std::fs::remove_file(&abs)
                    .map_err(|source| ApplyError::Delete { path: abs, source })?;
                summary.deleted.push(path.clone());
            }
            Hunk::Update {
                path,
                move_path,
                chunks,
            } => {
                let abs = resolve(cwd, path);
                let old = read_for_update(&abs, std::fs::read_to_string(&abs))?;
                let new = updated_contents(&old, &abs, chunks)?;
                match move_path {
                    Some(dest) if resolve(cwd, dest) != abs => {
                        let dest_abs = resolve(cwd, dest);
                        write_file(&dest_abs, &new)?;
                        if let Ok(meta) = std::fs::metadata(&abs) {
                            // Keep the mode (an executable stays executable);
                            // failing to is not worth failing the patch.
                            let _ = std::fs::set_permissions(&dest_abs, meta.permissions());
                        }
                        std::fs::remove_file(&abs)
                            .map_err(|source| ApplyError::RemoveOriginal { path: abs, source })?;
                        summary.modified.push(dest.clone());
                    }
                    _ => {
                        std::fs::write(&abs, &new)
                            .map_err(|source| ApplyError::Write { path: abs, source })?;
                        summary
                            .modified
                            .push(move_path.clone().unwrap_or_else(|| path.clone()));
                    }
                }
            }
        }
    }
    Ok(summary)
}

/// Computes what `patch` would do, reading files but writing nothing: one
/// [`FileChange`] per hunk, in patch order. Later hunks see the effects of
/// earlier ones (an added file can then be updated), as they would when
/// applied. Fails where applying would fail, except that a file to delete
/// is only checked to be readable.
#[allow(dead_code)] // the server calls this to report fileChange items before approval
pub fn compute_changes(patch: &Patch, cwd: &Path) -> Result<Vec<FileChange>, ApplyError> {
    if patch.hunks.is_empty() {
        return Err(ApplyError::NoFilesModified);
    }
    // Files as the earlier hunks left them: `None` once deleted.
    let mut overlay: HashMap<PathBuf, Option<String>> = HashMap::new();
    let read = |overlay: &HashMap<PathBuf, Option<String>>, path: &Path| match overlay.get(path) {
        Some(Some(contents)) => Ok(contents.clone()),
        Some(None) => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        None => std::fs::read(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    };
    let mut changes = Vec::with_capacity(patch.hunks.len());
    for hunk in &patch.hunks {
        let change = match hunk {
            Hunk::Add { path, contents } => {
                let abs = resolve(cwd, path);
                overlay.insert(abs.clone(), Some(contents.clone()));
                FileChange {
                    path: abs,
                    kind: ChangeKind::Add,
                    unified_diff: contents.clone(),
                    old_contents: None,
                    new_contents: Some(contents.clone()),
                }
            }
            Hunk::Delete { path } => {
                let abs = resolve(cwd, path);
                let old = match read(&overlay, &abs) {
                    Ok(old) => old,
                    Err(source) => return Err(ApplyError::ReadDelete { path: abs, source }),
                };
                overlay.insert(abs.clone(), None);
                FileChange {
                    path: abs,
                    kind: ChangeKind::Delete,
                    unified_diff: old.clone(),
                    old_contents: Some(old),
                    new_contents: None,
                }
            }
            Hunk::Update {
                path,
                move_path,
                chunks,
            } => {
                let abs = resolve(cwd, path);
                let strict = match overlay.get(&abs) {
                    Some(_) => read(&overlay, &abs),
                    None => std::fs::read_to_string(&abs),
                };
                let old = read_for_update(&abs, strict)?;
                let new = updated_contents(&old, &abs, chunks)?;
                let dest = move_path.as_ref().map(|dest| resolve(cwd, dest));
                if let Some(dest) = &dest {
                    overlay.insert(abs.clone(), None);
                    overlay.insert(dest.clone(), Some(new.clone()));
                } else {
                    overlay.insert(abs.clone(), Some(new.clone()));
                }
                FileChange {
                    path: abs,
                    kind: ChangeKind::Update { move_path: dest },
                    unified_diff: unified_diff(
                        strip_bom(&old),
                        strip_bom(&new),
                        FILE_CHANGE_CONTEXT_LINES,
                    ),
                    old_contents: Some(old),
                    new_contents: Some(new),
                }
            }
        };
        changes.push(change);
    }
    Ok(changes)
}

fn read_for_update(path: &Path, read: io::Result<String>) -> Result<String, ApplyError> {
    read.map_err(|source| ApplyError::ReadUpdate {
        path: path.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, contents: &str) -> Result<(), ApplyError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| ApplyError::CreateDirs {
            path: path.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, contents).map_err(|source| ApplyError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// `path` made absolute against `cwd`, with `.` and `..` resolved lexically
/// (symlinks are not followed).
pub fn resolve(cwd: &Path, path: &Path) -> PathBuf {
    let joined = cwd.join(path);
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `..` at the root stays at the root.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    out
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// One line of a file being edited: its text, its own line ending (`""`
/// only for a last line without newline), and whether it is the file's own
/// line (kept as is) or comes from the patch.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    text: &'a str,
    ending: &'a str,
    is_original: bool,
}

/// Where a line of a chunk's new block comes from.
#[derive(Debug, Clone, Copy)]
enum NewLine<'a> {
    /// The file's line at this index (a context line: keeps the file's text).
    Original(usize),
    /// Text from the patch.
    Patch(&'a str),
}

struct Replacement<'a> {
    start: usize,
    old_len: usize,
    new: Vec<NewLine<'a>>,
}

/// The contents of the file at `path` (read as `original`) after applying
/// `chunks`, keeping its BOM, line endings and, when its last line is not
/// touched, a missing final newline.
fn updated_contents(original: &str, path: &Path, chunks: &[Chunk]) -> Result<String, ApplyError> {
    let has_bom = original.starts_with(BOM);
    let body = strip_bom(original);
    let lines = split_lines(body);
    let ending = lines
        .iter()
        .map(|line| line.ending)
        .find(|ending| !ending.is_empty())
        .unwrap_or("\n");
    let texts: Vec<&str> = lines.iter().map(|line| line.text).collect();
    let mut replacements = find_replacements(&texts, path, chunks)?;
    // Stable, so a pure addition keeps its patch order among equal starts.
    replacements.sort_by_key(|r| r.start);

    let mut out = lines.clone();
    for r in replacements.iter().rev() {
        let start = r.start.min(out.len());
        let end = (start + r.old_len).min(out.len());
        let new = r.new.iter().map(|new| match *new {
            NewLine::Original(at) => lines[at],
            NewLine::Patch(text) => Line {
                text,
                ending,
                is_original: false,
            },
        });
        out.splice(start..end, new);
    }
    // As in the reference, an empty line added last by the patch stands
    // for the final newline, not for an extra blank line.
    if out
        .last()
        .is_some_and(|l| !l.is_original && l.text.is_empty())
    {
        out.pop();
    }
    let mut text = String::with_capacity(original.len() + 64);
    if has_bom {
        text.push(BOM);
    }
    let last = out.len().saturating_sub(1);
    for (at, line) in out.iter().enumerate() {
        text.push_str(line.text);
        // Only the file's own last line may stay without a newline.
        let keeps_ending = at == last && line.is_original;
        text.push_str(if line.ending.is_empty() && !keeps_ending {
            ending
        } else {
            line.ending
        });
    }
    Ok(text)
}

/// Splits `text` into lines with their own endings (`\r\n`, `\n`, or none
/// for a last line without newline); a final newline does not start a line.
fn split_lines(text: &str) -> Vec<Line<'_>> {
    text.split_inclusive('\n')
        .map(|piece| {
            let (text, ending) = if let Some(text) = piece.strip_suffix("\r\n") {
                (text, "\r\n")
            } else if let Some(text) = piece.strip_suffix('\n') {
                (text, "\n")
            } else {
                (piece, "")
            };
            Line {
                text,
                ending,
                is_original: true,
            }
        })
        .collect()
}

/// Locates every chunk in `lines`, moving a cursor forward through the file.
fn find_replacements<'a>(
    lines: &[&str],
    path: &Path,
    chunks: &'a [Chunk],
) -> Result<Vec<Replacement<'a>>, ApplyError> {
    let mut replacements = Vec::with_capacity(chunks.len());
    let mut cursor = 0;
    for chunk in chunks {
        if let Some(context) = &chunk.context {
            match seek(lines, std::slice::from_ref(context), cursor, false) {
                Some(at) => cursor = at + 1,
                None => {
                    return Err(ApplyError::ContextNotFound {
                        context: context.clone(),
                        path: path.to_path_buf(),
                    });
                }
            }
        }
        // The new block, each line with the index of its old line when it
        // is a context line.
        let mut old: Vec<&str> = Vec::new();
        let mut new: Vec<(&str, Option<usize>)> = Vec::new();
        for line in &chunk.lines {
            match line {
                ChunkLine::Context(text) => {
                    new.push((text, Some(old.len())));
                    old.push(text);
                }
                ChunkLine::Remove(text) => old.push(text),
                ChunkLine::Add(text) => new.push((text, None)),
            }
        }
        if old.is_empty() {
            // A pure addition goes at the end, before a trailing blank line.
            let at = if lines.last().is_some_and(|l| l.is_empty()) {
                lines.len() - 1
            } else {
                lines.len()
            };
            let new = new.iter().map(|(text, _)| NewLine::Patch(text)).collect();
            replacements.push(Replacement {
                start: at,
                old_len: 0,
                new,
            });
            continue;
        }
        let mut pattern: &[&str] = &old;
        let mut new_block: &[(&str, Option<usize>)] = &new;
        let mut found = seek(lines, pattern, cursor, chunk.is_end_of_file);
        if found.is_none() && pattern.last().is_some_and(|l| l.is_empty()) {
            // The trailing empty line may stand for the file's final newline.
            pattern = &pattern[..pattern.len() - 1];
            if new_block.last().is_some_and(|(text, _)| text.is_empty()) {
                new_block = &new_block[..new_block.len() - 1];
            }
            found = seek(lines, pattern, cursor, chunk.is_end_of_file);
        }
        let Some(start) = found else {
            return Err(ApplyError::LinesNotFound {
                path: path.to_path_buf(),
                lines: old.join("\n"),
            });
        };
        let new = new_block
            .iter()
            .map(|&(text, old_at)| match old_at {
                Some(at) if at < pattern.len() => NewLine::Original(start + at),
                _ => NewLine::Patch(text),
            })
            .collect();
        replacements.push(Replacement {
            start,
            old_len: pattern.len(),
            new,
        });
        cursor = start + pattern.len();
    }
    Ok(replacements)
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
