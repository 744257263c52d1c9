//! What the server hands its sandboxed commands (hardening.md §1, §2), through the real binary and
//! `command/exec`, judged by outside effects: CODEX_HOME (auth.json, config, the helper directory
//! first on `PATH`) stays read-only whatever the policy, even when a writable root contains it or
//! is it; and a descriptor the server inherited from its own parent (an IDE's socket) does not
//! reach a sandboxed command.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TempDir;
use crate::support::app_server::{AppServer, Transcript, test_name};

const BIN: &str = env!("CARGO_BIN_EXE_codex-lite");

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

/// A server spawned by hand with one end of a socket pair inherited as descriptor `fd` (what an
/// IDE that leaks a descriptor does to us).
struct LeakyParent {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    transcript: Transcript,
    _home: TempDir,
}

impl LeakyParent {
    fn spawn(leaked: &UnixStream, fd: i32) -> LeakyParent {
        let home = TempDir::new("leaky-home");
        let raw = leaked.as_raw_fd();
        let mut command = Command::new(BIN);
        command
            .arg("app-server")
            .env("CODEX_HOME", home.path())
            .env_remove("OPENAI_API_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // SAFETY: dup2 is async-signal-safe; the new descriptor is not close-on-exec.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(raw, fd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().unwrap();
        let mut parent = LeakyParent {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            transcript: Transcript::create(&test_name()),
            _home: home,
        };
        let init = parent.call(
            0,
            "initialize",
            json!({"clientInfo": {"name": "leaky", "version": "1"}}),
        );
        assert!(init.get("result").is_some(), "{init}");
        parent.send(json!({"method": "initialized"}));
        parent
    }

    fn send(&mut self, message: Value) {
        let line = message.to_string();
        self.transcript.record("in", &line);
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn call(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "server gone");
            self.transcript.record("out", line.trim_end());
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
        }
    }
}

impl Drop for LeakyParent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What reached the host's end of the socket within a moment.
fn received(host: &mut UnixStream) -> String {
    host.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 256];
    match host.read(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(_) => String::new(),
    }
}

#[test]
fn descriptors_the_server_inherited_do_not_reach_sandboxed_commands() {
    const FD: i32 = 9;
    let (mut host, leaked) = UnixStream::pair().unwrap();
    let mut server = LeakyParent::spawn(&leaked, FD);
    drop(leaked);
    let cwd = TempDir::new_outside_tmp("leaky-cwd");
    let run = |server: &mut LeakyParent, id: i64, policy: Value, word: &str| {
        let script = format!("echo {word} >&{FD}; ls /proc/self/fd");
        server.call(
            id,
            "command/exec",
            json!({"command": ["sh", "-c", script], "cwd": cwd.path(), "sandboxPolicy": policy}),
        )
    };
    // The control: unconfined, the command does reach the host through the descriptor.
    let answer = run(&mut server, 1, json!({"type": "dangerFullAccess"}), "full");
    assert_eq!(received(&mut host), "full\n", "{answer}");
    let policies = [
        json!({"type": "readOnly"}),
        json!({"type": "workspaceWrite"}),
        json!({"type": "workspaceWrite", "networkAccess": true}),
    ];
    for (id, policy) in (2..).zip(policies) {
        let answer = run(&mut server, id, policy.clone(), "sandboxed");
        assert_eq!(received(&mut host), "", "{policy}: {answer}");
        // stdin, stdout, stderr and the listing's own descriptor.
        let listed: Vec<&str> = answer["result"]["stdout"]
            .as_str()
            .unwrap()
            .lines()
            .collect();
        assert_eq!(listed, ["0", "1", "2", "3"], "{policy}: {answer}");
    }
}
