//! `command/exec` (+ write/terminate) and `model/list` through the real binary.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::support::TempDir;
use crate::support::app_server::AppServer;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().unwrap())
        .unwrap()
}

#[test]
fn buffered_exec_returns_exit_code_and_output() {
    let mut server = AppServer::start();
    let cwd = TempDir::new("exec");
    let result = server
        .call(
            "command/exec",
            json!({"command": ["bash", "-c", "pwd; echo err >&2; exit 4"], "cwd": cwd.path()}),
        )
        .unwrap();
    assert_eq!(result["exitCode"], 4);
    assert_eq!(result["stdout"], format!("{}\n", cwd.path().display()));
    assert_eq!(result["stderr"], "err\n");
}

#[test]
fn exec_runs_in_the_sandbox() {
    let mut server = AppServer::start();
    let cwd = TempDir::new("exec");
    let denied = server
        .call("command/exec", json!({"command": ["touch", "x"], "cwd": cwd.path(), "sandboxPolicy": {"type": "readOnly"}}))
        .unwrap();
    assert_ne!(denied["exitCode"], 0);
    assert!(!cwd.path().join("x").exists());
    let allowed = server
        .call("command/exec", json!({"command": ["touch", "x"], "cwd": cwd.path(), "sandboxPolicy": {"type": "workspaceWrite"}}))
        .unwrap();
    assert_eq!(allowed["exitCode"], 0);
    assert!(cwd.path().join("x").exists());
}

#[test]
fn streamed_exec_with_stdin_write_and_caps() {
    let mut server = AppServer::start();
    let id = server.request(
        "command/exec",
        json!({"command": ["bash", "-c", "read line; echo got:$line; head -c 100 /dev/zero | tr '\\0' x >&2"],
               "processId": "p1", "streamStdoutStderr": true, "streamStdin": true, "outputBytesCap": 40}),
    );
    let written = server
        .call(
            "command/exec/write",
            json!({"processId": "p1", "deltaBase64": b64(b"hello\n"), "closeStdin": true}),
        )
        .unwrap();
    assert_eq!(written, json!({}));
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut cap_reached = false;
    let response = loop {
        let message = server
            .read_message(Duration::from_secs(20))
            .expect("exec output");
        if message["id"] == json!(id) {
            break message;
        }
        assert_eq!(message["method"], "command/exec/outputDelta", "{message}");
        assert_eq!(message["params"]["processId"], "p1");
        let bytes = unb64(&message["params"]["deltaBase64"]);
        match message["params"]["stream"].as_str().unwrap() {
            "stdout" => stdout.extend(bytes),
            _ => stderr.extend(bytes),
        }
        cap_reached |= message["params"]["capReached"] == true;
    };
    assert_eq!(String::from_utf8(stdout).unwrap(), "got:hello\n");
    assert_eq!(stderr, vec![b'x'; 40], "the cap applies per stream");
    assert!(cap_reached);
    assert_eq!(
        response["result"],
        json!({"exitCode": 0, "stdout": "", "stderr": ""})
    );
}

#[test]
fn terminate_kills_a_running_command() {
    let mut server = AppServer::start();
    let id = server.request(
        "command/exec",
        json!({"command": ["sleep", "30"], "processId": "long"}),
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        server
            .call("command/exec/terminate", json!({"processId": "long"}))
            .unwrap(),
        json!({})
    );
    let response = server.read_response(&json!(id));
    assert_eq!(response["result"]["exitCode"], 128 + 9);
    let gone = server
        .call("command/exec/terminate", json!({"processId": "long"}))
        .unwrap_err();
    assert!(
        gone["message"]
            .as_str()
            .unwrap()
            .contains("no running command"),
        "{gone}"
    );
}

#[test]
fn exec_errors() {
    let mut server = AppServer::start();
    let empty = server
        .call("command/exec", json!({"command": []}))
        .unwrap_err();
    assert_eq!(
        empty,
        json!({"code": -32600, "message": "command must not be empty"})
    );
    let tty = server
        .call("command/exec", json!({"command": ["true"], "tty": true}))
        .unwrap_err();
    assert!(tty["message"].as_str().unwrap().contains("tty"), "{tty}");
    let no_id = server
        .call(
            "command/exec",
            json!({"command": ["true"], "streamStdoutStderr": true}),
        )
        .unwrap_err();
    assert!(
        no_id["message"].as_str().unwrap().contains("processId"),
        "{no_id}"
    );
    let write = server
        .call(
            "command/exec/write",
            json!({"processId": "none", "closeStdin": true}),
        )
        .unwrap_err();
    assert!(
        write["message"]
            .as_str()
            .unwrap()
            .contains("no running command"),
        "{write}"
    );
    let no_dir = server
        .call(
            "command/exec",
            json!({"command": ["true"], "cwd": "/nonexistent/dir"}),
        )
        .unwrap_err();
    assert!(
        no_dir["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid cwd /nonexistent/dir"),
        "{no_dir}"
    );
    let bad = server
        .call("command/exec", json!({"command": "ls"}))
        .unwrap_err();
    assert_eq!(bad["code"], -32602);
}

#[test]
fn model_list_has_one_default_and_pages() {
    // Not logged in: the bundled catalog. The default is its top-priority model, whatever the
    // configuration names (a configured model the catalog does not know is not listed).
    let mut server = AppServer::builder().config("model=my-custom-model").spawn();
    server.initialize();
    let all = server.call("model/list", json!({})).unwrap();
    let data = all["data"].as_array().unwrap();
    assert!(data.len() >= 5);
    let defaults: Vec<&Value> = data.iter().filter(|m| m["isDefault"] == true).collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0]["id"], "gpt-6.1-sol");
    assert_eq!(data[0]["id"], "gpt-6.1-sol", "priority order");
    assert!(data.iter().any(|m| m["id"] == "gpt-5.5"));
    assert!(!data.iter().any(|m| m["id"] == "my-custom-model"));
    assert_eq!(all["nextCursor"], Value::Null);
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = server
            .call("model/list", json!({"limit": 2, "cursor": cursor}))
            .unwrap();
        let items = page["data"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|m| m["id"].clone()));
        cursor = page["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    let ids: Vec<Value> = data.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(seen, ids);
}
