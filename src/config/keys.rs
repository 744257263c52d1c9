//! The keys this implementation honours, in one list, and finding the others in config.toml
//! and overrides (reported once in `configWarning`, never silently dropped).

use super::overrides::set_path;

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
pub(super) fn unknown_keys(table: &toml::Table) -> Vec<String> {
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
