//! The thread/* and turn/* requests (protocol.md §5–6): creating, resuming, forking, listing,
//! reading, archiving and naming threads; starting, interrupting and steering turns. State
//! lives in `thread.rs`, files in `rollout.rs`, the running turn in `turn.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{ApprovalPolicy, Config, SandboxMode};
use crate::protocol::notify;
use crate::protocol::{Thread, ThreadStatus, TokenUsage, Turn, TurnStatus, UserInput};
use crate::rollout::{self, Entry, Loaded, Rollout, SessionMeta, TurnContext};
use crate::rpc::{RequestId, RpcError};
use crate::sandbox::{ProtocolSandboxPolicy, SandboxPolicy};
use crate::server::Server;
use crate::thread::{SessionApprovals, Settings, SharedThread, ThreadState, TurnHandle, lock};

/// Default and largest page of `thread/list` and `thread/loaded/list`.
const DEFAULT_PAGE: usize = 25;
const MAX_PAGE: usize = 200;

/// Overrides accepted by thread/start, thread/resume and thread/fork.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadOverrides {
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    approval_policy: Option<Value>,
    #[serde(default)]
    sandbox: Option<SandboxMode>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    model_provider: Option<String>,
    #[serde(default)]
    base_instructions: Option<String>,
    #[serde(default)]
    developer_instructions: Option<String>,
    #[serde(default)]
    config: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadStartParams {
    #[serde(flatten)]
    overrides: ThreadOverrides,
    #[serde(default)]
    ephemeral: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadResumeParams {
    thread_id: String,
    #[serde(flatten)]
    overrides: ThreadOverrides,
    #[serde(default)]
    exclude_turns: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadForkParams {
    thread_id: String,
    #[serde(flatten)]
    overrides: ThreadOverrides,
    #[serde(default)]
    ephemeral: bool,
    #[serde(default)]
    exclude_turns: bool,
    #[serde(default)]
    last_turn_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadIdParams {
    thread_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadReadParams {
    thread_id: String,
    #[serde(default)]
    include_turns: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadSetNameParams {
    thread_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CwdFilter {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadListParams {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    archived: Option<bool>,
    #[serde(default)]
    cwd: Option<CwdFilter>,
    #[serde(default)]
    search_term: Option<String>,
    #[serde(default)]
    model_providers: Option<Vec<String>>,
    #[serde(default)]
    sort_key: Option<String>,
    #[serde(default)]
    sort_direction: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageParams {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TurnStartParams {
    thread_id: String,
    input: Vec<UserInput>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    approval_policy: Option<Value>,
    #[serde(default)]
    sandbox_policy: Option<ProtocolSandboxPolicy>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    effort: Option<String>,
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TurnInterruptParams {
    thread_id: String,
    turn_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TurnSteerParams {
    thread_id: String,
    input: Vec<UserInput>,
    #[serde(default)]
    expected_turn_id: Option<String>,
}

/// The result of thread/start, thread/resume and thread/fork.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThreadSessionResponse {
    thread: Thread,
    model: String,
    model_provider: String,
    cwd: String,
    approval_policy: &'static str,
    approvals_reviewer: &'static str,
    sandbox: ProtocolSandboxPolicy,
    reasoning_effort: Option<String>,
}

fn session_response(state: &ThreadState, include_turns: bool) -> ThreadSessionResponse {
    ThreadSessionResponse {
        thread: state.to_protocol(include_turns),
        model: state.settings.model.clone(),
        model_provider: state.settings.config.model_provider.clone(),
        cwd: state.settings.cwd.display().to_string(),
        approval_policy: state.settings.approval.as_str(),
        approvals_reviewer: "user",
        sandbox: ProtocolSandboxPolicy(state.settings.sandbox.clone()),
        reasoning_effort: state.settings.effort.clone(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    crate::server::decode(params)
}

fn not_found(id: &str) -> RpcError {
    RpcError::invalid_request(format!("thread not found: {id}"))
}

/// Parses a wire approval policy (`untrusted`, `on-request`, `never`; `on-failure` reads as
/// `on-request`).
fn parse_approval(value: &Value) -> Result<ApprovalPolicy, RpcError> {
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

/// Resolves a client-given directory against the server's cwd; it must exist.
fn resolve_cwd(cwd: Option<&str>, default: &Path) -> Result<PathBuf, RpcError> {
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
/// request's overrides.
fn build_settings(
    base: &Config,
    previous: Option<&Settings>,
    overrides: &ThreadOverrides,
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
        .or_else(|| previous.map(|p| p.model.clone()))
        .unwrap_or_else(|| config.model.clone());
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
    let effort = previous.and_then(|p| p.effort.clone()).or_else(|| {
        crate::prompt::is_reasoning_model(&model).then(|| config.model_reasoning_effort.clone())
    });
    Ok(Settings {
        summary: previous.map_or_else(
            || config.model_reasoning_summary.clone(),
            |p| p.summary.clone(),
        ),
        base_instructions: overrides
            .base_instructions
            .clone()
            .or_else(|| previous.and_then(|p| p.base_instructions.clone())),
        developer_instructions: overrides
            .developer_instructions
            .clone()
            .or_else(|| previous.and_then(|p| p.developer_instructions.clone())),
        config,
        cwd,
        model,
        effort,
        approval,
        sandbox,
    })
}

fn new_state(
    id: String,
    settings: Settings,
    originator: Option<String>,
    ephemeral: bool,
) -> ThreadState {
    let now = crate::time::unix_seconds() as i64;
    ThreadState {
        id,
        created_at: now,
        updated_at: now,
        preview: String::new(),
        name: None,
        ephemeral,
        forked_from_id: None,
        originator,
        settings,
        history: Vec::new(),
        told_context: None,
        turn_contexts: Vec::new(),
        turns: Vec::new(),
        status: ThreadStatus::Idle,
        total_usage: Default::default(),
        rollout: None,
        approvals: SessionApprovals::default(),
        active: None,
    }
}

fn meta_of(state: &ThreadState) -> SessionMeta {
    SessionMeta {
        id: state.id.clone(),
        created_at: state.created_at,
        cwd: state.settings.cwd.display().to_string(),
        originator: state.originator.clone(),
        cli_version: env!("CARGO_PKG_VERSION").to_string(),
        model_provider: state.settings.config.model_provider.clone(),
        model: state.settings.model.clone(),
        forked_from_id: state.forked_from_id.clone(),
        base_instructions: state.settings.base_instructions.clone(),
        developer_instructions: state.settings.developer_instructions.clone(),
    }
}

/// When a rollout was last written (unix seconds), or `fallback` when that cannot be read.
fn modified_at(path: &Path, fallback: i64) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(fallback, |d| d.as_secs() as i64)
}

/// A thread known only from its rollout, as listed and read.
fn unloaded_thread(
    path: &Path,
    meta: &SessionMeta,
    preview: String,
    name: Option<String>,
    turns: Vec<Turn>,
) -> Thread {
    let updated_at = modified_at(path, meta.created_at);
    Thread {
        id: meta.id.clone(),
        session_id: meta.id.clone(),
        preview,
        ephemeral: false,
        model: Some(meta.model.clone()),
        model_provider: meta.model_provider.clone(),
        cwd: meta.cwd.clone(),
        path: Some(path.display().to_string()),
        created_at: meta.created_at,
        updated_at,
        status: ThreadStatus::NotLoaded,
        name,
        turns,
        cli_version: meta.cli_version.clone(),
        originator: meta.originator.clone(),
        source: "appServer",
        forked_from_id: meta.forked_from_id.clone(),
        project_id: None,
        reasoning_effort: None,
    }
}

/// What a fork copies from its source.
struct ForkSource {
    history: Vec<(String, Value)>,
    turns: Vec<Turn>,
    turn_contexts: Vec<(String, TurnContext)>,
    settings: Settings,
    preview: String,
    usage: TokenUsage,
}

impl Server {
    /// Dispatches thread/* and turn/* methods; `None` when `method` is not
    /// one of them (the caller answers -32601), else the outcome (the caller answers errors).
    pub fn handle_thread_request(
        &mut self,
        id: &RequestId,
        method: &str,
        params: Option<Value>,
    ) -> Option<Result<(), RpcError>> {
        Some(match method {
            "thread/start" => decode(params).and_then(|p| self.thread_start(id, p)),
            "thread/resume" => decode(params).and_then(|p| self.thread_resume(id, p)),
            "thread/fork" => decode(params).and_then(|p| self.thread_fork(id, p)),
            "thread/list" => decode(params).and_then(|p| self.thread_list(id, p)),
            "thread/read" => decode(params).and_then(|p| self.thread_read(id, p)),
            "thread/loaded/list" => decode(params).and_then(|p| self.thread_loaded_list(id, p)),
            "thread/archive" => decode(params).and_then(|p| self.thread_archive(id, p)),
            "thread/unarchive" => decode(params).and_then(|p| self.thread_unarchive(id, p)),
            "thread/name/set" => decode(params).and_then(|p| self.thread_set_name(id, p)),
            "turn/start" => decode(params).and_then(|p| self.turn_start(id, p)),
            "turn/interrupt" => decode(params).and_then(|p| self.turn_interrupt(id, p)),
            "turn/steer" => decode(params).and_then(|p| self.turn_steer(id, p)),
            _ => return None,
        })
    }

    fn register(&mut self, state: ThreadState) -> SharedThread {
        let id = state.id.clone();
        let shared = Arc::new(Mutex::new(state));
        self.threads.insert(id, shared.clone());
        shared
    }

    fn announce_new_thread(&self, id: &RequestId, shared: &SharedThread, include_turns: bool) {
        let state = lock(shared);
        self.rpc
            .respond(id, session_response(&state, include_turns));
        self.rpc.notify(
            "thread/started",
            notify::ThreadEvent {
                thread: &state.to_protocol(false),
            },
        );
    }

    fn thread_start(&mut self, id: &RequestId, params: ThreadStartParams) -> Result<(), RpcError> {
        let settings = build_settings(&self.config, None, &params.overrides)?;
        let ephemeral = params.ephemeral.unwrap_or(false);
        let mut state = new_state(
            crate::ids::uuid_v7(),
            settings,
            self.originator(),
            ephemeral,
        );
        if !ephemeral {
            let rollout = Rollout::create(&self.config.codex_home, &meta_of(&state))
                .map_err(|e| RpcError::internal(format!("{e:#}")))?;
            state.rollout = Some(rollout);
        }
        let shared = self.register(state);
        self.announce_new_thread(id, &shared, false);
        Ok(())
    }

    /// Rebuilds a thread from its rollout (not registered, rollout not opened for appending).
    fn load_state(
        &self,
        loaded: Loaded,
        path: &Path,
        overrides: &ThreadOverrides,
    ) -> Result<ThreadState, RpcError> {
        let meta = &loaded.meta;
        let mut merged = ThreadOverrides {
            cwd: overrides
                .cwd
                .clone()
                .or_else(|| loaded.last_context.as_ref().map(|c| c.cwd.clone()))
                .or_else(|| Some(meta.cwd.clone())),
            approval_policy: overrides.approval_policy.clone().or_else(|| {
                loaded
                    .last_context
                    .as_ref()
                    .map(|c| json!(c.approval_policy))
            }),
            sandbox: overrides.sandbox,
            model: overrides
                .model
                .clone()
                .or_else(|| loaded.last_context.as_ref().map(|c| c.model.clone()))
                .or_else(|| Some(meta.model.clone())),
            model_provider: overrides.model_provider.clone(),
            base_instructions: overrides
                .base_instructions
                .clone()
                .or_else(|| meta.base_instructions.clone()),
            developer_instructions: overrides
                .developer_instructions
                .clone()
                .or_else(|| meta.developer_instructions.clone()),
            config: overrides.config.clone(),
        };
        if merged.model_provider.is_none()
            && self
                .config
                .model_providers
                .contains_key(&meta.model_provider)
        {
            merged.model_provider = Some(meta.model_provider.clone());
        }
        let mut settings = build_settings(&self.config, None, &merged)?;
        if overrides.sandbox.is_none()
            && let Some(policy) = loaded.last_context.as_ref().and_then(|c| {
                serde_json::from_value::<SandboxPolicy>(c.sandbox_policy.clone()).ok()
            })
        {
            settings.sandbox = policy;
        }
        if let Some(context) = &loaded.last_context {
            settings.effort = context.effort.clone().or(settings.effort);
            if let Some(summary) = &context.summary {
                settings.summary = summary.clone();
            }
        }
        let names = rollout::read_names(&self.config.codex_home);
        let mut state = new_state(meta.id.clone(), settings, meta.originator.clone(), false);
        state.created_at = meta.created_at;
        // Loading is not a change: keep the time of the last write.
        state.updated_at = modified_at(path, meta.created_at);
        state.preview = loaded.preview;
        state.name = names.get(&meta.id).cloned();
        state.forked_from_id = meta.forked_from_id.clone();
        state.history = loaded.history;
        state.told_context = loaded.last_context;
        state.turn_contexts = loaded.turn_contexts;
        state.turns = loaded.turns;
        state.total_usage = loaded.total_usage;
        Ok(state)
    }

    fn thread_resume(
        &mut self,
        id: &RequestId,
        params: ThreadResumeParams,
    ) -> Result<(), RpcError> {
        if let Some(shared) = self.threads.get(&params.thread_id) {
            let state = lock(shared);
            self.rpc
                .respond(id, session_response(&state, !params.exclude_turns));
            return Ok(());
        }
        let (path, archived) = rollout::find(&self.config.codex_home, &params.thread_id)
            .ok_or_else(|| {
                RpcError::invalid_request(format!(
                    "no rollout found for thread id {}",
                    params.thread_id
                ))
            })?;
        if archived {
            return Err(RpcError::invalid_request(format!(
                "thread {} is archived; unarchive it first",
                params.thread_id
            )));
        }
        let loaded = rollout::load(&path).map_err(|e| RpcError::internal(format!("{e:#}")))?;
        let mut state = self.load_state(loaded, &path, &params.overrides)?;
        state.rollout =
            Some(Rollout::open(&path).map_err(|e| RpcError::internal(format!("{e:#}")))?);
        let shared = self.register(state);
        let state = lock(&shared);
        self.rpc
            .respond(id, session_response(&state, !params.exclude_turns));
        Ok(())
    }

    fn thread_fork(&mut self, id: &RequestId, params: ThreadForkParams) -> Result<(), RpcError> {
        // The source as it stands: loaded (possibly running a turn) or only on disk.
        let source = match self.threads.get(&params.thread_id) {
            Some(shared) => {
                let state = lock(shared);
                ForkSource {
                    history: state.history.clone(),
                    turns: state.turns.clone(),
                    turn_contexts: state.turn_contexts.clone(),
                    settings: state.settings.clone(),
                    preview: state.preview.clone(),
                    usage: state.total_usage,
                }
            }
            None => {
                let (path, _) = rollout::find(&self.config.codex_home, &params.thread_id)
                    .ok_or_else(|| not_found(&params.thread_id))?;
                let loaded =
                    rollout::load(&path).map_err(|e| RpcError::internal(format!("{e:#}")))?;
                let state = self.load_state(loaded, &path, &ThreadOverrides::default())?;
                ForkSource {
                    history: state.history,
                    turns: state.turns,
                    turn_contexts: state.turn_contexts,
                    settings: state.settings,
                    preview: state.preview,
                    usage: state.total_usage,
                }
            }
        };
        let ForkSource {
            mut history,
            mut turns,
            mut turn_contexts,
            settings: source_settings,
            preview,
            usage,
        } = source;
        if turns
            .last()
            .is_some_and(|t| t.status == TurnStatus::InProgress)
            && params.last_turn_id.is_none()
        {
            // The running turn is not part of the fork.
            turns.pop();
        }
        if let Some(last) = &params.last_turn_id {
            let position = turns
                .iter()
                .position(|t| &t.id == last)
                .ok_or_else(|| RpcError::invalid_request(format!("turn not found: {last}")))?;
            if turns[position].status == TurnStatus::InProgress {
                return Err(RpcError::invalid_request(format!(
                    "turn {last} is still in progress"
                )));
            }
            turns.truncate(position + 1);
        }
        let is_kept = |turn_id: &str| turns.iter().any(|t| t.id == turn_id);
        history.retain(|(turn, _)| turn.is_empty() || is_kept(turn));
        turn_contexts.retain(|(turn, _)| is_kept(turn));
        let settings = build_settings(&self.config, Some(&source_settings), &params.overrides)?;
        let mut state = new_state(
            crate::ids::uuid_v7(),
            settings,
            self.originator(),
            params.ephemeral,
        );
        state.forked_from_id = Some(params.thread_id.clone());
        state.preview = preview;
        state.total_usage = usage;
        // What the model was told by the last kept turn; without it the fork's next turn would
        // repeat the context messages its history already holds.
        state.told_context = turn_contexts.last().map(|(_, context)| context.clone());
        if !params.ephemeral {
            let mut rollout = Rollout::create(&self.config.codex_home, &meta_of(&state))
                .map_err(|e| RpcError::internal(format!("{e:#}")))?;
            write_copy(&mut rollout, &history, &turns, &turn_contexts, usage)
                .map_err(|e| RpcError::internal(format!("{e:#}")))?;
            state.rollout = Some(rollout);
        }
        state.history = history;
        state.turns = turns;
        state.turn_contexts = turn_contexts;
        let shared = self.register(state);
        self.announce_new_thread(id, &shared, !params.exclude_turns);
        Ok(())
    }

    fn thread_list(&mut self, id: &RequestId, params: ThreadListParams) -> Result<(), RpcError> {
        let limit = (params.limit.map_or(DEFAULT_PAGE, |l| l as usize)).clamp(1, MAX_PAGE);
        let by_updated = match params.sort_key.as_deref() {
            None | Some("created_at") => false,
            Some("updated_at") => true,
            Some(other) => {
                return Err(RpcError::invalid_params(format!(
                    "unsupported sortKey `{other}`"
                )));
            }
        };
        let ascending = match params.sort_direction.as_deref() {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(other) => {
                return Err(RpcError::invalid_params(format!(
                    "unsupported sortDirection `{other}`"
                )));
            }
        };
        let archived = params.archived.unwrap_or(false);
        let mut files: Vec<(String, PathBuf)> =
            rollout::list_files(&self.config.codex_home, archived)
                .into_iter()
                .filter_map(|path| {
                    let name = path.file_name()?.to_str()?.to_string();
                    let key = if by_updated {
                        let ms = std::fs::metadata(&path)
                            .and_then(|m| m.modified())
                            .ok()?
                            .duration_since(std::time::UNIX_EPOCH)
                            .ok()?
                            .as_millis();
                        format!("{ms:020}:{name}")
                    } else {
                        name
                    };
                    Some((key, path))
                })
                .collect();
        files.sort();
        if !ascending {
            files.reverse();
        }
        let cwds: Option<Vec<String>> = params.cwd.map(|c| match c {
            CwdFilter::One(c) => vec![c],
            CwdFilter::Many(c) => c,
        });
        let search = params
            .search_term
            .map(|s| s.to_lowercase())
            .filter(|s| !s.is_empty());
        let names = rollout::read_names(&self.config.codex_home);
        let mut data = Vec::new();
        let mut next_cursor = None;
        let start = files.iter().position(|(key, _)| match &params.cursor {
            None => true,
            Some(cursor) => {
                if ascending {
                    key > cursor
                } else {
                    key < cursor
                }
            }
        });
        for (index, (_, path)) in files.iter().enumerate().skip(start.unwrap_or(files.len())) {
            if data.len() == limit {
                next_cursor = Some(files[index - 1].0.clone());
                break;
            }
            let Ok((meta, preview)) = rollout::read_summary(path) else {
                continue;
            };
            if let Some(cwds) = &cwds
                && !cwds.contains(&meta.cwd)
            {
                continue;
            }
            if let Some(providers) = &params.model_providers
                && !providers.is_empty()
                && !providers.contains(&meta.model_provider)
            {
                continue;
            }
            let name = names.get(&meta.id).cloned();
            if let Some(term) = &search {
                let title =
                    format!("{} {}", name.as_deref().unwrap_or_default(), preview).to_lowercase();
                if !title.contains(term) {
                    continue;
                }
            }
            let thread = match self.threads.get(&meta.id) {
                Some(shared) => lock(shared).to_protocol(false),
                None => unloaded_thread(path, &meta, preview, name, Vec::new()),
            };
            data.push(thread);
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ThreadListResponse {
            data: Vec<Thread>,
            next_cursor: Option<String>,
        }
        self.rpc
            .respond(id, ThreadListResponse { data, next_cursor });
        Ok(())
    }

    fn thread_read(&mut self, id: &RequestId, params: ThreadReadParams) -> Result<(), RpcError> {
        let thread = match self.threads.get(&params.thread_id) {
            Some(shared) => lock(shared).to_protocol(params.include_turns),
            None => {
                let (path, _) = rollout::find(&self.config.codex_home, &params.thread_id)
                    .ok_or_else(|| not_found(&params.thread_id))?;
                let loaded =
                    rollout::load(&path).map_err(|e| RpcError::internal(format!("{e:#}")))?;
                let name = rollout::read_names(&self.config.codex_home).remove(&loaded.meta.id);
                let turns = if params.include_turns {
                    loaded.turns
                } else {
                    Vec::new()
                };
                unloaded_thread(&path, &loaded.meta, loaded.preview, name, turns)
            }
        };
        self.rpc.respond(id, json!({ "thread": thread }));
        Ok(())
    }

    fn thread_loaded_list(&mut self, id: &RequestId, params: PageParams) -> Result<(), RpcError> {
        let mut ids: Vec<&String> = self.threads.keys().collect();
        ids.sort();
        let limit = params.limit.map_or(usize::MAX, |l| (l as usize).max(1));
        let after: Vec<&String> = ids
            .into_iter()
            .filter(|i| params.cursor.as_ref().is_none_or(|c| *i > c))
            .collect();
        let page: Vec<String> = after.iter().take(limit).map(|s| s.to_string()).collect();
        let next_cursor = (after.len() > page.len())
            .then(|| page.last().cloned())
            .flatten();
        self.rpc
            .respond(id, json!({"data": page, "nextCursor": next_cursor}));
        Ok(())
    }

    fn thread_archive(&mut self, id: &RequestId, params: ThreadIdParams) -> Result<(), RpcError> {
        let thread_id = params.thread_id;
        if let Some(shared) = self.threads.get(&thread_id) {
            let state = lock(shared);
            if state.active.is_some() {
                return Err(RpcError::invalid_request(format!(
                    "cannot archive thread {thread_id} while a turn is running"
                )));
            }
            if state.ephemeral {
                return Err(RpcError::invalid_request(format!(
                    "thread {thread_id} is ephemeral and has nothing to archive"
                )));
            }
        }
        let (path, archived) = rollout::find(&self.config.codex_home, &thread_id)
            .ok_or_else(|| not_found(&thread_id))?;
        if archived {
            return Err(RpcError::invalid_request(format!(
                "thread {thread_id} is already archived"
            )));
        }
        rollout::archive(&self.config.codex_home, &path)
            .map_err(|e| RpcError::internal(format!("{e:#}")))?;
        // Unloaded only once the move worked: a failed archive leaves the thread as it was.
        // (Its open append handle follows the renamed file and is closed here.)
        self.threads.remove(&thread_id);
        self.rpc.respond(id, json!({}));
        self.rpc.notify(
            "thread/archived",
            notify::ThreadIdOnly {
                thread_id: &thread_id,
            },
        );
        Ok(())
    }

    fn thread_unarchive(&mut self, id: &RequestId, params: ThreadIdParams) -> Result<(), RpcError> {
        let thread_id = params.thread_id;
        let (path, archived) = rollout::find(&self.config.codex_home, &thread_id)
            .ok_or_else(|| not_found(&thread_id))?;
        if !archived {
            return Err(RpcError::invalid_request(format!(
                "thread {thread_id} is not archived"
            )));
        }
        let path = rollout::unarchive(&self.config.codex_home, &path)
            .map_err(|e| RpcError::internal(format!("{e:#}")))?;
        let (meta, preview) =
            rollout::read_summary(&path).map_err(|e| RpcError::internal(format!("{e:#}")))?;
        let name = rollout::read_names(&self.config.codex_home).remove(&meta.id);
        let thread = unloaded_thread(&path, &meta, preview, name, Vec::new());
        self.rpc.respond(id, json!({ "thread": thread }));
        self.rpc.notify(
            "thread/unarchived",
            notify::ThreadIdOnly {
                thread_id: &thread_id,
            },
        );
        Ok(())
    }

    fn thread_set_name(
        &mut self,
        id: &RequestId,
        params: ThreadSetNameParams,
    ) -> Result<(), RpcError> {
        let name = params.name.trim().to_string();
        if name.is_empty() {
            return Err(RpcError::invalid_params("name must not be empty"));
        }
        let persisted = match self.threads.get(&params.thread_id) {
            Some(shared) => {
                let mut state = lock(shared);
                state.name = Some(name.clone());
                !state.ephemeral
            }
            None => {
                rollout::find(&self.config.codex_home, &params.thread_id)
                    .ok_or_else(|| not_found(&params.thread_id))?;
                true
            }
        };
        if persisted {
            rollout::write_name(&self.config.codex_home, &params.thread_id, Some(&name))
                .map_err(|e| RpcError::internal(format!("{e:#}")))?;
        }
        self.rpc.respond(id, json!({}));
        self.rpc.notify(
            "thread/name/updated",
            notify::NameUpdated {
                thread_id: &params.thread_id,
                thread_name: Some(&name),
            },
        );
        Ok(())
    }

    fn turn_start(&mut self, id: &RequestId, params: TurnStartParams) -> Result<(), RpcError> {
        let shared = self
            .threads
            .get(&params.thread_id)
            .cloned()
            .ok_or_else(|| not_found(&params.thread_id))?;
        crate::prompt::validate_input(&params.input).map_err(RpcError::invalid_params)?;
        let turn_id = crate::ids::uuid_v7();
        let (control_tx, control_rx) = crossbeam_channel::bounded(64);
        let handle = Arc::new(TurnHandle::new(turn_id.clone(), control_tx));
        let config = {
            let mut state = lock(&shared);
            if let Some(active) = &state.active {
                return Err(RpcError::invalid_request(format!(
                    "thread {} already has an active turn {}; use turn/steer to add input",
                    params.thread_id, active.turn_id
                )));
            }
            let settings = &mut state.settings;
            if let Some(cwd) = &params.cwd {
                settings.cwd = resolve_cwd(Some(cwd), &settings.cwd)?;
            }
            if let Some(value) = &params.approval_policy {
                settings.approval = parse_approval(value)?;
            }
            if let Some(policy) = &params.sandbox_policy {
                settings.sandbox = policy.0.clone();
            }
            if let Some(model) = &params.model {
                settings.model = model.clone();
            }
            if let Some(effort) = &params.effort {
                settings.effort = Some(effort.clone());
            }
            if let Some(summary) = &params.summary {
                settings.summary = summary.clone();
            }
            state.active = Some(handle.clone());
            state.settings.config.clone()
        };
        let client = self.model_client(&config);
        let turn = Turn {
            id: turn_id.clone(),
            items: Vec::new(),
            status: TurnStatus::InProgress,
            error: None,
        };
        self.rpc.respond(id, json!({ "turn": turn }));
        let start = crate::turn::TurnStart {
            rpc: self.rpc.clone(),
            thread: shared.clone(),
            handle: handle.clone(),
            control: control_rx,
            client,
            input: params.input,
            tool_env: self.tool_env.clone(),
        };
        if let Err(e) = crate::turn::spawn(start) {
            crate::log::error(&format!("cannot start turn {turn_id}: {e}"));
            lock(&shared).active = None;
            handle.set_finished();
        }
        Ok(())
    }

    fn active_turn(&self, thread_id: &str) -> Result<Option<Arc<TurnHandle>>, RpcError> {
        let shared = self
            .threads
            .get(thread_id)
            .ok_or_else(|| not_found(thread_id))?;
        Ok(lock(shared).active.clone())
    }

    fn turn_interrupt(
        &mut self,
        id: &RequestId,
        params: TurnInterruptParams,
    ) -> Result<(), RpcError> {
        match self.active_turn(&params.thread_id)? {
            Some(handle) if handle.turn_id == params.turn_id => {
                handle.interrupt();
                self.rpc.respond(id, json!({}));
                Ok(())
            }
            _ => Err(RpcError::invalid_request("no active turn to interrupt")),
        }
    }

    fn turn_steer(&mut self, id: &RequestId, params: TurnSteerParams) -> Result<(), RpcError> {
        crate::prompt::validate_input(&params.input).map_err(RpcError::invalid_params)?;
        let handle = self
            .active_turn(&params.thread_id)?
            .ok_or_else(|| RpcError::invalid_request("no active turn to steer"))?;
        if let Some(expected) = &params.expected_turn_id
            && *expected != handle.turn_id
        {
            return Err(RpcError::invalid_request(format!(
                "expected active turn id {expected} but found {}",
                handle.turn_id
            )));
        }
        if !handle.steer(params.input) {
            return Err(RpcError::invalid_request("no active turn to steer"));
        }
        self.rpc.respond(id, json!({ "turnId": handle.turn_id }));
        Ok(())
    }

    /// Interrupts every running turn (stdin closed) and waits a little for them to wind down
    /// (their commands are killed at once; the wait lets `turn/completed` go out).
    pub fn interrupt_all_turns(&self, grace: std::time::Duration) {
        let handles: Vec<Arc<TurnHandle>> = self
            .threads
            .values()
            .filter_map(|t| lock(t).active.clone())
            .collect();
        for handle in &handles {
            handle.interrupt();
        }
        let deadline = std::time::Instant::now() + grace;
        while handles.iter().any(|h| !h.is_finished()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Writes a forked history into a new rollout, turn by turn: boundaries, each turn's context,
/// its history and completed items, then the token usage, so the copy reads back (and resumes)
/// like the source.
fn write_copy(
    rollout: &mut Rollout,
    history: &[(String, Value)],
    turns: &[Turn],
    turn_contexts: &[(String, TurnContext)],
    usage: TokenUsage,
) -> anyhow::Result<()> {
    let mut by_turn: HashMap<&str, Vec<&Value>> = HashMap::new();
    for (turn, item) in history {
        by_turn.entry(turn.as_str()).or_default().push(item);
    }
    for item in by_turn.remove("").unwrap_or_default() {
        rollout.append(&Entry::ResponseItem(item.clone()))?;
    }
    for turn in turns {
        rollout.append(&Entry::TurnStarted {
            turn_id: turn.id.clone(),
        })?;
        for (_, context) in turn_contexts.iter().filter(|(t, _)| *t == turn.id) {
            rollout.append(&Entry::TurnContext(context.clone()))?;
        }
        for item in by_turn.remove(turn.id.as_str()).unwrap_or_default() {
            rollout.append(&Entry::ResponseItem(item.clone()))?;
        }
        for item in &turn.items {
            rollout.append(&Entry::ThreadItem {
                turn_id: turn.id.clone(),
                item: item.clone(),
            })?;
        }
        rollout.append(&Entry::TurnCompleted {
            turn_id: turn.id.clone(),
            status: turn.status,
            error: turn.error.clone(),
        })?;
    }
    if usage != TokenUsage::default() {
        rollout.append(&Entry::TokenUsage { total: usage })?;
    }
    Ok(())
}
