//! The body of a `model-stream` thread: send the request (silent retries with backoff for
//! transport errors, 5xx and 429; one auth recovery for a 401), then read the SSE body and
//! forward its events until `response.completed`, a failure, or an abort.
//!
//! After an abort nothing more is sent: every send and every wait checks the abort signal,
//! and a read or connect the abort interrupted ends the thread silently.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use super::error::{StatusClass, classify_status};
use super::events::{Mapped, map_event};
use super::request::{Bearer, RequestMeta, endpoint, headers, is_chatgpt, resolve_bearer};
use super::retry::{Jitter, backoff, retry_after};
use super::sse::{MAX_EVENT_BYTES, SseParser};
use super::{AbortSignal, AuthProvider, ClientError, Settings, StreamEvent, net};

/// Read size for the response body: a few hundred deltas per read when the server is fast.
const READ_BUFFER_BYTES: usize = 32 * 1024;
/// The most of an error response's body read (the message keeps less).
const MAX_ERROR_BODY_BYTES: u64 = 64 * 1024;

/// Why the thread stops early.
enum Stop {
    /// Aborted (or the receiver is gone): send nothing more.
    Aborted,
    /// Send this as the terminal `Failed` event.
    Failed(ClientError),
}

impl From<ClientError> for Stop {
    fn from(err: ClientError) -> Self {
        Stop::Failed(err)
    }
}

/// Everything one round trip needs, moved onto its thread.
pub(super) struct RoundTrip {
    pub settings: Arc<Settings>,
    pub auth: Arc<dyn AuthProvider>,
    /// The request body, serialized once by [`super::ModelClient::start`] (a long history is
    /// megabytes: no second copy as a JSON tree).
    pub body: Vec<u8>,
    pub lite: bool,
    pub thread_id: String,
    pub request_max_retries: u64,
    pub retry_base_delay: Duration,
    pub env_lookup: fn(&str) -> Option<String>,
}

/// The sending side of a round trip, aware of the abort signal.
struct Outbox<'a> {
    tx: &'a Sender<StreamEvent>,
    abort: &'a AbortSignal,
}

impl Outbox<'_> {
    fn send(&self, event: StreamEvent) -> Result<(), Stop> {
        if self.abort.is_set() {
            return Err(Stop::Aborted);
        }
        match self.tx.try_send(event) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(Stop::Aborted),
            // Back-pressure: wait for room, or for an abort.
            Err(TrySendError::Full(event)) => crossbeam_channel::select! {
                send(self.tx, event) -> sent => sent.map_err(|_| Stop::Aborted),
                recv(self.abort.wake) -> _ => Err(Stop::Aborted),
            },
        }
    }

    /// Announces retry `attempt` and sleeps `delay`, cut short by an abort.
    fn wait_before_retry(&self, attempt: u64, delay: Duration) -> Result<(), Stop> {
        self.send(StreamEvent::Retrying { attempt, delay })?;
        match self.abort.wake.recv_timeout(delay) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) if !self.abort.is_set() => Ok(()),
            _ => Err(Stop::Aborted),
        }
    }
}

impl RoundTrip {
    /// Runs the round trip to its end; the last event sent is `Completed` or `Failed`, unless
    /// aborted.
    pub(super) fn run(self, tx: &Sender<StreamEvent>, abort: &AbortSignal) {
        let out = Outbox { tx, abort };
        match self.send_and_stream(&out) {
            Ok(()) | Err(Stop::Aborted) => {}
            Err(Stop::Failed(err)) => {
                if crate::log::enabled(crate::log::Level::Debug) {
                    crate::log::debug(&format!("model round trip failed: {}", err.message));
                }
                let _ = out.send(StreamEvent::Failed(err));
            }
        }
    }

    fn send_and_stream(&self, out: &Outbox<'_>) -> Result<(), Stop> {
        let body = &self.body;
        let mut jitter = Jitter::seeded();
        let mut retries = 0u64;
        let mut recovered = false;
        loop {
            if out.abort.is_set() {
                return Err(Stop::Aborted);
            }
            let bearer = resolve_bearer(&self.settings, self.auth.as_ref(), self.env_lookup)?;
            let route = if is_chatgpt(&self.settings, &bearer) {
                self.auth
                    .chatgpt_route(&self.settings.chatgpt_base_url, &self.identity())
            } else {
                super::ChatGptRoute {
                    base_url: self.settings.chatgpt_base_url.clone(),
                    routing_override: None,
                }
            };
            if out.abort.is_set() {
                return Err(Stop::Aborted);
            }
            let url = endpoint(&self.settings, &bearer, &route.base_url);
            let agent = net::agent(&url, out.abort.aborted.clone());
            if !out.abort.install(&agent) {
                return Err(Stop::Aborted);
            }
            let response = self.send(
                &agent,
                &url,
                &bearer,
                route.routing_override.as_deref(),
                body,
                retries,
            );
            if out.abort.is_set() {
                return Err(Stop::Aborted);
            }
            let response = match response {
                Ok(response) => response,
                Err(err) if is_transport_error(&err) => {
                    if retries >= self.request_max_retries {
                        return Err(ClientError::connection_failed(&url, &err).into());
                    }
                    retries += 1;
                    let delay = backoff(retries, self.retry_base_delay, &mut jitter);
                    debug(|| format!("model request failed ({err}); retry {retries} in {delay:?}"));
                    out.wait_before_retry(retries, delay)?;
                    continue;
                }
                Err(err) => return Err(ClientError::invalid_request(&url, err).into()),
            };
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                let header = |name: &str| net::header_text(response.headers(), name);
                if let Some(snapshot) = super::rate_limits::from_headers(&header) {
                    out.send(StreamEvent::RateLimits(snapshot))?;
                }
                return stream_events(response, out);
            }
            let header = |name: &str| net::header_text(response.headers(), name);
            let asked_delay = retry_after(
                header("retry-after-ms").as_deref(),
                header("retry-after").as_deref(),
                crate::time::unix_seconds() as i64,
            );
            let text = read_error_body(response);
            if out.abort.is_set() {
                return Err(Stop::Aborted);
            }
            debug(|| format!("model request got http {status}"));
            match classify_status(status, &text) {
                StatusClass::Retryable(final_err) => {
                    if retries >= self.request_max_retries {
                        return Err(final_err.into());
                    }
                    retries += 1;
                    let delay = match (status, asked_delay) {
                        (429, Some(delay)) => delay,
                        _ => backoff(retries, self.retry_base_delay, &mut jitter),
                    };
                    out.wait_before_retry(retries, delay)?;
                }
                StatusClass::Unauthorized(final_err) => {
                    let Bearer::OpenAi(failed) = &bearer else {
                        return Err(final_err.into());
                    };
                    if recovered {
                        return Err(final_err.into());
                    }
                    recovered = true;
                    match self.auth.recover_unauthorized(failed) {
                        Ok(true) => debug(|| "401: credentials recovered, re-sending".into()),
                        Ok(false) => return Err(final_err.into()),
                        Err(err) => return Err(err.into()),
                    }
                }
                StatusClass::Final(err) => return Err(err.into()),
            }
        }
    }

    fn identity(&self) -> super::ClientIdentity {
        super::ClientIdentity {
            originator: self.settings.originator.clone(),
            user_agent: self.settings.user_agent.clone(),
        }
    }

    /// One HTTP attempt; the response whatever its status.
    fn send(
        &self,
        agent: &ureq::Agent,
        url: &str,
        bearer: &Bearer,
        routing_override: Option<&str>,
        body: &[u8],
        retries: u64,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let meta = RequestMeta {
            thread_id: &self.thread_id,
            lite: self.lite,
            routing_override,
        };
        let headers = headers(&self.settings, bearer, &meta);
        debug(|| {
            let auth = if headers.authorization.is_some() {
                "authorization: <redacted>, "
            } else {
                ""
            };
            // Names only: a provider's `http_headers` may carry keys of its own.
            let names: Vec<&str> = headers.plain.iter().map(|(k, _)| k.as_str()).collect();
            format!(
                "POST {url} (retry {retries}) headers: {auth}{} ({} body bytes)",
                names.join(", "),
                body.len()
            )
        });
        let mut request = agent.post(url);
        if let Some(authorization) = &headers.authorization {
            let mut value = ureq::http::HeaderValue::from_str(authorization.expose())
                .map_err(|e| ureq::Error::Http(e.into()))?;
            value.set_sensitive(true);
            request = request.header("authorization", value);
        }
        for (name, value) in &headers.plain {
            request = request.header(name.as_str(), value.as_str());
        }
        request.send(body)
    }
}

/// Reads the SSE body and forwards its events until `response.completed` (Ok), a failure,
/// the end of the stream (a disconnect), or an abort.
fn stream_events(response: ureq::http::Response<ureq::Body>, out: &Outbox<'_>) -> Result<(), Stop> {
    let mut reader = response.into_body().into_reader();
    let mut parser = SseParser::new(MAX_EVENT_BYTES);
    let mut buf = vec![0u8; READ_BUFFER_BYTES];
    loop {
        let read = reader.read(&mut buf);
        // A shutdown may wake the read with an error or with a plain EOF: check first.
        if out.abort.is_set() {
            return Err(Stop::Aborted);
        }
        let n = match read {
            Ok(0) => {
                return Err(ClientError::stream_disconnected(
                    "stream closed before response.completed",
                )
                .into());
            }
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(ClientError::stream_disconnected(err).into()),
        };
        parser.push(&buf[..n]);
        loop {
            let event = match parser.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(err) => return Err(ClientError::oversize_event(err).into()),
            };
            match map_event(event.event, event.data) {
                Mapped::Ignored => {}
                Mapped::Event(event) => out.send(event)?,
                Mapped::Completed(event) => return out.send(event),
                Mapped::Failed(err) => return Err(err.into()),
            }
        }
    }
}

/// The body of an error response, at most [`MAX_ERROR_BODY_BYTES`], lossily decoded; empty
/// when it cannot be read.
fn read_error_body(response: ureq::http::Response<ureq::Body>) -> String {
    let mut bytes = Vec::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(MAX_ERROR_BODY_BYTES)
        .read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Failures of the connection itself, worth retrying: connect refused or reset, timeouts,
/// name lookup, a garbled response. Not: bad URLs or headers, TLS certificate problems.
fn is_transport_error(err: &ureq::Error) -> bool {
    matches!(
        err,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

fn debug(message: impl FnOnce() -> String) {
    if crate::log::enabled(crate::log::Level::Debug) {
        crate::log::debug(&message());
    }
}
