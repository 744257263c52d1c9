//! The headers of every request to a streamable-HTTP server: the configured table, those read
//! from the environment, and the bearer token variable.

use super::{McpError, Secret};

/// The headers of every request: `Authorization` from `bearer_token_env_var`, the configured
/// `http_headers`, and `env_http_headers` read from the environment (a missing variable there
/// is skipped with a warning; a missing bearer variable, or a value that cannot be a header, is
/// an error).
pub fn resolve_headers(
    bearer_var: Option<&str>,
    plain: &std::collections::BTreeMap<String, Secret>,
    from_env: &std::collections::BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Secret)>, McpError> {
    let mut headers: Vec<(String, Secret)> =
        plain.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (header, var) in from_env {
        match env(var).filter(|v| !v.is_empty()) {
            Some(value) => headers.push((header.clone(), Secret::new(value))),
            None => crate::log::warn(&format!(
                "env_http_headers: environment variable {var} for header {header} is not set; header left out"
            )),
        }
    }
    if let Some(var) = bearer_var {
        let token = env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
            McpError::Transport(format!(
                "environment variable {var} (bearer_token_env_var) is not set"
            ))
        })?;
        headers.push((
            "authorization".to_string(),
            Secret::new(format!("Bearer {token}")),
        ));
    }
    for (name, value) in &headers {
        super::exchange::check_header(name, value.expose())?;
    }
    Ok(headers)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn headers_come_from_the_table_the_environment_and_the_bearer_variable() {
        let plain: BTreeMap<String, Secret> = [("X-A".to_string(), Secret::new("1"))].into();
        let from_env: BTreeMap<String, String> = [
            ("X-B".to_string(), "B_VAR".to_string()),
            ("X-C".to_string(), "MISSING".to_string()),
        ]
        .into();
        let env = |k: &str| match k {
            "B_VAR" => Some("b".to_string()),
            "TOKEN" => Some("tok".to_string()),
            _ => None,
        };
        let headers = resolve_headers(Some("TOKEN"), &plain, &from_env, &env).unwrap();
        let shown: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                ("X-A".to_string(), "1".to_string()),
                ("X-B".to_string(), "b".to_string()),
                ("authorization".to_string(), "Bearer tok".to_string()),
            ]
        );
        let err = resolve_headers(Some("NOPE"), &plain, &from_env, &env).unwrap_err();
        assert!(err.to_string().contains("NOPE"), "{err}");
        let bad: BTreeMap<String, Secret> =
            [("X-Bad".to_string(), Secret::new("line\nbreak"))].into();
        let err = resolve_headers(None, &bad, &BTreeMap::new(), &env).unwrap_err();
        assert_eq!(err.to_string(), "header X-Bad: value is not a valid header");
    }
}
