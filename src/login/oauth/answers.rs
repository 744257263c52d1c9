//! Reading the issuer's answers: token fields, device codes and grants, the explanation in
//! an error body, and which refresh failures are permanent. Pure functions, tested by tables.

use std::time::Duration;

use serde_json::Value;

use super::{
    DEFAULT_DEVICE_POLL_INTERVAL, DeviceCode, DeviceGrant, OAuthError, RefreshError, TokenResponse,
};
use crate::secret::Secret;

/// Longest piece of an issuer's non-JSON error body quoted in an error message.
const MAX_ERROR_DETAIL_CHARS: usize = 300;
/// The `error.code` values of a refresh token that can never work again.
const PERMANENT_REFRESH_CODES: [&str; 3] = [
    "refresh_token_expired",
    "refresh_token_reused",
    "refresh_token_invalidated",
];

/// Classifies a failed refresh answer: the three codes of a dead refresh token (as
/// `error.code` or a string `error`) are permanent, anything else transient.
pub(super) fn classify_refresh_failure(url: &str, status: u16, body: &str) -> RefreshError {
    let parsed: Option<Value> = serde_json::from_str(body.trim()).ok();
    let code = parsed.as_ref().and_then(|v| {
        let error = v.get("error")?;
        error
            .as_str()
            .or_else(|| error.get("code").and_then(Value::as_str))
            .map(str::to_string)
    });
    match code {
        Some(code) if PERMANENT_REFRESH_CODES.contains(&code.as_str()) => {
            let why = match code.as_str() {
                "refresh_token_expired" => "has expired",
                "refresh_token_reused" => "was already used",
                _ => "was revoked",
            };
            RefreshError::Permanent {
                message: format!(
                    "Your access token could not be refreshed because your refresh token {why}. Please log out and sign in again."
                ),
                code,
            }
        }
        _ => RefreshError::Transient(format!(
            "token refresh failed: {}",
            status_error(url, status, body)
        )),
    }
}

pub(super) fn parse_device_code(text: &str) -> Result<DeviceCode, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let string = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let device_auth_id = string("device_auth_id").ok_or("no device_auth_id in the answer")?;
    let user_code = string("user_code")
        .or_else(|| string("usercode"))
        .ok_or("no user_code in the answer")?;
    let interval = match value.get("interval") {
        None | Some(Value::Null) => DEFAULT_DEVICE_POLL_INTERVAL,
        Some(v) => {
            let seconds = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            seconds
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| format!("invalid interval {v}"))?
        }
    };
    Ok(DeviceCode {
        device_auth_id: Secret::new(device_auth_id),
        user_code,
        interval,
    })
}

/// Reads a device poll's success answer: the authorization code and its verifier.
pub(super) fn parse_device_grant(text: &str) -> Result<DeviceGrant, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let secret = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
    };
    match (secret("authorization_code"), secret("code_verifier")) {
        (Some(authorization_code), Some(code_verifier)) => Ok(DeviceGrant {
            authorization_code,
            code_verifier,
        }),
        _ => Err("no authorization_code and code_verifier in the answer".to_string()),
    }
}

pub(super) fn status_error(url: &str, status: u16, body: &str) -> OAuthError {
    OAuthError::Status {
        url: url.to_string(),
        status,
        detail: error_detail(body),
    }
}

/// The issuer's explanation in an error body: `error_description`, `error.message`, the
/// error code (`error` as a string or `error.code`), else the start of the body.
pub(super) fn error_detail(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "empty body".to_string();
    }
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let error = value.get("error");
        if let Some(detail) = text(value.get("error_description"))
            .or_else(|| text(error.and_then(|e| e.get("message"))))
            .or_else(|| text(error))
            .or_else(|| text(error.and_then(|e| e.get("code"))))
        {
            return detail;
        }
    }
    let mut detail: String = trimmed.chars().take(MAX_ERROR_DETAIL_CHARS).collect();
    if detail.len() < trimmed.len() {
        detail.push('…');
    }
    detail
}

/// Reads the token fields of a token-endpoint answer (each optional).
pub(super) fn parse_tokens(text: &str) -> Result<TokenResponse, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the answer is not JSON: {e}"))?;
    if !value.is_object() {
        return Err("the answer is not a JSON object".to_string());
    }
    let secret = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
    };
    Ok(TokenResponse {
        id_token: secret("id_token"),
        access_token: secret("access_token"),
        refresh_token: secret("refresh_token"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const URL: &str = "https://auth.example/oauth/token";

    #[test]
    fn refresh_error_classification_table() {
        let permanent = |code: &str| match classify_refresh_failure(URL, 401, code) {
            RefreshError::Permanent { code, message } => {
                assert!(message.contains("sign in again"), "{message}");
                code
            }
            other => panic!("{other:?}"),
        };
        for (body, code) in [
            (
                r#"{"error":{"code":"refresh_token_expired"}}"#,
                "refresh_token_expired",
            ),
            (
                r#"{"error":{"code":"refresh_token_reused","message":"x"}}"#,
                "refresh_token_reused",
            ),
            (
                r#"{"error":{"code":"refresh_token_invalidated"}}"#,
                "refresh_token_invalidated",
            ),
            (
                r#"{"error":"refresh_token_expired"}"#,
                "refresh_token_expired",
            ),
            (
                r#" {"error":"refresh_token_reused","error_description":"used"} "#,
                "refresh_token_reused",
            ),
        ] {
            assert_eq!(permanent(body), code, "{body}");
        }
        for (status, body, message) in [
            (
                500,
                "upstream down",
                "token refresh failed: https://auth.example/oauth/token returned status 500 Internal Server Error: upstream down",
            ),
            (
                400,
                r#"{"error":{"code":"invalid_request","message":"bad grant"}}"#,
                "token refresh failed: https://auth.example/oauth/token returned status 400 Bad Request: bad grant",
            ),
            (
                401,
                r#"{"error":"invalid_grant"}"#,
                "token refresh failed: https://auth.example/oauth/token returned status 401 Unauthorized: invalid_grant",
            ),
            (
                429,
                "",
                "token refresh failed: https://auth.example/oauth/token returned status 429 Too Many Requests: empty body",
            ),
            (
                401,
                r#"{"error":{"code":"token_expired"}}"#,
                "token refresh failed: https://auth.example/oauth/token returned status 401 Unauthorized: token_expired",
            ),
        ] {
            assert_eq!(
                classify_refresh_failure(URL, status, body),
                RefreshError::Transient(message.to_string()),
                "{body}"
            );
        }
    }

    #[test]
    fn error_detail_table() {
        let long = "x".repeat(400);
        for (body, detail) in [
            (
                r#"{"error_description":"bad code","error":"invalid_grant"}"#,
                "bad code".to_string(),
            ),
            (
                r#"{"error":{"message":"nope","code":"c"}}"#,
                "nope".to_string(),
            ),
            (r#"{"error":{"code":"c"}}"#, "c".to_string()),
            (r#"{"error":"invalid_grant"}"#, "invalid_grant".to_string()),
            (r#"{"other":1}"#, r#"{"other":1}"#.to_string()),
            ("  \n", "empty body".to_string()),
            (long.as_str(), format!("{}…", "x".repeat(300))),
        ] {
            assert_eq!(error_detail(body), detail, "{body}");
        }
    }

    #[test]
    fn device_code_answers() {
        let code = parse_device_code(r#"{"device_auth_id":"d","user_code":"U-1","interval":"5"}"#)
            .unwrap();
        assert_eq!(code.device_auth_id.expose(), "d");
        assert_eq!(code.user_code, "U-1");
        assert_eq!(code.interval, Duration::from_secs(5));
        for (interval, expected) in [
            ("3", Duration::from_secs(3)),
            ("0.25", Duration::from_millis(250)),
            ("\" 7 \"", Duration::from_secs(7)),
            ("0", Duration::ZERO),
            ("null", DEFAULT_DEVICE_POLL_INTERVAL),
        ] {
            let text = format!(r#"{{"device_auth_id":"d","usercode":"U","interval":{interval}}}"#);
            assert_eq!(
                parse_device_code(&text).unwrap().interval,
                expected,
                "{text}"
            );
        }
        let absent = parse_device_code(r#"{"device_auth_id":"d","user_code":"U"}"#).unwrap();
        assert_eq!(absent.interval, DEFAULT_DEVICE_POLL_INTERVAL);
        for bad in [
            r#"{"user_code":"U"}"#,
            r#"{"device_auth_id":"d"}"#,
            r#"{"device_auth_id":"d","user_code":"U","interval":"soon"}"#,
            r#"{"device_auth_id":"d","user_code":"U","interval":-1}"#,
            "not json",
        ] {
            assert!(parse_device_code(bad).is_err(), "{bad}");
        }
        assert!(!format!("{code:?}").contains("\"d\""));
    }

    #[test]
    fn token_answers_and_endpoints() {
        let tokens = parse_tokens(r#"{"id_token":"i","access_token":"","extra":1}"#).unwrap();
        assert_eq!(tokens.id_token.unwrap().expose(), "i");
        assert_eq!(tokens.access_token, None);
        assert_eq!(tokens.refresh_token, None);
        assert!(parse_tokens("[]").is_err());
        assert!(parse_tokens("<html>").is_err());
        assert_eq!(
            super::super::endpoint("https://auth.openai.com/", "/oauth/token"),
            "https://auth.openai.com/oauth/token"
        );
        assert_eq!(
            super::super::endpoint("http://127.0.0.1:9", "/oauth/revoke"),
            "http://127.0.0.1:9/oauth/revoke"
        );
    }
}
