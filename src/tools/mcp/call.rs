//! One `tools/call` in flight: sent on the server's connection with the tool's timeout, its
//! progress relayed as `item/mcpToolCall/progress`, cancelled by an interrupt or the timeout,
//! and sent again once on a new session when an HTTP server ended ours.

use std::time::Instant;

use crossbeam_channel::{bounded, select};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::ApprovalPolicy;
use crate::mcp::OfferedTool;
use crate::mcp::client::{CallContext, McpError, Progress, progress_channel, secs};
use crate::thread::Control;
use crate::turn::TurnRunner;

/// `item/mcpToolCall/progress`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressNotification<'a> {
    thread_id: &'a str,
    turn_id: &'a str,
    item_id: &'a str,
    message: &'a str,
}

/// How a call ended.
pub(super) enum Outcome {
    Done(Value),
    Failed(String),
    Interrupted,
}

/// `tools/call` with the tool timeout; progress relayed; interrupt and timeout cancel it.
pub(super) fn call_tool(
    turn: &mut TurnRunner,
    tool: &OfferedTool,
    item_id: &str,
    arguments: Value,
) -> Outcome {
    let Some(slot) = turn.tools().env.mcp.slot(&tool.server) else {
        return Outcome::Failed(format!(
            "MCP server `{}` is no longer configured",
            tool.server
        ));
    };
    let (cwd, never_ask) = {
        let settings = &turn.tools().settings;
        (
            settings.cwd.clone(),
            settings.approval == ApprovalPolicy::Never,
        )
    };
    let handle = turn.handle.clone();
    let deadline = Instant::now() + tool.timeout;
    let mut new_session = false;
    'attempt: loop {
        let link = match slot.connection(Some((&turn.thread_id, &cwd)), &|| handle.is_interrupted())
        {
            Ok(link) => link,
            Err(_) if handle.is_interrupted() => return Outcome::Interrupted,
            Err(message) => return Outcome::Failed(message),
        };
        let (progress_tx, progress) = progress_channel();
        // Dropped when the call ends: a relayed elicitation stops waiting then.
        let (_call_alive, done) = bounded::<()>(0);
        let context = CallContext {
            thread_id: turn.thread_id.clone(),
            turn_id: turn.turn_id.clone(),
            cwd: cwd.clone(),
            never_ask,
        };
        let pending = match link.start_request(
            "tools/call",
            json!({"name": tool.tool, "arguments": arguments.clone()}),
            Some(progress_tx),
            Some((context, done)),
            deadline,
        ) {
            Ok(pending) => pending,
            Err(e) => return Outcome::Failed(describe_error(&tool.server, &e)),
        };
        let control = turn.control.clone();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            select! {
                recv(pending.answer) -> answer => {
                    // Progress sent before the answer is told first (`select!` picks at random
                    // among ready channels).
                    for update in progress.try_iter() {
                        notify_progress(turn, item_id, &update);
                    }
                    // An HTTP server that ended our session did not run the call: it is sent
                    // again, once, on a new session (MCP 2025-06-18 §Session Management).
                    if !matches!(answer, Ok(Ok(_))) && link.is_session_expired() && !new_session {
                        new_session = true;
                        continue 'attempt;
                    }
                    return match answer {
                        Ok(Ok(result)) => Outcome::Done(result),
                        Ok(Err(e)) => Outcome::Failed(describe_error(&tool.server, &e)),
                        Err(_) => Outcome::Failed(describe_error(&tool.server, &link.closed_error())),
                    };
                },
                recv(progress) -> update => if let Ok(update) = update {
                    notify_progress(turn, item_id, &update);
                },
                recv(control) -> message => match message {
                    Ok(Control::Steer(input)) => turn.pending_steer(input),
                    Ok(Control::Interrupt) | Err(_) => {
                        link.cancel(pending.id, "the user interrupted the turn");
                        return Outcome::Interrupted;
                    }
                },
                default(left) => {
                    link.cancel(pending.id, "timed out");
                    return Outcome::Failed(format!(
                        "tool call timed out after {} (tool_timeout_sec of MCP server `{}`)",
                        secs(tool.timeout),
                        tool.server
                    ));
                }
            }
            if turn.handle.is_interrupted() {
                link.cancel(pending.id, "the user interrupted the turn");
                return Outcome::Interrupted;
            }
        }
    }
}

fn notify_progress(turn: &TurnRunner, item_id: &str, update: &Progress) {
    turn.rpc.notify(
        "item/mcpToolCall/progress",
        ProgressNotification {
            thread_id: &turn.thread_id,
            turn_id: &turn.turn_id,
            item_id,
            message: &update.describe(),
        },
    );
}

fn describe_error(server: &str, error: &McpError) -> String {
    match error {
        McpError::Closed(why) => format!("MCP server `{server}` stopped during the call: {why}"),
        other => format!("MCP server `{server}`: {other}"),
    }
}
