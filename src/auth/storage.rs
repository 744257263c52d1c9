//! `CODEX_HOME/auth.json`: the credentials of the managed modes (API key, managed ChatGPT),
//! read leniently and written atomically: a temp file with a unique name, created exclusively,
//! never through a symlink and owner-only (`crate::platform::create_private_file`), fsynced,
//! then renamed over auth.json and the directory synced. External tokens never come here.
//! Callers hold the in-memory credentials' lock across a save, so the file and memory agree.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The file name under CODEX_HOME.
pub const AUTH_FILE: &str = "auth.json";

/// The tokens of a managed ChatGPT login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// The OpenID token (claims: email, plan, account).
    pub id_token: Secret,
    /// Bearer for the ChatGPT backend.
    pub access_token: Secret,
    /// Grants new tokens.
    pub refresh_token: Secret,
    /// The workspace, when known.
    #[serde(default)]
    pub account_id: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthDotJson {
    /// `apikey` or `chatgpt`; absent in old files (inferred from the other fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<String>,
    /// An API key (API-key login, or the one exchanged during a ChatGPT login).
    #[serde(rename = "OPENAI_API_KEY", default)]
    pub openai_api_key: Option<Secret>,
    /// ChatGPT tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
    /// RFC 3339 time of the last token refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<String>,
}

impl AuthDotJson {
    /// Whether this is a ChatGPT login (explicit mode, or tokens without a mode).
    pub fn is_chatgpt(&self) -> bool {
        match self.auth_mode.as_deref() {
            Some(mode) => mode == "chatgpt",
            None => self.tokens.is_some(),
        }
    }
}

/// The file's path.
pub fn path(codex_home: &Path) -> PathBuf {
    codex_home.join(AUTH_FILE)
}

/// Reads auth.json; `Ok(None)` when there is none.
pub fn load(codex_home: &Path) -> Result<Option<AuthDotJson>> {
    let path = path(codex_home);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Temp names tried before a save gives up (each one is random, so only an attacker racing to
/// plant files could make one taken).
const TEMP_NAME_ATTEMPTS: usize = 8;

/// Writes auth.json atomically, readable by the owner only. Concurrent savers (in this process
/// or another) each write their own temp file; the last rename wins whole.
pub fn save(codex_home: &Path, auth: &AuthDotJson) -> Result<()> {
    let path = path(codex_home);
    let json = serde_json::to_vec_pretty(auth)?;
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let tmp = codex_home.join(format!(
            ".{AUTH_FILE}.{}.{}.tmp",
            std::process::id(),
            crate::ids::random_token(12)
        ));
        match crate::platform::create_private_file(&tmp) {
            Ok(file) => break (tmp, file),
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && attempt + 1 < TEMP_NAME_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("creating {}", tmp.display())));
            }
        }
    };
    let mut write = || -> std::io::Result<()> {
        file.write_all(&json)?;
        file.sync_all()?;
        crate::platform::replace_file(&tmp, &path)?;
        // The rename is durable once the directory is synced.
        crate::platform::sync_dir(codex_home)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("writing {}", path.display()))
    })
}

/// Deletes auth.json; true when there was one.
pub fn delete(codex_home: &Path) -> Result<bool> {
    let path = path(codex_home);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("deleting {}", path.display())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_mode_and_inference() {
        let home = std::env::temp_dir().join(format!("codex-lite-auth-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        assert_eq!(load(&home).unwrap(), None);
        let auth = AuthDotJson {
            auth_mode: Some("chatgpt".into()),
            openai_api_key: None,
            tokens: Some(Tokens {
                id_token: Secret::new("i"),
                access_token: Secret::new("a"),
                refresh_token: Secret::new("r"),
                account_id: Some("org".into()),
            }),
            last_refresh: Some("2026-01-01T00:00:00Z".into()),
        };
        save(&home, &auth).unwrap();
        assert_eq!(load(&home).unwrap(), Some(auth));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(&home)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(path(&home), r#"{"OPENAI_API_KEY":"sk-x"}"#).unwrap();
        let legacy = load(&home).unwrap().unwrap();
        assert!(!legacy.is_chatgpt());
        assert_eq!(legacy.openai_api_key.unwrap().expose(), "sk-x");
        std::fs::write(
            path(&home),
            r#"{"tokens":{"id_token":"i","access_token":"a","refresh_token":"r"}}"#,
        )
        .unwrap();
        assert!(load(&home).unwrap().unwrap().is_chatgpt());
        assert!(delete(&home).unwrap());
        assert!(!delete(&home).unwrap());
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn concurrent_saves_leave_one_whole_file_and_no_temp_files() {
        let home =
            std::env::temp_dir().join(format!("codex-lite-auth-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        let savers: Vec<_> = (0..8)
            .map(|i| {
                let home = home.clone();
                std::thread::spawn(move || {
                    for j in 0..20 {
                        let auth = AuthDotJson {
                            auth_mode: Some("apikey".into()),
                            openai_api_key: Some(Secret::new(format!(
                                "sk-{i}-{j}-{}",
                                "x".repeat(i * 500)
                            ))),
                            tokens: None,
                            last_refresh: None,
                        };
                        save(&home, &auth).unwrap();
                    }
                })
            })
            .collect();
        for saver in savers {
            saver.join().unwrap();
        }
        let saved = load(&home).unwrap().unwrap();
        assert!(saved.openai_api_key.unwrap().expose().starts_with("sk-"));
        let names: Vec<String> = std::fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [AUTH_FILE]);
        std::fs::remove_dir_all(home).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let home =
            std::env::temp_dir().join(format!("codex-lite-auth-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        // The old fixed temp name, planted as a symlink to a victim file.
        let victim = home.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(
            &victim,
            home.join(format!(".{AUTH_FILE}.{}.tmp", std::process::id())),
        )
        .unwrap();
        save(&home, &AuthDotJson::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert!(
            !std::fs::symlink_metadata(path(&home))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        std::fs::remove_dir_all(home).unwrap();
    }
}
