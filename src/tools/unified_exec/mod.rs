//! Unified exec (context.md §3): the model's `exec_command` starts a command line under the
//! user's shell, in the thread's sandbox and with the shell tool's approvals, waits up to a yield
//! time and answers with the output so far plus the exit code, or the id of a session that keeps
//! running; `write_stdin` types into a terminal session (or just polls) and answers with the new
//! output. One `commandExecution` item per `exec_command`, streamed while the process runs and
//! completed when it ends (see `session.rs`).
//!
//! `args.rs` holds the tool definitions, their arguments and rules (yields, budgets, the shell),
//! `buffer.rs` keeps and formats the output for the model, `session.rs` owns one process,
//! `store.rs` a thread's sessions (at most 64) and stopping them (interrupt, unload, shutdown).
//! Spawning, sandboxing and terminals are `exec`'s; when the tools are offered is `specs.rs`'s.

mod args;
mod buffer;
mod session;
mod store;

pub use session::Session;
pub use store::SessionStore;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::select;
use serde_json::json;

use super::{CallResult, Decision, ToolCall, approve_command, ask_unsandboxed_retry, resolve_dir};
use crate::protocol::{CommandSource, ItemStatus, ThreadItem};
use crate::sandbox::SandboxPolicy;
use crate::thread::{Control, SharedThread, lock};
use crate::turn::TurnRunner;
pub use args::{MAX_OUTPUT_TOKENS, specs};

use args::{
    DEFAULT_EXEC_YIELD, DEFAULT_WRITE_YIELD, ExecCommandArgs, MAX_POLL_YIELD, MAX_YIELD,
    MIN_POLL_YIELD, MIN_YIELD, SESSION_ENV, WriteStdinArgs, chunk_id, clamp_yield, output_budget,
};
use buffer::{Status, format_for_model};
use session::{Detached, Start, WriteError};

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
    let argv = args::command_argv(&args);
    if let Some(found) = crate::apply_patch::parse_shell_invocation(&argv) {
        let dir = resolve_dir(&workdir, found.cd.as_deref());
        return super::patch::run_patch(turn, call, &found.patch, &dir);
    }
    let item = ThreadItem::CommandExecution {
        id: call.call_id.clone(),
        command: crate::exec::shell_join(&argv),
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
    // Attached before typing: a process that ends on this input (Ctrl-D) is then completed by
    // this call, after its `terminalInteraction`, not by the session's thread before it.
    session.attach();
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
            settle(turn, &session, &session.detach());
            return plain(call, format!("write_stdin failed: {why}"));
        }
        clamp_yield(
            args.yield_time_ms,
            DEFAULT_WRITE_YIELD,
            MIN_YIELD,
            MAX_YIELD,
        )
    };
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
    settle(turn, session, &detached);
    CallResult {
        output: call.output_item(&text),
        cancelled: false,
    }
}

/// After a call stopped waiting on `session`: a finished session leaves the store, and its item
/// completes here when the call was attached as it ended.
fn settle(turn: &mut TurnRunner, session: &Session, detached: &Detached) {
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

/// The truncation policy of the thread's model, in tokens per tool output.
fn policy_tokens(turn: &mut TurnRunner) -> usize {
    turn.tools().settings.model_info.tool_output_budget_bytes() / buffer::BYTES_PER_TOKEN
}
