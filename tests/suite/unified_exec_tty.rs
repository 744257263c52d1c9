//! Pseudo-terminals through the real binary: `command/exec` with `tty: true` (isatty, window
//! size, `command/exec/resize`, typed input, `closeStdin` as end of input, stderr merged), the
//! refusals the reference gives, and a terminal command under the sandbox.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::support::TempDir;
use crate::support::app_server::AppServer;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads `command/exec/outputDelta`s of `process_id` until `needle` appeared in their text or the
/// response to `id` arrived; returns the text and the response, if it came.
fn read_output(
    server: &mut AppServer,
    id: i64,
    process_id: &str,
    needle: &str,
) -> (String, Option<Value>) {
    let mut text = Vec::new();
    loop {
        let message = server
            .read_message(Duration::from_secs(20))
            .expect("exec output");
        if message["id"] == json!(id) {
            return (String::from_utf8_lossy(&text).into_owned(), Some(message));
        }
        assert_eq!(message["method"], "command/exec/outputDelta", "{message}");
        assert_eq!(message["params"]["processId"], process_id);
        assert_eq!(
            message["params"]["stream"], "stdout",
            "a terminal merges stderr"
        );
        text.extend(
            base64::engine::general_purpose::STANDARD
                .decode(message["params"]["deltaBase64"].as_str().unwrap())
                .unwrap(),
        );
        if !needle.is_empty() && String::from_utf8_lossy(&text).contains(needle) {
            return (String::from_utf8_lossy(&text).into_owned(), None);
        }
    }
}

#[test]
fn tty_exec_sees_a_terminal_of_the_given_size_and_follows_resize() {
    let mut server = AppServer::start();
    let cwd = TempDir::new("tty");
    let id = server.request(
        "command/exec",
        json!({"command": ["bash", "-c", "test -t 0 && test -t 1 && test -t 2 && echo all-tty; stty size; read line; stty size; echo got:$line; echo err >&2; exit 4"],
               "cwd": cwd.path(), "processId": "t1", "tty": true, "size": {"rows": 30, "cols": 100},
               "sandboxPolicy": {"type": "workspaceWrite"}}),
    );
    let (text, done) = read_output(&mut server, id, "t1", "30 100\r\n");
    assert!(done.is_none(), "ended early: {text:?}");
    assert!(text.contains("all-tty\r\n"), "{text:?}");
    let resized = server
        .call(
            "command/exec/resize",
            json!({"processId": "t1", "size": {"rows": 40, "cols": 120}}),
        )
        .unwrap();
    assert_eq!(resized, json!({}));
    server
        .call(
            "command/exec/write",
            json!({"processId": "t1", "deltaBase64": b64(b"hi\n")}),
        )
        .unwrap();
    let (text, done) = read_output(&mut server, id, "t1", "");
    let response = done.expect("the response");
    assert!(text.contains("40 120\r\n"), "{text:?}");
    assert!(text.contains("got:hi\r\n"), "{text:?}");
    assert!(text.contains("err\r\n"), "{text:?}");
    assert_eq!(
        response["result"],
        json!({"exitCode": 4, "stdout": "", "stderr": ""})
    );
    // Gone once finished.
    let gone = server
        .call(
            "command/exec/resize",
            json!({"processId": "t1", "size": {"rows": 1, "cols": 1}}),
        )
        .unwrap_err();
    assert_eq!(gone["code"], -32600, "{gone}");
}

#[test]
fn tty_defaults_to_80_columns_streams_without_asking_and_close_stdin_ends_input() {
    let mut server = AppServer::start();
    let id = server.request(
        "command/exec",
        json!({"command": ["bash", "-c", "stty size; cat; echo cat-done"], "processId": "t2", "tty": true,
               "sandboxPolicy": {"type": "dangerFullAccess"}}),
    );
    let (text, done) = read_output(&mut server, id, "t2", "24 80\r\n");
    assert!(done.is_none(), "{text:?}");
    server
        .call(
            "command/exec/write",
            json!({"processId": "t2", "deltaBase64": b64(b"line\n"), "closeStdin": true}),
        )
        .unwrap();
    let (text, done) = read_output(&mut server, id, "t2", "");
    assert!(text.contains("cat-done"), "{text:?}");
    assert_eq!(done.unwrap()["result"]["exitCode"], 0);
}

#[test]
fn tty_and_resize_refusals() {
    let mut server = AppServer::start();
    let no_id = server
        .call("command/exec", json!({"command": ["true"], "tty": true}))
        .unwrap_err();
    assert_eq!(
        no_id,
        json!({"code": -32600, "message": "command/exec tty or streaming requires a client-supplied processId"})
    );
    let size_without_tty = server
        .call(
            "command/exec",
            json!({"command": ["true"], "processId": "x", "size": {"rows": 2, "cols": 2}}),
        )
        .unwrap_err();
    assert_eq!(
        size_without_tty,
        json!({"code": -32602, "message": "command/exec size requires tty: true"})
    );
    let zero = server
        .call(
            "command/exec",
            json!({"command": ["true"], "processId": "x", "tty": true, "size": {"rows": 0, "cols": 80}}),
        )
        .unwrap_err();
    assert_eq!(
        zero,
        json!({"code": -32602, "message": "command/exec size rows and cols must be greater than 0"})
    );
    let unknown = server
        .call(
            "command/exec/resize",
            json!({"processId": "nope", "size": {"rows": 2, "cols": 2}}),
        )
        .unwrap_err();
    assert_eq!(unknown["code"], -32600, "{unknown}");
    assert!(
        unknown["message"].as_str().unwrap().contains("nope"),
        "{unknown}"
    );
    let bad_size = server
        .call("command/exec/resize", json!({"processId": "nope"}))
        .unwrap_err();
    assert_eq!(bad_size["code"], -32602, "{bad_size}");
    // A piped (not tty) process cannot be resized.
    let id = server.request(
        "command/exec",
        json!({"command": ["sleep", "5"], "processId": "piped", "streamStdin": true}),
    );
    let not_tty = server
        .call(
            "command/exec/resize",
            json!({"processId": "piped", "size": {"rows": 2, "cols": 2}}),
        )
        .unwrap_err();
    assert_eq!(
        not_tty,
        json!({"code": -32600, "message": "failed to resize PTY: process is not attached to a PTY"})
    );
    server
        .call("command/exec/terminate", json!({"processId": "piped"}))
        .unwrap();
    server.read_response(&json!(id));
}
