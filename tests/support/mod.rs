//! Shared test machinery: spawning the real binary, the mock Responses server, temp dirs.

pub mod app_server;
pub mod mock_responses;
pub mod os;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under the target's tmp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory whose name starts with `prefix`, under the target's
    /// tmp dir.
    pub fn new(prefix: &str) -> Self {
        Self::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")), prefix)
    }

    /// Like [`TempDir::new`], but never beneath `/tmp` or `$TMPDIR` (writable roots of every
    /// workspace-write sandbox), for sandbox fixtures that must lie outside them whatever the
    /// checkout's location: the target's tmp dir when it qualifies, else `/var/tmp`.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // only the Linux sandbox suite
    pub fn new_outside_tmp(prefix: &str) -> Self {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let tmpdir = std::env::var_os("TMPDIR").map(std::path::PathBuf::from);
        let under_tmp = |p: &Path| {
            let p = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
            p.starts_with("/tmp") || tmpdir.as_ref().is_some_and(|t| p.starts_with(t))
        };
        if under_tmp(target) {
            let base = Path::new("/var/tmp/codex-lite-tests");
            std::fs::create_dir_all(base).unwrap();
            assert!(
                !under_tmp(base),
                "no test directory outside /tmp and $TMPDIR"
            );
            Self::new_in(base, prefix)
        } else {
            Self::new_in(target, prefix)
        }
    }

    fn new_in(base: &Path, prefix: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        // Canonical, so comparisons with paths the server reports hold.
        Self {
            path: path.canonicalize().unwrap(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
