//! The red team's filesystem classes (hardening.md §1): writing outside the writable roots, data
//! and metadata alike, and undoing or planting the read-only carve-outs (`.git` and what it
//! points to, `.codex`, `.agents`, CODEX_HOME). Judged by full snapshots (content, mode, owner,
//! times, xattrs, inode flags, link targets) taken outside before and after each attack.
#![cfg(target_os = "linux")]

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::redteam::{Arena, Probe, Who, policies, require_probe, users};

/// Everything an attack could change about one file system entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: PathBuf,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    ino: u64,
    nlink: u64,
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
    xattrs: Vec<u8>,
    flags: Option<i32>,
}

fn entry(path: &Path) -> Option<Entry> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 4096];
    // SAFETY: `names` is writable for its length; the path is NUL-terminated.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    names.truncate(usize::try_from(n).unwrap_or(0));
    let flags = (!meta.file_type().is_symlink())
        .then(|| {
            let fd = std::fs::File::options()
                .read(true)
                .custom_flags_nonblock()
                .open(path)
                .ok()?;
            let mut flags: libc::c_int = 0;
            // SAFETY: FS_IOC_GETFLAGS writes an int.
            let rc = unsafe {
                libc::ioctl(
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    0x8008_6601,
                    &mut flags,
                )
            };
            (rc == 0).then_some(flags)
        })
        .flatten();
    Some(Entry {
        path: path.to_path_buf(),
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ino: meta.ino(),
        nlink: meta.nlink(),
        content: meta.is_file().then(|| std::fs::read(path).unwrap()),
        link: std::fs::read_link(path).ok(),
        xattrs: names,
        flags,
    })
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
    }
}

/// Every entry beneath `path` (not following symlinks), sorted; `[]` when it does not exist.
fn tree(path: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Some(e) = entry(&p) else { continue };
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            for child in std::fs::read_dir(&p).unwrap() {
                stack.push(child.unwrap().path());
            }
        }
        out.push(e);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn trees(paths: &[PathBuf]) -> Vec<Entry> {
    paths.iter().flat_map(|p| tree(p)).collect()
}

/// What differs between two snapshots, shortly (contents by length only).
fn changes(before: &[Entry], after: &[Entry]) -> String {
    let short = |e: &Entry| {
        let mut e = e.clone();
        e.content = e.content.map(|c| c.len().to_le_bytes().to_vec());
        format!("{e:?}")
    };
    let gone = before.iter().filter(|e| !after.contains(e)).map(short);
    let new = after.iter().filter(|e| !before.contains(e)).map(short);
    format!(
        "before: {:?}\nafter: {:?}",
        gone.collect::<Vec<_>>(),
        new.collect::<Vec<_>>()
    )
}

fn s(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

#[test]
fn data_and_metadata_outside_the_roots_stay_unchanged() {
    require_probe!();
    for who in users() {
        let arena = Arena::new("outside", who, |_| {});
        let victim = s(&arena.outside.join("victim"));
        let control = arena.outside.join("control");
        std::fs::write(&control, "original\n").unwrap();
        arena.give_to_attacker();
        // The controls: unconfined, the attacker does change metadata.
        let before = entry(&control).unwrap();
        for action in ["chmod", "utimes", "setxattr"] {
            let run = arena.run_unconfined(&[action, &s(&control)]);
            assert!(run.is_ok(), "{} control {action}: {run:?}", who.label);
        }
        let after = entry(&control).unwrap();
        assert_ne!(before.mode, after.mode);
        assert_ne!(before.mtime, after.mtime);
        assert_ne!(before.xattrs, after.xattrs);
        let ws = |name: &str| s(&arena.ws.join(name));
        let attacks: Vec<Vec<String>> = [
            vec!["write", &victim],
            vec!["chmod", &victim],
            vec!["chown", &victim],
            vec!["chgrp-own", &victim],
            vec!["utimes", &victim],
            vec!["setxattr", &victim],
            vec!["setcap", &victim],
            vec!["chattr", &victim],
            vec!["truncate", &victim],
            vec!["reopen", &victim],
            vec!["link", &victim, &ws("hardlink")],
            vec!["rename", &victim, &ws("moved")],
            vec!["unlink", &victim],
            vec!["mkdir", &s(&arena.outside.join("new"))],
            vec!["chmod", &s(&arena.outside)],
            vec!["utimes", &s(&arena.outside)],
            vec!["symlink", &ws("through"), &victim],
            vec!["write", &ws("through")],
        ]
        .iter()
        .map(|a| a.iter().map(|s| s.to_string()).collect())
        .collect();
        for (label, policy) in policies() {
            for attack in &attacks {
                let args: Vec<&str> = attack.iter().map(String::as_str).collect();
                let before = tree(&arena.outside);
                let run = arena.run(&policy, &args);
                let after = tree(&arena.outside);
                assert!(
                    after == before,
                    "{} {label}: {args:?} changed the outside: {run:?}\n{}",
                    who.label,
                    changes(&before, &after)
                );
            }
        }
    }
}

/// The repositories and directories the carve-out attacks go after.
struct Repos {
    /// A repository with `.codex/`, whose root is the workspace.
    ws_git: PathBuf,
    /// The main repository of a linked worktree, and the worktree (a `.git` pointer file).
    main_git: PathBuf,
    worktree: PathBuf,
    gitdir: PathBuf,
    /// A checkout whose `.git` is a symlink to a git directory elsewhere.
    linked: PathBuf,
    real_git: PathBuf,
    /// A workspace without `.git`, `.codex` or `.agents`.
    empty: PathBuf,
}

fn git(cwd: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// The repository's `core.fsmonitor`, as git outside the sandbox would read it.
fn fsmonitor(repo: &Path) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "safe.directory=*",
            "config",
            "--get",
            "core.fsmonitor",
        ])
        .current_dir(repo)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn repos(base: &Path) -> Repos {
    let ws = base.join("ws");
    git(&ws, &["init", "-q"]);
    git(&ws, &["commit", "-q", "--allow-empty", "-m", "init"]);
    std::fs::create_dir(ws.join(".codex")).unwrap();
    std::fs::write(ws.join(".codex/config.toml"), "model = \"x\"\n").unwrap();
    let evil = ws.join("evil");
    std::fs::create_dir(&evil).unwrap();
    std::fs::write(
        evil.join("config"),
        "[core]\n\tfsmonitor = touch /tmp/pwned\n",
    )
    .unwrap();
    let main = base.join("main");
    std::fs::create_dir(&main).unwrap();
    git(&main, &["init", "-q"]);
    git(&main, &["commit", "-q", "--allow-empty", "-m", "init"]);
    git(&main, &["worktree", "add", "-q", "../wt"]);
    let worktree = base.join("wt");
    let pointer = std::fs::read_to_string(worktree.join(".git")).unwrap();
    let gitdir = PathBuf::from(pointer.trim().strip_prefix("gitdir: ").unwrap());
    let linked = base.join("linked");
    std::fs::create_dir(&linked).unwrap();
    git(&linked, &["init", "-q"]);
    let real_git = base.join("real.git");
    std::fs::rename(linked.join(".git"), &real_git).unwrap();
    std::os::unix::fs::symlink("../real.git", linked.join(".git")).unwrap();
    let empty = base.join("empty");
    std::fs::create_dir(&empty).unwrap();
    Repos {
        ws_git: ws.join(".git"),
        main_git: main.join(".git"),
        worktree,
        gitdir,
        linked,
        real_git,
        empty,
    }
}

fn workspace_write() -> Value {
    json!({"type": "workspace-write", "writable_roots": [], "network_access": false,
           "exclude_tmpdir_env_var": true, "exclude_slash_tmp": false})
}

/// Runs `attacks` in `cwd` under every policy and checks `watched` did not change.
fn assert_attacks_fail(
    arena: &Arena,
    who: Who,
    cwd: &Path,
    watched: &[PathBuf],
    attacks: &[Vec<String>],
) {
    for (label, policy) in policies() {
        for attack in attacks {
            let args: Vec<&str> = attack.iter().map(String::as_str).collect();
            let before = trees(watched);
            let run: Probe = super::redteam::collect(arena.sandboxed_in(cwd, &policy, &args));
            let after = trees(watched);
            assert!(
                after == before,
                "{} {label} in {}: {args:?} changed a carve-out: {run:?}\n{}",
                who.label,
                cwd.display(),
                changes(&before, &after)
            );
        }
    }
}

fn attack(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn carve_outs_cannot_be_written_remounted_moved_or_swapped() {
    require_probe!();
    for who in users() {
        let mut found = None;
        let arena = Arena::new("carve", who, |base| found = Some(repos(base)));
        let r = found.unwrap();
        let ws = &arena.ws;
        let p = |rel: &str| s(&ws.join(rel));
        let git = s(&r.ws_git);
        let attacks = [
            attack(&["write", &p(".git/config")]),
            attack(&["write", &p(".git/hooks/pre-commit")]),
            attack(&["write", &p(".codex/config.toml")]),
            attack(&["write", &p("codex-home/auth.json")]),
            attack(&["write", &p("codex-home/config.toml")]),
            attack(&["rename", &p("codex-home"), &p("moved-home")]),
            attack(&["mount-setattr", &git]),
            attack(&["open-tree", &git]),
            attack(&["umount", &git]),
            attack(&["remount", &git]),
            attack(&["fsopen", &git]),
            attack(&["userns-remount", &git]),
            attack(&["bind-over", &git, &p("evil")]),
            attack(&["rename", &git, &p("moved-git")]),
            attack(&["rename", &p(".codex"), &p("moved-codex")]),
            attack(&["link", &p(".git/config"), &p("config-link")]),
            attack(&["symlink", &p("through"), &p(".git/config")]),
            attack(&["write", &p("through")]),
            attack(&["chmod", &git]),
            attack(&["setxattr", &p(".git/config")]),
        ];
        let watched = [r.ws_git.clone(), ws.join(".codex"), arena.home.clone()];
        assert_attacks_fail(&arena, who, ws, &watched, &attacks);
        assert_eq!(fsmonitor(ws), "", "{}", who.label);
        // A linked worktree: its pointer file, its git dir and the main repository's hooks and
        // config (commondir).
        let main = s(&r.main_git);
        let attacks = [
            attack(&["write", &format!("{main}/config")]),
            attack(&["write", &format!("{main}/hooks/post-checkout")]),
            attack(&["write", &s(&r.gitdir.join("HEAD"))]),
            attack(&["write", &s(&r.worktree.join(".git"))]),
            attack(&[
                "rename",
                &s(&r.worktree.join(".git")),
                &s(&r.worktree.join("x")),
            ]),
        ];
        let watched = [r.main_git.clone(), r.worktree.join(".git")];
        assert_attacks_fail(&arena, who, &r.worktree, &watched, &attacks);
        // A symlinked .git: the link cannot be swapped, the directory it names not written.
        let link = s(&r.linked.join(".git"));
        let attacks = [
            attack(&["swap-symlink", &link, &p("evil")]),
            attack(&["unlink", &link]),
            attack(&["write", &s(&r.linked.join(".git/config"))]),
        ];
        let watched = [r.linked.join(".git"), r.real_git.clone()];
        assert_attacks_fail(&arena, who, &r.linked, &watched, &attacks);
        // The control: unconfined, the same write does change the repository.
        let before = tree(&r.ws_git);
        assert!(arena.run_unconfined(&["write", &p(".git/config")]).is_ok());
        assert!(tree(&r.ws_git) != before, "{}", who.label);
    }
}

#[test]
fn missing_git_codex_and_agents_cannot_be_created() {
    require_probe!();
    for who in users() {
        let mut found = None;
        let arena = Arena::new("plant", who, |base| found = Some(repos(base)));
        let empty = found.unwrap().empty;
        let p = |rel: &str| s(&empty.join(rel));
        let attacks = [
            attack(&["mkdir", &p(".git")]),
            attack(&["write", &p(".git/config")]),
            attack(&["mkdir", &p(".codex")]),
            attack(&["write", &p(".codex/config.toml")]),
            attack(&["mkdir", &p(".agents")]),
            attack(&["replant", &p(".git")]),
            attack(&["replant", &p(".codex")]),
            attack(&["symlink", &p(".git"), "/tmp"]),
            attack(&["write", &p(".agents")]),
        ];
        for (label, policy) in policies() {
            for attack in &attacks {
                let args: Vec<&str> = attack.iter().map(String::as_str).collect();
                let run = super::redteam::collect(arena.sandboxed_in(&empty, &policy, &args));
                let left: Vec<String> = std::fs::read_dir(&empty)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                assert!(
                    left.is_empty(),
                    "{} {label}: {args:?} planted {left:?}: {run:?}",
                    who.label
                );
            }
        }
        // The control: unconfined it plants one.
        assert!(arena.run_unconfined(&["mkdir", &p(".git")]).is_ok());
        assert!(empty.join(".git").is_dir());
    }
}

/// Removes a directory under `/tmp` when dropped.
struct TmpTree(PathBuf);

impl Drop for TmpTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_repository_under_a_writable_root_cannot_be_renamed_away_and_replaced() {
    require_probe!();
    for who in users() {
        let arena = Arena::new("rename", who, |_| {});
        // A repository two levels below /tmp, itself a writable root under workspace-write.
        let top = TmpTree(PathBuf::from(format!(
            "/tmp/codex-lite-redteam-{}-{}",
            std::process::id(),
            who.label
        )));
        let _ = std::fs::remove_dir_all(&top.0);
        let repo = top.0.join("sub/repo");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        let status = Command::new("chown")
            .args(["-R", &format!("{}:{}", who.uid, who.gid)])
            .arg(&top.0)
            .status()
            .unwrap();
        assert!(status.success());
        let ino = |p: &Path| std::fs::metadata(p).map(|m| m.ino()).ok();
        let (repo_ino, git_before) = (ino(&repo), tree(&repo.join(".git")));
        let attacks = [
            attack(&["rename", &s(&repo), &s(&top.0.join("sub/moved"))]),
            attack(&["rename", &s(&top.0.join("sub")), &s(&top.0.join("sub2"))]),
            attack(&["rename", &s(&top.0), &format!("{}-moved", top.0.display())]),
            attack(&["rename", &s(&repo.join(".git")), &s(&repo.join("old"))]),
        ];
        let policy = workspace_write();
        for attack in &attacks {
            let args: Vec<&str> = attack.iter().map(String::as_str).collect();
            let run = super::redteam::collect(arena.sandboxed_in(&repo, &policy, &args));
            assert_eq!(ino(&repo), repo_ino, "{} {args:?}: {run:?}", who.label);
            assert!(
                tree(&repo.join(".git")) == git_before,
                "{} {args:?}: .git changed",
                who.label
            );
        }
        // The control: unconfined the rename works.
        let moved = top.0.join("sub/moved");
        assert!(
            arena
                .run_unconfined(&["rename", &s(&repo), &s(&moved)])
                .is_ok()
        );
        assert!(moved.join(".git").is_dir());
    }
}
