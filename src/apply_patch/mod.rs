//! The `apply_patch` patch format and its ways in: the public API the server
//! uses (parse, preview as [`FileChange`]s, apply, recognise a patch in a
//! shell command, tool definitions) and the two CLI forms of spec §4
//! (`argv[0]` = `apply_patch`/`applypatch`, and
//! `codex-lite --codex-run-as-apply-patch PATCH`).
//!
//! Owns the format end to end. Does not decide approval or sandboxing (the
//! turn does), nor create the `apply_patch` symlinks on `PATH` (the server
//! does at start).
//!
//! Layout: `parser.rs` (text → [`Patch`]), `seek.rs` (line matching),
//! `apply.rs` (hunks → files, previews), `update.rs` (one file's new text),
//! `diff.rs` (unified diffs),
//! `invocation.rs` (shell commands), `tool.rs` (tool JSON).

mod apply;
mod diff;
mod invocation;
mod parser;
mod seek;
mod tool;
mod update;

use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

pub use apply::{
    ApplyError, ChangeKind, FileChange, Summary, apply_patch, compute_changes, resolve,
};
pub use diff::git_file_diff;
pub use invocation::{is_bare_patch, parse_shell_invocation};
pub use parser::{ParseError, parse_patch};
pub use tool::{freeform_tool, function_tool};

/// The argv[1] that makes `codex-lite` apply the patch in argv[2] (how the
/// server runs an approved patch inside the turn's sandbox).
pub const RUN_AS_APPLY_PATCH_ARG: &str = "--codex-run-as-apply-patch";

/// The argv[0] basenames that make `codex-lite` behave as `apply_patch`.
pub const ARG0_NAMES: [&str; 2] = ["apply_patch", "applypatch"];

/// Either way a patch can fail: callers that only report the message use
/// `Display` (the CLI's stderr text); others branch on the variant.
#[derive(Debug)]
pub enum PatchError {
    /// The text is not a valid patch; nothing was touched.
    Parse(ParseError),
    /// Applying failed; hunks before the failing one stay applied.
    Apply(ApplyError),
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchError::Parse(err) => err.fmt(f),
            PatchError::Apply(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for PatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PatchError::Parse(err) => Some(err),
            PatchError::Apply(err) => Some(err),
        }
    }
}

impl From<ParseError> for PatchError {
    fn from(err: ParseError) -> Self {
        PatchError::Parse(err)
    }
}

impl From<ApplyError> for PatchError {
    fn from(err: ApplyError) -> Self {
        PatchError::Apply(err)
    }
}

/// Parses and applies patch text against `cwd`, as the CLI does.
pub fn apply_patch_text(text: &str, cwd: &Path) -> Result<Summary, PatchError> {
    let patch = parse_patch(text)?;
    Ok(apply_patch(&patch, cwd)?)
}

/// Whether `argv0` (the program name) asks for the `apply_patch` CLI.
pub fn is_arg0_name(argv0: &std::ffi::OsStr) -> bool {
    crate::platform::program_name(argv0).is_some_and(|name| ARG0_NAMES.contains(&name.as_str()))
}

/// The `apply_patch`/`applypatch` CLI: `args` are the arguments after
/// argv[0]. The patch is the one argument, or else all of stdin. Returns the
/// exit code: 0 applied, 1 failed, 2 usage error.
pub fn main_arg0(args: Vec<OsString>) -> i32 {
    let mut args = args.into_iter();
    let patch = match args.next() {
        Some(arg) => match arg.into_string() {
            Ok(patch) => patch,
            Err(_) => {
                report("Error: apply_patch requires a UTF-8 PATCH argument.");
                return 1;
            }
        },
        None => {
            let mut patch = String::new();
            if let Err(err) = std::io::stdin().read_to_string(&mut patch) {
                report(&format!("Error: Failed to read PATCH from stdin.\n{err}"));
                return 1;
            }
            if patch.is_empty() {
                report("Usage: apply_patch 'PATCH'\n       echo 'PATCH' | apply_patch");
                return 2;
            }
            patch
        }
    };
    if args.next().is_some() {
        report("Error: apply_patch accepts exactly one argument.");
        return 2;
    }
    run(&patch)
}

/// The `codex-lite --codex-run-as-apply-patch PATCH` form: `patch` is
/// argv[2]. Returns the exit code: 0 applied, 1 failed or missing patch.
pub fn main_run_as(patch: Option<OsString>) -> i32 {
    match patch.and_then(|patch| patch.into_string().ok()) {
        Some(patch) => run(&patch),
        None => {
            report(&format!(
                "Error: {RUN_AS_APPLY_PATCH_ARG} requires a UTF-8 PATCH argument."
            ));
            1
        }
    }
}

/// Applies `patch` in the current directory, printing the summary to stdout
/// or the error to stderr.
fn run(patch: &str) -> i32 {
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(err) => {
            report(&format!(
                "Error: Failed to determine current directory.\n{err}"
            ));
            return 1;
        }
    };
    match apply_patch_text(patch, &cwd) {
        Ok(summary) => {
            let mut stdout = std::io::stdout().lock();
            match write!(stdout, "{summary}").and_then(|()| stdout.flush()) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
        Err(err) => {
            report(&err.to_string());
            1
        }
    }
}

/// Writes one line to stderr; a closed stderr is not worth a panic.
fn report(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}
