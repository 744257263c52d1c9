//! The typed values of single settings: web search, tool switches, the approval policy, the
//! sandbox mode and its tables, the forced login method, and model providers (with the built-in
//! `openai` one).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The id of the built-in provider (OpenAI, with API-key or ChatGPT auth).
pub const OPENAI_PROVIDER_ID: &str = "openai";

/// `web_search`: whether the hosted web search tool is offered, and with live access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebSearchMode {
    /// Not offered.
    Disabled,
    /// Offered, answering from the backend's cache (`external_web_access: false`).
    #[default]
    Cached,
    /// Offered, answering from an index (treated like `cached`: no live access).
    Indexed,
    /// Offered with live access to the web.
    Live,
}

/// `tools.update_plan`: `true` or `{enabled = true}` (the reference accepts only the table).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(super) enum ToolSwitch {
    Bare(bool),
    Table {
        #[serde(default)]
        enabled: bool,
    },
}

impl ToolSwitch {
    /// Whether the tool is switched on, in either spelling.
    pub(super) fn is_enabled(self) -> bool {
        match self {
            Self::Bare(on) | Self::Table { enabled: on } => on,
        }
    }
}

/// The `[tools]` table (the keys we honour).
#[derive(Debug, Default, Deserialize)]
pub(super) struct ToolsToml {
    #[serde(default)]
    pub(super) update_plan: Option<ToolSwitch>,
}

/// When the agent must ask the client before acting (`approval_policy`; default `on-request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApprovalPolicy {
    /// Ask for everything that is not a known-safe read-only command, and for every patch.
    Untrusted,
    /// Ask only when the model requests escalated permissions.
    #[default]
    OnRequest,
    /// Never ask; sandbox denials go back to the model.
    Never,
}

impl ApprovalPolicy {
    /// Parses the wire/config spelling; the retired `on-failure` reads as `on-request`.
    /// Returns the policy and whether the retired spelling was used (callers warn once).
    pub fn parse(text: &str) -> Option<(Self, bool)> {
        match text {
            "untrusted" => Some((Self::Untrusted, false)),
            "on-request" => Some((Self::OnRequest, false)),
            "never" => Some((Self::Never, false)),
            "on-failure" => Some((Self::OnRequest, true)),
            _ => None,
        }
    }

    /// The spelling used on the wire and in config.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Untrusted => "untrusted",
            Self::OnRequest => "on-request",
            Self::Never => "never",
        }
    }
}

/// Which sandbox commands run under (`sandbox_mode`; default `read-only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Reads everywhere, writes nowhere (but `/dev/null`), no network.
    #[default]
    ReadOnly,
    /// Writes inside the writable roots (cwd, /tmp, $TMPDIR, configured roots).
    WorkspaceWrite,
    /// No sandbox at all.
    DangerFullAccess,
}

/// The `[sandbox_workspace_write]` table: options of the workspace-write sandbox (all default
/// empty/false).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct SandboxWorkspaceWrite {
    /// Extra absolute directories the sandbox may write to.
    pub writable_roots: Vec<PathBuf>,
    /// Whether sandboxed commands may use the network.
    pub network_access: bool,
    /// Leave `$TMPDIR` out of the writable roots.
    pub exclude_tmpdir_env_var: bool,
    /// Leave `/tmp` out of the writable roots.
    pub exclude_slash_tmp: bool,
}

/// The `[sandbox_linux]` table: options of the Linux sandbox helper.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct SandboxLinux {
    /// Run sandboxed commands with Landlock and seccomp only when the kernel refuses the helper
    /// its namespaces, instead of refusing to run them (default false; the helper prints what is
    /// then unprotected every time).
    pub allow_without_namespaces: bool,
}

/// Which login methods are allowed (`forced_login_method`; default: both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForcedLoginMethod {
    /// Only API-key login.
    Api,
    /// Only ChatGPT login (managed or external tokens).
    Chatgpt,
}

/// One entry of `[model_providers.<id>]`: where to send Responses requests and how.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelProviderInfo {
    /// Display name.
    pub name: String,
    /// Base URL; `<base_url>/responses` is the endpoint. `None` only for the built-in
    /// provider, whose base depends on the auth mode.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Environment variable holding the bearer token for this provider.
    #[serde(default)]
    pub env_key: Option<String>,
    /// Only `responses` is supported.
    #[serde(default = "default_wire_api")]
    pub wire_api: String,
    /// Send the user's OpenAI/ChatGPT credentials to this provider.
    #[serde(default)]
    pub requires_openai_auth: bool,
    /// Silent request-level retries (default 4).
    #[serde(default)]
    pub request_max_retries: Option<u64>,
    /// Announced stream-level retries (default 5).
    #[serde(default)]
    pub stream_max_retries: Option<u64>,
    /// Longest silence of an open stream before it counts as dropped (default 300 000 ms).
    #[serde(default)]
    pub stream_idle_timeout_ms: Option<u64>,
    /// Extra headers sent with every request.
    #[serde(default)]
    pub http_headers: BTreeMap<String, String>,
}

fn default_wire_api() -> String {
    "responses".to_string()
}

impl ModelProviderInfo {
    /// The built-in `openai` provider.
    pub fn openai() -> Self {
        Self {
            name: "OpenAI".to_string(),
            base_url: None,
            env_key: None,
            wire_api: default_wire_api(),
            requires_openai_auth: true,
            request_max_retries: None,
            stream_max_retries: None,
            stream_idle_timeout_ms: None,
            http_headers: BTreeMap::new(),
        }
    }
}
