//! The demo's scripted model: a small HTTP server on 127.0.0.1 that plays the ChatGPT
//! backend's Responses endpoint (and its workspace-routing check), of the same kind as the
//! tests' mock. It refuses the first
//! access token with 401 (so the app must refresh it), then answers four model requests: a
//! command in the sandbox, an `apply_patch` edit, a command that asks to leave the sandbox,
//! and the final message. Tool calls are shaped after the tools the request offers, so the
//! script follows whatever command and patch tools the server gives the model.
//!
//! Threads: `demo-model` accepts; one `demo-model-conn` per connection. Notes about what it
//! did (the 401) go to the demo over a channel, before the reply is written.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use crossbeam_channel::Sender;
use serde_json::{Value, json};

/// Largest request body read.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Largest request head read.
const MAX_HEAD_LINES: usize = 100;

/// The file the model edits and its text before and after.
pub const GREETING_FILE: &str = "greeting.txt";
/// The greeting before the edit.
pub const GREETING_BEFORE: &str = "Hello, world\n";
/// The greeting after the edit.
pub const GREETING_AFTER: &str = "Hello from codex-lite\n";
/// The file written beside the workspace, outside the sandbox's writable area.
pub const NOTE_FILE: &str = "note-outside-workspace.txt";

/// The running server: its port. The threads end with the process.
pub struct ModelServer {
    /// The port on 127.0.0.1.
    pub port: u16,
}

/// Binds 127.0.0.1 on a free port and starts serving; requests bearing `expired_token` get
/// 401; notes go to `notes`.
pub fn start(notes: Sender<String>, expired_token: String) -> Result<ModelServer> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the demo model server")?;
    let port = listener.local_addr()?.port();
    let answered = Arc::new(AtomicUsize::new(0));
    let expired = Arc::new(format!("Bearer {expired_token}"));
    std::thread::Builder::new()
        .name("demo-model".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let (notes, answered, expired) = (notes.clone(), answered.clone(), expired.clone());
                let _ = std::thread::Builder::new()
                    .name("demo-model-conn".into())
                    .spawn(move || serve(stream, &notes, &answered, &expired));
            }
        })
        .context("starting the demo model server")?;
    Ok(ModelServer { port })
}

/// One request, one reply, then the connection closes.
fn serve(stream: TcpStream, notes: &Sender<String>, answered: &AtomicUsize, expired: &str) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let Some((path, authorization, body)) = read_request(&mut reader) else {
        return;
    };
    let reply = if path.ends_with("/wham/accounts/check") {
        // Workspace routing: the demo account has no regional backend.
        http(
            200,
            "application/json",
            r#"{"accounts":[{"id":"demo-account","workspace_backend_origin":"NO_CONSTRAINT","account_routing_override":"NO_CONSTRAINT"}]}"#,
        )
    } else if !path.ends_with("/responses") {
        http(
            404,
            "application/json",
            r#"{"error":{"message":"not part of the demo"}}"#,
        )
    } else if authorization == expired {
        let _ =
            notes.send("model server: 401 Unauthorized, the access token has expired".to_string());
        http(
            401,
            "application/json",
            r#"{"error":{"message":"Your access token has expired.","code":"token_expired"}}"#,
        )
    } else {
        let step = answered.fetch_add(1, Ordering::SeqCst);
        http(200, "text/event-stream", &sse(&script_step(step, &body)))
    };
    let mut stream = stream;
    let _ = stream
        .write_all(reply.as_bytes())
        .and_then(|()| stream.flush());
}

/// Path, `Authorization` header and JSON body; `None` for anything unreadable.
fn read_request(reader: &mut impl BufRead) -> Option<(String, String, Value)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let (mut length, mut authorization) = (0usize, String::new());
    for _ in 0..MAX_HEAD_LINES {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "authorization" => authorization = value.trim().to_string(),
            _ => {}
        }
    }
    if length > MAX_BODY_BYTES {
        return None;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Some((path, authorization, body))
}

fn http(status: u16, content_type: &str, body: &str) -> String {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Server-sent events: `event:` and `data:` for each, then `response.completed`.
fn sse(items: &[Value]) -> String {
    let mut events = vec![json!({"type": "response.created", "response": {"id": "resp_demo"}})];
    for item in items {
        events.push(json!({"type": "response.output_item.done", "item": item}));
    }
    events.push(
        json!({"type": "response.completed", "response": {"id": "resp_demo",
        "usage": {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 800},
                  "output_tokens": 60, "output_tokens_details": {"reasoning_tokens": 20},
                  "total_tokens": 1260}}}),
    );
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
        .collect()
}

/// What the model answers to its `step`-th accepted request.
fn script_step(step: usize, request: &Value) -> Vec<Value> {
    let tools = offered_tools(request);
    let tools = tools.as_slice();
    let patch = format!(
        "*** Begin Patch\n*** Update File: {GREETING_FILE}\n-{}\n+{}\n*** End Patch\n",
        GREETING_BEFORE.trim_end(),
        GREETING_AFTER.trim_end()
    );
    match step {
        0 => {
            let mut items = vec![json!({"type": "reasoning", "id": "rs_demo",
                "summary": [{"type": "summary_text", "text": "Read the greeting first, and see whether I may write beside the workspace."}],
                "encrypted_content": "demo"})];
            items.extend(command_call(
                tools,
                "call_look",
                &format!("cat {GREETING_FILE} && echo draft > ../{NOTE_FILE}"),
                None,
            ));
            items
        }
        1 => patch_call(tools, "call_patch", &patch),
        2 => command_call(
            tools,
            "call_note",
            &format!("echo \"written with your approval\" > ../{NOTE_FILE} && cat ../{NOTE_FILE}"),
            Some("Write a note beside the workspace, where the sandbox does not allow writes."),
        ),
        _ => vec![
            json!({"type": "message", "id": "msg_demo", "role": "assistant",
            "content": [{"type": "output_text", "text":
                "Done: greeting.txt now says hello from codex-lite, and the note beside the workspace was written once you approved it."}]}),
        ],
    }
}

/// The tools a request offers: its `tools`, or in the Responses Lite shape those of the
/// leading `additional_tools` item (inside their namespaces).
fn offered_tools(request: &Value) -> Vec<Value> {
    let mut tools: Vec<Value> = request["tools"].as_array().cloned().unwrap_or_default();
    for item in request["input"].as_array().into_iter().flatten() {
        if item["type"] != "additional_tools" {
            continue;
        }
        for tool in item["tools"].as_array().into_iter().flatten() {
            match tool["tools"].as_array() {
                Some(inner) if tool["type"] == "namespace" => tools.extend(inner.iter().cloned()),
                _ => tools.push(tool.clone()),
            }
        }
    }
    tools
}

fn tool_named<'a>(tools: &'a [Value], names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|name| tools.iter().find(|t| t["name"] == *name))
}

/// A call of whichever command tool is offered (`shell` takes argv, the others a string);
/// `escalate` asks to run outside the sandbox with that justification, in the tool's terms.
fn command_call(
    tools: &[Value],
    call_id: &str,
    script: &str,
    escalate: Option<&str>,
) -> Vec<Value> {
    let Some(tool) = tool_named(tools, &["shell", "exec_command", "shell_command"]) else {
        return vec![no_tool_message("a command tool")];
    };
    let name = tool["name"].as_str().unwrap_or_default();
    let mut args = match name {
        "shell" => json!({"command": ["sh", "-c", script]}),
        "exec_command" => json!({"cmd": script}),
        _ => json!({"command": script}),
    };
    if let Some(justification) = escalate {
        let properties = &tool["parameters"]["properties"];
        if properties.get("sandbox_permissions").is_some() {
            args["sandbox_permissions"] = json!("require_escalated");
        } else {
            args["with_escalated_permissions"] = json!(true);
        }
        args["justification"] = json!(justification);
    }
    vec![
        json!({"type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id,
        "name": name, "arguments": args.to_string()}),
    ]
}

/// An `apply_patch` call, freeform or JSON as offered.
fn patch_call(tools: &[Value], call_id: &str, patch: &str) -> Vec<Value> {
    match tool_named(tools, &["apply_patch"]) {
        Some(tool) if tool["type"] == "custom" => {
            vec![
                json!({"type": "custom_tool_call", "id": format!("ctc_{call_id}"),
                "call_id": call_id, "name": "apply_patch", "input": patch}),
            ]
        }
        Some(_) => vec![
            json!({"type": "function_call", "id": format!("fc_{call_id}"),
            "call_id": call_id, "name": "apply_patch",
            "arguments": json!({"input": patch}).to_string()}),
        ],
        None => vec![no_tool_message("an apply_patch tool")],
    }
}

fn no_tool_message(what: &str) -> Value {
    json!({"type": "message", "id": "msg_demo_missing", "role": "assistant",
        "content": [{"type": "output_text", "text": format!("The demo script needs {what}, and the server offered none.")}]})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_follow_the_offered_tools() {
        let shell = json!({"type": "function", "name": "shell",
            "parameters": {"properties": {"command": {}, "with_escalated_permissions": {}}}});
        let exec_command = json!({"type": "function", "name": "exec_command",
            "parameters": {"properties": {"cmd": {}, "sandbox_permissions": {}}}});
        let freeform = json!({"type": "custom", "name": "apply_patch"});
        let function = json!({"type": "function", "name": "apply_patch"});

        let call = &command_call(&[shell], "c", "ls", Some("why"))[0];
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(
            args,
            json!({"command": ["sh", "-c", "ls"], "with_escalated_permissions": true, "justification": "why"})
        );

        let call = &command_call(&[exec_command], "c", "ls", Some("why"))[0];
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(
            args,
            json!({"cmd": "ls", "sandbox_permissions": "require_escalated", "justification": "why"})
        );

        assert_eq!(
            patch_call(&[freeform], "p", "P")[0]["type"],
            "custom_tool_call"
        );
        assert_eq!(
            patch_call(&[function], "p", "P")[0]["arguments"],
            r#"{"input":"P"}"#
        );
        assert_eq!(command_call(&[], "c", "ls", None)[0]["type"], "message");
    }

    #[test]
    fn reads_a_request() {
        let raw = "POST /backend-api/codex/responses HTTP/1.1\r\nAuthorization: Bearer x\r\nContent-Length: 8\r\n\r\n{\"a\":1}\n";
        let (path, auth, body) = read_request(&mut raw.as_bytes()).unwrap();
        assert_eq!(path, "/backend-api/codex/responses");
        assert_eq!(auth, "Bearer x");
        assert_eq!(body, json!({"a": 1}));
        assert!(read_request(&mut "garbage".as_bytes()).is_none());
    }
}
