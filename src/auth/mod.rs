//! Authentication state: the three modes of auth.md, the credentials the model client uses,
//! and recovery from 401. (Logins and the account/* methods are `login.rs` and `accounts.rs`.)

pub mod jwt;
pub mod storage;

use std::sync::Mutex;

use crate::client::{AuthProvider, ClientError, Credentials};
use crate::config::Config;
use crate::thread::lock;

/// Owns the current credentials of the connection.
pub struct AuthManager {
    current: Mutex<Option<Credentials>>,
}

impl AuthManager {
    /// Loads credentials for `config`'s CODEX_HOME.
    pub fn new(_config: &Config) -> Self {
        Self {
            current: Mutex::new(None),
        }
    }
}

impl AuthProvider for AuthManager {
    fn credentials(&self) -> Result<Option<Credentials>, ClientError> {
        Ok(lock(&self.current).clone())
    }

    fn recover_unauthorized(&self, _failed: &Credentials) -> Result<bool, ClientError> {
        Ok(false)
    }
}
