//! The Linux helper behind argv[0] `codex-linux-sandbox` (sandbox.md §2, hardening.md §1): parse
//! the CLI contract, confine the command, run it.
//!
//! ```text
//! codex-linux-sandbox --sandbox-policy-cwd <cwd> --sandbox-policy '<policy JSON>'
//!     [--codex-home <dir>] [--allow-without-namespaces] -- <program> <args…>
//! ```
//! Under read-only and workspace-write the command runs in its own user, mount, PID, IPC, UTS,
//! cgroup and (network off) network namespaces, in a read-only view of the filesystem with the
//! writable roots bound read-write and the carve-outs read-only on top (`view.rs`, from the
//! `plan.rs` paths), with no capabilities, `no_new_privs`, the seccomp filter (`seccomp/`) and
//! Landlock (`landlock.rs`) as a second, independent layer; it dies with the server and takes
//! every process it started with it (`namespaces.rs`). It gets stdin, stdout and stderr only: every
//! other inherited descriptor is closed first. CODEX_HOME (`--codex-home`, else
//! `$CODEX_HOME` or `~/.codex`) is read-only to it whatever the policy.
//!
//! When the kernel refuses the namespaces the helper fails closed, naming the fix; only with
//! `--allow-without-namespaces` (`[sandbox_linux] allow_without_namespaces`) does it fall back to
//! Landlock + seccomp + best-effort carve-out mounts, printing what is then unprotected every
//! time. danger-full-access runs the command directly.
//!
//! Usage errors exit 2; setup failures print `codex-linux-sandbox: <reason>` and exit 125; a
//! program that cannot be executed exits 127 (not found) or 126, like a shell. Otherwise the exit
//! status is the command's, and a command killed by a signal kills the helper with the same
//! signal. Building the helper's command line for a child is here too ([`helper_args`]);
//! supervising that child is `crate::exec`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::SandboxPolicy;

/// argv[0] under which `main` runs [`helper_main`].
pub const HELPER_ARG0: &str = "codex-linux-sandbox";
/// Exit status of a helper usage error.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the sandbox could not be set up (the command never ran).
pub const EXIT_SETUP_FAILED: i32 = 125;

#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // only the Linux helper parses
const USAGE: &str = "usage: codex-linux-sandbox --sandbox-policy-cwd <cwd> --sandbox-policy \
                     '<policy JSON>' [--codex-home <dir>] [--allow-without-namespaces] -- \
                     <program> [args...]";

/// The helper's arguments (after argv[0]) that run `command` confined by `policy`, whose
/// workspace-write roots are computed against `policy_cwd`; with this process's sandbox settings
/// ([`super::configure`]): the CODEX_HOME to keep read-only and whether the degraded mode is
/// allowed.
pub fn helper_args(policy: &SandboxPolicy, policy_cwd: &Path, command: &[String]) -> Vec<OsString> {
    // Serializing a plain enum of paths and booleans cannot fail; the fallback is the strictest.
    let json =
        serde_json::to_string(policy).unwrap_or_else(|_| r#"{"type":"read-only"}"#.to_string());
    let mut args: Vec<OsString> = vec![
        "--sandbox-policy-cwd".into(),
        policy_cwd.as_os_str().to_owned(),
        "--sandbox-policy".into(),
        json.into(),
    ];
    if let Some(home) = super::protected_codex_home() {
        args.push("--codex-home".into());
        args.push(home.as_os_str().to_owned());
    }
    if super::allows_without_namespaces() {
        args.push("--allow-without-namespaces".into());
    }
    args.push("--".into());
    args.extend(command.iter().map(OsString::from));
    args
}

/// Runs the helper with `args` (everything after argv[0]) and returns the exit status to use when
/// it fails; on success it never returns (the process becomes the command). Call it from `main`
/// before anything else (no threads may exist: namespaces, seccomp and Landlock are per thread).
pub fn helper_main(args: &[OsString]) -> i32 {
    #[cfg(target_os = "linux")]
    {
        imp::run(args)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = args;
        eprintln!("{HELPER_ARG0}: the Linux sandbox is only available on Linux");
        EXIT_SETUP_FAILED
    }
}

/// The parsed helper command line.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[derive(Debug, PartialEq)]
struct HelperArgs {
    cwd: PathBuf,
    policy: SandboxPolicy,
    codex_home: Option<PathBuf>,
    allow_without_namespaces: bool,
    command: Vec<OsString>,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_args(args: &[OsString]) -> Result<HelperArgs, String> {
    let mut cwd = None;
    let mut policy = None;
    let mut codex_home = None;
    let mut allow_without_namespaces = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy();
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value)),
            _ => (text.to_string(), None),
        };
        let mut value = |flag: &str| -> Result<OsString, String> {
            match inline {
                Some(v) => Ok(OsString::from(v)),
                None => rest.next().cloned().ok_or(format!("{flag} needs a value")),
            }
        };
        match name.as_str() {
            "--" => break,
            "--sandbox-policy-cwd" => cwd = Some(PathBuf::from(value(&name)?)),
            "--sandbox-policy" => {
                let json = value(&name)?;
                let parsed = serde_json::from_str::<SandboxPolicy>(&json.to_string_lossy())
                    .map_err(|e| format!("invalid --sandbox-policy: {e}"))?;
                policy = Some(parsed);
            }
            "--codex-home" => {
                let home = PathBuf::from(value(&name)?);
                if !home.is_absolute() {
                    return Err(format!(
                        "--codex-home {} is not an absolute path",
                        home.display()
                    ));
                }
                codex_home = Some(home);
            }
            "--allow-without-namespaces" if inline.is_none() => allow_without_namespaces = true,
            _ => return Err(format!("unexpected argument `{text}`")),
        }
    }
    let cwd = cwd.ok_or("missing --sandbox-policy-cwd")?;
    if !cwd.is_absolute() {
        return Err(format!(
            "--sandbox-policy-cwd {} is not an absolute path",
            cwd.display()
        ));
    }
    let policy = policy.ok_or("missing --sandbox-policy")?;
    let command: Vec<OsString> = rest.cloned().collect();
    if command.is_empty() {
        return Err("missing command after --".to_string());
    }
    Ok(HelperArgs {
        cwd,
        policy,
        codex_home,
        allow_without_namespaces,
        command,
    })
}

/// `execvp(argv[0], argv)` with default `SIGPIPE` (Rust ignores it in its own processes, and an
/// ignored signal would stay ignored in the command); returns only on failure.
#[cfg(target_os = "linux")]
pub(crate) fn execvp(argv: &[std::ffi::CString]) -> std::io::Error {
    // SAFETY: restoring a default disposition has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: `ptrs` is a NULL-terminated array of valid C strings that outlive the call;
    // execvp only returns on failure.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    std::io::Error::last_os_error()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::{CString, OsString};
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;

    use super::{EXIT_SETUP_FAILED, EXIT_USAGE, HELPER_ARG0, HelperArgs, USAGE, parse_args};
    use crate::sandbox::landlock::{self, LandlockError};
    use crate::sandbox::namespaces::{self, Job, Unavailable};
    use crate::sandbox::plan::Plan;
    use crate::sandbox::{caps, mounts, placeholders, seccomp};

    pub(super) fn run(args: &[OsString]) -> i32 {
        let args = match parse_args(args) {
            Ok(args) => args,
            Err(e) => {
                eprintln!("{HELPER_ARG0}: {e}\n{USAGE}");
                return EXIT_USAGE;
            }
        };
        let argv = match args
            .command
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(argv) => argv,
            Err(_) => {
                eprintln!("{HELPER_ARG0}: the command contains a NUL byte\n{USAGE}");
                return EXIT_USAGE;
            }
        };
        if args.policy.has_full_disk_write_access() {
            return exec_failed(&argv, super::execvp(&argv));
        }
        close_inherited_descriptors();
        let codex_home = args.codex_home.clone().or_else(codex_home_from_env);
        let mut plan = Plan::new(&args.policy, &args.cwd, codex_home.as_deref());
        let cwd = match std::env::current_dir() {
            Ok(cwd) => cwd,
            Err(e) => {
                eprintln!("{HELPER_ARG0}: cannot read the working directory: {e}");
                return EXIT_SETUP_FAILED;
            }
        };
        let held = hold_placeholders(&mut plan);
        let placeholders = held.paths();
        let job = Job {
            plan: &plan,
            placeholders: &placeholders,
            cwd: &cwd,
            argv: &argv,
        };
        let result = namespaces::run(&job);
        held.release();
        match result {
            Ok(Ok(code)) => code,
            Ok(Err(signal)) => namespaces::die_of(signal),
            Err(Unavailable(e)) if args.allow_without_namespaces => degraded(&args, &argv, &e),
            Err(Unavailable(e)) => {
                eprintln!("{HELPER_ARG0}: {}", unavailable_message(&e));
                EXIT_SETUP_FAILED
            }
        }
    }

    /// Closes every descriptor the helper inherited beyond stdin, stdout and stderr. A socket or
    /// file that a parent leaked (an IDE's, passed on through the server's children) would
    /// otherwise reach the command and, through it, a host service or file whatever the policy:
    /// the namespaces and filters only govern what the command opens itself.
    fn close_inherited_descriptors() {
        // SAFETY: close_range takes plain integers; nothing in this process (single-threaded,
        // just started) uses a descriptor above 2 yet.
        let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
        if rc == 0 {
            return;
        }
        // Before Linux 5.9: close what /proc lists (the listing's own descriptor is closed by
        // then, and closing it again is a harmless EBADF).
        let listed: Vec<libc::c_int> = std::fs::read_dir("/proc/self/fd")
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .filter(|fd| *fd > 2)
                    .collect()
            })
            .unwrap_or_default();
        for fd in listed {
            // SAFETY: closing a descriptor this process inherited and never uses.
            unsafe { libc::close(fd) };
        }
    }

    fn exec_failed(argv: &[CString], err: io::Error) -> i32 {
        eprintln!("{HELPER_ARG0}: {}: {err}", argv[0].to_string_lossy());
        if err.kind() == io::ErrorKind::NotFound {
            127
        } else {
            126
        }
    }

    /// `$CODEX_HOME`, else `~/.codex`, when it exists (a helper started by hand).
    fn codex_home_from_env() -> Option<PathBuf> {
        let home = std::env::var_os("CODEX_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".codex")))?;
        std::fs::canonicalize(home).ok().filter(|h| h.is_dir())
    }

    /// Creates or joins the placeholders of `plan.absent`; what exists for real by now becomes an
    /// ordinary carve-out, and what can be neither (a read-only parent) cannot be created by the
    /// command either.
    fn hold_placeholders(plan: &mut Plan) -> placeholders::Held {
        let held = placeholders::acquire(&plan.absent);
        let paths = held.paths();
        for path in &plan.absent {
            if !paths.contains(path) && std::fs::symlink_metadata(path).is_ok() {
                plan.read_only.push(path.clone());
            }
        }
        held
    }

    /// The fail-closed message: what refused the namespaces and how to fix it.
    fn unavailable_message(err: &io::Error) -> String {
        let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_string());
        let mut causes = Vec::new();
        if read("/proc/sys/user/max_user_namespaces").is_ok_and(|v| v == "0") {
            causes.push("user.max_user_namespaces is 0 (sysctl -w user.max_user_namespaces=15000)");
        }
        if read("/proc/sys/kernel/unprivileged_userns_clone").is_ok_and(|v| v == "0") {
            causes.push(
                "unprivileged user namespaces are disabled (sysctl -w \
                 kernel.unprivileged_userns_clone=1)",
            );
        }
        if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").is_ok_and(|v| v == "1") {
            causes.push(
                "AppArmor restricts unprivileged user namespaces (sysctl -w \
                 kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing \
                 userns for this binary)",
            );
        }
        if causes.is_empty() {
            causes.push(
                "a container runtime or seccomp policy forbids them (e.g. Docker's default \
                 profile: run the container with --cap-add SYS_ADMIN or a seccomp profile that \
                 allows clone with namespace flags)",
            );
        }
        format!(
            "cannot create the sandbox's user, mount, PID and network namespaces ({err}): {}. \
             Fix that, or accept a weaker sandbox (Landlock and seccomp only) with \
             `-c sandbox_linux.allow_without_namespaces=true`; refusing to run the command \
             unsandboxed",
            causes.join("; ")
        )
    }

    /// The degraded mode: Landlock, seccomp and best-effort carve-out mounts, loudly.
    fn degraded(args: &HelperArgs, argv: &[CString], why: &io::Error) -> i32 {
        eprintln!(
            "{HELPER_ARG0}: warning: no namespaces ({why}); running with Landlock and seccomp only \
             because sandbox_linux.allow_without_namespaces is set. NOT protected: metadata \
             (chmod, chown, utimes, xattrs) of files outside the writable roots, other processes \
             of this user (prlimit, renice, /proc), processes that outlive the command, \
             pathname unix sockets the network filter misses, and root capabilities beyond the \
             few dropped"
        );
        if let Err(reason) = confine_degraded(args) {
            eprintln!("{HELPER_ARG0}: {reason}");
            return EXIT_SETUP_FAILED;
        }
        exec_failed(argv, super::execvp(argv))
    }

    fn confine_degraded(args: &HelperArgs) -> Result<(), String> {
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes plain integers and only affects this process.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!(
                "cannot set no_new_privs: {}",
                io::Error::last_os_error()
            ));
        }
        let codex_home = args.codex_home.clone().or_else(codex_home_from_env);
        let plan = Plan::new(&args.policy, &args.cwd, codex_home.as_deref());
        if !plan.read_only.is_empty()
            && let Err(unprotected) = mounts::protect(&plan.read_only)
        {
            let paths: Vec<String> = unprotected
                .paths
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            eprintln!(
                "{HELPER_ARG0}: warning: {}; these paths are NOT write-protected: {}",
                unprotected.reason,
                paths.join(", ")
            );
        }
        caps::drop_bypass_capabilities().map_err(|e| format!("cannot drop capabilities: {e}"))?;
        seccomp::install(&seccomp::filter(plan.network))
            .map_err(|e| format!("cannot install the seccomp filter: {e}"))?;
        let abi = landlock::restrict(&plan.writable, &[], plan.network).map_err(|e| match e {
            LandlockError::Unavailable(message) | LandlockError::Failed(message) => message,
        })?;
        if let Some(gaps) = landlock::gaps_of(abi) {
            eprintln!("{HELPER_ARG0}: warning: {gaps}; without namespaces nothing else does");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn helper_args_round_trip_through_the_parser() {
        let policy = SandboxPolicy::WorkspaceWrite {
            writable_roots: vec!["/opt/data".into()],
            network_access: true,
            exclude_tmpdir_env_var: false,
            exclude_slash_tmp: true,
        };
        let command = vec!["sh".to_string(), "-c".to_string(), "echo hi".to_string()];
        let args = helper_args(&policy, Path::new("/work/repo"), &command);
        assert_eq!(args[0], "--sandbox-policy-cwd");
        assert_eq!(args[4], "--");
        let parsed = parse_args(&args).unwrap();
        assert_eq!(parsed.cwd, Path::new("/work/repo"));
        assert_eq!(parsed.policy, policy);
        assert_eq!(parsed.command, os(&["sh", "-c", "echo hi"]));
    }

    #[test]
    fn parser_accepts_inline_values_and_any_order() {
        let parsed = parse_args(&os(&[
            r#"--sandbox-policy={"type":"read-only"}"#,
            "--sandbox-policy-cwd=/x",
            "--",
            "true",
            "--sandbox-policy",
        ]))
        .unwrap();
        assert_eq!(parsed.policy, SandboxPolicy::ReadOnly);
        assert_eq!(parsed.command, os(&["true", "--sandbox-policy"]));
    }

    #[test]
    fn parser_rejects_bad_command_lines() {
        let cases: [(&[&str], &str); 6] = [
            (
                &["--sandbox-policy", r#"{"type":"read-only"}"#, "--", "ls"],
                "missing --sandbox-policy-cwd",
            ),
            (
                &["--sandbox-policy-cwd", "/x", "--", "ls"],
                "missing --sandbox-policy",
            ),
            (
                &[
                    "--sandbox-policy-cwd",
                    "/x",
                    "--sandbox-policy",
                    r#"{"type":"read-only"}"#,
                ],
                "missing command",
            ),
            (
                &[
                    "--sandbox-policy-cwd",
                    "rel",
                    "--sandbox-policy",
                    r#"{"type":"read-only"}"#,
                    "--",
                    "ls",
                ],
                "not an absolute path",
            ),
            (
                &[
                    "--sandbox-policy-cwd",
                    "/x",
                    "--sandbox-policy",
                    r#"{"type":"nope"}"#,
                    "--",
                    "ls",
                ],
                "invalid --sandbox-policy",
            ),
            (&["--bogus"], "unexpected argument `--bogus`"),
        ];
        for (args, expected) in cases {
            let err = parse_args(&os(args)).unwrap_err();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }
}
