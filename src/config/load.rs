//! Loading: CODEX_HOME, config.toml (a broken file is an error naming the file, line and key),
//! merging the overrides in order, and typing the merged table into a [`Config`] with its
//! defaults and checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use super::Config;
use super::keys::{unknown_keys, unknown_override_key};
use super::overrides::{Override, parse_overrides, set_path};
use super::values::{
    ApprovalPolicy, ForcedLoginMethod, ModelProviderInfo, OPENAI_PROVIDER_ID, SandboxLinux,
    SandboxMode, SandboxWorkspaceWrite, ToolSwitch, ToolsToml, WebSearchMode,
};

const DEFAULT_CHATGPT_BASE_URL: &str = "https://chatgpt.com/backend-api";
const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
const DEFAULT_AUTH_ISSUER: &str = "https://auth.openai.com";
/// Port of the browser login's callback server (the redirect URI registered for the client id).
pub const DEFAULT_LOGIN_CALLBACK_PORT: u16 = 1455;

/// The serde image of config.toml: every key optional, unknown keys ignored here (and warned
/// about separately).
#[derive(Debug, Default, Deserialize)]
struct ConfigToml {
    model: Option<String>,
    model_provider: Option<String>,
    #[serde(default)]
    model_providers: BTreeMap<String, ModelProviderInfo>,
    model_reasoning_effort: Option<String>,
    model_reasoning_summary: Option<String>,
    model_verbosity: Option<String>,
    approval_policy: Option<String>,
    sandbox_mode: Option<SandboxMode>,
    #[serde(default)]
    sandbox_workspace_write: SandboxWorkspaceWrite,
    #[serde(default)]
    sandbox_linux: SandboxLinux,
    chatgpt_base_url: Option<String>,
    openai_base_url: Option<String>,
    forced_chatgpt_workspace_id: Option<OneOrMany>,
    forced_login_method: Option<ForcedLoginMethod>,
    chatgpt_auth_issuer: Option<String>,
    login_callback_port: Option<u16>,
    project_doc_max_bytes: Option<usize>,
    project_doc_fallback_filenames: Option<Vec<String>>,
    web_search: Option<WebSearchMode>,
    #[serde(default)]
    tools: ToolsToml,
    #[serde(default)]
    shell_environment_policy: crate::exec::ShellEnvironmentPolicy,
    model_context_window: Option<i64>,
    model_auto_compact_token_limit: Option<i64>,
    compact_prompt: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Resolves CODEX_HOME: `$CODEX_HOME` if set and non-empty, else `~/.codex`; created when
/// missing and returned absolute.
pub fn resolve_codex_home() -> Result<PathBuf> {
    let home = match std::env::var_os("CODEX_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    anyhow!("cannot locate CODEX_HOME: neither CODEX_HOME nor HOME is set")
                })?;
            PathBuf::from(home).join(".codex")
        }
    };
    std::fs::create_dir_all(&home)
        .with_context(|| format!("creating CODEX_HOME {}", home.display()))?;
    home.canonicalize()
        .with_context(|| format!("resolving CODEX_HOME {}", home.display()))
}

/// Loads the configuration: CODEX_HOME, its `config.toml` (if present), then the `-c` overrides.
/// A broken config.toml is an error naming the file and the problem (line, key).
pub fn load(overrides: &[String]) -> Result<Config> {
    let codex_home = resolve_codex_home()?;
    let overrides = parse_overrides(overrides)?;
    load_from(codex_home, &overrides)
}

/// Loads `codex_home`'s config.toml and applies `overrides` (also used to reload).
pub(super) fn load_from(codex_home: PathBuf, overrides: &[Override]) -> Result<Config> {
    let path = codex_home.join("config.toml");
    let mut raw = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let table: toml::Table =
                toml::from_str(&text).map_err(|e| file_error(&path, &e.to_string()))?;
            // Typing the text itself (not the table) keeps line numbers in type errors.
            toml::from_str::<ConfigToml>(&text).map_err(|e| file_error(&path, &e.to_string()))?;
            table
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut unknown: Vec<String> = unknown_keys(&raw)
        .into_iter()
        .map(|key| format!("`{key}` in {}", path.display()))
        .collect();
    for (key_path, value) in overrides {
        if let Some(key) = unknown_override_key(key_path) {
            unknown.push(format!("`{key}` (-c)"));
        }
        set_path(&mut raw, key_path, value.clone());
    }
    unknown.extend(
        crate::mcp::config::unknown_keys(raw.get("mcp_servers"))
            .into_iter()
            .map(|key| format!("`{key}`")),
    );
    if !unknown.is_empty() {
        crate::log::warn(&format!(
            "ignoring unknown configuration keys: {}",
            unknown.join(", ")
        ));
    }
    let mut config = Config::from_raw(codex_home, raw).context("invalid -c override")?;
    config.unknown_keys = unknown;
    config.cli_overrides = overrides.into();
    Ok(config)
}

fn file_error(path: &Path, message: &str) -> anyhow::Error {
    anyhow!("error in {}: {}", path.display(), message.trim_end())
}

impl Config {
    /// Types a merged raw table, applying the defaults and the checks serde cannot express.
    pub(super) fn from_raw(codex_home: PathBuf, raw: toml::Table) -> Result<Self> {
        let mut table = raw.clone();
        // `[model_providers.openai]` adjusts the built-in provider (retries, timeouts, headers)
        // rather than defining a new one, so its identity fields default to the built-in's.
        if let Some(toml::Value::Table(providers)) = table.get_mut("model_providers")
            && let Some(toml::Value::Table(openai)) = providers.get_mut(OPENAI_PROVIDER_ID)
        {
            let builtin = ModelProviderInfo::openai();
            openai
                .entry("name")
                .or_insert(toml::Value::String(builtin.name));
            openai
                .entry("requires_openai_auth")
                .or_insert(toml::Value::Boolean(true));
        }
        let mcp_servers = crate::mcp::config::parse(table.get("mcp_servers"))?;
        let typed: ConfigToml = table.try_into()?;
        let approval_policy = match typed.approval_policy.as_deref() {
            None => ApprovalPolicy::default(),
            Some(text) => {
                let (policy, retired) = ApprovalPolicy::parse(text).ok_or_else(|| {
                    anyhow!(
                        "approval_policy: unknown variant `{text}`, expected one of `untrusted`, `on-request`, `never`"
                    )
                })?;
                if retired {
                    crate::log::warn("approval_policy `on-failure` is retired; using `on-request`");
                }
                policy
            }
        };
        let mut model_providers = typed.model_providers;
        for (id, provider) in &model_providers {
            if provider.wire_api != "responses" {
                bail!(
                    "model_providers.{id}.wire_api: `{}` is not supported (only `responses`)",
                    provider.wire_api
                );
            }
            if provider.base_url.is_none() && id != OPENAI_PROVIDER_ID {
                bail!("model_providers.{id}: missing field `base_url`");
            }
        }
        model_providers
            .entry(OPENAI_PROVIDER_ID.to_string())
            .or_insert_with(ModelProviderInfo::openai);
        let model_provider = typed
            .model_provider
            .unwrap_or_else(|| OPENAI_PROVIDER_ID.to_string());
        if !model_providers.contains_key(&model_provider) {
            bail!("model_provider `{model_provider}` is not defined in model_providers");
        }
        let sandbox_workspace_write = typed.sandbox_workspace_write;
        if let Some(root) = sandbox_workspace_write
            .writable_roots
            .iter()
            .find(|r| !r.is_absolute())
        {
            bail!(
                "sandbox_workspace_write.writable_roots: `{}` is not an absolute path",
                root.display()
            );
        }
        Ok(Self {
            codex_home,
            model: typed.model.filter(|m| !m.trim().is_empty()),
            model_provider,
            model_providers,
            model_reasoning_effort: typed.model_reasoning_effort,
            model_reasoning_summary: typed.model_reasoning_summary,
            model_verbosity: typed.model_verbosity,
            approval_policy,
            sandbox_mode: typed.sandbox_mode.unwrap_or_default(),
            sandbox_workspace_write,
            sandbox_linux: typed.sandbox_linux,
            chatgpt_base_url: trim_slash(typed.chatgpt_base_url, DEFAULT_CHATGPT_BASE_URL),
            openai_base_url: trim_slash(typed.openai_base_url, DEFAULT_OPENAI_BASE_URL),
            forced_chatgpt_workspace_id: typed.forced_chatgpt_workspace_id.map(|w| match w {
                OneOrMany::One(id) => vec![id],
                OneOrMany::Many(ids) => ids,
            }),
            forced_login_method: typed.forced_login_method,
            chatgpt_auth_issuer: trim_slash(typed.chatgpt_auth_issuer, DEFAULT_AUTH_ISSUER),
            login_callback_port: typed
                .login_callback_port
                .unwrap_or(DEFAULT_LOGIN_CALLBACK_PORT),
            project_doc_max_bytes: typed
                .project_doc_max_bytes
                .unwrap_or(crate::context::project_docs::DEFAULT_MAX_BYTES),
            project_doc_fallback_filenames: typed
                .project_doc_fallback_filenames
                .unwrap_or_default(),
            web_search: typed.web_search.unwrap_or_default(),
            update_plan: typed.tools.update_plan.is_some_and(ToolSwitch::is_enabled),
            shell_environment_policy: typed.shell_environment_policy,
            unknown_keys: Vec::new(),
            mcp_servers: std::sync::Arc::new(mcp_servers),
            model_context_window: positive("model_context_window", typed.model_context_window)?,
            model_auto_compact_token_limit: positive(
                "model_auto_compact_token_limit",
                typed.model_auto_compact_token_limit,
            )?,
            compact_prompt: typed.compact_prompt.filter(|p| !p.trim().is_empty()),
            raw: std::sync::Arc::new(raw),
            cli_overrides: std::sync::Arc::default(),
        })
    }
}

/// A token count that must be above zero when given.
fn positive(key: &str, value: Option<i64>) -> Result<Option<i64>> {
    match value {
        Some(n) if n <= 0 => bail!("{key}: must be a positive number of tokens, not {n}"),
        other => Ok(other),
    }
}

fn trim_slash(value: Option<String>, default: &str) -> String {
    value
        .unwrap_or_else(|| default.to_string())
        .trim_end_matches('/')
        .to_string()
}
