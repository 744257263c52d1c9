//! The thread/* and turn/* requests (protocol.md §5–6): creating, resuming, forking, listing,
//! reading, archiving and naming threads; starting, interrupting and steering turns. State
//! lives in `thread.rs`, files in `rollout/`, the running turn in `turn/`.
//!
//! This file dispatches the methods and holds what several of them share (building a thread's
//! state, its rollout's session meta, a thread known only from its rollout, loading a rollout,
//! registering a thread). `session` starts and resumes threads, `fork` forks them, `manage`
//! reads them, lists the loaded ones, archives and names them; `turns`, `review`, `history`,
//! `pages` and `list` as their own files say.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::protocol::notify;
use crate::protocol::{Thread, ThreadStatus, Turn};
use crate::rollout::{self, Loaded, SessionMeta};
use crate::rpc::{RequestId, RpcError};
use crate::server::{Server, decode};

mod fork;
mod history;
mod list;
mod manage;
mod pages;
mod param_audit;
mod review;
mod session;
mod settings;
mod turns;

use crate::thread::{SessionApprovals, Settings, SharedThread, ThreadState, lock};
pub(crate) use settings::resolve_cwd;

/// Default and largest page of `thread/list` and `thread/loaded/list`.
const DEFAULT_PAGE: usize = 25;
const MAX_PAGE: usize = 200;

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
        source: rollout::new_thread_source().to_string(),
        cli_version: rollout::CLI_VERSION.to_string(),
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
        cli_version: state.cli_version.clone(),
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

/// When a rollout was last written (unix seconds), never before its thread's `created_at` (also
/// the answer when the time cannot be read). The file's mtime comes from the kernel's coarse
/// clock, which can lag the clock `created_at` was read from by a tick: a rollout written in the
/// same second as its thread started could otherwise look updated before it was created.
fn modified_at(path: &Path, created_at: i64) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(created_at, |d| {
            i64::try_from(d.as_secs())
                .unwrap_or(i64::MAX)
                .max(created_at)
        })
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

    /// The catalog as this server knows it now (requests that need it were parked until it
    /// settled).
    fn catalog_snapshot(&self) -> crate::models::Snapshot {
        self.catalog_access(&self.config).snapshot()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::modified_at;

    #[test]
    fn updated_at_is_the_mtime_but_never_before_created_at() {
        let dir = crate::test_dir::Scratch::new("threads-modified-at");
        let path = dir.0.join("rollout.jsonl");
        let file = std::fs::File::create(&path).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(1_000))
            .unwrap();
        // (mtime 1000) × created_at → updated_at
        let cases = [(999, 1_000), (1_000, 1_000), (1_001, 1_001), (5_000, 5_000)];
        for (created_at, expected) in cases {
            assert_eq!(modified_at(&path, created_at), expected, "{created_at}");
        }
        assert_eq!(modified_at(&dir.0.join("missing"), 42), 42);
    }
}
