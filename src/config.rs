//! Configuration: where CODEX_HOME is, `config.toml`, `-c key=value` overrides and the typed
//! settings of model-api.md §1.
//!
//! Precedence, lowest first: built-in defaults, `CODEX_HOME/config.toml`, `-c` overrides from the
//! command line, then per-thread overrides (`thread/start {config}`) applied with
//! [`Config::with_overrides`]. This module only merges and types settings; which settings a
//! thread or turn finally uses is decided where threads and turns live.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

/// The id of the built-in provider (OpenAI, with API-key or ChatGPT auth).
pub const OPENAI_PROVIDER_ID: &str = "openai";
const DEFAULT_CHATGPT_BASE_URL: &str = "https://chatgpt.com/backend-api";
const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
const DEFAULT_AUTH_ISSUER: &str = "https://auth.openai.com";
/// Port of the browser login's callback server (the redirect URI registered for the client id).
pub const DEFAULT_LOGIN_CALLBACK_PORT: u16 = 1455;

/// Every key this implementation understands, in one place: a top-level key, and for tables we
/// check inside, the keys allowed in them (`None`: the table's content is not checked here).
/// Anything else in config.toml or a `-c` override is reported once to the client
/// (`configWarning` after `initialize`) and ignored. Add a key here when you honour it.
const KNOWN_KEYS: &[(&str, Option<&[&str]>)] = &[
    ("model", None),
    ("model_provider", None),
    ("model_providers", None),
    ("model_reasoning_effort", None),
    ("model_reasoning_summary", None),
    ("model_verbosity", None),
    ("approval_policy", None),
    ("sandbox_mode", None),
    ("sandbox_workspace_write", None),
    ("sandbox_linux", Some(&["allow_without_namespaces"])),
    ("chatgpt_base_url", None),
    ("openai_base_url", None),
    ("forced_chatgpt_workspace_id", None),
    ("forced_login_method", None),
    ("chatgpt_auth_issuer", None),
    ("login_callback_port", None),
    // Project instructions and tools (context.md §1, §3).
    ("project_doc_max_bytes", None),
    ("project_doc_fallback_filenames", None),
    ("web_search", None),
    ("tools", Some(&["update_plan"])),
    // The command environment (`exec::env`); `experimental_use_profile` is not honoured.
    (
        "shell_environment_policy",
        Some(&[
            "inherit",
            "ignore_default_excludes",
            "exclude",
            "set",
            "include_only",
        ]),
    ),
    // MCP servers: their tables are checked by `mcp::config`.
    ("mcp_servers", None),
    // Long sessions (context.md §4): the window, the compaction trigger, the summary prompt.
    ("model_context_window", None),
    ("model_auto_compact_token_limit", None),
    ("compact_prompt", None),
];

/// The dotted names of `table`'s keys that [`KNOWN_KEYS`] does not list.
fn unknown_keys(table: &toml::Table) -> Vec<String> {
    let mut unknown = Vec::new();
    for (key, value) in table {
        match KNOWN_KEYS.iter().find(|(known, _)| known == key) {
            None => unknown.push(key.clone()),
            Some((_, Some(children))) => {
                if let toml::Value::Table(inner) = value {
                    unknown.extend(
                        inner
                            .keys()
                            .filter(|k| !children.contains(&k.as_str()))
                            .map(|k| format!("{key}.{k}")),
                    );
                }
            }
            Some((_, None)) => {}
        }
    }
    unknown
}

/// The dotted name of an override's key (`-c`, `thread/start {config}`) when [`KNOWN_KEYS`]
/// does not list it.
pub fn unknown_override_key(path: &[String]) -> Option<String> {
    let mut table = toml::Table::new();
    set_path(&mut table, path, toml::Value::Boolean(true));
    unknown_keys(&table).into_iter().next()
}

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
enum ToolSwitch {
    Bare(bool),
    Table {
        #[serde(default)]
        enabled: bool,
    },
}

impl ToolSwitch {
    fn is_enabled(self) -> bool {
        match self {
            Self::Bare(on) | Self::Table { enabled: on } => on,
        }
    }
}

/// The `[tools]` table (the keys we honour).
#[derive(Debug, Default, Deserialize)]
struct ToolsToml {
    #[serde(default)]
    update_plan: Option<ToolSwitch>,
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
    pub mcp_servers: BTreeMap<String, crate::mcp::config::McpServerConfig>,
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
    /// The merged raw table, kept so per-thread overrides re-merge with the same rules.
    raw: toml::Table,
    /// The `-c` overrides, kept so the file can be re-read with them (`config/mcpServer/reload`).
    cli_overrides: Vec<Override>,
}

/// One `key=value` override: the key's path (`a.b` → `["a","b"]`) and its TOML value.
pub type Override = (Vec<String>, toml::Value);

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

/// Parses raw `-c` arguments (`key=value`). The value is TOML when it parses as TOML and a
/// plain string otherwise, so `-c model=gpt-5` and `-c 'x={a=1}'` both work.
pub fn parse_overrides(raw: &[String]) -> Result<Vec<Override>> {
    raw.iter().map(|arg| parse_override(arg)).collect()
}

fn parse_override(arg: &str) -> Result<Override> {
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid override `{arg}`: expected key=value"))?;
    let path = parse_key_path(key.trim())
        .with_context(|| format!("invalid override `{arg}`: bad key `{}`", key.trim()))?;
    let value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut table) => table
            .remove("v")
            .ok_or_else(|| anyhow!("invalid override `{arg}`"))?,
        Err(_) => toml::Value::String(value.trim().to_string()),
    };
    Ok((path, value))
}

/// Splits a TOML key (dotted, possibly quoted) into its segments by letting the TOML parser read
/// `key = 0` and walking the one chain of tables it produces.
fn parse_key_path(key: &str) -> Result<Vec<String>> {
    if key.is_empty() {
        bail!("empty key");
    }
    let mut table: toml::Table = toml::from_str(&format!("{key} = 0"))?;
    let mut path = Vec::new();
    loop {
        let Some((name, value)) = table.into_iter().next() else {
            bail!("empty key");
        };
        path.push(name);
        match value {
            toml::Value::Table(inner) => table = inner,
            _ => return Ok(path),
        }
    }
}

/// Sets `value` at `path` inside `table`, creating (or replacing non-table) intermediate tables.
fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = table;
    for name in parents {
        let slot = current
            .entry(name.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !slot.is_table() {
            *slot = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = slot else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}

/// Converts a JSON value (a `thread/start` `config` entry) to TOML. `null` has no TOML image and
/// yields `None`; so do nulls inside arrays and objects, which are dropped.
pub fn json_to_toml(value: &serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => toml::Value::Array(items.iter().filter_map(json_to_toml).collect()),
        J::Object(map) => toml::Value::Table(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect(),
        ),
    })
}

/// Splits a dotted override key from a JSON map (`thread/start {config}`) into its path.
pub fn override_from_json(key: &str, value: &serde_json::Value) -> Result<Option<Override>> {
    let path = parse_key_path(key).with_context(|| format!("invalid config key `{key}`"))?;
    Ok(json_to_toml(value).map(|v| (path, v)))
}

/// Loads the configuration: CODEX_HOME, its `config.toml` (if present), then the `-c` overrides.
/// A broken config.toml is an error naming the file and the problem (line, key).
pub fn load(overrides: &[String]) -> Result<Config> {
    let codex_home = resolve_codex_home()?;
    let overrides = parse_overrides(overrides)?;
    load_from(codex_home, &overrides)
}

fn load_from(codex_home: PathBuf, overrides: &[Override]) -> Result<Config> {
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
    config.cli_overrides = overrides.to_vec();
    Ok(config)
}

fn file_error(path: &Path, message: &str) -> anyhow::Error {
    anyhow!("error in {}: {}", path.display(), message.trim_end())
}

impl Config {
    fn from_raw(codex_home: PathBuf, raw: toml::Table) -> Result<Self> {
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
            mcp_servers,
            model_context_window: positive("model_context_window", typed.model_context_window)?,
            model_auto_compact_token_limit: positive(
                "model_auto_compact_token_limit",
                typed.model_auto_compact_token_limit,
            )?,
            compact_prompt: typed.compact_prompt.filter(|p| !p.trim().is_empty()),
            raw,
            cli_overrides: Vec::new(),
        })
    }

    /// A copy with more overrides applied on top (per-thread `config`), with the same rules and
    /// errors as `-c`.
    pub fn with_overrides(&self, overrides: &[Override]) -> Result<Self> {
        let mut raw = self.raw.clone();
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn temp_home(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("codex-lite-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn override_values_parse_as_toml_or_fall_back_to_strings() {
        let cases: &[(&str, &[&str], toml::Value)] = &[
            (
                "model=gpt-5",
                &["model"],
                toml::Value::String("gpt-5".into()),
            ),
            (
                "model = \"x y\"",
                &["model"],
                toml::Value::String("x y".into()),
            ),
            ("a.b.c=3", &["a", "b", "c"], toml::Value::Integer(3)),
            ("flag=true", &["flag"], toml::Value::Boolean(true)),
            (
                "p.\"dotted.id\".x=1.5",
                &["p", "dotted.id", "x"],
                toml::Value::Float(1.5),
            ),
            (
                "list=[1,2]",
                &["list"],
                toml::Value::Array(vec![1.into(), 2.into()]),
            ),
            (
                "url=http://h:1/v1",
                &["url"],
                toml::Value::String("http://h:1/v1".into()),
            ),
            ("empty=", &["empty"], toml::Value::String(String::new())),
        ];
        for (arg, path, value) in cases {
            let (got_path, got_value) = parse_override(arg).unwrap();
            assert_eq!(got_path, *path, "{arg}");
            assert_eq!(&got_value, value, "{arg}");
        }
        let (_, table) = parse_override("m.x={name=\"n\",n=1}").unwrap();
        assert_eq!(table.as_table().unwrap()["name"].as_str(), Some("n"));
    }

    #[test]
    fn override_errors() {
        for bad in ["novalue", "=3", "a..b=1"] {
            assert!(parse_override(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_builtin_provider_can_be_adjusted() {
        let home = temp_home("builtin");
        let overrides =
            parse_overrides(&["model_providers.openai.request_max_retries=0".to_string()]).unwrap();
        let config = load_from(home.clone(), &overrides).unwrap();
        let provider = config.provider();
        assert_eq!(provider.request_max_retries, Some(0));
        assert_eq!(provider.name, "OpenAI");
        assert!(provider.requires_openai_auth);
        assert_eq!(provider.base_url, None);
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn defaults_without_a_file() {
        let home = temp_home("defaults");
        let config = load_from(home.clone(), &[]).unwrap();
        assert_eq!(config.model, None, "the catalog picks the default model");
        assert_eq!(config.model_reasoning_effort, None);
        assert_eq!(config.model_reasoning_summary, None);
        assert_eq!(config.model_verbosity, None);
        assert_eq!(config.model_provider, "openai");
        assert_eq!(config.approval_policy, ApprovalPolicy::OnRequest);
        assert_eq!(config.sandbox_mode, SandboxMode::ReadOnly);
        assert_eq!(config.chatgpt_base_url, "https://chatgpt.com/backend-api");
        assert_eq!(config.openai_base_url, "https://api.openai.com/v1");
        assert!(config.provider().requires_openai_auth);
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn file_then_overrides() {
        let home = temp_home("file");
        std::fs::write(
            home.join("config.toml"),
            "model = \"from-file\"\napproval_policy = \"on-failure\"\nsandbox_mode = \"workspace-write\"\n\
             forced_chatgpt_workspace_id = \"org-1\"\nunknown_key = 1\n\
             [sandbox_workspace_write]\nnetwork_access = true\n",
        )
        .unwrap();
        let overrides = parse_overrides(&[
            "model_provider=mock".to_string(),
            "model_providers.mock={name=\"mock\",base_url=\"http://127.0.0.1:9/v1\",env_key=\"K\",request_max_retries=1}".to_string(),
        ])
        .unwrap();
        let config = load_from(home.clone(), &overrides).unwrap();
        assert_eq!(config.model.as_deref(), Some("from-file"));
        assert_eq!(config.approval_policy, ApprovalPolicy::OnRequest);
        assert_eq!(config.sandbox_mode, SandboxMode::WorkspaceWrite);
        assert!(config.sandbox_workspace_write.network_access);
        assert_eq!(
            config.forced_chatgpt_workspace_id,
            Some(vec!["org-1".to_string()])
        );
        assert_eq!(
            config.provider().base_url.as_deref(),
            Some("http://127.0.0.1:9/v1")
        );
        assert_eq!(config.provider().request_max_retries, Some(1));

        let thread = config
            .with_overrides(&[
                override_from_json("model", &serde_json::json!("per-thread"))
                    .unwrap()
                    .unwrap(),
            ])
            .unwrap();
        assert_eq!(thread.model.as_deref(), Some("per-thread"));
        assert_eq!(thread.model_provider, "mock");
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn unknown_keys_are_collected_from_the_file_and_overrides() {
        let home = temp_home("unknown");
        std::fs::write(
            home.join("config.toml"),
            "mystery = 1\nweb_search = \"live\"\nproject_doc_max_bytes = 10\n[tools]\nupdate_plan = true\nbogus = 2\n",
        )
        .unwrap();
        let overrides = parse_overrides(&[
            "nope.deep=1".to_string(),
            "project_doc_fallback_filenames=[\"CLAUDE.md\"]".to_string(),
            "tools.other=true".to_string(),
        ])
        .unwrap();
        let config = load_from(home.clone(), &overrides).unwrap();
        let file = home.join("config.toml").display().to_string();
        assert_eq!(
            config.unknown_keys,
            [
                format!("`mystery` in {file}"),
                format!("`tools.bogus` in {file}"),
                "`nope` (-c)".to_string(),
                "`tools.other` (-c)".to_string(),
            ]
        );
        assert_eq!(config.web_search, WebSearchMode::Live);
        assert_eq!(config.project_doc_max_bytes, 10);
        assert_eq!(config.project_doc_fallback_filenames, ["CLAUDE.md"]);
        assert!(config.update_plan);
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn tool_switches_and_defaults() {
        let home = temp_home("switches");
        let defaults = load_from(home.clone(), &[]).unwrap();
        assert!(!defaults.update_plan);
        assert_eq!(defaults.web_search, WebSearchMode::Cached);
        assert_eq!(defaults.project_doc_max_bytes, 32 * 1024);
        assert!(defaults.unknown_keys.is_empty());
        for (arg, on) in [
            ("tools.update_plan={enabled=true}", true),
            ("tools.update_plan={enabled=false}", false),
            ("tools.update_plan=false", false),
        ] {
            let config =
                load_from(home.clone(), &parse_overrides(&[arg.to_string()]).unwrap()).unwrap();
            assert_eq!(config.update_plan, on, "{arg}");
        }
        for bad in [
            "web_search=sometimes",
            "project_doc_max_bytes=-1",
            "tools.update_plan=\"yes\"",
        ] {
            let overrides = parse_overrides(&[bad.to_string()]).unwrap();
            assert!(load_from(home.clone(), &overrides).is_err(), "{bad}");
        }
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn broken_files_name_the_file_line_and_key() {
        let home = temp_home("broken");
        let cases = [
            ("model = \n", "line 1"),
            ("model = \"a\"\nsandbox_mode = \"nope\"\n", "line 2"),
            ("x = 1\nmodel = 5\n", "model"),
        ];
        for (text, needle) in cases {
            std::fs::write(home.join("config.toml"), text).unwrap();
            let err = format!("{:#}", load_from(home.clone(), &[]).unwrap_err());
            assert!(err.contains("config.toml"), "{err}");
            assert!(err.contains(needle), "{needle} not in {err}");
        }
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn invalid_settings_are_errors() {
        let home = temp_home("invalid");
        for arg in [
            "model_provider=missing",
            "approval_policy=sometimes",
            "sandbox_workspace_write.writable_roots=[\"rel\"]",
            "model_providers.x={name=\"x\",base_url=\"http://h\",wire_api=\"chat\"}",
            "model_providers.other.request_max_retries=1",
        ] {
            let overrides = parse_overrides(&[arg.to_string()]).unwrap();
            assert!(load_from(home.clone(), &overrides).is_err(), "{arg}");
        }
        std::fs::remove_dir_all(home).unwrap();
    }
}
