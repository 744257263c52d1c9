//! The patch text format: turns `*** Begin Patch` … `*** End Patch` text into
//! [`Patch`] hunks, with the leniencies of the spec (trimmed input, padded
//! markers and hunk headers, heredoc unwrap, CRLF patches) and its error
//! messages to the letter.
//!
//! Owns only the syntax: whether the hunks fit the files on disk is decided
//! in `apply.rs`, and the matching of old lines in `seek.rs`.

use std::fmt;
use std::path::PathBuf;

const BEGIN_PATCH: &str = "*** Begin Patch";
const END_PATCH: &str = "*** End Patch";
const ADD_FILE: &str = "*** Add File: ";
const DELETE_FILE: &str = "*** Delete File: ";
const UPDATE_FILE: &str = "*** Update File: ";
const MOVE_TO: &str = "*** Move to: ";
const END_OF_FILE: &str = "*** End of File";
const CONTEXT_MARKER: &str = "@@ ";
const EMPTY_CONTEXT_MARKER: &str = "@@";
const HEREDOC_OPENERS: [&str; 3] = ["<<EOF", "<<'EOF'", "<<\"EOF\""];

/// A parsed patch: the file operations in patch order, plus the patch text
/// as it was understood (trimmed, heredoc wrapper removed, lines joined with
/// `\n`), which is what a caller should pass on to
/// `codex-lite --codex-run-as-apply-patch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// The file operations, applied one at a time in this order.
    pub hunks: Vec<Hunk>,
    /// The normalised patch text, from `*** Begin Patch` to `*** End Patch`.
    pub text: String,
}

/// One file operation of a patch. Paths are exactly as written in the patch
/// (relative to the working directory, or absolute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hunk {
    /// `*** Add File:` — create (or overwrite) the file with `contents`, every
    /// `+` line followed by `\n`.
    Add {
        /// The path as written.
        path: PathBuf,
        /// The full new contents.
        contents: String,
    },
    /// `*** Delete File:` — remove an existing file.
    Delete {
        /// The path as written.
        path: PathBuf,
    },
    /// `*** Update File:` — edit a file in place, or move it with `*** Move to:`.
    Update {
        /// The path as written.
        path: PathBuf,
        /// The destination as written, when the file is also renamed.
        move_path: Option<PathBuf>,
        /// The edits, in file order; never empty.
        chunks: Vec<Chunk>,
    },
}

/// One `@@` section of an Update hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The line named after `@@ ` (usually a function or class header),
    /// searched for from the cursor before the chunk's own lines.
    pub context: Option<String>,
    /// The body lines in order; context lines belong to both the old and the
    /// new block.
    pub lines: Vec<ChunkLine>,
    /// Set by a trailing `*** End of File`: the old block must end the file.
    pub is_end_of_file: bool,
}

/// One body line of a [`Chunk`], its marker character removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkLine {
    /// ` text` (or an empty line): kept.
    Context(String),
    /// `-text`: removed.
    Remove(String),
    /// `+text`: inserted.
    Add(String),
}

/// Why a patch text could not be parsed. `Display` is the exact stderr text
/// of the CLI (`Invalid patch: …` / `Invalid patch hunk on line N: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The `*** Begin Patch` / `*** End Patch` envelope is wrong.
    InvalidPatch(String),
    /// A hunk is malformed; `line` counts from `*** Begin Patch` as line 1.
    InvalidHunk {
        /// What is wrong, as the spec words it.
        message: String,
        /// 1-based line number in the trimmed (and unwrapped) patch.
        line: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::InvalidPatch(message) => write!(f, "Invalid patch: {message}"),
            ParseError::InvalidHunk { message, line } => {
                write!(f, "Invalid patch hunk on line {line}: {message}")
            }
        }
    }
}

impl std::error::Error for ParseError {}

fn hunk_error(message: impl Into<String>, line: usize) -> ParseError {
    ParseError::InvalidHunk {
        message: message.into(),
        line,
    }
}

/// Parses patch text. Lenient as the spec says: the input is trimmed, the
/// first and last lines are compared after trimming, a `<<EOF` heredoc
/// wrapper (also `<<'EOF'`, `<<"EOF"`) is removed, hunk headers are trimmed
/// and CRLF line ends are accepted. A patch with no hunks parses (applying it
/// then fails with `No files were modified.`).
pub fn parse_patch(text: &str) -> Result<Patch, ParseError> {
    let all_lines: Vec<&str> = text.trim().lines().collect();
    let lines = match check_envelope(&all_lines) {
        Ok(()) => all_lines.as_slice(),
        Err(original) => unwrap_heredoc(&all_lines).ok_or(original)??,
    };
    // The envelope check guarantees at least two lines.
    let body = &lines[1..lines.len() - 1];
    let mut hunks = Vec::new();
    let mut rest = body;
    let mut line = 2;
    while !rest.is_empty() {
        let (hunk, used) = parse_hunk(rest, line)?;
        hunks.push(hunk);
        line += used;
        rest = &rest[used..];
    }
    Ok(Patch {
        hunks,
        text: lines.join("\n"),
    })
}

/// `Some(result)` when the lines look like a heredoc wrapper (the result
/// being the envelope check of the inner lines), `None` otherwise.
fn unwrap_heredoc<'a>(lines: &'a [&'a str]) -> Option<Result<&'a [&'a str], ParseError>> {
    let (first, last) = (lines.first()?, lines.last()?);
    if lines.len() < 4 || !HEREDOC_OPENERS.contains(first) || !last.ends_with("EOF") {
        return None;
    }
    let inner = &lines[1..lines.len() - 1];
    Some(check_envelope(inner).map(|()| inner))
}

fn check_envelope(lines: &[&str]) -> Result<(), ParseError> {
    let first = lines.first().map(|line| line.trim());
    let last = lines.last().map(|line| line.trim());
    if first == Some(BEGIN_PATCH) && last == Some(END_PATCH) && lines.len() >= 2 {
        return Ok(());
    }
    let message = match first {
        Some(first) if first != BEGIN_PATCH => {
            "The first line of the patch must be '*** Begin Patch'"
        }
        _ => "The last line of the patch must be '*** End Patch'",
    };
    Err(ParseError::InvalidPatch(message.to_string()))
}

/// Parses one hunk at the start of `lines` (`line` is the number of
/// `lines[0]`); returns it with the number of lines it used.
fn parse_hunk(lines: &[&str], line: usize) -> Result<(Hunk, usize), ParseError> {
    let header = lines[0].trim();
    if let Some(path) = header.strip_prefix(ADD_FILE) {
        let mut contents = String::new();
        let mut used = 1;
        for text in lines[1..].iter().map_while(|l| l.strip_prefix('+')) {
            contents.push_str(text);
            contents.push('\n');
            used += 1;
        }
        let path = PathBuf::from(path);
        return Ok((Hunk::Add { path, contents }, used));
    }
    if let Some(path) = header.strip_prefix(DELETE_FILE) {
        let path = PathBuf::from(path);
        return Ok((Hunk::Delete { path }, 1));
    }
    if let Some(path) = header.strip_prefix(UPDATE_FILE) {
        return parse_update(path, lines, line);
    }
    Err(hunk_error(
        format!(
            "'{header}' is not a valid hunk header. Valid hunk headers: \
             '*** Add File: {{path}}', '*** Delete File: {{path}}', '*** Update File: {{path}}'"
        ),
        line,
    ))
}

fn parse_update(path: &str, lines: &[&str], line: usize) -> Result<(Hunk, usize), ParseError> {
    let mut used = 1;
    // A padded `*** Move to:` is accepted like a padded hunk header (the
    // reference would read it as a context line).
    let move_path = lines
        .get(1)
        .and_then(|l| l.trim().strip_prefix(MOVE_TO))
        .map(PathBuf::from);
    if move_path.is_some() {
        used += 1;
    }
    let mut chunks = Vec::new();
    while let Some(next) = lines.get(used) {
        if next.trim().is_empty() {
            used += 1;
            continue;
        }
        if next.starts_with("***") {
            break;
        }
        let (chunk, chunk_used) = parse_chunk(&lines[used..], line + used, chunks.is_empty())?;
        chunks.push(chunk);
        used += chunk_used;
    }
    if chunks.is_empty() {
        return Err(hunk_error(
            format!("Update file hunk for path '{path}' is empty"),
            line,
        ));
    }
    let path = PathBuf::from(path);
    Ok((
        Hunk::Update {
            path,
            move_path,
            chunks,
        },
        used,
    ))
}

/// Parses one chunk at the start of `lines` (`line` is the number of
/// `lines[0]`, which is never blank); `@@` may be missing only on the first
/// chunk of a hunk.
///
/// Line numbers follow the reference: errors about the chunk body name the
/// line after `lines[0]`, also when the first chunk has no `@@` line.
fn parse_chunk(lines: &[&str], line: usize, is_first: bool) -> Result<(Chunk, usize), ParseError> {
    let no_lines = || hunk_error("Update hunk does not contain any lines", line + 1);
    let (context, start) = if lines[0] == EMPTY_CONTEXT_MARKER {
        (None, 1)
    } else if let Some(context) = lines[0].strip_prefix(CONTEXT_MARKER) {
        (Some(context.to_string()), 1)
    } else if is_first {
        (None, 0)
    } else {
        return Err(hunk_error(
            format!(
                "Expected update hunk to start with a @@ context marker, got: '{}'",
                lines[0]
            ),
            line,
        ));
    };
    if start >= lines.len() {
        return Err(no_lines());
    }
    let mut chunk = Chunk {
        context,
        lines: Vec::new(),
        is_end_of_file: false,
    };
    let mut used = 0;
    for text in &lines[start..] {
        if *text == END_OF_FILE {
            if used == 0 {
                return Err(no_lines());
            }
            chunk.is_end_of_file = true;
            used += 1;
            break;
        }
        let body_line = match text.chars().next() {
            None => ChunkLine::Context(String::new()),
            Some(' ') => ChunkLine::Context(text[1..].to_string()),
            Some('+') => ChunkLine::Add(text[1..].to_string()),
            Some('-') => ChunkLine::Remove(text[1..].to_string()),
            Some(_) if used == 0 => {
                return Err(hunk_error(
                    format!(
                        "Unexpected line found in update hunk: '{text}'. Every line should start \
                         with ' ' (context line), '+' (added line), or '-' (removed line)"
                    ),
                    line + 1,
                ));
            }
            // Anything else starts the next hunk (or is reported there).
            Some(_) => break,
        };
        chunk.lines.push(body_line);
        used += 1;
    }
    Ok((chunk, used + start))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn add(path: &str, contents: &str) -> Hunk {
        Hunk::Add {
            path: PathBuf::from(path),
            contents: contents.to_string(),
        }
    }

    fn update(path: &str, move_path: Option<&str>, chunks: Vec<Chunk>) -> Hunk {
        Hunk::Update {
            path: PathBuf::from(path),
            move_path: move_path.map(PathBuf::from),
            chunks,
        }
    }

    fn chunk(context: Option<&str>, lines: &[&str], is_end_of_file: bool) -> Chunk {
        let lines = lines
            .iter()
            .map(|l| match l.split_at(1) {
                (" ", rest) => ChunkLine::Context(rest.to_string()),
                ("+", rest) => ChunkLine::Add(rest.to_string()),
                ("-", rest) => ChunkLine::Remove(rest.to_string()),
                _ => panic!("bad test line {l:?}"),
            })
            .collect();
        Chunk {
            context: context.map(str::to_string),
            lines,
            is_end_of_file,
        }
    }

    #[test]
    fn parses_valid_patches() {
        let cases: Vec<(&str, Vec<Hunk>)> = vec![
            ("*** Begin Patch\n*** End Patch", vec![]),
            (
                "*** Begin Patch\n*** Add File: a.txt\n+one\n+\n+two\n*** End Patch\n",
                vec![add("a.txt", "one\n\ntwo\n")],
            ),
            (
                "*** Begin Patch\n*** Add File: empty.txt\n*** End Patch",
                vec![add("empty.txt", "")],
            ),
            (
                "*** Begin Patch\n*** Delete File: gone.txt\n*** End Patch",
                vec![Hunk::Delete {
                    path: PathBuf::from("gone.txt"),
                }],
            ),
            (
                "*** Begin Patch\n*** Update File: a.py\n*** Move to: b/a.py\n@@ def f():\n-    pass\n+    return 1\n*** End Patch",
                vec![update(
                    "a.py",
                    Some("b/a.py"),
                    vec![chunk(
                        Some("def f():"),
                        &["-    pass", "+    return 1"],
                        false,
                    )],
                )],
            ),
            // First chunk without @@, a blank line read as an empty context line,
            // End of File, blank lines between chunks.
            (
                "*** Begin Patch\n*** Update File: f\n a\n\n-b\n*** End of File\n\n@@\n+c\n*** End Patch",
                vec![update(
                    "f",
                    None,
                    vec![
                        chunk(None, &[" a", " ", "-b"], true),
                        chunk(None, &["+c"], false),
                    ],
                )],
            ),
            // Padded markers and headers, CRLF, surrounding whitespace.
            (
                "\n\n  *** Begin Patch  \r\n   *** Update File: f.txt  \r\n@@\r\n-x\r\n+y\r\n *** End Patch\r\n\n",
                vec![update(
                    "f.txt",
                    None,
                    vec![chunk(None, &["-x", "+y"], false)],
                )],
            ),
            // Heredoc wrappers.
            (
                "<<'EOF'\n*** Begin Patch\n*** Delete File: d\n*** End Patch\nEOF\n",
                vec![Hunk::Delete {
                    path: PathBuf::from("d"),
                }],
            ),
            (
                "<<\"EOF\"\n*** Begin Patch\n*** Delete File: d\n*** End Patch\nEOF",
                vec![Hunk::Delete {
                    path: PathBuf::from("d"),
                }],
            ),
            (
                "<<EOF\n*** Begin Patch\n*** Delete File: d\n*** End Patch\nEOF",
                vec![Hunk::Delete {
                    path: PathBuf::from("d"),
                }],
            ),
            // An Update followed by an Add; `@@ ` with a context of spaces.
            (
                "*** Begin Patch\n*** Update File: u\n@@  indented\n+x\n*** Add File: n\n+y\n*** End Patch",
                vec![
                    update("u", None, vec![chunk(Some(" indented"), &["+x"], false)]),
                    add("n", "y\n"),
                ],
            ),
            // A non-marker line after body lines ends the chunk; the next chunk needs @@.
            (
                "*** Begin Patch\n*** Update File: u\n@@ a\n-x\n@@ b\n-y\n*** End Patch",
                vec![update(
                    "u",
                    None,
                    vec![
                        chunk(Some("a"), &["-x"], false),
                        chunk(Some("b"), &["-y"], false),
                    ],
                )],
            ),
        ];
        for (text, hunks) in cases {
            let parsed = parse_patch(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(parsed.hunks, hunks, "{text:?}");
        }
    }

    #[test]
    fn normalised_text_drops_wrapper_and_crlf() {
        let parsed = parse_patch(
            "<<'EOF'\r\n*** Begin Patch\r\n*** Delete File: d\r\n*** End Patch\r\nEOF\r\n",
        )
        .unwrap();
        assert_eq!(
            parsed.text,
            "*** Begin Patch\n*** Delete File: d\n*** End Patch"
        );
    }

    #[test]
    fn reports_errors_to_the_letter() {
        let header_help = "is not a valid hunk header. Valid hunk headers: '*** Add File: {path}', \
                           '*** Delete File: {path}', '*** Update File: {path}'";
        let unexpected_help = "Every line should start with ' ' (context line), '+' (added line), \
                               or '-' (removed line)";
        let cases: Vec<(&str, String)> = vec![
            (
                "",
                "Invalid patch: The last line of the patch must be '*** End Patch'".into(),
            ),
            (
                "   \n  ",
                "Invalid patch: The last line of the patch must be '*** End Patch'".into(),
            ),
            (
                "bad",
                "Invalid patch: The first line of the patch must be '*** Begin Patch'".into(),
            ),
            (
                "*** Begin Patch",
                "Invalid patch: The last line of the patch must be '*** End Patch'".into(),
            ),
            (
                "*** Begin Patch\n*** Add File: a\n+x",
                "Invalid patch: The last line of the patch must be '*** End Patch'".into(),
            ),
            (
                "*** End Patch",
                "Invalid patch: The first line of the patch must be '*** Begin Patch'".into(),
            ),
            // Mismatched heredoc quotes are not unwrapped: the original error stands.
            (
                "<<\"EOF'\n*** Begin Patch\n*** Delete File: d\n*** End Patch\nEOF",
                "Invalid patch: The first line of the patch must be '*** Begin Patch'".into(),
            ),
            // A heredoc wrapper whose inner patch lacks the end marker.
            (
                "<<EOF\n*** Begin Patch\n*** Update File: f\nEOF",
                "Invalid patch: The last line of the patch must be '*** End Patch'".into(),
            ),
            (
                "*** Begin Patch\n*** Frobnicate File: foo\n*** End Patch",
                format!("Invalid patch hunk on line 2: '*** Frobnicate File: foo' {header_help}"),
            ),
            (
                "*** Begin Patch\n*** Add File: a\n+x\n\n*** End Patch",
                format!("Invalid patch hunk on line 4: '' {header_help}"),
            ),
            (
                "*** Begin Patch\n*** Delete File: a\n*** Update File: foo.txt\n*** End Patch",
                "Invalid patch hunk on line 3: Update file hunk for path 'foo.txt' is empty".into(),
            ),
            (
                "*** Begin Patch\n*** Update File: f\n@@\n*** End Patch",
                "Invalid patch hunk on line 4: Update hunk does not contain any lines".into(),
            ),
            (
                "*** Begin Patch\n*** Update File: f\n@@ ctx\n*** End of File\n*** End Patch",
                "Invalid patch hunk on line 4: Update hunk does not contain any lines".into(),
            ),
            (
                "*** Begin Patch\n*** Update File: f\n@@\nbad\n*** End Patch",
                format!(
                    "Invalid patch hunk on line 4: Unexpected line found in update hunk: 'bad'. {unexpected_help}"
                ),
            ),
            // Without @@ the reference names the line after the offending one.
            (
                "*** Begin Patch\n*** Update File: f\nbad\n*** End Patch",
                format!(
                    "Invalid patch hunk on line 4: Unexpected line found in update hunk: 'bad'. {unexpected_help}"
                ),
            ),
            (
                "*** Begin Patch\n*** Update File: f\n@@\n-a\n+b\n\n garbage\nnot a line\n*** End Patch",
                "Invalid patch hunk on line 8: Expected update hunk to start with a @@ context marker, got: 'not a line'".into(),
            ),
            // Line numbers count inside the heredoc wrapper from Begin Patch.
            (
                "<<'EOF'\n*** Begin Patch\n*** Nope\n*** End Patch\nEOF",
                format!("Invalid patch hunk on line 2: '*** Nope' {header_help}"),
            ),
        ];
        for (text, expected) in cases {
            let err = parse_patch(text).expect_err(text);
            assert_eq!(err.to_string(), expected, "{text:?}");
        }
    }
}
