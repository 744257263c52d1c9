//! The model's tools inside a turn (protocol.md §7, model-api.md §3): `shell` (a
//! `commandExecution` item, run through `exec` under the thread's sandbox, output streamed) and
//! `apply_patch` (a `fileChange` item; also when the model runs `apply_patch` through the shell),
//! with the approval rules of each policy, session approvals, output capping for the model, and
//! the turn's cumulative diff. The turn loop is `turn/`'s; spawning processes is `exec.rs`'s.
//!
//! This file holds the tool-call types and the dispatch; `args.rs` reads the shell and
//! apply_patch arguments; `approval.rs` the approval rules; `process.rs` running a process;
//! `shell.rs` the shell tool and its read-only command list; `patch.rs` the apply_patch tool and
//! the turn's diff; `client_request.rs` waiting for the client's answer to a request a tool
//! makes.

mod approval;
mod args;
mod client_request;
pub mod dynamic;
pub mod mcp;
pub mod output;
mod patch;
mod patch_scope;
mod plan;
mod process;
mod shell;
pub mod specs;
pub mod unified_exec;
mod view_image;
pub mod web_search;

pub(crate) use approval::{Decision, approve_command, ask_unsandboxed_retry};
use approval::{ask, declined};
use args::{PatchArgs, ShellArgs};
use patch::run_patch;
pub(crate) use process::Utf8Chunks;
use process::execute;
use shell::run_shell;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::apply_patch;
use crate::exec;
use crate::thread::Settings;
use crate::turn::TurnRunner;

/// Commands run this long at most unless the model asks for another timeout.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

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
