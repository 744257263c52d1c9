//! The Linux helper behind argv[0] `codex-linux-sandbox` (sandbox.md §2): parse the CLI contract,
//! confine this single-threaded process in the spec's order, then `execvp` the command.
//!
//! ```text
//! codex-linux-sandbox --sandbox-policy-cwd <cwd> --sandbox-policy '<policy JSON>' -- <program> <args…>
//! ```
//! Steps: `PR_SET_NO_NEW_PRIVS` (unless danger-full-access); read-only bind mounts of the
//! carve-outs (when writes are restricted), then dropping the few root capabilities that could
//! bypass them (`caps.rs`); the seccomp network filter (when the network is off); Landlock (when
//! writes are restricted); `execvp`. Usage errors exit 2; setup failures print
//! `codex-linux-sandbox: <reason>` and exit 125; a program that cannot be executed exits 127 (not
//! found) or 126, like a shell. Building the helper's command line for a child is here too
//! ([`helper_args`]); supervising that child is `crate::exec`.

use std::ffi::OsString;
use std::path::Path;

use super::SandboxPolicy;

/// argv[0] under which `main` runs [`helper_main`].
pub const HELPER_ARG0: &str = "codex-linux-sandbox";
/// Exit status of a helper usage error.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the sandbox could not be set up (the command never ran).
pub const EXIT_SETUP_FAILED: i32 = 125;

#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // only the Linux helper parses
const USAGE: &str = "usage: codex-linux-sandbox --sandbox-policy-cwd <cwd> --sandbox-policy \
                     '<policy JSON>' -- <program> [args...]";

/// The helper's arguments (after argv[0]) that run `command` confined by `policy`, whose
/// workspace-write roots are computed against `policy_cwd`.
pub fn helper_args(policy: &SandboxPolicy, policy_cwd: &Path, command: &[String]) -> Vec<OsString> {
    // Serializing a plain enum of paths and booleans cannot fail; the fallback is the strictest.
    let json =
        serde_json::to_string(policy).unwrap_or_else(|_| r#"{"type":"read-only"}"#.to_string());
    let mut args: Vec<OsString> = vec![
        "--sandbox-policy-cwd".into(),
        policy_cwd.as_os_str().to_owned(),
        "--sandbox-policy".into(),
        json.into(),
        "--".into(),
    ];
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
    cwd: std::path::PathBuf,
    policy: SandboxPolicy,
    command: Vec<OsString>,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_args(args: &[OsString]) -> Result<HelperArgs, String> {
    let mut cwd = None;
    let mut policy = None;
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
            "--sandbox-policy-cwd" => cwd = Some(std::path::PathBuf::from(value(&name)?)),
            "--sandbox-policy" => {
                let json = value(&name)?;
                let parsed = serde_json::from_str::<SandboxPolicy>(&json.to_string_lossy())
                    .map_err(|e| format!("invalid --sandbox-policy: {e}"))?;
                policy = Some(parsed);
            }
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
        command,
    })
}

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::{CString, OsString};
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;

    use super::{EXIT_SETUP_FAILED, EXIT_USAGE, HELPER_ARG0, USAGE, parse_args};
    use crate::sandbox::landlock::{self, LandlockError};
    use crate::sandbox::{caps, mounts, seccomp};

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
        if let Err(reason) = confine(&args.policy, &args.cwd) {
            eprintln!("{HELPER_ARG0}: {reason}");
            return EXIT_SETUP_FAILED;
        }
        let err = execvp(&argv);
        eprintln!(
            "{HELPER_ARG0}: {}: {err}",
            args.command[0].to_string_lossy()
        );
        if err.kind() == io::ErrorKind::NotFound {
            127
        } else {
            126
        }
    }

    /// Steps 1–4 of sandbox.md §2, in order.
    fn confine(
        policy: &crate::sandbox::SandboxPolicy,
        cwd: &std::path::Path,
    ) -> Result<(), String> {
        if policy.has_full_disk_write_access() {
            return Ok(());
        }
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes plain integers and only affects this process.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!(
                "cannot set no_new_privs: {}",
                io::Error::last_os_error()
            ));
        }
        let roots = policy.writable_roots(cwd);
        let mut carve_outs: Vec<PathBuf> = Vec::new();
        for path in roots.iter().flat_map(|r| &r.read_only_subpaths) {
            if !carve_outs.contains(path) {
                carve_outs.push(path.clone());
            }
        }
        if !carve_outs.is_empty()
            && let Err(unprotected) = mounts::protect(&carve_outs)
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
        let network = policy.has_network();
        if !network {
            seccomp::install(&seccomp::network_filter())
                .map_err(|e| format!("cannot install the seccomp network filter: {e}"))?;
        }
        let writable: Vec<PathBuf> = roots.into_iter().map(|r| r.root).collect();
        landlock::restrict(&writable, network).map_err(|e| match e {
            LandlockError::Unavailable(message) | LandlockError::Failed(message) => message,
        })
    }

    fn execvp(argv: &[CString]) -> io::Error {
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: `ptrs` is a NULL-terminated array of valid C strings that outlive the call;
        // execvp only returns on failure.
        unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
        io::Error::last_os_error()
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
