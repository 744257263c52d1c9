//! The account methods (auth.md §2–3, models.md §5): `account/read`, `getAuthStatus`,
//! `account/login/start` in its four modes, `account/login/cancel`, `account/logout`,
//! `account/rateLimits/read`, and the notifications `account/login/completed` and
//! `account/updated`. Credentials live in `auth/`; the browser and device-code flows in
//! `login/`; reading usage windows in `client/rate_limits.rs`.
//!
//! This file holds the method table, the notifications, `account/read`, `getAuthStatus` and
//! `account/logout`; `login.rs` starting and cancelling logins; `rate_limits.rs`
//! `account/rateLimits/read`.

mod login;
mod rate_limits;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::{AuthManager, AuthMode};
use crate::rpc::{RequestId, Rpc, RpcError};
use crate::secret::Secret;
use crate::server::{Server, decode};

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
