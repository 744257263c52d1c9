//! What the server hands its sandboxed commands (hardening.md §1, §2), through the real binary and
//! `command/exec`, judged by outside effects: CODEX_HOME (auth.json, config, the helper directory
//! first on `PATH`) stays read-only whatever the policy, even when a writable root contains it or
//! is it; and a descriptor the server inherited from its own parent (an IDE's socket) does not
//! reach a sandboxed command (nor an unsandboxed one: `inherited_fds.rs`).
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};

use serde_json::json;

use super::inherited_fds::{FD, leaky_server, received};
use crate::support::TempDir;
use crate::support::app_server::AppServer;

/// Every entry under `dir` with what an attack could change: kind, content, link target, inode.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let what = if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            format!("dir {:o} {}", meta.mode(), meta.ino())
        } else if meta.file_type().is_symlink() {
            format!("link {:?}", std::fs::read_link(&path).unwrap())
        } else {
            format!(
                "file {:o} {:?}",
                meta.mode(),
                std::fs::read(&path).unwrap_or_default()
            )
        };
        out.push((path, what));
    }
    out.sort();
    out
}

#[test]
fn codex_home_stays_read_only_to_every_sandboxed_command_whatever_the_policy() {
    let ws = TempDir::new_outside_tmp("home-ro");
    let home = ws.path().join("codex-home");
    std::fs::create_dir(&home).unwrap();
    let mut server = AppServer::builder().codex_home(&home).spawn();
    server.initialize();
    std::fs::write(
        home.join("auth.json"),
        "{\"OPENAI_API_KEY\":\"sk-original\"}",
    )
    .unwrap();
    std::fs::write(home.join("config.toml"), "model = \"original\"\n").unwrap();
    let h = home.display();
    let script = format!(
        "d=$(dirname \"$(command -v apply_patch)\")
echo \"alias=$d\"
echo \"path=$PATH\"
echo x >> {h}/auth.json; echo x >> {h}/config.toml; touch {h}/planted
mkdir -p {h}/sessions/evil; touch \"$d/evil\"; ln -sf /bin/true \"$d/apply_patch\"
rm -f \"$d/applypatch\"; mv \"$d\" \"$d.moved\"; mv {h} {h}.moved
echo x > {ws}/allowed.txt
true",
        ws = ws.path().display()
    );
    let policies = [
        json!({"type": "readOnly"}),
        json!({"type": "workspaceWrite"}),
        json!({"type": "workspaceWrite", "writableRoots": [home]}),
        json!({"type": "workspaceWrite", "writableRoots": [home.join("tmp")]}),
    ];
    for policy in policies {
        let before = snapshot(&home);
        let result = server
            .call(
                "command/exec",
                json!({"command": ["sh", "-c", &script], "cwd": ws.path(), "sandboxPolicy": policy}),
            )
            .unwrap();
        let stdout = result["stdout"].as_str().unwrap();
        // The helper directory the server puts first on every command's PATH is in CODEX_HOME.
        let alias = stdout
            .lines()
            .find_map(|l| l.strip_prefix("alias="))
            .unwrap_or_default();
        assert!(alias.starts_with(&h.to_string()), "{policy}: {result}");
        assert!(
            stdout.contains(&format!("path={alias}:")),
            "{policy}: {result}"
        );
        let after = snapshot(&home);
        assert!(
            before == after,
            "{policy} changed CODEX_HOME: {result}\nbefore {before:?}\nafter {after:?}"
        );
        assert!(!ws.path().join("codex-home.moved").exists(), "{policy}");
        // The control: the same command did write where the policy allows it.
        let allowed = ws.path().join("allowed.txt");
        assert_eq!(
            allowed.exists(),
            policy["type"] == "workspaceWrite",
            "{policy}: {result}"
        );
        let _ = std::fs::remove_file(allowed);
    }
}

#[test]
fn descriptors_the_server_inherited_do_not_reach_sandboxed_commands() {
    let (mut server, mut host) = leaky_server(Vec::new());
    let cwd = TempDir::new_outside_tmp("leaky-cwd");
    let policies = [
        json!({"type": "readOnly"}),
        json!({"type": "workspaceWrite"}),
        json!({"type": "workspaceWrite", "networkAccess": true}),
    ];
    for policy in policies {
        let script = format!("echo sandboxed >&{FD}; ls /proc/self/fd");
        let result = server
            .call(
                "command/exec",
                json!({"command": ["sh", "-c", script], "cwd": cwd.path(), "sandboxPolicy": policy}),
            )
            .unwrap();
        assert_eq!(received(&mut host), "", "{policy}: {result}");
        // stdin, stdout, stderr and the listing's own descriptor.
        let listed: Vec<&str> = result["stdout"].as_str().unwrap().lines().collect();
        assert_eq!(listed, ["0", "1", "2", "3"], "{policy}: {result}");
    }
}
