//! The environment commands run with: a map of byte strings (a variable that is not UTF-8 is
//! passed through unchanged, never a panic), built from ours by the `[shell_environment_policy]`
//! of config.toml with the reference's keys and steps:
//!
//! 1. `inherit`: start from all of our variables (`all`, the default), only the core ones
//!    (`core`: `HOME`, `LOGNAME`, `PATH`, `SHELL`, `USER`, `USERNAME`, `TMPDIR`, `TEMP`, `TMP`)
//!    or none (`none`);
//! 2. unless `ignore_default_excludes = true`, drop every name matching `*KEY*`, `*SECRET*` or
//!    `*TOKEN*` (so API keys and tokens never reach a command by default);
//! 3. drop names matching any `exclude` pattern;
//! 4. insert the `set` table;
//! 5. when `include_only` is not empty, keep only names matching one of its patterns.
//!
//! Patterns are shell-style wildcards (`*` any run, `?` one character) matched against the
//! whole name, ignoring ASCII case. `experimental_use_profile` is not honoured (it is reported
//! as an ignored key).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

use serde::Deserialize;

use super::sys;

/// A child's whole environment, by name. Names compare exactly; on Windows, where the OS treats
/// names case-insensitively, look names up with [`find_name`].
pub type Env = BTreeMap<OsString, OsString>;

/// Names kept by `inherit = "core"`.
const CORE_VARS: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "USER", "USERNAME", "TMPDIR", "TEMP", "TMP",
];

/// Dropped unless `ignore_default_excludes = true`.
const DEFAULT_EXCLUDES: &[&str] = &["*KEY*", "*SECRET*", "*TOKEN*"];

/// Where the environment starts from (`inherit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Inherit {
    /// Every variable of the server (the default).
    #[default]
    All,
    /// Only [`CORE_VARS`].
    Core,
    /// Nothing.
    None,
}

/// `[shell_environment_policy]` of config.toml; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ShellEnvironmentPolicy {
    /// Where to start (default `all`).
    #[serde(default)]
    pub inherit: Inherit,
    /// Keep names matching `*KEY*`, `*SECRET*`, `*TOKEN*` (default false: they are dropped).
    #[serde(default)]
    pub ignore_default_excludes: bool,
    /// More patterns of names to drop.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Variables to set (after the excludes).
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// When not empty, only names matching one of these are kept (applied last).
    #[serde(default)]
    pub include_only: Vec<String>,
}

impl ShellEnvironmentPolicy {
    /// The environment for commands, from `vars` (ours: `std::env::vars_os()`).
    pub fn build(&self, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Env {
        let mut env: Env = match self.inherit {
            Inherit::All => vars.into_iter().collect(),
            Inherit::Core => vars
                .into_iter()
                .filter(|(name, _)| CORE_VARS.iter().any(|core| is_same_name(name, core)))
                .collect(),
            Inherit::None => Env::new(),
        };
        if !self.ignore_default_excludes {
            env.retain(|name, _| !matches_any(name, DEFAULT_EXCLUDES));
        }
        if !self.exclude.is_empty() {
            env.retain(|name, _| !matches_any(name, &self.exclude));
        }
        for (name, value) in &self.set {
            env.insert(name.into(), value.into());
        }
        if !self.include_only.is_empty() {
            env.retain(|name, _| matches_any(name, &self.include_only));
        }
        env
    }
}

/// Whether `name` is `wanted` as the OS compares names.
fn is_same_name(name: &OsStr, wanted: &str) -> bool {
    match name.to_str() {
        Some(name) if sys::ENV_NAMES_IGNORE_CASE => name.eq_ignore_ascii_case(wanted),
        Some(name) => name == wanted,
        None => false,
    }
}

fn matches_any<P: AsRef<str>>(name: &OsStr, patterns: &[P]) -> bool {
    // A name that is not Unicode is matched on its readable parts (`\u{FFFD}` elsewhere), so
    // `API_KEY\xff` is still caught by `*KEY*`.
    let name = name.to_string_lossy();
    patterns
        .iter()
        .any(|p| wildcard_match(p.as_ref().as_bytes(), name.as_bytes()))
}

/// Shell-style wildcard match of the whole `text`, ASCII case-insensitive: `*` matches any run
/// of bytes, `?` one character. Iterative with one backtrack point, so linear-ish and never
/// recursive whatever the pattern.
pub(super) fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(b'?') => {
                p += 1;
                t = (t + utf8_len(text[t])).min(text.len());
            }
            Some(c) if c.eq_ignore_ascii_case(&text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    // Let the last `*` swallow one more character and retry after it.
                    let next = (star_t + utf8_len(text[star_t])).min(text.len());
                    star = Some((star_p, next));
                    p = star_p + 1;
                    t = next;
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|c| *c == b'*')
}

/// Bytes in the UTF-8 sequence a leading byte starts (1 for anything else).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The key under which `env` holds `name` (case-insensitively on Windows, e.g. `Path`).
pub(super) fn find_name(env: &Env, name: &str) -> Option<OsString> {
    env.keys().find(|key| is_same_name(key, name)).cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn names(env: &Env) -> Vec<String> {
        env.keys()
            .map(|k| k.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn wildcards() {
        let cases: [(&str, &str, bool); 14] = [
            ("*KEY*", "OPENAI_API_KEY", true),
            ("*KEY*", "openai_api_key", true),
            ("*KEY*", "KEYBOARD", true),
            ("*KEY*", "MONKEY_BUSINESS", true),
            ("*KEY*", "KE", false),
            ("*TOKEN*", "GITHUB_TOKEN", true),
            ("PATH", "PATH", true),
            ("PATH", "XPATH", false),
            ("*PATH", "MANPATH", true),
            ("A?C", "ABC", true),
            ("A?C", "AC", false),
            ("A?C", "AéC", true),
            ("**a*b*", "xaxxb", true),
            ("a*b*c", "abbbcb", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                wildcard_match(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} {text}"
            );
        }
    }

    #[test]
    fn default_policy_inherits_all_but_keys_secrets_and_tokens() {
        let env = ShellEnvironmentPolicy::default().build(vars(&[
            ("PATH", "/bin"),
            ("HOME", "/h"),
            ("OPENAI_API_KEY", "sk"),
            ("aws_secret_access_key", "s"),
            ("GH_TOKEN", "t"),
            ("MY_SECRET", "x"),
            ("LANG", "C"),
        ]));
        assert_eq!(names(&env), ["HOME", "LANG", "PATH"]);
    }

    #[test]
    fn the_steps_apply_in_the_reference_order() {
        let policy = ShellEnvironmentPolicy {
            inherit: Inherit::Core,
            ignore_default_excludes: false,
            exclude: vec!["tmp*".into()],
            set: BTreeMap::from([
                (
                    "NEW_TOKEN".into(),
                    "set wins over the default excludes".into(),
                ),
                ("OTHER".into(), "dropped by include_only".into()),
            ]),
            include_only: vec!["*PATH".into(), "HOME".into(), "*_token".into()],
        };
        let env = policy.build(vars(&[
            ("PATH", "/bin"),
            ("HOME", "/h"),
            ("TMPDIR", "/t"),
            ("LANG", "C"),
            ("USER_TOKEN", "t"),
        ]));
        assert_eq!(names(&env), ["HOME", "NEW_TOKEN", "PATH"]);
        let none = ShellEnvironmentPolicy {
            inherit: Inherit::None,
            ..Default::default()
        };
        assert!(none.build(vars(&[("PATH", "/bin")])).is_empty());
        let keep = ShellEnvironmentPolicy {
            ignore_default_excludes: true,
            ..Default::default()
        };
        assert_eq!(names(&keep.build(vars(&[("API_KEY", "k")]))), ["API_KEY"]);
    }

    #[test]
    fn the_toml_table_parses_with_the_reference_keys() {
        let policy: ShellEnvironmentPolicy = toml::from_str(
            r#"
            inherit = "core"
            ignore_default_excludes = true
            exclude = ["AWS_*"]
            include_only = ["PATH"]
            [set]
            CI = "1"
            "#,
        )
        .unwrap();
        assert_eq!(policy.inherit, Inherit::Core);
        assert!(policy.ignore_default_excludes);
        assert_eq!(policy.exclude, ["AWS_*"]);
        assert_eq!(policy.include_only, ["PATH"]);
        assert_eq!(policy.set["CI"], "1");
        assert!(toml::from_str::<ShellEnvironmentPolicy>("inherit = \"some\"").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn names_and_values_that_are_not_utf8_pass_through_as_bytes() {
        use std::os::unix::ffi::OsStringExt;
        let odd_name = OsString::from_vec(b"ODD_\xff".to_vec());
        let odd_value = OsString::from_vec(b"v\xfex".to_vec());
        let secret_name = OsString::from_vec(b"API_KEY_\xff".to_vec());
        let env = ShellEnvironmentPolicy::default().build(vec![
            (odd_name.clone(), odd_value.clone()),
            (secret_name.clone(), "k".into()),
        ]);
        assert_eq!(env.get(&odd_name), Some(&odd_value));
        assert!(!env.contains_key(&secret_name));
    }
}
