//! The handshake: `initialize`'s params (who the client is, what it opts out of) and result.

use serde::{Deserialize, Serialize};

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
