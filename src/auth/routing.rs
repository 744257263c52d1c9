//! Workspace routing of ChatGPT logins (models.md §5): `GET <chatgpt base>/wham/accounts/check`
//! names the account's `workspace_backend_origin` (and an `account_routing_override`); model
//! and catalog requests then go to that origin. Asked once per account and base, lazily, on
//! the thread that first needs it (never the main loop). A failure falls back to the
//! configured base with one `warning` (*decision*: the reference fails the login) and is asked
//! again after [`RETRY_AFTER`].

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{AuthProvider, ChatGptRoute, ClientIdentity};

/// How long a failed discovery is trusted before the backend is asked again.
pub const RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// What a discovery found for one account and configured base.
#[derive(Debug, Clone)]
pub(super) struct Discovered {
    /// `(account id, configured base)` it answers for.
    key: (String, String),
    route: ChatGptRoute,
    /// When it failed (`None`: it succeeded and holds).
    failed_at: Option<Instant>,
}

impl Discovered {
    /// The route, if this discovery answers for `key` and is not a failure due for a retry.
    pub(super) fn route_for(&self, key: &(String, String)) -> Option<ChatGptRoute> {
        let current = self.failed_at.is_none_or(|at| at.elapsed() < RETRY_AFTER);
        (self.key == *key && current).then(|| self.route.clone())
    }
}

/// `<base>/wham/accounts/check` for a `…/backend-api` base, else `<base>/api/codex/accounts/check`
/// (the two path styles of the ChatGPT backend).
fn check_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.contains("/backend-api") {
        format!("{base}/wham/accounts/check")
    } else {
        format!("{base}/api/codex/accounts/check")
    }
}

/// The path of `url` after its origin (`https://h:1/backend-api` → `/backend-api`).
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("", |at| &rest[at..])
}

/// An `https://host[:port]` origin without credentials, path, query or fragment.
fn is_https_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("https://") else {
        return false;
    };
    let host = rest.strip_suffix('/').unwrap_or(rest);
    !host.is_empty() && !host.contains(['/', '?', '#', '@', ' '])
}

/// The entry of `account` in an accounts-check answer (a list of entries, or a map of
/// `{account: entry}`).
fn entry_for<'a>(body: &'a Value, account: &str) -> Option<&'a Value> {
    let id_of = |e: &Value| {
        e.get("id")
            .or_else(|| e.get("account_id"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match body.get("accounts")? {
        Value::Array(entries) => entries
            .iter()
            .find(|e| id_of(e).as_deref() == Some(account)),
        Value::Object(map) => map.iter().find_map(|(id, envelope)| {
            let entry = envelope.get("account")?;
            (id_of(entry).unwrap_or_else(|| id.clone()) == account).then_some(entry)
        }),
        _ => None,
    }
}

/// Reads the route of `account` from an accounts-check answer.
pub(super) fn route_from(
    body: &Value,
    account: &str,
    configured: &str,
) -> Result<ChatGptRoute, String> {
    let entry = entry_for(body, account)
        .ok_or_else(|| format!("account {account} is not in the answer"))?;
    let routing_override = match entry
        .get("account_routing_override")
        .and_then(Value::as_str)
    {
        None | Some("NO_CONSTRAINT") => None,
        Some(value @ ("us" | "us_cr")) => Some(value.to_string()),
        Some(other) => return Err(format!("unknown account_routing_override `{other}`")),
    };
    let base_url = match entry
        .get("workspace_backend_origin")
        .and_then(Value::as_str)
    {
        None | Some("NO_CONSTRAINT") => configured.to_string(),
        Some(origin) if is_https_origin(origin) => {
            format!("{}{}", origin.trim_end_matches('/'), path_of(configured))
        }
        Some(other) => return Err(format!("`{other}` is not an https origin")),
    };
    Ok(ChatGptRoute {
        base_url,
        routing_override,
    })
}

/// Asks the backend for the route of the current ChatGPT account. `Err` names why it failed.
pub(super) fn discover(
    auth: &dyn AuthProvider,
    account: &str,
    configured: &str,
    identity: &ClientIdentity,
) -> Result<ChatGptRoute, String> {
    let url = check_url(configured);
    let response = crate::client::get(auth, &url, identity, &[])?;
    if response.status != 200 {
        return Err(format!("GET {url} answered {}", response.status));
    }
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("GET {url} answered something that is not JSON: {e}"))?;
    route_from(&body, account, configured)
}

/// A discovery's outcome as kept: the route, or the configured base after a failure.
pub(super) fn remember(
    account: &str,
    configured: &str,
    outcome: &Result<ChatGptRoute, String>,
) -> Discovered {
    let key = (account.to_string(), configured.to_string());
    match outcome {
        Ok(route) => Discovered {
            key,
            route: route.clone(),
            failed_at: None,
        },
        Err(_) => Discovered {
            key,
            route: ChatGptRoute {
                base_url: configured.to_string(),
                routing_override: None,
            },
            failed_at: Some(Instant::now()),
        },
    }
}

/// The `warning` sent once per account when discovery failed.
pub(super) fn failure_warning(account: &str, configured: &str, why: &str) -> Value {
    json!({
        "message": format!(
            "Workspace routing of ChatGPT account {account} could not be discovered ({why}); requests go to {configured}."
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The expected base and override, or a part of the error.
    type Want = Result<(&'static str, Option<&'static str>), &'static str>;

    #[test]
    fn routes_from_answers() {
        let configured = "https://chat.example/backend-api";
        let cases: &[(Value, Want)] = &[
            (
                json!({"accounts": [{"id": "acc", "workspace_backend_origin": "NO_CONSTRAINT", "account_routing_override": "NO_CONSTRAINT"}]}),
                Ok((configured, None)),
            ),
            (
                json!({"accounts": [{"id": "other"}, {"id": "acc", "workspace_backend_origin": "https://us.example", "account_routing_override": "us"}]}),
                Ok(("https://us.example/backend-api", Some("us"))),
            ),
            (
                json!({"accounts": {"acc": {"account": {"workspace_backend_origin": "https://eu.example:8443/"}}}}),
                Ok(("https://eu.example:8443/backend-api", None)),
            ),
            (
                json!({"accounts": [{"account_id": "acc", "workspace_backend_origin": null}]}),
                Ok((configured, None)),
            ),
            (
                json!({"accounts": [{"id": "other"}]}),
                Err("not in the answer"),
            ),
            (
                json!({"accounts": [{"id": "acc", "workspace_backend_origin": "http://plain.example"}]}),
                Err("not an https origin"),
            ),
            (
                json!({"accounts": [{"id": "acc", "workspace_backend_origin": "https://x.example/path"}]}),
                Err("not an https origin"),
            ),
            (
                json!({"accounts": [{"id": "acc", "account_routing_override": "mars"}]}),
                Err("unknown account_routing_override"),
            ),
            (json!({"nope": 1}), Err("not in the answer")),
        ];
        for (body, want) in cases {
            match (route_from(body, "acc", configured), want) {
                (Ok(route), Ok((base, over))) => {
                    assert_eq!(route.base_url, *base, "{body}");
                    assert_eq!(route.routing_override.as_deref(), *over, "{body}");
                }
                (Err(e), Err(part)) => assert!(e.contains(part), "{body}: {e}"),
                (got, _) => panic!("{body}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn check_urls_follow_the_path_style() {
        assert_eq!(
            check_url("https://chatgpt.com/backend-api/"),
            "https://chatgpt.com/backend-api/wham/accounts/check"
        );
        assert_eq!(
            check_url("https://h.example"),
            "https://h.example/api/codex/accounts/check"
        );
    }
}
