//! Unified exec (context.md §3): the model's `exec_command` starts a command line under the
//! user's shell, in the thread's sandbox and with the shell tool's approvals, waits up to a yield
//! time and answers with the output so far plus the exit code, or the id of a session that keeps
//! running; `write_stdin` types into a terminal session (or just polls) and answers with the new
//! output. One `commandExecution` item per `exec_command`, streamed while the process runs and
//! completed when it ends (see `session.rs`).
//!
//! `buffer.rs` keeps and formats the output for the model, `session.rs` owns one process,
//! `store.rs` a thread's sessions (at most 64) and stopping them (interrupt, unload, shutdown).
//! Spawning, sandboxing and terminals are `exec`'s; when the tools are offered is `specs.rs`'s.

mod buffer;
mod session;
mod store;

pub use session::Session;
pub use store::SessionStore;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::select;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CallResult, Decision, ToolCall, approve_command, ask_unsandboxed_retry, resolve_dir};
use crate::protocol::{CommandSource, ItemStatus, ThreadItem};
use crate::sandbox::SandboxPolicy;
use crate::thread::{Control, SharedThread, lock};
use crate::turn::TurnRunner;
use buffer::{Status, format_for_model};
use session::{Detached, Start, WriteError};

/// `exec_command` waits this long by default.
const DEFAULT_EXEC_YIELD: Duration = Duration::from_millis(10_000);
/// A non-empty `write_stdin` waits this long by default.
const DEFAULT_WRITE_YIELD: Duration = Duration::from_millis(250);
/// The shortest wait of any call, and the longest of `exec_command` and of a write.
const MIN_YIELD: Duration = Duration::from_millis(250);
const MAX_YIELD: Duration = Duration::from_millis(30_000);
/// An empty `write_stdin` (a poll) waits at least this long, and at most [`MAX_POLL_YIELD`].
const MIN_POLL_YIELD: Duration = Duration::from_millis(5_000);
const MAX_POLL_YIELD: Duration = Duration::from_millis(300_000);
/// Output tokens per call when the model does not say, and the most it may ask for.
const DEFAULT_MAX_OUTPUT_TOKENS: usize = 10_000;
/// The largest per-call output budget (tokens); also sizes a session's unread buffer.
pub const MAX_OUTPUT_TOKENS: usize = 32_000;

/// What every unified exec command sees besides the server's environment: no colours or pagers
/// to confuse the model, UTF-8, and a dumb terminal (the reference sets the same).
const SESSION_ENV: &[(&str, &str)] = &[
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
struct ExecCommandArgs {
    cmd: String,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    yield_time_ms: Option<f64>,
    #[serde(default)]
    max_output_tokens: Option<f64>,
    #[serde(default)]
    shell: Option<String>,
    #[serde(default)]
    login: Option<bool>,
    #[serde(default)]
    tty: Option<bool>,
    #[serde(default)]
    sandbox_permissions: Option<String>,
    #[serde(default)]
    with_escalated_permissions: Option<bool>,
    #[serde(default)]
    justification: Option<String>,
}

#[derive(Deserialize)]
struct WriteStdinArgs {
    session_id: f64,
    #[serde(default)]
    chars: Option<String>,
    #[serde(default)]
    yield_time_ms: Option<f64>,
    #[serde(default)]
    max_output_tokens: Option<f64>,
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

/// Runs `exec_command`.
pub fn run_exec_command(turn: &mut TurnRunner, call: &ToolCall) -> CallResult {
    let started_at = Instant::now();
    let args: ExecCommandArgs = match serde_json::from_str(&call.payload) {
        Ok(args) => args,
        Err(e) => return plain(call, format!("failed to parse function arguments: {e}")),
    };
    if args.cmd.trim().is_empty() {
        return plain(
            call,
            "exec_command failed: cmd must not be empty".to_string(),
        );
    }
    let cwd = turn.tools().settings.cwd.clone();
    let workdir = resolve_dir(&cwd, args.workdir.as_deref());
    let shell = args.shell.clone().unwrap_or_else(login_shell);
    let argv = sys::shell_argv(shell, args.login.unwrap_or(true), &args.cmd);
    if let Some(found) = crate::apply_patch::parse_shell_invocation(&argv) {
        let dir = resolve_dir(&workdir, found.cd.as_deref());
        return super::patch::run_patch(turn, call, &found.patch, &dir);
    }
    let item = ThreadItem::CommandExecution {
        id: call.call_id.clone(),
        command: super::shell::shell_join(&argv),
        cwd: workdir.display().to_string(),
        status: ItemStatus::InProgress,
        aggregated_output: None,
        exit_code: None,
        duration_ms: None,
        command_actions: vec![json!({"type": "unknown", "command": args.cmd})],
        process_id: None,
        // As the reference: `agent` while it waits for approval, the session's once it runs.
        source: CommandSource::Agent,
    };
    let escalate = args.sandbox_permissions.as_deref() == Some("require_escalated")
        || args.with_escalated_permissions == Some(true);
    let approved = match approve_command(
        turn,
        call,
        &item,
        &argv,
        &workdir,
        escalate,
        args.justification.as_deref(),
    ) {
        Ok(approved) => approved,
        Err(result) => return result,
    };
    let max_tokens = output_budget(args.max_output_tokens, policy_tokens(turn));
    let wait = clamp_yield(args.yield_time_ms, DEFAULT_EXEC_YIELD, MIN_YIELD, MAX_YIELD);
    let tty = args.tty.unwrap_or(false);
    let launch = Launch {
        call,
        item: &item,
        argv: &argv,
        workdir: &workdir,
        tty,
        item_started: approved.started,
    };
    let session = match launch.start(turn, approved.policy.clone()) {
        Ok(session) => session,
        Err(result) => return result,
    };
    wait_on(turn, &session, wait);
    let mut detached = session.detach();
    // Under `untrusted`, a sandboxed run that failed like a sandbox denial may run again outside.
    if let Some(finished) = &detached.finished {
        let decision = ask_unsandboxed_retry(
            turn,
            session.item(),
            &argv,
            &workdir,
            &approved.policy,
            Some(finished.exit_code),
            None,
            &finished.aggregated,
        );
        match decision {
            Some(Decision::Accept | Decision::AcceptForSession) => {
                // The first run's completion is not reported: the item completes with the rerun.
                thread_sessions(turn).remove(session.id);
                let rerun = Launch {
                    item_started: true,
                    ..launch
                };
                let session = match rerun.start(turn, SandboxPolicy::DangerFullAccess) {
                    Ok(session) => session,
                    Err(result) => return result,
                };
                wait_on(turn, &session, wait);
                detached = session.detach();
                return answer(turn, call, &session, detached, started_at, max_tokens, None);
            }
            Some(Decision::Cancel) => {
                answer(turn, call, &session, detached, started_at, max_tokens, None);
                return CallResult {
                    output: call.output_item("aborted by user"),
                    cancelled: true,
                };
            }
            Some(Decision::Decline) | None => {}
        }
    }
    answer(turn, call, &session, detached, started_at, max_tokens, None)
}

/// Runs `write_stdin`.
pub fn run_write_stdin(turn: &mut TurnRunner, call: &ToolCall) -> CallResult {
    let started_at = Instant::now();
    let args: WriteStdinArgs = match serde_json::from_str(&call.payload) {
        Ok(args) => args,
        Err(e) => return plain(call, format!("failed to parse function arguments: {e}")),
    };
    let id = args.session_id as i32;
    let Some(session) = thread_sessions(turn).get(id) else {
        return plain(call, format!("write_stdin failed: Unknown process id {id}"));
    };
    let chars = args.chars.unwrap_or_default();
    let wait = if chars.is_empty() {
        clamp_yield(
            args.yield_time_ms,
            MIN_POLL_YIELD,
            MIN_POLL_YIELD,
            MAX_POLL_YIELD,
        )
    } else {
        if let Err(e) = session.write(chars.clone().into_bytes()) {
            let why = match e {
                WriteError::NoStdin => {
                    "stdin is closed for this session; rerun exec_command with tty=true to keep stdin open"
                }
                WriteError::Full => {
                    "earlier input is still waiting for the process to read it; poll with empty chars first"
                }
                WriteError::Closed => {
                    "the process no longer reads input (it has ended); poll with empty chars for its last output"
                }
            };
            return plain(call, format!("write_stdin failed: {why}"));
        }
        clamp_yield(
            args.yield_time_ms,
            DEFAULT_WRITE_YIELD,
            MIN_YIELD,
            MAX_YIELD,
        )
    };
    session.attach();
    wait_on(turn, &session, wait);
    let detached = session.detach();
    let typed = (!chars.is_empty()).then_some(chars.as_str());
    let max_tokens = output_budget(args.max_output_tokens, policy_tokens(turn));
    answer(
        turn, call, &session, detached, started_at, max_tokens, typed,
    )
}

/// Shutdown: stops every session of every thread and waits until they are gone (SIGKILL for
/// those that ignore SIGTERM), so no command outlives the server.
pub fn shutdown<'a>(threads: impl Iterator<Item = &'a SharedThread>) {
    let sessions = threads
        .flat_map(|thread| lock(thread).exec_sessions.take_all())
        .collect();
    store::stop_all_and_wait(sessions);
}

/// What starting a session needs besides the turn.
#[derive(Clone, Copy)]
struct Launch<'a> {
    call: &'a ToolCall,
    item: &'a ThreadItem,
    argv: &'a [String],
    workdir: &'a Path,
    tty: bool,
    /// Whether asking for approval already emitted `item/started`.
    item_started: bool,
}

impl Launch<'_> {
    /// Makes room in the thread's store, starts `item` (unless asking already did), spawns the
    /// session under `policy` and registers it. A failure to spawn completes the item as failed
    /// and is the call's answer.
    fn start(
        self,
        turn: &mut TurnRunner,
        policy: SandboxPolicy,
    ) -> Result<Arc<Session>, CallResult> {
        let (id, pruned) = {
            let state = lock(&turn.thread);
            let pruned = state.exec_sessions.make_room();
            (state.exec_sessions.new_id(), pruned)
        };
        if let Some(pruned) = pruned {
            store::terminate(vec![pruned]);
        }
        let mut item = self.item.clone();
        if let ThreadItem::CommandExecution {
            process_id, source, ..
        } = &mut item
        {
            *process_id = Some(id.to_string());
            *source = CommandSource::UnifiedExecStartup;
        }
        // Started before the process exists, so no output delta can come first.
        if !self.item_started {
            turn.item_started(&item);
        }
        let settings = turn.tools().settings.clone();
        let mut env = turn.tools().env.env.clone();
        for (key, value) in SESSION_ENV {
            env.insert((*key).into(), (*value).into());
        }
        let start = Start {
            id,
            argv: self.argv.to_vec(),
            cwd: self.workdir.to_path_buf(),
            sandbox_cwd: settings.cwd.clone(),
            env,
            policy,
            tty: self.tty,
            item: item.clone(),
            thread_id: turn.thread_id.clone(),
            turn_id: turn.turn_id.clone(),
            rpc: turn.rpc.clone(),
            thread: Arc::downgrade(&turn.thread),
        };
        match Session::start(start) {
            Ok(session) => {
                lock(&turn.thread)
                    .exec_sessions
                    .insert(Arc::clone(&session));
                Ok(session)
            }
            Err(e) => {
                let message = format!("failed to start the command: {e:#}");
                if let ThreadItem::CommandExecution {
                    status,
                    aggregated_output,
                    exit_code,
                    duration_ms,
                    process_id,
                    ..
                } = &mut item
                {
                    *status = ItemStatus::Failed;
                    *aggregated_output = Some(message.clone());
                    *exit_code = Some(-1);
                    *duration_ms = Some(0);
                    *process_id = None;
                }
                turn.item_completed(item);
                Err(plain(self.call, format!("exec_command failed: {message}")))
            }
        }
    }
}

/// Waits until the session's process ends, `wait` passes, or the turn is interrupted (which kills
/// the process at once). Steering input that arrives meanwhile is kept for the next request.
fn wait_on(turn: &mut TurnRunner, session: &Session, wait: Duration) {
    let deadline = Instant::now() + wait;
    turn.handle.set_running_command(Some(session.kill_handle()));
    let control = turn.control.clone();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || turn.handle.is_interrupted() {
            break;
        }
        select! {
            recv(session.done()) -> _ => break,
            recv(control) -> message => match message {
                Ok(Control::Steer(input)) => turn.pending_steer(input),
                Ok(Control::Interrupt) | Err(_) => break,
            },
            default(left) => break,
        }
    }
    turn.handle.set_running_command(None);
}

/// The call's answer: the output since the last call, the exit code or the session id. When the
/// process ended, the session is forgotten and, if this call saw the end, its item completed
/// (after `terminalInteraction` for typed input, as the reference orders them).
fn answer(
    turn: &mut TurnRunner,
    call: &ToolCall,
    session: &Session,
    detached: Detached,
    started_at: Instant,
    max_tokens: usize,
    typed: Option<&str>,
) -> CallResult {
    let status = match &detached.finished {
        Some(finished) => Status::Exited(finished.exit_code),
        None => Status::Running(session.id),
    };
    let text = format_for_model(
        &chunk_id(),
        started_at.elapsed().as_secs_f64(),
        status,
        &detached.output,
        max_tokens,
    );
    if let Some(stdin) = typed {
        turn.rpc.notify(
            "item/commandExecution/terminalInteraction",
            json!({
                "threadId": turn.thread_id,
                "turnId": session.turn_id(),
                "itemId": session.item().id(),
                "processId": session.id.to_string(),
                "stdin": stdin,
            }),
        );
    }
    if let Some(finished) = &detached.finished {
        thread_sessions(turn).remove(session.id);
        if detached.must_complete {
            let item = session.completed_item(finished);
            if session.turn_id() == turn.turn_id {
                turn.item_completed(item);
            } else {
                session.emit_completed(&item);
            }
        }
    }
    CallResult {
        output: call.output_item(&text),
        cancelled: false,
    }
}

/// The thread's session store, borrowed under the thread's lock for one short operation.
fn thread_sessions(turn: &TurnRunner) -> SessionsRef<'_> {
    SessionsRef(lock(&turn.thread))
}

struct SessionsRef<'a>(std::sync::MutexGuard<'a, crate::thread::ThreadState>);

impl std::ops::Deref for SessionsRef<'_> {
    type Target = SessionStore;
    fn deref(&self) -> &SessionStore {
        &self.0.exec_sessions
    }
}

fn plain(call: &ToolCall, text: String) -> CallResult {
    CallResult {
        output: call.output_item(&text),
        cancelled: false,
    }
}

/// The model's yield in milliseconds, or `default`, within `[min, max]`.
fn clamp_yield(ms: Option<f64>, default: Duration, min: Duration, max: Duration) -> Duration {
    let wanted = match ms {
        Some(ms) if ms.is_finite() && ms > 0.0 => Duration::from_millis(ms.min(1e9) as u64),
        _ => default,
    };
    wanted.clamp(min, max)
}

/// The model's output budget in tokens, or the default, capped by the model's truncation policy
/// (`policy_tokens`) and [`MAX_OUTPUT_TOKENS`].
fn output_budget(tokens: Option<f64>, policy_tokens: usize) -> usize {
    let cap = policy_tokens.clamp(1, MAX_OUTPUT_TOKENS);
    match tokens {
        Some(t) if t.is_finite() && t >= 1.0 => (t.min(cap as f64)) as usize,
        _ => DEFAULT_MAX_OUTPUT_TOKENS.min(cap),
    }
}

/// The truncation policy of the thread's model, in tokens per tool output.
fn policy_tokens(turn: &mut TurnRunner) -> usize {
    turn.tools().settings.model_info.tool_output_budget_bytes() / buffer::BYTES_PER_TOKEN
}

/// Six hex digits naming one call's chunk of output.
fn chunk_id() -> String {
    let mut bytes = [0u8; 3];
    crate::ids::fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
