//! The command line: help, version, argument errors, startup errors.

use std::process::{Command, Output};

use crate::support::TempDir;

fn run(args: &[&str], codex_home: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_codex-lite"))
        .args(args)
        .env("CODEX_HOME", codex_home)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn help_and_version() {
    let home = TempDir::new("cli");
    let out = run(&["--help"], home.path());
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Usage: codex-lite") && text.contains("app-server"),
        "{text}"
    );
    let out = run(&["--version"], home.path());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "codex-lite 0.1.0\n");
}

#[test]
fn argument_errors_exit_2_with_a_message() {
    let home = TempDir::new("cli");
    for (args, needle) in [
        (&["--frobnicate"][..], "unexpected argument '--frobnicate'"),
        (
            &["app-server", "--listen", "ws://127.0.0.1:4000"][..],
            "only stdio:// is supported",
        ),
        (
            &["app-server", "--bogus"][..],
            "unexpected argument '--bogus'",
        ),
        (&["frob"][..], "unrecognized subcommand 'frob'"),
        (&[][..], "a command is required"),
    ] {
        let out = run(args, home.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_broken_config_file_is_a_startup_error_naming_the_file() {
    let home = TempDir::new("cli");
    std::fs::write(
        home.path().join("config.toml"),
        "model = \"a\"\nsandbox_mode = 3\n",
    )
    .unwrap();
    let out = run(&["app-server"], home.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("config.toml") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn a_bad_override_is_a_startup_error() {
    let home = TempDir::new("cli");
    let out = run(
        &["-c", "approval_policy=sometimes", "app-server"],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("approval_policy"), "{err}");
}

#[test]
fn codex_home_is_created_when_missing() {
    let parent = TempDir::new("cli");
    let home = parent.path().join("nested/home");
    let mut child = Command::new(env!("CARGO_BIN_EXE_codex-lite"))
        .arg("app-server")
        .env("CODEX_HOME", &home)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(home.is_dir());
}
