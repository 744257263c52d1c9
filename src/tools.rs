//! The model's tools inside a turn (protocol.md §7, model-api.md §3): `shell` (a
//! `commandExecution` item, run through `exec` under the thread's sandbox, output streamed) and
//! `apply_patch` (a `fileChange` item; also when the model runs `apply_patch` through the shell),
//! with the approval rules of each policy, session approvals, output capping for the model, and
//! the turn's cumulative diff. The turn loop is `turn.rs`'s; spawning processes is `exec.rs`'s.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::select;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::apply_patch::{self, ChangeKind, FileChange};
use crate::config::ApprovalPolicy;
use crate::exec::{self, ExecOutput, ExecRequest, OutputStream, StdinMode};
use crate::protocol::{
    FileUpdateChange, ItemStatus, PatchChangeKind, ThreadItem, notify::DiffUpdated,
    notify::RequestResolved,
};
use crate::sandbox::SandboxPolicy;
use crate::thread::{Control, Settings, lock};
use crate::turn::TurnRunner;

/// Commands run this long at most unless the model asks for another timeout.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Output kept per command (head and tail) for the item and for deltas' accounting.
const COMMAND_OUTPUT_CAP_BYTES: usize = 256 * 1024;
/// Output of one tool call sent back to the model (head and tail kept).
pub const MODEL_OUTPUT_CAP_BYTES: usize = 16 * 1024;

/// What commands run with, fixed for the server's lifetime.
pub struct ToolEnv {
    /// This executable, for `--codex-run-as-apply-patch`.
    pub exe: PathBuf,
    /// The environment of every child: the server's, with the alias directory first on `PATH`.
    pub env: HashMap<String, String>,
}

/// A tool call from the model.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The model's `call_id`.
    pub call_id: String,
    /// Tool name.
    pub name: String,
    /// JSON arguments (function tools) or raw input (custom tools).
    pub payload: String,
    /// A freeform (custom) tool call rather than a function call.
    pub is_custom: bool,
}

impl ToolCall {
    /// The call in a finished output item, if it is one.
    pub fn from_item(item: &Value) -> Option<Self> {
        let kind = item.get("type")?.as_str()?;
        let field = match kind {
            "function_call" => "arguments",
            "custom_tool_call" => "input",
            _ => return None,
        };
        Some(Self {
            call_id: item.get("call_id")?.as_str()?.to_string(),
            name: item.get("name")?.as_str()?.to_string(),
            payload: item
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            is_custom: kind == "custom_tool_call",
        })
    }

    /// The history item carrying `output` back to the model for this call.
    pub fn output_item(&self, output: &str) -> Value {
        let kind = if self.is_custom {
            "custom_tool_call_output"
        } else {
            "function_call_output"
        };
        json!({"type": kind, "call_id": self.call_id, "output": output})
    }
}

/// What a tool call produced.
pub struct CallResult {
    /// The output item for the history.
    pub output: Value,
    /// The user chose `cancel`: the turn stops.
    pub cancelled: bool,
}

/// Per-turn tool state: the settings the turn started with and the cumulative diff.
pub struct Tools {
    env: Arc<ToolEnv>,
    settings: Settings,
    /// File contents before this turn first touched them (`None`: did not exist).
    baseline: BTreeMap<PathBuf, Option<String>>,
}

impl Tools {
    /// Tools for a turn running with `settings`.
    pub fn new(env: Arc<ToolEnv>, settings: Settings) -> Self {
        Self {
            env,
            settings,
            baseline: BTreeMap::new(),
        }
    }
}

#[derive(Deserialize)]
struct ShellArgs {
    command: Vec<String>,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    with_escalated_permissions: Option<bool>,
    #[serde(default)]
    justification: Option<String>,
}

#[derive(Deserialize)]
struct PatchArgs {
    input: String,
}

/// The user's answer to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Accept,
    AcceptForSession,
    Decline,
    Cancel,
}

/// Runs one tool call to completion (or until interrupted).
pub fn run_call(turn: &mut TurnRunner, call: &ToolCall) -> CallResult {
    let plain = |text: String| CallResult {
        output: call.output_item(&text),
        cancelled: false,
    };
    let cwd = turn.tools().settings.cwd.clone();
    match (call.name.as_str(), call.is_custom) {
        ("shell", false) => {
            let args: ShellArgs = match serde_json::from_str(&call.payload) {
                Ok(args) => args,
                Err(e) => return plain(format!("failed to parse function arguments: {e}")),
            };
            if args.command.is_empty() {
                return plain("command must not be empty".to_string());
            }
            let workdir = resolve_dir(&cwd, args.workdir.as_deref());
            if let Some(found) = apply_patch::parse_shell_invocation(&args.command) {
                let dir = resolve_dir(&workdir, found.cd.as_deref());
                return run_patch(turn, call, &found.patch, &dir);
            }
            if apply_patch::is_bare_patch(&args.command) {
                return plain("to apply a patch, run it as [\"apply_patch\", \"<patch>\"] or use the apply_patch tool".to_string());
            }
            run_shell(turn, call, &args, &workdir)
        }
        ("apply_patch", true) => run_patch(turn, call, &call.payload, &cwd),
        ("apply_patch", false) => match serde_json::from_str::<PatchArgs>(&call.payload) {
            Ok(args) => run_patch(turn, call, &args.input, &cwd),
            Err(e) => plain(format!("failed to parse function arguments: {e}")),
        },
        (name, _) => plain(format!("unsupported call: {name}")),
    }
}

fn resolve_dir(base: &Path, dir: Option<&str>) -> PathBuf {
    match dir {
        Some(d) if !d.is_empty() => apply_patch::resolve(base, Path::new(d)),
        _ => base.to_path_buf(),
    }
}

// ---- approvals -----------------------------------------------------------------------------

/// Asks the client (`method`, `params`) and waits for the decision, following the order of
/// protocol.md §7. The item must not have been started yet; this starts it. An interrupt or a
/// closed connection cancels the request.
fn ask(
    turn: &mut TurnRunner,
    item: &ThreadItem,
    started: &mut bool,
    method: &str,
    mut params: Value,
) -> Decision {
    turn.set_waiting_on_approval(true);
    if !*started {
        turn.item_started(item);
        *started = true;
    }
    params["threadId"] = json!(turn.thread_id);
    params["turnId"] = json!(turn.turn_id);
    params["itemId"] = json!(item.id());
    params["startedAtMs"] = json!(crate::time::unix_millis());
    let (request_id, answer) = turn.rpc.request(method, &params);
    let control = turn.control.clone();
    let decision = loop {
        select! {
            recv(answer) -> reply => break match reply {
                Ok(Ok(result)) => parse_decision(&result),
                Ok(Err(error)) => {
                    crate::log::warn(&format!("approval request {request_id} failed: {error}; treating it as decline"));
                    Decision::Decline
                }
                Err(_) => Decision::Cancel, // the connection closed
            },
            recv(control) -> message => match message {
                Ok(Control::Steer(input)) => turn.pending_steer(input),
                Ok(Control::Interrupt) | Err(_) => {
                    turn.rpc.cancel(request_id);
                    break Decision::Cancel;
                }
            },
        }
        if turn.handle.is_interrupted() {
            turn.rpc.cancel(request_id);
            break Decision::Cancel;
        }
    };
    turn.rpc.notify(
        "serverRequest/resolved",
        RequestResolved {
            thread_id: &turn.thread_id,
            request_id,
        },
    );
    turn.set_waiting_on_approval(false);
    decision
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

// ---- shell ---------------------------------------------------------------------------------

fn run_shell(
    turn: &mut TurnRunner,
    call: &ToolCall,
    args: &ShellArgs,
    workdir: &Path,
) -> CallResult {
    let settings = turn.tools().settings.clone();
    let mut item = ThreadItem::CommandExecution {
        id: call.call_id.clone(),
        command: shell_join(&args.command),
        cwd: workdir.display().to_string(),
        status: ItemStatus::InProgress,
        aggregated_output: None,
        exit_code: None,
        duration_ms: None,
        command_actions: Vec::new(),
    };
    // Escalation is only possible where someone can approve it.
    let escalate = args.with_escalated_permissions.unwrap_or(false)
        && settings.approval != ApprovalPolicy::Never;
    let session_approved = lock(&turn.thread)
        .approvals
        .commands
        .contains(&args.command);
    let must_ask = !session_approved
        && (escalate
            || (settings.approval == ApprovalPolicy::Untrusted && !is_known_safe(&args.command)));
    let policy = if escalate {
        SandboxPolicy::DangerFullAccess
    } else {
        settings.sandbox.clone()
    };
    let mut started = false;
    if must_ask {
        let reason = escalate.then(|| {
            args.justification
                .clone()
                .unwrap_or_else(|| "run outside the sandbox".to_string())
        });
        let decision = ask_command(
            turn,
            &item,
            &mut started,
            &args.command,
            workdir,
            reason.as_deref(),
        );
        if let Some(result) = declined(turn, call, item.clone(), decision, &args.command) {
            return result;
        }
    }
    if !started {
        turn.item_started(&item);
    }
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
        let sandboxed = !policy.has_full_disk_write_access();
        if sandboxed
            && settings.approval == ApprovalPolicy::Untrusted
            && !turn.handle.is_interrupted()
            && crate::sandbox::looks_denied(output.exit_code, output.signal, &text)
        {
            let mut asked = true;
            let decision = ask_command(
                turn,
                &item,
                &mut asked,
                &args.command,
                workdir,
                Some("command failed; retry without sandbox?"),
            );
            if matches!(decision, Decision::Accept | Decision::AcceptForSession) {
                if decision == Decision::AcceptForSession {
                    lock(&turn.thread)
                        .approvals
                        .commands
                        .insert(args.command.clone());
                }
                outcome = execute(
                    turn,
                    Some(&call.call_id),
                    &args.command,
                    workdir,
                    &SandboxPolicy::DangerFullAccess,
                    timeout,
                );
            } else if decision == Decision::Cancel {
                complete_command(turn, &mut item, &outcome);
                return CallResult {
                    output: call.output_item("aborted by user"),
                    cancelled: true,
                };
            }
        }
    }
    let model_output = complete_command(turn, &mut item, &outcome);
    CallResult {
        output: call.output_item(&model_output),
        cancelled: false,
    }
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
        "command": shell_join(argv),
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
fn declined(
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

/// Runs a command under `policy`, streaming its output as `item/commandExecution/outputDelta`
/// for `item_id` (or silently without one). An interrupt kills it at once.
fn execute(
    turn: &mut TurnRunner,
    item_id: Option<&str>,
    argv: &[String],
    cwd: &Path,
    policy: &SandboxPolicy,
    timeout: Duration,
) -> anyhow::Result<ExecOutput> {
    let tools = turn.tools();
    let request = ExecRequest {
        argv: argv.to_vec(),
        cwd: cwd.to_path_buf(),
        sandbox_cwd: tools.settings.cwd.clone(),
        env: tools.env.env.clone(),
        timeout: Some(timeout),
        policy: policy.clone(),
        output_cap_bytes: COMMAND_OUTPUT_CAP_BYTES,
        stdin: StdinMode::Null,
    };
    let running = exec::spawn(request)?;
    turn.handle.set_running_command(Some(running.kill_handle()));
    let mut decoders = [Utf8Chunks::default(), Utf8Chunks::default()];
    let result = running.wait(&mut |stream, bytes| {
        let Some(item_id) = item_id else { return };
        let decoder = &mut decoders[usize::from(stream == OutputStream::Stderr)];
        let text = decoder.push(bytes);
        if !text.is_empty() {
            turn.item_delta("item/commandExecution/outputDelta", item_id, &text);
        }
    });
    if let Some(item_id) = item_id {
        for decoder in &mut decoders {
            let rest = decoder.finish();
            if !rest.is_empty() {
                turn.item_delta("item/commandExecution/outputDelta", item_id, &rest);
            }
        }
    }
    turn.handle.set_running_command(None);
    result
}

/// Completes the command item from the outcome; returns the text for the model.
fn complete_command(
    turn: &mut TurnRunner,
    item: &mut ThreadItem,
    outcome: &anyhow::Result<ExecOutput>,
) -> String {
    let interrupted = turn.handle.is_interrupted();
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
            let payload = json!({
                "output": cap_text(&text, MODEL_OUTPUT_CAP_BYTES),
                "metadata": {"exit_code": code, "duration_seconds": (out.duration.as_secs_f64() * 10.0).round() / 10.0},
            });
            let status = if code == 0 {
                ItemStatus::Completed
            } else {
                ItemStatus::Failed
            };
            (payload.to_string(), status, Some(code), text, out.duration)
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

/// Keeps the head and tail of `text` within `cap` bytes, marking what was left out.
pub fn cap_text(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_string();
    }
    let half = cap / 2;
    let mut head_end = half;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - half;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    format!(
        "{}\n[... {} bytes omitted ...]\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

/// Turns byte chunks into text without splitting UTF-8 sequences across chunks (invalid bytes
/// become U+FFFD).
#[derive(Default)]
struct Utf8Chunks {
    pending: Vec<u8>,
}

impl Utf8Chunks {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid_up_to = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(), // an incomplete tail
            Err(_) => self.pending.len(),
        };
        let text = String::from_utf8_lossy(&self.pending[..valid_up_to]).into_owned();
        self.pending.drain(..valid_up_to);
        text
    }

    fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

/// The command as one display string, quoting words that need it.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
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

// ---- apply_patch ---------------------------------------------------------------------------

fn run_patch(turn: &mut TurnRunner, call: &ToolCall, patch_text: &str, cwd: &Path) -> CallResult {
    let plain = |text: String| CallResult {
        output: call.output_item(&text),
        cancelled: false,
    };
    let patch = match apply_patch::parse_patch(patch_text) {
        Ok(patch) => patch,
        Err(e) => return plain(format!("apply_patch verification failed: {e}")),
    };
    let changes = match apply_patch::compute_changes(&patch, cwd) {
        Ok(changes) => changes,
        Err(e) => return plain(format!("apply_patch verification failed: {e}")),
    };
    let settings = turn.tools().settings.clone();
    let mut item = ThreadItem::FileChange {
        id: call.call_id.clone(),
        changes: changes.iter().map(to_protocol_change).collect(),
        status: ItemStatus::InProgress,
    };
    let touched: Vec<PathBuf> = changes
        .iter()
        .flat_map(|c| {
            let mut paths = vec![c.path.clone()];
            if let ChangeKind::Update {
                move_path: Some(dest),
            } = &c.kind
            {
                paths.push(dest.clone());
            }
            paths
        })
        .collect();
    let writable = touched
        .iter()
        .all(|p| is_writable(&settings.sandbox, &settings.cwd, p));
    let root = common_parent(&touched);
    let session_approved = {
        let state = lock(&turn.thread);
        touched.iter().all(|p| state.is_patch_root_approved(p))
    };
    let must_ask = !session_approved
        && match settings.approval {
            ApprovalPolicy::Untrusted => true,
            ApprovalPolicy::OnRequest => !writable,
            ApprovalPolicy::Never => false,
        };
    let mut started = false;
    let mut policy = settings.sandbox.clone();
    if must_ask {
        let params = json!({
            "reason": if writable { None } else { Some("the patch writes outside the sandbox's writable roots") },
            "grantRoot": root.as_ref().map(|r| r.display().to_string()),
        });
        let decision = ask(
            turn,
            &item,
            &mut started,
            "item/fileChange/requestApproval",
            params,
        );
        if decision == Decision::AcceptForSession
            && let Some(root) = &root
        {
            lock(&turn.thread).approvals.patch_roots.push(root.clone());
        }
        if let Some(result) = declined(turn, call, item.clone(), decision, &[]) {
            return result;
        }
        // The user approved these writes: do not let the sandbox refuse what they allowed.
        policy = SandboxPolicy::DangerFullAccess;
    } else if session_approved {
        policy = SandboxPolicy::DangerFullAccess;
    } else if !writable && settings.approval == ApprovalPolicy::Never {
        turn.item_started(&item);
        if let ThreadItem::FileChange { status, .. } = &mut item {
            *status = ItemStatus::Failed;
        }
        turn.item_completed(item);
        return plain("patch rejected: it writes outside the sandbox's writable roots and the approval policy is never".to_string());
    }
    if !started {
        turn.item_started(&item);
    }
    turn.tools().snapshot(&touched);
    let exe = turn.tools().env.exe.display().to_string();
    let argv = vec![
        exe,
        apply_patch::RUN_AS_APPLY_PATCH_ARG.to_string(),
        patch.text.clone(),
    ];
    let outcome = execute(turn, None, &argv, cwd, &policy, DEFAULT_COMMAND_TIMEOUT);
    let (text, ok) = match &outcome {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (text, out.exit_code == Some(0))
        }
        Err(e) => (format!("failed to apply the patch: {e:#}"), false),
    };
    if let ThreadItem::FileChange { status, .. } = &mut item {
        *status = if ok {
            ItemStatus::Completed
        } else {
            ItemStatus::Failed
        };
    }
    turn.item_completed(item);
    let diff = turn.tools().cumulative_diff();
    turn.rpc.notify(
        "turn/diff/updated",
        DiffUpdated {
            thread_id: &turn.thread_id,
            turn_id: &turn.turn_id,
            diff: &diff,
        },
    );
    CallResult {
        output: call.output_item(&cap_text(&text, MODEL_OUTPUT_CAP_BYTES)),
        cancelled: false,
    }
}

fn to_protocol_change(change: &FileChange) -> FileUpdateChange {
    FileUpdateChange {
        path: change.path.display().to_string(),
        kind: match &change.kind {
            ChangeKind::Add => PatchChangeKind::Add,
            ChangeKind::Delete => PatchChangeKind::Delete,
            ChangeKind::Update { move_path } => PatchChangeKind::Update {
                move_path: move_path.as_ref().map(|p| p.display().to_string()),
            },
        },
        diff: change.unified_diff.clone(),
    }
}

/// Whether the sandbox lets a command write `path`.
fn is_writable(policy: &SandboxPolicy, cwd: &Path, path: &Path) -> bool {
    if policy.has_full_disk_write_access() {
        return true;
    }
    policy.writable_roots(cwd).iter().any(|root| {
        path.starts_with(&root.root)
            && !root
                .read_only_subpaths
                .iter()
                .any(|ro| path.starts_with(ro))
    })
}

/// The deepest directory containing every path.
fn common_parent(paths: &[PathBuf]) -> Option<PathBuf> {
    let mut iter = paths.iter().filter_map(|p| p.parent());
    let mut common = iter.next()?.to_path_buf();
    for parent in iter {
        while !parent.starts_with(&common) {
            common = common.parent()?.to_path_buf();
        }
    }
    Some(common)
}

impl Tools {
    /// Remembers the contents of `paths` before this turn first changes them.
    fn snapshot(&mut self, paths: &[PathBuf]) {
        for path in paths {
            self.baseline
                .entry(path.clone())
                .or_insert_with(|| std::fs::read_to_string(path).ok());
        }
    }

    /// The turn's cumulative diff: every touched file from its baseline to now.
    fn cumulative_diff(&self) -> String {
        let mut out = String::new();
        for (path, before) in &self.baseline {
            let after = std::fs::read_to_string(path).ok();
            let shown = path
                .strip_prefix(&self.settings.cwd)
                .unwrap_or(path)
                .display()
                .to_string();
            out.push_str(&apply_patch::git_file_diff(
                &shown,
                &shown,
                before.as_deref(),
                after.as_deref(),
            ));
        }
        out
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

    #[test]
    fn joins_and_caps() {
        assert_eq!(
            shell_join(&argv(&["bash", "-lc", "echo 'hi there'"])),
            "bash -lc 'echo '\\''hi there'\\'''"
        );
        assert_eq!(shell_join(&argv(&["ls", "-la", ""])), "ls -la ''");
        let text = "é".repeat(100);
        let capped = cap_text(&text, 51);
        assert!(capped.contains("bytes omitted"), "{capped}");
        assert!(capped.len() < text.len());
        assert_eq!(cap_text("short", 10), "short");
    }

    #[test]
    fn utf8_chunks_never_split_characters() {
        let text = "aé漢🎉z";
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            let mut d = Utf8Chunks::default();
            let mut out = d.push(&bytes[..split]);
            out.push_str(&d.push(&bytes[split..]));
            out.push_str(&d.finish());
            assert_eq!(out, text, "split at {split}");
        }
        let mut d = Utf8Chunks::default();
        assert_eq!(d.push(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn decisions_and_parents() {
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
        let paths = [
            PathBuf::from("/w/a/b.txt"),
            PathBuf::from("/w/a/c/d.txt"),
            PathBuf::from("/w/e.txt"),
        ];
        assert_eq!(common_parent(&paths), Some(PathBuf::from("/w")));
    }
}
