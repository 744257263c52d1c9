//! Line diffs for reporting changes: a minimal edit script (Myers' O(ND)
//! algorithm in linear space) rendered as unified-diff hunks, and a
//! `diff --git` file section for cumulative turn diffs.
//!
//! Owns only text-to-text diffing; which files changed and how is decided in
//! `apply.rs`. Lines keep their own endings (a CRLF line is printed with its
//! `\r\n`), and a last line without a newline gets the usual
//! `\ No newline at end of file` marker.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// Lines of context around each change in the `fileChange` diffs; the
/// reference reports updates with one line of context.
pub const FILE_CHANGE_CONTEXT_LINES: usize = 1;

/// Lines of context in `diff --git` sections, as git prints them.
pub const GIT_CONTEXT_LINES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Equal,
    Delete,
    Insert,
}

/// One step of the edit script, with the 0-based positions in the old and
/// new texts at which it happens.
#[derive(Debug, Clone, Copy)]
struct Op {
    tag: Tag,
    old: usize,
    new: usize,
}

/// The unified-diff hunks (`@@ -a,b +c,d @@` headers and ` `/`-`/`+` lines,
/// no `---`/`+++` file headers) turning `old` into `new`, with `context`
/// unchanged lines around each change. Empty when the texts are equal.
pub fn unified_diff(old: &str, new: &str, context: usize) -> String {
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = edit_script(&old_lines, &new_lines);
    let mut out = String::new();
    for (lo, hi) in hunk_ranges(&ops, context) {
        let hunk = &ops[lo..=hi];
        let old_count = hunk.iter().filter(|op| op.tag != Tag::Insert).count();
        let new_count = hunk.iter().filter(|op| op.tag != Tag::Delete).count();
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            range(hunk[0].old, old_count),
            range(hunk[0].new, new_count)
        );
        for op in hunk {
            let (sign, line) = match op.tag {
                Tag::Equal => (' ', old_lines[op.old]),
                Tag::Delete => ('-', old_lines[op.old]),
                Tag::Insert => ('+', new_lines[op.new]),
            };
            out.push(sign);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    out
}

/// A `diff --git` section for one file, as a cumulative turn diff shows it:
/// `None` contents mean the file did not exist before (added) or does not
/// exist after (deleted). Paths are as they should appear after `a/`/`b/`.
/// Empty when nothing changed.
pub fn git_file_diff(
    old_path: &str,
    new_path: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> String {
    if old == new && old_path == new_path {
        return String::new();
    }
    let mut out = format!("diff --git a/{old_path} b/{new_path}\n");
    match (old, new) {
        (None, Some(_)) => out.push_str("new file mode 100644\n"),
        (Some(_), None) => out.push_str("deleted file mode 100644\n"),
        _ => {}
    }
    let body = unified_diff(old.unwrap_or(""), new.unwrap_or(""), GIT_CONTEXT_LINES);
    if !body.is_empty() {
        let from = old.map_or("/dev/null".to_string(), |_| format!("a/{old_path}"));
        let to = new.map_or("/dev/null".to_string(), |_| format!("b/{new_path}"));
        let _ = write!(out, "--- {from}\n+++ {to}\n{body}");
    }
    out
}

/// A hunk range in GNU form: `start,count`, `start` alone for one line, and
/// for an empty range the line before it.
fn range(start: usize, count: usize) -> String {
    match count {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{count}", start + 1),
    }
}

/// Inclusive op-index ranges of the hunks: changes closer than `2 * context`
/// unchanged lines share a hunk.
fn hunk_ranges(ops: &[Op], context: usize) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let changes = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.tag != Tag::Equal)
        .map(|(at, _)| at);
    let mut group: Option<(usize, usize)> = None;
    for at in changes {
        group = match group {
            Some((first, last)) if at - last - 1 <= 2 * context => Some((first, at)),
            Some(done) => {
                ranges.push(done);
                Some((at, at))
            }
            None => Some((at, at)),
        };
    }
    ranges.extend(group);
    ranges
        .into_iter()
        .map(|(first, last)| {
            (
                first.saturating_sub(context),
                (last + context).min(ops.len() - 1),
            )
        })
        .collect()
}

/// A minimal edit script from `old` to `new`.
fn edit_script<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Op> {
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut intern = |lines: &[&'a str]| -> Vec<u32> {
        lines
            .iter()
            .map(|line| {
                let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
                *ids.entry(line).or_insert(next)
            })
            .collect()
    };
    let a = intern(old);
    let b = intern(new);
    let mut script = Script {
        a: &a,
        b: &b,
        ops: Vec::with_capacity(a.len().max(b.len())),
    };
    script.diff(0, a.len(), 0, b.len());
    script.ops
}

struct Script<'a> {
    a: &'a [u32],
    b: &'a [u32],
    ops: Vec<Op>,
}

impl Script<'_> {
    fn push(&mut self, tag: Tag, old: usize, new: usize) {
        self.ops.push(Op { tag, old, new });
    }

    /// Appends the ops turning `a[a_lo..a_hi]` into `b[b_lo..b_hi]`.
    fn diff(&mut self, mut a_lo: usize, mut a_hi: usize, mut b_lo: usize, mut b_hi: usize) {
        while a_lo < a_hi && b_lo < b_hi && self.a[a_lo] == self.b[b_lo] {
            self.push(Tag::Equal, a_lo, b_lo);
            a_lo += 1;
            b_lo += 1;
        }
        let mut suffix = 0;
        while a_lo < a_hi && b_lo < b_hi && self.a[a_hi - 1] == self.b[b_hi - 1] {
            a_hi -= 1;
            b_hi -= 1;
            suffix += 1;
        }
        let (a, b) = (&self.a[a_lo..a_hi], &self.b[b_lo..b_hi]);
        // After trimming both ends differ, so the distance is at least 2 and
        // each side of the middle snake is a strictly smaller problem; the
        // check only guards against a bug turning into endless recursion.
        let snake = if a.is_empty() || b.is_empty() || !have_common_line(a, b) {
            None
        } else {
            let (x0, y0, x1, y1) = middle_snake(a, b);
            let valid = x0 <= x1 && y0 <= y1 && x1 <= a.len() && y1 <= b.len();
            let progress = (x0, y0) != (a.len(), b.len()) && (x1, y1) != (0, 0);
            (valid && progress && x1 - x0 == y1 - y0).then_some((x0, y0, x1, y1))
        };
        match snake {
            Some((x0, y0, x1, y1)) => {
                self.diff(a_lo, a_lo + x0, b_lo, b_lo + y0);
                for step in 0..x1 - x0 {
                    self.push(Tag::Equal, a_lo + x0 + step, b_lo + y0 + step);
                }
                self.diff(a_lo + x1, a_hi, b_lo + y1, b_hi);
            }
            None => {
                for old in a_lo..a_hi {
                    self.push(Tag::Delete, old, b_lo);
                }
                for new in b_lo..b_hi {
                    self.push(Tag::Insert, a_hi, new);
                }
            }
        }
        for step in 0..suffix {
            self.push(Tag::Equal, a_hi + step, b_hi + step);
        }
    }
}

/// Whether any line of `a` also occurs in `b`: when none does, the diff is
/// "delete all, insert all" and the O(ND) search can be skipped.
fn have_common_line(a: &[u32], b: &[u32]) -> bool {
    let in_b: HashSet<u32> = b.iter().copied().collect();
    a.iter().any(|line| in_b.contains(line))
}

/// The middle snake of an optimal path from `(0,0)` to `(a.len(), b.len())`:
/// its start and end points `(x0, y0, x1, y1)` (Myers 1986, section 4b).
fn middle_snake(a: &[u32], b: &[u32]) -> (usize, usize, usize, usize) {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let delta = n - m;
    let odd = delta % 2 != 0;
    let max = (n + m + 1) / 2 + 1;
    let offset = max + 1;
    let size = (2 * offset + 1) as usize;
    // Furthest x on each diagonal k = x - y, forward from (0,0) and backward
    // from (n,m) (the backward ones in reversed coordinates).
    let mut forward = vec![0isize; size];
    let mut backward = vec![0isize; size];
    let at = |k: isize| (k + offset) as usize;
    for d in 0..=max {
        for k in (-d..=d).step_by(2) {
            let mut x = if k == -d || (k != d && forward[at(k - 1)] < forward[at(k + 1)]) {
                forward[at(k + 1)]
            } else {
                forward[at(k - 1)] + 1
            };
            let mut y = x - k;
            let (x0, y0) = (x, y);
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            forward[at(k)] = x;
            let kr = delta - k;
            if odd && (-(d - 1)..=d - 1).contains(&kr) && x + backward[at(kr)] >= n {
                return (x0 as usize, y0 as usize, x as usize, y as usize);
            }
        }
        for kr in (-d..=d).step_by(2) {
            let mut x = if kr == -d || (kr != d && backward[at(kr - 1)] < backward[at(kr + 1)]) {
                backward[at(kr + 1)]
            } else {
                backward[at(kr - 1)] + 1
            };
            let mut y = x - kr;
            let (x0, y0) = (x, y);
            while x < n && y < m && a[(n - 1 - x) as usize] == b[(m - 1 - y) as usize] {
                x += 1;
                y += 1;
            }
            backward[at(kr)] = x;
            let k = delta - kr;
            if !odd && (-d..=d).contains(&k) && forward[at(k)] + x >= n {
                return (
                    (n - x) as usize,
                    (m - y) as usize,
                    (n - x0) as usize,
                    (m - y0) as usize,
                );
            }
        }
    }
    // Unreachable for non-empty inputs: the paths meet by d = (n+m+1)/2.
    (0, 0, 0, 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Rebuilds both texts from the script and counts its edits.
    fn check_script(old: &[&str], new: &[&str]) -> usize {
        let ops = edit_script(old, new);
        let mut rebuilt_old = Vec::new();
        let mut rebuilt_new = Vec::new();
        let mut edits = 0;
        for op in &ops {
            match op.tag {
                Tag::Equal => {
                    assert_eq!(old[op.old], new[op.new]);
                    rebuilt_old.push(old[op.old]);
                    rebuilt_new.push(new[op.new]);
                }
                Tag::Delete => {
                    rebuilt_old.push(old[op.old]);
                    edits += 1;
                }
                Tag::Insert => {
                    rebuilt_new.push(new[op.new]);
                    edits += 1;
                }
            }
        }
        assert_eq!(rebuilt_old, old);
        assert_eq!(rebuilt_new, new);
        edits
    }

    fn lcs_len(a: &[&str], b: &[&str]) -> usize {
        let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                table[i][j] = if a[i] == b[j] {
                    table[i + 1][j + 1] + 1
                } else {
                    table[i + 1][j].max(table[i][j + 1])
                };
            }
        }
        table[0][0]
    }

    #[test]
    fn edit_scripts_are_valid_and_minimal() {
        // A small xorshift generator: deterministic, no dependency.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = ["a", "b", "c", "d", "e", "f"];
        for round in 0..4000u64 {
            let letters = 2 + round % 5;
            let old_len = (next() % 24) as usize;
            let new_len = (next() % 24) as usize;
            let mut pick = || alphabet[(next() % letters) as usize];
            let old: Vec<&str> = (0..old_len).map(|_| pick()).collect();
            let new: Vec<&str> = (0..new_len).map(|_| pick()).collect();
            let edits = check_script(&old, &new);
            assert_eq!(
                edits,
                old.len() + new.len() - 2 * lcs_len(&old, &new),
                "{old:?} -> {new:?}"
            );
        }
    }

    #[test]
    fn unified_diff_table() {
        let cases: &[(&str, &str, usize, &str)] = &[
            ("a\nb\n", "a\nb\n", 1, ""),
            ("", "", 3, ""),
            (
                "a\nb\nc\n",
                "a\nB\nc\n",
                1,
                "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n",
            ),
            ("a\nb\nc\n", "a\nB\nc\n", 0, "@@ -2 +2 @@\n-b\n+B\n"),
            ("", "x\n", 3, "@@ -0,0 +1 @@\n+x\n"),
            ("x\ny\n", "", 3, "@@ -1,2 +0,0 @@\n-x\n-y\n"),
            ("a\nb\n", "a\n", 1, "@@ -1,2 +1 @@\n a\n-b\n"),
            ("a\n", "a\nb\n", 0, "@@ -1,0 +2 @@\n+b\n"),
            (
                "a\nb",
                "a\nb\n",
                1,
                "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n",
            ),
            (
                "a\r\nb\r\n",
                "a\r\nc\r\n",
                1,
                "@@ -1,2 +1,2 @@\n a\r\n-b\r\n+c\r\n",
            ),
            // Two changes far apart make two hunks; close ones share one.
            (
                "1\n2\n3\n4\n5\n6\n7\n8\n",
                "1\nX\n3\n4\n5\n6\nY\n8\n",
                1,
                "@@ -1,3 +1,3 @@\n 1\n-2\n+X\n 3\n@@ -6,3 +6,3 @@\n 6\n-7\n+Y\n 8\n",
            ),
            (
                "1\n2\n3\n4\n5\n",
                "1\nX\n3\nY\n5\n",
                1,
                "@@ -1,5 +1,5 @@\n 1\n-2\n+X\n 3\n-4\n+Y\n 5\n",
            ),
        ];
        for (old, new, context, expected) in cases {
            assert_eq!(
                unified_diff(old, new, *context),
                *expected,
                "{old:?} -> {new:?}"
            );
        }
    }

    #[test]
    fn git_file_diff_sections() {
        assert_eq!(
            git_file_diff("a.txt", "a.txt", None, Some("x\n")),
            "diff --git a/a.txt b/a.txt\nnew file mode 100644\n--- /dev/null\n+++ b/a.txt\n@@ -0,0 +1 @@\n+x\n"
        );
        assert_eq!(
            git_file_diff("a.txt", "a.txt", Some("x\n"), None),
            "diff --git a/a.txt b/a.txt\ndeleted file mode 100644\n--- a/a.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
        );
        assert_eq!(
            git_file_diff("a.txt", "b.txt", Some("x\n"), Some("y\n")),
            "diff --git a/a.txt b/b.txt\n--- a/a.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-x\n+y\n"
        );
        assert_eq!(git_file_diff("a", "a", Some("x\n"), Some("x\n")), "");
    }
}
