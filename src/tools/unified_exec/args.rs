//! What the model sends and is offered for unified exec: the two tool definitions, their
//! arguments, the yield and output-budget rules (as the reference documents them), chunk ids,
//! the session environment, and which shell runs a command line.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// `exec_command` waits this long by default.
pub(super) const DEFAULT_EXEC_YIELD: Duration = Duration::from_millis(10_000);
/// A non-empty `write_stdin` waits this long by default.
pub(super) const DEFAULT_WRITE_YIELD: Duration = Duration::from_millis(250);
/// The shortest wait of any call, and the longest of `exec_command` and of a write.
pub(super) const MIN_YIELD: Duration = Duration::from_millis(250);
pub(super) const MAX_YIELD: Duration = Duration::from_millis(30_000);
/// An empty `write_stdin` (a poll) waits at least this long, and at most [`MAX_POLL_YIELD`].
pub(super) const MIN_POLL_YIELD: Duration = Duration::from_millis(5_000);
pub(super) const MAX_POLL_YIELD: Duration = Duration::from_millis(300_000);
/// Output tokens per call when the model does not say, and the most it may ask for.
pub(super) const DEFAULT_MAX_OUTPUT_TOKENS: usize = 10_000;
/// The largest per-call output budget (tokens); also sizes a session's unread buffer.
pub const MAX_OUTPUT_TOKENS: usize = 32_000;

/// What every unified exec command sees besides the server's environment: no colours or pagers
/// to confuse the model, UTF-8, and a dumb terminal (the reference sets the same).
pub(super) const SESSION_ENV: &[(&str, &str)] = &[
    ("NO_COLOR", "1"),
    ("TERM", "dumb"),
    ("LANG", "C.UTF-8"),
    ("LC_CTYPE", "C.UTF-8"),
    ("LC_ALL", "C.UTF-8"),
    ("COLORTERM", ""),
    ("PAGER", "cat"),
    ("GIT_PAGER", "cat"),
    ("GH_PAGER", "cat"),
    ("CODEX_CI", "1"),
];

#[derive(Deserialize)]
pub(super) struct ExecCommandArgs {
    pub(super) cmd: String,
    #[serde(default)]
    pub(super) workdir: Option<String>,
    #[serde(default)]
    pub(super) yield_time_ms: Option<f64>,
    #[serde(default)]
    pub(super) max_output_tokens: Option<f64>,
    #[serde(default)]
    pub(super) shell: Option<String>,
    #[serde(default)]
    pub(super) login: Option<bool>,
    #[serde(default)]
    pub(super) tty: Option<bool>,
    #[serde(default)]
    pub(super) sandbox_permissions: Option<String>,
    #[serde(default)]
    pub(super) with_escalated_permissions: Option<bool>,
    #[serde(default)]
    pub(super) justification: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WriteStdinArgs {
    pub(super) session_id: f64,
    #[serde(default)]
    pub(super) chars: Option<String>,
    #[serde(default)]
    pub(super) yield_time_ms: Option<f64>,
    #[serde(default)]
    pub(super) max_output_tokens: Option<f64>,
}

/// The `exec_command` and `write_stdin` function tools (parameter names and types as the
/// reference offers them; our own descriptions).
pub fn specs() -> Vec<Value> {
    let budget = json!({"type": "number", "description": "Most output tokens to return (default 10000); the middle of longer output is left out."});
    vec![
        json!({
            "type": "function",
            "name": "exec_command",
            "description": "Runs a command line in the user's shell and returns its output. If it is still running after the yield time, the answer carries a session ID instead of an exit code: use write_stdin to poll it or to type into it.",
            "strict": false,
            "parameters": {
                "type": "object",
                "properties": {
                    "cmd": {"type": "string", "description": "The command line to run."},
                    "workdir": {"type": "string", "description": "Working directory; defaults to the turn's."},
                    "yield_time_ms": {"type": "number", "description": "How long to wait for output before answering (default 10000, between 250 and 30000)."},
                    "max_output_tokens": budget,
                    "shell": {"type": "string", "description": "The shell to run it with; defaults to the user's login shell."},
                    "login": {"type": "boolean", "description": "Run the shell as a login shell (-l); default true."},
                    "tty": {"type": "boolean", "description": "Run on a pseudo-terminal, keeping stdin open for write_stdin; default false (pipes, no stdin)."},
                    "sandbox_permissions": {"type": "string", "enum": ["use_default", "require_escalated"], "description": "require_escalated asks the user to run it outside the sandbox."},
                    "justification": {"type": "string", "description": "Why escalation is needed; shown to the user. Only with require_escalated."}
                },
                "required": ["cmd"],
                "additionalProperties": false
            }
        }),
        json!({
            "type": "function",
            "name": "write_stdin",
            "description": "Types characters into a running exec_command session (started with tty) and returns the output since the last call; with empty chars it only waits for new output.",
            "strict": false,
            "parameters": {
                "type": "object",
                "properties": {
                    "session_id": {"type": "number", "description": "The session ID exec_command returned."},
                    "chars": {"type": "string", "description": "What to type (may be empty to poll)."},
                    "yield_time_ms": {"type": "number", "description": "How long to wait for output: after typing default 250 (at most 30000); a poll waits 5000 to 300000."},
                    "max_output_tokens": budget
                },
                "required": ["session_id"],
                "additionalProperties": false
            }
        }),
    ]
}

/// The model's yield in milliseconds, or `default`, within `[min, max]`.
pub(super) fn clamp_yield(
    ms: Option<f64>,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Duration {
    let wanted = match ms {
        Some(ms) if ms.is_finite() && ms > 0.0 => Duration::from_millis(ms.min(1e9) as u64),
        _ => default,
    };
    wanted.clamp(min, max)
}

/// The model's output budget in tokens, or the default, capped by the model's truncation policy
/// (`policy_tokens`) and [`MAX_OUTPUT_TOKENS`].
pub(super) fn output_budget(tokens: Option<f64>, policy_tokens: usize) -> usize {
    let cap = policy_tokens.clamp(1, MAX_OUTPUT_TOKENS);
    match tokens {
        Some(t) if t.is_finite() && t >= 1.0 => (t.min(cap as f64)) as usize,
        _ => DEFAULT_MAX_OUTPUT_TOKENS.min(cap),
    }
}

/// Six hex digits naming one call's chunk of output.
pub(super) fn chunk_id() -> String {
    let mut bytes = [0u8; 3];
    crate::ids::fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The argv of an `exec_command`: its shell (the user's login shell unless `shell` says) running
/// `cmd`, as a login shell unless `login` is false.
pub(super) fn command_argv(args: &ExecCommandArgs) -> Vec<String> {
    let shell = args.shell.clone().unwrap_or_else(login_shell);
    sys::shell_argv(shell, args.login.unwrap_or(true), &args.cmd)
}

/// The shell `exec_command` runs by default: the user's login shell (the shell tool's choice,
/// from the password database) on Unix, PowerShell on Windows.
fn login_shell() -> String {
    sys::default_shell()
}

#[cfg(unix)]
mod sys {
    pub fn default_shell() -> String {
        crate::tools::shell::user_shell()
    }

    /// `<shell> -lc <cmd>` (a login shell, reading the user's profile) or `<shell> -c <cmd>`.
    pub fn shell_argv(shell: String, login: bool, cmd: &str) -> Vec<String> {
        let flag = if login { "-lc" } else { "-c" };
        vec![shell, flag.to_string(), cmd.to_string()]
    }
}

#[cfg(not(unix))]
mod sys {
    pub fn default_shell() -> String {
        "powershell.exe".to_string()
    }

    /// `cmd.exe /c <cmd>`, else PowerShell's `-Command` (without the profile unless `login`).
    pub fn shell_argv(shell: String, login: bool, cmd: &str) -> Vec<String> {
        let name = shell
            .rsplit(['\\', '/'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut argv = vec![shell];
        if name == "cmd" || name == "cmd.exe" {
            argv.push("/c".to_string());
        } else {
            if !login {
                argv.push("-NoProfile".to_string());
            }
            argv.push("-Command".to_string());
        }
        argv.push(cmd.to_string());
        argv
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn yields_are_clamped_as_the_reference_describes() {
        let ms = Duration::from_millis;
        let exec = |v| clamp_yield(v, DEFAULT_EXEC_YIELD, MIN_YIELD, MAX_YIELD);
        let poll = |v| clamp_yield(v, MIN_POLL_YIELD, MIN_POLL_YIELD, MAX_POLL_YIELD);
        let cases: &[(Option<f64>, Duration, Duration)] = &[
            (None, ms(10_000), ms(5_000)),
            (Some(10.0), ms(250), ms(5_000)),
            (Some(2_000.0), ms(2_000), ms(5_000)),
            (Some(60_000.0), ms(30_000), ms(60_000)),
            (Some(1e12), ms(30_000), ms(300_000)),
            (Some(-5.0), ms(10_000), ms(5_000)),
            (Some(f64::NAN), ms(10_000), ms(5_000)),
        ];
        for (given, want_exec, want_poll) in cases {
            assert_eq!(exec(*given), *want_exec, "{given:?}");
            assert_eq!(poll(*given), *want_poll, "{given:?}");
        }
    }

    #[test]
    fn output_budgets() {
        // (asked, policy tokens, budget)
        let cases: &[(Option<f64>, usize, usize)] = &[
            (None, 10_000, 10_000),
            (Some(50.0), 10_000, 50),
            (Some(0.0), 10_000, 10_000),
            (Some(1e9), 10_000, 10_000),
            (Some(1e9), 1_000_000, MAX_OUTPUT_TOKENS),
            // A 10 000-byte policy (the fallback) caps every call at 2 500 tokens.
            (None, 2_500, 2_500),
            (Some(20_000.0), 2_500, 2_500),
            (Some(f64::NAN), 0, 1),
        ];
        for (asked, policy, want) in cases {
            assert_eq!(output_budget(*asked, *policy), *want, "{asked:?} {policy}");
        }
    }

    #[test]
    fn chunk_ids_are_six_hex_digits() {
        let id = chunk_id();
        assert_eq!(id.len(), 6);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn the_login_shell_is_an_absolute_path() {
        assert!(login_shell().starts_with('/'), "{}", login_shell());
    }

    #[test]
    fn specs_name_the_reference_parameters() {
        let specs = specs();
        let names: Vec<&str> = specs.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["exec_command", "write_stdin"]);
        let params = |i: usize| -> Vec<String> {
            let mut keys: Vec<String> = specs[i]["parameters"]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(
            params(0),
            [
                "cmd",
                "justification",
                "login",
                "max_output_tokens",
                "sandbox_permissions",
                "shell",
                "tty",
                "workdir",
                "yield_time_ms"
            ]
        );
        assert_eq!(
            params(1),
            ["chars", "max_output_tokens", "session_id", "yield_time_ms"]
        );
    }
}
