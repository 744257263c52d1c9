//! The sandbox's platform seam: which enforcement this operating system has for a policy, and
//! the command that runs a program under it. Linux re-executes our own binary as the helper
//! (`linux.rs`), macOS wraps the program in `/usr/bin/sandbox-exec` (`macos.rs`), and any other
//! system (Windows) has no enforcement, so a restricted policy is an error that names the policy
//! to choose instead: a command is never run unconfined under a policy that promised otherwise.
//!
//! The argument lists are built by portable functions, unit-tested on every platform; only the
//! few lines here that turn them into a `Command` differ per system.

use std::process::Command;

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
use super::SandboxError;
use super::SandboxPolicy;
use crate::exec::Env;

/// The command that runs `argv` confined by `policy` (writable roots computed against
/// `policy_cwd`; `env` is the child's environment, which tells where its `$TMPDIR` is). For a
/// restricted policy only; the caller runs danger-full-access commands directly.
#[cfg(target_os = "linux")]
pub fn confined_command(
    policy: &SandboxPolicy,
    policy_cwd: &std::path::Path,
    argv: &[String],
    _env: &Env,
) -> anyhow::Result<Command> {
    use anyhow::Context;
    use std::os::unix::process::CommandExt;

    use super::linux::{HELPER_ARG0, helper_args};
    let exe = std::env::current_exe().context("locating our own executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg0(HELPER_ARG0)
        .args(helper_args(policy, policy_cwd, argv));
    Ok(cmd)
}

/// The command that runs `argv` confined by `policy` (writable roots computed against
/// `policy_cwd`; `env` is the child's environment, which tells where its `$TMPDIR` is). For a
/// restricted policy only; the caller runs danger-full-access commands directly.
#[cfg(target_os = "macos")]
pub fn confined_command(
    policy: &SandboxPolicy,
    policy_cwd: &std::path::Path,
    argv: &[String],
    env: &Env,
) -> anyhow::Result<Command> {
    let tmpdir = env
        .get(std::ffi::OsStr::new("TMPDIR"))
        .map(std::path::PathBuf::from);
    let full = super::macos::seatbelt_argv(policy, policy_cwd, tmpdir.as_deref(), argv);
    let mut cmd = Command::new(&full[0]);
    cmd.args(&full[1..]);
    Ok(cmd)
}

/// Always an error here: this system has no sandbox, and a restricted policy must never run
/// unconfined. The message names the policy to choose to run commands anyway.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn confined_command(
    policy: &SandboxPolicy,
    _policy_cwd: &std::path::Path,
    _argv: &[String],
    _env: &Env,
) -> anyhow::Result<Command> {
    Err(SandboxError::Unenforceable {
        policy: policy.name(),
        os: std::env::consts::OS,
    }
    .into())
}

/// Variables that tell a confined command which sandbox holds it (`CODEX_SANDBOX=seatbelt`
/// under Seatbelt, as the reference sets); none elsewhere or without a sandbox.
pub fn marker_env(policy: &SandboxPolicy) -> Vec<(&'static str, &'static str)> {
    if cfg!(target_os = "macos") && !policy.has_full_disk_write_access() {
        vec![("CODEX_SANDBOX", "seatbelt")]
    } else {
        Vec::new()
    }
}
