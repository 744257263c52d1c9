//! What an idle MCP server costs the app-server (mcp.md, README *Numbers*): no thread of its
//! own. One thread, `mcp-stdio`, reads every stdio server; it exists only while a server runs,
//! and one server that stops reading its stdin cannot stall it for the others. One thread,
//! `mcp-http`, drives every streamable-HTTP server's exchanges, their event streams included.
//! Memory is measured by `examples/bench.rs`, not here.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::mcp::{call_reply, completed_item, ready_thread, script, server_with, stdio_server};
use super::turns::{finish_turn, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// The app-server's threads whose names start with `mcp`, counted by name.
fn mcp_threads(pid: u32) -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let comm = std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if comm.starts_with("mcp") {
            *names.entry(comm.to_string()).or_default() += 1;
        }
    }
    names
}

/// Waits (bounded) until the server's `mcp*` threads are `want`; returns the last seen.
fn settle_mcp_threads(server: &AppServer, want: &[(&str, usize)]) -> BTreeMap<String, usize> {
    let want: BTreeMap<String, usize> = want.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    // Short-lived threads (a start, an ended server's reaping) may still be ending.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = mcp_threads(server.pid());
        if seen == want || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn idle_stdio_servers_have_no_thread_of_their_own_and_one_reads_them_all() {
    let mock = MockServer::start();
    let script = script("misbehaving.py");
    let mut server = server_with(
        &mock,
        &[
            stdio_server("one", &[&script, "env"], ""),
            stdio_server("two", &[&script, "env"], ""),
        ],
    );
    let thread = ready_thread(&mut server, "one", "never");
    let status = super::mcp::wait_startup(&mut server, "two");
    assert_eq!(status["status"], "ready", "{status}");
    assert_eq!(
        settle_mcp_threads(&server, &[("mcp-stdio", 1)]),
        BTreeMap::from([("mcp-stdio".to_string(), 1)]),
        "one reading thread for both idle servers, none of their own"
    );

    // That thread goes on serving both: calls after the start are answered.
    mock.push(call_reply("r1", "c1", "mcp__one__work", json!({})));
    mock.push(call_reply("r2", "c2", "mcp__two__work", json!({})));
    mock.push(text_reply("r3", "m1", &["done"]));
    start_turn(&mut server, &thread, "work");
    let messages = finish_turn(&mut server);
    for call in ["c1", "c2"] {
        let item = completed_item(&messages, call);
        assert_eq!(item["status"], "completed", "{item}");
    }
}

#[test]
fn idle_http_servers_have_no_thread_of_their_own_and_one_drives_them_all() {
    let http = super::mcp::HttpServer::start();
    let mock = MockServer::start();
    let url = super::mcp::toml_str(&http.url);
    let mut server = server_with(
        &mock,
        &[
            format!("mcp_servers.web1={{url={url}}}"),
            format!("mcp_servers.web2={{url={url}}}"),
        ],
    );
    let thread = ready_thread(&mut server, "web1", "never");
    let status = super::mcp::wait_startup(&mut server, "web2");
    assert_eq!(status["status"], "ready", "{status}");
    // While idle, the one thread holds both servers' event streams (it would end without
    // them), and no server has a thread of its own.
    assert_eq!(
        settle_mcp_threads(&server, &[("mcp-http", 1)]),
        BTreeMap::from([("mcp-http".to_string(), 1)]),
        "one HTTP thread for both idle servers, none of their own"
    );
    mock.push(call_reply(
        "r1",
        "c1",
        "mcp__web1__add",
        json!({"a": 1, "b": 2}),
    ));
    mock.push(call_reply(
        "r2",
        "c2",
        "mcp__web2__slow",
        json!({"steps": 2}),
    ));
    mock.push(text_reply("r3", "m1", &["done"]));
    start_turn(&mut server, &thread, "work");
    let messages = finish_turn(&mut server);
    assert_eq!(
        completed_item(&messages, "c1")["result"]["content"][0]["text"],
        "3"
    );
    assert_eq!(completed_item(&messages, "c2")["status"], "completed");
    assert_eq!(
        settle_mcp_threads(&server, &[("mcp-http", 1)]),
        BTreeMap::from([("mcp-http".to_string(), 1)]),
        "the calls ran on the same thread and left none behind"
    );
}

#[test]
fn the_reading_thread_ends_with_the_last_server_and_comes_back_with_the_next() {
    let mock = MockServer::start();
    let script = script("misbehaving.py");
    let mut server = server_with(&mock, &[stdio_server("boom", &[&script, "crash"], "")]);
    let thread = ready_thread(&mut server, "boom", "never");
    assert_eq!(
        settle_mcp_threads(&server, &[("mcp-stdio", 1)]),
        BTreeMap::from([("mcp-stdio".to_string(), 1)])
    );
    // The call crashes the only server: nothing is left to read.
    mock.push(call_reply("r1", "c1", "mcp__boom__work", json!({})));
    mock.push(text_reply("r2", "m1", &["crashed"]));
    start_turn(&mut server, &thread, "work");
    let messages = finish_turn(&mut server);
    assert_eq!(completed_item(&messages, "c1")["status"], "failed");
    assert_eq!(
        settle_mcp_threads(&server, &[]),
        BTreeMap::new(),
        "no MCP thread once no stdio server runs"
    );
    // The next call restarts the server, read by a new reading thread: its crash is seen as
    // such (the exit status and stderr), not as a timeout.
    mock.push(call_reply("r3", "c2", "mcp__boom__work", json!({})));
    mock.push(text_reply("r4", "m2", &["crashed again"]));
    start_turn(&mut server, &thread, "again");
    let messages = finish_turn(&mut server);
    let item = completed_item(&messages, "c2");
    let error = item["error"]["message"].as_str().unwrap_or_default();
    assert!(
        error.contains("exited with status 3") && error.contains("the server crashed"),
        "{item}"
    );
}

#[test]
fn a_server_that_stops_reading_its_stdin_does_not_stall_the_others() {
    let mock = MockServer::start();
    let script = script("misbehaving.py");
    let mut server = server_with(
        &mock,
        &[
            stdio_server("deaf", &[&script, "deaf"], ""),
            stdio_server("one", &[&script, "env"], "tool_timeout_sec=30"),
        ],
    );
    let thread = ready_thread(&mut server, "one", "never");
    let status = super::mcp::wait_startup(&mut server, "deaf");
    assert_eq!(status["status"], "ready", "{status}");
    // `deaf` now sends thousands of pings and reads none of our answers: once its stdin is
    // full, an answer that waited for room would hold up the thread that reads `one` too.
    mock.push(call_reply("r1", "c1", "mcp__one__work", json!({})));
    mock.push(text_reply("r2", "m1", &["done"]));
    start_turn(&mut server, &thread, "work");
    let messages = finish_turn(&mut server);
    let item = completed_item(&messages, "c1");
    assert_eq!(item["status"], "completed", "{item}");
}

#[test]
fn starts_run_side_by_side_on_one_thread() {
    let mock = MockServer::start();
    let script = script("misbehaving.py");
    let mut server = server_with(
        &mock,
        &[
            stdio_server("silent", &[&script, "never"], "startup_timeout_sec=60"),
            stdio_server("one", &[&script, "env"], ""),
        ],
    );
    // `silent` never answers its `initialize`: `one` starts meanwhile, on the same thread.
    ready_thread(&mut server, "one", "never");
    let starting = settle_mcp_threads(&server, &[("mcp-start", 1), ("mcp-stdio", 1)]);
    assert_eq!(
        starting,
        BTreeMap::from([("mcp-start".to_string(), 1), ("mcp-stdio".to_string(), 1)]),
        "one thread runs the start still in progress, one reads both servers"
    );
    let list = server.call("mcpServerStatus/list", json!({})).unwrap();
    let silent = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "silent")
        .cloned()
        .unwrap();
    assert_eq!(silent["runtimeStatus"], "starting", "{silent}");
}

/// Kills the process whose pid `file` holds when dropped (what a test's server left running).
struct KillOnDrop(std::path::PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

#[test]
fn a_removed_server_is_no_longer_read_even_when_something_it_started_keeps_its_pipes() {
    let home = TempDir::new("mcp-escape");
    let pidfile = home.path().join("sleeper.pid");
    let _sleeper = KillOnDrop(pidfile.clone());
    let table = stdio_server(
        "x",
        &[
            &script("misbehaving.py"),
            "escape",
            &pidfile.display().to_string(),
        ],
        "",
    )
    .replacen("mcp_servers.x=", "", 1);
    std::fs::write(
        home.path().join("config.toml"),
        format!("[mcp_servers]\nesc = {table}\n"),
    )
    .unwrap();
    let mut server = AppServer::builder().codex_home(home.path()).spawn();
    server.initialize();
    server.call("mcpServerStatus/list", json!({})).unwrap();
    let status = super::mcp::wait_startup(&mut server, "esc");
    assert_eq!(status["status"], "ready", "{status}");
    assert_eq!(
        settle_mcp_threads(&server, &[("mcp-stdio", 1)]),
        BTreeMap::from([("mcp-stdio".to_string(), 1)])
    );
    // Removing the server stops it, but the process it started in a session of its own still
    // holds its stdout and stderr open: no end of output will come. The reading thread lets
    // go of it anyway, and ends with nothing left to read.
    std::fs::write(home.path().join("config.toml"), "").unwrap();
    server.call("config/mcpServer/reload", json!(null)).unwrap();
    assert_eq!(
        settle_mcp_threads(&server, &[]),
        BTreeMap::new(),
        "the removed server's pipes are let go"
    );
}
