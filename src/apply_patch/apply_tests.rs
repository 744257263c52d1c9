//! Unit tests of `apply.rs`: the update rules as a table over in-memory
//! contents, then previews and writes in throwaway directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::*;
use crate::apply_patch::parser::{Chunk, parse_patch};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "codex-lite-apply-unit-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, contents: &str) {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The chunks of a one-file update patch whose body (after the Update
/// header) is `body`.
fn chunks(body: &str) -> Vec<Chunk> {
    let text = format!("*** Begin Patch\n*** Update File: f\n{body}\n*** End Patch");
    match parse_patch(&text).unwrap().hunks.remove(0) {
        Hunk::Update { chunks, .. } => chunks,
        other => panic!("not an update: {other:?}"),
    }
}

fn update(original: &str, body: &str) -> Result<String, ApplyError> {
    updated_contents(original, Path::new("/w/f"), &chunks(body))
}

#[test]
fn update_table() {
    // (name, original, chunk body, expected)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("replace", "a\nb\nc\n", "@@\n a\n-b\n+B", "a\nB\nc\n"),
        (
            "crlf kept",
            "a\r\nb\r\nc\r\n",
            "@@\n a\n-b\n+B",
            "a\r\nB\r\nc\r\n",
        ),
        (
            "crlf addition",
            "a\r\nb\r\n",
            "@@\n+c\n+d",
            "a\r\nb\r\nc\r\nd\r\n",
        ),
        (
            "mixed endings",
            "a\nb\r\nc\n",
            "@@\n b\n-c\n+C",
            "a\nb\r\nC\n",
        ),
        (
            "bom kept, line 1 matched",
            "\u{FEFF}first\nsecond\n",
            "@@\n first\n-second\n+2nd",
            "\u{FEFF}first\n2nd\n",
        ),
        (
            "bom with first line replaced",
            "\u{FEFF}first\nsecond\n",
            "@@\n-first\n+1st",
            "\u{FEFF}1st\nsecond\n",
        ),
        ("no final newline kept", "a\nb\nc", "@@\n-a\n+A", "A\nb\nc"),
        (
            "no final newline, context last",
            "a\nb\nc",
            "@@\n-b\n+B\n c",
            "a\nB\nc",
        ),
        ("last line rewritten", "a\nb", "@@\n a\n-b\n+B", "a\nB\n"),
        (
            "addition after unterminated line",
            "a\nb",
            "@@\n+c",
            "a\nb\nc\n",
        ),
        ("deleting the last line", "a\nb", "@@\n a\n-b", "a\n"),
        (
            "loose context keeps the file's text",
            "    fn foo()  \n        x\n",
            "@@\n fn foo()\n-x\n+        y",
            "    fn foo()  \n        y\n",
        ),
        (
            "typographic context keeps the file's text",
            "say \u{201C}hi\u{201D} \u{2014} ok\nnext\n",
            "@@\n say \"hi\" - ok\n-next\n+after \u{2014} “x”",
            "say \u{201C}hi\u{201D} \u{2014} ok\nafter \u{2014} “x”\n",
        ),
        (
            "nbsp context",
            "a\u{00A0}b\nc\n",
            "@@\n a b\n-c\n+d",
            "a\u{00A0}b\nd\n",
        ),
        (
            "trailing empty line retried",
            "a\nb\n",
            "@@\n a\n-b\n+c\n ",
            "a\nc\n",
        ),
        (
            "addition before trailing blank line",
            "a\n\n",
            "@@\n+b",
            "a\nb\n\n",
        ),
        (
            "trailing blank line kept",
            "a\nb\n\n",
            "@@\n-a\n+A",
            "A\nb\n\n",
        ),
        (
            "added empty last line is the final newline",
            "a\n",
            "@@\n+b\n+",
            "a\nb\n",
        ),
        (
            "added blank line in the middle",
            "a\nb\n",
            "@@\n a\n+\n b",
            "a\n\nb\n",
        ),
        (
            "end of file anchor",
            "x\ny\nx\ny\n",
            "@@\n x\n-y\n+z\n*** End of File",
            "x\ny\nx\nz\n",
        ),
        (
            "context header picks the second function",
            "fn a\n  ret\nfn b\n  ret\n",
            "@@ fn b\n-  ret\n+  done",
            "fn a\n  ret\nfn b\n  done\n",
        ),
        (
            "two chunks bottom-up",
            "1\n2\n3\n4\n5\n",
            "@@\n-2\n+two\n+deux\n@@\n 4\n-5\n+five",
            "1\ntwo\ndeux\n3\n4\nfive\n",
        ),
        (
            "cursor moves past the first chunk",
            "x\nx\n",
            "@@\n-x\n+a\n@@\n-x\n+b",
            "a\nb\n",
        ),
        ("delete every line", "a\nb\n", "@@\n-a\n-b", ""),
        ("empty file", "", "@@\n+x", "x\n"),
        (
            "bom, crlf and no final newline together",
            "\u{FEFF}a\r\nb\r\nc",
            "@@\n a\n-b\n+B\n+B2",
            "\u{FEFF}a\r\nB\r\nB2\r\nc",
        ),
        (
            "pure addition with context header still appends",
            "fn a\nfn b\nend\n",
            "@@ fn a\n+tail",
            "fn a\nfn b\nend\ntail\n",
        ),
    ];
    for (name, original, body, expected) in cases {
        let got = update(original, body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, *expected, "{name}");
    }
}

#[test]
fn update_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "a\nb\n",
            "@@ nope\n-a",
            "Failed to find context 'nope' in /w/f",
        ),
        (
            "a\nb\n",
            "@@\n a\n-c\n+d",
            "Failed to find expected lines in /w/f:\na\nc",
        ),
        // The context is searched from the cursor only.
        (
            "a\nb\n",
            "@@\n-b\n+B\n@@ a\n+x",
            "Failed to find context 'a' in /w/f",
        ),
        // End of file anchoring does not search elsewhere.
        (
            "a\nb\n",
            "@@\n-a\n+A\n*** End of File",
            "Failed to find expected lines in /w/f:\na",
        ),
    ];
    for (original, body, expected) in cases {
        let err = update(original, body).expect_err(body);
        assert_eq!(err.to_string(), *expected, "{body}");
    }
}

#[test]
fn resolves_paths_lexically() {
    let cases = [
        ("/w", "a/b.txt", "/w/a/b.txt"),
        ("/w", "./a/../b.txt", "/w/b.txt"),
        ("/w/x", "../b.txt", "/w/b.txt"),
        ("/w", "/abs/c.txt", "/abs/c.txt"),
        ("/", "../../c", "/c"),
    ];
    for (cwd, path, expected) in cases {
        assert_eq!(
            resolve(Path::new(cwd), Path::new(path)),
            PathBuf::from(expected)
        );
    }
}

#[test]
fn previews_without_writing() {
    let dir = TempDir::new();
    dir.write("mod.txt", "one\ntwo\nthree\n");
    dir.write("del.txt", "bye\n");
    dir.write("old/name.txt", "x\n");
    let patch = parse_patch(
        "*** Begin Patch\n*** Add File: new/a.txt\n+hello\n*** Update File: new/a.txt\n@@\n-hello\n+hello again\n*** Update File: mod.txt\n@@\n one\n-two\n+2\n*** Delete File: del.txt\n*** Update File: old/name.txt\n*** Move to: renamed.txt\n@@\n-x\n+y\n*** End Patch",
    )
    .unwrap();
    let changes = compute_changes(&patch, &dir.0).unwrap();
    let kinds: Vec<(PathBuf, ChangeKind, String)> = changes
        .iter()
        .map(|c| (c.path.clone(), c.kind.clone(), c.unified_diff.clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (
                dir.0.join("new/a.txt"),
                ChangeKind::Add,
                "hello\n".to_string()
            ),
            (
                dir.0.join("new/a.txt"),
                ChangeKind::Update { move_path: None },
                "@@ -1 +1 @@\n-hello\n+hello again\n".to_string()
            ),
            (
                dir.0.join("mod.txt"),
                ChangeKind::Update { move_path: None },
                "@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n".to_string()
            ),
            (
                dir.0.join("del.txt"),
                ChangeKind::Delete,
                "bye\n".to_string()
            ),
            (
                dir.0.join("old/name.txt"),
                ChangeKind::Update {
                    move_path: Some(dir.0.join("renamed.txt"))
                },
                "@@ -1 +1 @@\n-x\n+y\n".to_string()
            ),
        ]
    );
    assert_eq!(changes[2].new_contents.as_deref(), Some("one\n2\nthree\n"));
    assert_eq!(
        changes[2].old_contents.as_deref(),
        Some("one\ntwo\nthree\n")
    );
    // Nothing was written.
    assert!(!dir.0.join("new").exists());
    assert_eq!(dir.read("mod.txt"), "one\ntwo\nthree\n");
    assert_eq!(dir.read("del.txt"), "bye\n");
    assert!(!dir.0.join("renamed.txt").exists());
}

#[test]
fn preview_errors_match_the_failing_hunk() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.0.join("sub")).unwrap();
    let abs = |name: &str| dir.0.join(name).display().to_string();
    let cases = [
        (
            "*** Delete File: missing.txt",
            format!("Failed to read {}: {}", abs("missing.txt"), not_found()),
        ),
        (
            "*** Update File: missing.txt\n@@\n-a\n+b",
            format!(
                "Failed to read file to update {}: {}",
                abs("missing.txt"),
                not_found()
            ),
        ),
        // A file deleted by an earlier hunk is gone for the later ones.
        (
            "*** Add File: t.txt\n+a\n*** Delete File: t.txt\n*** Update File: t.txt\n@@\n-a\n+b",
            format!(
                "Failed to read file to update {}: {}",
                abs("t.txt"),
                not_found()
            ),
        ),
        (
            "*** Add File: t.txt\n+a\n*** Update File: t.txt\n@@\n-zzz\n+b",
            format!("Failed to find expected lines in {}:\nzzz", abs("t.txt")),
        ),
    ];
    for (body, expected) in cases {
        let patch = parse_patch(&format!("*** Begin Patch\n{body}\n*** End Patch")).unwrap();
        let err = compute_changes(&patch, &dir.0).expect_err(body);
        assert_eq!(err.to_string(), expected, "{body}");
    }
    let empty = parse_patch("*** Begin Patch\n*** End Patch").unwrap();
    assert_eq!(
        compute_changes(&empty, &dir.0).unwrap_err().to_string(),
        "No files were modified."
    );
}

#[test]
fn applies_in_order_and_keeps_earlier_hunks_on_failure() {
    let dir = TempDir::new();
    dir.write("keep.txt", "k\n");
    let patch = parse_patch(
        "*** Begin Patch\n*** Add File: made.txt\n+hi\n*** Delete File: keep.txt\n*** Update File: nope.txt\n@@\n-a\n+b\n*** Add File: never.txt\n+x\n*** End Patch",
    )
    .unwrap();
    let err = apply_patch(&patch, &dir.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Failed to read file to update {}: {}",
            dir.0.join("nope.txt").display(),
            not_found()
        )
    );
    assert_eq!(dir.read("made.txt"), "hi\n");
    assert!(!dir.0.join("keep.txt").exists());
    assert!(!dir.0.join("never.txt").exists());
}

#[test]
fn summary_lists_paths_as_written() {
    let dir = TempDir::new();
    dir.write("a.txt", "a\n");
    dir.write("b.txt", "b\n");
    dir.write("same.txt", "s\n");
    let patch = parse_patch(
        "*** Begin Patch\n*** Delete File: ./b.txt\n*** Update File: a.txt\n*** Move to: moved/a.txt\n@@\n-a\n+A\n*** Update File: same.txt\n*** Move to: ./same.txt\n@@\n-s\n+S\n*** Add File: n.txt\n+n\n*** End Patch",
    )
    .unwrap();
    let summary = apply_patch(&patch, &dir.0).unwrap();
    assert_eq!(
        summary.to_string(),
        "Success. Updated the following files:\nA n.txt\nM moved/a.txt\nM ./same.txt\nD ./b.txt\n"
    );
    assert_eq!(dir.read("moved/a.txt"), "A\n");
    assert!(!dir.0.join("a.txt").exists());
    // A move onto itself must not delete the file.
    assert_eq!(dir.read("same.txt"), "S\n");
}

#[test]
fn edits_the_middle_of_a_10k_line_file() {
    let dir = TempDir::new();
    let original: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
    dir.write("big.txt", &original);
    let patch = parse_patch(
        "*** Begin Patch\n*** Update File: big.txt\n@@ line 4999\n line 5000\n-line 5001\n+changed 5001\n line 5002\n@@\n line 9998\n-line 9999\n+last\n*** End of File\n*** End Patch",
    )
    .unwrap();
    let started = Instant::now();
    let changes = compute_changes(&patch, &dir.0).unwrap();
    let previewed = started.elapsed();
    let started = Instant::now();
    apply_patch(&patch, &dir.0).unwrap();
    let applied = started.elapsed();
    println!("10k-line file: preview with diff {previewed:?}, apply {applied:?}");
    let expected = original
        .replace("line 5001\n", "changed 5001\n")
        .replace("line 9999\n", "last\n");
    assert_eq!(dir.read("big.txt"), expected);
    assert_eq!(
        changes[0].unified_diff,
        "@@ -5001,3 +5001,3 @@\n line 5000\n-line 5001\n+changed 5001\n line 5002\n@@ -9999,2 +9999,2 @@\n line 9998\n-line 9999\n+last\n"
    );
}

/// The OS's text for a missing file, as `io::Error` shows it ("No such file or directory (os
/// error 2)" on Linux; Windows words it its own way).
fn not_found() -> String {
    std::io::Error::from_raw_os_error(2).to_string()
}

/// Windows spellings: `\` separators, drive letters, UNC shares, `..` that stops at a drive or
/// share root.
#[cfg(windows)]
#[test]
fn resolves_windows_paths() {
    let cases = [
        (r"C:\w", r"a\b.txt", r"C:\w\a\b.txt"),
        (r"C:\w", "a/b.txt", r"C:\w\a\b.txt"),
        (r"C:\w\x", r"..\b.txt", r"C:\w\b.txt"),
        (r"C:\w", r"D:\abs\c.txt", r"D:\abs\c.txt"),
        (r"C:\w", r"\rooted.txt", r"C:\rooted.txt"),
        (r"C:\", r"..\..\c", r"C:\c"),
        (r"C:\w", r"\\server\share\f.txt", r"\\server\share\f.txt"),
        (
            r"\\server\share\dir",
            r"..\..\x.txt",
            r"\\server\share\x.txt",
        ),
        (
            r"\\server\share\dir",
            r"sub\y.txt",
            r"\\server\share\dir\sub\y.txt",
        ),
    ];
    for (cwd, path, expected) in cases {
        assert_eq!(
            resolve(Path::new(cwd), Path::new(path)),
            PathBuf::from(expected),
            "{cwd} + {path}"
        );
    }
}

/// A patch naming files with `\`, or by their absolute drive path, writes where Windows
/// users mean.
#[cfg(windows)]
#[test]
fn applies_patches_with_windows_paths() {
    let dir = TempDir::new();
    dir.write(r"src\old.txt", "a\r\n");
    let absolute = dir.0.join("abs.txt");
    let patch = parse_patch(&format!(
        "*** Begin Patch\n*** Add File: sub\\new.txt\n+hi\n*** Update File: src\\old.txt\n@@\n-a\n+b\n*** Add File: {}\n+x\n*** End Patch",
        absolute.display()
    ))
    .unwrap();
    apply_patch(&patch, &dir.0).unwrap();
    assert_eq!(dir.read(r"sub\new.txt"), "hi\n");
    assert_eq!(dir.read("sub/new.txt"), "hi\n");
    // CRLF files keep their line endings.
    assert_eq!(dir.read(r"src\old.txt"), "b\r\n");
    assert_eq!(std::fs::read_to_string(&absolute).unwrap(), "x\n");
}
