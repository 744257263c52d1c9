//! Unit tests of validating the client's refreshed tokens and of when managed tokens are
//! refreshed before use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use serde_json::{Value, json};

use super::external::parse_refresh_result;
use super::storage::{AuthDotJson, Tokens};
use super::*;

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
