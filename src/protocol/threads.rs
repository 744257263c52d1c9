//! Threads and turns as the client sees them: `Thread`, its status and flags, `Turn`, its
//! status and error (with the machine-readable `CodexErrorInfo`), and token usage.

use serde::{Deserialize, Serialize};

use super::ThreadItem;

/// `CodexErrorInfo`: the machine-readable class of a turn failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum CodexErrorInfo {
    /// The conversation no longer fits the model's context window.
    ContextWindowExceeded,
    /// The account's usage limit is reached.
    UsageLimitExceeded,
    /// The backend kept failing with 5xx.
    InternalServerError,
    /// Credentials are missing or can no longer be refreshed; the user must log in again.
    Unauthorized,
    /// The backend rejected the request (400).
    BadRequest,
    /// The sandbox could not be set up.
    SandboxError,
    /// Anything else.
    Other,
    /// The HTTP request failed with this status (e.g. 401 after recovery).
    HttpConnectionFailed {
        /// HTTP status, when there was one.
        http_status_code: Option<u16>,
    },
    /// The SSE stream dropped before `response.completed`.
    ResponseStreamDisconnected {
        /// HTTP status, when there was one.
        http_status_code: Option<u16>,
    },
    /// Retries were exhausted.
    ResponseTooManyFailedAttempts {
        /// HTTP status of the last attempt, when there was one.
        http_status_code: Option<u16>,
    },
}

/// `TokenUsageBreakdown`: token counts of one response, or accumulated over a thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Prompt tokens served from cache.
    pub cached_input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Completion tokens spent on reasoning.
    pub reasoning_output_tokens: i64,
    /// Everything.
    pub total_tokens: i64,
}

impl TokenUsage {
    /// Adds `other` to `self`, field by field.
    pub fn add(&mut self, other: &TokenUsage) {
        self.input_tokens += other.input_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.output_tokens += other.output_tokens;
        self.reasoning_output_tokens += other.reasoning_output_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// `TurnStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TurnStatus {
    /// Still running.
    InProgress,
    /// Finished normally.
    Completed,
    /// Stopped by `turn/interrupt` or a `cancel` decision.
    Interrupted,
    /// Failed; `error` says why.
    Failed,
}

/// `TurnError`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnError {
    /// What went wrong, including the server's own text.
    pub message: String,
    /// The class of failure.
    pub codex_error_info: Option<CodexErrorInfo>,
    /// More detail, when there is any.
    #[serde(default)]
    pub additional_details: Option<String>,
}

/// `Turn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    /// Turn id.
    pub id: String,
    /// Items of the turn (empty in `turn/start`'s answer and `turn/started`).
    pub items: Vec<ThreadItem>,
    /// Lifecycle state.
    pub status: TurnStatus,
    /// Set when `status` is `failed`.
    pub error: Option<TurnError>,
}

impl Turn {
    /// A turn that has just started: no items yet, no error.
    pub fn in_progress(id: &str) -> Self {
        Self {
            id: id.to_string(),
            items: Vec::new(),
            status: TurnStatus::InProgress,
            error: None,
        }
    }
}

/// `ThreadActiveFlag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActiveFlag {
    /// An approval request is pending.
    WaitingOnApproval,
}

/// `ThreadStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ThreadStatus {
    /// Known from disk only.
    NotLoaded,
    /// Loaded, no turn running.
    Idle,
    /// Loaded, the last turn failed (until the next turn starts).
    SystemError,
    /// A turn is running.
    Active {
        /// What the turn waits on.
        active_flags: Vec<ActiveFlag>,
    },
}

/// `Thread`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    /// Thread id (UUID v7).
    pub id: String,
    /// Same as `id` (one session per thread here).
    pub session_id: String,
    /// First user text.
    pub preview: String,
    /// Whether it is kept in memory only.
    pub ephemeral: bool,
    /// Model slug.
    pub model: Option<String>,
    /// Provider id.
    pub model_provider: String,
    /// Absolute working directory.
    pub cwd: String,
    /// Rollout file; `None` when ephemeral.
    pub path: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Lifecycle state.
    pub status: ThreadStatus,
    /// User-given name.
    pub name: Option<String>,
    /// Turns, when requested.
    pub turns: Vec<Turn>,
    /// Our version.
    pub cli_version: String,
    /// The client that created it.
    pub originator: Option<String>,
    /// Always `appServer`.
    pub source: &'static str,
    /// The thread it was forked from.
    pub forked_from_id: Option<String>,
    /// No projects here: always null.
    pub project_id: Option<String>,
    /// Reasoning effort in use.
    pub reasoning_effort: Option<String>,
}

/// `ThreadTokenUsage`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadTokenUsage {
    /// Accumulated over the thread.
    pub total: TokenUsage,
    /// The last model response.
    pub last: TokenUsage,
    /// The model's context window, when known.
    pub model_context_window: Option<i64>,
}
