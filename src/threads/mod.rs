//! The thread/* and turn/* requests (protocol.md §5–6): creating, resuming, forking, listing,
//! reading, archiving and naming threads; starting, interrupting and steering turns. State
//! lives in `thread.rs`, files in `rollout/`, the running turn in `turn/`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::protocol::notify;
use crate::protocol::{Thread, ThreadStatus, TokenUsage, Turn, TurnStatus};
use crate::rollout::{self, Entry, Loaded, Rollout, SessionMeta, TurnContext};
use crate::rpc::{RequestId, RpcError};
use crate::sandbox::{ProtocolSandboxPolicy, SandboxPolicy};
use crate::server::{Server, decode};

mod history;
mod list;
mod pages;
mod param_audit;
mod review;
mod settings;
mod turns;

use crate::thread::{SessionApprovals, Settings, SharedThread, ThreadState, lock};
pub(crate) use settings::resolve_cwd;
use settings::{ThreadOverrides, build_settings};

/// Default and largest page of `thread/list` and `thread/loaded/list`.
const DEFAULT_PAGE: usize = 25;
const MAX_PAGE: usize = 200;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThreadStartParams {
    #[serde(flatten)]
    overrides: ThreadOverrides,
    #[serde(default)]
    ephemeral: Option<bool>,
    #[serde(default)]
    dynamic_tools: Option<Vec<Value>>,
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
#[serde(rename_all = "camelCase")]
struct PageParams {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
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
        reasoning_effort: state.settings.reasoning_effort(),
    }
}

/// One `warning` (right after the answer) when the thread's model is not in the catalog and
/// runs with fallback metadata.
fn warn_if_unknown_model(rpc: &crate::rpc::Rpc, state: &ThreadState) {
    if state.settings.model_info.is_fallback {
        rpc.notify(
            "warning",
            json!({
                "threadId": state.id,
                "message": crate::models::unknown_model_warning(&state.settings.model),
            }),
        );
    }
}

fn not_found(id: &str) -> RpcError {
    RpcError::invalid_request(format!("thread not found: {id}"))
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
        source: rollout::APP_SERVER_SOURCE.to_string(),
        settings,
        history: Vec::new(),
        told_context: None,
        context: Default::default(),
        turn_contexts: Vec::new(),
        turns: Vec::new(),
        status: ThreadStatus::Idle,
        total_usage: Default::default(),
        last_usage: Default::default(),
        rollout: None,
        approvals: SessionApprovals::default(),
        active: None,
        exec_sessions: Default::default(),
        warned_params: Default::default(),
    }
}

fn meta_of(state: &ThreadState) -> SessionMeta {
    SessionMeta {
        id: state.id.clone(),
        created_at: state.created_at,
        cwd: state.settings.cwd.display().to_string(),
        originator: state.originator.clone(),
        cli_version: env!("CARGO_PKG_VERSION").to_string(),
        source: state.source.clone(),
        model_provider: state.settings.config.model_provider.clone(),
        model: state.settings.model.clone(),
        forked_from_id: state.forked_from_id.clone(),
        base_instructions: state.settings.base_instructions.clone(),
        developer_instructions: state.settings.developer_instructions.clone(),
        dynamic_tools: (!state.settings.dynamic_tools.is_empty())
            .then(|| state.settings.dynamic_tools.to_vec()),
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
        model: Some(meta.model.clone()).filter(|m| !m.is_empty()),
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
        source: rollout::source_kind(&meta.source),
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
        self.unhonoured = param_audit::unhonoured(method, params.as_ref());
        Some(match method {
            "thread/start" => {
                if let Some(gated) = self.gate_on_required_mcp_servers(id, method, &params) {
                    return Some(gated);
                }
                decode(params).and_then(|p| self.thread_start(id, p))
            }
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
            "review/start" => decode(params).and_then(|p| self.review_start(id, p)),
            "thread/compact/start" => decode(params).and_then(|p| self.thread_compact_start(id, p)),
            "thread/revert" => decode(params).and_then(|p| self.thread_revert(id, p)),
            "thread/delete" => decode(params).and_then(|p| self.thread_delete(id, p)),
            "thread/unsubscribe" => decode(params).and_then(|p| self.thread_unsubscribe(id, p)),
            "thread/turns/list" => decode(params).and_then(|p| self.thread_turns_list(id, p)),
            "thread/items/list" => decode(params).and_then(|p| self.thread_items_list(id, p)),
            _ => return None,
        })
    }

    /// Reads a rollout; lines it had to skip are told to the client (`warning`), once.
    fn load_rollout(&self, path: &Path) -> Result<Loaded, RpcError> {
        let loaded = rollout::load(path).map_err(|e| RpcError::internal(format!("{e:#}")))?;
        if let Some(first) = loaded.warnings.first() {
            let more = match loaded.warnings.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            self.rpc.notify(
                "warning",
                notify::Warning {
                    thread_id: Some(&loaded.meta.id),
                    message: &format!("thread {}: {first}{more}", loaded.meta.id),
                },
            );
        }
        Ok(loaded)
    }

    /// Reports the params of the current request that we do not honour, once per thread and
    /// param, as `warning` notifications about `shared`.
    pub(super) fn report_unhonoured(&mut self, shared: &SharedThread) {
        let notes = std::mem::take(&mut self.unhonoured);
        let mut state = lock(shared);
        for (key, message) in notes {
            if state.warned_params.insert(key) {
                crate::log::warn(&format!("thread {}: {message}", state.id));
                self.rpc.notify(
                    "warning",
                    notify::Warning {
                        thread_id: Some(&state.id),
                        message: &message,
                    },
                );
            }
        }
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
        warn_if_unknown_model(&self.rpc, &state);
        self.rpc.notify(
            "thread/started",
            notify::ThreadEvent {
                thread: &state.to_protocol(false),
            },
        );
        // The first thread starts the MCP servers (in the background).
        self.mcp
            .ensure_started(Some(&state.id), &state.settings.cwd);
    }

    /// The catalog as this server knows it now (requests that need it were parked until it
    /// settled).
    fn catalog_snapshot(&self) -> crate::models::Snapshot {
        self.catalog_access(&self.config).snapshot()
    }

    fn thread_start(&mut self, id: &RequestId, params: ThreadStartParams) -> Result<(), RpcError> {
        let snapshot = self.catalog_snapshot();
        let mut settings = build_settings(&self.config, None, &params.overrides, &snapshot)?;
        if let Some(tools) = params.dynamic_tools {
            let notes = crate::tools::dynamic::validate(&tools)
                .map_err(|e| RpcError::invalid_params(format!("dynamicTools: {e}")))?;
            self.unhonoured
                .extend(notes.into_iter().map(|note| (note.clone(), note)));
            settings.dynamic_tools = Arc::new(tools);
        }
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
        self.report_unhonoured(&shared);
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
        let recorded_cwd = loaded
            .last_context
            .as_ref()
            .map(|c| c.cwd.clone())
            .unwrap_or_else(|| meta.cwd.clone());
        // A thread recorded elsewhere (another machine, a deleted checkout) continues in the
        // server's directory rather than not at all.
        let recorded_cwd = if overrides.cwd.is_none() && !Path::new(&recorded_cwd).is_dir() {
            self.rpc.notify(
                "warning",
                notify::Warning {
                    thread_id: Some(&meta.id),
                    message: &format!(
                        "thread {}: its working directory {recorded_cwd} does not exist; \
                         continuing in the server's",
                        meta.id
                    ),
                },
            );
            None
        } else {
            Some(recorded_cwd)
        };
        let mut merged = ThreadOverrides {
            cwd: overrides.cwd.clone().or(recorded_cwd),
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
        let mut settings = build_settings(&self.config, None, &merged, &self.catalog_snapshot())?;
        if let Some(tools) = &meta.dynamic_tools {
            settings.dynamic_tools = Arc::new(tools.clone());
        }
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
                settings.summary = Some(summary.clone());
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
        state.source = meta.source.clone();
        state.context =
            crate::context::ContextState::from_history(loaded.history.iter().map(|(_, item)| item));
        state.history = loaded.history;
        state.told_context = loaded.last_context;
        state.turn_contexts = loaded.turn_contexts;
        state.turns = loaded.turns;
        state.total_usage = loaded.total_usage;
        state.last_usage = loaded.last_usage;
        Ok(state)
    }

    fn thread_resume(
        &mut self,
        id: &RequestId,
        params: ThreadResumeParams,
    ) -> Result<(), RpcError> {
        // Resuming subscribes this connection again (`thread/unsubscribe`).
        self.rpc.unmute_thread(&params.thread_id);
        if let Some(shared) = self.threads.get(&params.thread_id) {
            // Rejoining a loaded thread: its overrides become the thread's defaults, as they
            // would on a fresh load (a running turn keeps the settings it started with).
            let snapshot = self.catalog_snapshot();
            let shared = shared.clone();
            {
                let mut state = lock(&shared);
                let settings = build_settings(
                    &self.config,
                    Some(&state.settings),
                    &params.overrides,
                    &snapshot,
                )?;
                state.settings = settings;
                self.rpc
                    .respond(id, session_response(&state, !params.exclude_turns));
                warn_if_unknown_model(&self.rpc, &state);
            }
            self.report_unhonoured(&shared);
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
        let loaded = self.load_rollout(&path)?;
        let mut state = self.load_state(loaded, &path, &params.overrides)?;
        state.rollout =
            Some(Rollout::open(&path).map_err(|e| RpcError::internal(format!("{e:#}")))?);
        let shared = self.register(state);
        let state = lock(&shared);
        self.rpc
            .respond(id, session_response(&state, !params.exclude_turns));
        warn_if_unknown_model(&self.rpc, &state);
        drop(state);
        self.report_unhonoured(&shared);
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
                let loaded = self.load_rollout(&path)?;
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
        let settings = build_settings(
            &self.config,
            Some(&source_settings),
            &params.overrides,
            &self.catalog_snapshot(),
        )?;
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
        state.context =
            crate::context::ContextState::from_history(history.iter().map(|(_, item)| item));
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
        self.report_unhonoured(&shared);
        Ok(())
    }

    fn thread_read(&mut self, id: &RequestId, params: ThreadReadParams) -> Result<(), RpcError> {
        let thread = match self.threads.get(&params.thread_id) {
            Some(shared) => lock(shared).to_protocol(params.include_turns),
            None => {
                let (path, _) = rollout::find(&self.config.codex_home, &params.thread_id)
                    .ok_or_else(|| not_found(&params.thread_id))?;
                let loaded = self.load_rollout(&path)?;
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
        rollout.append(&Entry::TokenUsage {
            total: usage,
            last: TokenUsage::default(),
        })?;
    }
    Ok(())
}
