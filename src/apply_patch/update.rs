//! Computing an updated file's text from its old text and an Update hunk's
//! chunks: the cursor and `@@` context search, End of File anchoring, the
//! retry without a trailing empty line, bottom-up replacement, and the
//! fidelity rules of the spec (each line keeps its ending and new lines take
//! the file's first one, a UTF-8 BOM is kept, a missing final newline is kept
//! when the last line is untouched, loosely matched context lines keep the
//! file's text).
//!
//! Pure: no file system access (`apply.rs` reads and writes) and no line
//! matching of its own (`seek.rs`).

use std::path::Path;

use super::apply::ApplyError;
use super::parser::{Chunk, ChunkLine};
use super::seek::seek;

const BOM: char = '\u{FEFF}';

/// `text` without a leading UTF-8 BOM.
pub(super) fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// One line of a file being edited: its text, its own line ending (`""`
/// only for a last line without newline), and whether it is the file's own
/// line (kept as is) or comes from the patch.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    text: &'a str,
    ending: &'a str,
    is_original: bool,
}

/// Where a line of a chunk's new block comes from.
#[derive(Debug, Clone, Copy)]
enum NewLine<'a> {
    /// The file's line at this index (a context line: keeps the file's text).
    Original(usize),
    /// Text from the patch.
    Patch(&'a str),
}

struct Replacement<'a> {
    start: usize,
    old_len: usize,
    new: Vec<NewLine<'a>>,
}

/// The contents of the file at `path` (read as `original`) after applying
/// `chunks`, keeping its BOM, line endings and, when its last line is not
/// touched, a missing final newline.
pub(super) fn updated_contents(
    original: &str,
    path: &Path,
    chunks: &[Chunk],
) -> Result<String, ApplyError> {
    let has_bom = original.starts_with(BOM);
    let body = strip_bom(original);
    let lines = split_lines(body);
    let ending = lines
        .iter()
        .map(|line| line.ending)
        .find(|ending| !ending.is_empty())
        .unwrap_or("\n");
    let texts: Vec<&str> = lines.iter().map(|line| line.text).collect();
    let mut replacements = find_replacements(&texts, path, chunks)?;
    // Stable, so a pure addition keeps its patch order among equal starts.
    replacements.sort_by_key(|r| r.start);

    let mut out = lines.clone();
    for r in replacements.iter().rev() {
        let start = r.start.min(out.len());
        let end = (start + r.old_len).min(out.len());
        let new = r.new.iter().map(|new| match *new {
            NewLine::Original(at) => lines[at],
            NewLine::Patch(text) => Line {
                text,
                ending,
                is_original: false,
            },
        });
        out.splice(start..end, new);
    }
    // As in the reference, an empty line added last by the patch stands
    // for the final newline, not for an extra blank line.
    if out
        .last()
        .is_some_and(|l| !l.is_original && l.text.is_empty())
    {
        out.pop();
    }
    let mut text = String::with_capacity(original.len() + 64);
    if has_bom {
        text.push(BOM);
    }
    let last = out.len().saturating_sub(1);
    for (at, line) in out.iter().enumerate() {
        text.push_str(line.text);
        // Only the file's own last line may stay without a newline.
        let keeps_ending = at == last && line.is_original;
        text.push_str(if line.ending.is_empty() && !keeps_ending {
            ending
        } else {
            line.ending
        });
    }
    Ok(text)
}

/// Splits `text` into lines with their own endings (`\r\n`, `\n`, or none
/// for a last line without newline); a final newline does not start a line.
fn split_lines(text: &str) -> Vec<Line<'_>> {
    text.split_inclusive('\n')
        .map(|piece| {
            let (text, ending) = if let Some(text) = piece.strip_suffix("\r\n") {
                (text, "\r\n")
            } else if let Some(text) = piece.strip_suffix('\n') {
                (text, "\n")
            } else {
                (piece, "")
            };
            Line {
                text,
                ending,
                is_original: true,
            }
        })
        .collect()
}

/// Locates every chunk in `lines`, moving a cursor forward through the file.
fn find_replacements<'a>(
    lines: &[&str],
    path: &Path,
    chunks: &'a [Chunk],
) -> Result<Vec<Replacement<'a>>, ApplyError> {
    let mut replacements = Vec::with_capacity(chunks.len());
    let mut cursor = 0;
    for chunk in chunks {
        if let Some(context) = &chunk.context {
            match seek(lines, std::slice::from_ref(context), cursor, false) {
                Some(at) => cursor = at + 1,
                None => {
                    return Err(ApplyError::ContextNotFound {
                        context: context.clone(),
                        path: path.to_path_buf(),
                    });
                }
            }
        }
        // The new block, each line with the index of its old line when it
        // is a context line.
        let mut old: Vec<&str> = Vec::new();
        let mut new: Vec<(&str, Option<usize>)> = Vec::new();
        for line in &chunk.lines {
            match line {
                ChunkLine::Context(text) => {
                    new.push((text, Some(old.len())));
                    old.push(text);
                }
                ChunkLine::Remove(text) => old.push(text),
                ChunkLine::Add(text) => new.push((text, None)),
            }
        }
        if old.is_empty() {
            // A pure addition goes at the end, before a trailing blank line.
            let at = if lines.last().is_some_and(|l| l.is_empty()) {
                lines.len() - 1
            } else {
                lines.len()
            };
            let new = new.iter().map(|(text, _)| NewLine::Patch(text)).collect();
            replacements.push(Replacement {
                start: at,
                old_len: 0,
                new,
            });
            continue;
        }
        let mut pattern: &[&str] = &old;
        let mut new_block: &[(&str, Option<usize>)] = &new;
        let mut found = seek(lines, pattern, cursor, chunk.is_end_of_file);
        if found.is_none() && pattern.last().is_some_and(|l| l.is_empty()) {
            // The trailing empty line may stand for the file's final newline.
            pattern = &pattern[..pattern.len() - 1];
            if new_block.last().is_some_and(|(text, _)| text.is_empty()) {
                new_block = &new_block[..new_block.len() - 1];
            }
            found = seek(lines, pattern, cursor, chunk.is_end_of_file);
        }
        let Some(start) = found else {
            return Err(ApplyError::LinesNotFound {
                path: path.to_path_buf(),
                lines: old.join("\n"),
            });
        };
        let new = new_block
            .iter()
            .map(|&(text, old_at)| match old_at {
                Some(at) if at < pattern.len() => NewLine::Original(start + at),
                _ => NewLine::Patch(text),
            })
            .collect();
        replacements.push(Replacement {
            start,
            old_len: pattern.len(),
            new,
        });
        cursor = start + pattern.len();
    }
    Ok(replacements)
}
