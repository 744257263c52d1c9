//! The private directory of apply_patch.md §4: `apply_patch`, `applypatch` and (on Linux)
//! `codex-linux-sandbox` links to our executable, prepended to every child's `PATH`, so a model
//! that types `apply_patch` reaches our implementation.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Env, env::find_name, sys};

/// The private directory of apply_patch.md §4. Mode 0700 on Unix, under
/// `CODEX_HOME/tmp/path/` (never the shared temp dir); removed on drop.
#[derive(Debug)]
pub struct AliasDir {
    path: PathBuf,
}

/// The names linked in the alias directory (plus the platform's executable suffix).
pub(super) const ALIASES: &[&str] = &[
    "apply_patch",
    "applypatch",
    #[cfg(target_os = "linux")]
    crate::sandbox::linux::HELPER_ARG0,
];

impl AliasDir {
    /// Creates a fresh alias directory under `codex_home` (removing ones left behind by dead
    /// processes first).
    pub fn create(codex_home: &Path) -> Result<AliasDir> {
        let exe = std::env::current_exe().context("locating our own executable")?;
        let parent = codex_home.join("tmp").join("path");
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        remove_stale(&parent);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = parent.join(format!("{}-{nanos}", std::process::id()));
        sys::create_private_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        let dir = AliasDir { path };
        for name in ALIASES {
            let link = dir
                .path
                .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            sys::link_executable(&exe, &link)
                .with_context(|| format!("creating {}", link.display()))?;
        }
        Ok(dir)
    }

    /// The directory's path.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts the directory in front of `env`'s `PATH` (or makes it the whole `PATH` when unset).
    pub fn prepend_to_path(&self, env: &mut Env) {
        let key = find_name(env, "PATH").unwrap_or_else(|| OsString::from("PATH"));
        let mut path = self.path.as_os_str().to_os_string();
        match env.get(&key) {
            Some(old) if !old.is_empty() => {
                path.push(OsStr::new(sys::PATH_LIST_SEPARATOR));
                path.push(old);
            }
            _ => {}
        }
        env.insert(key, path);
    }
}

impl Drop for AliasDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes alias directories (`<pid>-<nanos>`) whose process no longer exists.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name: OsString = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        let Some(pid) = pid.filter(|p| *p > 0) else {
            continue;
        };
        if !sys::is_process_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
