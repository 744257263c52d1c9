//! What the model client sees of authentication ([`AuthProvider`]): the current credentials
//! (refreshing managed tokens before expiry), the ChatGPT workspace route (discovered once per
//! account), and which recovery a 401 gets.

use crate::client::{
    AuthProvider, ChatGptRoute, ClientError, ClientIdentity, CredentialKind, Credentials,
};
use crate::protocol::CodexErrorInfo;
use crate::thread::lock;

use super::{AuthManager, AuthMode, State, routing};

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
