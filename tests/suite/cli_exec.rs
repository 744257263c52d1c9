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
pub(super) struct Setup {
    pub(super) home: TempDir,
    pub(super) work: TempDir,
    pub(super) mock: MockServer,
}

impl Setup {
    pub(super) fn new() -> Self {
        Self {
            home: TempDir::new("exec-home"),
            work: TempDir::new("exec-work"),
            mock: MockServer::start(),
        }
    }

    /// `exec` with the mock's provider overrides first, `args` after; `stdin` is the prompt.
    pub(super) fn exec(&self, args: &[&str], stdin: &str) -> Output {
        self.exec_env(args, stdin, &[])
    }

    pub(super) fn exec_env(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
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
pub(super) fn run_with_timeout(mut command: Command, stdin: &str) -> Output {
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
pub(super) fn events(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A reply with reasoning, a message and a `shell` call.
pub(super) fn reply_with_command(call_id: &str, script: &str) -> Reply {
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

pub(super) fn final_reply(text: &str) -> Reply {
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
    // A thread like any other, recorded as Codex records exec's: the app-server lists it
    // when asked for exec threads (thread_provenance.rs has the rest).
    let mut server = AppServer::builder()
        .codex_home(s.home.path())
        .configs(s.mock.provider_overrides())
        .spawn();
    server.initialize();
    let list = server
        .call("thread/list", json!({"sourceKinds": ["exec"]}))
        .unwrap();
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == thread_id && t["source"] == "exec"),
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
