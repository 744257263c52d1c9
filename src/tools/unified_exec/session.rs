//! One unified exec session: a process started by `exec_command` that outlives the call, its
//! `commandExecution` item, the output the model has not read yet, typed input (terminal
//! sessions only), and the end of the process.
//!
//! A named thread `exec-session-<id>` waits for the process (`exec::Running::wait`), streams every
//! chunk as `item/commandExecution/outputDelta` under the turn that started it, and keeps the
//! unread output (bounded). When the process ends, whoever is responsible completes the item:
//! the tool call waiting on the session (attached), so the completion follows that call's own
//! notifications; otherwise the session thread itself, at once (between calls, or after the turn
//! ended). Lock order: a session's state lock is never held while taking the thread's lock.

use std::process::ChildStdin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use super::buffer::{Taken, UnreadOutput};
use crate::exec::{self, ExecRequest, KillHandle, Running, StdinMode, TerminalSize};
use crate::protocol::{ItemStatus, ThreadItem, notify};
use crate::rpc::Rpc;
use crate::thread::{ThreadState, lock};
use crate::tools::Utf8Chunks;

/// Bytes of unread output kept per session (head and tail) between two calls: enough for the
/// largest per-call budget ([`super::MAX_OUTPUT_TOKENS`] tokens).
const UNREAD_CAP_BYTES: usize = super::MAX_OUTPUT_TOKENS * super::buffer::BYTES_PER_TOKEN;
/// Bytes of output kept for the completed item's `aggregatedOutput` (head and tail).
const ITEM_OUTPUT_CAP_BYTES: usize = 64 * 1024;
/// Typed input queued per terminal session before `write_stdin` is refused.
const STDIN_QUEUE: usize = 64;

/// What a session is started with.
pub struct Start {
    /// The model-facing id.
    pub id: i32,
    /// Program and arguments (the shell and the command line).
    pub argv: Vec<String>,
    /// Where it runs.
    pub cwd: std::path::PathBuf,
    /// The cwd the sandbox's writable roots are computed from.
    pub sandbox_cwd: std::path::PathBuf,
    /// The child's whole environment.
    pub env: crate::exec::Env,
    /// The sandbox.
    pub policy: crate::sandbox::SandboxPolicy,
    /// Run on a pseudo-terminal (stdin stays open) rather than pipes (stdin is the null device).
    pub tty: bool,
    /// The `commandExecution` item as started (completed from it).
    pub item: ThreadItem,
    /// The thread and the turn the item belongs to.
    pub thread_id: String,
    /// The turn that started the session: its deltas and completion carry this id.
    pub turn_id: String,
    /// The connection.
    pub rpc: Rpc,
    /// The thread, to record the completed item (weak: a session must not keep it loaded).
    pub thread: Weak<Mutex<ThreadState>>,
}

/// How the process ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit code, or 128 + the signal that killed it (-1 when it could not be waited for).
    pub exit_code: i32,
    /// Both streams interleaved (head and tail when long).
    pub aggregated: String,
    /// From spawn to the end.
    pub duration: Duration,
}

/// What a call gets when it lets go of a session.
pub struct Detached {
    /// Output since the last call.
    pub output: Taken,
    /// The end of the process, when it ended.
    pub finished: Option<Finished>,
    /// Whether this call must complete the item (the process ended while it waited).
    pub must_complete: bool,
}

/// Why typed input was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteError {
    /// Not a terminal session: its stdin is the null device.
    NoStdin,
    /// Too much input is still waiting for the process to read it.
    Full,
    /// The process ended or its terminal closed.
    Closed,
}

enum StdinSlot {
    /// The terminal, until the first write starts the writer thread.
    Idle(ChildStdin),
    /// The writer thread's queue.
    Queue(Sender<Vec<u8>>),
}

struct State {
    unread: UnreadOutput,
    finished: Option<Finished>,
    attached: bool,
    completion_sent: bool,
    last_used: Instant,
}

/// A running (or just ended, not yet reported) unified exec process.
pub struct Session {
    /// The model-facing id (`session_id`), also the item's `processId`.
    pub id: i32,
    /// Whether it runs on a terminal.
    pub is_terminal: bool,
    item: ThreadItem,
    thread_id: String,
    turn_id: String,
    rpc: Rpc,
    thread: Weak<Mutex<ThreadState>>,
    kill: KillHandle,
    stdin: Mutex<Option<StdinSlot>>,
    state: Mutex<State>,
    done: Receiver<()>,
}

impl Session {
    /// Spawns the process and its waiting thread.
    pub fn start(start: Start) -> anyhow::Result<Arc<Session>> {
        let request = ExecRequest {
            argv: start.argv,
            cwd: start.cwd,
            sandbox_cwd: start.sandbox_cwd,
            env: start.env,
            // A session lives until it ends, is pruned, or its thread stops it.
            timeout: None,
            policy: start.policy,
            output_cap_bytes: ITEM_OUTPUT_CAP_BYTES,
            stdin: if start.tty {
                StdinMode::Terminal(TerminalSize::default())
            } else {
                StdinMode::Null
            },
        };
        let mut running = exec::spawn(request)?;
        let (done_tx, done_rx) = bounded::<()>(0);
        let session = Arc::new(Session {
            id: start.id,
            is_terminal: start.tty,
            item: start.item,
            thread_id: start.thread_id,
            turn_id: start.turn_id,
            rpc: start.rpc,
            thread: start.thread,
            kill: running.kill_handle(),
            stdin: Mutex::new(running.take_stdin().map(StdinSlot::Idle)),
            state: Mutex::new(State {
                unread: UnreadOutput::new(UNREAD_CAP_BYTES),
                finished: None,
                attached: true,
                completion_sent: false,
                last_used: Instant::now(),
            }),
            done: done_rx,
        });
        let watched = Arc::clone(&session);
        // If the thread cannot start, the closure (and `running` in it) is dropped: the
        // process is killed and reaped.
        std::thread::Builder::new()
            .name(format!("exec-session-{}", start.id))
            .spawn(move || watched.watch(running, done_tx))?;
        Ok(session)
    }

    /// The session thread: output until the process ends, then its completion.
    fn watch(self: Arc<Self>, running: Running, done: Sender<()>) {
        let mut decoder = Utf8Chunks::default();
        let outcome = running.wait(&mut |_, bytes| {
            lock(&self.state).unread.push(bytes);
            let text = decoder.push(bytes);
            if !text.is_empty() {
                self.delta(&text);
            }
        });
        let rest = decoder.finish();
        if !rest.is_empty() {
            self.delta(&rest);
        }
        let finished = match outcome {
            Ok(out) => Finished {
                exit_code: out
                    .exit_code
                    .unwrap_or_else(|| 128 + out.signal.unwrap_or(9)),
                aggregated: String::from_utf8_lossy(&out.aggregated).into_owned(),
                duration: out.duration,
            },
            Err(e) => Finished {
                exit_code: -1,
                aggregated: format!("failed to wait for the command: {e:#}"),
                duration: Duration::ZERO,
            },
        };
        let completes_here = {
            let mut state = lock(&self.state);
            state.finished = Some(finished.clone());
            let here = !state.attached && !state.completion_sent;
            state.completion_sent |= here;
            here
        };
        // Ends a writer thread waiting for input.
        lock(&self.stdin).take();
        drop(done);
        if completes_here {
            self.emit_completed(&self.completed_item(&finished));
        }
    }

    fn delta(&self, text: &str) {
        self.rpc.notify(
            "item/commandExecution/outputDelta",
            notify::ItemDelta {
                thread_id: &self.thread_id,
                turn_id: &self.turn_id,
                item_id: self.item.id(),
                delta: text,
            },
        );
    }

    /// The item as started.
    pub fn item(&self) -> &ThreadItem {
        &self.item
    }

    /// The turn that started the session.
    pub fn turn_id(&self) -> &str {
        &self.turn_id
    }

    /// Disconnected once the process ended (select on it to wake at the end).
    pub fn done(&self) -> &Receiver<()> {
        &self.done
    }

    /// Kills the whole process group at once (SIGKILL).
    pub fn kill_handle(&self) -> KillHandle {
        self.kill.clone()
    }

    /// Asks the process group to stop (SIGTERM); see `store::terminate` for the SIGKILL after.
    pub fn terminate(&self) {
        self.kill.terminate();
    }

    /// Whether the process ended.
    pub fn is_finished(&self) -> bool {
        lock(&self.state).finished.is_some()
    }

    /// Whether a call is waiting on it.
    pub fn is_attached(&self) -> bool {
        lock(&self.state).attached
    }

    /// When a call last used it.
    pub fn last_used(&self) -> Instant {
        lock(&self.state).last_used
    }

    /// A call starts waiting on the session (a new session starts attached).
    pub fn attach(&self) {
        let mut state = lock(&self.state);
        state.attached = true;
        state.last_used = Instant::now();
    }

    /// The call stops waiting: the unread output, and whether it must complete the item.
    pub fn detach(&self) -> Detached {
        let mut state = lock(&self.state);
        state.attached = false;
        state.last_used = Instant::now();
        let must_complete = state.finished.is_some() && !state.completion_sent;
        state.completion_sent |= must_complete;
        Detached {
            output: state.unread.take(),
            finished: state.finished.clone(),
            must_complete,
        }
    }

    /// Types `bytes` into the terminal (queued for a writer thread, so a process that does not
    /// read never blocks the turn).
    pub fn write(&self, bytes: Vec<u8>) -> Result<(), WriteError> {
        if !self.is_terminal {
            return Err(WriteError::NoStdin);
        }
        let mut slot = lock(&self.stdin);
        if let Some(StdinSlot::Idle(_)) = slot.as_ref()
            && let Some(StdinSlot::Idle(pipe)) = slot.take()
        {
            match spawn_writer(pipe, self.id) {
                Ok(queue) => *slot = Some(StdinSlot::Queue(queue)),
                Err(e) => {
                    crate::log::warn(&format!("exec session {}: no stdin writer: {e}", self.id));
                    return Err(WriteError::Closed);
                }
            }
        }
        match slot.as_ref() {
            Some(StdinSlot::Queue(queue)) => match queue.try_send(bytes) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(WriteError::Full),
                Err(TrySendError::Disconnected(_)) => Err(WriteError::Closed),
            },
            _ => Err(WriteError::Closed),
        }
    }

    /// The item completed from `finished`.
    pub fn completed_item(&self, finished: &Finished) -> ThreadItem {
        let mut item = self.item.clone();
        if let ThreadItem::CommandExecution {
            status,
            aggregated_output,
            exit_code,
            duration_ms,
            process_id,
            source,
            ..
        } = &mut item
        {
            *status = if finished.exit_code == 0 {
                ItemStatus::Completed
            } else {
                ItemStatus::Failed
            };
            *aggregated_output = Some(finished.aggregated.clone());
            *exit_code = Some(finished.exit_code);
            *duration_ms = Some(i64::try_from(finished.duration.as_millis()).unwrap_or(i64::MAX));
            *process_id = Some(self.id.to_string());
            *source = crate::protocol::CommandSource::UnifiedExecStartup;
        }
        item
    }

    /// Emits `item/completed` under the starting turn and records it there (for a call of
    /// another turn, or no call at all; a call of the same turn uses its own runner so the item
    /// is listed in its `turn/completed`).
    pub fn emit_completed(&self, item: &ThreadItem) {
        self.rpc.notify(
            "item/completed",
            notify::ItemCompleted {
                thread_id: &self.thread_id,
                turn_id: &self.turn_id,
                item,
                completed_at_ms: crate::time::unix_millis(),
            },
        );
        if let Some(thread) = self.thread.upgrade() {
            lock(&thread).push_item(&self.turn_id, item);
        }
    }
}

fn spawn_writer(mut pipe: ChildStdin, id: i32) -> std::io::Result<Sender<Vec<u8>>> {
    use std::io::Write;
    let (tx, rx) = bounded::<Vec<u8>>(STDIN_QUEUE);
    std::thread::Builder::new()
        .name(format!("exec-session-{id}-stdin"))
        .spawn(move || {
            // Ends when the session drops the queue (process ended) or the terminal closes.
            while let Ok(bytes) = rx.recv() {
                if pipe.write_all(&bytes).and_then(|()| pipe.flush()).is_err() {
                    break;
                }
            }
        })?;
    Ok(tx)
}
