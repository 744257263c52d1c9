//! Managed ChatGPT tokens (auth.json): the refresh-token grant (one at a time, since refresh
//! tokens rotate), refreshing before expiry, and recovering from a 401 by adopting tokens
//! another process wrote or refreshing.

use crate::client::{ClientError, Credentials};
use crate::protocol::CodexErrorInfo;
use crate::secret::Secret;
use crate::thread::lock;

use super::storage::AuthDotJson;
use super::{AuthManager, State, auth_error, jwt, storage};

/// Refresh a managed access token this long before it expires.
const PROACTIVE_REFRESH_MARGIN_SECS: i64 = 5 * 60;
/// Refresh managed tokens without an `exp` after this long.
const MAX_TOKEN_AGE_MS: i64 = 8 * 24 * 3600 * 1000;

impl AuthManager {
    /// Refreshes managed tokens now (`account/read {refreshToken:true}`); a no-op otherwise.
    pub fn refresh_managed_now(&self) -> Result<(), ClientError> {
        let refresh_token = match &*lock(&self.state) {
            State::Managed(auth) => auth.tokens.as_ref().map(|t| t.refresh_token.clone()),
            _ => None,
        };
        match refresh_token {
            Some(token) => self.refresh_managed(&token),
            None => Ok(()),
        }
    }

    /// Runs the refresh-token grant and persists the result.
    pub(super) fn refresh_managed(&self, refresh_token: &Secret) -> Result<(), ClientError> {
        let _one_at_a_time = lock(&self.managed_refresh);
        let still_current = match &*lock(&self.state) {
            State::Managed(auth) => auth
                .tokens
                .as_ref()
                .is_some_and(|t| t.refresh_token == *refresh_token),
            _ => false,
        };
        if !still_current {
            return Ok(()); // refreshed (or logged out) while we waited
        }
        let response =
            crate::login::oauth::refresh(&self.issuer, refresh_token).map_err(|e| match e {
                crate::login::oauth::RefreshError::Permanent { code, .. } => {
                    auth_error(permanent_refresh_message(&code))
                }
                crate::login::oauth::RefreshError::Transient(message) => ClientError::new(
                    format!("failed to refresh the access token: {message}"),
                    CodexErrorInfo::Other,
                    None,
                ),
            })?;
        let mut state = lock(&self.state);
        let State::Managed(auth) = &mut *state else {
            return Ok(()); // logged out or replaced meanwhile: nothing to update
        };
        let Some(tokens) = auth.tokens.as_mut() else {
            return Ok(());
        };
        if tokens.refresh_token != *refresh_token {
            return Ok(()); // someone else refreshed first
        }
        if let Some(id_token) = response.id_token {
            if let Ok(claims) = jwt::parse(id_token.expose()) {
                tokens.account_id = claims.account_id.or(tokens.account_id.take());
            }
            tokens.id_token = id_token;
        }
        if let Some(access) = response.access_token {
            tokens.access_token = access;
        }
        if let Some(refresh) = response.refresh_token {
            tokens.refresh_token = refresh;
        }
        auth.last_refresh = Some(crate::time::rfc3339_millis(crate::time::unix_millis()));
        storage::save(&self.codex_home, auth).map_err(|e| {
            ClientError::new(
                format!("failed to save refreshed credentials: {e:#}"),
                CodexErrorInfo::Other,
                None,
            )
        })
    }

    /// Managed tokens close to expiry (or old without an expiry) are refreshed before use.
    pub(super) fn needs_proactive_refresh(auth: &AuthDotJson) -> bool {
        let Some(tokens) = &auth.tokens else {
            return false;
        };
        let now_ms = crate::time::unix_millis() as i64;
        match jwt::parse(tokens.access_token.expose())
            .ok()
            .and_then(|c| c.exp)
        {
            Some(exp) => exp - now_ms / 1000 <= PROACTIVE_REFRESH_MARGIN_SECS,
            None => auth
                .last_refresh
                .as_deref()
                .and_then(crate::time::parse_rfc3339)
                .is_none_or(|at| now_ms - at > MAX_TOKEN_AGE_MS),
        }
    }

    /// 401 with managed tokens: adopt tokens another process wrote, else refresh.
    pub(super) fn recover_managed(&self, failed: &Credentials) -> Result<bool, ClientError> {
        {
            // Read and adopt under the lock, so a save of ours cannot slip in between.
            let mut state = lock(&self.state);
            if matches!(&*state, State::Managed(_))
                && let Ok(Some(on_disk)) = storage::load(&self.codex_home)
                && on_disk.is_chatgpt()
                && let Some(tokens) = &on_disk.tokens
                && tokens.access_token != failed.token
            {
                *state = State::Managed(on_disk);
                return Ok(true);
            }
        }
        let refresh_token = match &*lock(&self.state) {
            State::Managed(auth) => match &auth.tokens {
                Some(t) if t.access_token != failed.token => return Ok(true),
                Some(t) => t.refresh_token.clone(),
                None => return Ok(false),
            },
            _ => return Ok(true), // the mode changed meanwhile: retry with whatever is current
        };
        self.refresh_managed(&refresh_token).map(|()| true)
    }
}

/// The message for a refresh token the issuer will never accept again.
fn permanent_refresh_message(code: &str) -> String {
    let why = match code {
        "refresh_token_expired" => "your refresh token has expired",
        "refresh_token_reused" => "your refresh token was already used",
        _ => "your refresh token was revoked",
    };
    format!(
        "Your access token could not be refreshed because {why}. Please log out and sign in again."
    )
}
