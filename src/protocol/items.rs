//! What a turn is made of: the user's input, and the items a turn produces (`ThreadItem`)
//! with the small types they carry (command source, status, file changes, MCP errors).

use serde::{Deserialize, Serialize};

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
