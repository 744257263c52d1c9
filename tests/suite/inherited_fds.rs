//! A descriptor the server inherited from its own parent (an IDE's socket, not close-on-exec)
//! stays with the server: no command it runs outside the sandbox (`command/exec` and the shell
//! tool under `danger-full-access`, unified exec's `exec_command`) and no MCP stdio server gets
//! it, while the server itself keeps it open. Judged through the real binary by what reaches the
//! parent's end of the socket and what each command finds at the descriptor's number (and, on
//! Linux, the server's own descriptor table in /proc).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::turns::{finish_turn, start_thread, start_turn};
use super::unified_exec::{exec_call, model_output};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// The number the leaked descriptor has in the server.
pub const FD: i32 = 9;

/// A shell script that writes `word` to the leaked descriptor and prints whether it could.
fn probe(word: &str) -> String {
    format!("{{ echo {word} >&{FD}; }} 2>/dev/null && echo fd{FD}=open || echo fd{FD}=closed")
}

/// An initialized server (with `configs`) that inherited one end of a socket pair as [`FD`];
/// the parent's end of the pair.
pub fn leaky_server(configs: Vec<String>) -> (AppServer, UnixStream) {
    let (host, leaked) = UnixStream::pair().unwrap();
    let mut server = AppServer::builder()
        .configs(configs)
        .env("MOCK_KEY", "test-key")
        .inherit_fd(&leaked, FD)
        .spawn();
    server.initialize();
    #[cfg(target_os = "linux")]
    assert_holds_close_on_exec(&server, &leaked);
    (server, host)
}

/// The control: the server holds the very socket as [`FD`], open but close-on-exec.
#[cfg(target_os = "linux")]
fn assert_holds_close_on_exec(server: &AppServer, leaked: &UnixStream) {
    use std::os::fd::AsRawFd;
    let ours = std::fs::read_link(format!("/proc/self/fd/{}", leaked.as_raw_fd())).unwrap();
    let theirs = std::fs::read_link(format!("/proc/{}/fd/{FD}", server.pid())).unwrap();
    assert_eq!(ours, theirs);
    let info = std::fs::read_to_string(format!("/proc/{}/fdinfo/{FD}", server.pid())).unwrap();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    assert_ne!(flags & libc::O_CLOEXEC as u32, 0, "{info}");
}

/// What reached the parent's end of the socket within a moment.
pub fn received(host: &mut UnixStream) -> String {
    host.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 256];
    match host.read(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(_) => String::new(),
    }
}

#[test]
fn command_exec_with_full_access_does_not_get_the_servers_inherited_descriptor() {
    let mock = MockServer::start();
    let (mut server, mut host) = leaky_server(mock.provider_overrides());
    let result = server
        .call(
            "command/exec",
            json!({"command": ["sh", "-c", probe("exec")], "sandboxPolicy": {"type": "dangerFullAccess"}}),
        )
        .unwrap();
    let stdout = result["stdout"].as_str().unwrap();
    assert_eq!(stdout, format!("fd{FD}=closed\n"), "{result}");
    assert_eq!(received(&mut host), "", "{result}");
}

#[test]
fn the_shell_tool_and_exec_command_with_full_access_do_not_get_it() {
    let mock = MockServer::start();
    mock.push(sse(vec![
        ev_created("r1"),
        ev_function_call(
            "shell1",
            "shell",
            &json!({"command": ["sh", "-c", probe("shell")]}),
        ),
        ev_completed("r1"),
    ]));
    mock.push(exec_call(
        "exec1",
        json!({"cmd": probe("uexec"), "shell": "/bin/sh", "login": false, "yield_time_ms": 5000}),
    ));
    mock.push(text_reply("r3", "m3", &["done"]));
    let (mut server, mut host) = leaky_server(mock.provider_overrides());
    let cwd = TempDir::new("leaky-cwd");
    let thread_id = start_thread(
        &mut server,
        json!({"cwd": cwd.path(), "approvalPolicy": "never", "sandbox": "danger-full-access"}),
    );
    start_turn(&mut server, &thread_id, "go");
    let messages = finish_turn(&mut server);
    let turn = &messages.last().unwrap()["params"]["turn"];
    assert_eq!(turn["status"], "completed", "{messages:?}");
    for call in ["shell1", "exec1"] {
        let output = model_output(&mock, call);
        assert!(
            output.contains(&format!("fd{FD}=closed")),
            "{call}: {output}"
        );
    }
    assert_eq!(received(&mut host), "");
}

#[test]
fn an_mcp_stdio_server_does_not_get_it() {
    let mock = MockServer::start();
    let dir = TempDir::new("leaky-mcp");
    let seen = dir.path().join("seen");
    let script = dir.path().join("server.sh");
    std::fs::write(
        &script,
        format!("{{ {}; }} > '{}'\n", probe("mcp"), seen.display()),
    )
    .unwrap();
    let config = format!(
        "mcp_servers.leaky={{command=\"sh\",args=[{}]}}",
        Value::from(script.display().to_string())
    );
    let (mut server, mut host) = leaky_server([mock.provider_overrides(), vec![config]].concat());
    // The servers start with the first thread.
    start_thread(
        &mut server,
        json!({"cwd": dir.path(), "approvalPolicy": "never"}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !has_line(&seen) {
        assert!(Instant::now() < deadline, "the MCP server never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(text, format!("fd{FD}=closed\n"));
    assert_eq!(received(&mut host), "");
}

/// Whether `path` holds a whole line yet.
fn has_line(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.ends_with('\n'))
}
