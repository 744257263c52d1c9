//! `codex-lite exec` (interop.md §2) against the mock Responses server: the JSON event stream
//! the TypeScript SDK reads, the human-readable mode, resume, output schema, images, the
//! SDK's auth and originator, approvals nobody can answer, and the error cases.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// The longest an `exec` run may take in these tests.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// One CODEX_HOME, one workspace and one mock for a test's `exec` runs.
struct Setup {
    home: TempDir,
    work: TempDir,
    mock: MockServer,
}

impl Setup {
    fn new() -> Self {
        Self {
            home: TempDir::new("exec-home"),
            work: TempDir::new("exec-work"),
            mock: MockServer::start(),
        }
    }

    /// `exec` with the mock's provider overrides first, `args` after; `stdin` is the prompt.
    fn exec(&self, args: &[&str], stdin: &str) -> Output {
        self.exec_env(args, stdin, &[])
    }

    fn exec_env(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_codex-lite"));
        command.arg("exec");
        for kv in self.mock.provider_overrides() {
            command.args(["-c", &kv]);
        }
        command
            .args(args)
            .current_dir(self.work.path())
            .env("CODEX_HOME", self.home.path())
            .env("MOCK_KEY", "test-key")
            .env_remove("CODEX_API_KEY")
            .env_remove("CODEX_INTERNAL_ORIGINATOR_OVERRIDE")
            .envs(env.iter().copied());
        run_with_timeout(command, stdin)
    }
}

/// Runs `command` with `stdin` written and closed; kills it after [`EXEC_TIMEOUT`].
fn run_with_timeout(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let stderr = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + EXEC_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("exec did not finish within {EXEC_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writer.join().unwrap();
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// stdout's JSON lines.
fn events(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A reply with reasoning, a message and a `shell` call.
fn reply_with_command(call_id: &str, script: &str) -> Reply {
    sse(vec![
        ev_created("r1"),
        ev_reasoning_done("rs_1", "Look first", "enc"),
        ev_message_done("msg_0", "Let me look."),
        ev_function_call(call_id, "shell", &json!({"command": ["sh", "-c", script]})),
        ev_completed_usage("r1", 10, 4, 5, 2),
    ])
}

fn reply_with_patch(call_id: &str, patch: &str) -> Reply {
    sse(vec![
        ev_created("r2"),
        ev_custom_tool_call(call_id, "apply_patch", patch),
        ev_completed_usage("r2", 10, 4, 5, 2),
    ])
}

fn final_reply(text: &str) -> Reply {
    sse(vec![
        ev_created("r3"),
        ev_message_done("msg_1", text),
        ev_completed_usage("r3", 10, 4, 5, 2),
    ])
}

#[test]
fn json_mode_streams_the_sdk_events_of_a_turn() {
    let s = Setup::new();
    s.mock
        .push(reply_with_command("call_1", "echo hi; exit 3"))
        .push(reply_with_patch(
            "call_2",
            "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n",
        ))
        .push(final_reply("All done"));
    let out = s.exec(
        &[
            "--experimental-json",
            "--skip-git-repo-check",
            "--sandbox",
            "workspace-write",
        ],
        "do it",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events = events(&out);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            let item = e["item"]["type"]
                .as_str()
                .map(|t| format!(" {t}"))
                .unwrap_or_default();
            format!("{}{item}", e["type"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "thread.started",
            // `mock-model` is not in the catalog: a warning, as the reference gives one.
            "item.completed error",
            "turn.started",
            "item.completed reasoning",
            "item.completed agent_message",
            "item.started command_execution",
            "item.completed command_execution",
            "item.started file_change",
            "item.completed file_change",
            "item.completed agent_message",
            "turn.completed",
        ]
    );
    let thread_id = events[0]["thread_id"].as_str().unwrap();
    assert_eq!(
        events[3]["item"],
        json!({"id": "item_1", "type": "reasoning", "text": "Look first"})
    );
    assert_eq!(
        events[5]["item"],
        json!({"id": "item_3", "type": "command_execution", "command": "sh -c 'echo hi; exit 3'",
            "aggregated_output": "", "exit_code": null, "status": "in_progress"})
    );
    assert_eq!(
        events[6]["item"],
        json!({"id": "item_3", "type": "command_execution", "command": "sh -c 'echo hi; exit 3'",
            "aggregated_output": "hi\n", "exit_code": 3, "status": "failed"})
    );
    let added = s.work.path().join("hello.txt").display().to_string();
    assert_eq!(
        events[8]["item"],
        json!({"id": "item_4", "type": "file_change", "status": "completed",
            "changes": [{"path": added, "kind": "add"}]})
    );
    assert_eq!(events[9]["item"]["text"], "All done");
    assert_eq!(
        events[10]["usage"],
        json!({"input_tokens": 30, "cached_input_tokens": 12, "cache_write_input_tokens": 0,
            "output_tokens": 15, "reasoning_output_tokens": 6})
    );
    assert_eq!(
        std::fs::read_to_string(s.work.path().join("hello.txt")).unwrap(),
        "hello\n"
    );
    // The prompt came from stdin; the originator is exec's own.
    let first = &s.mock.requests_to("/v1/responses")[0];
    assert_eq!(first.header("originator"), Some("codex_exec"));
    assert!(first.text().contains("do it"));
    // An ordinary thread: the app-server lists it.
    let mut server = AppServer::builder()
        .codex_home(s.home.path())
        .configs(s.mock.provider_overrides())
        .spawn();
    server.initialize();
    let list = server.call("thread/list", json!({})).unwrap();
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == thread_id),
        "{list}"
    );
}

#[test]
fn human_mode_prints_progress_on_stderr_and_the_answer_on_stdout() {
    let s = Setup::new();
    s.mock
        .push(reply_with_command("call_1", "echo from-the-command"))
        .push(final_reply("The answer"));
    let last = s.work.path().join("last.txt");
    let out = s.exec(
        &[
            "--skip-git-repo-check",
            "-o",
            last.to_str().unwrap(),
            "the question",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "The answer\n");
    let stderr = text(&out.stderr);
    for needle in [
        "user: the question",
        "thinking: Look first",
        "command: sh -c 'echo from-the-command'",
        "    from-the-command",
        "(exit 0)",
        "codex: The answer",
        "turn completed; tokens: 20 in (8 cached), 10 out (4 reasoning)",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&last).unwrap(), "The answer");
    // The prompt argument wins; stdin is not read.
    assert!(
        s.mock.requests_to("/v1/responses")[0]
            .text()
            .contains("the question")
    );
}

#[test]
fn a_failed_turn_exits_1_with_turn_failed() {
    let s = Setup::new();
    s.mock
        .push(status(400, r#"{"error":{"message":"bad thing happened"}}"#));
    let out = s.exec(&["--json", "--skip-git-repo-check"], "hi");
    assert_eq!(out.status.code(), Some(1));
    let events = events(&out);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "turn.failed", "{events:?}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad thing happened")
    );
    assert!(events.iter().any(|e| e["type"] == "error"));
    // Human mode: the failure on stderr, nothing on stdout.
    s.mock
        .push(status(400, r#"{"error":{"message":"bad thing happened"}}"#));
    let out = s.exec(&["--skip-git-repo-check"], "hi");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("turn failed: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn resume_continues_the_thread_with_its_history() {
    let s = Setup::new();
    s.mock
        .push(final_reply("First answer"))
        .push(final_reply("Second answer"));
    let out = s.exec(&["--json", "--skip-git-repo-check"], "first question");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let thread_id = events(&out)[0]["thread_id"].as_str().unwrap().to_string();
    // The SDK's form: flags, then `resume <id>`, prompt on stdin.
    let out = s.exec(
        &["--json", "--skip-git-repo-check", "resume", &thread_id],
        "second question",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let resumed = events(&out);
    assert_eq!(
        resumed[0],
        json!({"type": "thread.started", "thread_id": thread_id})
    );
    assert_eq!(resumed.last().unwrap()["type"], "turn.completed");
    let second = s.mock.requests_to("/v1/responses")[1].text();
    for needle in ["first question", "First answer", "second question"] {
        assert!(
            second.contains(needle),
            "{needle} missing from the resumed request"
        );
    }
    // `resume --last` finds the same thread.
    s.mock.push(final_reply("Third answer"));
    let out = s.exec(
        &["--json", "--skip-git-repo-check", "resume", "--last"],
        "third",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(events(&out)[0]["thread_id"], thread_id.as_str());
}

#[test]
fn resume_of_an_unknown_thread_is_a_clear_error() {
    let s = Setup::new();
    let out = s.exec(
        &[
            "--json",
            "--skip-git-repo-check",
            "resume",
            "01a22d77-c0c5-7a81-a21f-ff925e370cc9",
        ],
        "hi",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot resume thread 01a22d77-c0c5-7a81-a21f-ff925e370cc9"),
        "{stderr}"
    );
    assert!(s.mock.requests_to("/responses").is_empty());
}

#[test]
fn output_schema_constrains_the_final_message() {
    let s = Setup::new();
    s.mock.push(final_reply(r#"{"answer":"yes"}"#));
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}},
        "required": ["answer"], "additionalProperties": false});
    let file = s.work.path().join("schema.json");
    std::fs::write(&file, schema.to_string()).unwrap();
    let out = s.exec(
        &[
            "--json",
            "--skip-git-repo-check",
            "--output-schema",
            file.to_str().unwrap(),
        ],
        "answer",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body = s.mock.requests_to("/v1/responses")[0].json();
    assert_eq!(
        body["text"]["format"],
        json!({"type": "json_schema", "name": "codex_output_schema", "strict": true, "schema": schema})
    );
    let events = events(&out);
    assert_eq!(
        events[events.len() - 2]["item"]["text"],
        r#"{"answer":"yes"}"#
    );
    // A schema that is not JSON stops before anything runs.
    std::fs::write(&file, "{not json").unwrap();
    let out = s.exec(
        &[
            "--json",
            "--skip-git-repo-check",
            "--output-schema",
            file.to_str().unwrap(),
        ],
        "answer",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not valid JSON"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn images_are_attached_and_an_unreadable_one_is_refused() {
    let s = Setup::new();
    s.mock.push(final_reply("I see a pixel"));
    let image = s.work.path().join("pixel.png");
    std::fs::write(&image, b"\x89PNG\r\n\x1a\nnot-really").unwrap();
    let out = s.exec(
        &[
            "--json",
            "--skip-git-repo-check",
            "--image",
            image.to_str().unwrap(),
        ],
        "what is this",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body = s.mock.requests_to("/v1/responses")[0].text();
    assert!(body.contains("\"input_image\""), "{body}");
    assert!(body.contains("data:image/png;base64,"), "{body}");

    let missing = s.work.path().join("missing.png");
    let out = s.exec(
        &[
            "--json",
            "--skip-git-repo-check",
            "--image",
            missing.to_str().unwrap(),
        ],
        "what is this",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot read image {}", missing.display())),
        "{stderr}"
    );
    assert_eq!(
        s.mock.requests_to("/responses").len(),
        1,
        "nothing was sent for the bad image"
    );
}

#[test]
fn input_errors_fail_before_anything_runs() {
    let s = Setup::new();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--json", "--skip-git-repo-check"], "", "no prompt"),
        (&["--json", "--skip-git-repo-check"], "  \n", "no prompt"),
        (&["--json", "--skip-git-repo-check", "-"], "", "no prompt"),
        (&["--json", "--cd", "/"], "hi", "pass --skip-git-repo-check"),
        (
            &["--json", "--skip-git-repo-check", "--cd", "/no/such/dir"],
            "hi",
            "cannot use --cd /no/such/dir",
        ),
    ];
    assert!(
        !Path::new("/.git").exists(),
        "this test needs / outside any Git repository"
    );
    for (args, stdin, needle) in cases {
        let out = s.exec(args, stdin);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let usage: &[(&[&str], &str)] = &[
        (&["--frobnicate"], "unexpected argument '--frobnicate'"),
        (&["--oss"], "'--oss' is not supported"),
        (&["--sandbox", "wide-open"], "invalid value 'wide-open'"),
    ];
    for (args, needle) in usage {
        let out = s.exec(args, "hi");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(s.mock.requests().is_empty());
}

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

#[cfg(target_os = "linux")]
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

#[cfg(target_os = "linux")]
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
        std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            let dir = entry.path();
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            // A zombie has ended; only its parent's reaping is left.
            let zombie = std::fs::read_to_string(dir.join("stat")).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            });
            cmdline == format!("sleep\0{duration}\0").as_bytes() && !zombie
        })
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
#[cfg(target_os = "linux")]
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
