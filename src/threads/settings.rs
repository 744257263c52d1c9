//! Thread settings from the configuration and the overrides of thread/start, thread/resume
//! and thread/fork: cwd resolution, the wire approval policy, the sandbox policy.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{ApprovalPolicy, Config, SandboxMode};
use crate::rpc::RpcError;
use crate::sandbox::SandboxPolicy;
use crate::thread::Settings;

/// Overrides accepted by thread/start, thread/resume and thread/fork.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadOverrides {
    #[serde(default)]
    pub(super) cwd: Option<String>,
    #[serde(default)]
    pub(super) approval_policy: Option<Value>,
    #[serde(default)]
    pub(super) sandbox: Option<SandboxMode>,
    #[serde(default)]
    pub(super) model: Option<String>,
    #[serde(default)]
    pub(super) model_provider: Option<String>,
    #[serde(default)]
    pub(super) base_instructions: Option<String>,
    #[serde(default)]
    pub(super) developer_instructions: Option<String>,
    #[serde(default)]
    pub(super) config: Option<Map<String, Value>>,
}

/// Parses a wire approval policy (`untrusted`, `on-request`, `never`; `on-failure` reads as
/// `on-request`).
pub(super) fn parse_approval(value: &Value) -> Result<ApprovalPolicy, RpcError> {
    match value {
        Value::String(s) => ApprovalPolicy::parse(s)
            .map(|(policy, _)| policy)
            .ok_or_else(|| RpcError::invalid_params(format!("unknown approvalPolicy `{s}`"))),
        Value::Object(map) if map.contains_key("granular") => Err(RpcError::invalid_params(
            "granular approval policies are not supported; use untrusted, on-request or never",
        )),
        other => Err(RpcError::invalid_params(format!(
            "invalid approvalPolicy {other}"
        ))),
    }
}

/// Resolves a client-given directory (relative ones against the server's cwd) to a canonical,
/// existing directory; `None` gives `default`.
pub(crate) fn resolve_cwd(cwd: Option<&str>, default: &Path) -> Result<PathBuf, RpcError> {
    let Some(cwd) = cwd else {
        return Ok(default.to_path_buf());
    };
    let path = Path::new(cwd);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| RpcError::internal(format!("cannot read the server's cwd: {e}")))?
            .join(path)
    };
    let resolved = path
        .canonicalize()
        .map_err(|e| RpcError::invalid_request(format!("invalid cwd {cwd}: {e}")))?;
    if !resolved.is_dir() {
        return Err(RpcError::invalid_request(format!(
            "invalid cwd {cwd}: not a directory"
        )));
    }
    Ok(resolved)
}

/// The thread's settings from the base configuration, an optional earlier state, and the
/// request's overrides; the model (else the catalog's default) resolved in `catalog`.
pub(super) fn build_settings(
    base: &Config,
    previous: Option<&Settings>,
    overrides: &ThreadOverrides,
    catalog: &crate::models::Snapshot,
) -> Result<Settings, RpcError> {
    let mut config_overrides = Vec::new();
    for (key, value) in overrides.config.iter().flatten() {
        if let Some(o) = crate::config::override_from_json(key, value)
            .map_err(|e| RpcError::invalid_params(format!("{e:#}")))?
        {
            config_overrides.push(o);
        }
    }
    if let Some(provider) = &overrides.model_provider {
        config_overrides.push((
            vec!["model_provider".into()],
            toml::Value::String(provider.clone()),
        ));
    }
    let config_base = previous.map_or(base, |p| &p.config);
    let config = config_base
        .with_overrides(&config_overrides)
        .map_err(|e| RpcError::invalid_params(format!("{e:#}")))?;
    let default_cwd = match previous {
        Some(p) => p.cwd.clone(),
        None => std::env::current_dir()
            .map_err(|e| RpcError::internal(format!("cannot read the server's cwd: {e}")))?,
    };
    let cwd = resolve_cwd(overrides.cwd.as_deref(), &default_cwd)?;
    let model = overrides
        .model
        .clone()
        .filter(|m| !m.trim().is_empty())
        .or_else(|| previous.map(|p| p.model.clone()))
        .or_else(|| config.model.clone())
        .unwrap_or_else(|| catalog.default_slug());
    let model_info = match previous {
        Some(p) if p.model == model => p.model_info.clone(),
        _ => catalog.resolve(&model),
    };
    let approval = match &overrides.approval_policy {
        Some(value) => parse_approval(value)?,
        None => previous.map_or(config.approval_policy, |p| p.approval),
    };
    let sandbox = match overrides.sandbox {
        Some(mode) => SandboxPolicy::from_config(mode, &config.sandbox_workspace_write)
            .map_err(|e| RpcError::invalid_params(e.to_string()))?,
        None => match previous {
            Some(p) => p.sandbox.clone(),
            None => {
                SandboxPolicy::from_config(config.sandbox_mode, &config.sandbox_workspace_write)
                    .map_err(|e| RpcError::invalid_params(e.to_string()))?
            }
        },
    };
    let effort = previous
        .and_then(|p| p.effort.clone())
        .or_else(|| config.model_reasoning_effort.clone());
    Ok(Settings {
        summary: previous
            .and_then(|p| p.summary.clone())
            .or_else(|| config.model_reasoning_summary.clone()),
        model_info,
        base_instructions: overrides
            .base_instructions
            .clone()
            .or_else(|| previous.and_then(|p| p.base_instructions.clone())),
        developer_instructions: overrides
            .developer_instructions
            .clone()
            .or_else(|| previous.and_then(|p| p.developer_instructions.clone())),
        dynamic_tools: previous
            .map(|p| p.dynamic_tools.clone())
            .unwrap_or_default(),
        config,
        cwd,
        model,
        effort,
        approval,
        sandbox,
    })
}
