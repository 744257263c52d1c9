//! Authentication state (auth.md): the three modes — API key and managed ChatGPT in
//! `auth.json`, client-owned ChatGPT tokens in memory only — the credentials the model client
//! uses, and the 401 recovery of §4: reload/refresh for managed auth, a single-flight
//! `account/chatgptAuthTokens/refresh` request to the client for external tokens. The
//! account/* methods are `accounts/`'s; OAuth flows and HTTP calls are `login/`'s.
//!
//! This file holds the state and its plain accessors (modes, the account view, logging in and
//! out). `managed` refreshes managed ChatGPT tokens (on demand, before expiry, after a 401);
//! `external` asks the client for new tokens after a 401, once for every request that failed
//! together; `provider` is what the model client sees
//! ([`AuthProvider`](crate::client::AuthProvider)): credentials, the workspace route, 401
//! recovery.

mod external;
pub mod jwt;
mod managed;
mod provider;
mod routing;
pub mod storage;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::ClientError;
use crate::config::Config;
use crate::protocol::CodexErrorInfo;
use crate::rpc::Rpc;
use crate::secret::Secret;
use crate::thread::lock;
use storage::{AuthDotJson, Tokens};

/// How long the client may take to answer `account/chatgptAuthTokens/refresh`.
pub const EXTERNAL_REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// `authMode` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// An API key in auth.json.
    ApiKey,
    /// A managed ChatGPT login in auth.json.
    Chatgpt,
    /// ChatGPT tokens owned by the client, in memory only.
    ChatgptAuthTokens,
}

impl AuthMode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::ApiKey => "apikey",
            AuthMode::Chatgpt => "chatgpt",
            AuthMode::ChatgptAuthTokens => "chatgptAuthTokens",
        }
    }
}

/// Client-owned tokens (never written anywhere).
#[derive(Debug, Clone)]
pub struct ExternalTokens {
    /// Bearer for the ChatGPT backend.
    pub access_token: Secret,
    /// The workspace, sent as `chatgpt-account-id`.
    pub account_id: String,
    /// Plan: the client's explicit value, else the token's claim, else `unknown`.
    pub plan_type: String,
    /// The user's email from the token claims.
    pub email: Option<String>,
}

/// The current credential.
#[derive(Debug, Clone)]
enum State {
    None,
    ApiKey(Secret),
    Managed(AuthDotJson),
    External(ExternalTokens),
}

/// What `account/read` and `account/updated` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    /// The mode, if logged in.
    pub mode: Option<AuthMode>,
    /// Email (ChatGPT modes).
    pub email: Option<String>,
    /// Plan (ChatGPT modes).
    pub plan_type: Option<String>,
}

/// Owns the connection's credentials. Shared by the main loop (account methods) and the
/// `model-stream` threads (via [`AuthProvider`](crate::client::AuthProvider)).
pub struct AuthManager {
    codex_home: PathBuf,
    issuer: String,
    forced_workspaces: Option<Vec<String>>,
    rpc: Rpc,
    state: Mutex<State>,
    flight: Mutex<Option<Arc<external::Flight>>>,
    /// Held during a managed refresh grant: refresh tokens rotate, so two grants with the same
    /// token would fail the second as reused. Waiters find the token already replaced.
    managed_refresh: Mutex<()>,
    /// The last workspace-routing discovery; held while one runs (one at a time).
    routing: Mutex<Option<routing::Discovered>>,
    /// Accounts whose failed discovery was already reported.
    routing_warned: Mutex<Vec<String>>,
}

fn auth_error(message: impl Into<String>) -> ClientError {
    ClientError::new(message, CodexErrorInfo::Unauthorized, Some(401))
}

/// The message for a workspace outside `forced_chatgpt_workspace_id`.
pub fn workspace_mismatch(allowed: &[String], actual: &str) -> String {
    format!(
        "Login is restricted to workspace(s) {}, but current credentials belong to {actual}",
        allowed.join(", ")
    )
}

/// The plan of a ChatGPT login: explicit, else the claim, else `unknown`.
pub fn plan_or_unknown(explicit: Option<&str>, claims: &jwt::Claims) -> String {
    explicit
        .map(str::to_string)
        .or_else(|| claims.plan_type.clone())
        .unwrap_or_else(|| "unknown".to_string())
}

impl AuthManager {
    /// Loads auth.json (a broken one is logged and ignored: the user can log in again).
    pub fn new(config: &Config, rpc: Rpc) -> Self {
        let state = match storage::load(&config.codex_home) {
            Ok(Some(auth)) if auth.is_chatgpt() && auth.tokens.is_some() => State::Managed(auth),
            Ok(Some(auth)) => match auth.openai_api_key {
                Some(key) if !key.is_empty() => State::ApiKey(key),
                _ => State::None,
            },
            Ok(None) => State::None,
            Err(e) => {
                crate::log::warn(&format!("ignoring unreadable credentials: {e:#}"));
                State::None
            }
        };
        Self {
            codex_home: config.codex_home.clone(),
            issuer: config.chatgpt_auth_issuer.clone(),
            forced_workspaces: config.forced_chatgpt_workspace_id.clone(),
            rpc,
            state: Mutex::new(state),
            flight: Mutex::new(None),
            managed_refresh: Mutex::new(()),
            routing: Mutex::new(None),
            routing_warned: Mutex::new(Vec::new()),
        }
    }

    /// The current mode and account details.
    pub fn view(&self) -> AccountView {
        match &*lock(&self.state) {
            State::None => AccountView {
                mode: None,
                email: None,
                plan_type: None,
            },
            State::ApiKey(_) => AccountView {
                mode: Some(AuthMode::ApiKey),
                email: None,
                plan_type: None,
            },
            State::Managed(auth) => {
                let claims = auth
                    .tokens
                    .as_ref()
                    .and_then(|t| jwt::parse(t.id_token.expose()).ok())
                    .unwrap_or_default();
                AccountView {
                    mode: Some(AuthMode::Chatgpt),
                    email: claims.email.clone(),
                    plan_type: Some(plan_or_unknown(None, &claims)),
                }
            }
            State::External(tokens) => AccountView {
                mode: Some(AuthMode::ChatgptAuthTokens),
                email: tokens.email.clone(),
                plan_type: Some(tokens.plan_type.clone()),
            },
        }
    }

    /// Whether client-owned tokens are active (managed logins are refused meanwhile).
    pub fn is_external(&self) -> bool {
        matches!(&*lock(&self.state), State::External(_))
    }

    /// The ChatGPT account of the current login (managed or client-owned), if any. Never
    /// blocks or refreshes.
    pub fn account_id(&self) -> Option<String> {
        match &*lock(&self.state) {
            State::Managed(auth) => auth.tokens.as_ref().and_then(|t| t.account_id.clone()),
            State::External(tokens) => Some(tokens.account_id.clone()),
            State::None | State::ApiKey(_) => None,
        }
    }

    /// The bearer token in use, for `getAuthStatus {includeToken}`.
    pub fn bearer(&self) -> Option<Secret> {
        match &*lock(&self.state) {
            State::None => None,
            State::ApiKey(key) => Some(key.clone()),
            State::Managed(auth) => auth.tokens.as_ref().map(|t| t.access_token.clone()),
            State::External(tokens) => Some(tokens.access_token.clone()),
        }
    }

    /// Replaces the credentials with an API key and persists it.
    pub fn set_api_key(&self, key: Secret) -> anyhow::Result<()> {
        let auth = AuthDotJson {
            auth_mode: Some("apikey".to_string()),
            openai_api_key: Some(key.clone()),
            tokens: None,
            last_refresh: None,
        };
        // The file and the memory change under one lock: they never disagree.
        let mut state = lock(&self.state);
        storage::save(&self.codex_home, &auth)?;
        *state = State::ApiKey(key);
        Ok(())
    }

    /// Replaces the credentials with a managed ChatGPT login and persists it.
    pub fn set_managed(&self, tokens: Tokens, api_key: Option<Secret>) -> anyhow::Result<()> {
        let auth = AuthDotJson {
            auth_mode: Some("chatgpt".to_string()),
            openai_api_key: api_key,
            tokens: Some(tokens),
            last_refresh: Some(crate::time::rfc3339_millis(crate::time::unix_millis())),
        };
        let mut state = lock(&self.state);
        storage::save(&self.codex_home, &auth)?;
        *state = State::Managed(auth);
        Ok(())
    }

    /// Replaces the credentials with client-owned tokens (the old ones are dropped, and
    /// `Secret` wipes them). auth.json is left untouched.
    pub fn set_external(&self, tokens: ExternalTokens) {
        *lock(&self.state) = State::External(tokens);
    }

    /// Logs out: forgets every credential and deletes auth.json. Returns the managed refresh
    /// token, if there was one, for a best-effort revoke.
    pub fn logout(&self) -> anyhow::Result<Option<Secret>> {
        let mut state = lock(&self.state);
        storage::delete(&self.codex_home)?;
        let previous = std::mem::replace(&mut *state, State::None);
        drop(state);
        Ok(match previous {
            State::Managed(auth) => auth.tokens.map(|t| t.refresh_token),
            _ => None,
        })
    }

    /// The OAuth issuer of managed logins.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}
