//! Recognising a patch inside a shell command the model asked to run:
//! `["apply_patch", patch]`, `["applypatch", patch]`, or a `bash -lc` /
//! `bash -c` / `sh -c` (also `zsh`) script whose whole body is
//! `apply_patch <<'EOF'` … `EOF`, optionally preceded by `cd <dir> &&`.
//!
//! Owns only the recognition; parsing the patch and deciding approval are
//! the caller's. Deliberately narrow: anything else in the script (another
//! command before or after, extra arguments, a pipe) means "not a patch", so
//! the command runs as a command.

use super::parser::parse_patch;

const COMMANDS: [&str; 2] = ["apply_patch", "applypatch"];
const SHELLS: [&str; 3] = ["bash", "sh", "zsh"];
const SHELL_FLAGS: [&str; 2] = ["-lc", "-c"];

/// A patch found in a shell command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellPatch {
    /// The patch text (the heredoc body, or the argument).
    pub patch: String,
    /// The directory of a leading `cd <dir> &&`, as written (relative to the
    /// command's working directory unless absolute).
    pub cd: Option<String>,
}

/// Recognises an `apply_patch` invocation in `argv` (see the module doc);
/// `None` means the command is not one and should run as a command. Does
/// not check that the patch parses.
pub fn parse_shell_invocation(argv: &[String]) -> Option<ShellPatch> {
    match argv {
        [command, patch] if COMMANDS.contains(&command.as_str()) => Some(ShellPatch {
            patch: patch.clone(),
            cd: None,
        }),
        [shell, flag, script] if is_shell(shell) && SHELL_FLAGS.contains(&flag.as_str()) => {
            parse_heredoc_script(script)
        }
        _ => None,
    }
}

/// Whether `argv` is a bare patch without the `apply_patch` command (the
/// patch as the whole command, or as the whole shell script): the caller
/// should tell the model to rerun it as `["apply_patch", "<patch>"]`.
pub fn is_bare_patch(argv: &[String]) -> bool {
    match argv {
        [body] => parse_patch(body).is_ok(),
        [shell, flag, script] if is_shell(shell) && SHELL_FLAGS.contains(&flag.as_str()) => {
            parse_patch(script).is_ok()
        }
        _ => false,
    }
}

fn is_shell(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    SHELLS.contains(&name)
}

/// `[cd <dir> &&] apply_patch <<DELIM\n<body>\nDELIM` with nothing else but
/// whitespace around it.
fn parse_heredoc_script(script: &str) -> Option<ShellPatch> {
    let mut rest = script.trim_start();
    let mut cd = None;
    if let Some(after) = rest
        .strip_prefix("cd")
        .filter(|a| a.starts_with([' ', '\t']))
    {
        let (dir, after) = shell_word(after.trim_start_matches([' ', '\t']))?;
        let after = after.trim_start_matches([' ', '\t']).strip_prefix("&&")?;
        cd = Some(dir);
        rest = after.trim_start();
    }
    let command = COMMANDS.iter().find(|c| rest.starts_with(*c))?;
    let after = &rest[command.len()..];
    if !after.starts_with([' ', '\t', '<']) {
        return None;
    }
    let after = after.trim_start_matches([' ', '\t']).strip_prefix("<<")?;
    if after.starts_with(['<', '-']) {
        // `<<<` is a here-string; `<<-` strips tabs the patch may need.
        return None;
    }
    let (delimiter, after) = heredoc_delimiter(after.trim_start_matches([' ', '\t']))?;
    let body = after
        .trim_start_matches([' ', '\t'])
        .strip_prefix('\n')
        .or_else(|| after.trim_start_matches([' ', '\t']).strip_prefix("\r\n"))?;
    // The body ends at the first line that is exactly the delimiter.
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n').trim_end_matches('\r');
        if bare == delimiter {
            let trailing = &body[offset + line.len()..];
            if !trailing.trim().is_empty() {
                return None;
            }
            let patch = body[..offset].trim_end_matches(['\n', '\r']).to_string();
            return Some(ShellPatch { patch, cd });
        }
        offset += line.len();
    }
    None
}

/// The heredoc delimiter: `'WORD'`, `"WORD"` or a bare `WORD`.
fn heredoc_delimiter(text: &str) -> Option<(&str, &str)> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let (word, rest) = match text.chars().next()? {
        quote @ ('\'' | '"') => {
            let close = text[1..].find(quote)? + 1;
            (&text[1..close], &text[close + 1..])
        }
        _ => {
            let end = text.find(|c: char| !is_word(c)).unwrap_or(text.len());
            (&text[..end], &text[end..])
        }
    };
    (!word.is_empty() && word.chars().all(is_word)).then_some((word, rest))
}

/// One shell word for `cd`: single-quoted, double-quoted (no expansions or
/// escapes inside), or bare.
fn shell_word(text: &str) -> Option<(String, &str)> {
    const SPECIAL: &[char] = &[
        ' ', '\t', '\n', ';', '&', '|', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?',
        '[', '#', '~', '{', '}',
    ];
    match text.chars().next()? {
        quote @ ('\'' | '"') => {
            let close = text[1..].find(quote)? + 1;
            let word = &text[1..close];
            if quote == '"' && word.contains(['$', '`', '\\']) {
                return None;
            }
            Some((word.to_string(), &text[close + 1..]))
        }
        _ => {
            let end = text.find(SPECIAL).unwrap_or(text.len());
            (end > 0).then(|| (text[..end].to_string(), &text[end..]))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const PATCH: &str = "*** Begin Patch\n*** Add File: foo\n+hi\n*** End Patch";

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recognises_invocations() {
        let script = |prefix: &str, opener: &str, closer: &str| {
            format!("{prefix}apply_patch {opener}\n{PATCH}\n{closer}")
        };
        // (argv, expected cd) for commands that are patches.
        let cases: Vec<(Vec<String>, Option<&str>)> = vec![
            (argv(&["apply_patch", PATCH]), None),
            (argv(&["applypatch", PATCH]), None),
            (argv(&["bash", "-lc", &script("", "<<'EOF'", "EOF")]), None),
            (argv(&["bash", "-c", &script("", "<<EOF", "EOF")]), None),
            (argv(&["sh", "-c", &script("", "<<\"EOF\"", "EOF")]), None),
            (
                argv(&["/bin/bash", "-lc", &script("", "<<'PATCH'", "PATCH")]),
                None,
            ),
            (
                argv(&["zsh", "-lc", &script("", "<< 'EOF'", "EOF\n")]),
                None,
            ),
            (
                argv(&["bash", "-lc", &script("\n  ", "<<'EOF'", "EOF\n\n")]),
                None,
            ),
            (
                argv(&["bash", "-lc", &format!("applypatch <<'EOF'\n{PATCH}\nEOF")]),
                None,
            ),
            (
                argv(&["bash", "-lc", &script("cd foo && ", "<<'EOF'", "EOF")]),
                Some("foo"),
            ),
            (
                argv(&["bash", "-lc", &script("cd /abs/dir&&", "<<'EOF'", "EOF")]),
                Some("/abs/dir"),
            ),
            (
                argv(&["bash", "-lc", &script("cd 'foo bar' && ", "<<'EOF'", "EOF")]),
                Some("foo bar"),
            ),
            (
                argv(&[
                    "bash",
                    "-lc",
                    &script("cd \"foo bar\" && ", "<<'EOF'", "EOF"),
                ]),
                Some("foo bar"),
            ),
        ];
        for (argv, cd) in cases {
            let found = parse_shell_invocation(&argv).unwrap_or_else(|| panic!("{argv:?}"));
            assert_eq!(found.cd.as_deref(), cd, "{argv:?}");
            assert_eq!(found.patch, PATCH, "{argv:?}");
        }
    }

    #[test]
    fn ignores_other_commands() {
        let with = |prefix: &str, suffix: &str| {
            argv(&[
                "bash",
                "-lc",
                &format!("{prefix}apply_patch <<'EOF'\n{PATCH}\nEOF{suffix}"),
            ])
        };
        let cases: Vec<Vec<String>> = vec![
            argv(&["apply_patch"]),
            argv(&["apply_patch", PATCH, "extra"]),
            argv(&["cat", PATCH]),
            argv(&["fish", "-c", &format!("apply_patch <<'EOF'\n{PATCH}\nEOF")]),
            argv(&["bash", "-x", &format!("apply_patch <<'EOF'\n{PATCH}\nEOF")]),
            with("cd foo; ", ""),
            with("cd foo || ", ""),
            with("cd foo | ", ""),
            with("echo hi && ", ""),
            with("cd foo && cd bar && ", ""),
            with("cd foo bar && ", ""),
            with("cd $HOME && ", ""),
            with("echo foo; cd bar && ", ""),
            with("", "\necho done"),
            with("", " && echo done"),
            argv(&[
                "bash",
                "-lc",
                &format!("apply_patch foo <<'EOF'\n{PATCH}\nEOF"),
            ]),
            argv(&[
                "bash",
                "-lc",
                &format!("apply_patch <<'EOF' && true\n{PATCH}\nEOF"),
            ]),
            argv(&["bash", "-lc", &format!("apply_patch <<-EOF\n{PATCH}\nEOF")]),
            argv(&["bash", "-lc", &format!("apply_patch <<<'{PATCH}'")]),
            argv(&["bash", "-lc", &format!("apply_patch <<'EOF'\n{PATCH}\n")]),
            argv(&[
                "bash",
                "-lc",
                &format!("apply_patch <<\"EOF'\n{PATCH}\nEOF"),
            ]),
            argv(&[
                "bash",
                "-lc",
                &format!("apply_patchy <<'EOF'\n{PATCH}\nEOF"),
            ]),
            argv(&["bash", "-lc", "ls -la"]),
        ];
        for argv in cases {
            assert_eq!(parse_shell_invocation(&argv), None, "{argv:?}");
        }
    }

    #[test]
    fn detects_bare_patches() {
        assert!(is_bare_patch(&argv(&[PATCH])));
        assert!(is_bare_patch(&argv(&["bash", "-lc", PATCH])));
        assert!(!is_bare_patch(&argv(&["apply_patch", PATCH])));
        assert!(!is_bare_patch(&argv(&["bash", "-lc", "ls"])));
    }
}
