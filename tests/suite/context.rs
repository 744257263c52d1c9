//! What the model is told beyond the user's words (context.md §1–2) and the warnings for what
//! we ignore (§3): AGENTS.md discovery, budget and odd files; the environment context and when
//! it is sent again; `configWarning` after `initialize`; `warning` for unhonoured params.

use std::path::Path;

use serde_json::{Value, json};

use super::turns::{finish_turn, server_for, start_thread};
use crate::support::TempDir;
use crate::support::app_server::{AppServer, Builder};
use crate::support::mock_responses::*;

/// A server for `mock` with extra `-c` overrides, CODEX_HOME at `home`, and env vars.
fn spawn(mock: &MockServer, home: &Path, configs: &[&str], env: &[(&str, &str)]) -> AppServer {
    let mut builder: Builder = AppServer::builder()
        .configs(mock.provider_overrides())
        .configs(configs.iter().map(|c| c.to_string()))
        .env("MOCK_KEY", "test-key")
        .codex_home(home);
    for (key, value) in env {
        builder = builder.env(key, *value);
    }
    let mut server = builder.spawn();
    server.initialize();
    server
}

/// Writes `bytes` at `dir/rel`, creating parents.
fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Makes `dir` the top of a git work tree (what discovery looks for).
fn git_init(dir: &Path) {
    write(dir, ".git/HEAD", b"ref: refs/heads/main\n");
}

/// Runs one turn answered "ok" and returns every message of it.
fn turn(server: &mut AppServer, mock: &MockServer, thread_id: &str, params: Value) -> Vec<Value> {
    mock.push(text_reply("r", "m", &["ok"]));
    let mut request = json!({"threadId": thread_id, "input": [{"type": "text", "text": "hi"}]});
    if let (Some(extra), Some(target)) = (params.as_object(), request.as_object_mut()) {
        target.extend(extra.clone());
    }
    server.call("turn/start", request).expect("turn/start");
    finish_turn(server)
}

/// The user-message texts of the last model request, message by message.
fn user_messages(mock: &MockServer) -> Vec<Vec<String>> {
    let requests = mock.requests_to("/v1/responses");
    let input = requests.last().unwrap().json()["input"].clone();
    input
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["role"] == "user")
        .map(|i| {
            i["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["text"].as_str().map(str::to_string))
                .collect()
        })
        .collect()
}

/// The context messages (instructions and/or environment) of the last request.
fn context_messages(mock: &MockServer) -> Vec<Vec<String>> {
    user_messages(mock)
        .into_iter()
        .filter(|parts| {
            parts.iter().any(|p| {
                p.starts_with("<environment_context>") || p.starts_with("# AGENTS.md instructions")
            })
        })
        .collect()
}

fn warnings(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["method"] == "warning")
        .map(|m| m["params"]["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn agents_md_from_the_git_root_down_to_a_subdirectory() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let repo = TempDir::new("ctx-repo");
    git_init(repo.path());
    write(home.path(), "AGENTS.md", b"GLOBAL rules\n");
    write(repo.path(), "AGENTS.md", b"ROOT rules\n");
    write(repo.path(), "sub/AGENTS.md", b"SUB rules\n");
    write(repo.path(), "sub/deeper/AGENTS.md", b"DEEPER plain\n");
    write(
        repo.path(),
        "sub/deeper/AGENTS.override.md",
        b"DEEPER override\n",
    );
    let cwd = repo.path().join("sub/deeper");
    let mut server = spawn(&mock, home.path(), &[], &[]);
    let thread_id = start_thread(&mut server, json!({"cwd": cwd}));

    turn(&mut server, &mock, &thread_id, json!({}));
    let contexts = context_messages(&mock);
    assert_eq!(contexts.len(), 1, "one context message: {contexts:?}");
    let parts = &contexts[0];
    assert_eq!(
        parts.len(),
        2,
        "instructions, then the environment: {parts:?}"
    );
    let docs = &parts[0];
    assert!(
        docs.starts_with(&format!("# AGENTS.md instructions for {}", cwd.display())),
        "{docs}"
    );
    let order: Vec<usize> = ["GLOBAL rules", "ROOT rules", "SUB rules", "DEEPER override"]
        .iter()
        .map(|needle| {
            docs.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing: {docs}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "root first: {docs}");
    assert!(!docs.contains("DEEPER plain"), "the override wins: {docs}");
    assert!(parts[1].starts_with("<environment_context>"));
    let user = user_messages(&mock);
    assert_eq!(
        user.last().unwrap(),
        &["hi"],
        "the context comes before the input"
    );

    turn(&mut server, &mock, &thread_id, json!({}));
    assert_eq!(context_messages(&mock).len(), 1, "not sent again unchanged");

    // Another cwd: instructions and environment again, for the new place.
    turn(&mut server, &mock, &thread_id, json!({"cwd": repo.path()}));
    let contexts = context_messages(&mock);
    assert_eq!(contexts.len(), 2);
    let again = &contexts[1];
    assert_eq!(again.len(), 2);
    assert!(
        again[0].contains("ROOT rules") && !again[0].contains("SUB rules"),
        "{}",
        again[0]
    );
    assert!(again[0].contains("supersede"), "{}", again[0]);
    assert!(again[1].contains(&format!("<cwd>{}</cwd>", repo.path().display())));
}

#[test]
fn the_budget_cuts_a_huge_file_and_names_it() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let repo = TempDir::new("ctx-budget");
    git_init(repo.path());
    write(repo.path(), "AGENTS.md", &[b'R'; 30]);
    let huge = repo.path().join("a/AGENTS.md");
    write(repo.path(), "a/AGENTS.md", &vec![b'A'; 8 * 1024 * 1024]);
    let mut server = spawn(&mock, home.path(), &["project_doc_max_bytes=50"], &[]);
    let thread_id = start_thread(&mut server, json!({"cwd": repo.path().join("a")}));
    let messages = turn(&mut server, &mock, &thread_id, json!({}));
    let warned = warnings(&messages);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains(&huge.display().to_string()),
        "{}",
        warned[0]
    );
    assert!(warned[0].contains("20 of 8388608 bytes"), "{}", warned[0]);
    let docs = &context_messages(&mock)[0][0];
    assert!(
        docs.contains(&format!(
            "{}\n\n{}\n</INSTRUCTIONS>",
            "R".repeat(30),
            "A".repeat(20)
        )),
        "{docs}"
    );
    let warning = messages.iter().find(|m| m["method"] == "warning").unwrap();
    assert_eq!(warning["params"]["threadId"], thread_id.as_str());
}

#[test]
fn zero_bytes_disables_project_instructions() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let repo = TempDir::new("ctx-zero");
    git_init(repo.path());
    write(repo.path(), "AGENTS.md", b"project rules\n");
    let mut server = spawn(&mock, home.path(), &["project_doc_max_bytes=0"], &[]);
    let thread_id = start_thread(&mut server, json!({"cwd": repo.path()}));
    turn(&mut server, &mock, &thread_id, json!({}));
    let contexts = context_messages(&mock);
    assert_eq!(contexts, [[contexts[0][0].clone()]], "the environment only");
    assert!(contexts[0][0].starts_with("<environment_context>"));
}

#[test]
fn a_binary_agents_md_is_skipped_with_a_warning() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let repo = TempDir::new("ctx-binary");
    git_init(repo.path());
    write(
        repo.path(),
        "AGENTS.md",
        b"\x7fELF\x02\x01\x01\x00\x00\x00binary\xff\xfe",
    );
    write(repo.path(), "CLAUDE.md", b"fallback text\n");
    let mut server = spawn(
        &mock,
        home.path(),
        &["project_doc_fallback_filenames=[\"CLAUDE.md\"]"],
        &[],
    );
    let thread_id = start_thread(&mut server, json!({"cwd": repo.path()}));
    let messages = turn(&mut server, &mock, &thread_id, json!({}));
    let warned = warnings(&messages);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("AGENTS.md") && warned[0].contains("not a text file"),
        "{}",
        warned[0]
    );
    let docs = &context_messages(&mock)[0][0];
    assert!(
        docs.contains("fallback text") && !docs.contains("ELF"),
        "{docs}"
    );
}

#[test]
fn without_a_git_root_only_the_cwd_file_counts() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    // Outside this checkout (a git work tree), in the system temp dir.
    let base = std::env::temp_dir().join(format!("codex-lite-nogit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    write(&base, "AGENTS.md", b"parent rules\n");
    write(&base, "x/AGENTS.md", b"cwd rules\n");
    let cwd = base.join("x").canonicalize().unwrap();
    let mut server = spawn(&mock, home.path(), &[], &[]);
    let thread_id = start_thread(&mut server, json!({"cwd": cwd}));
    turn(&mut server, &mock, &thread_id, json!({}));
    let docs = &context_messages(&mock)[0][0];
    assert!(
        docs.contains("cwd rules") && !docs.contains("parent rules"),
        "{docs}"
    );
    std::fs::remove_dir_all(base).unwrap();
}

/// TZif data of a fixed zone 14 hours east of UTC (no transitions, footer rule only).
fn plus14_tzif() -> Vec<u8> {
    fn header(out: &mut Vec<u8>, typecnt: u32) {
        out.extend_from_slice(b"TZif2");
        out.extend_from_slice(&[0; 15]);
        for n in [0, 0, 0, 0, typecnt, 4] {
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    let mut out = Vec::new();
    for _ in 0..2 {
        header(&mut out, 1);
        out.extend_from_slice(&(14 * 3600i32).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(b"+14\0");
    }
    out.extend_from_slice(b"\n<+14>-14\n");
    out
}

/// The `YYYY-MM-DD` date `offset` seconds east of UTC, now.
fn date_at_offset(offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = (now + offset).div_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The passwd shell name of this process's user, when /etc/passwd has the entry.
fn passwd_shell() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && f[2] == uid)
        .map(|f| f[6].rsplit('/').next().unwrap_or_default().to_string())
}

#[test]
fn environment_context_fields() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let zones = TempDir::new("zoneinfo");
    let zone_file = zones.path().join("zoneinfo/Test/Plus14");
    write(zones.path(), "zoneinfo/Test/Plus14", &plus14_tzif());
    let tz = format!(":{}", zone_file.display());
    let before = date_at_offset(14 * 3600);
    let mut server = spawn(
        &mock,
        home.path(),
        &[
            "sandbox_mode=\"workspace-write\"",
            "approval_policy=\"never\"",
        ],
        &[("TZ", tz.as_str()), ("SHELL", "/opt/not-the-login-shell")],
    );
    let cwd = TempDir::new("ctx-env");
    let thread_id = start_thread(&mut server, json!({"cwd": cwd.path()}));
    turn(&mut server, &mock, &thread_id, json!({}));
    let after = date_at_offset(14 * 3600);
    let env = context_messages(&mock)[0].last().unwrap().clone();
    assert!(
        env.contains(&format!("<cwd>{}</cwd>", cwd.path().display())),
        "{env}"
    );
    assert!(env.contains("<timezone>Test/Plus14</timezone>"), "{env}");
    assert!(
        env.contains(&format!("<current_date>{before}</current_date>"))
            || env.contains(&format!("<current_date>{after}</current_date>")),
        "the date 14 hours east of UTC ({before}): {env}"
    );
    assert!(
        !env.contains("not-the-login-shell"),
        "$SHELL is not used: {env}"
    );
    if cfg!(target_os = "linux") {
        match passwd_shell() {
            Some(shell) if !shell.is_empty() => {
                assert!(env.contains(&format!("<shell>{shell}</shell>")), "{env}")
            }
            _ => println!("skipped: no passwd entry to compare the shell with"),
        }
    }
    assert!(
        env.contains("<approval_policy>never</approval_policy>"),
        "{env}"
    );
    assert!(
        env.contains("<sandbox_mode>workspace-write</sandbox_mode>"),
        "{env}"
    );
    assert!(
        env.contains("<network_access>restricted</network_access>"),
        "{env}"
    );
    let order: Vec<usize> = [
        "<cwd>",
        "<shell>",
        "<current_date>",
        "<timezone>",
        "<approval_policy>",
    ]
    .iter()
    .map(|tag| env.find(tag).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{env}");
}

#[test]
fn environment_context_is_sent_again_only_when_it_changes() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let mut server = spawn(&mock, home.path(), &[], &[]);
    let thread_id = start_thread(&mut server, json!({}));
    turn(&mut server, &mock, &thread_id, json!({}));
    turn(&mut server, &mock, &thread_id, json!({}));
    assert_eq!(context_messages(&mock).len(), 1);
    turn(
        &mut server,
        &mock,
        &thread_id,
        json!({"approvalPolicy": "never"}),
    );
    let contexts = context_messages(&mock);
    assert_eq!(contexts.len(), 2, "{contexts:?}");
    assert!(contexts[1][0].contains("<approval_policy>never</approval_policy>"));
    turn(
        &mut server,
        &mock,
        &thread_id,
        json!({"approvalPolicy": "never"}),
    );
    assert_eq!(context_messages(&mock).len(), 2);
}

#[test]
fn resume_reads_the_instructions_again_and_sends_only_what_changed() {
    let mock = MockServer::start();
    let home = TempDir::new("codex-home");
    let repo = TempDir::new("ctx-resume");
    git_init(repo.path());
    write(repo.path(), "AGENTS.md", b"first version\n");
    let thread_id = {
        let mut server = spawn(&mock, home.path(), &[], &[]);
        let thread_id = start_thread(&mut server, json!({"cwd": repo.path()}));
        turn(&mut server, &mock, &thread_id, json!({}));
        thread_id
    };
    // Unchanged: nothing is sent again after a restart.
    {
        let mut server = spawn(&mock, home.path(), &[], &[]);
        server
            .call("thread/resume", json!({"threadId": thread_id}))
            .unwrap();
        turn(&mut server, &mock, &thread_id, json!({}));
        assert_eq!(context_messages(&mock).len(), 1);
    }
    // Edited meanwhile: the new instructions, and only them, on the next turn.
    write(repo.path(), "AGENTS.md", b"second version\n");
    let mut server = spawn(&mock, home.path(), &[], &[]);
    server
        .call("thread/resume", json!({"threadId": thread_id}))
        .unwrap();
    turn(&mut server, &mock, &thread_id, json!({}));
    let contexts = context_messages(&mock);
    assert_eq!(contexts.len(), 2, "{contexts:?}");
    assert_eq!(contexts[1].len(), 1, "instructions only: {:?}", contexts[1]);
    assert!(contexts[1][0].contains("second version"));
}

fn config_warnings(server: &mut AppServer) -> Vec<Value> {
    let mut found = Vec::new();
    while let Some(message) = server.read_message(std::time::Duration::from_millis(300)) {
        if message["method"] == "configWarning" {
            found.push(message);
        }
    }
    found
}

#[test]
fn one_config_warning_names_every_unknown_key() {
    let home = TempDir::new("codex-home");
    write(
        home.path(),
        "config.toml",
        b"model = \"m\"\nmystery_setting = 1\n[tools]\nupdate_plan = { enabled = true }\nbogus_tool = true\n",
    );
    let mut server = AppServer::builder()
        .codex_home(home.path())
        .config("another_unknown=2")
        .config("web_search=\"live\"")
        .spawn();
    server.initialize();
    let found = config_warnings(&mut server);
    assert_eq!(found.len(), 1, "{found:?}");
    let summary = found[0]["params"]["summary"].as_str().unwrap();
    for key in ["mystery_setting", "tools.bogus_tool", "another_unknown"] {
        assert!(
            summary.contains(&format!("`{key}`")),
            "{key} missing: {summary}"
        );
    }
    for known in ["`model`", "`web_search`", "`tools.update_plan`"] {
        assert!(!summary.contains(known), "{known} is known: {summary}");
    }
    assert!(
        summary.contains("config.toml") && summary.contains("(-c)"),
        "{summary}"
    );

    let clean = TempDir::new("codex-home");
    let mut server = AppServer::builder().codex_home(clean.path()).spawn();
    server.initialize();
    assert!(config_warnings(&mut server).is_empty());
}

#[test]
fn unhonoured_params_warn_once_per_thread() {
    let mock = MockServer::start();
    let mut server = server_for(&mock);
    let result = server
        .call(
            "thread/start",
            json!({"personality": "friendly", "approvalsReviewer": "auto_review",
                   "serviceName": null, "config": {"no_such_key": 1}}),
        )
        .unwrap();
    let thread_id = result["thread"]["id"].as_str().unwrap().to_string();
    let (_, _) = server.read_until("thread/started");
    let mut warned = Vec::new();
    for _ in 0..3 {
        let (warning, _) = server.read_until("warning");
        assert_eq!(warning["params"]["threadId"], thread_id.as_str());
        warned.push(warning["params"]["message"].as_str().unwrap().to_string());
    }
    for needle in ["`personality`", "approvalsReviewer", "`no_such_key`"] {
        assert!(
            warned.iter().any(|w| w.contains(needle)),
            "{needle}: {warned:?}"
        );
    }
    let mut per_turn = Vec::new();
    for _ in 0..2 {
        mock.push(text_reply("r", "m", &["ok"]));
        let params = json!({"threadId": thread_id, "input": [{"type": "text", "text": "x"}],
                            "collaborationMode": {"mode": "plan"}, "personality": "pragmatic"});
        server.call("turn/start", params).unwrap();
        per_turn.push(warnings(&finish_turn(&mut server)));
    }
    assert_eq!(
        per_turn[0].len(),
        1,
        "personality was reported already: {per_turn:?}"
    );
    assert!(
        per_turn[0][0].contains("`collaborationMode`"),
        "{per_turn:?}"
    );
    assert!(per_turn[1].is_empty(), "once per thread: {per_turn:?}");
}
