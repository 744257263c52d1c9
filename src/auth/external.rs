//! Client-owned ChatGPT tokens after a 401: one `account/chatgptAuthTokens/refresh` request to
//! the client, shared by every request that failed with the same token, and validating its
//! answer (both shapes, the forced workspace).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::{ClientError, Credentials};
use crate::secret::Secret;
use crate::thread::lock;

use super::{
    AuthManager, EXTERNAL_REFRESH_TIMEOUT, ExternalTokens, State, auth_error, jwt, plan_or_unknown,
    workspace_mismatch,
};

/// One outstanding refresh that concurrent 401s share.
pub(super) struct Flight {
    /// The token the refresh replaces.
    for_token: Secret,
    result: Mutex<Option<Result<(), ClientError>>>,
    done: Condvar,
}

impl AuthManager {
    /// 401 with external tokens: one refresh request to the client, shared by every request
    /// that failed with the same token.
    pub(super) fn recover_external(&self, failed: &Credentials) -> Result<bool, ClientError> {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshResult {
    access_token: Option<String>,
    chatgpt_account_id: Option<String>,
    chatgpt_plan_type: Option<String>,
    id_token: Option<String>,
}

/// Validates the client's answer to `account/chatgptAuthTokens/refresh` (both shapes).
pub(super) fn parse_refresh_result(
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
