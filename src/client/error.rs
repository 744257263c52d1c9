//! [`ClientError`] and every message the client produces: failed HTTP statuses (with the
//! server's own error text), transport failures, dropped streams, idle timeouts and auth
//! set-up errors, each with its `codexErrorInfo` (model-api.md §5). What is retried, and how
//! often, is decided in `round_trip.rs`; here only what a failure *is*.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::protocol::CodexErrorInfo;

/// The most of a server's error text kept in a message (bytes, cut at a char boundary).
pub(super) const MAX_SERVER_TEXT_BYTES: usize = 2048;

/// Why a model round trip failed. `message` is what the user sees (it includes the server's
/// own error text); `info` is the machine-readable class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// Human-readable; includes the server's own error text when there was one.
    pub message: String,
    /// The class of failure sent as `codexErrorInfo`.
    pub info: CodexErrorInfo,
    /// HTTP status of the failed response, when there was one.
    pub http_status: Option<u16>,
    /// `true` for a disconnect mid-stream (the stream ended before `response.completed`, or
    /// the turn's idle timeout): the turn re-sends the same request up to
    /// `stream_max_retries`, announcing each retry. `false`: final.
    pub is_stream_disconnect: bool,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// A final (not stream-disconnect) error. For failures outside this module, e.g. the auth
    /// module's `auth refresh request timed out after 10s` with info `Other`.
    pub fn new(message: impl Into<String>, info: CodexErrorInfo, http_status: Option<u16>) -> Self {
        Self {
            message: message.into(),
            info,
            http_status,
            is_stream_disconnect: false,
        }
    }

    /// The stream ended (EOF, read error) before `response.completed`, after a 200: the turn
    /// may re-send the request. `detail` says what happened.
    pub fn stream_disconnected(detail: impl fmt::Display) -> Self {
        Self {
            message: format!("stream disconnected before completion: {detail}"),
            info: CodexErrorInfo::ResponseStreamDisconnected {
                http_status_code: Some(200),
            },
            http_status: Some(200),
            is_stream_disconnect: true,
        }
    }

    /// The turn saw no event for `timeout` (its `stream_idle_timeout`) and aborted the stream;
    /// a disconnect like [`ClientError::stream_disconnected`]. No HTTP status: the silence may
    /// have started before the response headers arrived.
    pub fn idle_timeout(timeout: Duration) -> Self {
        Self {
            message: format!(
                "stream disconnected before completion: idle timeout waiting for SSE (no event for {} ms)",
                timeout.as_millis()
            ),
            info: CodexErrorInfo::ResponseStreamDisconnected {
                http_status_code: None,
            },
            http_status: None,
            is_stream_disconnect: true,
        }
    }

    /// The provider needs OpenAI credentials and there are none.
    pub(super) fn not_logged_in() -> Self {
        Self::new(
            "not logged in: run account/login/start first",
            CodexErrorInfo::Unauthorized,
            None,
        )
    }

    /// The provider's `env_key` names a variable that is unset or blank. The text is the
    /// reference implementation's.
    pub(super) fn missing_env_var(name: &str) -> Self {
        Self::new(
            format!("Missing environment variable: `{name}`."),
            CodexErrorInfo::Other,
            None,
        )
    }

    /// The request could not be sent or its answer not read (connection refused or reset,
    /// DNS, TLS, timeout), after the request-level retries. Final: the retries already spent
    /// the budget for an unreachable server, and the turn's stream retries are for streams
    /// that broke after a 200.
    pub(super) fn connection_failed(url: &str, err: impl fmt::Display) -> Self {
        Self::new(
            format!("connection failed: {err} (POST {url})"),
            CodexErrorInfo::HttpConnectionFailed {
                http_status_code: None,
            },
            None,
        )
    }

    /// A request we could not even build (bad header in the provider's `http_headers`, bad
    /// URL): final, not retried.
    pub(super) fn invalid_request(url: &str, err: impl fmt::Display) -> Self {
        Self::new(
            format!("invalid model request to {url}: {err}"),
            CodexErrorInfo::Other,
            None,
        )
    }

    /// An event larger than the parser's limit: the stream is broken beyond repair, so final.
    pub(super) fn oversize_event(err: impl fmt::Display) -> Self {
        Self::new(
            format!("invalid response stream: {err}"),
            CodexErrorInfo::Other,
            Some(200),
        )
    }
}

/// What a non-success HTTP status means for the request loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StatusClass {
    /// 5xx or 429: wait and retry while request retries remain; this error when they are
    /// exhausted.
    Retryable(ClientError),
    /// 401: recover through the auth provider once; this error if that does not help.
    Unauthorized(ClientError),
    /// Anything else: fail with this error now.
    Final(ClientError),
}

/// The server's error text and codes, from a JSON body (`{"error":{"message","type","code"}}`,
/// `{"error":"…"}`, `{"detail":"…"}`, `{"message":"…"}`) or the raw body.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ServerError {
    /// Message to show, at most [`MAX_SERVER_TEXT_BYTES`]; empty when the body was.
    pub text: String,
    /// `error.code`, when the body had one.
    pub code: Option<String>,
    /// `error.type`, when the body had one.
    pub kind: Option<String>,
}

impl ServerError {
    pub(super) fn parse(body: &str) -> Self {
        let json: Option<Value> = serde_json::from_str(body).ok();
        let error = json.as_ref().and_then(|v| v.get("error"));
        let field = |key: &str| {
            error
                .and_then(|e| e.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let text = error
            .and_then(|e| e.get("message").or(Some(e)))
            .and_then(Value::as_str)
            .or_else(|| {
                let top = json.as_ref()?;
                top.get("detail")
                    .or_else(|| top.get("message"))
                    .and_then(Value::as_str)
            })
            .unwrap_or(body)
            .trim();
        Self {
            text: truncate(text, MAX_SERVER_TEXT_BYTES),
            code: field("code"),
            kind: field("type"),
        }
    }

    fn says(&self, what: &str) -> bool {
        self.code.as_deref() == Some(what) || self.kind.as_deref() == Some(what)
    }
}

/// Classifies a non-2xx response by status and body (model-api.md §5).
pub(super) fn classify_status(status: u16, body: &str) -> StatusClass {
    let server = ServerError::parse(body);
    let unexpected = |info: CodexErrorInfo| {
        ClientError::new(
            with_text(
                format!("unexpected status {}", status_line(status)),
                &server.text,
            ),
            info,
            Some(status),
        )
    };
    match status {
        401 => StatusClass::Unauthorized(unexpected(CodexErrorInfo::HttpConnectionFailed {
            http_status_code: Some(401),
        })),
        429 if server.says("usage_limit_reached") || server.says("insufficient_quota") => {
            StatusClass::Final(ClientError::new(
                with_text("usage limit reached".to_string(), &server.text),
                CodexErrorInfo::UsageLimitExceeded,
                Some(429),
            ))
        }
        429 => StatusClass::Retryable(ClientError::new(
            with_text(
                format!("exceeded retry limit, last status: {}", status_line(429)),
                &server.text,
            ),
            CodexErrorInfo::ResponseTooManyFailedAttempts {
                http_status_code: Some(429),
            },
            Some(429),
        )),
        500..=599 => StatusClass::Retryable(unexpected(CodexErrorInfo::InternalServerError)),
        400 if server.says("context_length_exceeded") => {
            StatusClass::Final(unexpected(CodexErrorInfo::ContextWindowExceeded))
        }
        400 => StatusClass::Final(unexpected(CodexErrorInfo::BadRequest)),
        _ => StatusClass::Final(unexpected(CodexErrorInfo::HttpConnectionFailed {
            http_status_code: Some(status),
        })),
    }
}

/// `500 Internal Server Error`; just the number for codes without a standard reason.
fn status_line(status: u16) -> String {
    let reason = ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

fn with_text(mut message: String, text: &str) -> String {
    if !text.is_empty() {
        message.push_str(": ");
        message.push_str(text);
    }
    message
}

/// At most `max` bytes of `text`, cut at a char boundary, with `…` when cut.
pub(super) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses_and_bodies() {
        use CodexErrorInfo as I;
        type Want = (&'static str, &'static str, I);
        let cases: &[(u16, &str, Want)] = &[
            (
                500,
                r#"{"error":{"message":"the server had an error"}}"#,
                (
                    "retry",
                    "unexpected status 500 Internal Server Error: the server had an error",
                    I::InternalServerError,
                ),
            ),
            (
                503,
                "upstream unavailable\n",
                (
                    "retry",
                    "unexpected status 503 Service Unavailable: upstream unavailable",
                    I::InternalServerError,
                ),
            ),
            (
                502,
                "",
                (
                    "retry",
                    "unexpected status 502 Bad Gateway",
                    I::InternalServerError,
                ),
            ),
            (
                429,
                r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
                (
                    "retry",
                    "exceeded retry limit, last status: 429 Too Many Requests: Rate limit reached",
                    I::ResponseTooManyFailedAttempts {
                        http_status_code: Some(429),
                    },
                ),
            ),
            (
                429,
                r#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus"}}"#,
                (
                    "final",
                    "usage limit reached: The usage limit has been reached",
                    I::UsageLimitExceeded,
                ),
            ),
            (
                429,
                r#"{"error":{"code":"insufficient_quota","message":"You exceeded your current quota"}}"#,
                (
                    "final",
                    "usage limit reached: You exceeded your current quota",
                    I::UsageLimitExceeded,
                ),
            ),
            (
                400,
                r#"{"error":{"message":"Invalid value for 'model'","type":"invalid_request_error","code":null}}"#,
                (
                    "final",
                    "unexpected status 400 Bad Request: Invalid value for 'model'",
                    I::BadRequest,
                ),
            ),
            (
                400,
                r#"{"error":{"message":"Your input exceeds the context window of this model.","code":"context_length_exceeded"}}"#,
                (
                    "final",
                    "unexpected status 400 Bad Request: Your input exceeds the context window of this model.",
                    I::ContextWindowExceeded,
                ),
            ),
            (
                401,
                r#"{"detail":"Could not parse your authentication token."}"#,
                (
                    "unauthorized",
                    "unexpected status 401 Unauthorized: Could not parse your authentication token.",
                    I::HttpConnectionFailed {
                        http_status_code: Some(401),
                    },
                ),
            ),
            (
                404,
                r#"{"error":"no such route"}"#,
                (
                    "final",
                    "unexpected status 404 Not Found: no such route",
                    I::HttpConnectionFailed {
                        http_status_code: Some(404),
                    },
                ),
            ),
            (
                403,
                r#"{"message":"forbidden here"}"#,
                (
                    "final",
                    "unexpected status 403 Forbidden: forbidden here",
                    I::HttpConnectionFailed {
                        http_status_code: Some(403),
                    },
                ),
            ),
            (
                599,
                "x",
                ("retry", "unexpected status 599: x", I::InternalServerError),
            ),
        ];
        for (status, body, (class, message, info)) in cases {
            let (got_class, err) = match classify_status(*status, body) {
                StatusClass::Retryable(e) => ("retry", e),
                StatusClass::Unauthorized(e) => ("unauthorized", e),
                StatusClass::Final(e) => ("final", e),
            };
            assert_eq!(got_class, *class, "{status} {body}");
            assert_eq!(err.message, *message, "{status} {body}");
            assert_eq!(err.info, *info, "{status} {body}");
            assert_eq!(err.http_status, Some(*status));
            assert!(!err.is_stream_disconnect);
        }
    }

    #[test]
    fn server_text_is_truncated_at_a_char_boundary() {
        let body = "é".repeat(3000); // 6000 bytes
        let parsed = ServerError::parse(&body);
        assert!(parsed.text.len() <= MAX_SERVER_TEXT_BYTES + "…".len());
        assert!(parsed.text.ends_with('…'));
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("aé", 2), "a…");
    }

    #[test]
    fn disconnect_constructors() {
        let eof = ClientError::stream_disconnected("stream closed before response.completed");
        assert_eq!(
            eof.message,
            "stream disconnected before completion: stream closed before response.completed"
        );
        assert!(eof.is_stream_disconnect);
        assert_eq!(
            eof.info,
            CodexErrorInfo::ResponseStreamDisconnected {
                http_status_code: Some(200)
            }
        );
        let idle = ClientError::idle_timeout(Duration::from_millis(1500));
        assert!(idle.is_stream_disconnect);
        assert!(
            idle.message
                .starts_with("stream disconnected before completion: idle timeout"),
            "{}",
            idle.message
        );
        assert!(idle.message.contains("1500 ms"), "{}", idle.message);
        assert_eq!(
            ClientError::missing_env_var("MOCK_KEY").message,
            "Missing environment variable: `MOCK_KEY`."
        );
        assert_eq!(
            ClientError::not_logged_in().info,
            CodexErrorInfo::Unauthorized
        );
    }
}
