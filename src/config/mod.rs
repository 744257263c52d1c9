//! Configuration: where CODEX_HOME is, `config.toml`, `-c key=value` overrides and the typed
//! settings of model-api.md §1.
//!
//! Precedence, lowest first: built-in defaults, `CODEX_HOME/config.toml`, `-c` overrides from the
//! command line, then per-thread overrides (`thread/start {config}`) applied with
//! [`Config::with_overrides`]. This module only merges and types settings; which settings a
//! thread or turn finally uses is decided where threads and turns live.
//!
//! This file holds the effective [`Config`] and what it offers once loaded. `load` finds
//! CODEX_HOME, reads config.toml, merges the overrides and types the result; `overrides` parses
//! `-c key=value` and `thread/start {config}` entries; `keys` lists the keys we honour and finds
//! the others; `values` holds the typed values of single settings (policies, sandbox tables,
//! providers).

mod keys;
mod load;
mod overrides;
mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use load::load_from;
use overrides::set_path;

pub use keys::unknown_override_key;
pub use load::{DEFAULT_LOGIN_CALLBACK_PORT, load, resolve_codex_home};
pub use overrides::{Override, json_to_toml, override_from_json, parse_overrides};
pub use values::{
    ApprovalPolicy, ForcedLoginMethod, ModelProviderInfo, OPENAI_PROVIDER_ID, SandboxLinux,
    SandboxMode, SandboxWorkspaceWrite, WebSearchMode,
};

/// The effective settings after defaults, config.toml and overrides.
#[derive(Debug, Clone)]
pub struct Config {
    /// Absolute CODEX_HOME (created if missing).
    pub codex_home: PathBuf,
    /// Model slug; `None`: the catalog's default model (models.md §2).
    pub model: Option<String>,
    /// Provider id, a key of `model_providers` (default `openai`).
    pub model_provider: String,
    /// Configured providers plus the built-in `openai`.
    pub model_providers: BTreeMap<String, ModelProviderInfo>,
    /// `reasoning.effort` for reasoning models; `None`: the catalog's default for the model.
    pub model_reasoning_effort: Option<String>,
    /// `reasoning.summary` (`auto`, `concise`, `detailed`, `none`); `None`: the catalog's
    /// default for the model (no summary when that is `none`).
    pub model_reasoning_summary: Option<String>,
    /// `text.verbosity` (`low`, `medium`, `high`) for models that support it; `None`: the
    /// catalog's default.
    pub model_verbosity: Option<String>,
    /// Default approval policy of new threads.
    pub approval_policy: ApprovalPolicy,
    /// Default sandbox of new threads.
    pub sandbox_mode: SandboxMode,
    /// Options of the workspace-write sandbox.
    pub sandbox_workspace_write: SandboxWorkspaceWrite,
    /// Options of the Linux sandbox helper.
    pub sandbox_linux: SandboxLinux,
    /// ChatGPT backend base (default `https://chatgpt.com/backend-api`).
    pub chatgpt_base_url: String,
    /// API-key base of the built-in provider (default `https://api.openai.com/v1`).
    pub openai_base_url: String,
    /// Allowed ChatGPT workspace ids; `None` allows any.
    pub forced_chatgpt_workspace_id: Option<Vec<String>>,
    /// Allowed login method; `None` allows both.
    pub forced_login_method: Option<ForcedLoginMethod>,
    /// OAuth issuer of ChatGPT logins and token refreshes (default `https://auth.openai.com`;
    /// tests point it at a mock).
    pub chatgpt_auth_issuer: String,
    /// Port of the browser login's local callback server (default 1455; 0 picks a free port).
    pub login_callback_port: u16,
    /// Byte budget of the project AGENTS.md files together (default 32 768; 0 disables them).
    pub project_doc_max_bytes: usize,
    /// File names tried after `AGENTS.md` in each directory (default none).
    pub project_doc_fallback_filenames: Vec<String>,
    /// Whether and how the hosted `web_search` tool is offered (default `cached`).
    pub web_search: WebSearchMode,
    /// Whether the `update_plan` tool is offered (`tools.update_plan`; default off).
    pub update_plan: bool,
    /// How commands' environment is built from ours (`[shell_environment_policy]`; default:
    /// everything but names containing KEY, SECRET or TOKEN).
    pub shell_environment_policy: crate::exec::ShellEnvironmentPolicy,
    /// Keys of config.toml and `-c` that nothing honours, each with where it came from, for
    /// the one `configWarning` after `initialize`.
    pub unknown_keys: Vec<String>,
    /// `[mcp_servers.<name>]`: the MCP servers (parsed and validated by `mcp::config`).
    /// Shared: every thread's copy of the configuration points to the same table.
    pub mcp_servers: std::sync::Arc<BTreeMap<String, crate::mcp::config::McpServerConfig>>,
    /// The model's context window in tokens, replacing the catalog's (`model_context_window`;
    /// default: the catalog's).
    pub model_context_window: Option<i64>,
    /// Token count of a model response at which the history is compacted
    /// (`model_auto_compact_token_limit`; default: the catalog's, always capped at 90 % of the
    /// window).
    pub model_auto_compact_token_limit: Option<i64>,
    /// Replaces our prompt asking the model for a handoff summary (`compact_prompt`; default:
    /// ours).
    pub compact_prompt: Option<String>,
    /// The merged raw table, kept so per-thread overrides re-merge with the same rules; shared
    /// by the copies made without overrides.
    raw: std::sync::Arc<toml::Table>,
    /// The `-c` overrides, kept so the file can be re-read with them (`config/mcpServer/reload`).
    cli_overrides: std::sync::Arc<[Override]>,
}

impl Config {
    /// A copy with more overrides applied on top (per-thread `config`), with the same rules and
    /// errors as `-c`.
    pub fn with_overrides(&self, overrides: &[Override]) -> Result<Self> {
        if overrides.is_empty() {
            // The same table gives the same settings: share it (a thread without overrides
            // costs no copy of the tables). Unknown keys are the process's to report.
            return Ok(Self {
                unknown_keys: Vec::new(),
                ..self.clone()
            });
        }
        let mut raw = (*self.raw).clone();
        for (path, value) in overrides {
            set_path(&mut raw, path, value.clone());
        }
        let mut config = Self::from_raw(self.codex_home.clone(), raw)?;
        config.cli_overrides = self.cli_overrides.clone();
        Ok(config)
    }

    /// The configuration read again from `config.toml` with the same `-c` overrides (per-thread
    /// overrides are not part of it).
    pub fn reloaded(&self) -> Result<Self> {
        load_from(self.codex_home.clone(), &self.cli_overrides)
    }

    /// One top-level key of the merged raw table.
    pub fn raw_value(&self, key: &str) -> Option<toml::Value> {
        self.raw.get(key).cloned()
    }

    /// The provider named by `model_provider`.
    pub fn provider(&self) -> &ModelProviderInfo {
        // `from_raw` guarantees the key exists; the fallback only keeps this total.
        static OPENAI: std::sync::OnceLock<ModelProviderInfo> = std::sync::OnceLock::new();
        self.model_providers
            .get(&self.model_provider)
            .unwrap_or_else(|| OPENAI.get_or_init(ModelProviderInfo::openai))
    }
}

#[cfg(test)]
mod tests;
