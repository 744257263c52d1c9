//! JWT claims as auth.md §1 reads them: no signature check (the token came from the issuer or
//! the embedding app; the backend verifies it), just the base64url JSON payload.

use base64::Engine;
use serde_json::Value;

/// The claims codex-lite uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `email`, or `https://api.openai.com/profile`.`email`.
    pub email: Option<String>,
    /// `https://api.openai.com/auth`.`chatgpt_plan_type`.
    pub plan_type: Option<String>,
    /// `…/auth`.`chatgpt_user_id`, else `user_id`.
    pub user_id: Option<String>,
    /// `…/auth`.`chatgpt_account_id`: the workspace.
    pub account_id: Option<String>,
    /// Expiry, unix seconds.
    pub exp: Option<i64>,
}

const AUTH_CLAIM: &str = "https://api.openai.com/auth";
const PROFILE_CLAIM: &str = "https://api.openai.com/profile";

/// Reads the claims of a JWT: three dot-separated base64url parts whose middle one is a JSON
/// object. `Err` when the token does not have that shape.
pub fn parse(token: &str) -> Result<Claims, &'static str> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("a JWT has three parts");
    };
    if header.is_empty() || payload.is_empty() {
        return Err("empty JWT part");
    }
    let _ = signature;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = engine
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "JWT payload is not base64url")?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| "JWT payload is not JSON")?;
    let Value::Object(map) = value else {
        return Err("JWT payload is not a JSON object");
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let auth = map.get(AUTH_CLAIM);
    let field = |name: &str| text(auth.and_then(|a| a.get(name)));
    Ok(Claims {
        email: text(map.get("email"))
            .or_else(|| text(map.get(PROFILE_CLAIM).and_then(|p| p.get("email")))),
        plan_type: field("chatgpt_plan_type"),
        user_id: field("chatgpt_user_id").or_else(|| field("user_id")),
        account_id: field("chatgpt_account_id"),
        exp: map.get("exp").and_then(Value::as_i64),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Builds an unsigned JWT around `payload` (test helper, mirrored in the integration tests).
    fn jwt(payload: &Value) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"none"}"#),
            e.encode(payload.to_string())
        )
    }

    #[test]
    fn reads_the_claims() {
        let token = jwt(&json!({
            "email": "a@b.c", "exp": 123,
            "https://api.openai.com/auth": {"chatgpt_plan_type": "plus", "chatgpt_user_id": "u1", "chatgpt_account_id": "org-1"}
        }));
        assert_eq!(
            parse(&token).unwrap(),
            Claims {
                email: Some("a@b.c".into()),
                plan_type: Some("plus".into()),
                user_id: Some("u1".into()),
                account_id: Some("org-1".into()),
                exp: Some(123)
            }
        );
        let token = jwt(
            &json!({"https://api.openai.com/profile": {"email": "p@q.r"}, "https://api.openai.com/auth": {"user_id": "u2"}}),
        );
        let claims = parse(&token).unwrap();
        assert_eq!(claims.email.as_deref(), Some("p@q.r"));
        assert_eq!(claims.user_id.as_deref(), Some("u2"));
    }

    #[test]
    fn rejects_what_is_not_a_jwt() {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for bad in [
            "".to_string(),
            "abc".to_string(),
            "a.b".to_string(),
            "a.b.c.d".to_string(),
            format!("h.{}.s", e.encode("not json")),
            format!("h.{}.s", e.encode("[1]")),
            "h.!!!.s".to_string(),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
