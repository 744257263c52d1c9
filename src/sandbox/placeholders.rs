//! Placeholders for protected names that do not exist yet (`.git`, `.codex`, `.agents` beneath a
//! writable root), shared by every helper running at the same time.
//!
//! A read-only mount needs a mount point, so the helper creates an empty directory at the missing
//! path before entering its namespaces and removes it when the command is over, as the reference
//! does. Two commands may run in the same root at once, and removing a directory on the host
//! silently unmounts what another namespace mounted on it; so the directories are counted in a
//! small registry under CODEX_HOME (read-only to every command, so a command cannot forge it): one
//! `<pid>\t<hex path>` line per holder, changed under an exclusive `flock`. A directory goes when
//! its last live holder releases it, or, for holders that were killed, when the next helper finds
//! their pid gone. Only an empty directory is ever removed.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The registry's location under CODEX_HOME.
const REGISTRY_DIR: &str = "tmp/sandbox-placeholders";

/// The placeholders this helper holds; give them back with [`Held::release`].
#[derive(Debug)]
pub(crate) struct Held {
    dir: PathBuf,
    pid: u32,
    /// The placeholder directories held, which the namespace covers with read-only mounts.
    pub paths: Vec<PathBuf>,
}

/// One registry line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    pid: u32,
    path: PathBuf,
}

/// Creates (or joins) a placeholder directory for every path of `wanted` that is still missing,
/// recording this process as a holder. A wanted path that meanwhile exists for real is left out
/// (the caller protects it as an ordinary carve-out); one that cannot be created is left out too.
pub(crate) fn acquire(codex_home: &Path, wanted: &[PathBuf]) -> io::Result<Held> {
    let dir = codex_home.join(REGISTRY_DIR);
    std::fs::create_dir_all(&dir)?;
    let pid = std::process::id();
    let _lock = lock(&dir)?;
    let mut entries = prune(read(&dir));
    let mut paths = Vec::new();
    for path in wanted {
        let registered = entries.iter().any(|e| &e.path == path);
        let exists = std::fs::symlink_metadata(path).is_ok();
        let ours = if exists {
            // A placeholder of another live helper is joined; anything else is real.
            registered && path.is_dir()
        } else {
            create_placeholder(path)
        };
        if ours && !paths.contains(path) {
            paths.push(path.clone());
            entries.push(Entry {
                pid,
                path: path.clone(),
            });
        }
    }
    write(&dir, &entries)?;
    Ok(Held { dir, pid, paths })
}

impl Held {
    /// Gives the placeholders back: each one no other live helper holds is removed (if empty).
    pub(crate) fn release(self) {
        let Ok(_lock) = lock(&self.dir) else {
            return;
        };
        let entries: Vec<Entry> = prune(read(&self.dir))
            .into_iter()
            .filter(|e| e.pid != self.pid)
            .collect();
        for path in &self.paths {
            if !entries.iter().any(|e| &e.path == path) {
                let _ = std::fs::remove_dir(path);
            }
        }
        let _ = write(&self.dir, &entries);
    }
}

fn create_placeholder(path: &Path) -> bool {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o755).create(path).is_ok()
}

/// An exclusive `flock` on the registry, released when the file is dropped.
fn lock(dir: &Path) -> io::Result<File> {
    let file = File::options()
        .create(true)
        .append(true)
        .open(dir.join("lock"))?;
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Drops the entries of dead holders, removing their placeholders when nobody else holds them.
fn prune(entries: Vec<Entry>) -> Vec<Entry> {
    let (live, dead): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(|e| is_alive(e.pid));
    for entry in dead {
        if !live.iter().any(|e| e.path == entry.path) {
            let _ = std::fs::remove_dir(&entry.path);
        }
    }
    live
}

fn is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks whether the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

fn read(dir: &Path) -> Vec<Entry> {
    std::fs::read_to_string(dir.join("state"))
        .unwrap_or_default()
        .lines()
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Entry> {
    let (pid, hex) = line.split_once('\t')?;
    Some(Entry {
        pid: pid.parse().ok()?,
        path: PathBuf::from(OsString::from_vec(from_hex(hex)?)),
    })
}

fn write(dir: &Path, entries: &[Entry]) -> io::Result<()> {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&format!(
            "{}\t{}\n",
            entry.pid,
            to_hex(entry.path.as_os_str().as_bytes())
        ));
    }
    let tmp = dir.join("state.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join("state"))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "codex-lite-placeholders-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn lines_round_trip_any_path_bytes() {
        let path = PathBuf::from(OsString::from_vec(b"/a\tb\nc\xff".to_vec()));
        let entry = Entry { pid: 42, path };
        let line = format!("42\t{}", to_hex(entry.path.as_os_str().as_bytes()));
        assert_eq!(parse_line(&line), Some(entry));
        for bad in ["", "x\t00", "1\t0", "1\tzz", "1"] {
            assert_eq!(parse_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn placeholders_are_shared_and_removed_by_the_last_holder() {
        let s = Scratch::new("share");
        let home = s.0.join("home");
        let root = s.0.join("root");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        let wanted = vec![root.join(".codex"), root.join(".git"), root.join(".agents")];
        let held = acquire(&home, &wanted).unwrap();
        // The existing `.git` is real, not a placeholder.
        assert_eq!(held.paths, vec![root.join(".codex"), root.join(".agents")]);
        assert!(root.join(".codex").is_dir());
        // A second live holder (simulated with our parent's pid) of `.codex`.
        let other = std::os::unix::process::parent_id();
        let mut entries = read(&held.dir);
        entries.push(Entry {
            pid: other,
            path: root.join(".codex"),
        });
        write(&held.dir, &entries).unwrap();
        held.release();
        assert!(root.join(".codex").is_dir(), "still held by another helper");
        assert!(!root.join(".agents").exists());
        assert!(root.join(".git").is_dir());
        // A holder that died: the next helper cleans up after it.
        write(
            &home.join(REGISTRY_DIR),
            &[Entry {
                pid: u32::MAX,
                path: root.join(".codex"),
            }],
        )
        .unwrap();
        let next = acquire(&home, &[]).unwrap();
        assert!(!root.join(".codex").exists());
        next.release();
        assert!(read(&home.join(REGISTRY_DIR)).is_empty());
    }

    #[test]
    fn non_empty_placeholders_stay() {
        let s = Scratch::new("full");
        let root = s.0.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let held = acquire(&s.0.join("home"), &[root.join(".git")]).unwrap();
        std::fs::write(root.join(".git/HEAD"), "x").unwrap();
        held.release();
        assert!(root.join(".git/HEAD").exists());
    }
}
