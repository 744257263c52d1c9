//! What a thread says about where it comes from (issue 13): the version that created it
//! (`Thread.cliVersion`, the rollout's `session_meta.cli_version`) and its source (`vscode` for
//! app-server threads, `exec` for `codex-lite exec`'s, as Codex records its own), the same in
//! every answer and on disk, for our threads and for Codex's.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::cli_exec::{Setup, events};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// What our threads report: the Codex version whose format we write, ours as build metadata.
const OURS: &str = concat!("0.169.0+codex-lite.", env!("CARGO_PKG_VERSION"));
/// A thread Codex 0.169.0 wrote (the `plain` fixture).
const CODEX_PLAIN: &str = "01a22d40-c305-7e90-a00f-09559d100346";

/// Every rollout file under `home/sessions`.
fn rollouts(home: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), out);
            } else if entry.path().extension().is_some_and(|e| e == "jsonl") {
                out.push(entry.path());
            }
        }
    }
    let mut out = Vec::new();
    walk(&home.join("sessions"), &mut out);
    out
}

/// The `session_meta` payload of thread `id`'s rollout under `home`.
fn session_meta(home: &Path, id: &str) -> Value {
    let path = rollouts(home)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(&format!("{id}.jsonl")))
        .unwrap_or_else(|| panic!("no rollout for {id}"));
    let text = std::fs::read_to_string(&path).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "session_meta", "{first}");
    first["payload"].clone()
}

fn listed(server: &mut AppServer, id: &str, params: Value) -> Option<Value> {
    let list = server.call("thread/list", params).unwrap();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
}

#[test]
fn our_threads_report_one_version_everywhere_and_codex_threads_keep_theirs() {
    let mock = MockServer::start();
    let home = TempDir::new("provenance-home");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rollouts/codex-0.169.0/sessions/2026/11/30")
        .join(format!("rollout-2026-11-30T16-19-08-{CODEX_PLAIN}.jsonl"));
    let day = home.path().join("sessions/2026/11/30");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::copy(&fixture, day.join(fixture.file_name().unwrap())).unwrap();

    let mut server = server_in(&mock, home.path());
    let started = server
        .call("thread/start", json!({"cwd": home.path()}))
        .unwrap();
    let id = started["thread"]["id"].as_str().unwrap().to_string();
    assert_eq!(started["thread"]["cliVersion"], OURS);
    assert_eq!(started["thread"]["source"], "vscode");
    mock.push(text_reply("r1", "m1", &["hello"]));
    super::turns::start_turn(&mut server, &id, "hi");
    super::turns::finish_turn(&mut server);
    let meta = session_meta(home.path(), &id);
    assert_eq!(meta["cli_version"], OURS);
    assert_eq!(meta["source"], "vscode");
    let all = json!({"modelProviders": []});
    assert_eq!(
        listed(&mut server, &id, all.clone()).unwrap()["cliVersion"],
        OURS
    );
    // Codex's thread, listed and then loaded: its own version, not ours.
    let codex = listed(&mut server, CODEX_PLAIN, all.clone()).unwrap();
    assert_eq!(codex["cliVersion"], "0.169.0");
    let resumed = server
        .call("thread/resume", json!({"threadId": CODEX_PLAIN}))
        .unwrap();
    assert_eq!(resumed["thread"]["cliVersion"], "0.169.0");
    mock.push(text_reply("r2", "m2", &["more"]));
    super::turns::start_turn(&mut server, CODEX_PLAIN, "more");
    super::turns::finish_turn(&mut server);
    let read = server
        .call("thread/read", json!({"threadId": CODEX_PLAIN}))
        .unwrap();
    assert_eq!(read["thread"]["cliVersion"], "0.169.0");
    assert_eq!(
        session_meta(home.path(), CODEX_PLAIN)["cli_version"],
        "0.169.0"
    );
    drop(server);

    // A fresh server reads ours back, unloaded and then loaded, with the same version.
    let mut server = server_in(&mock, home.path());
    let read = server.call("thread/read", json!({"threadId": id})).unwrap();
    assert_eq!(read["thread"]["cliVersion"], OURS);
    let resumed = server
        .call("thread/resume", json!({"threadId": id}))
        .unwrap();
    assert_eq!(resumed["thread"]["cliVersion"], OURS);
    // A fork is a new thread of ours.
    let forked = server
        .call("thread/fork", json!({"threadId": CODEX_PLAIN}))
        .unwrap();
    assert_eq!(forked["thread"]["cliVersion"], OURS);
}

#[test]
fn exec_threads_are_recorded_with_source_exec() {
    let s = Setup::new();
    s.mock.push(text_reply("r1", "m1", &["Done."]));
    let out = s.exec(&["--json", "--skip-git-repo-check"], "do it");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let id = events(&out)[0]["thread_id"].as_str().unwrap().to_string();
    let meta = session_meta(s.home.path(), &id);
    assert_eq!(meta["source"], "exec");
    assert_eq!(meta["cli_version"], OURS);
    assert_eq!(meta["originator"], "codex_exec");

    // As with Codex: listed only when exec threads are asked for, then with their source.
    let mut server = server_in(&s.mock, s.home.path());
    assert!(listed(&mut server, &id, json!({"modelProviders": []})).is_none());
    let thread = listed(
        &mut server,
        &id,
        json!({"modelProviders": [], "sourceKinds": ["exec"]}),
    )
    .expect("listed with sourceKinds exec");
    assert_eq!(thread["source"], "exec");
    assert_eq!(thread["cliVersion"], OURS);
    // An app-server thread in the same home stays `vscode`, and exec's `resume --last` still
    // finds exec's own thread.
    let started = server.call("thread/start", json!({})).unwrap();
    assert_eq!(started["thread"]["source"], "vscode");
    drop(server);
    s.mock.push(text_reply("r2", "m2", &["Again."]));
    let out = s.exec(
        &["--json", "--skip-git-repo-check", "resume", "--last"],
        "again",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(events(&out)[0]["thread_id"], id.as_str());
    assert_eq!(session_meta(s.home.path(), &id)["source"], "exec");
}
