//! Blocking HTTP calls to the ChatGPT OAuth issuer (auth.md §3.2, §3.3, §3.5, §4.2): the
//! authorization-code exchange, the API-key token exchange, the refresh grant, revocation, and
//! the two device-code endpoints. Each call is one request on its own agent (the client's
//! [`crate::client::net::agent`]: environment proxies except for loopback, shared TLS
//! roots), bounded by [`OAUTH_REQUEST_TIMEOUT`] (revocation by [`REVOKE_TIMEOUT`]).
//!
//! Does not own: the login flows and their threads (`mod.rs`, `browser.rs`, `device.rs`),
//! storing tokens or deciding when to refresh (the auth module).
//!
//! Secrets travel only in request bodies, never in URLs; error messages carry the URL, the
//! status and the issuer's error text, never a token.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::{Value, json};

use super::http::encode_pairs;
use crate::secret::Secret;

/// The OAuth client id of Codex, sent with every call.
pub const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// Whole-request bound (connect, send, answer) of every call but revocation.
pub const OAUTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Whole-request bound of the best-effort revocation at logout: short, logout must not hang.
pub const REVOKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Poll interval of a device login when the issuer does not say.
pub const DEFAULT_DEVICE_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Largest response body read from the issuer.
const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;
/// Longest piece of an issuer's non-JSON error body quoted in an error message.
const MAX_ERROR_DETAIL_CHARS: usize = 300;
/// The `error.code` values of a refresh token that can never work again.
const PERMANENT_REFRESH_CODES: [&str; 3] = [
    "refresh_token_expired",
    "refresh_token_reused",
    "refresh_token_invalidated",
];

/// Tokens in an answer of `<issuer>/oauth/token`. Each is `None` when the answer lacks it: a
/// refresh answer may carry only some (present ones replace the stored ones, auth.md §4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenResponse {
    /// The OpenID token (claims: email, plan, workspace).
    pub id_token: Option<Secret>,
    /// Bearer for the ChatGPT backend.
    pub access_token: Option<Secret>,
    /// Grants new tokens.
    pub refresh_token: Option<Secret>,
}

/// Why an issuer call failed. Callers mostly format it; `Status` lets them look at the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// No answer: connect, TLS, timeout, or a body that could not be read.
    Transport {
        /// The endpoint.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The issuer answered with a non-success status.
    Status {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The issuer's error text (`error_description`, `error.message`, the error code, or
        /// the start of the body).
        detail: String,
    },
    /// A success status whose body is not what the endpoint promises.
    InvalidResponse {
        /// The endpoint.
        url: String,
        /// What is missing or malformed.
        message: String,
    },
}

impl OAuthError {
    /// The HTTP status of a `Status` error.
    pub fn status(&self) -> Option<u16> {
        match self {
            OAuthError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OAuthError::Transport { url, message } => {
                write!(f, "request to {url} failed: {message}")
            }
            OAuthError::Status {
                url,
                status,
                detail,
            } => {
                let reason = ureq::http::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default();
                write!(f, "{url} returned status {status}{reason}: {detail}")
            }
            OAuthError::InvalidResponse { url, message } => {
                write!(f, "invalid response from {url}: {message}")
            }
        }
    }
}

impl std::error::Error for OAuthError {}

/// Why a refresh grant failed; the caller branches on it (auth.md §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// The refresh token can never work again (`error.code`, or a string `error`, is
    /// `refresh_token_expired`, `refresh_token_reused` or `refresh_token_invalidated`): the
    /// user must log in again; do not retry.
    Permanent {
        /// The issuer's code.
        code: String,
        /// A sentence for the user saying why, and to log in again (the reference's text).
        message: String,
    },
    /// Anything else (network, timeout, 5xx, other 4xx, a malformed answer): the message
    /// names the status and the issuer's text; a later attempt may succeed.
    Transient(String),
}

impl std::fmt::Display for RefreshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefreshError::Permanent { message, .. } => f.write_str(message),
            RefreshError::Transient(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for RefreshError {}

/// The answer of the device-code request (auth.md §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// Identifies this device login when polling; with the user code it yields the
    /// authorization, so it is kept secret.
    pub device_auth_id: Secret,
    /// The code the user types at `<issuer>/codex/device`.
    pub user_code: String,
    /// How long to wait between polls, as the issuer says (a number or a numeric string of
    /// seconds; [`DEFAULT_DEVICE_POLL_INTERVAL`] when absent). Callers apply their own floor.
    pub interval: Duration,
}

/// What a device poll yields once the user has approved: exchanged like a browser
/// callback's code, with the verifier the issuer generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    /// The authorization code.
    pub authorization_code: Secret,
    /// The PKCE verifier that goes with it.
    pub code_verifier: Secret,
}

/// Exchanges an authorization code for tokens: `POST <issuer>/oauth/token`, form-encoded
/// `grant_type=authorization_code, client_id, code, redirect_uri, code_verifier`. The
/// answer's tokens are returned as they are; the caller checks which it needs.
pub fn exchange_code(
    issuer: &str,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<TokenResponse, OAuthError> {
    let url = endpoint(issuer, "/oauth/token");
    let body = encode_pairs(&[
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", code_verifier),
    ]);
    let (status, text) = post(&url, FORM, body.as_bytes(), OAUTH_REQUEST_TIMEOUT)?;
    if !is_success(status) {
        return Err(status_error(&url, status, &text));
    }
    parse_tokens(&text).map_err(|message| OAuthError::InvalidResponse { url, message })
}

/// Trades an id_token for an OpenAI API key (the token exchange of auth.md §3.2):
/// `POST <issuer>/oauth/token`, form-encoded, answering `{access_token}` = the key.
pub fn obtain_api_key(issuer: &str, id_token: &Secret) -> Result<Secret, OAuthError> {
    let url = endpoint(issuer, "/oauth/token");
    let body = encode_pairs(&[
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("client_id", CLIENT_ID),
        ("requested_token", "openai-api-key"),
        ("subject_token", id_token.expose()),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
    ]);
    let (status, text) = post(&url, FORM, body.as_bytes(), OAUTH_REQUEST_TIMEOUT)?;
    if !is_success(status) {
        return Err(status_error(&url, status, &text));
    }
    parse_tokens(&text)
        .ok()
        .and_then(|tokens| tokens.access_token)
        .filter(|key| !key.is_empty())
        .ok_or_else(|| OAuthError::InvalidResponse {
            url,
            message: "no access_token in the token exchange answer".to_string(),
        })
}

/// The refresh grant of managed ChatGPT auth (auth.md §4.2): `POST <issuer>/oauth/token` JSON
/// `{client_id, grant_type:"refresh_token", refresh_token}`. On success the present tokens of
/// the answer; failures classified as [`RefreshError`].
pub fn refresh(issuer: &str, refresh_token: &Secret) -> Result<TokenResponse, RefreshError> {
    let url = endpoint(issuer, "/oauth/token");
    let body = json!({
        "client_id": CLIENT_ID,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token.expose(),
    });
    let transient = |e: OAuthError| RefreshError::Transient(format!("token refresh failed: {e}"));
    let (status, text) = post(
        &url,
        JSON,
        body.to_string().as_bytes(),
        OAUTH_REQUEST_TIMEOUT,
    )
    .map_err(transient)?;
    if !is_success(status) {
        return Err(classify_refresh_failure(&url, status, &text));
    }
    parse_tokens(&text).map_err(|message| transient(OAuthError::InvalidResponse { url, message }))
}

/// Classifies a failed refresh answer: the three codes of a dead refresh token (as
/// `error.code` or a string `error`) are permanent, anything else transient.
fn classify_refresh_failure(url: &str, status: u16, body: &str) -> RefreshError {
    let parsed: Option<Value> = serde_json::from_str(body.trim()).ok();
    let code = parsed.as_ref().and_then(|v| {
        let error = v.get("error")?;
        error
            .as_str()
            .or_else(|| error.get("code").and_then(Value::as_str))
            .map(str::to_string)
    });
    match code {
        Some(code) if PERMANENT_REFRESH_CODES.contains(&code.as_str()) => {
            let why = match code.as_str() {
                "refresh_token_expired" => "has expired",
                "refresh_token_reused" => "was already used",
                _ => "was revoked",
            };
            RefreshError::Permanent {
                message: format!(
                    "Your access token could not be refreshed because your refresh token {why}. Please log out and sign in again."
                ),
                code,
            }
        }
        _ => RefreshError::Transient(format!(
            "token refresh failed: {}",
            status_error(url, status, body)
        )),
    }
}

/// Revokes a refresh token at logout (auth.md §3.5): `POST <issuer>/oauth/revoke` JSON
/// `{token, token_type_hint:"refresh_token", client_id}`, bounded by [`REVOKE_TIMEOUT`].
/// Best effort: the caller logs a failure and logs out anyway.
pub fn revoke(issuer: &str, refresh_token: &Secret) -> Result<(), OAuthError> {
    let url = endpoint(issuer, "/oauth/revoke");
    let body = json!({
        "token": refresh_token.expose(),
        "token_type_hint": "refresh_token",
        "client_id": CLIENT_ID,
    });
    let (status, text) = post(&url, JSON, body.to_string().as_bytes(), REVOKE_TIMEOUT)?;
    if !is_success(status) {
        return Err(status_error(&url, status, &text));
    }
    Ok(())
}

/// Starts a device login (auth.md §3.3): `POST <issuer>/api/accounts/deviceauth/usercode`
/// JSON `{client_id}` → `{device_auth_id, user_code, interval}`.
pub fn request_device_code(issuer: &str) -> Result<DeviceCode, OAuthError> {
    let url = endpoint(issuer, "/api/accounts/deviceauth/usercode");
    let body = json!({ "client_id": CLIENT_ID });
    let (status, text) = post(
        &url,
        JSON,
        body.to_string().as_bytes(),
        OAUTH_REQUEST_TIMEOUT,
    )?;
    if !is_success(status) {
        return Err(status_error(&url, status, &text));
    }
    parse_device_code(&text).map_err(|message| OAuthError::InvalidResponse { url, message })
}

fn parse_device_code(text: &str) -> Result<DeviceCode, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let string = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let device_auth_id = string("device_auth_id").ok_or("no device_auth_id in the answer")?;
    let user_code = string("user_code")
        .or_else(|| string("usercode"))
        .ok_or("no user_code in the answer")?;
    let interval = match value.get("interval") {
        None | Some(Value::Null) => DEFAULT_DEVICE_POLL_INTERVAL,
        Some(v) => {
            let seconds = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            seconds
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| format!("invalid interval {v}"))?
        }
    };
    Ok(DeviceCode {
        device_auth_id: Secret::new(device_auth_id),
        user_code,
        interval,
    })
}

/// Polls a device login once: `POST <issuer>/api/accounts/deviceauth/token` JSON
/// `{device_auth_id, user_code}`. `Ok(None)` while the user has not approved (403 or 404),
/// `Ok(Some)` with the code and verifier once they have; other statuses are errors.
pub fn poll_device_token(
    issuer: &str,
    device: &DeviceCode,
) -> Result<Option<DeviceGrant>, OAuthError> {
    let url = endpoint(issuer, "/api/accounts/deviceauth/token");
    let body = json!({
        "device_auth_id": device.device_auth_id.expose(),
        "user_code": device.user_code,
    });
    let (status, text) = post(
        &url,
        JSON,
        body.to_string().as_bytes(),
        OAUTH_REQUEST_TIMEOUT,
    )?;
    if status == 403 || status == 404 {
        return Ok(None);
    }
    if !is_success(status) {
        return Err(status_error(&url, status, &text));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| OAuthError::InvalidResponse {
        url: url.clone(),
        message: format!("the answer is not JSON: {e}"),
    })?;
    let secret = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
    };
    match (secret("authorization_code"), secret("code_verifier")) {
        (Some(authorization_code), Some(code_verifier)) => Ok(Some(DeviceGrant {
            authorization_code,
            code_verifier,
        })),
        _ => Err(OAuthError::InvalidResponse {
            url,
            message: "no authorization_code and code_verifier in the answer".to_string(),
        }),
    }
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// `<issuer><path>`, whatever trailing slashes the configured issuer has.
pub(super) fn endpoint(issuer: &str, path: &str) -> String {
    format!("{}{path}", issuer.trim_end_matches('/'))
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// One POST; the status and the body text (lossy UTF-8), whatever the status.
fn post(
    url: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, String), OAuthError> {
    let transport = |e: ureq::Error| OAuthError::Transport {
        url: url.to_string(),
        message: e.to_string(),
    };
    // Nothing aborts these calls but their own timeout.
    let agent = crate::client::net::agent(url, Arc::new(AtomicBool::new(false)));
    let mut response = agent
        .post(url)
        .config()
        .timeout_global(Some(timeout))
        .build()
        .header("content-type", content_type)
        .header("accept", "application/json")
        .send(body)
        .map_err(transport)?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(transport)?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

fn status_error(url: &str, status: u16, body: &str) -> OAuthError {
    OAuthError::Status {
        url: url.to_string(),
        status,
        detail: error_detail(body),
    }
}

/// The issuer's explanation in an error body: `error_description`, `error.message`, the
/// error code (`error` as a string or `error.code`), else the start of the body.
fn error_detail(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "empty body".to_string();
    }
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let error = value.get("error");
        if let Some(detail) = text(value.get("error_description"))
            .or_else(|| text(error.and_then(|e| e.get("message"))))
            .or_else(|| text(error))
            .or_else(|| text(error.and_then(|e| e.get("code"))))
        {
            return detail;
        }
    }
    let mut detail: String = trimmed.chars().take(MAX_ERROR_DETAIL_CHARS).collect();
    if detail.len() < trimmed.len() {
        detail.push('…');
    }
    detail
}

/// Reads the token fields of a token-endpoint answer (each optional).
fn parse_tokens(text: &str) -> Result<TokenResponse, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the answer is not JSON: {e}"))?;
    if !value.is_object() {
        return Err("the answer is not a JSON object".to_string());
    }
    let secret = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
    };
    Ok(TokenResponse {
        id_token: secret("id_token"),
        access_token: secret("access_token"),
        refresh_token: secret("refresh_token"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const URL: &str = "https://auth.example/oauth/token";

    #[test]
    fn refresh_error_classification_table() {
        let permanent = |code: &str| match classify_refresh_failure(URL, 401, code) {
            RefreshError::Permanent { code, message } => {
                assert!(message.contains("sign in again"), "{message}");
                code
            }
            other => panic!("{other:?}"),
        };
        for (body, code) in [
            (
                r#"{"error":{"code":"refresh_token_expired"}}"#,
                "refresh_token_expired",
            ),
            (
                r#"{"error":{"code":"refresh_token_reused","message":"x"}}"#,
                "refresh_token_reused",
            ),
            (
                r#"{"error":{"code":"refresh_token_invalidated"}}"#,
                "refresh_token_invalidated",
            ),
            (
                r#"{"error":"refresh_token_expired"}"#,
                "refresh_token_expired",
            ),
            (
                r#" {"error":"refresh_token_reused","error_description":"used"} "#,
                "refresh_token_reused",
            ),
        ] {
            assert_eq!(permanent(body), code, "{body}");
        }
        for (status, body, message) in [
            (
                500,
                "upstream down",
                "token refresh failed: https://auth.example/oauth/token returned status 500 Internal Server Error: upstream down",
            ),
            (
                400,
                r#"{"error":{"code":"invalid_request","message":"bad grant"}}"#,
                "token refresh failed: https://auth.example/oauth/token returned status 400 Bad Request: bad grant",
            ),
            (
                401,
                r#"{"error":"invalid_grant"}"#,
                "token refresh failed: https://auth.example/oauth/token returned status 401 Unauthorized: invalid_grant",
            ),
            (
                429,
                "",
                "token refresh failed: https://auth.example/oauth/token returned status 429 Too Many Requests: empty body",
            ),
            (
                401,
                r#"{"error":{"code":"token_expired"}}"#,
                "token refresh failed: https://auth.example/oauth/token returned status 401 Unauthorized: token_expired",
            ),
        ] {
            assert_eq!(
                classify_refresh_failure(URL, status, body),
                RefreshError::Transient(message.to_string()),
                "{body}"
            );
        }
    }

    #[test]
    fn error_detail_table() {
        let long = "x".repeat(400);
        for (body, detail) in [
            (
                r#"{"error_description":"bad code","error":"invalid_grant"}"#,
                "bad code".to_string(),
            ),
            (
                r#"{"error":{"message":"nope","code":"c"}}"#,
                "nope".to_string(),
            ),
            (r#"{"error":{"code":"c"}}"#, "c".to_string()),
            (r#"{"error":"invalid_grant"}"#, "invalid_grant".to_string()),
            (r#"{"other":1}"#, r#"{"other":1}"#.to_string()),
            ("  \n", "empty body".to_string()),
            (long.as_str(), format!("{}…", "x".repeat(300))),
        ] {
            assert_eq!(error_detail(body), detail, "{body}");
        }
    }

    #[test]
    fn device_code_answers() {
        let code = parse_device_code(r#"{"device_auth_id":"d","user_code":"U-1","interval":"5"}"#)
            .unwrap();
        assert_eq!(code.device_auth_id.expose(), "d");
        assert_eq!(code.user_code, "U-1");
        assert_eq!(code.interval, Duration::from_secs(5));
        for (interval, expected) in [
            ("3", Duration::from_secs(3)),
            ("0.25", Duration::from_millis(250)),
            ("\" 7 \"", Duration::from_secs(7)),
            ("0", Duration::ZERO),
            ("null", DEFAULT_DEVICE_POLL_INTERVAL),
        ] {
            let text = format!(r#"{{"device_auth_id":"d","usercode":"U","interval":{interval}}}"#);
            assert_eq!(
                parse_device_code(&text).unwrap().interval,
                expected,
                "{text}"
            );
        }
        let absent = parse_device_code(r#"{"device_auth_id":"d","user_code":"U"}"#).unwrap();
        assert_eq!(absent.interval, DEFAULT_DEVICE_POLL_INTERVAL);
        for bad in [
            r#"{"user_code":"U"}"#,
            r#"{"device_auth_id":"d"}"#,
            r#"{"device_auth_id":"d","user_code":"U","interval":"soon"}"#,
            r#"{"device_auth_id":"d","user_code":"U","interval":-1}"#,
            "not json",
        ] {
            assert!(parse_device_code(bad).is_err(), "{bad}");
        }
        assert!(!format!("{code:?}").contains("\"d\""));
    }

    #[test]
    fn token_answers_and_endpoints() {
        let tokens = parse_tokens(r#"{"id_token":"i","access_token":"","extra":1}"#).unwrap();
        assert_eq!(tokens.id_token.unwrap().expose(), "i");
        assert_eq!(tokens.access_token, None);
        assert_eq!(tokens.refresh_token, None);
        assert!(parse_tokens("[]").is_err());
        assert!(parse_tokens("<html>").is_err());
        assert_eq!(
            endpoint("https://auth.openai.com/", "/oauth/token"),
            "https://auth.openai.com/oauth/token"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:9", "/oauth/revoke"),
            "http://127.0.0.1:9/oauth/revoke"
        );
    }
}
