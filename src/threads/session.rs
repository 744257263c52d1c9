//! Opening a thread: `thread/start` (a new thread and its rollout) and `thread/resume` (a loaded
//! thread rejoined, or one rebuilt from its rollout), with the answer both share (and
//! `thread/fork` too) and the `thread/started` announcement.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::protocol::Thread;
use crate::protocol::notify;
use crate::rollout::{self, Loaded, Rollout};
use crate::rpc::{RequestId, RpcError};
use crate::sandbox::{ProtocolSandboxPolicy, SandboxPolicy};
use crate::server::Server;

use crate::thread::{SharedThread, ThreadState, lock};

use super::settings::{ThreadOverrides, build_settings};
use super::{meta_of, modified_at, new_state};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadStartParams {
    #[serde(flatten)]
    overrides: ThreadOverrides,
    #[serde(default)]
    ephemeral: Option<bool>,
    #[serde(default)]
    dynamic_tools: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadResumeParams {
    thread_id: String,
    #[serde(flatten)]
    overrides: ThreadOverrides,
    #[serde(default)]
    exclude_turns: bool,
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

impl Server {
    /// Answers a request that created a thread, then emits `thread/started`.
    pub(super) fn announce_new_thread(
        &self,
        id: &RequestId,
        shared: &SharedThread,
        include_turns: bool,
    ) {
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

    /// `thread/start`.
    pub(super) fn thread_start(
        &mut self,
        id: &RequestId,
        params: ThreadStartParams,
    ) -> Result<(), RpcError> {
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
    pub(super) fn load_state(
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
        state.cli_version = meta.cli_version.clone();
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

    /// `thread/resume`.
    pub(super) fn thread_resume(
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
}
