//! `thread/list`: rollouts on disk, newest first (or by update time), with paging and the
//! archived, cwd, provider and search-term filters.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{DEFAULT_PAGE, MAX_PAGE, unloaded_thread};
use crate::protocol::Thread;
use crate::rollout;
use crate::rpc::{RequestId, RpcError};
use crate::server::Server;
use crate::thread::lock;

#[derive(Deserialize)]
#[serde(untagged)]
enum CwdFilter {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadListParams {
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

impl Server {
    pub(super) fn thread_list(
        &mut self,
        id: &RequestId,
        params: ThreadListParams,
    ) -> Result<(), RpcError> {
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
}
