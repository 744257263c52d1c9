//! The model's tools inside a turn (protocol.md §7, model-api.md §3): `shell` (a
//! `commandExecution` item, run through `exec` under the thread's sandbox, output streamed) and
//! `apply_patch` (a `fileChange` item; also when the model runs `apply_patch` through the shell),
//! with the approval rules of each policy, session approvals, output capping for the model, and
//! the turn's cumulative diff. The turn loop is `turn/`'s; spawning processes is `exec.rs`'s.
//!
//! This file holds the dispatch, approvals and running a process; `shell.rs` the shell tool and
//! its read-only command list; `patch.rs` the apply_patch tool and the turn's diff;
//! `client_request.rs` waiting for the client's answer to a request a tool makes.

mod client_request;
pub mod dynamic;
pub mod mcp;
pub mod output;
mod patch;
mod patch_scope;
mod plan;
mod shell;
pub mod specs;
pub mod unified_exec;
mod view_image;
pub mod web_search;

use client_request::Reply;
use patch::run_patch;
use shell::run_shell;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::apply_patch;
use crate::config::ApprovalPolicy;
use crate::exec::{self, ExecOutput, ExecRequest, OutputStream, StdinMode};
use crate::protocol::{ItemStatus, ThreadItem};
use crate::sandbox::SandboxPolicy;
use crate::thread::{Settings, lock};
use crate::turn::TurnRunner;

/// Commands run this long at most unless the model asks for another timeout.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Output kept per command (head and tail) for the item and for deltas' accounting. What the
/// model reads is bounded further by the catalog's truncation policy (`output.rs`).
const COMMAND_OUTPUT_CAP_BYTES: usize = 256 * 1024;

/// What commands run with, fixed for the server's lifetime.
pub struct ToolEnv {
    /// This executable, for `--codex-run-as-apply-patch`.
    pub exe: PathBuf,
    /// The environment of every child: the server's, with the alias directory first on `PATH`.
    pub env: exec::Env,
    /// The MCP servers whose tools the model may call (`mcp.rs`).
    pub mcp: Arc<crate::mcp::Registry>,
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
    /// The namespace of a tool offered inside one (client tools).
    pub namespace: Option<String>,
}

impl ToolCall {
    /// The call in a finished output item, if it is one. A name the Responses Lite shape
    /// qualified with its tool namespace (`functions.x`) is read as `x`.
    pub fn from_item(item: &Value) -> Option<Self> {
        let kind = item.get("type")?.as_str()?;
        let field = match kind {
            "function_call" => "arguments",
            "custom_tool_call" => "input",
            _ => return None,
        };
        let name = item.get("name")?.as_str()?;
        let lite_prefix = format!("{}.", crate::prompt::LITE_TOOL_NAMESPACE);
        let name = name.strip_prefix(&lite_prefix).unwrap_or(name);
        Some(Self {
            call_id: item.get("call_id")?.as_str()?.to_string(),
            name: name.to_string(),
            payload: item
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            is_custom: kind == "custom_tool_call",
            namespace: item
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
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

/// A command call from either shell tool, once read.
struct ShellArgs {
    /// The argv to run.
    command: Vec<String>,
    workdir: Option<String>,
    timeout_ms: Option<u64>,
    /// The model asked to run outside the sandbox.
    escalate: bool,
    justification: Option<String>,
    /// Which tool it came from: `shell_command` output is plain text, `shell` output JSON.
    is_shell_command: bool,
}

/// `sandbox_permissions` of a command call.
const REQUIRE_ESCALATED: &str = "require_escalated";

/// The argv `shell` tool's arguments.
#[derive(Deserialize)]
struct ArgvShellArgs {
    command: Vec<String>,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    with_escalated_permissions: Option<bool>,
    #[serde(default)]
    sandbox_permissions: Option<String>,
    #[serde(default)]
    justification: Option<String>,
}

/// The `shell_command` tool's arguments.
#[derive(Deserialize)]
struct ShellCommandArgs {
    command: String,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    login: Option<bool>,
    #[serde(default)]
    sandbox_permissions: Option<String>,
    #[serde(default)]
    with_escalated_permissions: Option<bool>,
    #[serde(default)]
    justification: Option<String>,
}

/// Escalation is asked either way: `sandbox_permissions: "require_escalated"` (current) or
/// `with_escalated_permissions: true` (older models).
fn wants_escalation(permissions: Option<&str>, legacy: Option<bool>) -> bool {
    permissions == Some(REQUIRE_ESCALATED) || legacy == Some(true)
}

impl ShellArgs {
    fn parse(call: &ToolCall) -> Result<Self, String> {
        let bad = |e: serde_json::Error| format!("failed to parse function arguments: {e}");
        if call.name == "shell_command" {
            let args: ShellCommandArgs = serde_json::from_str(&call.payload).map_err(bad)?;
            if args.command.trim().is_empty() {
                return Err("command must not be empty".to_string());
            }
            let flag = if args.login.unwrap_or(true) {
                "-lc"
            } else {
                "-c"
            };
            return Ok(Self {
                command: vec![shell::user_shell(), flag.to_string(), args.command],
                workdir: args.workdir,
                timeout_ms: args.timeout_ms,
                escalate: wants_escalation(
                    args.sandbox_permissions.as_deref(),
                    args.with_escalated_permissions,
                ),
                justification: args.justification,
                is_shell_command: true,
            });
        }
        let args: ArgvShellArgs = serde_json::from_str(&call.payload).map_err(bad)?;
        if args.command.is_empty() {
            return Err("command must not be empty".to_string());
        }
        Ok(Self {
            command: args.command,
            workdir: args.workdir,
            timeout_ms: args.timeout_ms,
            escalate: wants_escalation(
                args.sandbox_permissions.as_deref(),
                args.with_escalated_permissions,
            ),
            justification: args.justification,
            is_shell_command: false,
        })
    }
}

#[derive(Deserialize)]
struct PatchArgs {
    input: String,
}

/// The user's answer to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
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
        ("shell" | "shell_command", false) => {
            let args = match ShellArgs::parse(call) {
                Ok(args) => args,
                Err(message) => return plain(message),
            };
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
        ("exec_command", false) => unified_exec::run_exec_command(turn, call),
        ("write_stdin", false) => unified_exec::run_write_stdin(turn, call),
        ("apply_patch", true) => run_patch(turn, call, &call.payload, &cwd),
        ("apply_patch", false) => match serde_json::from_str::<PatchArgs>(&call.payload) {
            Ok(args) => run_patch(turn, call, &args.input, &cwd),
            Err(e) => plain(format!("failed to parse function arguments: {e}")),
        },
        (plan::NAME, false) if turn.tools().settings.config.update_plan => plan::run(turn, call),
        (view_image::NAME, false) if ModelCaps::of(&turn.tools().settings.model_info).images => {
            view_image::run(turn, call)
        }
        (name, false)
            if dynamic::defines(
                &turn.tools().settings.dynamic_tools,
                call.namespace.as_deref(),
                name,
            ) =>
        {
            dynamic::run(turn, call)
        }
        (name, false) if name.starts_with("mcp__") => match mcp::find(turn, name) {
            Some(tool) => mcp::run(turn, call, &tool),
            None => plain(format!("unsupported call: {name}")),
        },
        (name, _) => plain(format!("unsupported call: {name}")),
    }
}

/// What a model can take, as far as the tools offered to it depend on it.
#[derive(Debug, Clone, Copy)]
pub struct ModelCaps {
    /// Its input modalities include images (`view_image` is offered).
    pub images: bool,
    /// It is driven in the Responses Lite shape (no hosted tools).
    pub lite: bool,
}

impl ModelCaps {
    /// The capabilities of `model` as the catalog describes it.
    pub fn of(model: &crate::models::ModelInfo) -> Self {
        Self {
            images: model.accepts_images(),
            lite: model.uses_responses_lite(),
        }
    }
}

/// The tools offered beside shell and apply_patch, in the order the model sees them:
/// `update_plan` (when `tools.update_plan` is on), `view_image` (models taking images), the
/// client's dynamic tools, then the hosted `web_search` (per `web_search`, not for Lite).
pub fn extra_definitions(settings: &Settings, caps: ModelCaps) -> Vec<Value> {
    let mut tools = Vec::new();
    if settings.config.update_plan {
        tools.push(plan::definition());
    }
    if caps.images {
        tools.push(view_image::definition());
    }
    tools.extend(dynamic::definitions(&settings.dynamic_tools));
    if !caps.lite
        && let Some(search) = web_search::definition(settings.config.web_search)
    {
        tools.push(search);
    }
    tools
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

/// Turns byte chunks into text without splitting UTF-8 sequences across chunks (invalid bytes
/// become U+FFFD).
#[derive(Default)]
pub(crate) struct Utf8Chunks {
    pending: Vec<u8>,
}

impl Utf8Chunks {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
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

    pub(crate) fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
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
}
