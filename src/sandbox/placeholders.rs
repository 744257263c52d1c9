//! Placeholders for protected names that do not exist yet (`.git`, `.codex`, `.agents` beneath a
//! writable root), shared by every helper running at the same time, whoever runs it.
//!
//! A read-only mount needs a mount point, so the helper creates an empty directory at the missing
//! path before entering its namespaces, covers it with an empty read-only tmpfs inside them, and
//! removes it when the command is over, as the reference does. Several commands may use the same
//! placeholder at once (a shell call and a background session in one workspace; every command
//! with `/tmp` as a root), and removing a directory on the host silently unmounts what another
//! namespace mounted on it. So each helper holds a shared `flock` on the directory for its
//! command's lifetime, and removes it only when it can take the lock exclusively (nobody else
//! holds it) and it is still empty. A killed helper's lock goes with its process; the directory
//! it left is recognised (empty, sticky, no write permission: the mode placeholders are made
//! with) and cleaned up by the next helper that uses it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The mode placeholders are created with: sticky, read and search only. A real `.git`,
/// `.codex` or `.agents` directory is never like that.
const PLACEHOLDER_MODE: u32 = 0o1555;

/// The placeholders this helper holds; give them back with [`Held::release`].
#[derive(Debug, Default)]
pub(crate) struct Held {
    held: Vec<(PathBuf, File)>,
}

/// Creates (or joins) a placeholder directory for every path of `wanted` that is missing or a
/// placeholder already. A wanted path that exists for real is left out (the caller protects it as
/// an ordinary carve-out); so is one that cannot be created (its parent is read-only, say).
pub(crate) fn acquire(wanted: &[PathBuf]) -> Held {
    let held = wanted
        .iter()
        .filter_map(|path| hold(path).map(|file| (path.clone(), file)))
        .collect();
    Held { held }
}

impl Held {
    /// The placeholder directories held, to cover with read-only mounts.
    pub(crate) fn paths(&self) -> Vec<PathBuf> {
        self.held.iter().map(|(path, _)| path.clone()).collect()
    }

    /// Gives the placeholders back: each one nobody else holds is removed (if still empty).
    pub(crate) fn release(self) {
        for (path, file) in self.held {
            // SAFETY: flock on an fd we own.
            let alone =
                unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
            if alone && is_same(&file, &path) {
                let _ = std::fs::remove_dir(&path);
            }
        }
    }
}

/// Holds the placeholder at `path`, creating it when missing. `None` when `path` is real or
/// cannot be made a placeholder.
fn hold(path: &Path) -> Option<File> {
    // A bounded retry: another helper may remove the directory between our steps.
    for _ in 0..4 {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                use std::os::unix::fs::DirBuilderExt;
                match std::fs::DirBuilder::new()
                    .mode(PLACEHOLDER_MODE)
                    .create(path)
                {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(_) => return None,
                }
            }
            Err(_) => return None,
            Ok(meta) if !is_placeholder(&meta, path) => return None,
            Ok(_) => {}
        }
        let Ok(file) = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(path)
        else {
            continue;
        };
        // SAFETY: flock on an fd we own; a shared lock only waits for a remover's exclusive one.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH) } != 0 {
            return None;
        }
        // Locked: nobody removes it now. Still the directory at `path`, still a placeholder?
        if is_same(&file, path)
            && std::fs::symlink_metadata(path).is_ok_and(|meta| is_placeholder(&meta, path))
        {
            return Some(file);
        }
    }
    None
}

/// Whether `path` is a placeholder (another helper's, or one a killed helper left).
pub(crate) fn is_placeholder_at(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| is_placeholder(&meta, path))
}

/// Whether `meta` (of `path`) is a placeholder's: an empty directory with the placeholder mode's
/// marks (sticky, no write permission; the umask may have removed more).
fn is_placeholder(meta: &std::fs::Metadata, path: &Path) -> bool {
    meta.is_dir()
        && meta.mode() & 0o1000 != 0
        && meta.mode() & 0o222 == 0
        && std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

/// Whether `file` is still the directory found at `path`.
fn is_same(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_dir::Scratch;

    #[test]
    fn placeholders_are_shared_and_removed_by_the_last_holder() {
        let s = Scratch::new("placeholders-share");
        let root = s.0.join("root");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        let wanted = vec![root.join(".codex"), root.join(".git"), root.join(".agents")];
        let first = acquire(&wanted);
        // The existing `.git` is real, not a placeholder.
        assert_eq!(
            first.paths(),
            vec![root.join(".codex"), root.join(".agents")]
        );
        let meta = std::fs::metadata(root.join(".codex")).unwrap();
        assert!(is_placeholder(&meta, &root.join(".codex")));
        // A second helper joins `.codex` (a separate open file, as in another process).
        let second = acquire(&[root.join(".codex")]);
        assert_eq!(second.paths(), vec![root.join(".codex")]);
        first.release();
        assert!(
            root.join(".codex").is_dir(),
            "still held by the second helper"
        );
        assert!(!root.join(".agents").exists());
        assert!(root.join(".git").is_dir());
        second.release();
        assert!(!root.join(".codex").exists());
    }

    #[test]
    fn a_placeholder_left_by_a_killed_helper_is_reused_then_removed() {
        let s = Scratch::new("placeholders-stale");
        let stale = s.0.join(".agents");
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(PLACEHOLDER_MODE)
                .create(&stale)
                .unwrap();
        }
        let held = acquire(std::slice::from_ref(&stale));
        assert_eq!(held.paths(), vec![stale.clone()]);
        held.release();
        assert!(!stale.exists());
    }

    #[test]
    fn real_directories_and_non_empty_placeholders_stay() {
        let s = Scratch::new("placeholders-real");
        let real = s.0.join(".codex");
        std::fs::create_dir(&real).unwrap();
        assert!(acquire(std::slice::from_ref(&real)).paths().is_empty());
        let git = s.0.join(".git");
        let held = acquire(std::slice::from_ref(&git));
        // Root may write into it despite the mode; the user put something there meanwhile.
        std::fs::set_permissions(&git, std::os::unix::fs::PermissionsExt::from_mode(0o1755))
            .unwrap();
        std::fs::write(git.join("HEAD"), "x").unwrap();
        held.release();
        assert!(git.join("HEAD").exists());
        assert!(real.is_dir());
    }
}
