//! How requests reach the catalog without the main loop ever waiting on the network:
//! `thread/start`, `thread/resume`, `thread/fork` and `model/list` that find the catalog
//! unsettled start a fetch and are parked; the fetch thread puts them back in the main loop's
//! queue once it settled (fetched, failed or malformed: they then proceed with the cache or
//! the bundled facts). A parked request is parked once at most. Turn threads may wait, so they
//! fetch and wait themselves ([`CatalogAccess::snapshot_waiting`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Catalog, Snapshot, Source, fetch};
use crate::auth::{AuthManager, AuthMode};
use crate::client::{AuthProvider, ClientIdentity};
use crate::config::Config;
use crate::rpc::{Incoming, RequestId};
use crate::server::Server;

/// Methods that need the catalog before they can answer.
const NEEDS_CATALOG: &[&str] = &["thread/start", "thread/resume", "thread/fork", "model/list"];

/// The warning sent (once per thread and slug) when a thread's model is not in the catalog.
pub fn unknown_model_warning(slug: &str) -> String {
    format!(
        "The model catalog has no entry for `{slug}`; using fallback settings (a 272000-token context window, reasoning on), which may not suit this model."
    )
}

/// Everything one request needs to read or refresh the catalog for a configuration.
#[derive(Clone)]
pub struct CatalogAccess {
    catalog: Arc<Catalog>,
    source: Option<Source>,
    auth: Arc<AuthManager>,
    identity: ClientIdentity,
    chatgpt_base_url: String,
}

impl CatalogAccess {
    /// Where `config` and the current login get their catalog: the ChatGPT backend for a
    /// ChatGPT login with the built-in provider, nowhere (bundled facts) otherwise.
    pub fn new(
        catalog: Arc<Catalog>,
        config: &Config,
        auth: Arc<AuthManager>,
        identity: ClientIdentity,
    ) -> Self {
        let builtin = config.model_provider == crate::config::OPENAI_PROVIDER_ID
            && config.provider().base_url.is_none();
        let chatgpt = matches!(
            auth.view().mode,
            Some(AuthMode::Chatgpt | AuthMode::ChatgptAuthTokens)
        );
        let source = (builtin && chatgpt)
            .then(|| Source::chatgpt(&config.chatgpt_base_url, auth.account_id()));
        Self {
            catalog,
            source,
            auth,
            identity,
            chatgpt_base_url: config.chatgpt_base_url.clone(),
        }
    }

    /// Whether no fetch is needed now.
    pub fn is_settled(&self) -> bool {
        self.catalog.is_settled(self.source.as_ref())
    }

    /// The best catalog known without the network.
    pub fn snapshot(&self) -> Snapshot {
        self.catalog.snapshot(self.source.as_ref())
    }

    /// Starts a fetch (or joins the running one); `then` runs once it settled.
    pub fn refresh(&self, then: Box<dyn FnOnce() + Send>) {
        let Some(source) = self.source.clone() else {
            then();
            return;
        };
        let (auth, identity, configured) = (
            self.auth.clone(),
            self.identity.clone(),
            self.chatgpt_base_url.clone(),
        );
        let fetcher: super::Fetcher = Box::new(move |etag| {
            let route = auth.chatgpt_route(&configured, &identity);
            let url = format!("{}/codex/models", route.base_url.trim_end_matches('/'));
            fetch::fetch(
                auth.as_ref(),
                &url,
                &identity,
                etag,
                route.routing_override.as_deref(),
            )
        });
        self.catalog.refresh(source, fetcher, then);
    }

    /// The catalog after fetching it if needed, waiting at most `timeout` (turn threads only:
    /// this blocks).
    pub fn snapshot_waiting(&self, timeout: Duration) -> Snapshot {
        if !self.is_settled() {
            self.refresh(Box::new(|| {}));
            self.catalog.wait_settled(self.source.as_ref(), timeout);
        }
        self.snapshot()
    }
}

impl Server {
    /// The catalog access for `config` and the current login.
    pub fn catalog_access(&self, config: &Config) -> CatalogAccess {
        let (originator, user_agent) = self.client_identity();
        CatalogAccess::new(
            self.catalog.clone(),
            config,
            self.auth.clone(),
            ClientIdentity {
                originator,
                user_agent,
            },
        )
    }

    /// Parks a request that needs an unsettled catalog: starts the fetch, which puts the
    /// request back in the queue once settled. True when parked (answer nothing now).
    pub(crate) fn park_for_catalog(
        &mut self,
        id: &RequestId,
        method: &str,
        params: &Option<Value>,
    ) -> bool {
        if !NEEDS_CATALOG.contains(&method) || self.parked.remove(id) {
            return false;
        }
        let access = self.catalog_access(&self.config.clone());
        if access.is_settled() {
            return false;
        }
        self.parked.insert(id.clone());
        let jobs = self.jobs.clone();
        let message = Incoming::Request {
            id: id.clone(),
            method: method.to_string(),
            params: params.clone(),
        };
        access.refresh(Box::new(move || {
            // The loop is gone only at shutdown, when nobody waits for an answer.
            let _ = jobs.send(Box::new(move |server: &mut Server| server.handle(message)));
        }));
        true
    }
}
