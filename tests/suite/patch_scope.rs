//! Where patches may write, through the real binary (hardening.md §2): checks on
//! symlink-resolved paths, and an approved patch applied inside a sandbox that adds only the
//! approved roots, never unconfined.
#![cfg(target_os = "linux")]

use serde_json::{Value, json};

use crate::suite::turns::{finish_turn, server_for, start_thread, start_turn};
use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::mock_responses::*;

/// Starts a turn in `cwd` whose model sends `patch` to the apply_patch tool; returns the server
/// once the turn is under way.
fn patch_turn(mock: &MockServer, cwd: &std::path::Path, thread: Value, patch: &str) -> AppServer {
    mock.push(sse(vec![
        ev_created("r1"),
        ev_custom_tool_call("call_p", "apply_patch", patch),
        ev_completed("r1"),
    ]));
    mock.push(text_reply("r2", "msg_2", &["done"]));
    let mut server = server_for(mock);
    let mut params = thread;
    params["cwd"] = json!(cwd);
    let thread_id = start_thread(&mut server, params);
    start_turn(&mut server, &thread_id, "patch it");
    server
}

fn file_change_status(messages: &[Value]) -> Value {
    messages
        .iter()
        .find(|m| m["method"] == "item/completed" && m["params"]["item"]["type"] == "fileChange")
        .map(|m| m["params"]["item"]["status"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn a_symlink_out_of_the_workspace_counts_as_outside() {
    let mock = MockServer::start();
    let ws = TempDir::new("scope-ws");
    // Not under /tmp, which workspace-write lets every command write (a clone in /tmp).
    let outside = TempDir::new_outside_tmp("scope-outside");
    std::os::unix::fs::symlink(outside.path(), ws.path().join("escape")).unwrap();
    let mut server = patch_turn(
        &mock,
        ws.path(),
        // /tmp is a writable root by default, and a clone may live under it: only the workspace.
        json!({"sandbox": "workspace-write", "approvalPolicy": "on-request",
               "config": {"sandbox_workspace_write":
                   {"exclude_slash_tmp": true, "exclude_tmpdir_env_var": true}}}),
        "*** Begin Patch\n*** Add File: escape/pwned.txt\n+owned\n*** End Patch",
    );
    // In the workspace by name, outside it in fact: on-request must ask, naming the real place.
    let (request, _) = server.read_until("item/fileChange/requestApproval");
    assert_eq!(
        request["params"]["grantRoot"],
        outside.path().display().to_string(),
        "{request}"
    );
    assert_eq!(
        request["params"]["reason"],
        "the patch writes outside the sandbox's writable roots"
    );
    server.answer(&request["id"], json!({"decision": "decline"}));
    let messages = finish_turn(&mut server);
    assert_eq!(file_change_status(&messages), "declined");
    assert!(!outside.path().join("pwned.txt").exists());
}

#[test]
fn an_approved_patch_is_applied_inside_a_sandbox_with_the_approved_roots_only() {
    let mock = MockServer::start();
    let ws = TempDir::new("scope-approved");
    let elsewhere = TempDir::new("scope-elsewhere");
    let target = elsewhere.path().join("granted.txt");
    let mut server = patch_turn(
        &mock,
        ws.path(),
        json!({"sandbox": "read-only", "approvalPolicy": "untrusted"}),
        &format!(
            "*** Begin Patch\n*** Add File: {}\n+granted\n*** End Patch",
            target.display()
        ),
    );
    let (request, _) = server.read_until("item/fileChange/requestApproval");
    assert_eq!(
        request["params"]["grantRoot"],
        elsewhere.path().display().to_string()
    );
    server.answer(&request["id"], json!({"decision": "accept"}));
    let messages = finish_turn(&mut server);
    // The approved root became writable for the patch.
    assert_eq!(file_change_status(&messages), "completed", "{messages:?}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "granted\n");

    // CODEX_HOME stays read-only for every sandbox: an approved patch into it fails, which it
    // could not if approved patches still ran unconfined.
    let mock = MockServer::start();
    let home_probe = TempDir::new("scope-home-ws");
    let mut server = AppServer::builder()
        .configs(mock.provider_overrides())
        .env("MOCK_KEY", "k")
        .spawn();
    server.initialize();
    let evil = server.codex_home.join("evil.txt");
    mock.push(sse(vec![
        ev_created("r1"),
        ev_custom_tool_call(
            "call_p",
            "apply_patch",
            &format!(
                "*** Begin Patch\n*** Add File: {}\n+evil\n*** End Patch",
                evil.display()
            ),
        ),
        ev_completed("r1"),
    ]));
    mock.push(text_reply("r2", "msg_2", &["done"]));
    let thread_id = start_thread(
        &mut server,
        json!({"cwd": home_probe.path(), "sandbox": "read-only", "approvalPolicy": "untrusted"}),
    );
    start_turn(&mut server, &thread_id, "patch it");
    let (request, _) = server.read_until("item/fileChange/requestApproval");
    server.answer(&request["id"], json!({"decision": "accept"}));
    let messages = finish_turn(&mut server);
    assert_eq!(file_change_status(&messages), "failed", "{messages:?}");
    assert!(!evil.exists(), "an approved patch wrote into CODEX_HOME");
}
