//! What an idle MCP stdio server costs the app-server (mcp.md, README *Numbers*): one thread,
//! `mcp-<name>`, which started the server (its handshake and tool listing) and then reads it;
//! no other thread is left behind, and the server still answers calls afterwards. Memory is
//! measured by `examples/bench.rs`, not here.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::mcp::{call_reply, completed_item, ready_thread, script, server_with, stdio_server};
use super::turns::{finish_turn, start_turn};
use crate::support::mock_responses::*;

/// The app-server's threads by name (`/proc/<pid>/task/*/comm`), counted.
fn thread_names(pid: u32) -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let comm = std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap_or_default();
        *names.entry(comm.trim().to_string()).or_default() += 1;
    }
    names
}

#[test]
fn an_idle_stdio_server_costs_one_thread_which_started_it_and_reads_it() {
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
    // Threads of other work (the thread start, a catalog refresh) may still be ending: wait
    // a bounded while for the idle picture.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mcp_threads = loop {
        let names = thread_names(server.pid());
        let mcp: BTreeMap<_, _> = names
            .into_iter()
            .filter(|(name, _)| name.starts_with("mcp"))
            .collect();
        let want = BTreeMap::from([("mcp-one".to_string(), 1), ("mcp-two".to_string(), 1)]);
        if mcp == want || Instant::now() > deadline {
            break mcp;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        mcp_threads,
        BTreeMap::from([("mcp-one".to_string(), 1), ("mcp-two".to_string(), 1)]),
        "one thread per idle server, named after it"
    );

    // That thread goes on serving the server: a call after the start is answered.
    mock.push(call_reply("r1", "c1", "mcp__one__work", json!({})));
    mock.push(text_reply("r2", "m1", &["done"]));
    start_turn(&mut server, &thread, "work");
    let messages = finish_turn(&mut server);
    let item = completed_item(&messages, "c1");
    assert_eq!(item["status"], "completed", "{item}");
}
