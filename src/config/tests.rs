//! Unit tests of loading, merging and overrides.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use super::load::load_from;
use super::overrides::parse_override;
use super::*;

fn temp_home(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("codex-lite-config-{name}-{}", std::process::id()));
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

    // A thread without overrides shares the tables (no copy per thread) and reports no
    // unknown keys of its own: they are the process's to report.
    let thread = config.with_overrides(&[]).unwrap();
    assert!(std::sync::Arc::ptr_eq(&thread.raw, &config.raw));
    assert!(std::sync::Arc::ptr_eq(
        &thread.mcp_servers,
        &config.mcp_servers
    ));
    assert!(thread.unknown_keys.is_empty());
    assert_eq!(thread.project_doc_fallback_filenames, ["CLAUDE.md"]);
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
