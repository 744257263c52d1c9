//! `codex-lite exec` under the rules around a turn: the TypeScript SDK's API key and
//! originator, approvals nobody can answer, extra writable directories, warnings as the SDK's
//! error items, and terminal signals (the turn stops in order, no command outlives exec).

use std::process::Command;

use serde_json::{Value, json};

use super::cli_exec::{Setup, events, final_reply, reply_with_command, run_with_timeout, text};
use crate::support::TempDir;
use crate::support::mock_responses::*;

#[test]
fn the_sdk_api_key_and_originator_reach_the_openai_endpoint() {
    // What the SDK does with `apiKey` and `baseUrl`: CODEX_API_KEY and openai_base_url, with
    // the built-in provider; no auth.json is written.
    let home = TempDir::new("exec-home");
    let work = TempDir::new("exec-work");
    let mock = MockServer::start();
    mock.push(final_reply("hello"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_codex-lite"));
    command
        .args([
            "exec",
            "--experimental-json",
            "--skip-git-repo-check",
            "--config",
        ])
        .arg(format!("openai_base_url=\"{}\"", mock.url()))
        .current_dir(work.path())
        .env("CODEX_HOME", home.path())
        .env("CODEX_API_KEY", "sk-from-the-sdk")
        .env("CODEX_INTERNAL_ORIGINATOR_OVERRIDE", "codex_sdk_ts");
    let out = run_with_timeout(command, "hi");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let request = &mock.requests_to("/v1/responses")[0];
    assert_eq!(
        request.header("authorization"),
        Some("Bearer sk-from-the-sdk")
    );
    assert_eq!(request.header("originator"), Some("codex_sdk_ts"));
    assert!(!home.path().join("auth.json").exists());
}

#[test]
fn approvals_nobody_can_answer_are_declined() {
    let s = Setup::new();
    s.mock
        .push(sse(vec![
            ev_created("r1"),
            ev_function_call("call_1", "shell", &json!({"command": ["touch", "made-it"]})),
            ev_completed("r1"),
        ]))
        .push(final_reply("ok"));
    let out = s.exec(
        &[
            "--json",
            "--skip-git-repo-check",
            "-c",
            "approval_policy=\"untrusted\"",
            "--sandbox",
            "workspace-write",
        ],
        "touch it",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events = events(&out);
    let command = events
        .iter()
        .find(|e| e["type"] == "item.completed" && e["item"]["type"] == "command_execution")
        .unwrap();
    assert_eq!(command["item"]["status"], "failed");
    assert!(!s.work.path().join("made-it").exists());
    // Without a policy from -c, exec never asks: the command just runs.
    s.mock
        .push(sse(vec![
            ev_created("r1"),
            ev_function_call("call_1", "shell", &json!({"command": ["touch", "made-it"]})),
            ev_completed("r1"),
        ]))
        .push(final_reply("ok"));
    let out = s.exec(
        &[
            "--json",
            "--skip-git-repo-check",
            "--sandbox",
            "workspace-write",
        ],
        "touch",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(s.work.path().join("made-it").exists());
}

#[test]
fn add_dir_makes_another_directory_writable() {
    let s = Setup::new();
    let extra = TempDir::new_outside_tmp("exec-extra");
    let target = extra.path().join("written");
    let script = format!("echo x > {}", target.display());
    for add_dir in [false, true] {
        s.mock
            .push(reply_with_command("call_1", &script))
            .push(final_reply("ok"));
        let mut args = vec![
            "--json",
            "--skip-git-repo-check",
            "--sandbox",
            "workspace-write",
        ];
        let extra_path = extra.path().to_str().unwrap();
        if add_dir {
            args.extend(["--add-dir", extra_path]);
        }
        let out = s.exec(&args, "write");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(target.exists(), add_dir, "--add-dir given: {add_dir}");
    }
}

#[test]
fn warnings_are_error_items_in_json_mode() {
    let s = Setup::new();
    // A binary AGENTS.md is skipped with a warning (README: project instructions).
    std::fs::write(s.work.path().join("AGENTS.md"), b"rules\0\x01\x02").unwrap();
    s.mock.push(final_reply("ok"));
    let out = s.exec(&["--json", "--skip-git-repo-check"], "hi");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events = events(&out);
    let warnings: Vec<&Value> = events
        .iter()
        .filter(|e| e["item"]["type"] == "error")
        .collect();
    assert!(
        warnings.iter().any(|w| w["type"] == "item.completed"
            && w["item"]["message"].as_str().unwrap().contains("AGENTS.md")),
        "no warning about AGENTS.md: {events:?}"
    );
    assert_eq!(events.last().unwrap()["type"], "turn.completed");
}

/// Linux only: the checks read `/proc`.
#[cfg(target_os = "linux")]
mod signals {
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::{Setup, reply_with_command};

    #[test]
    fn terminal_signals_stop_the_turn_and_its_command() {
        // Ctrl-C, and the hangup of a closed terminal, reach the foreground process group.
        // Unsandboxed commands matter most: nothing but the server's shutdown stops them.
        for signal in [libc::SIGINT, libc::SIGHUP] {
            for sandbox in ["danger-full-access", "workspace-write"] {
                terminal_signal_stops_a_command(signal, sandbox);
            }
        }
    }

    fn terminal_signal_stops_a_command(signal: i32, sandbox: &str) {
        use std::os::unix::process::CommandExt;
        let s = Setup::new();
        let started = s.work.path().join("started");
        // A duration no other process uses, to find the command whatever pid namespace it is in.
        let duration = format!("60.{}{signal}{}", std::process::id(), sandbox.len());
        let script = format!("touch {}; exec sleep {duration}", started.display());
        s.mock.push(reply_with_command("call_1", &script));
        // As a terminal runs it: exec leads the foreground process group the terminal signals.
        let mut command = Command::new(env!("CARGO_BIN_EXE_codex-lite"));
        command.arg("exec");
        for kv in s.mock.provider_overrides() {
            command.args(["-c", &kv]);
        }
        let mut child = command
            .args(["--skip-git-repo-check", "--sandbox", sandbox, "sleep"])
            .current_dir(s.work.path())
            .env("CODEX_HOME", s.home.path())
            .env("MOCK_KEY", "test-key")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let is_running = || {
            let argv = format!("sleep\0{duration}\0");
            !crate::support::os::live_processes(|cmdline| cmdline == argv.as_bytes()).is_empty()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(started.exists() && is_running()) {
            assert!(Instant::now() < deadline, "the command never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pgid = i32::try_from(child.id()).unwrap();
        assert_eq!(unsafe { libc::kill(-pgid, signal) }, 0);
        let status = child.wait().unwrap();
        assert!(!status.success());
        // The app-server saw its stdin close, interrupted the turn and killed the command.
        let deadline = Instant::now() + Duration::from_secs(15);
        while is_running() {
            assert!(
                Instant::now() < deadline,
                "the command `sleep {duration}` ({sandbox}) outlived exec (signal {signal})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // In order, not killed by the signal too: the rollout records the turn as interrupted.
        let deadline = Instant::now() + Duration::from_secs(15);
        while !rollout_text(s.home.path()).contains("interrupted") {
            assert!(
                Instant::now() < deadline,
                "no interrupted turn in the rollout ({sandbox}, signal {signal}):\n{}",
                rollout_text(s.home.path())
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every rollout file under `home`, concatenated.
    fn rollout_text(home: &Path) -> String {
        fn walk(dir: &Path, out: &mut String) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "jsonl") {
                    out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
                }
            }
        }
        let mut out = String::new();
        walk(&home.join("sessions"), &mut out);
        out
    }
}
