//! Editing a thread's history (context.md §4–5): `thread/compact/start`, `thread/revert`,
//! `thread/delete` and `thread/unsubscribe`. Paging through it is `pages.rs`'s; the compaction
//! itself runs in a turn (`context/compact`).
//!
//! Concurrency, as the reference does it: a compaction, revert or delete asked for while a turn
//! runs interrupts that turn and happens once it has ended (a compaction is answered `{}` at
//! once, the others when done). Steering a compaction turn is refused (`turns.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::pages::Cursor;
use crate::protocol::notify;
use crate::protocol::{ThreadStatus, TokenUsage, Turn};
use crate::rollout::{self, Entry};
use crate::rpc::{RequestId, RpcError};
use crate::server::Server;
use crate::thread::{SharedThread, TurnHandle, lock};

/// Longest a request waits for the interrupted turn to end before it runs anyway (and then
/// finds the turn still running: it fails rather than wait again).
const TURN_END_WAIT: Duration = Duration::from_secs(15);
/// How often the waiter looks.
const TURN_END_POLL: Duration = Duration::from_millis(10);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadOnlyParams {
    thread_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RevertParams {
    thread_id: String,
    before_turn_id: String,
}

/// -32600 for an id that cannot name a thread.
pub(super) fn check_id(thread_id: &str) -> Result<(), RpcError> {
    if crate::ids::is_uuid(thread_id) {
        Ok(())
    } else {
        Err(RpcError::invalid_request(format!(
            "invalid thread id: {thread_id}"
        )))
    }
}

fn not_loaded(thread_id: &str) -> RpcError {
    RpcError::invalid_request(format!("thread not found: {thread_id}"))
}

impl Server {
    /// The loaded thread `thread_id` names; -32600 for a malformed id or one not loaded.
    fn loaded_thread(&self, thread_id: &str) -> Result<SharedThread, RpcError> {
        check_id(thread_id)?;
        self.threads
            .get(thread_id)
            .cloned()
            .ok_or_else(|| not_loaded(thread_id))
    }

    /// Runs `job` on the main loop once `handle`'s turn has ended (interrupting it now), or
    /// after [`TURN_END_WAIT`] whatever happened.
    fn after_turn(&mut self, handle: Arc<TurnHandle>, job: crate::server::Job) {
        handle.interrupt();
        let jobs = self.jobs.clone();
        let slot = Arc::new(std::sync::Mutex::new(Some(job)));
        let waiter_slot = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("turn-end-wait".into())
            .spawn(move || {
                let deadline = Instant::now() + TURN_END_WAIT;
                while !handle.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(TURN_END_POLL);
                }
                if let Some(job) = lock(&waiter_slot).take() {
                    let _ = jobs.send(job);
                }
            });
        if let Err(e) = spawned {
            crate::log::warn(&format!("cannot wait for the turn to end: {e}"));
            if let Some(job) = lock(&slot).take() {
                job(self);
            }
        }
    }

    /// Whether request `id` must wait for the running turn of `shared` first: then that turn is
    /// interrupted and the request runs again once it ended (`Ok(true)`). A request already
    /// run again that still finds a turn fails.
    fn wait_for_turn(
        &mut self,
        id: &RequestId,
        method: &str,
        params: Value,
        shared: &SharedThread,
    ) -> Result<bool, RpcError> {
        let Some(handle) = lock(shared).active.clone() else {
            self.waited.remove(id);
            return Ok(false);
        };
        if self.waited.remove(id) {
            return Err(RpcError::invalid_request(format!(
                "turn {} is still running; interrupt it first",
                handle.turn_id
            )));
        }
        self.waited.insert(id.clone());
        let (id, method) = (id.clone(), method.to_string());
        self.after_turn(
            handle,
            Box::new(move |server: &mut Server| server.redispatch(&id, &method, Some(params))),
        );
        Ok(true)
    }

    /// `thread/compact/start`: answered `{}` at once; a compaction turn follows (after the
    /// running turn, which is interrupted).
    pub(super) fn thread_compact_start(
        &mut self,
        id: &RequestId,
        params: ThreadOnlyParams,
    ) -> Result<(), RpcError> {
        let shared = self.loaded_thread(&params.thread_id)?;
        self.rpc.respond(id, json!({}));
        let active = lock(&shared).active.clone();
        match active {
            Some(handle) => {
                let thread_id = params.thread_id;
                self.after_turn(
                    handle,
                    Box::new(move |server: &mut Server| server.start_compaction(&thread_id)),
                );
            }
            None => self.start_compaction(&params.thread_id),
        }
        Ok(())
    }

    /// Starts the compaction turn of a loaded thread (nothing when it is gone or busy again:
    /// a turn the client started in between wins).
    fn start_compaction(&mut self, thread_id: &str) {
        let Some(shared) = self.threads.get(thread_id).cloned() else {
            return;
        };
        let turn_id = crate::ids::uuid_v7();
        let (control_tx, control_rx) = crossbeam_channel::bounded(2);
        let handle = Arc::new(TurnHandle::compaction(turn_id.clone(), control_tx));
        let config = {
            let mut state = lock(&shared);
            if let Some(active) = &state.active {
                crate::log::warn(&format!(
                    "thread {thread_id}: compaction not started, turn {} is running",
                    active.turn_id
                ));
                return;
            }
            state.active = Some(handle.clone());
            state.settings.config.clone()
        };
        let mut start = self.new_turn(&shared, &handle, control_rx, &config);
        start.compact = true;
        super::turns::spawn_turn(start, "compaction turn");
    }

    /// `thread/revert`: drops `beforeTurnId` and every later turn from memory, from what later
    /// requests send and from the rollout; answers with the thread and cursors to page back
    /// through what is kept, then emits `thread/reverted`.
    pub(super) fn thread_revert(
        &mut self,
        id: &RequestId,
        params: RevertParams,
    ) -> Result<(), RpcError> {
        let shared = self.loaded_thread(&params.thread_id)?;
        let position = lock(&shared)
            .turns
            .iter()
            .position(|t| t.id == params.before_turn_id)
            .ok_or_else(|| {
                RpcError::invalid_request(format!("turn not found: {}", params.before_turn_id))
            })?;
        let again = json!({"threadId": params.thread_id, "beforeTurnId": params.before_turn_id});
        if self.wait_for_turn(id, "thread/revert", again, &shared)? {
            return Ok(());
        }
        let (thread, turns_cursor, items_cursor) = {
            let mut state = lock(&shared);
            revert_state(&mut state, position, &params.before_turn_id);
            let last_turn = state.turns.last();
            let turns_cursor = last_turn.map(|t| Cursor::anchor(&state.id, &t.id, None));
            let items_cursor = last_turn.and_then(|t| {
                t.items
                    .last()
                    .map(|i| Cursor::anchor(&state.id, &t.id, Some(i.id())))
            });
            (state.to_protocol(false), turns_cursor, items_cursor)
        };
        self.rpc.respond(
            id,
            json!({
                "thread": thread,
                "turnsBackwardsCursor": turns_cursor.map(|c| c.encode()),
                "itemsBackwardsCursor": items_cursor.map(|c| c.encode()),
            }),
        );
        self.rpc.notify(
            "thread/reverted",
            notify::ThreadIdOnly {
                thread_id: &params.thread_id,
            },
        );
        Ok(())
    }

    /// `thread/delete`: unloads the thread (interrupting its turn first), removes its rollout
    /// and its name, answers `{}` and emits `thread/deleted`.
    pub(super) fn thread_delete(
        &mut self,
        id: &RequestId,
        params: ThreadOnlyParams,
    ) -> Result<(), RpcError> {
        let thread_id = params.thread_id;
        check_id(&thread_id)?;
        let loaded = self.threads.get(&thread_id).cloned();
        if let Some(shared) = &loaded
            && self.wait_for_turn(id, "thread/delete", json!({"threadId": thread_id}), shared)?
        {
            return Ok(());
        }
        let home = self.config.codex_home.clone();
        let found = rollout::find(&home, &thread_id);
        if loaded.is_none() && found.is_none() {
            return Err(RpcError::invalid_request(format!(
                "no rollout found for thread id {thread_id}"
            )));
        }
        if let Some((path, _)) = &found {
            std::fs::remove_file(path).map_err(|e| {
                RpcError::internal(format!("cannot delete {}: {e}", path.display()))
            })?;
        }
        if rollout::read_names(&home).contains_key(&thread_id)
            && let Err(e) = rollout::write_name(&home, &thread_id, None)
        {
            crate::log::warn(&format!("thread {thread_id}: {e:#}"));
        }
        if let Some(shared) = self.threads.remove(&thread_id) {
            let mut state = lock(&shared);
            state.exec_sessions.terminate_all();
            state.rollout = None;
            state.status = ThreadStatus::NotLoaded;
            self.rpc.notify(
                "thread/status/changed",
                notify::StatusChanged {
                    thread_id: &thread_id,
                    status: &ThreadStatus::NotLoaded,
                },
            );
        }
        self.rpc.unmute_thread(&thread_id);
        self.rpc.respond(id, json!({}));
        self.rpc.notify(
            "thread/deleted",
            notify::ThreadIdOnly {
                thread_id: &thread_id,
            },
        );
        Ok(())
    }

    /// `thread/unsubscribe`: this connection stops getting the thread's turn and item
    /// notifications until it resumes the thread; the thread stays loaded.
    pub(super) fn thread_unsubscribe(
        &mut self,
        id: &RequestId,
        params: ThreadOnlyParams,
    ) -> Result<(), RpcError> {
        check_id(&params.thread_id)?;
        let status = if !self.threads.contains_key(&params.thread_id) {
            "notLoaded"
        } else if self.rpc.mute_thread(&params.thread_id) {
            "unsubscribed"
        } else {
            "notSubscribed"
        };
        self.rpc.respond(id, json!({ "status": status }));
        Ok(())
    }
}

/// Cuts the thread's state back to before turn `position` (`before_turn_id`): turns, their
/// contexts, the model history as it stood when that turn began (read back from the rollout,
/// which also holds what a later compaction replaced), what the model was told; records it.
fn revert_state(state: &mut crate::thread::ThreadState, position: usize, before_turn_id: &str) {
    let dropped: Vec<Turn> = state.turns.drain(position..).collect();
    let is_dropped = |turn: &str| dropped.iter().any(|t| t.id == turn);
    state.turn_contexts.retain(|(turn, _)| !is_dropped(turn));
    let from_file = state
        .rollout
        .as_ref()
        .map(|r| rollout::load_before_turn(r.path(), before_turn_id));
    match from_file {
        Some(Ok(loaded)) => {
            state.history = loaded.history;
            state.told_context = loaded.last_context;
        }
        other => {
            if let Some(Err(e)) = other {
                crate::log::warn(&format!(
                    "thread {}: reverting in memory only: {e:#}",
                    state.id
                ));
            }
            state.history.retain(|(turn, _)| !is_dropped(turn));
            state.told_context = state.turn_contexts.last().map(|(_, c)| c.clone());
        }
    }
    state.context =
        crate::context::ContextState::from_history(state.history.iter().map(|(_, item)| item));
    if state.turns.is_empty() {
        state.preview.clear();
    }
    let replacement: Vec<Value> = state.history.iter().map(|(_, i)| i.clone()).collect();
    state.last_usage = TokenUsage {
        total_tokens: crate::context::compact::estimate(&state.settings, &replacement),
        ..TokenUsage::default()
    };
    state.record(&Entry::Reverted {
        num_turns: dropped.len(),
        replacement_history: replacement,
    });
    let (total, last) = (state.total_usage, state.last_usage);
    state.record(&Entry::TokenUsage { total, last });
}
