//! One catalog fetch: `GET <base>/models?client_version=0.169.0` with the user's credentials,
//! `If-None-Match` when a cached copy has an ETag, and what the answer means. Runs on a
//! `models-fetch` thread (see `mod.rs`), never on the main loop.

use serde::Deserialize;
use serde_json::Value;

use super::ModelInfo;
use crate::client::{AuthProvider, ClientIdentity, get};

/// What a fetch produced.
#[derive(Debug)]
pub enum FetchOutcome {
    /// A new, well-formed catalog: the raw entries (kept as received for the cache), their
    /// parsed form, and the ETag.
    Fresh {
        /// Entries as received.
        raw: Vec<Value>,
        /// Entries as read.
        models: Vec<ModelInfo>,
        /// The `ETag` header.
        etag: Option<String>,
    },
    /// 304: the cached catalog is still current.
    NotModified,
    /// The backend could not be reached or refused (the message says why).
    Failed(String),
    /// The backend answered 200 with something that is not a usable catalog.
    Malformed(String),
}

#[derive(Deserialize)]
struct CatalogBody {
    models: Vec<Value>,
}

/// Reads a catalog body: `{"models":[ModelInfo…]}` with at least one entry, every entry
/// readable (a slug string, known field types).
pub fn parse_catalog(body: &[u8]) -> Result<(Vec<Value>, Vec<ModelInfo>), String> {
    let parsed: CatalogBody =
        serde_json::from_slice(body).map_err(|e| format!("not a catalog: {e}"))?;
    if parsed.models.is_empty() {
        return Err("the catalog lists no model".to_string());
    }
    let models = parsed
        .models
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            serde_json::from_value::<ModelInfo>(entry.clone())
                .map_err(|e| format!("entry {i} is not a model: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(blank) = models.iter().position(|m| m.slug.trim().is_empty()) {
        return Err(format!("entry {blank} has an empty slug"));
    }
    Ok((parsed.models, models))
}

/// `GET <url>?client_version=<V>` (with `If-None-Match: <etag>` when given, and the
/// workspace's routing override).
pub fn fetch(
    auth: &dyn AuthProvider,
    url: &str,
    identity: &ClientIdentity,
    etag: Option<&str>,
    routing_override: Option<&str>,
) -> FetchOutcome {
    let full = format!("{url}?client_version={}", crate::client::CODEX_VERSION);
    let mut extra: Vec<(&str, &str)> = etag.map(|e| ("if-none-match", e)).into_iter().collect();
    if let Some(value) = routing_override {
        extra.push(("x-openai-account-routing-override", value));
    }
    let response = match get(auth, &full, identity, &extra) {
        Ok(response) => response,
        Err(message) => return FetchOutcome::Failed(message),
    };
    match response.status {
        304 if etag.is_some() => FetchOutcome::NotModified,
        200..=299 => match parse_catalog(&response.body) {
            Ok((raw, models)) => FetchOutcome::Fresh {
                raw,
                models,
                etag: response.etag,
            },
            Err(why) => FetchOutcome::Malformed(why),
        },
        status => FetchOutcome::Failed(format!(
            "GET {full} answered {status}: {}",
            response.snippet()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn catalog_bodies() {
        let cases: &[(&str, Result<usize, &str>)] = &[
            (
                r#"{"models":[{"slug":"a"},{"slug":"b","priority":2,"new_field":{"x":1}}]}"#,
                Ok(2),
            ),
            (r#"{"models":[]}"#, Err("lists no model")),
            (r#"{"models":[{"slug":5}]}"#, Err("entry 0 is not a model")),
            (
                r#"{"models":[{"slug":"a"},{"display_name":"x"}]}"#,
                Err("entry 1"),
            ),
            (r#"{"models":[{"slug":" "}]}"#, Err("empty slug")),
            (r#"{"data":[]}"#, Err("not a catalog")),
            ("<html>", Err("not a catalog")),
            (
                r#"{"models":[{"slug":"a","truncation_policy":{"mode":"lines","limit":1}}]}"#,
                Err("entry 0"),
            ),
        ];
        for (body, want) in cases {
            match (parse_catalog(body.as_bytes()), want) {
                (Ok((raw, models)), Ok(n)) => {
                    assert_eq!(models.len(), *n, "{body}");
                    assert_eq!(raw.len(), *n, "{body}");
                }
                (Err(e), Err(part)) => assert!(e.contains(part), "{body}: {e}"),
                (got, _) => panic!("{body}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn the_bundled_catalog_reads() {
        let (_, models) = parse_catalog(super::super::BUNDLED_CATALOG.as_bytes()).unwrap();
        assert!(models.iter().any(|m| m.uses_responses_lite()));
        assert!(models.iter().any(|m| !m.uses_responses_lite()));
        assert!(
            models.iter().all(|m| m.base_instructions().is_none()),
            "the bundled catalog holds facts, never prompt text"
        );
    }
}
