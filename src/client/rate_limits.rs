//! The usage windows a backend reports (models.md §5): the `x-codex-*` response headers, the
//! `codex.rate_limits` stream event and the `/wham/usage` answer, all read into one
//! [`RateLimitSnapshot`] — the protocol's `RateLimitSnapshot` (`account/rateLimits/updated`,
//! `account/rateLimits/read`). Pure; who emits and stores them is `turn/` / `accounts/`.

use serde::Serialize;
use serde_json::Value;

/// The protocol's `RateLimitSnapshot`. Fields the backend did not report are `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSnapshot {
    /// The metered limit (`codex` for the main one).
    pub limit_id: Option<String>,
    /// Its display name, when reported.
    pub limit_name: Option<String>,
    /// Not reported by these sources.
    pub normal_model_slug: Option<String>,
    /// The short window (e.g. 5 hours).
    pub primary: Option<RateLimitWindow>,
    /// The long window (e.g. a week).
    pub secondary: Option<RateLimitWindow>,
    /// Credits of the account.
    pub credits: Option<CreditsSnapshot>,
    /// Not reported by these sources.
    pub individual_limit: Option<Value>,
    /// Not reported by these sources.
    pub spend_control_reached: Option<bool>,
    /// The plan, when reported.
    pub plan_type: Option<String>,
    /// Not reported by these sources.
    pub rate_limit_reached_type: Option<String>,
}

/// One usage window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitWindow {
    /// Percent used, rounded to a whole number.
    pub used_percent: i64,
    /// The window's length.
    pub window_duration_mins: Option<i64>,
    /// When it resets (unix seconds).
    pub resets_at: Option<i64>,
}

/// `CreditsSnapshot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditsSnapshot {
    /// The account has credits.
    pub has_credits: bool,
    /// Credits are unlimited.
    pub unlimited: bool,
    /// The balance, as the backend spells it.
    pub balance: Option<String>,
}

impl RateLimitSnapshot {
    /// Whether it says anything (a window or credits).
    pub fn has_data(&self) -> bool {
        self.primary.is_some() || self.secondary.is_some() || self.credits.is_some()
    }
}

fn percent(value: f64) -> i64 {
    value.round() as i64
}

/// The snapshot of a response's `x-codex-*` headers (`x-codex-primary-used-percent`,
/// `-window-minutes`, `-reset-at`, the same for `secondary`, and `x-codex-credits-*`); `None`
/// when they report nothing.
pub fn from_headers(header: &dyn Fn(&str) -> Option<String>) -> Option<RateLimitSnapshot> {
    let window = |which: &str| {
        let used: f64 = header(&format!("x-codex-{which}-used-percent"))?
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())?;
        let int = |suffix: &str| {
            header(&format!("x-codex-{which}-{suffix}")).and_then(|v| v.trim().parse::<i64>().ok())
        };
        Some(RateLimitWindow {
            used_percent: percent(used),
            window_duration_mins: int("window-minutes"),
            resets_at: int("reset-at"),
        })
    };
    let flag = |name: &str| {
        header(name).and_then(|v| match v.trim() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        })
    };
    let credits = match (
        flag("x-codex-credits-has-credits"),
        flag("x-codex-credits-unlimited"),
    ) {
        (Some(has_credits), Some(unlimited)) => Some(CreditsSnapshot {
            has_credits,
            unlimited,
            balance: header("x-codex-credits-balance").filter(|b| !b.trim().is_empty()),
        }),
        _ => None,
    };
    let snapshot = RateLimitSnapshot {
        limit_id: Some("codex".to_string()),
        limit_name: header("x-codex-limit-name").filter(|n| !n.trim().is_empty()),
        primary: window("primary"),
        secondary: window("secondary"),
        credits,
        ..Default::default()
    };
    snapshot.has_data().then_some(snapshot)
}

fn credits_of(value: Option<&Value>) -> Option<CreditsSnapshot> {
    let credits = value?;
    Some(CreditsSnapshot {
        has_credits: credits.get("has_credits")?.as_bool()?,
        unlimited: credits.get("unlimited")?.as_bool()?,
        balance: credits.get("balance").and_then(|b| match b {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
    })
}

/// The snapshot of a `codex.rate_limits` stream event: `{rate_limits: {primary: {used_percent,
/// window_minutes, reset_at}, secondary}, credits, plan_type, metered_limit_name}`.
pub fn from_event(event: &Value) -> Option<RateLimitSnapshot> {
    let window = |which: &str| {
        let w = event.get("rate_limits")?.get(which)?;
        Some(RateLimitWindow {
            used_percent: percent(w.get("used_percent")?.as_f64()?),
            window_duration_mins: w.get("window_minutes").and_then(Value::as_i64),
            resets_at: w.get("reset_at").and_then(Value::as_i64),
        })
    };
    let limit_id = event
        .get("metered_limit_name")
        .or_else(|| event.get("limit_name"))
        .and_then(Value::as_str)
        .map(|n| n.trim().to_ascii_lowercase().replace('-', "_"))
        .unwrap_or_else(|| "codex".to_string());
    let snapshot = RateLimitSnapshot {
        limit_id: Some(limit_id),
        primary: window("primary"),
        secondary: window("secondary"),
        credits: credits_of(event.get("credits")),
        plan_type: event
            .get("plan_type")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Default::default()
    };
    snapshot.has_data().then_some(snapshot)
}

/// The snapshot of a `/wham/usage` answer: `{plan_type, rate_limit: {primary_window:
/// {used_percent, limit_window_seconds, reset_after_seconds, reset_at}, secondary_window},
/// credits}`. `now` (unix seconds) turns `reset_after_seconds` into a time when `reset_at` is
/// absent.
pub fn from_usage(body: &Value, now: i64) -> RateLimitSnapshot {
    let window = |which: &str| {
        let w = body.get("rate_limit")?.get(which)?;
        if w.is_null() {
            return None;
        }
        let seconds = w.get("limit_window_seconds").and_then(Value::as_i64);
        Some(RateLimitWindow {
            used_percent: percent(w.get("used_percent")?.as_f64()?),
            window_duration_mins: seconds.map(|s| s / 60),
            resets_at: w.get("reset_at").and_then(Value::as_i64).or_else(|| {
                w.get("reset_after_seconds")
                    .and_then(Value::as_i64)
                    .map(|after| now + after)
            }),
        })
    };
    RateLimitSnapshot {
        limit_id: Some("codex".to_string()),
        primary: window("primary_window"),
        secondary: window("secondary_window"),
        credits: credits_of(body.get("credits")),
        plan_type: body
            .get("plan_type")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn headers() {
        let headers = [
            ("x-codex-primary-used-percent", "12.5"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-at", "1900000000"),
            ("x-codex-secondary-used-percent", "40"),
            ("x-codex-credits-has-credits", "true"),
            ("x-codex-credits-unlimited", "false"),
            ("x-codex-credits-balance", "17.5"),
        ];
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let snap = from_headers(&get).unwrap();
        assert_eq!(
            serde_json::to_value(&snap).unwrap(),
            json!({"limitId": "codex", "limitName": null, "normalModelSlug": null,
                "primary": {"usedPercent": 13, "windowDurationMins": 300, "resetsAt": 1900000000},
                "secondary": {"usedPercent": 40, "windowDurationMins": null, "resetsAt": null},
                "credits": {"hasCredits": true, "unlimited": false, "balance": "17.5"},
                "individualLimit": null, "spendControlReached": null, "planType": null,
                "rateLimitReachedType": null})
        );
        assert_eq!(from_headers(&|_| None), None);
        assert_eq!(
            from_headers(&|n| (n == "x-codex-primary-used-percent").then(|| "NaN".to_string())),
            None
        );
    }

    #[test]
    fn events_and_usage() {
        let event = json!({"type": "codex.rate_limits", "plan_type": "pro",
            "rate_limits": {"primary": {"used_percent": 33.4, "window_minutes": 300, "reset_at": 5}},
            "credits": {"has_credits": false, "unlimited": true, "balance": null}});
        let snap = from_event(&event).unwrap();
        assert_eq!(snap.primary.unwrap().used_percent, 33);
        assert_eq!(snap.plan_type.as_deref(), Some("pro"));
        assert!(snap.credits.unwrap().unlimited);
        assert_eq!(from_event(&json!({"type": "codex.rate_limits"})), None);

        let usage = json!({"plan_type": "pro", "rate_limit": {
            "primary_window": {"used_percent": 21, "limit_window_seconds": 18000, "reset_after_seconds": 600, "reset_at": 1900000000},
            "secondary_window": {"used_percent": 3, "limit_window_seconds": 604800, "reset_after_seconds": 60}},
            "credits": {"has_credits": true, "unlimited": false, "balance": "9.5"}});
        let snap = from_usage(&usage, 1000);
        let primary = snap.primary.unwrap();
        assert_eq!(
            (
                primary.used_percent,
                primary.window_duration_mins,
                primary.resets_at
            ),
            (21, Some(300), Some(1900000000))
        );
        let secondary = snap.secondary.unwrap();
        assert_eq!(secondary.window_duration_mins, Some(10080));
        assert_eq!(secondary.resets_at, Some(1060));
        assert_eq!(snap.plan_type.as_deref(), Some("pro"));
    }
}
