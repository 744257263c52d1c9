//! `thread/list`: rollouts on disk, newest first (or by update time), with paging and the
//! archived, cwd, provider, source and search-term filters. The defaults are the reference's:
//! without `modelProviders` only the current provider's threads, without `sourceKinds` only
//! interactive sources (`cli`, `vscode`). The files are known through the server's
//! [`crate::rollout::Listing`], so a page costs the same wherever it starts.

use serde::{Deserialize, Serialize};

use super::{DEFAULT_PAGE, MAX_PAGE, unloaded_thread};
use crate::protocol::Thread;
use crate::rollout::{self, PageRequest, SessionMeta, SortKey};
use crate::rpc::{RequestId, RpcError};
use crate::server::Server;
use crate::thread::lock;

/// The sources listed when `sourceKinds` is absent or empty.
const INTERACTIVE_SOURCES: [&str; 2] = ["cli", "vscode"];
/// The source kinds of the schema (`ThreadSourceKind`).
const SOURCE_KINDS: [&str; 10] = [
    "cli",
    "vscode",
    "exec",
    "appServer",
    "subAgent",
    "subAgentReview",
    "subAgentCompact",
    "subAgentThreadSpawn",
    "subAgentOther",
    "unknown",
];

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
    source_kinds: Option<Vec<String>>,
    #[serde(default)]
    sort_key: Option<String>,
    #[serde(default)]
    sort_direction: Option<String>,
}

/// The `ThreadSourceKind` of a recorded source.
fn kind_of(source: &str) -> &'static str {
    match source {
        "subagent" | "subAgent" | "sub_agent" => "subAgent",
        other => rollout::source_kind(other),
    }
}

impl Server {
    pub(super) fn thread_list(
        &mut self,
        id: &RequestId,
        params: ThreadListParams,
    ) -> Result<(), RpcError> {
        let limit = (params.limit.map_or(DEFAULT_PAGE, |l| l as usize)).clamp(1, MAX_PAGE);
        let sort = match params.sort_key.as_deref() {
            None | Some("created_at") => SortKey::CreatedAt,
            Some("updated_at") => SortKey::UpdatedAt,
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
        let sources: Vec<String> = match params.source_kinds {
            Some(kinds) if !kinds.is_empty() => {
                if let Some(bad) = kinds.iter().find(|k| !SOURCE_KINDS.contains(&k.as_str())) {
                    return Err(RpcError::invalid_params(format!(
                        "unknown sourceKinds value `{bad}`"
                    )));
                }
                kinds
            }
            _ => INTERACTIVE_SOURCES.map(str::to_string).to_vec(),
        };
        let providers = match params.model_providers {
            None => Some(vec![self.config.model_provider.clone()]),
            Some(list) if list.is_empty() => None,
            Some(list) => Some(list),
        };
        let cwds: Option<Vec<String>> = params.cwd.map(|c| match c {
            CwdFilter::One(c) => vec![c],
            CwdFilter::Many(c) => c,
        });
        let search = params
            .search_term
            .map(|s| s.to_lowercase())
            .filter(|s| !s.is_empty());
        let names = rollout::read_names(&self.config.codex_home);
        let filter = |meta: &SessionMeta, preview: &str| {
            cwds.as_ref().is_none_or(|c| c.contains(&meta.cwd))
                && providers
                    .as_ref()
                    .is_none_or(|p| p.contains(&meta.model_provider))
                && sources.iter().any(|s| s == kind_of(&meta.source))
                && search.as_ref().is_none_or(|term| {
                    let name = names.get(&meta.id).map(String::as_str).unwrap_or_default();
                    format!("{name} {preview}").to_lowercase().contains(term)
                })
        };
        let page = self.listing.page(
            &self.config.codex_home,
            &PageRequest {
                archived: params.archived.unwrap_or(false),
                sort,
                ascending,
                cursor: params.cursor.as_deref(),
                limit,
                filter: &filter,
            },
        );
        let data: Vec<Thread> = page
            .entries
            .into_iter()
            .map(|listed| match self.threads.get(&listed.meta.id) {
                Some(shared) => lock(shared).to_protocol(false),
                None => {
                    let name = names.get(&listed.meta.id).cloned();
                    unloaded_thread(&listed.path, &listed.meta, listed.preview, name, Vec::new())
                }
            })
            .collect();
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ThreadListResponse {
            data: Vec<Thread>,
            next_cursor: Option<String>,
        }
        self.rpc.respond(
            id,
            ThreadListResponse {
                data,
                next_cursor: page.next_cursor,
            },
        );
        Ok(())
    }
}
