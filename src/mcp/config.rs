//! The `mcp_servers` configuration (mcp.md §1): one table per server, stdio (`command`) or
//! streamable HTTP (`url`), parsed from the merged config table with errors that name the
//! server and the key. Unknown keys are warned about once per load, never silently dropped.
//! Starting servers is `registry.rs`'s; this module only types and validates.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use crate::secret::Secret;

/// `startup_timeout_sec` when the config says nothing.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// `tool_timeout_sec` when the config says nothing.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest timeout accepted for either setting (one day): larger values are config errors.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// How to reach one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A child process speaking JSON-RPC lines on stdin/stdout.
    Stdio {
        /// Program (looked up on the child's `PATH`).
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Variables set in the child, on top of the minimal base environment.
        env: BTreeMap<String, Secret>,
        /// Names of variables passed through from our own environment.
        env_vars: Vec<String>,
        /// Working directory (default: the app-server's own).
        cwd: Option<PathBuf>,
    },
    /// A streamable-HTTP endpoint.
    Http {
        /// The endpoint every message is POSTed to.
        url: String,
        /// Environment variable holding a bearer token for `Authorization`.
        bearer_token_env_var: Option<String>,
        /// Headers sent with every request, as written.
        http_headers: BTreeMap<String, Secret>,
        /// Headers whose values come from environment variables (header → variable).
        env_http_headers: BTreeMap<String, String>,
    },
}

/// One `[mcp_servers.<name>]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerConfig {
    /// stdio or HTTP.
    pub transport: McpTransport,
    /// `enabled` (default true): a disabled server is listed but never started.
    pub enabled: bool,
    /// `required` (default false): its startup failure fails `thread/start`.
    pub required: bool,
    /// `startup_timeout_sec` (default 10 s): spawn + handshake + tool listing.
    pub startup_timeout: Duration,
    /// `tool_timeout_sec` (default 60 s): one `tools/call`.
    pub tool_timeout: Duration,
    /// `enabled_tools`: when set, only these tools are offered.
    pub enabled_tools: Option<Vec<String>>,
    /// `disabled_tools`: never offered.
    pub disabled_tools: Vec<String>,
}

impl McpServerConfig {
    /// Whether the allow/deny lists let `tool` through.
    pub fn is_tool_allowed(&self, tool: &str) -> bool {
        let allowed = self
            .enabled_tools
            .as_ref()
            .is_none_or(|list| list.iter().any(|t| t == tool));
        allowed && !self.disabled_tools.iter().any(|t| t == tool)
    }
}

const COMMON_KEYS: &[&str] = &[
    "enabled",
    "required",
    "startup_timeout_sec",
    "startup_timeout_ms",
    "tool_timeout_sec",
    "enabled_tools",
    "disabled_tools",
];
const STDIO_KEYS: &[&str] = &["command", "args", "env", "env_vars", "cwd"];
const HTTP_KEYS: &[&str] = &[
    "url",
    "bearer_token_env_var",
    "http_headers",
    "env_http_headers",
];

/// Parses the `mcp_servers` table (absent: no servers). Errors name the server and the key;
/// keys we do not know are left to [`unknown_keys`].
pub fn parse(value: Option<&toml::Value>) -> Result<BTreeMap<String, McpServerConfig>> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let toml::Value::Table(table) = value else {
        bail!("mcp_servers: expected a table of servers");
    };
    let mut servers = BTreeMap::new();
    for (name, entry) in table {
        if !is_valid_name(name) {
            bail!(
                "mcp_servers.{name}: invalid server name (use only letters, digits, `_` and `-`)"
            );
        }
        let toml::Value::Table(entry) = entry else {
            bail!("mcp_servers.{name}: expected a table");
        };
        servers.insert(name.clone(), parse_server(name, entry)?);
    }
    Ok(servers)
}

/// The dotted names of keys inside server tables that we do not know (they are ignored), e.g.
/// `mcp_servers.x.oauth`; reported with the other unknown configuration keys.
pub fn unknown_keys(value: Option<&toml::Value>) -> Vec<String> {
    let Some(toml::Value::Table(table)) = value else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    for (name, entry) in table {
        let Some(entry) = entry.as_table() else {
            continue;
        };
        unknown.extend(
            entry
                .keys()
                .filter(|k| {
                    let k = k.as_str();
                    !COMMON_KEYS.contains(&k) && !STDIO_KEYS.contains(&k) && !HTTP_KEYS.contains(&k)
                })
                .map(|k| format!("mcp_servers.{name}.{k}")),
        );
    }
    unknown
}

/// Server names as the spec allows them: `[A-Za-z0-9_-]+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_server(name: &str, t: &toml::Table) -> Result<McpServerConfig> {
    let key = |k: &str| format!("mcp_servers.{name}.{k}");
    let transport = match (t.get("command"), t.get("url")) {
        (Some(_), Some(_)) => bail!(
            "mcp_servers.{name}: set either `command` (stdio) or `url` (streamable HTTP), not both"
        ),
        (None, None) => bail!(
            "mcp_servers.{name}: missing `command` (stdio server) or `url` (streamable HTTP server)"
        ),
        (Some(command), None) => {
            reject_keys(name, t, HTTP_KEYS, "a stdio server (`command`)")?;
            let command = string(command, &key("command"))?;
            if command.trim().is_empty() {
                bail!("{}: must not be empty", key("command"));
            }
            McpTransport::Stdio {
                command,
                args: opt_strings(t, "args", &key("args"))?.unwrap_or_default(),
                env: string_map(t, "env", &key("env"))?
                    .into_iter()
                    .map(|(k, v)| (k, Secret::new(v)))
                    .collect(),
                env_vars: opt_strings(t, "env_vars", &key("env_vars"))?.unwrap_or_default(),
                cwd: t
                    .get("cwd")
                    .map(|v| string(v, &key("cwd")).map(PathBuf::from))
                    .transpose()?,
            }
        }
        (None, Some(url)) => {
            reject_keys(name, t, STDIO_KEYS, "a streamable HTTP server (`url`)")?;
            let url = string(url, &key("url"))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("{}: `{url}` is not an http:// or https:// URL", key("url"));
            }
            McpTransport::Http {
                url,
                bearer_token_env_var: t
                    .get("bearer_token_env_var")
                    .map(|v| string(v, &key("bearer_token_env_var")))
                    .transpose()?,
                http_headers: string_map(t, "http_headers", &key("http_headers"))?
                    .into_iter()
                    .map(|(k, v)| (k, Secret::new(v)))
                    .collect(),
                env_http_headers: string_map(t, "env_http_headers", &key("env_http_headers"))?,
            }
        }
    };
    let startup_timeout = match (t.get("startup_timeout_sec"), t.get("startup_timeout_ms")) {
        (Some(v), _) => seconds(v, &key("startup_timeout_sec"))?,
        (None, Some(v)) => milliseconds(v, &key("startup_timeout_ms"))?,
        (None, None) => DEFAULT_STARTUP_TIMEOUT,
    };
    Ok(McpServerConfig {
        transport,
        enabled: opt_bool(t, "enabled", &key("enabled"))?.unwrap_or(true),
        required: opt_bool(t, "required", &key("required"))?.unwrap_or(false),
        startup_timeout,
        tool_timeout: t
            .get("tool_timeout_sec")
            .map(|v| seconds(v, &key("tool_timeout_sec")))
            .transpose()?
            .unwrap_or(DEFAULT_TOOL_TIMEOUT),
        enabled_tools: opt_strings(t, "enabled_tools", &key("enabled_tools"))?,
        disabled_tools: opt_strings(t, "disabled_tools", &key("disabled_tools"))?
            .unwrap_or_default(),
    })
}

fn reject_keys(name: &str, t: &toml::Table, keys: &[&str], what: &str) -> Result<()> {
    match keys.iter().find(|k| t.contains_key(**k)) {
        Some(k) => bail!("mcp_servers.{name}.{k}: not allowed for {what}"),
        None => Ok(()),
    }
}

fn type_name(v: &toml::Value) -> &'static str {
    v.type_str()
}

fn string(v: &toml::Value, key: &str) -> Result<String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{key}: expected a string, found {}", type_name(v)))
}

fn opt_bool(t: &toml::Table, name: &str, key: &str) -> Result<Option<bool>> {
    t.get(name)
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| anyhow!("{key}: expected true or false, found {}", type_name(v)))
        })
        .transpose()
}

fn opt_strings(t: &toml::Table, name: &str, key: &str) -> Result<Option<Vec<String>>> {
    let Some(v) = t.get(name) else {
        return Ok(None);
    };
    let toml::Value::Array(items) = v else {
        bail!(
            "{key}: expected an array of strings, found {}",
            type_name(v)
        );
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| string(item, &format!("{key}[{i}]")))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn string_map(t: &toml::Table, name: &str, key: &str) -> Result<BTreeMap<String, String>> {
    let Some(v) = t.get(name) else {
        return Ok(BTreeMap::new());
    };
    let toml::Value::Table(map) = v else {
        bail!("{key}: expected a table of strings, found {}", type_name(v));
    };
    map.iter()
        .map(|(k, v)| Ok((k.clone(), string(v, &format!("{key}.{k}"))?)))
        .collect()
}

fn seconds(v: &toml::Value, key: &str) -> Result<Duration> {
    let secs = match v {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(f) => *f,
        other => bail!(
            "{key}: expected a number of seconds, found {}",
            type_name(other)
        ),
    };
    positive_duration(secs, key)
}

fn milliseconds(v: &toml::Value, key: &str) -> Result<Duration> {
    match v {
        toml::Value::Integer(i) => positive_duration(*i as f64 / 1000.0, key),
        other => bail!(
            "{key}: expected a number of milliseconds, found {}",
            type_name(other)
        ),
    }
}

fn positive_duration(secs: f64, key: &str) -> Result<Duration> {
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_TIMEOUT.as_secs_f64() {
        bail!(
            "{key}: must be more than 0 and at most {} seconds",
            MAX_TIMEOUT.as_secs()
        );
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<BTreeMap<String, McpServerConfig>> {
        let table: toml::Table = toml::from_str(text).unwrap();
        parse(table.get("mcp_servers"))
    }

    #[test]
    fn stdio_and_http_servers_with_defaults_and_every_key() {
        let servers = parse_text(
            r#"
            [mcp_servers.files]
            command = "npx"
            args = ["-y", "server"]
            env = { TOKEN = "t" }
            env_vars = ["HOME2"]
            cwd = "/tmp"
            enabled_tools = ["read"]
            disabled_tools = ["write"]
            startup_timeout_sec = 2.5
            tool_timeout_sec = 30
            required = true

            [mcp_servers.web]
            url = "https://example.test/mcp"
            bearer_token_env_var = "WEB_TOKEN"
            http_headers = { "X-A" = "1" }
            env_http_headers = { "X-B" = "B_VAR" }
            enabled = false
            startup_timeout_ms = 1500
            "#,
        )
        .unwrap();
        let files = &servers["files"];
        assert!(files.required && files.enabled);
        assert_eq!(files.startup_timeout, Duration::from_millis(2500));
        assert_eq!(files.tool_timeout, Duration::from_secs(30));
        assert!(files.is_tool_allowed("read"));
        assert!(!files.is_tool_allowed("write"));
        assert!(!files.is_tool_allowed("other"));
        let McpTransport::Stdio {
            command,
            args,
            env,
            env_vars,
            cwd,
        } = &files.transport
        else {
            panic!("stdio expected");
        };
        assert_eq!(command, "npx");
        assert_eq!(args, &["-y", "server"]);
        assert_eq!(env["TOKEN"].expose(), "t");
        assert_eq!(env_vars, &["HOME2"]);
        assert_eq!(cwd.as_deref(), Some(std::path::Path::new("/tmp")));
        assert!(
            !format!("{files:?}").contains("\"t\""),
            "env values redacted"
        );

        let web = &servers["web"];
        assert!(!web.enabled && !web.required);
        assert_eq!(web.startup_timeout, Duration::from_millis(1500));
        assert_eq!(web.tool_timeout, DEFAULT_TOOL_TIMEOUT);
        assert!(web.is_tool_allowed("anything"));
        let McpTransport::Http {
            url,
            bearer_token_env_var,
            http_headers,
            env_http_headers,
        } = &web.transport
        else {
            panic!("http expected");
        };
        assert_eq!(url, "https://example.test/mcp");
        assert_eq!(bearer_token_env_var.as_deref(), Some("WEB_TOKEN"));
        assert_eq!(http_headers["X-A"].expose(), "1");
        assert_eq!(env_http_headers["X-B"], "B_VAR");

        let minimal = parse_text("[mcp_servers.m]\ncommand = \"x\"\n").unwrap();
        assert_eq!(minimal["m"].startup_timeout, DEFAULT_STARTUP_TIMEOUT);
        assert!(parse(None).unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_server_and_key() {
        let cases: &[(&str, &str)] = &[
            (
                "[mcp_servers.a]\nargs = []\n",
                "mcp_servers.a: missing `command`",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nurl = \"http://h\"\n",
                "mcp_servers.a: set either",
            ),
            (
                "[mcp_servers.\"bad name\"]\ncommand = \"x\"\n",
                "mcp_servers.bad name: invalid server name",
            ),
            (
                "[mcp_servers.a]\ncommand = 3\n",
                "mcp_servers.a.command: expected a string",
            ),
            (
                "[mcp_servers.a]\ncommand = \" \"\n",
                "mcp_servers.a.command: must not be empty",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nargs = [1]\n",
                "mcp_servers.a.args[0]: expected a string",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nenv = { K = 1 }\n",
                "mcp_servers.a.env.K: expected a string",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nbearer_token_env_var = \"T\"\n",
                "mcp_servers.a.bearer_token_env_var: not allowed for a stdio server",
            ),
            (
                "[mcp_servers.a]\nurl = \"http://h\"\nenv = {}\n",
                "mcp_servers.a.env: not allowed for a streamable HTTP server",
            ),
            (
                "[mcp_servers.a]\nurl = \"ftp://h\"\n",
                "mcp_servers.a.url: `ftp://h` is not an http",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nstartup_timeout_sec = 0\n",
                "mcp_servers.a.startup_timeout_sec: must be more than 0",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\ntool_timeout_sec = \"5\"\n",
                "mcp_servers.a.tool_timeout_sec: expected a number",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nenabled = \"yes\"\n",
                "mcp_servers.a.enabled: expected true or false",
            ),
            ("[mcp_servers]\na = 1\n", "mcp_servers.a: expected a table"),
            ("mcp_servers = 1\n", "mcp_servers: expected a table"),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", parse_text(text).unwrap_err());
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_reported_per_server() {
        let table: toml::Table = toml::from_str(
            "[mcp_servers.a]\ncommand = \"x\"\noauth = 1\nscopes = []\n[mcp_servers.b]\nurl = \"http://h\"\n",
        )
        .unwrap();
        assert_eq!(
            unknown_keys(table.get("mcp_servers")),
            ["mcp_servers.a.oauth", "mcp_servers.a.scopes"]
        );
    }

    #[test]
    fn names() {
        for ok in ["a", "A-b_9"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "a b", "a.b", "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
