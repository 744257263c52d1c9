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

use serde_json::json;

mod answers;

use super::http::encode_pairs;
use crate::secret::Secret;
use answers::{
    classify_refresh_failure, parse_device_code, parse_device_grant, parse_tokens, status_error,
};

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
    #[cfg(test)]
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
    parse_device_grant(&text)
        .map(Some)
        .map_err(|message| OAuthError::InvalidResponse { url, message })
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
