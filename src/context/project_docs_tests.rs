#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("codex-lite-docs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Self {
            root: root.canonicalize().unwrap(),
        }
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> &Self {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        self
    }

    fn dir(&self, rel: &str) -> PathBuf {
        let path = self.root.join(rel);
        std::fs::create_dir_all(&path).unwrap();
        path
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Makes `dir` look like the top of a git work tree.
fn git_init(t: &Tree, dir: &str) {
    t.write(&format!("{dir}/.git/HEAD"), b"ref: refs/heads/main\n");
}

fn config(max_bytes: usize, fallbacks: &[&str]) -> DocsConfig {
    DocsConfig {
        max_bytes,
        fallback_filenames: fallbacks.iter().map(|s| s.to_string()).collect(),
    }
}

fn texts(docs: &ProjectDocs) -> Vec<&str> {
    docs.project.iter().map(|(_, t)| t.as_str()).collect()
}

#[test]
fn git_root_down_to_cwd_with_overrides_and_fallbacks() {
    let t = Tree::new("walk");
    git_init(&t, "repo");
    t.write("AGENTS.md", b"above the repo\n")
        .write("repo/AGENTS.md", b"root\n")
        .write("repo/a/CLAUDE.md", b"fallback a\n")
        .write("repo/a/b/AGENTS.md", b"plain b\n")
        .write("repo/a/b/AGENTS.override.md", b"override b\n")
        .write("repo/a/b/c/AGENTS.md", b"   \n");
    let home = t.dir("home");
    let cwd = t.dir("repo/a/b/c");
    let docs = ProjectDocs::load(&home, &cwd, &config(1000, &["CLAUDE.md"]));
    assert_eq!(texts(&docs), ["root\n", "fallback a\n", "override b\n"]);
    assert!(docs.warnings.is_empty(), "{:?}", docs.warnings);
    let without_fallback = ProjectDocs::load(&home, &cwd, &config(1000, &[]));
    assert_eq!(texts(&without_fallback), ["root\n", "override b\n"]);
}

#[test]
fn without_a_git_root_only_the_cwd_counts() {
    let t = Tree::new("nogit");
    t.write("AGENTS.md", b"parent\n")
        .write("x/AGENTS.md", b"cwd\n");
    // An empty `.git` directory is not a repository.
    t.dir(".git");
    let docs = ProjectDocs::load(&t.dir("home"), &t.dir("x"), &config(1000, &[]));
    assert_eq!(texts(&docs), ["cwd\n"]);
    assert_eq!(search_dirs(&t.dir("x")), [t.dir("x")]);
}

#[test]
fn a_git_worktree_file_marks_the_root() {
    let t = Tree::new("worktree");
    t.write("wt/.git", b"gitdir: /elsewhere\n")
        .write("wt/AGENTS.md", b"wt root\n");
    let docs = ProjectDocs::load(&t.dir("home"), &t.dir("wt/sub"), &config(1000, &[]));
    assert_eq!(texts(&docs), ["wt root\n"]);
}

#[test]
fn the_budget_cuts_and_then_drops_files_with_warnings() {
    let t = Tree::new("budget");
    git_init(&t, ".");
    t.write("AGENTS.md", &[b'R'; 30])
        .write("a/AGENTS.md", &[b'A'; 100])
        .write("a/b/AGENTS.md", b"never read\n");
    t.write("home/AGENTS.md", &[b'G'; 500]);
    let docs = ProjectDocs::load(&t.dir("home"), &t.dir("a/b"), &config(50, &[]));
    assert_eq!(
        docs.global.as_deref().map(str::len),
        Some(500),
        "the global file is not counted"
    );
    assert_eq!(
        texts(&docs),
        ["R".repeat(30).as_str(), "A".repeat(20).as_str()]
    );
    assert_eq!(docs.warnings.len(), 2, "{:?}", docs.warnings);
    assert!(docs.warnings[0].contains(&t.root.join("a/AGENTS.md").display().to_string()));
    assert!(
        docs.warnings[0].contains("20 of 100 bytes"),
        "{}",
        docs.warnings[0]
    );
    assert!(docs.warnings[1].contains(&t.root.join("a/b/AGENTS.md").display().to_string()));
}

#[test]
fn zero_disables_project_files_but_not_the_global_one() {
    let t = Tree::new("zero");
    git_init(&t, ".");
    t.write("AGENTS.md", b"project\n")
        .write("home/AGENTS.md", b"global\n");
    let docs = ProjectDocs::load(&t.dir("home"), &t.root, &config(0, &[]));
    assert!(docs.project.is_empty());
    assert_eq!(docs.global.as_deref(), Some("global\n"));
}

#[test]
fn binary_files_are_skipped_and_cut_characters_dropped() {
    let t = Tree::new("binary");
    t.write("AGENTS.md", b"\x00\x01\x02\xff binary\n")
        .write("CLAUDE.md", "é".repeat(10).as_bytes());
    let docs = ProjectDocs::load(&t.dir("home"), &t.root, &config(5, &["CLAUDE.md"]));
    // The binary AGENTS.md is skipped, the fallback is used; 5 bytes hold two whole "é".
    assert_eq!(texts(&docs), ["éé"]);
    assert!(
        docs.warnings.iter().any(|w| w.contains("not a text file")),
        "{:?}",
        docs.warnings
    );
    assert!(
        docs.warnings
            .iter()
            .any(|w| w.contains("cut to 4 of 20 bytes")),
        "{:?}",
        docs.warnings
    );
}

#[test]
fn a_huge_file_is_read_only_up_to_the_budget() {
    let t = Tree::new("huge");
    let file = std::fs::File::create(t.root.join("AGENTS.md")).unwrap();
    file.set_len(4 * 1024 * 1024 * 1024).unwrap(); // sparse: 4 GiB of NULs, 0 bytes on disk
    t.write("CLAUDE.md", &[b'x'; 64 * 1024]);
    let docs = ProjectDocs::load(&t.dir("home"), &t.root, &config(1000, &["CLAUDE.md"]));
    assert_eq!(texts(&docs), ["x".repeat(1000).as_str()]);
}

#[test]
fn rendering() {
    let cwd = Path::new("/w/p");
    let docs = ProjectDocs {
        global: Some("global\n".into()),
        project: vec![
            (PathBuf::from("/w/AGENTS.md"), "one\n".into()),
            (PathBuf::from("/w/p/AGENTS.md"), "two".into()),
        ],
        warnings: Vec::new(),
    };
    let text = docs.render(cwd, false).unwrap();
    assert_eq!(
        text,
        "# AGENTS.md instructions for /w/p\n\n<INSTRUCTIONS>\nglobal\n\n--- project-doc ---\n\none\n\ntwo\n</INSTRUCTIONS>"
    );
    let again = docs.render(cwd, true).unwrap();
    assert_ne!(again, text);
    assert_eq!(comparable(&again), text);
    let only_project = ProjectDocs {
        global: None,
        ..docs.clone()
    };
    assert!(
        !only_project
            .render(cwd, false)
            .unwrap()
            .contains("project-doc")
    );
    assert_eq!(ProjectDocs::default().render(cwd, false), None);
    assert!(render_none(cwd).starts_with(HEADER));
}
