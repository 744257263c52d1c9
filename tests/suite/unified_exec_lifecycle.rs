//! Unified exec sessions' lifetimes through the real binary: at most 64 per thread (the least
//! recently used idle one is stopped), and every session stopped on interrupt, on unload and at
//! shutdown — a process that ignores SIGTERM too (SIGKILL after the grace). Each test checks the
//! processes themselves (their pids) so none is left behind.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::turns::{finish_turn, interrupt_turn, start_turn};
use super::unified_exec::{completed, exec_call, model_output, thread_on, write_call};
use crate::support::mock_responses::*;

/// Whether process `pid` still runs (a zombie counts as gone).
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// The pid of the command that wrote its `$$` to `file` (waits for it to appear: generously, a
/// sandboxed start on a loaded machine is slow), translated out of the sandbox's PID namespace;
/// a pid that never runs when the command is gone already.
fn read_pid(file: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return crate::support::host_pid(file, pid).unwrap_or(u32::MAX);
        }
        assert!(Instant::now() < deadline, "no pid in {}", file.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `pid` is gone; panics after `within`.
fn assert_gone_within(pid: u32, within: Duration) {
    let deadline = Instant::now() + within;
    while is_alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `exec_command` args for a command that records its pid in `file` and then runs for a minute
/// (ignoring SIGTERM when `stubborn`): a process gone well within the minute was stopped.
fn sleeper(file: &Path, stubborn: bool) -> Value {
    let trap = if stubborn { "trap '' TERM; " } else { "" };
    json!({"cmd": format!("{trap}echo $$ > '{}'; echo ready; sleep 60", file.display()),
           "shell": "/bin/sh", "login": false, "yield_time_ms": 250})
}

#[test]
fn a_sixty_fifth_session_stops_the_least_recently_used_one() {
    let mock = MockServer::start();
    let (mut server, thread_id, cwd) = thread_on(
        &mock,
        json!({"approvalPolicy": "never", "sandbox": "workspace-write"}),
    );
    let pid_file = |i: usize| cwd.path().join(format!("pid-{i}"));
    // One model reply with 65 calls, as a model may send.
    let mut events = vec![ev_created("r_many")];
    for i in 0..65 {
        events.push(ev_function_call(
            &format!("c{i}"),
            "exec_command",
            &sleeper(&pid_file(i), false),
        ));
    }
    events.push(ev_completed("r_many"));
    mock.push(sse(events));
    mock.push(write_call("w0", "c0", "", 250));
    mock.push(write_call("w1", "c1", "", 250));
    mock.push(text_reply("r_end", "m_end", &["done"]));
    start_turn(&mut server, &thread_id, "start many");
    // 65 calls of at least 250 ms each: longer than the support's default wait.
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while messages
        .last()
        .is_none_or(|m: &Value| m["method"] != "turn/completed")
    {
        let left = deadline.saturating_duration_since(Instant::now());
        messages.push(server.read_message(left).expect("turn/completed"));
    }
    let pids: Vec<u32> = (0..65).map(|i| read_pid(&pid_file(i))).collect();
    // The oldest (c0) made room for c64: stopped, its item completed, its id unknown.
    assert_gone_within(pids[0], Duration::from_secs(20));
    let stopped = if messages
        .iter()
        .any(|m| m["method"] == "item/completed" && m["params"]["item"]["id"] == "c0")
    {
        completed(&messages, "c0")
    } else {
        server.take_matching("item/completed of c0", |m| {
            m["method"] == "item/completed" && m["params"]["item"]["id"] == "c0"
        })["params"]["item"]
            .clone()
    };
    assert_eq!(stopped["status"], "failed");
    assert!(
        stopped["aggregatedOutput"]
            .as_str()
            .unwrap()
            .contains("ready")
    );
    assert!(
        model_output(&mock, "w0").starts_with("write_stdin failed: Unknown process id "),
        "{}",
        model_output(&mock, "w0")
    );
    // The others run on, c1 polled as usual.
    assert!(model_output(&mock, "w1").contains("Process running with session ID"));
    assert!(pids[1..].iter().all(|pid| is_alive(*pid)));
    assert!(!messages.iter().any(|m| {
        m["method"] == "item/completed"
            && m["params"]["item"]["type"] == "commandExecution"
            && m["params"]["item"]["id"] != "c0"
    }));
    // Shutdown stops the 64 left.
    server.close_stdin();
    assert!(server.wait_exit(Duration::from_secs(15)).is_some());
    for pid in pids {
        assert_gone_within(pid, Duration::from_secs(10));
    }
}

#[test]
fn shutdown_kills_a_session_that_ignores_sigterm() {
    let mock = MockServer::start();
    let (mut server, thread_id, cwd) = thread_on(
        &mock,
        json!({"approvalPolicy": "never", "sandbox": "workspace-write"}),
    );
    mock.push(exec_call("c1", sleeper(&cwd.path().join("stubborn"), true)));
    mock.push(exec_call("c2", sleeper(&cwd.path().join("polite"), false)));
    mock.push(text_reply("r3", "m3", &["left running"]));
    start_turn(&mut server, &thread_id, "go");
    finish_turn(&mut server);
    let stubborn = read_pid(&cwd.path().join("stubborn"));
    let polite = read_pid(&cwd.path().join("polite"));
    assert!(model_output(&mock, "c1").contains("Process running with session ID"));
    let closed = Instant::now();
    server.close_stdin();
    assert!(
        server.wait_exit(Duration::from_secs(15)).is_some(),
        "the server did not exit"
    );
    let took = closed.elapsed();
    assert!(
        !is_alive(stubborn),
        "the SIGTERM-ignoring process outlived the server"
    );
    assert!(!is_alive(polite));
    // It waited for the grace: SIGTERM was ignored, SIGKILL ended it.
    assert!(took >= Duration::from_millis(1500), "{took:?}");
}

#[test]
fn an_interrupt_stops_every_session_of_the_thread() {
    let mock = MockServer::start();
    let (mut server, thread_id, cwd) = thread_on(
        &mock,
        json!({"approvalPolicy": "never", "sandbox": "workspace-write"}),
    );
    // Turn 1 leaves a stubborn session behind.
    mock.push(exec_call("c1", sleeper(&cwd.path().join("a"), true)));
    mock.push(text_reply("r2", "m2", &["left running"]));
    start_turn(&mut server, &thread_id, "first");
    finish_turn(&mut server);
    let a = read_pid(&cwd.path().join("a"));
    // Turn 2 starts another and polls it for two minutes; the user interrupts.
    mock.push(exec_call("c3", sleeper(&cwd.path().join("b"), false)));
    mock.push(write_call("c4", "c3", "", 120_000));
    let turn = start_turn(&mut server, &thread_id, "second");
    let b = read_pid(&cwd.path().join("b"));
    mock.wait_for_requests(4);
    // Makes it likely that the interrupt finds the poll waiting (nothing tells the client it
    // is); the assertions hold wherever the turn is.
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let messages = interrupt_turn(&mut server, &thread_id, &turn);
    // The bounds are generous for a loaded machine, and still far below what not stopping would
    // take: the poll's two minutes, the sleepers' one.
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "the interrupt waited for the poll: {:?}",
        asked.elapsed()
    );
    assert_gone_within(b, Duration::from_secs(20));
    // The stubborn one ignores SIGTERM: SIGKILL after the grace ends it.
    assert_gone_within(a, Duration::from_secs(30));
    // Completed during the turn (the call saw the end) or after it (the session thread did).
    let mut rest = messages;
    for id in ["c1", "c3"] {
        let is_done =
            |m: &Value| m["method"] == "item/completed" && m["params"]["item"]["id"] == id;
        if !rest.iter().any(is_done) {
            let done = server.take_matching(&format!("item/completed of {id}"), is_done);
            rest.push(done);
        }
    }
    assert_eq!(completed(&rest, "c3")["status"], "failed");
    assert_eq!(completed(&rest, "c1")["status"], "failed");
}

#[test]
fn unloading_a_thread_stops_its_sessions() {
    let mock = MockServer::start();
    let (mut server, thread_id, cwd) = thread_on(
        &mock,
        json!({"approvalPolicy": "never", "sandbox": "workspace-write"}),
    );
    mock.push(exec_call("c1", sleeper(&cwd.path().join("pid"), true)));
    mock.push(text_reply("r2", "m2", &["left running"]));
    start_turn(&mut server, &thread_id, "go");
    finish_turn(&mut server);
    let pid = read_pid(&cwd.path().join("pid"));
    assert!(is_alive(pid));
    server
        .call("thread/archive", json!({"threadId": thread_id}))
        .expect("thread/archive");
    assert_gone_within(pid, Duration::from_secs(30));
}
