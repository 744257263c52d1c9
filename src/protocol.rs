//! Typed params, results and notifications of the methods in scope (protocol.md), in the wire's
//! camelCase. Shapes follow `app-server-protocol-0.169.0.schema.json`; look a type up there by
//! its title before changing it. Behaviour lives elsewhere: this module only describes messages.

use serde::{Deserialize, Serialize};

/// Method names the server answers or sends.
pub mod method {
    /// Client → server: the handshake request.
    pub const INITIALIZE: &str = "initialize";
    /// Client → server: the handshake's closing notification.
    pub const INITIALIZED: &str = "initialized";
}

/// `ClientInfo`: who the client is; `name` becomes the `originator` header.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    /// Client identifier, e.g. `codex_vscode`.
    pub name: String,
    /// Human-readable title.
    #[serde(default)]
    #[allow(dead_code)] // accepted for the schema; nothing depends on it
    pub title: Option<String>,
    /// Client version.
    #[allow(dead_code)] // accepted for the schema; nothing depends on it
    pub version: String,
}

/// `InitializeCapabilities` (the parts we act on).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeCapabilities {
    /// Opt into experimental methods and fields (accepted; we add none).
    #[serde(default)]
    #[allow(dead_code)] // accepted for the schema; we expose no experimental API
    pub experimental_api: bool,
    /// Notification methods never to send on this connection.
    #[serde(default)]
    pub opt_out_notification_methods: Option<Vec<String>>,
}

/// `InitializeParams`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// Who the client is.
    pub client_info: ClientInfo,
    /// What the client opts into or out of.
    #[serde(default)]
    pub capabilities: Option<InitializeCapabilities>,
}

/// `serverInfo` of the initialize result (beyond the schema's required fields, as the
/// reference sends it).
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// `codex-lite`.
    pub name: &'static str,
    /// Our crate version.
    pub version: &'static str,
}

/// `InitializeResponse`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResponse {
    /// `<client name>/<version> (<os> <os version>; <arch>)`.
    pub user_agent: String,
    /// Absolute CODEX_HOME.
    pub codex_home: String,
    /// `unix` or `windows`.
    pub platform_family: &'static str,
    /// `linux`, `macos`, …
    pub platform_os: &'static str,
    /// Our name and version.
    pub server_info: ServerInfo,
}

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

/// `UserInput`: one piece of user input of a turn (`text`, `image` by URL, `localImage` by path).
/// Other kinds of the schema (`skill`, `mention`, audio) are refused with -32602.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum UserInput {
    /// Plain text.
    Text {
        /// The text.
        text: String,
        /// UI spans within `text`; kept as given, not interpreted.
        #[serde(default)]
        text_elements: Vec<serde_json::Value>,
    },
    /// An image by URL (including `data:` URLs).
    Image {
        /// The URL.
        url: String,
    },
    /// An image file on the server's machine, sent inline as a data URL.
    LocalImage {
        /// The file.
        path: String,
    },
}

/// `CommandExecutionSource`: what started a command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CommandSource {
    /// The model's `shell` tool (the default).
    #[default]
    Agent,
    /// The user's own shell command.
    UserShell,
    /// The model's `exec_command` (unified exec).
    UnifiedExecStartup,
    /// Input the model typed into a unified exec session.
    UnifiedExecInteraction,
}

/// `CommandExecutionStatus` / `PatchApplyStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ItemStatus {
    /// Running or waiting for approval.
    InProgress,
    /// Ran (a command: exit code 0; a patch: applied).
    Completed,
    /// Ran and failed.
    Failed,
    /// The user declined it; nothing ran.
    Declined,
}

/// `PatchChangeKind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum PatchChangeKind {
    /// A new file.
    Add,
    /// A removed file.
    Delete,
    /// An edited file, possibly moved.
    Update {
        /// Where it moves to, if it does.
        move_path: Option<String>,
    },
}

/// `FileUpdateChange`: one file of a `fileChange` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileUpdateChange {
    /// Absolute path.
    pub path: String,
    /// What happens to it.
    pub kind: PatchChangeKind,
    /// Unified diff (add: the new content; delete: the old content).
    pub diff: String,
}

/// `ThreadItem`: the kinds of items this server produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ThreadItem {
    /// The user's input.
    UserMessage {
        /// Item id.
        id: String,
        /// The input as given.
        content: Vec<UserInput>,
    },
    /// Text from the model.
    AgentMessage {
        /// The Responses item id.
        id: String,
        /// The full text (concatenated deltas).
        text: String,
    },
    /// The model's reasoning summary.
    Reasoning {
        /// The Responses item id.
        id: String,
        /// Summary parts.
        #[serde(default)]
        summary: Vec<String>,
        /// Raw reasoning text parts (not sent by current models).
        #[serde(default)]
        content: Vec<String>,
    },
    /// A shell command the model ran (or asked to run).
    CommandExecution {
        /// The model's call id.
        id: String,
        /// The command as one display string.
        command: String,
        /// Working directory.
        cwd: String,
        /// Lifecycle state.
        status: ItemStatus,
        /// Combined stdout and stderr (capped).
        aggregated_output: Option<String>,
        /// Exit code once finished.
        exit_code: Option<i32>,
        /// Wall time once finished.
        duration_ms: Option<i64>,
        /// Parsed actions for display (the shell tool reports none; unified exec one
        /// `unknown` action with the command line).
        command_actions: Vec<serde_json::Value>,
        /// The unified exec session id (as a string) once its process runs; `null` otherwise.
        #[serde(default)]
        process_id: Option<String>,
        /// What started the command.
        #[serde(default)]
        source: CommandSource,
    },
    /// A patch the model applied (or asked to apply).
    FileChange {
        /// The model's call id.
        id: String,
        /// Every file the patch touches, complete from `item/started` on.
        changes: Vec<FileUpdateChange>,
        /// Lifecycle state.
        status: ItemStatus,
    },
    /// A web search the backend ran for the model (the hosted `web_search` tool).
    WebSearch {
        /// The Responses item id.
        id: String,
        /// What was searched (the query, or the page for `openPage`/`findInPage`).
        query: String,
        /// The action in the protocol's spelling (`search`, `openPage`, `findInPage`, `other`).
        action: Option<serde_json::Value>,
    },
    /// A local image the model looked at (`view_image`).
    ImageView {
        /// The model's call id.
        id: String,
        /// The image file.
        path: String,
    },
    /// A call of a tool the client defined (`thread/start.dynamicTools`).
    DynamicToolCall {
        /// The model's call id.
        id: String,
        /// The tool's namespace, for tools given inside a namespace.
        namespace: Option<String>,
        /// Tool name.
        tool: String,
        /// The model's arguments (JSON; a string when they were not JSON).
        arguments: serde_json::Value,
        /// `inProgress`, `completed` or `failed`.
        status: ItemStatus,
        /// The client's answer.
        content_items: Option<Vec<serde_json::Value>>,
        /// The client's verdict.
        success: Option<bool>,
        /// How long the client took.
        duration_ms: Option<i64>,
    },
    /// A review starts (`review/start`); `review` says what is reviewed.
    EnteredReviewMode {
        /// Item id.
        id: String,
        /// What is reviewed, for display.
        review: String,
    },
    /// A review ended; `review` is its result.
    ExitedReviewMode {
        /// Item id.
        id: String,
        /// The review text.
        review: String,
    },
    /// A call of an MCP server's tool (`tools/mcp.rs`).
    McpToolCall {
        /// The model's call id.
        id: String,
        /// The configured server name.
        server: String,
        /// The tool's name on its server.
        tool: String,
        /// `inProgress`, `completed` or `failed` (never `declined`: a declined call fails).
        status: ItemStatus,
        /// The arguments as the model gave them.
        arguments: serde_json::Value,
        /// What the server returned: `{content, structuredContent, _meta}`.
        result: Option<serde_json::Value>,
        /// Why the call failed, `{message}`.
        error: Option<McpToolCallError>,
        /// Wall time once finished.
        duration_ms: Option<i64>,
        /// The tool's `readOnlyHint` annotation, when it has one.
        read_only_hint: Option<bool>,
    },
    /// The conversation was compacted here (context.md §4): started when the compaction begins,
    /// completed when the history was replaced.
    ContextCompaction {
        /// Item id.
        id: String,
    },
    /// An item of a kind this server does not produce, kept in its wire shape: what a rollout
    /// written by Codex holds shown as it was recorded.
    #[serde(untagged)]
    Other(serde_json::Value),
}

/// `McpToolCallError`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpToolCallError {
    /// What went wrong.
    pub message: String,
}

impl ThreadItem {
    /// The item's id.
    pub fn id(&self) -> &str {
        match self {
            ThreadItem::UserMessage { id, .. }
            | ThreadItem::AgentMessage { id, .. }
            | ThreadItem::Reasoning { id, .. }
            | ThreadItem::CommandExecution { id, .. }
            | ThreadItem::FileChange { id, .. }
            | ThreadItem::WebSearch { id, .. }
            | ThreadItem::ImageView { id, .. }
            | ThreadItem::DynamicToolCall { id, .. }
            | ThreadItem::EnteredReviewMode { id, .. }
            | ThreadItem::ExitedReviewMode { id, .. }
            | ThreadItem::McpToolCall { id, .. }
            | ThreadItem::ContextCompaction { id } => id,
            ThreadItem::Other(item) => item["id"].as_str().unwrap_or_default(),
        }
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

/// Notification params shared by many methods. Borrowed, so the per-delta path allocates
/// nothing beyond the serialized line.
pub mod notify {
    use serde::Serialize;

    use super::{ThreadItem, ThreadStatus, ThreadTokenUsage, Turn, TurnError};

    /// `item/started`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ItemStarted<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// Turn id.
        pub turn_id: &'a str,
        /// The item as it starts.
        pub item: &'a ThreadItem,
        /// Unix ms.
        pub started_at_ms: u64,
    }

    /// `item/completed`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ItemCompleted<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// Turn id.
        pub turn_id: &'a str,
        /// The item as completed.
        pub item: &'a ThreadItem,
        /// Unix ms.
        pub completed_at_ms: u64,
    }

    /// `item/agentMessage/delta` and `item/commandExecution/outputDelta`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ItemDelta<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// Turn id.
        pub turn_id: &'a str,
        /// Item id.
        pub item_id: &'a str,
        /// The new text.
        pub delta: &'a str,
    }

    /// `item/reasoning/summaryTextDelta`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SummaryDelta<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// Turn id.
        pub turn_id: &'a str,
        /// Item id.
        pub item_id: &'a str,
        /// Which summary part.
        pub summary_index: i64,
        /// The new text.
        pub delta: &'a str,
    }

    /// `turn/started` and `turn/completed`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct TurnEvent<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// The turn.
        pub turn: &'a Turn,
    }

    /// `thread/status/changed`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct StatusChanged<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// New status.
        pub status: &'a ThreadStatus,
    }

    /// `error`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Error<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// Turn id.
        pub turn_id: &'a str,
        /// Whether the server retries by itself.
        pub will_retry: bool,
        /// What happened.
        pub error: &'a TurnError,
    }

    /// `thread/tokenUsage/updated`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct TokenUsageUpdated<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// Turn id.
        pub turn_id: &'a str,
        /// Usage.
        pub token_usage: ThreadTokenUsage,
    }

    /// `turn/diff/updated`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct DiffUpdated<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// Turn id.
        pub turn_id: &'a str,
        /// The turn's cumulative unified diff.
        pub diff: &'a str,
    }

    /// `serverRequest/resolved`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct RequestResolved<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// Our request id.
        pub request_id: i64,
    }

    /// `thread/started` and `thread/unarchived`'s result.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ThreadEvent<'a> {
        /// The thread.
        pub thread: &'a super::Thread,
    }

    /// `thread/archived` and `thread/unarchived`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ThreadIdOnly<'a> {
        /// Thread id.
        pub thread_id: &'a str,
    }

    /// `warning`: something the client asked for or configured is not (fully) honoured.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Warning<'a> {
        /// The thread it concerns, if any.
        pub thread_id: Option<&'a str>,
        /// What the user should know.
        pub message: &'a str,
    }

    /// `configWarning`: configuration that was ignored or could not be applied.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ConfigWarning<'a> {
        /// What happened, naming the keys.
        pub summary: &'a str,
        /// More detail.
        pub details: Option<&'a str>,
    }

    /// `turn/plan/updated`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PlanUpdated<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// Turn id.
        pub turn_id: &'a str,
        /// Why the plan changed.
        pub explanation: Option<&'a str>,
        /// The steps, `{step, status}` with status `pending`, `inProgress` or `completed`.
        pub plan: &'a [serde_json::Value],
    }

    /// `item/tool/call`: the server asks the client to run one of its dynamic tools.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct DynamicToolCall<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// Turn id.
        pub turn_id: &'a str,
        /// The model's call id.
        pub call_id: &'a str,
        /// The tool's namespace, if any.
        pub namespace: Option<&'a str>,
        /// Tool name.
        pub tool: &'a str,
        /// The model's arguments.
        pub arguments: &'a serde_json::Value,
    }

    /// `thread/name/updated`.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct NameUpdated<'a> {
        /// Thread id.
        pub thread_id: &'a str,
        /// The new name.
        pub thread_name: Option<&'a str>,
    }
}
