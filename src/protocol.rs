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
