//! Reading the arguments of the shell tools (`shell_command`'s command string, the argv
//! `shell`, either way of asking for escalation) and of the function-form `apply_patch`.

use serde::Deserialize;

use super::{ToolCall, shell};

/// A command call from either shell tool, once read.
pub(super) struct ShellArgs {
    /// The argv to run.
    pub(super) command: Vec<String>,
    pub(super) workdir: Option<String>,
    pub(super) timeout_ms: Option<u64>,
    /// The model asked to run outside the sandbox.
    pub(super) escalate: bool,
    pub(super) justification: Option<String>,
    /// Which tool it came from: `shell_command` output is plain text, `shell` output JSON.
    pub(super) is_shell_command: bool,
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
    pub(super) fn parse(call: &ToolCall) -> Result<Self, String> {
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
pub(super) struct PatchArgs {
    pub(super) input: String,
}
