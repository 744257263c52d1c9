//! The server process against a hostile world (hardening.md §2), through the real binary: a
//! steer flood during a long command, a client that closes its end of our stdout, termination
//! signals during a turn, a client that stops reading, an inherited ignored SIGCHLD, the command
//! environment. Every command these tests start writes its pid to a file, and each test checks
//! that none outlives the server.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::suite::turns::{finish_turn, last_turn, server_for, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::{AppServer, Transcript, test_name, wait_child};
use crate::support::mock_responses::*;

const BIN: &str = env!("CARGO_BIN_EXE_codex-lite");

/// A shell script that records its pid in `pidfile`, then sleeps for long.
fn sleeper(pidfile: &Path) -> String {
    format!("echo $$ > '{}'; exec sleep 60", pidfile.display())
}

/// The pid a command wrote to `pidfile`, waiting up to 10 s for it.
fn wait_pid(pidfile: &Path) -> libc::pid_t {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(pidfile)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid in {}", pidfile.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` still runs (a zombie does not count: it is dead, waiting for its parent).
fn is_running(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks existence.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Waits up to `timeout` for `pid` to be gone; kills it (so no test leaves it behind) and
/// returns false if it was not.
fn is_gone_within(pid: libc::pid_t, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !is_running(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling the test's own stray command.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    false
}

/// A thread whose commands run unsandboxed without approval, and a model that runs `script`.
fn turn_running(mock: &MockServer, server: &mut AppServer, script: &str) -> (String, String) {
    mock.push(sse(vec![
        ev_created("r1"),
        ev_function_call(
            "call-1",
            "shell",
            &json!({"command": ["sh", "-c", script], "timeout_ms": 120_000}),
        ),
        ev_completed("r1"),
    ]));
    let thread_id = start_thread(
        server,
        json!({"approvalPolicy": "never", "sandbox": "danger-full-access"}),
    );
    let turn_id = start_turn(server, &thread_id, "run it");
    server.take_matching("the command's item/started", |m| {
        m["method"] == "item/started" && m["params"]["item"]["type"] == "commandExecution"
    });
    (thread_id, turn_id)
}

#[test]
fn a_steer_flood_during_a_long_command_is_refused_and_interrupt_is_answered_at_once() {
    let mock = MockServer::start();
    let mut server = server_for(&mock);
    let dir = TempDir::new("steer-flood");
    let pidfile = dir.path().join("pid");
    let (thread_id, turn_id) = turn_running(&mock, &mut server, &sleeper(&pidfile));
    let pid = wait_pid(&pidfile);
    let steer = json!({
        "threadId": thread_id,
        "expectedTurnId": turn_id,
        "input": [{"type": "text", "text": "and also"}],
    });
    let sent = Instant::now();
    let ids: Vec<i64> = (0..200)
        .map(|_| server.request("turn/steer", steer.clone()))
        .collect();
    let interrupt = server.request(
        "turn/interrupt",
        json!({"threadId": thread_id, "turnId": turn_id}),
    );
    let answer = server.read_response(&json!(interrupt));
    let waited = sent.elapsed();
    assert_eq!(answer["result"], json!({}), "{answer}");
    assert!(
        waited < Duration::from_secs(3),
        "interrupt answered after {waited:?}"
    );
    let (mut accepted, mut refused) = (0, 0);
    for id in ids {
        let response = server.read_response(&json!(id));
        match response.get("error") {
            Some(error) => {
                assert_eq!(error["code"], -32001, "{response}");
                assert_eq!(error["message"], "Server overloaded; retry later.");
                refused += 1;
            }
            None => {
                assert_eq!(response["result"]["turnId"], turn_id.as_str());
                accepted += 1;
            }
        }
    }
    // The turn takes nothing while its command runs: the queue fills, the rest is refused.
    assert!(accepted > 0 && accepted < 64, "{accepted} accepted");
    assert_eq!(accepted + refused, 200);
    let messages = finish_turn(&mut server);
    assert_eq!(last_turn(&messages)["status"], "interrupted");
    assert!(
        is_gone_within(pid, Duration::from_secs(5)),
        "the command survived the interrupt"
    );
}

#[test]
fn termination_signals_during_a_turn_stop_it_kill_its_command_and_exit() {
    for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        let mock = MockServer::start();
        let mut server = server_for(&mock);
        let dir = TempDir::new("signal");
        let pidfile = dir.path().join("pid");
        turn_running(&mock, &mut server, &sleeper(&pidfile));
        let pid = wait_pid(&pidfile);
        let server_pid = libc::pid_t::try_from(server.pid()).unwrap();
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(server_pid, signal) }, 0);
        let status = server
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("still running 10 s after signal {signal}"));
        assert_eq!(status.code(), Some(0), "signal {signal}: {status:?}");
        assert!(
            is_gone_within(pid, Duration::from_secs(2)),
            "signal {signal}: the command outlived the server"
        );
        // Stopped cleanly: the turn was completed and flushed before the exit.
        let messages = finish_turn(&mut server);
        assert_eq!(
            last_turn(&messages)["status"],
            "interrupted",
            "signal {signal}"
        );
        let caught = format!("caught signal {signal}");
        let stderr = server.stderr_within(&caught, Duration::from_secs(10));
        assert!(stderr.contains(&caught), "{stderr}");
    }
}

/// A client driven by hand, for what the shared harness cannot do (close our stdout, spawn
/// with an odd signal state or environment).
struct RawClient {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: Option<BufReader<std::process::ChildStdout>>,
    transcript: Transcript,
    _home: TempDir,
}

impl RawClient {
    /// Spawns `codex-lite <global_args> app-server` after `configure` adjusted the command,
    /// and does the handshake.
    fn spawn(global_args: &[&str], configure: impl FnOnce(&mut Command)) -> Self {
        let home = TempDir::new("raw-home");
        let mut command = Command::new(BIN);
        command
            .args(global_args)
            .arg("app-server")
            .env("CODEX_HOME", home.path())
            .env_remove("OPENAI_API_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        configure(&mut command);
        let mut child = command.spawn().unwrap();
        let mut client = RawClient {
            stdin: child.stdin.take().unwrap(),
            stdout: Some(BufReader::new(child.stdout.take().unwrap())),
            child,
            transcript: Transcript::create(&test_name()),
            _home: home,
        };
        let init = client.call(
            0,
            "initialize",
            json!({"clientInfo": {"name": "raw", "version": "1"}}),
        );
        assert!(init.get("result").is_some(), "{init}");
        client.send(json!({"method": "initialized"}));
        client
    }

    fn send(&mut self, message: Value) {
        let line = message.to_string();
        self.transcript.record("in", &line);
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a request and reads up to its answer (notifications before it are skipped).
    fn call(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"id": id, "method": method, "params": params}));
        let stdout = self.stdout.as_mut().unwrap();
        loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "server closed stdout"
            );
            self.transcript.record("out", line.trim_end());
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
        }
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        wait_child(&mut self.child, timeout)
    }
}

impl Drop for RawClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_client_that_closes_our_stdout_is_gone_exit_within_5s_and_kill_every_command() {
    let dir = TempDir::new("client-gone");
    let mut client = RawClient::spawn(&[], |_| {});
    let unsandboxed = json!({"type": "dangerFullAccess"});
    // One command the client can name, one it cannot (no processId): both must die.
    for (n, process_id) in [(1, Some("named")), (2, None)] {
        let mut params = json!({
            "command": ["sh", "-c", sleeper(&dir.path().join(format!("pid{n}")))],
            "sandboxPolicy": unsandboxed,
            "disableTimeout": true,
        });
        if let Some(id) = process_id {
            params["processId"] = json!(id);
            params["streamStdoutStderr"] = json!(true);
        }
        client.send(json!({"id": n, "method": "command/exec", "params": params}));
    }
    let pids = [1, 2].map(|n| wait_pid(&dir.path().join(format!("pid{n}"))));
    // Close our read end; the server has nothing to write meanwhile.
    client.stdout.take();
    let closed = Instant::now();
    let status = client.wait_exit(Duration::from_secs(10));
    let took = closed.elapsed();
    assert!(
        status.is_some(),
        "server still running 10 s after losing its client"
    );
    assert!(took < Duration::from_secs(5), "exited after {took:?}");
    for pid in pids {
        assert!(
            is_gone_within(pid, Duration::from_secs(2)),
            "command {pid} outlived the server"
        );
    }
}

#[test]
fn an_inherited_ignored_sigchld_and_blocked_signals_do_not_break_commands() {
    let mut client = RawClient::spawn(&[], |command| {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGCHLD, libc::SIG_IGN);
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&mut all);
                libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
                Ok(())
            });
        }
    });
    let answer = client.call(
        1,
        "command/exec",
        json!({
            "command": ["sh", "-c", "echo hi; exit 3"],
            "sandboxPolicy": {"type": "dangerFullAccess"},
        }),
    );
    assert_eq!(answer["result"]["exitCode"], 3, "{answer}");
    assert_eq!(answer["result"]["stdout"], "hi\n", "{answer}");
    // Counts from outside saturate: a timeout past the end of time is no timeout, not a panic.
    let answer = client.call(
        2,
        "command/exec",
        json!({
            "command": ["true"],
            "timeoutMs": i64::MAX,
            "sandboxPolicy": {"type": "dangerFullAccess"},
        }),
    );
    assert_eq!(answer["result"]["exitCode"], 0, "{answer}");
    // SIGTERM still stops it: the inherited mask was cleared, ours catches it.
    let pid = libc::pid_t::try_from(client.child.id()).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = client.wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
}

#[test]
fn commands_get_our_environment_without_keys_secrets_and_tokens() {
    use std::os::unix::ffi::OsStrExt;
    let mut client = RawClient::spawn(&[], |command| {
        command
            .env("PLAIN_SETTING", "kept")
            .env("SERVICE_API_KEY", "sk-leak")
            .env("github_token", "ghp-leak")
            .env("DB_SECRET", "leak")
            .env("ODD_BYTES", std::ffi::OsStr::from_bytes(b"a\xffb"));
    });
    let answer = client.call(
        1,
        "command/exec",
        json!({"command": ["env"], "sandboxPolicy": {"type": "dangerFullAccess"}}),
    );
    let out = answer["result"]["stdout"].as_str().unwrap().to_string();
    assert!(out.contains("PLAIN_SETTING=kept\n"), "{out}");
    assert!(!out.contains("leak"), "{out}");
    // The byte that is not UTF-8 reached the command (the answer shows it as U+FFFD).
    assert!(out.contains("ODD_BYTES=a\u{FFFD}b\n"), "{out}");

    // The policy is configurable with the reference's keys.
    let mut configured = RawClient::spawn(
        &[
            "-c",
            "shell_environment_policy.inherit=\"core\"",
            "-c",
            "shell_environment_policy.set={CI=\"1\", MY_TOKEN=\"set-wins\"}",
        ],
        |command| {
            command.env("PLAIN_SETTING", "dropped by core");
        },
    );
    let answer = configured.call(
        1,
        "command/exec",
        json!({"command": ["env"], "sandboxPolicy": {"type": "dangerFullAccess"}}),
    );
    let out = answer["result"]["stdout"].as_str().unwrap().to_string();
    assert!(out.contains("CI=1\n"), "{out}");
    assert!(out.contains("MY_TOKEN=set-wins\n"), "{out}");
    assert!(!out.contains("PLAIN_SETTING"), "{out}");
    assert!(out.contains("PATH="), "{out}");
}

#[test]
fn a_client_that_stops_reading_holds_back_output_but_never_the_main_loop() {
    let dir = TempDir::new("slow-client");
    let mut client = RawClient::spawn(&[], |_| {});
    let unsandboxed = json!({"type": "dangerFullAccess"});
    // A command streaming 1 MiB chunks, counting them in a file: once its output fills what the
    // server queues for the client, the server stops reading it and the count stalls.
    let count = dir.path().join("count");
    let flood = format!(
        "echo $$ > '{}'; i=0; while [ $i -lt 400 ]; do head -c 1048576 /dev/zero; i=$((i+1)); \
         echo $i > '{}'; done",
        dir.path().join("flood.pid").display(),
        count.display()
    );
    client.send(json!({"id": 1, "method": "command/exec", "params": {
        "command": ["sh", "-c", flood], "processId": "flood", "streamStdoutStderr": true,
        "disableOutputCap": true, "sandboxPolicy": unsandboxed, "disableTimeout": true}}));
    // The client reads nothing from here on.
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = (0, Instant::now());
    loop {
        let now = read(&count);
        if now != last.0 {
            last = (now, Instant::now());
        } else if now > 0 && last.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(
            now < 400,
            "the whole flood went through: nothing held it back"
        );
        assert!(
            Instant::now() < deadline,
            "the flood never stalled ({now} MiB)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Output is held back now. The main loop still answers (its answers are queued over the
    // budget) and goes on to the next requests, the last of which runs a command.
    // More answers than the room the flood leaves (less than one of its chunks).
    for id in 100..2100 {
        client.send(json!({"id": id, "method": "thread/loaded/list", "params": {}}));
    }
    let marker = dir.path().join("marker");
    client.send(json!({"id": 3, "method": "command/exec", "params": {
        "command": ["sh", "-c", format!("echo $$ > '{}'", marker.display())],
        "sandboxPolicy": unsandboxed}}));
    wait_pid(&marker);
    assert!(read(&count) < 400);
    let flood = wait_pid(&dir.path().join("flood.pid"));
    drop(client);
    assert!(
        is_gone_within(flood, Duration::from_secs(10)),
        "the flood outlived the server"
    );
}
