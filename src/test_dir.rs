//! Scratch directories for the unit tests (compiled only for `cargo test`).

use std::path::PathBuf;

/// A fresh directory `codex-lite-<name>-<pid>` under the system temp dir, removed on drop.
/// Names must be unique across the crate's tests: they run in parallel in one process.
pub(crate) struct Scratch(pub PathBuf);

impl Scratch {
    /// Creates (or empties) the directory.
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("codex-lite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        Self(dir)
    }

    /// [`Scratch::new`], its path canonical (the temp dir may sit behind a symlink).
    pub(crate) fn canonical(name: &str) -> Self {
        let mut scratch = Self::new(name);
        if let Ok(path) = std::fs::canonicalize(&scratch.0) {
            scratch.0 = path;
        }
        scratch
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
