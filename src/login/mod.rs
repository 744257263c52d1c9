//! ChatGPT logins (auth.md §3.2, §3.3): the browser login (PKCE S256 and a local callback
//! server) and the device-code login, each running on its own named thread and reporting once
//! through a [`LoginCallback`]; plus the OAuth HTTP calls they and the auth module make
//! ([`oauth`]: code exchange, API-key exchange, refresh grant, revocation, device endpoints).
//!
//! Does not own: persisting auth.json, notifications, replacing a pending login with a new
//! one, `forced_login_method` (the auth module and the account/* handlers do that with
//! [`LoginSuccess`]); API-key and external-token logins.
//!
//! Files: `browser.rs` (PKCE, authorize URL, port, the handle), `callback.rs` (the callback
//! server), `device.rs` (device-code polling), `oauth.rs` (issuer HTTP; `oauth/answers.rs`
//! reads the answers), `http.rs` (URL encoding, the server's HTTP/1.1 text).

mod browser;
mod callback;
mod device;
mod http;
pub mod oauth;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

use std::sync::{Mutex, PoisonError};

use crate::auth::jwt;
use crate::auth::storage::Tokens;
use crate::config::Config;
use crate::secret::Secret;

pub use browser::start_browser_login;
pub use device::start_device_login;

/// How a login is reached and restricted; built from the config with
/// [`LoginOptions::from_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOptions {
    /// OAuth issuer, e.g. `https://auth.openai.com` (config `chatgpt_auth_issuer`).
    pub issuer: String,
    /// Preferred port of the browser login's callback server (config `login_callback_port`,
    /// default 1455; 0 = any free port). When busy the login falls back (see
    /// [`start_browser_login`]).
    pub callback_port: u16,
    /// The `originator` parameter of the authorize URL (the client's name, e.g.
    /// `codex_vscode`).
    pub originator: String,
    /// Workspaces the login must belong to (`forced_chatgpt_workspace_id`); `None` or an empty
    /// list allows any.
    pub forced_workspace_ids: Option<Vec<String>>,
}

impl LoginOptions {
    /// The options of `config` for a client named `originator`.
    pub fn from_config(config: &Config, originator: &str) -> Self {
        Self {
            issuer: config.chatgpt_auth_issuer.clone(),
            callback_port: config.login_callback_port,
            originator: originator.to_string(),
            forced_workspace_ids: config.forced_chatgpt_workspace_id.clone(),
        }
    }

    /// The forced workspaces, `None` when nothing is forced.
    fn forced(&self) -> Option<&[String]> {
        self.forced_workspace_ids
            .as_deref()
            .filter(|ids| !ids.is_empty())
    }
}

/// A completed ChatGPT login, for the auth module to persist (auth.json, `auth_mode
/// "chatgpt"`) and announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSuccess {
    /// The tokens; `account_id` comes from the id_token's `chatgpt_account_id` claim.
    pub tokens: Tokens,
    /// The API key from the token exchange; `None` when that exchange failed (logged, not
    /// fatal: the ChatGPT tokens work without it).
    pub api_key: Option<Secret>,
}

/// Called exactly once per login with its outcome: `Ok` on success, `Err(message)` on
/// failure, `"login canceled"` after a cancel, `"login timed out"` after the timeout. It runs
/// on the login's own thread, or on the thread calling `cancel()` (before `cancel` returns),
/// so it must not take a lock that the caller of `cancel` holds.
pub type LoginCallback = Box<dyn FnOnce(Result<LoginSuccess, String>) + Send>;

/// The message of a login ended by `cancel()`.
pub const LOGIN_CANCELED: &str = "login canceled";
/// The message of a login that outlived its timeout.
pub const LOGIN_TIMED_OUT: &str = "login timed out";

/// Holds a login's callback until the first outcome takes it: whoever takes it reports, every
/// later outcome is dropped.
struct Completion(Mutex<Option<LoginCallback>>);

impl Completion {
    fn new(on_done: LoginCallback) -> Self {
        Self(Mutex::new(Some(on_done)))
    }

    /// The callback, for the one outcome that gets to report; `None` once taken.
    fn take(&self) -> Option<LoginCallback> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Reports `result` unless an outcome was already reported; true when this one was.
    fn finish(&self, result: Result<LoginSuccess, String>) -> bool {
        match self.take() {
            Some(on_done) => {
                on_done(result);
                true
            }
            None => false,
        }
    }

    fn is_done(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}

/// Turns the answer of a code exchange into a [`LoginSuccess`]: all three tokens present, an
/// id_token that parses as a JWT, a workspace among the forced ones; then the API-key
/// exchange (whose failure is only logged). `Err` is the login's failure message.
fn complete_login(
    login_id: &str,
    opts: &LoginOptions,
    tokens: oauth::TokenResponse,
) -> Result<LoginSuccess, String> {
    let missing = |name: &str| format!("token response is missing {name}");
    let id_token = tokens.id_token.ok_or_else(|| missing("id_token"))?;
    let access_token = tokens.access_token.ok_or_else(|| missing("access_token"))?;
    let refresh_token = tokens
        .refresh_token
        .ok_or_else(|| missing("refresh_token"))?;
    let claims = jwt::parse(id_token.expose()).map_err(|e| format!("invalid ID token: {e}"))?;
    ensure_workspace_allowed(opts.forced(), claims.account_id.as_deref())?;
    let api_key = match oauth::obtain_api_key(&opts.issuer, &id_token) {
        Ok(key) => Some(key),
        Err(e) => {
            crate::log::warn(&format!(
                "login {login_id}: no API key from the token exchange, continuing without: {e}"
            ));
            None
        }
    };
    Ok(LoginSuccess {
        tokens: Tokens {
            id_token,
            access_token,
            refresh_token,
            account_id: claims.account_id,
        },
        api_key,
    })
}

/// Checks the id_token's workspace against the forced ones; the message is auth.md §4.1's.
fn ensure_workspace_allowed(
    forced: Option<&[String]>,
    account_id: Option<&str>,
) -> Result<(), String> {
    let Some(forced) = forced else {
        return Ok(());
    };
    let allowed = forced.join(", ");
    match account_id {
        Some(id) if forced.iter().any(|f| f == id) => Ok(()),
        Some(id) => Err(format!(
            "Login is restricted to workspace(s) {allowed}, but current credentials belong to {id}"
        )),
        None => Err(format!(
            "Login is restricted to workspace(s) {allowed}, but the ID token has no chatgpt_account_id claim"
        )),
    }
}
