//! The account methods (auth.md §2–3, models.md §5): `account/read`, `getAuthStatus`,
//! `account/login/start` in its four modes, `account/login/cancel`, `account/logout`,
//! `account/rateLimits/read`, and the notifications `account/login/completed` and
//! `account/updated`. Credentials live in `auth/`; the browser and device-code flows in
//! `login/`; reading usage windows in `client/rate_limits.rs`.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::{AuthManager, AuthMode, ExternalTokens, jwt};
use crate::config::ForcedLoginMethod;
use crate::login::{LoginOptions, LoginSuccess};
use crate::rpc::{RequestId, Rpc, RpcError};
use crate::secret::Secret;
use crate::server::{Server, decode};
use crate::thread::lock;

const EXTERNAL_ACTIVE: &str = "External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it.";

/// A browser or device-code login waiting for the user.
pub struct PendingLogin {
    login_id: String,
    /// Ends the login; true when this call ended it (it was still pending).
    cancel: Box<dyn Fn() -> bool + Send>,
}

/// The one pending login of the connection, shared with the login threads.
pub type PendingSlot = Arc<Mutex<Option<PendingLogin>>>;

#[derive(Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum LoginParams {
    ApiKey {
        api_key: String,
    },
    Chatgpt {},
    ChatgptDeviceCode {},
    ChatgptAuthTokens {
        access_token: String,
        #[serde(default)]
        id_token: Option<String>,
        #[serde(default)]
        chatgpt_account_id: Option<String>,
        #[serde(default)]
        chatgpt_plan_type: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadParams {
    #[serde(default)]
    refresh_token: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusParams {
    #[serde(default)]
    include_token: bool,
    #[serde(default)]
    refresh_token: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelParams {
    login_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginCompleted<'a> {
    login_id: Option<&'a str>,
    success: bool,
    error: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountUpdated<'a> {
    auth_mode: Option<&'static str>,
    plan_type: Option<&'a str>,
}

/// Sends `account/login/completed` (and, on success, `account/updated`).
fn announce_login(rpc: &Rpc, auth: &AuthManager, login_id: Option<&str>, error: Option<&str>) {
    rpc.notify(
        "account/login/completed",
        LoginCompleted {
            login_id,
            success: error.is_none(),
            error,
        },
    );
    if error.is_none() {
        announce_account(rpc, auth);
    }
}

fn announce_account(rpc: &Rpc, auth: &AuthManager) {
    let view = auth.view();
    rpc.notify(
        "account/updated",
        AccountUpdated {
            auth_mode: view.mode.map(AuthMode::as_str),
            plan_type: view.plan_type.as_deref(),
        },
    );
}

fn account_json(auth: &AuthManager) -> Value {
    let view = auth.view();
    match view.mode {
        None => Value::Null,
        Some(AuthMode::ApiKey) => json!({"type": "apiKey"}),
        Some(_) => json!({"type": "chatgpt", "email": view.email, "planType": view.plan_type}),
    }
}

fn internal(e: anyhow::Error) -> RpcError {
    RpcError::internal(format!("{e:#}"))
}

impl Server {
    /// Dispatches account methods; `None` when `method` is not
    /// one of them (the caller answers -32601), else the outcome (the caller answers errors).
    pub fn handle_account_request(
        &mut self,
        id: &RequestId,
        method: &str,
        params: Option<Value>,
    ) -> Option<Result<(), RpcError>> {
        Some(match method {
            "account/read" => decode(params).map(|p| self.account_read(id, p)),
            "getAuthStatus" => decode(params).map(|p| self.auth_status(id, p)),
            "account/login/start" => decode(params).and_then(|p| self.login_start(id, p)),
            "account/login/cancel" => decode(params).map(|p| self.login_cancel(id, p)),
            "account/logout" => self.logout(id),
            "account/rateLimits/read" => self.rate_limits_read(id),
            _ => return None,
        })
    }

    fn requires_openai_auth(&self) -> bool {
        self.config.provider().requires_openai_auth
    }

    /// Runs `answer` at once, or after a managed token refresh on its own thread (the main loop
    /// never waits on the network).
    fn after_optional_refresh(
        &self,
        id: &RequestId,
        refresh: bool,
        answer: impl FnOnce(&AuthManager) -> Value + Send + 'static,
    ) {
        if !refresh || self.auth.is_external() {
            self.rpc.respond(id, answer(&self.auth));
            return;
        }
        let (rpc, auth, request_id) = (self.rpc.clone(), self.auth.clone(), id.clone());
        let spawned = std::thread::Builder::new()
            .name("account-refresh".into())
            .spawn(move || match auth.refresh_managed_now() {
                Ok(()) => rpc.respond(&request_id, answer(&auth)),
                Err(e) => rpc.respond_error(&request_id, &RpcError::invalid_request(e.message)),
            });
        if let Err(e) = spawned {
            self.rpc.respond_error(
                id,
                &RpcError::internal(format!("cannot start the refresh: {e}")),
            );
        }
    }

    fn account_read(&mut self, id: &RequestId, params: ReadParams) {
        let requires = self.requires_openai_auth();
        self.after_optional_refresh(
            id,
            params.refresh_token,
            move |auth| json!({"account": account_json(auth), "requiresOpenaiAuth": requires}),
        );
    }

    fn auth_status(&mut self, id: &RequestId, params: StatusParams) {
        let requires = self.requires_openai_auth();
        self.after_optional_refresh(id, params.refresh_token, move |auth| {
            let token = if params.include_token {
                auth.bearer()
            } else {
                None
            };
            json!({
                "authMethod": auth.view().mode.map(AuthMode::as_str),
                "authToken": token.as_ref().map(Secret::expose),
                "requiresOpenaiAuth": requires,
            })
        });
    }

    /// Cancels the pending browser/device login, if any (its `login/completed` reports failure).
    fn cancel_pending_login(&self) -> Option<String> {
        let pending = lock(&self.logins).take()?;
        let _ = (pending.cancel)();
        Some(pending.login_id)
    }

    fn login_options(&self) -> LoginOptions {
        let originator = self
            .originator()
            .unwrap_or_else(|| "codex-lite".to_string());
        LoginOptions::from_config(&self.config, &originator)
    }

    fn login_start(&mut self, id: &RequestId, params: LoginParams) -> Result<(), RpcError> {
        match params {
            LoginParams::ApiKey { api_key } => {
                if self.auth.is_external() {
                    return Err(RpcError::invalid_request(EXTERNAL_ACTIVE));
                }
                if self.config.forced_login_method == Some(ForcedLoginMethod::Chatgpt) {
                    return Err(RpcError::invalid_request(
                        "API key login is disabled. Use ChatGPT login instead.",
                    ));
                }
                if api_key.trim().is_empty() {
                    return Err(RpcError::invalid_params("apiKey must not be empty"));
                }
                self.auth
                    .set_api_key(Secret::new(api_key.trim()))
                    .map_err(internal)?;
                self.rpc.respond(id, json!({"type": "apiKey"}));
                self.cancel_pending_login();
                announce_login(&self.rpc, &self.auth, None, None);
                Ok(())
            }
            LoginParams::Chatgpt {} => {
                self.check_managed_login_allowed()?;
                let (slot, rpc, auth) = (self.logins.clone(), self.rpc.clone(), self.auth.clone());
                let Completion {
                    callback,
                    id: login_id_cell,
                } = completion(slot.clone(), rpc, auth);
                let login = crate::login::start_browser_login(self.login_options(), callback)
                    .map_err(|e| RpcError::internal(format!("cannot start the login: {e:#}")))?;
                crate::log::info(&format!(
                    "browser login {} waiting on 127.0.0.1:{}",
                    login.login_id, login.callback_port
                ));
                self.rpc.respond(id, json!({"type": "chatgpt", "loginId": login.login_id, "authUrl": login.auth_url}));
                self.cancel_pending_login();
                let login_id = login.login_id.clone();
                *lock(&slot) = Some(PendingLogin {
                    login_id: login_id.clone(),
                    cancel: Box::new(move || login.cancel()),
                });
                login_id_cell.set(login_id);
                Ok(())
            }
            LoginParams::ChatgptDeviceCode {} => {
                self.check_managed_login_allowed()?;
                let (slot, rpc, auth, id) = (
                    self.logins.clone(),
                    self.rpc.clone(),
                    self.auth.clone(),
                    id.clone(),
                );
                let options = self.login_options();
                std::thread::Builder::new()
                    .name("login-device-start".into())
                    .spawn(move || {
                        let Completion {
                            callback,
                            id: login_id_cell,
                        } = completion(slot.clone(), rpc.clone(), auth);
                        match crate::login::start_device_login(options, callback) {
                            Ok(login) => {
                                rpc.respond(
                                    &id,
                                    json!({
                                        "type": "chatgptDeviceCode",
                                        "loginId": login.login_id,
                                        "verificationUrl": login.verification_url,
                                        "userCode": login.user_code,
                                    }),
                                );
                                let previous = lock(&slot).take();
                                if let Some(previous) = previous {
                                    let _ = (previous.cancel)();
                                }
                                let login_id = login.login_id.clone();
                                *lock(&slot) = Some(PendingLogin {
                                    login_id: login_id.clone(),
                                    cancel: Box::new(move || login.cancel()),
                                });
                                login_id_cell.set(login_id);
                            }
                            Err(e) => rpc.respond_error(
                                &id,
                                &RpcError::internal(format!(
                                    "cannot start the device login: {e:#}"
                                )),
                            ),
                        }
                    })
                    .map_err(|e| {
                        RpcError::internal(format!("cannot start the device login: {e}"))
                    })?;
                Ok(())
            }
            LoginParams::ChatgptAuthTokens {
                access_token,
                id_token,
                chatgpt_account_id,
                chatgpt_plan_type,
            } => {
                let id_claims = id_token.as_deref().and_then(|t| jwt::parse(t).ok());
                let account_id = chatgpt_account_id
                    .or_else(|| id_claims.as_ref().and_then(|c| c.account_id.clone()))
                    .ok_or_else(|| {
                        RpcError::invalid_params("missing field `chatgptAccountId` (or an `idToken` with a chatgpt_account_id claim)")
                    })?;
                if self.config.forced_login_method == Some(ForcedLoginMethod::Api) {
                    return Err(RpcError::invalid_request(
                        "External ChatGPT auth is disabled. Use API key login instead.",
                    ));
                }
                if let Some(allowed) = &self.config.forced_chatgpt_workspace_id
                    && !allowed.contains(&account_id)
                {
                    let list: Vec<String> = allowed.iter().map(|w| format!("{w:?}")).collect();
                    return Err(RpcError::invalid_request(format!(
                        "External auth must use one of workspace(s) [{}], but received {account_id:?}.",
                        list.join(", ")
                    )));
                }
                let access_claims = jwt::parse(&access_token);
                let (Ok(access_claims), true) =
                    (access_claims, id_token.is_none() || id_claims.is_some())
                else {
                    return Err(RpcError::new(
                        crate::rpc::INVALID_PARAMS,
                        "invalid ID token format",
                    ));
                };
                let claims = id_claims.unwrap_or(access_claims);
                self.auth.set_external(ExternalTokens {
                    access_token: Secret::new(access_token),
                    plan_type: crate::auth::plan_or_unknown(chatgpt_plan_type.as_deref(), &claims),
                    email: claims.email,
                    account_id,
                });
                self.rpc.respond(id, json!({"type": "chatgptAuthTokens"}));
                self.cancel_pending_login();
                announce_login(&self.rpc, &self.auth, None, None);
                Ok(())
            }
        }
    }

    /// `account/rateLimits/read`: a ChatGPT login's usage windows, fresh from `GET <chatgpt
    /// base>/wham/usage` on its own thread (the last reported snapshot when that fails); an
    /// error for API keys and logged-out users.
    fn rate_limits_read(&mut self, id: &RequestId) -> Result<(), RpcError> {
        let chatgpt = matches!(
            self.auth.view().mode,
            Some(AuthMode::Chatgpt | AuthMode::ChatgptAuthTokens)
        );
        if !chatgpt {
            return Err(RpcError::invalid_request(
                "chatgpt authentication required to read rate limits",
            ));
        }
        let (originator, user_agent) = self.client_identity();
        let identity = crate::client::ClientIdentity {
            originator,
            user_agent,
        };
        let (rpc, auth, store, id) = (
            self.rpc.clone(),
            self.auth.clone(),
            self.rate_limits.clone(),
            id.clone(),
        );
        let configured = self.config.chatgpt_base_url.clone();
        std::thread::Builder::new()
            .name("rate-limits-read".into())
            .spawn(move || {
                let answer = |snapshot: &crate::client::rate_limits::RateLimitSnapshot| {
                    json!({
                        "rateLimits": snapshot,
                        "rateLimitsByLimitId": {"codex": snapshot},
                        "ordinaryUsageAllowed": null,
                        "rateLimitResetCredits": null,
                        "accountId": null,
                        "rateLimitUpsell": null,
                    })
                };
                match fetch_usage(auth.as_ref(), &configured, &identity) {
                    Ok(snapshot) => rpc.respond(&id, answer(&snapshot)),
                    Err(why) => match store.latest() {
                        Some(snapshot) => {
                            crate::log::warn(&format!(
                                "{why}; answering with the last reported rate limits"
                            ));
                            rpc.respond(&id, answer(&snapshot));
                        }
                        None => rpc.respond_error(
                            &id,
                            &RpcError::internal(format!("failed to read rate limits: {why}")),
                        ),
                    },
                }
            })
            .map_err(|e| RpcError::internal(format!("cannot read rate limits: {e}")))?;
        Ok(())
    }

    fn check_managed_login_allowed(&self) -> Result<(), RpcError> {
        if self.auth.is_external() {
            return Err(RpcError::invalid_request(EXTERNAL_ACTIVE));
        }
        if self.config.forced_login_method == Some(ForcedLoginMethod::Api) {
            return Err(RpcError::invalid_request(
                "ChatGPT login is disabled. Use API key login instead.",
            ));
        }
        Ok(())
    }

    fn login_cancel(&mut self, id: &RequestId, params: CancelParams) {
        let pending = {
            let mut slot = lock(&self.logins);
            match slot.as_ref() {
                Some(p) if p.login_id == params.login_id => slot.take(),
                _ => None,
            }
        };
        // The flow may report its end from inside `cancel`; the answer goes first.
        let status = if pending.is_some() {
            "canceled"
        } else {
            "notFound"
        };
        self.rpc.respond(id, json!({"status": status}));
        if let Some(p) = pending
            && !(p.cancel)()
        {
            crate::log::debug(&format!("login {} had already ended", params.login_id));
        }
    }

    fn logout(&mut self, id: &RequestId) -> Result<(), RpcError> {
        let refresh_token = self.auth.logout().map_err(internal)?;
        self.rpc.respond(id, json!({}));
        self.cancel_pending_login();
        announce_account(&self.rpc, &self.auth);
        if let Some(token) = refresh_token {
            let issuer = self.auth.issuer().to_string();
            // Best effort: the local credentials are already gone whatever the issuer says.
            let _ = std::thread::Builder::new()
                .name("logout-revoke".into())
                .spawn(move || {
                    if let Err(e) = crate::login::oauth::revoke(&issuer, &token) {
                        crate::log::warn(&format!("revoking the refresh token failed: {e}"));
                    }
                });
        }
        Ok(())
    }
}

/// `GET <chatgpt base>/wham/usage` (`/api/codex/usage` for bases without `/backend-api`),
/// through the workspace's route, read into a snapshot.
fn fetch_usage(
    auth: &AuthManager,
    configured: &str,
    identity: &crate::client::ClientIdentity,
) -> Result<crate::client::rate_limits::RateLimitSnapshot, String> {
    use crate::client::AuthProvider;
    let route = auth.chatgpt_route(configured, identity);
    let base = route.base_url.trim_end_matches('/');
    let url = if base.contains("/backend-api") {
        format!("{base}/wham/usage")
    } else {
        format!("{base}/api/codex/usage")
    };
    let extra: Vec<(&str, &str)> = route
        .routing_override
        .as_deref()
        .map(|v| ("x-openai-account-routing-override", v))
        .into_iter()
        .collect();
    let response = crate::client::get(auth, &url, identity, &extra)?;
    if response.status != 200 {
        return Err(format!(
            "GET {url} answered {}: {}",
            response.status,
            response.snippet()
        ));
    }
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("GET {url} answered something that is not JSON: {e}"))?;
    Ok(crate::client::rate_limits::from_usage(
        &body,
        crate::time::unix_seconds() as i64,
    ))
}

/// The completion of a browser/device login (persist, clear the pending slot, notify) and the
/// latch that holds it back until the handler has answered `account/login/start` and
/// registered the login: the answer always precedes `account/login/completed`.
struct Completion {
    callback: crate::login::LoginCallback,
    id: Arc<IdLatch>,
}

/// A login id set once, waited for by the completion.
#[derive(Default)]
struct IdLatch {
    id: Mutex<Option<String>>,
    set: std::sync::Condvar,
}

impl IdLatch {
    fn set(&self, id: String) {
        *lock(&self.id) = Some(id);
        self.set.notify_all();
    }

    /// The id once set (the handler sets it right after answering; the bound only guards a
    /// handler that failed in between).
    fn wait(&self) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut id = lock(&self.id);
        while id.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            id = self
                .set
                .wait_timeout(id, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        id.clone().unwrap_or_default()
    }
}

fn completion(slot: PendingSlot, rpc: Rpc, auth: Arc<AuthManager>) -> Completion {
    let id = Arc::new(IdLatch::default());
    let latch = id.clone();
    let callback: crate::login::LoginCallback =
        Box::new(move |outcome: Result<LoginSuccess, String>| {
            let login_id = latch.wait();
            {
                let mut pending = lock(&slot);
                if pending.as_ref().is_some_and(|p| p.login_id == login_id) {
                    *pending = None;
                }
            }
            let error = match outcome {
                Ok(success) if auth.is_external() => {
                    drop(success);
                    Some(EXTERNAL_ACTIVE.to_string())
                }
                Ok(success) => auth
                    .set_managed(success.tokens, success.api_key)
                    .err()
                    .map(|e| format!("failed to save the login: {e:#}")),
                Err(message) => Some(message),
            };
            announce_login(&rpc, &auth, Some(&login_id), error.as_deref());
        });
    Completion { callback, id }
}
