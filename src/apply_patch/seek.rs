//! Finding a chunk's old lines in a file: the four matching passes of the
//! spec (exact; trailing whitespace ignored; surrounding whitespace ignored;
//! that plus typographic characters mapped to ASCII), first hit wins.
//!
//! Owns only the search; the cursor, `@@` context and replacement rules live
//! in `apply.rs`.

/// Finds `pattern` as a run of consecutive `lines`, searching from index
/// `start` (or only at the very end of the file when `at_eof`), and returns
/// the index of its first line. An empty pattern is found at `start`.
///
/// Each pass scans every position before the next, looser pass is tried, so
/// an exact match later in the file beats a loose one earlier.
pub fn seek<L: AsRef<str>, P: AsRef<str>>(
    lines: &[L],
    pattern: &[P],
    start: usize,
    at_eof: bool,
) -> Option<usize> {
    if pattern.is_empty() {
        return Some(start);
    }
    if pattern.len() > lines.len() {
        return None;
    }
    let last_start = lines.len() - pattern.len();
    let first = if at_eof { last_start } else { start };
    if first > last_start {
        return None;
    }
    let passes: [fn(&str, &str) -> bool; 4] = [
        |a, b| a == b,
        |a, b| a.trim_end() == b.trim_end(),
        |a, b| a.trim() == b.trim(),
        |a, b| normalised(a).eq(normalised(b)),
    ];
    passes.iter().find_map(|same| {
        (first..=last_start).find(|&at| {
            lines[at..at + pattern.len()]
                .iter()
                .zip(pattern)
                .all(|(line, want)| same(line.as_ref(), want.as_ref()))
        })
    })
}

/// The characters of `text`, trimmed, with typographic punctuation and
/// spaces mapped to their ASCII look-alikes.
fn normalised(text: &str) -> impl Iterator<Item = char> + '_ {
    text.trim().chars().map(|c| match c {
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        '\u{2018}'..='\u{201B}' => '\'',
        '\u{201C}'..='\u{201F}' => '"',
        '\u{00A0}' | '\u{2002}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => ' ',
        other => other,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// (file lines, pattern, start, at_eof, expected)
    type Case<'a> = (&'a [&'a str], &'a [&'a str], usize, bool, Option<usize>);

    #[test]
    fn seek_table() {
        let cases: &[Case] = &[
            (&["a", "b", "c"], &["b", "c"], 0, false, Some(1)),
            (&["a", "b", "c"], &[], 2, false, Some(2)),
            (&["a", "b"], &["a", "b", "c"], 0, false, None),
            (&["a", "b", "a"], &["a"], 1, false, Some(2)),
            (&["a", "b", "a"], &["a"], 3, false, None),
            (&["a"], &["a"], 5, false, None),
            // End of file anchoring looks only at the last position.
            (&["x", "y", "x", "y"], &["x", "y"], 0, true, Some(2)),
            (&["x", "y", "z"], &["x", "y"], 0, true, None),
            // ...and ignores the cursor.
            (&["x", "y"], &["x", "y"], 2, true, Some(0)),
            // Trailing whitespace.
            (&["foo   ", "bar\t"], &["foo", "bar"], 0, false, Some(0)),
            (&["foo"], &["foo  "], 0, false, Some(0)),
            // Leading and trailing whitespace.
            (&["    foo", "\tbar  "], &["foo", " bar"], 0, false, Some(0)),
            // Typographic characters.
            (
                &["let s = \u{201C}hi\u{201D} \u{2014} it\u{2019}s"],
                &["let s = \"hi\" - it's"],
                0,
                false,
                Some(0),
            ),
            (
                &["a\u{00A0}b\u{2002}c\u{202F}d\u{205F}e\u{3000}f"],
                &["a b c d e f"],
                0,
                false,
                Some(0),
            ),
            (
                &["x \u{2212} y \u{2011} z"],
                &["x - y - z"],
                0,
                false,
                Some(0),
            ),
            (
                &["\u{201A}\u{201B}\u{201E}\u{201F}"],
                &["''\"\""],
                0,
                false,
                Some(0),
            ),
            // U+2000 and U+2001 are not in the mapping.
            (&["a\u{2000}b"], &["a b"], 0, false, None),
            // An exact match later beats a loose match earlier.
            (&["  foo", "foo"], &["foo"], 0, false, Some(1)),
            // Loose passes still need the non-space text to agree.
            (&["foo bar"], &["foobar"], 0, false, None),
        ];
        for (lines, pattern, start, at_eof, expected) in cases {
            assert_eq!(
                seek(lines, pattern, *start, *at_eof),
                *expected,
                "lines {lines:?} pattern {pattern:?} start {start} eof {at_eof}"
            );
        }
    }
}
