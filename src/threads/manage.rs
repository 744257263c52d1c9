//! The requests about threads as they are, loaded or on disk: `thread/read`,
//! `thread/loaded/list`, `thread/archive`, `thread/unarchive` and `thread/name/set`.

use serde::Deserialize;
use serde_json::json;

use crate::protocol::notify;
use crate::rollout;
use crate::rpc::{RequestId, RpcError};
use crate::server::Server;

use crate::thread::lock;

use super::{not_found, unloaded_thread};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadIdParams {
    thread_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadReadParams {
    thread_id: String,
    #[serde(default)]
    include_turns: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadSetNameParams {
    thread_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageParams {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

impl Server {
    /// `thread/read`: a loaded thread as it is, else one read from its rollout.
    pub(super) fn thread_read(
        &mut self,
        id: &RequestId,
        params: ThreadReadParams,
    ) -> Result<(), RpcError> {
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

    /// `thread/loaded/list`: loaded thread ids in order, paged by id.
    pub(super) fn thread_loaded_list(
        &mut self,
        id: &RequestId,
        params: PageParams,
    ) -> Result<(), RpcError> {
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

    /// `thread/archive`: moves the rollout to the archive and unloads the thread.
    pub(super) fn thread_archive(
        &mut self,
        id: &RequestId,
        params: ThreadIdParams,
    ) -> Result<(), RpcError> {
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

    /// `thread/unarchive`: moves the rollout back and answers with the thread.
    pub(super) fn thread_unarchive(
        &mut self,
        id: &RequestId,
        params: ThreadIdParams,
    ) -> Result<(), RpcError> {
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

    /// `thread/name/set`.
    pub(super) fn thread_set_name(
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
