//! Shared test machinery: spawning the real binary, the mock Responses server, temp dirs.

pub mod app_server;
pub mod mcp_http_mock;
pub mod mock_responses;
pub mod os;
pub mod python;

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

/// The pid, as this process sees it, of the process that has pid `inner` inside the sandbox whose
/// helper command line names `marker` (a path only that command mentions): the Linux sandbox
/// runs each command in its own PID namespace, where `$$` means nothing outside. `None` when no
/// such sandbox runs any more (the process is gone).
#[cfg(target_os = "linux")]
pub fn host_pid(marker: &Path, inner: u32) -> Option<u32> {
    use std::os::unix::ffi::OsStrExt;
    let marker = marker.as_os_str().as_bytes();
    let procs: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    // The last NSpid entry is the pid in the process's own namespace, the first ours.
    let ns_pids = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let pid_ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let init = procs.iter().copied().find(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmdline.starts_with(b"codex-linux-sandbox\0")
            && cmdline.windows(marker.len()).any(|w| w == marker)
            && ns_pids(*pid).last() == Some(&1)
    })?;
    let ns = pid_ns(init)?;
    procs.into_iter().find(|pid| {
        let ids = ns_pids(*pid);
        ids.len() > 1 && ids.last() == Some(&inner) && pid_ns(*pid).as_ref() == Some(&ns)
    })
}
