//! `CODEX_HOME/models_cache.json`: the last catalog fetched, with its fetch time, ETag, the
//! client version it was fetched for and the identity (endpoint and account) it belongs to.
//! Same field names as the reference's file, so either program reads the other's (a different
//! identity only means a refetch). Written atomically; a broken file reads as no cache.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

/// The file name under CODEX_HOME.
pub const CACHE_FILE: &str = "models_cache.json";

/// The file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheFile {
    /// When the catalog was fetched (or last revalidated), RFC 3339.
    pub fetched_at: String,
    /// The catalog's `ETag`, sent back as `If-None-Match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `client_version` it was fetched with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    /// Whose catalog it is ([`identity`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The entries exactly as the backend sent them.
    pub models: Vec<Value>,
}

impl CacheFile {
    /// Unix milliseconds of `fetched_at` (0 when unreadable: stale).
    pub fn fetched_at_ms(&self) -> i64 {
        crate::time::parse_rfc3339(&self.fetched_at).unwrap_or(0)
    }
}

/// The identity a cached catalog belongs to: a SHA-256 over the catalog URL, the credential
/// kind and the account, so a catalog never crosses accounts or backends.
pub fn identity(url: &str, kind: &str, account: Option<&str>) -> String {
    let mut hash = sha2::Sha256::new();
    for part in [url, kind, account.unwrap_or("")] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn path(codex_home: &Path) -> PathBuf {
    codex_home.join(CACHE_FILE)
}

/// Reads the cache; `None` when absent or unreadable (logged).
pub fn load(codex_home: &Path) -> Option<CacheFile> {
    let path = path(codex_home);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            crate::log::warn(&format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(file) => Some(file),
        Err(e) => {
            crate::log::warn(&format!("ignoring unreadable {}: {e}", path.display()));
            None
        }
    }
}

/// Writes the cache atomically (temp file + rename).
pub fn save(codex_home: &Path, file: &CacheFile) -> Result<()> {
    let path = path(codex_home);
    let tmp = codex_home.join(format!(".{CACHE_FILE}.{}.tmp", std::process::id()));
    let json = serde_json::to_vec_pretty(file)?;
    let write = || -> std::io::Result<()> {
        std::fs::write(&tmp, &json)?;
        std::fs::rename(&tmp, &path)
    };
    write()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_broken_files() {
        let home =
            std::env::temp_dir().join(format!("codex-lite-models-cache-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        assert!(load(&home).is_none());
        let file = CacheFile {
            fetched_at: "2026-01-01T00:00:00.000Z".into(),
            etag: Some("\"e1\"".into()),
            client_version: Some("0.169.0".into()),
            identity: Some(identity("https://h/models", "chatgpt", Some("acc"))),
            models: vec![json!({"slug": "m", "future_field": 1})],
        };
        save(&home, &file).unwrap();
        let back = load(&home).unwrap();
        assert_eq!(back.models, file.models);
        assert_eq!(back.etag, file.etag);
        assert_eq!(back.fetched_at_ms(), 1_767_225_600_000);
        std::fs::write(home.join(CACHE_FILE), "{not json").unwrap();
        assert!(load(&home).is_none());
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn identities_differ_by_url_kind_and_account() {
        let a = identity("u", "chatgpt", Some("acc"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, identity("u", "chatgpt", Some("other")));
        assert_ne!(a, identity("u", "apikey", Some("acc")));
        assert_ne!(a, identity("v", "chatgpt", Some("acc")));
        assert_eq!(a, identity("u", "chatgpt", Some("acc")));
    }
}
