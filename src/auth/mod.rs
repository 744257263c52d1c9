//! Authentication state (auth.md): the three modes — API key and managed ChatGPT in
//! `auth.json`, client-owned ChatGPT tokens in memory only — the credentials the model client
//! uses, and the 401 recovery of §4: reload/refresh for managed auth, a single-flight
//! `account/chatgptAuthTokens/refresh` request to the client for external tokens. The
//! account/* methods are `accounts.rs`'s; OAuth flows and HTTP calls are `login/`'s.

pub mod jwt;
mod routing;
pub mod storage;

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::{
    AuthProvider, ChatGptRoute, ClientError, ClientIdentity, CredentialKind, Credentials,
};
use crate::config::Config;
use crate::protocol::CodexErrorInfo;
use crate::rpc::Rpc;
use crate::secret::Secret;
use crate::thread::lock;
use storage::{AuthDotJson, Tokens};

/// How long the client may take to answer `account/chatgptAuthTokens/refresh`.
pub const EXTERNAL_REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
/// Refresh a managed access token this long before it expires.
const PROACTIVE_REFRESH_MARGIN_SECS: i64 = 5 * 60;
/// Refresh managed tokens without an `exp` after this long.
const MAX_TOKEN_AGE_MS: i64 = 8 * 24 * 3600 * 1000;

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

/// One outstanding refresh that concurrent 401s share.
struct Flight {
    /// The token the refresh replaces.
    for_token: Secret,
    result: Mutex<Option<Result<(), ClientError>>>,
    done: Condvar,
}

/// Owns the connection's credentials. Shared by the main loop (account methods) and the
/// `model-stream` threads (via [`AuthProvider`]).
pub struct AuthManager {
    codex_home: PathBuf,
    issuer: String,
    forced_workspaces: Option<Vec<String>>,
    rpc: Rpc,
    state: Mutex<State>,
    flight: Mutex<Option<Arc<Flight>>>,
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
    fn refresh_managed(&self, refresh_token: &Secret) -> Result<(), ClientError> {
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
    fn needs_proactive_refresh(auth: &AuthDotJson) -> bool {
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
    fn recover_managed(&self, failed: &Credentials) -> Result<bool, ClientError> {
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

    /// 401 with external tokens: one refresh request to the client, shared by every request
    /// that failed with the same token.
    fn recover_external(&self, failed: &Credentials) -> Result<bool, ClientError> {
        let (flight, leader) = {
            let mut slot = lock(&self.flight);
            match slot.as_ref() {
                Some(f) if f.for_token == failed.token => (f.clone(), false),
                _ => {
                    let f = Arc::new(Flight {
                        for_token: failed.token.clone(),
                        result: Mutex::new(None),
                        done: Condvar::new(),
                    });
                    *slot = Some(f.clone());
                    (f, true)
                }
            }
        };
        if leader {
            let result = self.ask_client_for_tokens(failed);
            *lock(&flight.result) = Some(result.clone());
            flight.done.notify_all();
            let mut slot = lock(&self.flight);
            if slot.as_ref().is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                *slot = None;
            }
            return result.map(|()| true);
        }
        // The leader answers within its own timeout; the bound only guards against a leader
        // that died without answering.
        let deadline =
            std::time::Instant::now() + EXTERNAL_REFRESH_TIMEOUT + Duration::from_secs(1);
        let mut result = lock(&flight.result);
        while result.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(auth_error("auth refresh request timed out after 10s"));
            }
            result = flight
                .done
                .wait_timeout(result, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        result.clone().unwrap_or(Ok(())).map(|()| true)
    }

    fn ask_client_for_tokens(&self, failed: &Credentials) -> Result<(), ClientError> {
        let params = json!({"reason": "unauthorized", "previousAccountId": failed.account_id});
        let (id, answer) = self
            .rpc
            .request("account/chatgptAuthTokens/refresh", params);
        let reply = match answer.recv_timeout(EXTERNAL_REFRESH_TIMEOUT) {
            Ok(reply) => reply,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                self.rpc.cancel(id);
                return Err(auth_error("auth refresh request timed out after 10s"));
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(auth_error(
                    "auth refresh request failed: the client connection closed",
                ));
            }
        };
        let result = reply.map_err(|e| {
            auth_error(format!(
                "auth refresh request failed: code={}: {}",
                e.code, e.message
            ))
        })?;
        let tokens =
            parse_refresh_result(&result, self.forced_workspaces.as_deref()).map_err(auth_error)?;
        let mut state = lock(&self.state);
        if matches!(&*state, State::External(_)) {
            *state = State::External(tokens);
        }
        Ok(())
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshResult {
    access_token: Option<String>,
    chatgpt_account_id: Option<String>,
    chatgpt_plan_type: Option<String>,
    id_token: Option<String>,
}

/// Validates the client's answer to `account/chatgptAuthTokens/refresh` (both shapes).
fn parse_refresh_result(
    result: &Value,
    forced: Option<&[String]>,
) -> Result<ExternalTokens, String> {
    const INVALID: &str = "invalid auth refresh response";
    let parsed: RefreshResult =
        serde_json::from_value(result.clone()).map_err(|_| INVALID.to_string())?;
    let access_token = parsed.access_token.ok_or(INVALID)?;
    let id_claims = match &parsed.id_token {
        Some(id) => Some(
            jwt::parse(id).map_err(|_| "auth refresh returned invalid credentials".to_string())?,
        ),
        None => None,
    };
    let account_id = parsed
        .chatgpt_account_id
        .or_else(|| id_claims.as_ref().and_then(|c| c.account_id.clone()))
        .ok_or(INVALID)?;
    let access_claims = jwt::parse(&access_token)
        .map_err(|_| "auth refresh returned invalid credentials".to_string())?;
    if let Some(allowed) = forced
        && !allowed.contains(&account_id)
    {
        return Err(workspace_mismatch(allowed, &account_id));
    }
    let claims = id_claims.unwrap_or(access_claims);
    Ok(ExternalTokens {
        access_token: Secret::new(access_token),
        plan_type: plan_or_unknown(parsed.chatgpt_plan_type.as_deref(), &claims),
        email: claims.email,
        account_id,
    })
}

impl AuthProvider for AuthManager {
    fn credentials(&self) -> Result<Option<Credentials>, ClientError> {
        let refresh_token = match &*lock(&self.state) {
            State::Managed(auth) if Self::needs_proactive_refresh(auth) => {
                auth.tokens.as_ref().map(|t| t.refresh_token.clone())
            }
            _ => None,
        };
        if let Some(token) = refresh_token
            && let Err(e) = self.refresh_managed(&token)
        {
            // A permanent failure ends here; a transient one lets the request try its luck.
            if e.info == CodexErrorInfo::Unauthorized {
                return Err(e);
            }
            crate::log::warn(&format!("proactive token refresh failed: {}", e.message));
        }
        Ok(match &*lock(&self.state) {
            State::None => None,
            State::ApiKey(key) => Some(Credentials {
                kind: CredentialKind::ApiKey,
                token: key.clone(),
                account_id: None,
            }),
            State::Managed(auth) => auth.tokens.as_ref().map(|t| Credentials {
                kind: CredentialKind::ChatGpt,
                token: t.access_token.clone(),
                account_id: t.account_id.clone(),
            }),
            State::External(tokens) => Some(Credentials {
                kind: CredentialKind::ChatGpt,
                token: tokens.access_token.clone(),
                account_id: Some(tokens.account_id.clone()),
            }),
        })
    }

    fn chatgpt_route(&self, configured: &str, identity: &ClientIdentity) -> ChatGptRoute {
        let direct = ChatGptRoute {
            base_url: configured.to_string(),
            routing_override: None,
        };
        let Some(account) = self.account_id().filter(|a| !a.is_empty()) else {
            return direct;
        };
        let key = (account.clone(), configured.to_string());
        // Held across the discovery: concurrent requests wait for its answer.
        let mut slot = lock(&self.routing);
        if let Some(route) = slot.as_ref().and_then(|d| d.route_for(&key)) {
            return route;
        }
        let outcome = routing::discover(self, &account, configured, identity);
        *slot = Some(routing::remember(&account, configured, &outcome));
        drop(slot);
        match outcome {
            Ok(route) => route,
            Err(why) => {
                crate::log::warn(&format!("workspace routing of {account}: {why}"));
                let mut warned = lock(&self.routing_warned);
                if !warned.contains(&account) {
                    warned.push(account.clone());
                    self.rpc.notify(
                        "warning",
                        routing::failure_warning(&account, configured, &why),
                    );
                }
                direct
            }
        }
    }

    fn recover_unauthorized(&self, failed: &Credentials) -> Result<bool, ClientError> {
        let mode = match &*lock(&self.state) {
            State::None | State::ApiKey(_) => return Ok(false),
            State::Managed(_) => AuthMode::Chatgpt,
            State::External(tokens) if tokens.access_token != failed.token => return Ok(true),
            State::External(_) => AuthMode::ChatgptAuthTokens,
        };
        match mode {
            AuthMode::Chatgpt => self.recover_managed(failed),
            _ => self.recover_external(failed),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt(payload: Value) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.s", e.encode("{}"), e.encode(payload.to_string()))
    }

    #[test]
    fn refresh_results_in_both_shapes_and_every_failure() {
        let access = jwt(json!({"email": "a@b.c"}));
        let id = jwt(
            json!({"https://api.openai.com/auth": {"chatgpt_account_id": "org-1", "chatgpt_plan_type": "team"}}),
        );
        let ok = parse_refresh_result(
            &json!({"accessToken": access, "chatgptAccountId": "org-1", "chatgptPlanType": "pro"}),
            None,
        )
        .unwrap();
        assert_eq!(
            (
                ok.account_id.as_str(),
                ok.plan_type.as_str(),
                ok.email.as_deref()
            ),
            ("org-1", "pro", Some("a@b.c"))
        );
        let original =
            parse_refresh_result(&json!({"accessToken": access, "idToken": id}), None).unwrap();
        assert_eq!(
            (original.account_id.as_str(), original.plan_type.as_str()),
            ("org-1", "team")
        );
        let cases = [
            (
                json!({"chatgptAccountId": "org-1"}),
                None,
                "invalid auth refresh response",
            ),
            (
                json!({"accessToken": access}),
                None,
                "invalid auth refresh response",
            ),
            (json!("nope"), None, "invalid auth refresh response"),
            (
                json!({"accessToken": "not-a-jwt", "chatgptAccountId": "org-1"}),
                None,
                "auth refresh returned invalid credentials",
            ),
            (
                json!({"accessToken": access, "chatgptAccountId": "org-2"}),
                Some(vec!["org-1".to_string()]),
                "Login is restricted to workspace(s) org-1, but current credentials belong to org-2",
            ),
        ];
        for (result, forced, want) in cases {
            assert_eq!(
                parse_refresh_result(&result, forced.as_deref()).unwrap_err(),
                want,
                "{result}"
            );
        }
    }

    #[test]
    fn proactive_refresh_rules() {
        let now = crate::time::unix_millis() as i64 / 1000;
        let with = |access: String, last: Option<String>| AuthDotJson {
            auth_mode: Some("chatgpt".into()),
            openai_api_key: None,
            tokens: Some(Tokens {
                id_token: Secret::new("i"),
                access_token: Secret::new(access),
                refresh_token: Secret::new("r"),
                account_id: None,
            }),
            last_refresh: last,
        };
        assert!(AuthManager::needs_proactive_refresh(&with(
            jwt(json!({"exp": now + 60})),
            None
        )));
        assert!(!AuthManager::needs_proactive_refresh(&with(
            jwt(json!({"exp": now + 3600})),
            None
        )));
        let recent = crate::time::rfc3339_millis(crate::time::unix_millis());
        assert!(!AuthManager::needs_proactive_refresh(&with(
            "opaque".into(),
            Some(recent)
        )));
        assert!(AuthManager::needs_proactive_refresh(&with(
            "opaque".into(),
            Some("2020-01-01T00:00:00Z".into())
        )));
        assert!(AuthManager::needs_proactive_refresh(&with(
            "opaque".into(),
            None
        )));
    }
}
