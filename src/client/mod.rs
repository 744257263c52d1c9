//! The blocking client of the OpenAI Responses API (model-api.md §2, §4, §5; auth.md §4–5):
//! one model round trip = one `POST …/responses` streamed as server-sent events, run on its own
//! `model-stream` thread and delivered as [`StreamEvent`]s on a bounded channel.
//!
//! Owns: endpoint and header selection, bearer tokens (OpenAI credentials via
//! [`AuthProvider`], or a provider's `env_key`), silent request-level retries with backoff and
//! `Retry-After`, the 401 recovery loop, SSE parsing, mapping events, and aborting.
//!
//! Does not own: building the request body (the turn does), the stream-level retries and the
//! idle timeout (the turn re-sends on `is_stream_disconnect` and aborts a silent stream; the
//! messages for both are made here, [`ClientError::idle_timeout`] and
//! [`ClientError::stream_disconnected`]), nor how credentials are refreshed (the auth module
//! implements [`AuthProvider`]).
//!
//! Files: `round_trip.rs` (the thread: retries, 401 loop, body reading), `request.rs`
//! (endpoint, bearer, headers), `sse.rs` (framing), `events.rs` (event meaning), `error.rs`
//! (every failure and its message), `retry.rs` (delays), `net.rs` (an abortable HTTP agent),
//! `tls.rs` (the trusted roots), `nonblocking.rs` (a connection that never blocks, for MCP's
//! HTTP engine).

mod error;
mod events;
mod get;
pub(crate) mod net;
pub(crate) mod nonblocking;
pub mod rate_limits;
mod request;
mod retry;
mod round_trip;
pub(crate) mod sse;
#[cfg(test)]
mod tests;
pub mod tls;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use crate::config::{Config, ModelProviderInfo};
use crate::protocol::TokenUsage;
use crate::secret::Secret;

pub use error::ClientError;
pub use get::{ClientIdentity, get};

/// The Codex protocol version we implement, reported wherever a client or backend reads a
/// Codex version: the `version` header, `client_version` of the catalog, `serverInfo.version`
/// and the user agent (models.md §3). Our own version stays visible as `serverInfo.name` and
/// the user agent's last product token.
pub const CODEX_VERSION: &str = "0.169.0";

/// Capacity of a round trip's event channel: enough to ride out scheduling hiccups, small
/// enough that a turn that stops reading holds the reader back (memory stays bounded).
pub const EVENT_CHANNEL_CAPACITY: usize = 256;
/// Default of `request_max_retries`: silent retries of one request.
pub const DEFAULT_REQUEST_MAX_RETRIES: u64 = 4;
/// Default of `stream_max_retries`: announced re-sends after a dropped stream.
pub const DEFAULT_STREAM_MAX_RETRIES: u64 = 5;
/// Default of `stream_idle_timeout_ms`.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_millis(300_000);
/// Upper bound on either retry setting, whatever the config says.
const MAX_RETRIES_CAP: u64 = 100;

/// What the client needs from authentication; the auth module implements it (and tests fake
/// it). Called from `model-stream` threads, so implementations must be thread-safe and may
/// block (a refresh takes up to its own timeout).
pub trait AuthProvider: Send + Sync {
    /// Current OpenAI/ChatGPT credentials; `Ok(None)` when not logged in. Called before every
    /// attempt, so it may refresh proactively.
    fn credentials(&self) -> Result<Option<Credentials>, ClientError>;
    /// A request made with `failed` got HTTP 401. Recover (reload auth.json, refresh, ask the
    /// client app). `Ok(true)`: fresh credentials are available, the request is re-sent once
    /// with [`AuthProvider::credentials`]; `Ok(false)`: nothing to recover, the round trip
    /// fails with the 401; `Err`: fails with that error as is.
    fn recover_unauthorized(&self, failed: &Credentials) -> Result<bool, ClientError>;
    /// Where ChatGPT model and catalog requests go: `configured` (`chatgpt_base_url`) unless
    /// workspace routing names another origin. May block (the first call per account asks the
    /// backend); the default does no routing.
    fn chatgpt_route(&self, configured: &str, _identity: &ClientIdentity) -> ChatGptRoute {
        ChatGptRoute {
            base_url: configured.to_string(),
            routing_override: None,
        }
    }
}

/// Where a ChatGPT login's requests go (workspace routing, models.md §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatGptRoute {
    /// The ChatGPT backend base (`…/backend-api`).
    pub base_url: String,
    /// `x-openai-account-routing-override` for a constrained workspace (`us`, `us_cr`).
    pub routing_override: Option<String>,
}

/// Which kind of OpenAI credential a token is; decides the endpoint of the built-in provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// An OpenAI API key (`https://api.openai.com/v1/responses`).
    ApiKey,
    /// A ChatGPT access token, managed or external (`…/backend-api/codex/responses`).
    ChatGpt,
}

/// OpenAI/ChatGPT credentials for one request.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// API key or ChatGPT token.
    pub kind: CredentialKind,
    /// The bearer token itself.
    pub token: Secret,
    /// ChatGPT workspace/account id, sent as `chatgpt-account-id` (ChatGPT only).
    pub account_id: Option<String>,
}

/// One event of a model round trip, in stream order. `Completed` and `Failed` are terminal:
/// nothing follows them, and the channel disconnects right after.
#[derive(Debug)]
pub enum StreamEvent {
    /// A silent request-level retry is about to wait `delay` (the turn extends its idle
    /// deadline by it). `attempt` counts retries from 1.
    Retrying {
        /// Which retry this is, from 1.
        attempt: u64,
        /// How long the client waits before re-sending.
        delay: Duration,
    },
    /// `response.created`.
    Created {
        /// `response.id`, when the server sent one.
        response_id: Option<String>,
    },
    /// `response.output_item.added`: its `item`.
    ItemAdded(Value),
    /// `response.output_text.delta`.
    TextDelta {
        /// The message item the text belongs to.
        item_id: String,
        /// The new text.
        delta: String,
    },
    /// `response.reasoning_summary_text.delta`.
    ReasoningSummaryDelta {
        /// The reasoning item the summary belongs to.
        item_id: String,
        /// Which summary part (0 when absent).
        summary_index: i64,
        /// The new text.
        delta: String,
    },
    /// `response.output_item.done`: its `item`.
    ItemDone(Value),
    /// Usage windows the backend reported (the response's `x-codex-*` headers, before any
    /// other event, or a `codex.rate_limits` event).
    RateLimits(rate_limits::RateLimitSnapshot),
    /// `response.completed`: the round trip succeeded.
    Completed {
        /// `response.id` (empty if the server sent none).
        response_id: String,
        /// Token counts, when the server reported them.
        usage: Option<TokenUsage>,
    },
    /// Terminal failure of this round trip (nothing follows it).
    Failed(ClientError),
}

/// One model round trip's request: the body (built by `prompt.rs`) and how it must be sent.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// The JSON body, except the history: its `input` holds only what precedes the history
    /// (the Responses Lite preamble).
    pub body: Value,
    /// The history items of `input`, already serialized and joined by commas (a long history
    /// is megabytes: it is written once from the thread's own items, never copied as a tree).
    pub history: Vec<u8>,
    /// Responses Lite: sent with `x-openai-internal-codex-responses-lite: true`.
    pub lite: bool,
}

impl ModelRequest {
    /// The body as sent: `body` with [`Self::history`] appended to its `input` array (added
    /// when missing), keys in `body`'s order.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let Value::Object(fields) = &self.body else {
            return serde_json::to_vec(&self.body);
        };
        let mut out = Vec::with_capacity(self.history.len() + 4096);
        out.push(b'{');
        let mut has_input = false;
        for (key, value) in fields {
            if out.len() > 1 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key)?;
            out.push(b':');
            match value {
                Value::Array(preamble) if key == "input" => {
                    has_input = true;
                    self.write_input(&mut out, preamble)?;
                }
                _ => serde_json::to_writer(&mut out, value)?,
            }
        }
        if !has_input {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(b"\"input\":");
            self.write_input(&mut out, &[])?;
        }
        out.push(b'}');
        Ok(out)
    }

    fn write_input(&self, out: &mut Vec<u8>, preamble: &[Value]) -> serde_json::Result<()> {
        out.push(b'[');
        for (i, item) in preamble.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, item)?;
        }
        if !preamble.is_empty() && !self.history.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(&self.history);
        out.push(b']');
        Ok(())
    }
}

/// What a round trip needs from the configuration, shared by the clones of a client.
#[derive(Debug, Clone)]
struct Settings {
    provider: ModelProviderInfo,
    openai_base_url: String,
    chatgpt_base_url: String,
    originator: String,
    user_agent: String,
}

/// The latest usage windows any model response reported, shared by a server's clients (for
/// `account/rateLimits/read` when the backend cannot be asked).
#[derive(Debug, Default)]
pub struct RateLimitStore {
    latest: Mutex<Option<rate_limits::RateLimitSnapshot>>,
}

impl RateLimitStore {
    /// Keeps `snapshot` as the latest.
    pub fn record(&self, snapshot: &rate_limits::RateLimitSnapshot) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(snapshot.clone());
    }

    /// The latest snapshot, if any response reported one.
    pub fn latest(&self) -> Option<rate_limits::RateLimitSnapshot> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Starts model round trips for one provider configuration. Cheap to clone and to build per
/// turn; `Send + Sync`.
#[derive(Clone)]
pub struct ModelClient {
    settings: Arc<Settings>,
    auth: Arc<dyn AuthProvider>,
    /// Where reported usage windows are kept.
    rate_limits: Arc<RateLimitStore>,
    /// First backoff delay (200 ms; tests shorten it).
    retry_base_delay: Duration,
    /// Reads a provider's `env_key` variable (the process environment; tests substitute it).
    env_lookup: fn(&str) -> Option<String>,
}

impl ModelClient {
    /// A client for `config`'s provider (`model_provider`). `originator` and `user_agent` are
    /// sent as headers on every request.
    pub fn new(
        config: &Config,
        auth: Arc<dyn AuthProvider>,
        originator: String,
        user_agent: String,
    ) -> Self {
        Self::from_settings(
            Settings {
                provider: config.provider().clone(),
                openai_base_url: config.openai_base_url.clone(),
                chatgpt_base_url: config.chatgpt_base_url.clone(),
                originator,
                user_agent,
            },
            auth,
        )
    }

    fn from_settings(settings: Settings, auth: Arc<dyn AuthProvider>) -> Self {
        Self {
            settings: Arc::new(settings),
            auth,
            rate_limits: Arc::default(),
            retry_base_delay: retry::BASE_DELAY,
            env_lookup: |name| std::env::var(name).ok(),
        }
    }

    /// Starts one model round trip on its own `model-stream` thread and returns at once:
    /// `POST <endpoint>` with `request` (built by `prompt.rs`) for thread `thread_id`,
    /// request-level retries, the 401 loop, then SSE parsing. Everything that happens arrives on
    /// [`ResponseStream::events`].
    pub fn start(&self, request: &ModelRequest, thread_id: &str) -> ResponseStream {
        let (tx, rx) = crossbeam_channel::bounded(EVENT_CHANNEL_CAPACITY);
        let abort = Arc::new(AbortSignal::new());
        let body = match request.to_json() {
            Ok(body) => body,
            Err(e) => {
                let _ = tx.try_send(StreamEvent::Failed(ClientError::new(
                    format!("cannot serialize the model request: {e}"),
                    crate::protocol::CodexErrorInfo::Other,
                    None,
                )));
                return ResponseStream { events: rx, abort };
            }
        };
        let job = round_trip::RoundTrip {
            settings: self.settings.clone(),
            auth: self.auth.clone(),
            body,
            lite: request.lite,
            thread_id: thread_id.to_string(),
            request_max_retries: self.request_max_retries(),
            retry_base_delay: self.retry_base_delay,
            env_lookup: self.env_lookup,
        };
        let thread_abort = abort.clone();
        let thread_tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("model-stream".into())
            .spawn(move || {
                let run = std::panic::AssertUnwindSafe(|| job.run(&thread_tx, &thread_abort));
                if std::panic::catch_unwind(run).is_err() && !thread_abort.is_set() {
                    // A bug, not a network failure: end the round trip visibly.
                    let _ = thread_tx.try_send(StreamEvent::Failed(ClientError::new(
                        "model stream thread panicked",
                        crate::protocol::CodexErrorInfo::Other,
                        None,
                    )));
                }
            });
        if let Err(err) = spawned {
            let _ = tx.try_send(StreamEvent::Failed(ClientError::new(
                format!("cannot start the model-stream thread: {err}"),
                crate::protocol::CodexErrorInfo::Other,
                None,
            )));
        }
        ResponseStream { events: rx, abort }
    }

    /// Keeps reported usage windows in `store` (shared with the server) rather than in a
    /// store of its own.
    pub fn with_rate_limit_store(mut self, store: Arc<RateLimitStore>) -> Self {
        self.rate_limits = store;
        self
    }

    /// Records usage windows a response reported (the turn calls it once per response).
    pub fn record_rate_limits(&self, snapshot: &rate_limits::RateLimitSnapshot) {
        self.rate_limits.record(snapshot);
    }

    /// Announced stream-level retries: the provider's `stream_max_retries`, default 5 (at
    /// most 100).
    pub fn stream_max_retries(&self) -> u64 {
        self.settings
            .provider
            .stream_max_retries
            .unwrap_or(DEFAULT_STREAM_MAX_RETRIES)
            .min(MAX_RETRIES_CAP)
    }

    /// Longest silence of an open stream: the provider's `stream_idle_timeout_ms`, default
    /// 300 000 ms.
    pub fn stream_idle_timeout(&self) -> Duration {
        self.settings
            .provider
            .stream_idle_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_STREAM_IDLE_TIMEOUT)
    }

    /// Silent request-level retries: the provider's `request_max_retries`, default 4 (at most
    /// 100).
    pub fn request_max_retries(&self) -> u64 {
        self.settings
            .provider
            .request_max_retries
            .unwrap_or(DEFAULT_REQUEST_MAX_RETRIES)
            .min(MAX_RETRIES_CAP)
    }
}

/// One running round trip. Read [`ResponseStream::events`] until `Completed` or `Failed`
/// (or until the channel disconnects); [`ResponseStream::abort`] (also done on drop) stops it.
pub struct ResponseStream {
    events: Receiver<StreamEvent>,
    abort: Arc<AbortSignal>,
}

impl ResponseStream {
    /// The round trip's events, bounded ([`EVENT_CHANNEL_CAPACITY`]): a reader that falls
    /// behind holds the stream thread back rather than growing memory. Disconnects when the
    /// stream thread has finished; unless aborted, the last event before that is `Completed`
    /// or `Failed`.
    pub fn events(&self) -> &Receiver<StreamEvent> {
        &self.events
    }

    /// Stops the round trip at once, whatever it is doing: closes the HTTP connection
    /// (`Agent::shutdown`), ends a connect or name lookup, and wakes a backoff sleep or a
    /// blocked send. Nothing is sent after it (an event already in the channel may remain).
    /// Idempotent; also done on drop. An [`AuthProvider`] call in progress (a token refresh)
    /// cannot be interrupted: the thread exits silently once it returns.
    pub fn abort(&self) {
        self.abort.trigger();
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        self.abort.trigger();
    }
}

/// The abort state shared by a [`ResponseStream`] and its thread.
struct AbortSignal {
    /// Set once, first thing in [`AbortSignal::trigger`]; also read by the connector and
    /// resolver of [`net`].
    aborted: Arc<AtomicBool>,
    /// The current attempt's agent, shut down on abort.
    agent: Mutex<Option<ureq::Agent>>,
    /// Dropped on abort, so `wake` disconnects and every wait on it ends.
    wake_tx: Mutex<Option<Sender<()>>>,
    /// Waited on (backoff sleeps, blocked sends); never receives a value, only disconnects.
    wake: Receiver<()>,
}

impl AbortSignal {
    fn new() -> Self {
        let (wake_tx, wake) = crossbeam_channel::bounded(0);
        Self {
            aborted: Arc::new(AtomicBool::new(false)),
            agent: Mutex::new(None),
            wake_tx: Mutex::new(Some(wake_tx)),
            wake,
        }
    }

    fn is_set(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    fn trigger(&self) {
        if self.aborted.swap(true, Ordering::SeqCst) {
            return;
        }
        drop(
            self.wake_tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let agent = self
            .agent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(agent) = agent {
            agent.shutdown();
        }
    }

    /// Makes `agent` the one an abort shuts down. `false` (and the agent shut down) when the
    /// round trip is already aborted. Checked under the lock `trigger` takes, so an abort
    /// cannot slip between the check and the store.
    fn install(&self, agent: &ureq::Agent) -> bool {
        let mut slot = self.agent.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_set() {
            drop(slot);
            agent.clone().shutdown();
            return false;
        }
        *slot = Some(agent.clone());
        true
    }
}
