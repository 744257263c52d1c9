//! The shell tools (models.md §4): their definitions — `shell_command` (one command string
//! run by the user's shell; what current models are tuned to) and the argv `shell` (older and
//! unknown models) — and running a call: a `commandExecution` item run to completion under the
//! approval rules of `approval.rs` (shared with unified exec; escalation through
//! `sandbox_permissions: "require_escalated"` or the older `with_escalated_permissions`), the
//! read-only commands the `untrusted` policy runs without asking, and the output the model
//! reads (bounded by the catalog's truncation policy).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    CallResult, DEFAULT_COMMAND_TIMEOUT, Decision, ShellArgs, ToolCall, approve_command,
    ask_unsandboxed_retry, execute,
};
use crate::exec::ExecOutput;
use crate::protocol::{ItemStatus, ThreadItem};
use crate::sandbox::SandboxPolicy;
use crate::turn::TurnRunner;

pub(super) fn run_shell(
    turn: &mut TurnRunner,
    call: &ToolCall,
    args: &ShellArgs,
    workdir: &Path,
) -> CallResult {
    let mut item = ThreadItem::CommandExecution {
        id: call.call_id.clone(),
        command: crate::exec::shell_join(&args.command),
        cwd: workdir.display().to_string(),
        status: ItemStatus::InProgress,
        aggregated_output: None,
        exit_code: None,
        duration_ms: None,
        command_actions: Vec::new(),
        process_id: None,
        source: crate::protocol::CommandSource::Agent,
    };
    let escalate_requested = args.escalate;
    let approved = match approve_command(
        turn,
        call,
        &item,
        &args.command,
        workdir,
        escalate_requested,
        args.justification.as_deref(),
    ) {
        Ok(approved) => approved,
        Err(result) => return result,
    };
    if !approved.started {
        turn.item_started(&item);
    }
    let policy = approved.policy;
    let timeout = args
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_COMMAND_TIMEOUT);
    let mut outcome = execute(
        turn,
        Some(&call.call_id),
        &args.command,
        workdir,
        &policy,
        timeout,
    );
    if let Ok(output) = &outcome {
        let text = String::from_utf8_lossy(&output.aggregated);
        match ask_unsandboxed_retry(
            turn,
            &item,
            &args.command,
            workdir,
            &policy,
            output.exit_code,
            output.signal,
            &text,
        ) {
            Some(Decision::Accept | Decision::AcceptForSession) => {
                outcome = execute(
                    turn,
                    Some(&call.call_id),
                    &args.command,
                    workdir,
                    &SandboxPolicy::DangerFullAccess,
                    timeout,
                );
            }
            Some(Decision::Cancel) => {
                complete_command(turn, &mut item, &outcome, args.is_shell_command);
                return CallResult {
                    output: call.output_item("aborted by user"),
                    cancelled: true,
                };
            }
            Some(Decision::Decline) | None => {}
        }
    }
    let model_output = complete_command(turn, &mut item, &outcome, args.is_shell_command);
    CallResult {
        output: call.output_item(&model_output),
        cancelled: false,
    }
}

/// Completes the command item from the outcome; returns the text for the model: the
/// `Exit code` / `Wall time` / `Output` text for `shell_command`, the JSON `{output, metadata}`
/// of the argv `shell` tool otherwise, the output bounded by the catalog's policy either way.
fn complete_command(
    turn: &mut TurnRunner,
    item: &mut ThreadItem,
    outcome: &anyhow::Result<ExecOutput>,
    is_shell_command: bool,
) -> String {
    let interrupted = turn.handle.is_interrupted();
    let model = turn.tools().settings.model_info.clone();
    let (model_text, new_status, code, output, duration) = match outcome {
        Ok(out) => {
            let code = out
                .exit_code
                .unwrap_or_else(|| 128 + out.signal.unwrap_or(9));
            let mut text = String::from_utf8_lossy(&out.aggregated).into_owned();
            if out.timed_out {
                text.push_str(&format!(
                    "\ncommand timed out after {} ms",
                    out.duration.as_millis()
                ));
            } else if interrupted {
                text.push_str("\ncommand interrupted by the user");
            }
            let payload = if is_shell_command {
                super::output::format_command_output(code, out.duration, &text, &model)
            } else {
                json!({
                    "output": super::output::truncate_for_model(&text, &model),
                    "metadata": {"exit_code": code, "duration_seconds": (out.duration.as_secs_f64() * 10.0).round() / 10.0},
                })
                .to_string()
            };
            let status = if code == 0 {
                ItemStatus::Completed
            } else {
                ItemStatus::Failed
            };
            (payload, status, Some(code), text, out.duration)
        }
        Err(e) => {
            let text = format!("failed to run command: {e:#}");
            (text.clone(), ItemStatus::Failed, None, text, Duration::ZERO)
        }
    };
    if let ThreadItem::CommandExecution {
        status,
        aggregated_output,
        exit_code,
        duration_ms,
        ..
    } = item
    {
        *status = new_status;
        *aggregated_output = Some(output);
        *exit_code = code;
        *duration_ms = Some(duration.as_millis() as i64);
    }
    turn.item_completed(item.clone());
    model_text
}

/// The argv `shell` function tool (models the catalog does not tune to `shell_command`).
pub fn shell_spec() -> Value {
    json!({
        "type": "function",
        "name": "shell",
        "description": "Runs a command and returns its output. Give the program and its arguments as an array, e.g. [\"bash\", \"-lc\", \"cargo test\"]. Commands run in the sandbox of the session; set sandbox_permissions to \"require_escalated\" (with a justification) to ask the user to run one outside it.",
        "strict": false,
        "parameters": {
            "type": "object",
            "properties": {
                "command": {"type": "array", "items": {"type": "string"}, "description": "The program and its arguments."},
                "workdir": {"type": "string", "description": "Working directory; defaults to the session's."},
                "timeout_ms": {"type": "number", "description": "Kill the command after this many milliseconds."},
                "sandbox_permissions": {"type": "string", "enum": ["use_default", "require_escalated"], "description": "`require_escalated` asks to run outside the sandbox."},
                "with_escalated_permissions": {"type": "boolean", "description": "Older spelling of sandbox_permissions: \"require_escalated\"."},
                "justification": {"type": "string", "description": "Why escalation is needed; shown to the user."}
            },
            "required": ["command"],
            "additionalProperties": false
        }
    })
}

/// The user's login shell (from the password database), used to run `shell_command`
/// scripts; `/bin/sh` when it cannot be read or is not a usable program.
#[cfg(unix)]
pub fn user_shell() -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: `pwd` and `buf` are caller-owned and live across the call; `result` is set to
    // null or to `&pwd`, whose string fields point into `buf`.
    let shell = unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_shell.is_null() {
            None
        } else {
            std::ffi::CStr::from_ptr(pwd.pw_shell)
                .to_str()
                .ok()
                .map(str::to_string)
        }
    };
    shell
        .filter(|path| {
            let name = path.rsplit('/').next().unwrap_or_default();
            // Accounts whose shell refuses logins cannot run anything.
            !matches!(name, "nologin" | "false" | "") && Path::new(path).is_file()
        })
        .unwrap_or_else(|| "/bin/sh".to_string())
}

/// The shell that runs `shell_command` scripts where there is no password database.
#[cfg(not(unix))]
pub fn user_shell() -> String {
    "sh".to_string()
}

/// Whether a command only reads (the `untrusted` policy runs these without asking).
pub fn is_known_safe(argv: &[String]) -> bool {
    if let [shell, flag, script] = argv {
        let shell = Path::new(shell)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if matches!(shell, "bash" | "sh" | "zsh") && matches!(flag.as_str(), "-c" | "-lc") {
            if script
                .chars()
                .any(|c| "|&;<>()$`\\\"'\n*?[]{}~!#".contains(c))
            {
                return false;
            }
            let words: Vec<String> = script.split_whitespace().map(str::to_string).collect();
            return !words.is_empty() && is_known_safe(&words);
        }
    }
    let Some(program) = argv.first() else {
        return false;
    };
    let program = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let args = &argv[1..];
    match program {
        "ls" | "cat" | "head" | "tail" | "wc" | "pwd" | "echo" | "true" | "which" | "stat"
        | "file" | "nl" | "cut" | "uniq" | "tree" | "du" | "whoami" | "date" | "basename"
        | "dirname" | "realpath" => true,
        "grep" => true,
        "rg" => !args
            .iter()
            .any(|a| a == "--pre" || a.starts_with("--pre=") || a == "-z" || a == "--search-zip"),
        "find" => !args.iter().any(|a| {
            matches!(
                a.as_str(),
                "-exec"
                    | "-execdir"
                    | "-ok"
                    | "-okdir"
                    | "-delete"
                    | "-fls"
                    | "-fprint"
                    | "-fprint0"
                    | "-fprintf"
            )
        }),
        "sort" => !args.iter().any(|a| a == "-o" || a.starts_with("--output")),
        "sed" => {
            args.len() >= 2
                && args[0] == "-n"
                && args[1].ends_with('p')
                && args[1]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == 'p')
        }
        "git" => {
            let sub = args.iter().find(|a| !a.starts_with('-'));
            let risky = args
                .iter()
                .any(|a| a == "-c" || a.starts_with("--output") || a == "--ext-diff");
            !risky
                && matches!(
                    sub.map(String::as_str),
                    Some(
                        "status"
                            | "log"
                            | "diff"
                            | "show"
                            | "branch"
                            | "rev-parse"
                            | "ls-files"
                            | "blame"
                    )
                )
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn known_safe_commands() {
        let cases: &[(&[&str], bool)] = &[
            (&["ls", "-la"], true),
            (&["/bin/cat", "a.txt"], true),
            (&["rg", "foo"], true),
            (&["rg", "--pre", "sh", "foo"], false),
            (&["git", "status"], true),
            (&["git", "-c", "core.pager=x", "log"], false),
            (&["git", "commit", "-m", "x"], false),
            (&["find", ".", "-name", "x"], true),
            (&["find", ".", "-delete"], false),
            (&["sed", "-n", "1,5p", "f"], true),
            (&["sed", "-i", "s/a/b/", "f"], false),
            (&["bash", "-lc", "ls -la"], true),
            (&["bash", "-lc", "ls; rm -rf x"], false),
            (&["bash", "-lc", "cat a > b"], false),
            (&["rm", "-rf", "/"], false),
            (&["python3", "x.py"], false),
            (&[], false),
        ];
        for (words, want) in cases {
            assert_eq!(is_known_safe(&argv(words)), *want, "{words:?}");
        }
    }
}
