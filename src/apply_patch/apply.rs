//! Applying a parsed [`Patch`] to files: the per-hunk rules (Add, Delete,
//! Update, Move), order and partial-failure semantics, path resolution, the
//! error texts, and the write-free preview of a patch as [`FileChange`]s
//! with unified diffs.
//!
//! Does not parse patch text (`parser.rs`), compute an updated file's text
//! (`update.rs`) or print anything (the CLI in `mod.rs` does).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::diff::{FILE_CHANGE_CONTEXT_LINES, unified_diff};
use super::parser::{Hunk, Patch};
use super::update::{strip_bom, updated_contents};

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

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
