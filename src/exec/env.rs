//! The environment commands run with: a map of byte strings (a variable that is not UTF-8 is
//! passed through unchanged, never a panic).

use std::collections::BTreeMap;
use std::ffi::OsString;

use super::sys;

/// A child's whole environment, by name. Names compare exactly; on Windows, where the OS treats
/// names case-insensitively, look names up with [`find_name`].
pub type Env = BTreeMap<OsString, OsString>;

/// The key under which `env` holds `name` (case-insensitively on Windows, e.g. `Path`).
pub(super) fn find_name(env: &Env, name: &str) -> Option<OsString> {
    env.keys()
        .find(|key| match key.to_str() {
            Some(key) if sys::ENV_NAMES_IGNORE_CASE => key.eq_ignore_ascii_case(name),
            Some(key) => key == name,
            None => false,
        })
        .cloned()
}
