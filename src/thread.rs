//! Thread state in memory: settings, the conversation history sent to the model, the turns and
//! items shown to clients, status, token usage, session approvals, and the handle of the running
//! turn. The rollout file format is `rollout/`'s; running a turn is `turn/`'s; the thread/*
//! request handlers are `threads/`'s.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::Sender;
use serde_json::Value;

use crate::config::{ApprovalPolicy, Config};
use crate::exec::KillHandle;
use crate::protocol::{Thread, ThreadItem, ThreadStatus, TokenUsage, Turn, UserInput};
use crate::rollout::{Entry, Rollout, TurnContext};
use crate::sandbox::SandboxPolicy;

/// How a thread's turns run; thread defaults that `turn/start` may override.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The thread's effective configuration (providers, retries, base URLs).
    pub config: Config,
    /// Absolute working directory.
    pub cwd: PathBuf,
    /// Model slug.
    pub model: String,
    /// What the catalog says about `model` (fallback metadata when it does not know it).
    /// The one place to ask about the thread's model: reasoning, verbosity, tools, truncation,
    /// context window, request shape. Re-resolved whenever `model` changes.
    pub model_info: Arc<crate::models::ModelInfo>,
    /// Reasoning effort chosen explicitly (config, thread, turn); `None`: the catalog's
    /// default for the model. Read the effective one with [`Settings::reasoning_effort`].
    pub effort: Option<String>,
    /// Reasoning summary chosen explicitly; `None`: the catalog's default. Effective:
    /// [`Settings::reasoning_summary`].
    pub summary: Option<String>,
    /// When to ask the client.
    pub approval: ApprovalPolicy,
    /// Where commands run.
    pub sandbox: SandboxPolicy,
    /// Replaces our base instructions when set.
    pub base_instructions: Option<String>,
    /// Added to the developer message when set.
    pub developer_instructions: Option<String>,
    /// The client's tools (`thread/start.dynamicTools`, validated `DynamicToolSpec`s).
    pub dynamic_tools: Arc<Vec<Value>>,
}

impl Settings {
    /// The `reasoning.effort` requests carry (`None`: no effort field).
    pub fn reasoning_effort(&self) -> Option<String> {
        self.model_info.reasoning_effort(self.effort.as_deref())
    }

    /// The `reasoning.summary` requests carry (`None`: no summary field).
    pub fn reasoning_summary(&self) -> Option<String> {
        self.model_info.reasoning_summary(self.summary.as_deref())
    }

    /// The `text.verbosity` requests carry (`None`: none).
    pub fn verbosity(&self) -> Option<String> {
        self.model_info
            .verbosity(self.config.model_verbosity.as_deref())
    }

    /// Switches the thread to `model` as `snapshot` describes it; true when the catalog does
    /// not know it (the caller warns once).
    pub fn set_model(&mut self, model: &str, snapshot: &crate::models::Snapshot) -> bool {
        self.model = model.to_string();
        self.model_info = snapshot.resolve(model);
        self.model_info.is_fallback
    }

    /// The record of these settings written at each turn start.
    pub fn context(&self) -> TurnContext {
        TurnContext {
            cwd: self.cwd.display().to_string(),
            model: self.model.clone(),
            effort: self.reasoning_effort(),
            summary: self.reasoning_summary(),
            approval_policy: self.approval.as_str().to_string(),
            sandbox_policy: serde_json::to_value(&self.sandbox).unwrap_or(Value::Null),
        }
    }
}

/// Messages to a running turn.
#[derive(Debug)]
pub enum Control {
    /// Stop now (`turn/interrupt`, or the connection closed).
    Interrupt,
    /// More user input for the running turn (`turn/steer`).
    Steer(Vec<UserInput>),
}

/// Why [`TurnHandle::steer`] did not queue the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SteerRefused {
    /// The turn is over.
    Finished,
    /// Steering input is queued up to the limit and the turn has not taken it yet.
    Full,
}

/// The handle the main loop keeps to a running turn.
pub struct TurnHandle {
    /// The turn's id.
    pub turn_id: String,
    control: Sender<Control>,
    interrupted: AtomicBool,
    running_command: Mutex<Option<KillHandle>>,
    finished: AtomicBool,
    compaction: bool,
}

impl TurnHandle {
    /// A handle sending to the turn's control channel.
    pub fn new(turn_id: String, control: Sender<Control>) -> Self {
        Self {
            turn_id,
            control,
            interrupted: AtomicBool::new(false),
            running_command: Mutex::new(None),
            finished: AtomicBool::new(false),
            compaction: false,
        }
    }

    /// A handle to a compaction turn (`thread/compact/start`), which cannot be steered.
    pub fn compaction(turn_id: String, control: Sender<Control>) -> Self {
        Self {
            compaction: true,
            ..Self::new(turn_id, control)
        }
    }

    /// Whether the turn only compacts the history (steering it is refused).
    pub fn is_compaction(&self) -> bool {
        self.compaction
    }

    /// Stops the turn: flags it, kills its running command's process group at once, and wakes
    /// it wherever it waits (stream, approval, backoff). Idempotent.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        if let Some(kill) = lock(&self.running_command).as_ref() {
            kill.kill();
        }
        let _ = self.control.try_send(Control::Interrupt);
    }

    /// Whether an interrupt was requested.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Queues steering input without ever blocking (the turn may be busy with a command for
    /// minutes). The last slot of the control channel is kept for an interrupt.
    pub fn steer(&self, input: Vec<UserInput>) -> Result<(), SteerRefused> {
        if self.is_finished() {
            return Err(SteerRefused::Finished);
        }
        let capacity = self.control.capacity().unwrap_or(usize::MAX);
        if self.control.len().saturating_add(1) >= capacity {
            return Err(SteerRefused::Full);
        }
        self.control
            .try_send(Control::Steer(input))
            .map_err(|e| match e {
                crossbeam_channel::TrySendError::Full(_) => SteerRefused::Full,
                crossbeam_channel::TrySendError::Disconnected(_) => SteerRefused::Finished,
            })
    }

    /// Registers (or clears) the command the turn is waiting on, so an interrupt kills it.
    /// Registering after an interrupt kills at once.
    pub fn set_running_command(&self, kill: Option<KillHandle>) {
        let mut slot = lock(&self.running_command);
        if let (Some(k), true) = (&kill, self.is_interrupted()) {
            k.kill();
        }
        *slot = kill;
    }

    /// Marks the turn's thread as done.
    pub fn set_finished(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    /// Whether the turn's thread is done.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }
}

/// Commands and roots the user approved for the rest of the session (`acceptForSession`).
#[derive(Debug, Default)]
pub struct SessionApprovals {
    /// Exact argv vectors.
    pub commands: HashSet<Vec<String>>,
    /// Roots under which patches are not asked about again.
    pub patch_roots: Vec<PathBuf>,
    /// MCP tools (server, tool) not asked about again.
    pub mcp_tools: HashSet<(String, String)>,
}

/// One loaded thread.
pub struct ThreadState {
    /// Thread id.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// First user text.
    pub preview: String,
    /// User-given name.
    pub name: Option<String>,
    /// Kept in memory only.
    pub ephemeral: bool,
    /// Source thread of a fork.
    pub forked_from_id: Option<String>,
    /// The creating client.
    pub originator: Option<String>,
    /// Where the thread comes from, as rollouts record it (`vscode` for app-server threads).
    pub source: String,
    /// The version that created the thread, as its rollout records it ([`crate::rollout::CLI_VERSION`]
    /// for ours).
    pub cli_version: String,
    /// Current defaults.
    pub settings: Settings,
    /// The conversation as sent to the model, each item with its turn id.
    pub history: Vec<(String, Value)>,
    /// The settings the model was last told about (to resend context when they change).
    pub told_context: Option<TurnContext>,
    /// The project instructions and environment context the model has seen (`context/`).
    pub context: crate::context::ContextState,
    /// The settings recorded at each turn's start, by turn id, so a fork that drops later turns
    /// knows what the model had been told by the last turn it keeps. Filled by [`Self::record`].
    pub turn_contexts: Vec<(String, TurnContext)>,
    /// Turns with their completed items.
    pub turns: Vec<Turn>,
    /// Current status.
    pub status: ThreadStatus,
    /// Tokens used by the whole thread.
    pub total_usage: TokenUsage,
    /// The last model response's usage (after a compaction or revert: an estimate of the new
    /// history): what the compaction trigger reads (`context/compact`).
    pub last_usage: TokenUsage,
    /// The rollout, unless ephemeral.
    pub rollout: Option<Rollout>,
    /// Session-wide approvals.
    pub approvals: SessionApprovals,
    /// The running turn.
    pub active: Option<Arc<TurnHandle>>,
    /// Unified exec sessions still running (stopped when the thread is dropped).
    pub exec_sessions: crate::tools::unified_exec::SessionStore,
    /// Request params already reported as not honoured (one `warning` per thread and param).
    pub warned_params: HashSet<String>,
}

/// A loaded thread shared between the main loop and its turn thread.
pub type SharedThread = Arc<Mutex<ThreadState>>;

/// Locks a mutex, recovering the data if a panicking thread poisoned it (a panicked turn must
/// not make the thread unusable).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl ThreadState {
    /// The protocol view; `turns` only when asked for.
    pub fn to_protocol(&self, include_turns: bool) -> Thread {
        Thread {
            id: self.id.clone(),
            session_id: self.id.clone(),
            preview: self.preview.clone(),
            ephemeral: self.ephemeral,
            model: Some(self.settings.model.clone()),
            model_provider: self.settings.config.model_provider.clone(),
            cwd: self.settings.cwd.display().to_string(),
            path: self
                .rollout
                .as_ref()
                .map(|r| r.path().display().to_string()),
            created_at: self.created_at,
            updated_at: self.updated_at,
            status: self.status.clone(),
            name: self.name.clone(),
            turns: if include_turns {
                self.turns.clone()
            } else {
                Vec::new()
            },
            cli_version: self.cli_version.clone(),
            originator: self.originator.clone(),
            source: crate::rollout::source_kind(&self.source),
            forked_from_id: self.forked_from_id.clone(),
            project_id: None,
            reasoning_effort: self.settings.reasoning_effort(),
        }
    }

    /// Appends to the rollout (if any). A failing disk must not stop the conversation: the
    /// error is logged and the thread goes on in memory. A turn's context (recorded right after
    /// its start) is also kept in `turn_contexts`, for ephemeral threads too.
    pub fn record(&mut self, entry: &Entry) {
        self.updated_at = crate::time::unix_seconds() as i64;
        if let (Entry::TurnContext(context), Some(turn)) = (entry, self.turns.last()) {
            self.turn_contexts.push((turn.id.clone(), context.clone()));
        }
        if let Some(rollout) = self.rollout.as_mut()
            && let Err(e) = rollout.append(entry)
        {
            crate::log::error(&format!("thread {}: {e:#}", self.id));
        }
    }

    /// Adds an item to the model-facing history and records it.
    pub fn push_history(&mut self, turn_id: &str, item: Value) {
        self.record(&Entry::ResponseItem(item.clone()));
        self.history.push((turn_id.to_string(), item));
    }

    /// Adds a completed item to the turn `turn_id` and records it; sets the preview from the
    /// first user text.
    pub fn push_item(&mut self, turn_id: &str, item: &ThreadItem) {
        if self.preview.is_empty()
            && let Some(text) = crate::rollout::user_text(item)
        {
            self.preview = text;
        }
        self.record(&Entry::ThreadItem {
            turn_id: turn_id.to_string(),
            item: item.clone(),
        });
        if let Some(turn) = self.turns.iter_mut().rev().find(|t| t.id == turn_id) {
            turn.items.push(item.clone());
        }
    }

    /// Whether patches under `path` were approved for the session.
    pub fn is_patch_root_approved(&self, path: &Path) -> bool {
        self.approvals
            .patch_roots
            .iter()
            .any(|root| path.starts_with(root))
    }
}
