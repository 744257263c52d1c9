//! The transport and handshake (protocol.md §1–3): framing, every error code, burst handling,
//! shutdown on stdin EOF.

use std::time::Duration;

use serde_json::json;

use crate::support::app_server::AppServer;

const QUIET: Duration = Duration::from_millis(300);

#[test]
fn handshake_reports_identity_and_platform() {
    let mut server = AppServer::builder().spawn();
    let result = server.initialize();
    let user_agent = result["userAgent"].as_str().unwrap();
    // The Codex version we implement first (backends and SDKs read it), ours last.
    assert!(
        user_agent.starts_with("codex_lite_tests/0.169.0 ("),
        "{user_agent}"
    );
    assert!(
        user_agent.ends_with(&format!(
            "; {}) codex-lite/{}",
            std::env::consts::ARCH,
            env!("CARGO_PKG_VERSION")
        )),
        "{user_agent}"
    );
    assert_eq!(
        result["codexHome"],
        json!(server.codex_home.display().to_string())
    );
    assert_eq!(result["platformFamily"], "unix");
    assert_eq!(result["platformOs"], std::env::consts::OS);
    assert_eq!(
        result["serverInfo"],
        json!({"name": "codex-lite", "version": "0.169.0"})
    );
}

#[test]
fn requests_before_initialize_are_refused() {
    let mut server = AppServer::builder().spawn();
    let error = server.call("model/list", json!({})).unwrap_err();
    assert_eq!(error, json!({"code": -32600, "message": "Not initialized"}));
    server.initialize();
    let error = server
        .call(
            "initialize",
            json!({"clientInfo": {"name": "again", "version": "1"}}),
        )
        .unwrap_err();
    assert_eq!(
        error,
        json!({"code": -32600, "message": "Already initialized"})
    );
}

#[test]
fn initialize_with_bad_params_is_invalid_params_and_can_be_retried() {
    let mut server = AppServer::builder().spawn();
    let error = server
        .call("initialize", json!({"clientInfo": 5}))
        .unwrap_err();
    assert_eq!(error["code"], -32602);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid params: "),
        "{error}"
    );
    let error = server.call("initialize", json!(null)).unwrap_err();
    assert_eq!(error["code"], -32602);
    assert!(
        error["message"].as_str().unwrap().contains("clientInfo"),
        "{error}"
    );
    server.initialize();
}

#[test]
fn unknown_methods_are_method_not_found() {
    let mut server = AppServer::start();
    let error = server.call("no/such/method", json!({})).unwrap_err();
    assert_eq!(
        error,
        json!({"code": -32601, "message": "Method not found: no/such/method"})
    );
}

#[test]
fn string_ids_are_echoed_verbatim() {
    let mut server = AppServer::start();
    server.send(json!({"jsonrpc": "2.0", "id": "req-ü-1", "method": "nope"}));
    let response = server.read_response(&json!("req-ü-1"));
    assert_eq!(response["error"]["code"], -32601);
}

#[test]
fn unanswerable_lines_are_skipped_and_the_connection_goes_on() {
    let mut server = AppServer::start();
    server.send_bytes(b"this is not json\n");
    server.send_bytes(b"[1,2,3]\n");
    server.send_bytes(b"{\"id\":null,\"method\":\"x\"}\n");
    server.send_bytes(b"{\"id\":1.5,\"method\":\"x\"}\n");
    server.send_bytes(b"\n   \n");
    server.send_bytes(b"{\"method\":7}\n");
    server.send_bytes(b"\xff\xfe\n");
    server.assert_silent(QUIET);
    let error = server.call("still/alive", json!({})).unwrap_err();
    assert_eq!(error["code"], -32601);
    let stderr = server.stderr_within("not JSON", Duration::from_secs(10));
    assert!(stderr.contains("not JSON"), "{stderr}");
}

#[test]
fn json_with_an_id_that_is_not_a_request_is_invalid_request() {
    let mut server = AppServer::start();
    server.crafted().send(json!({"id": 41}));
    let response = server.read_response(&json!(41));
    assert_eq!(response["error"]["code"], -32600);
    assert_eq!(
        response["error"]["message"],
        "Invalid request: missing method"
    );
    server.send(json!({"id": "s", "method": ["x"]}));
    let response = server.read_response(&json!("s"));
    assert_eq!(response["error"]["code"], -32600);
    assert_eq!(
        response["error"]["message"],
        "Invalid request: method must be a string"
    );
}

#[test]
fn answers_to_unknown_ids_are_ignored() {
    let mut server = AppServer::start();
    server.crafted().send(json!({"id": 999, "result": {}}));
    server
        .crafted()
        .send(json!({"id": "nope", "error": {"code": 1, "message": "x"}}));
    server.assert_silent(QUIET);
    server.call("x", json!({})).unwrap_err();
    let stderr = server.stderr_within("not pending", Duration::from_secs(10));
    assert!(stderr.contains("not pending"), "{stderr}");
}

#[test]
fn notifications_are_never_answered() {
    let mut server = AppServer::start();
    server.send(json!({"method": "initialized"}));
    server
        .crafted()
        .send(json!({"method": "some/unknown/notification", "params": {"a": 1}}));
    server
        .crafted()
        .send(json!({"jsonrpc": "2.0", "method": "x"}));
    server.assert_silent(QUIET);
}

#[test]
fn a_line_over_the_limit_is_rejected_without_killing_the_connection() {
    let mut server = AppServer::start();
    let filler = "a".repeat(16 * 1024 * 1024 + 16);
    let line = format!("{{\"id\":77,\"method\":\"x\",\"params\":{{\"blob\":\"{filler}\"}}}}\n");
    server.send_bytes(line.as_bytes());
    let response = server.read_response(&json!(77));
    assert_eq!(response["error"]["code"], -32600);
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line limit"),
        "{response}"
    );
    server.call("x", json!({})).unwrap_err();
}

#[test]
fn a_burst_of_ten_thousand_requests_is_fully_answered() {
    const N: i64 = 10_000;
    let mut server = AppServer::start();
    let mut burst = String::new();
    for i in 0..N {
        let method = if i % 2 == 0 {
            "burst/unknown"
        } else {
            "initialize"
        };
        burst.push_str(&json!({"id": 1000 + i, "method": method, "params": {"clientInfo": {"name": "n", "version": "1"}}}).to_string());
        burst.push('\n');
    }
    server.send_bytes(burst.as_bytes());
    let mut seen = vec![false; N as usize];
    let mut overloaded = 0;
    for _ in 0..N {
        let message = server
            .read_message(Duration::from_secs(30))
            .expect("every request gets an answer");
        let index = (message["id"].as_i64().unwrap() - 1000) as usize;
        assert!(!seen[index], "answered twice: {message}");
        seen[index] = true;
        let code = message["error"]["code"].as_i64().unwrap();
        match code {
            -32001 => {
                overloaded += 1;
                assert_eq!(
                    message["error"]["message"],
                    "Server overloaded; retry later."
                );
            }
            -32601 => assert_eq!(index % 2, 0),
            -32600 => assert_eq!(message["error"]["message"], "Already initialized"),
            other => panic!("unexpected code {other}"),
        }
    }
    println!("burst: {N} answered, {overloaded} overloaded");
    server.assert_silent(QUIET);
}

#[test]
fn stdin_eof_exits_zero() {
    let mut server = AppServer::start();
    server.close_stdin();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("server exits after EOF");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn stdin_eof_before_the_handshake_exits_zero() {
    let mut server = AppServer::builder().spawn();
    server.close_stdin();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("server exits after EOF");
    assert_eq!(status.code(), Some(0));
}
