//! The approval rules of protocol.md §7 shared by the shell tools, apply_patch and unified
//! exec: asking the client and reading its decision, when a command must be asked for
//! (escalation, `untrusted`, session approvals), the unsandboxed retry after a sandbox denial,
//! and completing a declined item.

use std::path::Path;

use serde_json::{Value, json};

use super::client_request::{self, Reply};
use super::{CallResult, ToolCall, shell};
use crate::config::ApprovalPolicy;
use crate::exec;
use crate::protocol::{ItemStatus, ThreadItem};
use crate::sandbox::SandboxPolicy;
use crate::thread::lock;
use crate::turn::TurnRunner;

/// The user's answer to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Accept,
    AcceptForSession,
    Decline,
    Cancel,
}

/// Asks the client (`method`, `params`) and waits for the decision, following the order of
/// protocol.md §7. The item must not have been started yet; this starts it. An interrupt or a
/// closed connection cancels the request.
pub(super) fn ask(
    turn: &mut TurnRunner,
    item: &ThreadItem,
    started: &mut bool,
    method: &str,
    mut params: Value,
) -> Decision {
    let reply = client_request::ask_approval(turn, method, |turn| {
        if !*started {
            turn.item_started(item);
            *started = true;
        }
        params["threadId"] = json!(turn.thread_id);
        params["turnId"] = json!(turn.turn_id);
        params["itemId"] = json!(item.id());
        params["startedAtMs"] = json!(crate::time::unix_millis());
        params
    });
    match reply {
        Reply::Result(result) => parse_decision(&result),
        Reply::Error(_) => Decision::Decline,
        Reply::Cancelled => Decision::Cancel,
    }
}

fn parse_decision(result: &Value) -> Decision {
    match result.get("decision") {
        Some(Value::String(s)) => match s.as_str() {
            "accept" => Decision::Accept,
            "acceptForSession" => Decision::AcceptForSession,
            "cancel" => Decision::Cancel,
            _ => Decision::Decline,
        },
        // `{acceptWithExecpolicyAmendment: …}` and similar: an acceptance of this command.
        Some(Value::Object(map)) if map.keys().any(|k| k.starts_with("accept")) => Decision::Accept,
        _ => Decision::Decline,
    }
}

/// How a command may run once the approval rules let it.
pub(crate) struct Approved {
    /// The sandbox to run it under (none when the user approved an escalation).
    pub policy: SandboxPolicy,
    /// Whether asking already emitted the item's `item/started`.
    pub started: bool,
}

/// Applies the approval rules of protocol.md §7 to running `argv` in `workdir` (the shell tool
/// and unified exec share them): escalation (`escalate_requested`, shown with `justification`)
/// is possible only where someone can approve it; `untrusted` asks for every command not known
/// to be read-only; `acceptForSession` answers are remembered. Asking starts `item`. `Err`
/// carries the call's result when the user declined or cancelled (the item is then completed as
/// declined).
pub(crate) fn approve_command(
    turn: &mut TurnRunner,
    call: &ToolCall,
    item: &ThreadItem,
    argv: &[String],
    workdir: &Path,
    escalate_requested: bool,
    justification: Option<&str>,
) -> Result<Approved, CallResult> {
    let settings = turn.tools().settings.clone();
    let escalate = escalate_requested && settings.approval != ApprovalPolicy::Never;
    let session_approved = lock(&turn.thread).approvals.commands.contains(argv);
    let must_ask = !session_approved
        && (escalate
            || (settings.approval == ApprovalPolicy::Untrusted && !shell::is_known_safe(argv)));
    let policy = if escalate {
        SandboxPolicy::DangerFullAccess
    } else {
        settings.sandbox.clone()
    };
    let mut started = false;
    if must_ask {
        let reason = escalate.then(|| justification.unwrap_or("run outside the sandbox"));
        let decision = ask_command(turn, item, &mut started, argv, workdir, reason);
        if let Some(result) = declined(turn, call, item.clone(), decision, argv) {
            return Err(result);
        }
    }
    Ok(Approved { policy, started })
}

/// Under `untrusted`, a sandboxed run whose failure looks like a sandbox denial is offered again
/// without the sandbox (sandbox.md §5): asks (the item is already started) and returns the
/// decision, remembering `acceptForSession`. `None` when that does not apply.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ask_unsandboxed_retry(
    turn: &mut TurnRunner,
    item: &ThreadItem,
    argv: &[String],
    workdir: &Path,
    policy: &SandboxPolicy,
    exit_code: Option<i32>,
    signal: Option<i32>,
    output: &str,
) -> Option<Decision> {
    let applies = !policy.has_full_disk_write_access()
        && turn.tools().settings.approval == ApprovalPolicy::Untrusted
        && !turn.handle.is_interrupted()
        && crate::sandbox::looks_denied(exit_code, signal, output);
    if !applies {
        return None;
    }
    let mut asked = true;
    let decision = ask_command(
        turn,
        item,
        &mut asked,
        argv,
        workdir,
        Some("command failed; retry without sandbox?"),
    );
    if decision == Decision::AcceptForSession {
        lock(&turn.thread).approvals.commands.insert(argv.to_vec());
    }
    Some(decision)
}

fn ask_command(
    turn: &mut TurnRunner,
    item: &ThreadItem,
    started: &mut bool,
    argv: &[String],
    cwd: &Path,
    reason: Option<&str>,
) -> Decision {
    let params = json!({
        "command": exec::shell_join(argv),
        "cwd": cwd.display().to_string(),
        "reason": reason,
        "availableDecisions": ["accept", "acceptForSession", "decline", "cancel"],
    });
    ask(
        turn,
        item,
        started,
        "item/commandExecution/requestApproval",
        params,
    )
}

/// Applies a decision that does not let the call run: completes the item as declined and
/// tells the model. `None` when the call may go on (remembering `acceptForSession`).
pub(super) fn declined(
    turn: &mut TurnRunner,
    call: &ToolCall,
    mut item: ThreadItem,
    decision: Decision,
    argv: &[String],
) -> Option<CallResult> {
    match decision {
        Decision::Accept => None,
        Decision::AcceptForSession => {
            if !argv.is_empty() {
                lock(&turn.thread).approvals.commands.insert(argv.to_vec());
            }
            None
        }
        Decision::Decline | Decision::Cancel => {
            match &mut item {
                ThreadItem::CommandExecution { status, .. }
                | ThreadItem::FileChange { status, .. } => {
                    *status = ItemStatus::Declined;
                }
                _ => {}
            }
            turn.item_completed(item);
            let text = if decision == Decision::Cancel {
                "aborted by user"
            } else {
                "rejected by user: the user declined this action; do not retry it unchanged"
            };
            Some(CallResult {
                output: call.output_item(text),
                cancelled: decision == Decision::Cancel,
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        assert_eq!(
            parse_decision(&json!({"decision": "accept"})),
            Decision::Accept
        );
        assert_eq!(
            parse_decision(&json!({"decision": "acceptForSession"})),
            Decision::AcceptForSession
        );
        assert_eq!(
            parse_decision(&json!({"decision": "cancel"})),
            Decision::Cancel
        );
        assert_eq!(
            parse_decision(&json!({"decision": "decline"})),
            Decision::Decline
        );
        assert_eq!(
            parse_decision(&json!({"decision": {"acceptWithExecpolicyAmendment": {}}})),
            Decision::Accept
        );
        assert_eq!(parse_decision(&json!({})), Decision::Decline);
    }
}
