//! apply_patch through the real binary: every fixture case (ours in
//! `tests/fixtures/apply_patch/`, the reference's vendored in
//! `tests/fixtures/apply_patch_upstream/`) in each CLI form, each
//! run in a fresh copy of the case's `input/`, plus the usage errors of the
//! CLI. The fixture layout is described in the fixtures folder's README.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_codex-lite");
const RUN_AS: &str = "--codex-run-as-apply-patch";

/// How the binary is asked to apply a patch.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// `apply_patch PATCH` through a symlink named `apply_patch`.
    Arg0Argument,
    /// `apply_patch < PATCH` through the same symlink.
    Arg0Stdin,
    /// `codex-lite --codex-run-as-apply-patch PATCH`.
    RunAs,
}

/// A `bin/` directory holding `apply_patch` and `applypatch` symlinks to the
/// binary under test.
struct Links {
    dir: TempDir,
}

impl Links {
    fn new() -> Self {
        let dir = TempDir::new("apply-patch-bin");
        for name in ["apply_patch", "applypatch"] {
            crate::support::os::link_executable(Path::new(BIN), dir.path(), name);
        }
        Links { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    }
}

fn run(program: &Path, args: &[OsString], cwd: &Path, stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn run_form(form: Form, links: &Links, patch: &str, cwd: &Path) -> Output {
    match form {
        Form::Arg0Argument => run(&links.path("apply_patch"), &[patch.into()], cwd, None),
        Form::Arg0Stdin => run(&links.path("apply_patch"), &[], cwd, Some(patch.as_bytes())),
        Form::RunAs => run(Path::new(BIN), &[RUN_AS.into(), patch.into()], cwd, None),
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every regular file under `root` by its `/`-separated relative path.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.insert(name, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, "", &mut out);
    out
}

fn describe_tree_difference(
    got: &BTreeMap<String, Vec<u8>>,
    want: &BTreeMap<String, Vec<u8>>,
) -> Option<String> {
    let mut problems = Vec::new();
    for (name, bytes) in want {
        match got.get(name) {
            None => problems.push(format!("missing {name}")),
            Some(actual) if actual != bytes => problems.push(format!(
                "{name} differs:\n  want {:?}\n  got  {:?}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(actual)
            )),
            Some(_) => {}
        }
    }
    for name in got.keys().filter(|name| !want.contains_key(*name)) {
        problems.push(format!("unexpected file {name}"));
    }
    (!problems.is_empty()).then(|| problems.join("\n"))
}

/// Runs one case in one form; `Err` describes every mismatch.
fn check_case(case: &Path, form: Form, links: &Links) -> Result<(), String> {
    let patch = std::fs::read_to_string(case.join("patch.txt")).map_err(|e| e.to_string())?;
    let work = TempDir::new("apply-patch-case");
    if case.join("input").is_dir() {
        copy_tree(&case.join("input"), work.path());
    }
    let output = run_form(form, links, &patch, work.path());
    let cwd = std::fs::canonicalize(work.path()).unwrap();
    let mut problems = Vec::new();
    if let Some(diff) =
        describe_tree_difference(&files(work.path()), &files(&case.join("expected")))
    {
        problems.push(diff);
    }
    let read = |name: &str| std::fs::read_to_string(case.join(name)).ok();
    if let Some(code) = read("expected_exit_code") {
        let want: i32 = code.trim().parse().unwrap();
        if output.status.code() != Some(want) {
            problems.push(format!("exit code {:?}, want {want}", output.status.code()));
        }
    }
    let streams = [
        ("stdout", "expected_stdout.txt", &output.stdout),
        ("stderr", "expected_stderr.txt", &output.stderr),
    ];
    for (stream, file, actual) in streams {
        if let Some(want) = read(file) {
            let want = want.replace("{cwd}", &cwd.display().to_string());
            let actual = String::from_utf8_lossy(actual);
            if actual != want {
                problems.push(format!("{stream}:\n  want {want:?}\n  got  {actual:?}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} [{form:?}]\n{}\n(stderr was {:?})",
            case.display(),
            problems.join("\n"),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Runs every case folder under `root` in every form; returns the number of
/// cases, panicking with all failures at once.
fn check_cases(root: &Path) -> usize {
    let links = Links::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for case in &cases {
        for form in [Form::Arg0Argument, Form::Arg0Stdin, Form::RunAs] {
            if let Err(problem) = check_case(case, form, &links) {
                failures.push(problem);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n\n{}",
        failures.len(),
        cases.len() * 3,
        failures.join("\n\n")
    );
    cases.len()
}

#[test]
fn own_fixture_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apply_patch");
    let count = check_cases(&root);
    assert!(count >= 20, "only {count} own cases");
    eprintln!("ran {count} own apply_patch cases in 3 CLI forms");
}

#[test]
fn upstream_fixture_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apply_patch_upstream");
    let count = check_cases(&root);
    assert!(count > 0, "no upstream cases in {}", root.display());
    eprintln!("ran {count} upstream apply_patch cases in 3 CLI forms");
}

const PATCH: &str = "*** Begin Patch\n*** Add File: hi.txt\n+hi\n*** End Patch\n";

#[test]
fn applypatch_alias_and_absolute_paths() {
    let links = Links::new();
    let work = TempDir::new("apply-patch-cli");
    let out = run(
        &links.path("applypatch"),
        &[PATCH.into()],
        work.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Success. Updated the following files:\nA hi.txt\n"
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("hi.txt")).unwrap(),
        "hi\n"
    );

    // An absolute path is accepted and reported as written.
    let target = work.path().join("abs.txt");
    let patch = format!(
        "*** Begin Patch\n*** Add File: {}\n+abs\n*** End Patch",
        target.display()
    );
    let out = run(
        Path::new(BIN),
        &[RUN_AS.into(), patch.into()],
        work.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "Success. Updated the following files:\nA {}\n",
            target.display()
        )
    );
    assert_eq!(std::fs::read_to_string(target).unwrap(), "abs\n");
}

/// (program, args, stdin, exit code, stderr)
type UsageCase<'a> = (&'a Path, Vec<OsString>, Option<&'a [u8]>, i32, &'a str);

#[test]
fn cli_usage_errors() {
    let links = Links::new();
    let work = TempDir::new("apply-patch-usage");
    let apply_patch = links.path("apply_patch");
    let cases: Vec<UsageCase> = vec![
        (
            &apply_patch,
            vec![],
            Some(b""),
            2,
            "Usage: apply_patch 'PATCH'\n       echo 'PATCH' | apply_patch\n",
        ),
        (
            &apply_patch,
            vec![PATCH.into(), "extra".into()],
            None,
            2,
            "Error: apply_patch accepts exactly one argument.\n",
        ),
        (
            Path::new(BIN),
            vec![RUN_AS.into()],
            None,
            1,
            "Error: --codex-run-as-apply-patch requires a UTF-8 PATCH argument.\n",
        ),
        (
            &apply_patch,
            vec![non_utf8()],
            None,
            1,
            "Error: apply_patch requires a UTF-8 PATCH argument.\n",
        ),
        (
            Path::new(BIN),
            vec![RUN_AS.into(), non_utf8()],
            None,
            1,
            "Error: --codex-run-as-apply-patch requires a UTF-8 PATCH argument.\n",
        ),
    ];
    for (program, args, stdin, code, stderr) in cases {
        let out = run(program, &args, work.path(), stdin);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), stderr, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(files(work.path()).is_empty(), "usage errors must not write");
}

fn non_utf8() -> OsString {
    crate::support::os::non_unicode_arg()
}
