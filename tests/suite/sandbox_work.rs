//! What users rely on keeps working under workspace-write with the hardened helper (issue 15's
//! "done when"): compiling and running a program, temp files in `/tmp` and `$TMPDIR`, pipes,
//! background jobs, socket pairs, reading git history — as root and as nobody; and `git commit`
//! through the normal tools: the sandboxed attempt is refused (`.git` stays read-only, hooks and
//! config with it), the approval flow offers the re-run, and the commit lands.
#![cfg(target_os = "linux")]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::redteam::{Arena, users};
use super::turns::{finish_turn, server_for, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::mock_responses::*;

const BIN: &str = env!("CARGO_BIN_EXE_codex-lite");

fn git(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn builds_temp_files_pipes_jobs_and_socket_pairs_work() {
    // A C compiler is a prerequisite of the tests (README, "Tests and CI"): no quiet skip.
    assert!(
        Command::new("cc").arg("--version").output().is_ok(),
        "this test builds C in the sandbox and needs `cc` (Debian: apt-get install gcc)"
    );
    for who in users() {
        let arena = Arena::new("work", who, |base| {
            let ws = base.join("ws");
            git(&ws, &["init", "-q"]);
            std::fs::write(
                ws.join("hello.c"),
                "#include <stdio.h>\nint main(void) { puts(\"built\"); return 0; }\n",
            )
            .unwrap();
            git(&ws, &["add", "hello.c"]);
            git(&ws, &["commit", "-q", "-m", "hello"]);
        });
        let tmpdir = arena.dir.path().join("tmpdir");
        std::fs::create_dir(&tmpdir).unwrap();
        arena.give_to_attacker();
        let script = "set -e
cc -o hello hello.c && ./hello
t=$(mktemp) && echo temp > \"$t\" && cat \"$t\" && rm \"$t\"
t=$(mktemp -p \"$TMPDIR\") && echo tmpdir > \"$t\" && cat \"$t\"
seq 1 1000 | sort -rn | head -1
sleep 0.1 & wait $!
echo background done
python3 -c 'import socket; a, b = socket.socketpair(); a.sendall(b\"pair\"); print(b.recv(4).decode())'
git -c safe.directory='*' log --oneline | grep -c hello
git -c safe.directory='*' status --short hello.c | wc -l
";
        let policy = json!({"type": "workspace-write", "writable_roots": [], "network_access": false,
                            "exclude_tmpdir_env_var": false, "exclude_slash_tmp": false});
        let mut cmd = Command::new(BIN);
        cmd.arg0("codex-linux-sandbox")
            .arg("--sandbox-policy-cwd")
            .arg(&arena.ws)
            .arg("--sandbox-policy")
            .arg(policy.to_string())
            .args(["--", "sh", "-c", script])
            .current_dir(&arena.ws)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", arena.dir.path())
            .env("TMPDIR", &tmpdir)
            .env("CODEX_HOME", &arena.home)
            .stdin(Stdio::null());
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            cmd.uid(who.uid).gid(who.gid);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {stdout}\n{}",
            who.label,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout, "built\ntemp\ntmpdir\n1000\nbackground done\npair\n1\n0\n",
            "{}",
            who.label
        );
        assert!(arena.ws.join("hello").exists());
    }
}

/// The shell call `args` as one function-call reply.
fn shell_call(call_id: &str, args: Value) -> Reply {
    sse(vec![
        ev_created("r_call"),
        ev_function_call(call_id, "shell", &args),
        ev_completed("r_call"),
    ])
}

#[test]
fn git_commit_goes_through_the_approval_flow_and_lands() {
    let repo = TempDir::new_outside_tmp("work-commit");
    git(repo.path(), &["init", "-q"]);
    git(
        repo.path(),
        &["commit", "-q", "--allow-empty", "-m", "init"],
    );
    std::fs::write(repo.path().join("file.txt"), "change\n").unwrap();
    let git_dir = repo.path().join(".git");
    let config_before = std::fs::read(git_dir.join("config")).unwrap();
    let mock = MockServer::start();
    mock.push(shell_call(
        "c1",
        json!({"command": ["sh", "-c", "git add file.txt && git -c user.name=t -c user.email=t@example.com commit -q -m agent"]}),
    ));
    mock.push(text_reply("r", "m", &["committed"]));
    let mut server = server_for(&mock);
    let thread_id = start_thread(
        &mut server,
        json!({"approvalPolicy": "untrusted", "sandbox": "workspace-write", "cwd": repo.path()}),
    );
    start_turn(&mut server, &thread_id, "commit it");
    let (first, _) = server.read_until("item/commandExecution/requestApproval");
    server.answer(&first["id"], json!({"decision": "accept"}));
    // Sandboxed, git cannot write its index: refused, and the user is asked to re-run it.
    let (second, before) = server.read_until("item/commandExecution/requestApproval");
    assert_eq!(
        second["params"]["reason"],
        "command failed; retry without sandbox?"
    );
    let denied: String = before
        .iter()
        .filter(|m| m["method"] == "item/commandExecution/outputDelta")
        .map(|m| m["params"]["delta"].as_str().unwrap_or_default())
        .collect();
    assert!(denied.contains("Read-only file system"), "{denied}");
    assert_eq!(git(repo.path(), &["log", "--oneline"]).lines().count(), 1);
    assert_eq!(
        std::fs::read(git_dir.join("config")).unwrap(),
        config_before
    );
    server.answer(&second["id"], json!({"decision": "accept"}));
    let messages = finish_turn(&mut server);
    assert!(messages.iter().any(|m| m["method"] == "turn/completed"));
    let log = git(repo.path(), &["log", "--oneline"]);
    assert!(log.lines().next().unwrap().ends_with("agent"), "{log}");
}
