//! Starting and cancelling a login (`account/login/start` in its four modes,
//! `account/login/cancel`): the API key and external tokens at once, the browser and
//! device-code flows on their own threads, and the completion that persists a finished login and
//! announces it only after `account/login/start` was answered.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::{
    CancelParams, EXTERNAL_ACTIVE, LoginParams, PendingLogin, PendingSlot, announce_login, internal,
};
use crate::auth::{AuthManager, ExternalTokens, jwt};
use crate::config::ForcedLoginMethod;
use crate::login::{LoginOptions, LoginSuccess};
use crate::rpc::{RequestId, Rpc, RpcError};
use crate::secret::Secret;
use crate::server::Server;
use crate::thread::lock;

impl Server {
    /// Cancels the pending browser/device login, if any (its `login/completed` reports failure).
    pub(super) fn cancel_pending_login(&self) -> Option<String> {
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

    pub(super) fn login_start(
        &mut self,
        id: &RequestId,
        params: LoginParams,
    ) -> Result<(), RpcError> {
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

    pub(super) fn login_cancel(&mut self, id: &RequestId, params: CancelParams) {
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
