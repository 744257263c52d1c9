//! The model catalog (models.md §2): which models exist and how each must be driven. The
//! backend's catalog is fetched lazily (`GET <chatgpt base>/codex/models`, ChatGPT logins only:
//! the reference never fetches one with an API key, and a custom provider has none), cached in
//! `CODEX_HOME/models_cache.json` with its ETag, reused for 5 minutes, then revalidated; a
//! failed or malformed fetch falls back to the cache, then to the bundled catalog of facts.
//!
//! The rest of the code asks one question, "what does the catalog say for this thread's
//! model": [`ModelInfo`], resolved into the thread's settings (`Settings::model_info`). Files:
//! `info.rs` (an entry and its meaning), `fetch.rs` (one fetch), `cache.rs` (the file),
//! `list.rs` (`model/list`), `serve.rs` (lazy fetching for requests without blocking the main
//! loop), `bundled.json` (facts only: no prompt text).

mod cache;
mod fetch;
mod info;
mod list;
mod serve;

pub use info::{
    BYTES_PER_TOKEN, DEFAULT_EFFECTIVE_WINDOW_PERCENT, ModelInfo, ShellType, TruncationMode,
};
pub use list::list;
pub use serve::{CatalogAccess, unknown_model_warning};

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::rpc::Rpc;
use crate::thread::lock;
use fetch::FetchOutcome;

/// How long a fetched catalog (or a failed attempt) is trusted before it is checked again.
pub const CATALOG_TTL: Duration = Duration::from_secs(5 * 60);
/// The facts catalog compiled in (slugs, windows, flags, levels; no prompt text).
pub const BUNDLED_CATALOG: &str = include_str!("bundled.json");

/// Where a catalog comes from and whose it is. `None` (no fetch) for API keys, custom
/// providers and logged-out users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `<chatgpt_base_url>/codex/models` as configured (workspace routing may send the request
    /// elsewhere; the identity stays the same).
    pub url: String,
    /// The ChatGPT account the catalog belongs to.
    pub account: Option<String>,
    /// [`cache::identity`] of the above.
    pub identity: String,
}

impl Source {
    /// The source for a ChatGPT login (managed or client-owned) against `chatgpt_base_url`.
    pub fn chatgpt(chatgpt_base_url: &str, account: Option<String>) -> Self {
        let url = format!("{}/codex/models", chatgpt_base_url.trim_end_matches('/'));
        let identity = cache::identity(&url, "chatgpt", account.as_deref());
        Self {
            url,
            account,
            identity,
        }
    }
}

/// Where a [`Snapshot`]'s entries came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Fetched from the backend (or revalidated) in this process.
    Fetched,
    /// Read from `models_cache.json`.
    Cache,
    /// The compiled-in facts.
    Bundled,
}

/// One consistent view of the catalog.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The entries.
    pub models: Arc<Vec<ModelInfo>>,
    /// Where they came from.
    pub origin: Origin,
}

impl Snapshot {
    /// The compiled-in facts (parsed once per process).
    pub fn bundled() -> Self {
        static BUNDLED: std::sync::LazyLock<Arc<Vec<ModelInfo>>> =
            std::sync::LazyLock::new(|| match fetch::parse_catalog(BUNDLED_CATALOG.as_bytes()) {
                Ok((_, models)) => Arc::new(models),
                Err(e) => {
                    crate::log::error(&format!("the bundled model catalog is broken: {e}"));
                    Arc::new(Vec::new())
                }
            });
        Self {
            models: BUNDLED.clone(),
            origin: Origin::Bundled,
        }
    }

    /// The entry for `slug`, or fallback metadata (with `is_fallback` set) when the catalog
    /// does not know it.
    pub fn resolve(&self, slug: &str) -> Arc<ModelInfo> {
        match self.models.iter().find(|m| m.slug == slug) {
            Some(model) => Arc::new(model.clone()),
            None => Arc::new(ModelInfo::fallback(slug)),
        }
    }

    /// The default model: the top-priority listed one (lowest `priority`, first on ties).
    pub fn default_model(&self) -> Option<&ModelInfo> {
        self.models
            .iter()
            .filter(|m| m.is_listed())
            .min_by_key(|m| m.priority())
            .or_else(|| self.models.first())
    }

    /// The default model's slug (the bundled default if this snapshot is empty).
    pub fn default_slug(&self) -> String {
        match self.default_model() {
            Some(model) => model.slug.clone(),
            None => Snapshot::bundled()
                .models
                .first()
                .map_or_else(|| "gpt-5.5".to_string(), |m| m.slug.clone()),
        }
    }
}

/// The fetch a [`Catalog`] runs: called on the `models-fetch` thread with the cached ETag.
pub type Fetcher = Box<dyn FnOnce(Option<&str>) -> FetchOutcome + Send>;

/// A continuation run once a fetch settles (on the fetch thread).
type Waiter = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    /// The entries last fetched or read from the cache, with the identity they belong to.
    loaded: Option<(String, Snapshot)>,
    /// When a fetch for an identity last settled (success or not).
    settled: Option<(String, Instant)>,
    /// The identity being fetched, and who waits for it.
    in_flight: Option<(String, Vec<Waiter>)>,
}

/// The catalog service, one per server: lazy fetches, the cache, fallbacks. Cheap to share
/// (`Arc`); every method but [`Catalog::wait_settled`] returns at once.
pub struct Catalog {
    codex_home: PathBuf,
    rpc: Option<Rpc>,
    state: Mutex<State>,
    settled: Condvar,
}

impl Catalog {
    /// The catalog of `codex_home`; warnings about malformed catalogs go to `rpc`.
    pub fn new(codex_home: PathBuf, rpc: Option<Rpc>) -> Self {
        Self {
            codex_home,
            rpc,
            state: Mutex::new(State::default()),
            settled: Condvar::new(),
        }
    }

    /// The best catalog known without the network: this process's copy for `source`, else a
    /// cache file of the same identity (any age), else the bundled facts. `None` source:
    /// bundled.
    pub fn snapshot(&self, source: Option<&Source>) -> Snapshot {
        let Some(source) = source else {
            return Snapshot::bundled();
        };
        let mut state = lock(&self.state);
        if let Some((identity, snapshot)) = &state.loaded
            && *identity == source.identity
        {
            return snapshot.clone();
        }
        match self.cached(source) {
            Some((_, snapshot, _)) => {
                state.loaded = Some((source.identity.clone(), snapshot.clone()));
                snapshot
            }
            None => Snapshot::bundled(),
        }
    }

    /// Whether `source` needs no fetch now: none to do, a fetch settled less than
    /// [`CATALOG_TTL`] ago, or a cache file of this identity younger than that.
    pub fn is_settled(&self, source: Option<&Source>) -> bool {
        let Some(source) = source else {
            return true;
        };
        {
            let state = lock(&self.state);
            if let Some((identity, at)) = &state.settled
                && *identity == source.identity
                && at.elapsed() < CATALOG_TTL
            {
                return true;
            }
        }
        self.cached(source)
            .is_some_and(|(age, _, _)| age < CATALOG_TTL)
    }

    /// The cache file's entries for `source`, with their age and ETag, when it holds this
    /// identity's catalog for this client version and reads.
    fn cached(&self, source: &Source) -> Option<(Duration, Snapshot, Option<String>)> {
        let file = cache::load(&self.codex_home)?;
        if file.identity.as_deref() != Some(source.identity.as_str())
            || file.client_version.as_deref() != Some(crate::client::CODEX_VERSION)
        {
            return None;
        }
        let body = serde_json::json!({ "models": file.models });
        let models = match fetch::parse_catalog(body.to_string().as_bytes()) {
            Ok((_, models)) => models,
            Err(e) => {
                crate::log::warn(&format!("ignoring the cached model catalog: {e}"));
                return None;
            }
        };
        let age_ms = (crate::time::unix_millis() as i64 - file.fetched_at_ms()).max(0);
        Some((
            Duration::from_millis(age_ms as u64),
            Snapshot {
                models: Arc::new(models),
                origin: Origin::Cache,
            },
            file.etag,
        ))
    }

    /// Fetches `source`'s catalog on a `models-fetch` thread unless one is running for it;
    /// `then` runs on that thread once the fetch settled (whatever its outcome), or at once on
    /// this thread when the thread cannot be started.
    pub fn refresh(self: &Arc<Self>, source: Source, fetcher: Fetcher, then: Waiter) {
        {
            let mut state = lock(&self.state);
            if let Some((identity, waiters)) = state.in_flight.as_mut()
                && *identity == source.identity
            {
                waiters.push(then);
                return;
            }
            state.in_flight = Some((source.identity.clone(), vec![then]));
        }
        let catalog = self.clone();
        let job = source.clone();
        let spawned = std::thread::Builder::new()
            .name("models-fetch".into())
            .spawn(move || catalog.run_fetch(&job, fetcher));
        if let Err(e) = spawned {
            crate::log::warn(&format!("cannot start the model catalog fetch: {e}"));
            self.settle(&source);
        }
    }

    fn run_fetch(&self, source: &Source, fetcher: Fetcher) {
        let cached = self.cached(source);
        let etag = cached.as_ref().and_then(|(_, _, etag)| etag.clone());
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fetcher(etag.as_deref())))
                .unwrap_or_else(|_| FetchOutcome::Failed("the catalog fetch panicked".to_string()));
        let fallback = |why: &str| -> Option<Snapshot> {
            match &cached {
                Some((_, snapshot, _)) => {
                    crate::log::info(&format!("{why}; using the cached model catalog"));
                    Some(snapshot.clone())
                }
                None => {
                    crate::log::info(&format!("{why}; using the built-in model catalog"));
                    None
                }
            }
        };
        let loaded = match outcome {
            FetchOutcome::Fresh { raw, models, etag } => {
                let file = cache::CacheFile {
                    fetched_at: crate::time::rfc3339_millis(crate::time::unix_millis()),
                    etag,
                    client_version: Some(crate::client::CODEX_VERSION.to_string()),
                    identity: Some(source.identity.clone()),
                    models: raw,
                };
                if let Err(e) = cache::save(&self.codex_home, &file) {
                    crate::log::warn(&format!("{e:#}"));
                }
                Some(Snapshot {
                    models: Arc::new(models),
                    origin: Origin::Fetched,
                })
            }
            FetchOutcome::NotModified => {
                self.renew_cache(source);
                cached.as_ref().map(|(_, snapshot, _)| Snapshot {
                    models: snapshot.models.clone(),
                    origin: Origin::Fetched,
                })
            }
            FetchOutcome::Failed(why) => {
                fallback(&format!("the model catalog could not be fetched: {why}"))
            }
            FetchOutcome::Malformed(why) => {
                let used = fallback(&format!("the model catalog is malformed: {why}"));
                let instead = if used.is_some() {
                    "the cached catalog"
                } else {
                    "the built-in catalog"
                };
                self.warn(&format!(
                    "The model catalog from {} is malformed ({why}); using {instead} instead.",
                    source.url
                ));
                used
            }
        };
        {
            let mut state = lock(&self.state);
            state.loaded = loaded.map(|snapshot| (source.identity.clone(), snapshot));
        }
        self.settle(source);
    }

    /// Marks `source` settled now and runs its waiters.
    fn settle(&self, source: &Source) {
        let waiters = {
            let mut state = lock(&self.state);
            state.settled = Some((source.identity.clone(), Instant::now()));
            match state.in_flight.take() {
                Some((identity, waiters)) if identity == source.identity => waiters,
                other => {
                    state.in_flight = other;
                    Vec::new()
                }
            }
        };
        self.settled.notify_all();
        for waiter in waiters {
            waiter();
        }
    }

    /// Blocks up to `timeout` until `source` is settled (for turn threads, which may wait).
    pub fn wait_settled(&self, source: Option<&Source>, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_settled(source) {
                return true;
            }
            let state = lock(&self.state);
            if state.in_flight.is_none() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            drop(
                self.settled
                    .wait_timeout(state, left.min(Duration::from_millis(200)))
                    .unwrap_or_else(|e| e.into_inner()),
            );
        }
    }

    fn renew_cache(&self, source: &Source) {
        let Some(mut file) = cache::load(&self.codex_home) else {
            return;
        };
        if file.identity.as_deref() != Some(source.identity.as_str()) {
            return;
        }
        file.fetched_at = crate::time::rfc3339_millis(crate::time::unix_millis());
        if let Err(e) = cache::save(&self.codex_home, &file) {
            crate::log::warn(&format!("{e:#}"));
        }
    }

    fn warn(&self, message: &str) {
        crate::log::warn(message);
        if let Some(rpc) = &self.rpc {
            rpc.notify("warning", serde_json::json!({ "message": message }));
        }
    }
}

/// Raw JSON of an entry for `model/list` pass-through fields.
pub(crate) fn extra_field<'a>(model: &'a ModelInfo, name: &str) -> Option<&'a Value> {
    model.extra.get(name).filter(|v| !v.is_null())
}
