//! `account/rateLimits/read`: a ChatGPT login's usage windows fetched on their own thread from
//! the usage endpoint through the workspace's route, or the last reported snapshot.

use serde_json::{Value, json};

use crate::auth::{AuthManager, AuthMode};
use crate::rpc::{RequestId, RpcError};
use crate::server::Server;

impl Server {
    /// `account/rateLimits/read`: a ChatGPT login's usage windows, fresh from `GET <chatgpt
    /// base>/wham/usage` on its own thread (the last reported snapshot when that fails); an
    /// error for API keys and logged-out users.
    pub(super) fn rate_limits_read(&mut self, id: &RequestId) -> Result<(), RpcError> {
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
