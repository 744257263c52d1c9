//! The names MCP tools get in front of the model (mcp.md §3): `mcp__<server>__<tool>`, with
//! characters outside `[A-Za-z0-9_-]` replaced by `_`, at most 64 characters, and unique over
//! every tool offered (a short hash of the original name tells apart names that collide after
//! sanitizing or cutting). Pure functions; the registry decides which tools exist.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

/// Longest function name the Responses API accepts.
pub const MAX_TOOL_NAME_CHARS: usize = 64;
/// Separator between the prefix, the server and the tool.
const SEPARATOR: &str = "__";

/// Gives every `(server, tool)` pair its model-facing name, in order. Each name is
/// `mcp__<server>__<tool>` sanitized; names that were too long or collide get a hash suffix.
pub fn assign<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut taken = HashSet::new();
    let mut names = Vec::new();
    for (server, tool) in pairs {
        let raw = format!("mcp{SEPARATOR}{server}{SEPARATOR}{tool}");
        let clean = sanitize(&raw);
        let mut name = if clean.len() <= MAX_TOOL_NAME_CHARS && !taken.contains(&clean) {
            clean.clone()
        } else {
            with_suffix(&clean, &raw, 0)
        };
        let mut attempt = 1;
        while taken.contains(&name) {
            name = with_suffix(&clean, &raw, attempt);
            attempt += 1;
        }
        taken.insert(name.clone());
        names.push(name);
    }
    names
}

fn sanitize(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `clean` cut so that `_<8 hex digits>` of the hash of `raw` (and `attempt`) fits in 64.
fn with_suffix(clean: &str, raw: &str, attempt: u32) -> String {
    let mut hasher = Sha256::new();
    hasher.update(raw.as_bytes());
    hasher.update(attempt.to_le_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let keep = MAX_TOOL_NAME_CHARS - hex.len() - 1;
    // `clean` is ASCII, so any byte index is a char boundary.
    let head = &clean[..clean.len().min(keep)];
    format!("{head}_{hex}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_kept() {
        assert_eq!(
            assign([("files", "read_file"), ("web-1", "get")]),
            ["mcp__files__read_file", "mcp__web-1__get"]
        );
    }

    #[test]
    fn odd_long_and_colliding_names_become_unique_and_valid() {
        let long = "t".repeat(100);
        let pairs = [
            ("s", "a.b"),
            ("s", "a b"),
            ("s", "a_b"),
            ("s", long.as_str()),
            ("s", "ünï"),
        ];
        let names = assign(pairs.iter().map(|(s, t)| (*s, *t)));
        assert_eq!(names[0], "mcp__s__a_b");
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for name in &names {
            assert!(name.len() <= MAX_TOOL_NAME_CHARS, "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{name}"
            );
            assert!(name.starts_with("mcp__s__"), "{name}");
        }
        // Stable: the same input gives the same names.
        assert_eq!(names, assign(pairs.iter().map(|(s, t)| (*s, *t))));
    }
}
