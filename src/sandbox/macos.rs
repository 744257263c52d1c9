//! macOS Seatbelt (sandbox.md §3): the profile text and the `/usr/bin/sandbox-exec` arguments for
//! a policy. Portable code, unit-tested everywhere; only `crate::exec` spawning the result is
//! macOS-specific.
//!
//! Writable roots and carve-outs travel as `-D` parameters (`WRITABLE_ROOT_i`,
//! `WRITABLE_ROOT_i_RO_j`), canonicalized because Seatbelt matches real paths (`/var` is
//! `/private/var`); the profile only names the parameters, so no path is ever quoted into it.

// On other platforms nothing spawns Seatbelt; the code still builds and is unit-tested there.
#![cfg_attr(not(target_os = "macos"), allow(dead_code))]

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{SandboxPolicy, WritableRoot};

/// The one `sandbox-exec` we run: an absolute path, never looked up on PATH.
pub const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

/// Rules every Seatbelt profile starts with: deny by default; processes, signals within the
/// sandbox, reads everywhere, `/dev/null`, a few sysctls, preferences and PTYs.
const BASE_PROFILE: &str = r#"(version 1)
(deny default)

; processes may run and fork; signals and process info stay within the sandbox
(allow process-exec)
(allow process-fork)
(allow signal (target same-sandbox))
(allow process-info* (target same-sandbox))

; reads everywhere
(allow file-read*)

; writes to /dev/null only
(allow file-write-data
  (require-all (literal "/dev/null") (vnode-type CHARACTER-DEVICE)))

; system facts that runtimes and build tools query
(allow sysctl-read
  (sysctl-name "hw.activecpu")
  (sysctl-name "hw.cpufamily")
  (sysctl-name "hw.cputype")
  (sysctl-name "hw.logicalcpu")
  (sysctl-name "hw.logicalcpu_max")
  (sysctl-name "hw.machine")
  (sysctl-name "hw.memsize")
  (sysctl-name "hw.ncpu")
  (sysctl-name "hw.pagesize")
  (sysctl-name "hw.physicalcpu")
  (sysctl-name "hw.physicalcpu_max")
  (sysctl-name "kern.argmax")
  (sysctl-name "kern.hostname")
  (sysctl-name "kern.maxfilesperproc")
  (sysctl-name "kern.osproductversion")
  (sysctl-name "kern.osrelease")
  (sysctl-name "kern.ostype")
  (sysctl-name "kern.osversion")
  (sysctl-name "kern.version")
  (sysctl-name "sysctl.proc_cputype")
  (sysctl-name-prefix "hw.optional."))

(allow user-preference-read)

; pseudo terminals
(allow pseudo-tty)
(allow file-read* file-write* file-ioctl (literal "/dev/ptmx"))
(allow file-read* file-write* file-ioctl (regex #"^/dev/ttys[0-9]+$"))
"#;

/// Added only when the policy allows the network: sockets, plus the services DNS and TLS
/// certificate checks talk to.
const NETWORK_PROFILE: &str = r#"
; network
(allow network-outbound)
(allow network-inbound)
(allow system-socket)
(allow mach-lookup
  (global-name "com.apple.SecurityServer")
  (global-name "com.apple.SystemConfiguration.DNSConfiguration")
  (global-name "com.apple.SystemConfiguration.configd")
  (global-name "com.apple.bsd.dirhelper")
  (global-name "com.apple.networkd")
  (global-name "com.apple.ocspd")
  (global-name "com.apple.system.opendirectoryd.membership")
  (global-name "com.apple.trustd.agent"))
(allow sysctl-read (sysctl-name-regex #"^net.routetable"))
"#;

/// The whole argv that runs `command` under `policy`: [`SANDBOX_EXEC`] (by absolute path) then
/// [`seatbelt_args`]. What the macOS spawn executes, element for element.
pub fn seatbelt_argv(
    policy: &SandboxPolicy,
    policy_cwd: &Path,
    tmpdir: Option<&Path>,
    command: &[String],
) -> Vec<OsString> {
    let mut argv = vec![OsString::from(SANDBOX_EXEC)];
    argv.extend(seatbelt_args(policy, policy_cwd, tmpdir, command));
    argv
}

/// The `sandbox-exec` arguments (after the program name) that run `command` under `policy`:
/// `-p <profile> -DWRITABLE_ROOT_0=<root> -DWRITABLE_ROOT_0_RO_0=<carve-out> … -- <command…>`.
/// `tmpdir` is the child's `$TMPDIR` (a writable root unless excluded).
pub fn seatbelt_args(
    policy: &SandboxPolicy,
    policy_cwd: &Path,
    tmpdir: Option<&Path>,
    command: &[String],
) -> Vec<OsString> {
    let codex_home = super::protected_codex_home();
    seatbelt_args_with_home(policy, policy_cwd, tmpdir, codex_home, command)
}

/// [`seatbelt_args`] with the CODEX_HOME to keep read-only given explicitly.
fn seatbelt_args_with_home(
    policy: &SandboxPolicy,
    policy_cwd: &Path,
    tmpdir: Option<&Path>,
    codex_home: Option<&Path>,
    command: &[String],
) -> Vec<OsString> {
    let codex_home = codex_home.map(canonical);
    let roots: Vec<WritableRoot> = policy
        .writable_roots_with_tmpdir(policy_cwd, tmpdir)
        .into_iter()
        .map(|r| {
            let root = canonical(&r.root);
            let mut read_only_subpaths: Vec<PathBuf> =
                r.read_only_subpaths.iter().map(|p| canonical(p)).collect();
            // CODEX_HOME stays read-only whatever the policy (hardening.md §2).
            if let Some(home) = &codex_home
                && (home.starts_with(&root) || root.starts_with(home))
            {
                read_only_subpaths.push(home.clone());
            }
            WritableRoot {
                root,
                read_only_subpaths,
            }
        })
        .collect();
    let mut args: Vec<OsString> = vec!["-p".into(), profile(policy, &roots).into()];
    for (name, path) in parameters(&roots) {
        let mut define = OsString::from(format!("-D{name}="));
        define.push(path.as_os_str());
        args.push(define);
    }
    args.push("--".into());
    args.extend(command.iter().map(OsString::from));
    args
}

/// The profile text for `policy` with `roots` (already canonicalized) as parameters.
fn profile(policy: &SandboxPolicy, roots: &[WritableRoot]) -> String {
    let mut text = BASE_PROFILE.to_string();
    if !roots.is_empty() {
        text.push_str("\n; writable roots minus their read-only carve-outs\n");
    }
    for (i, root) in roots.iter().enumerate() {
        let subpath = format!("(subpath (param \"WRITABLE_ROOT_{i}\"))");
        if root.read_only_subpaths.is_empty() {
            text.push_str(&format!("(allow file-write* {subpath})\n"));
        } else {
            let carve_outs: Vec<String> = (0..root.read_only_subpaths.len())
                .map(|j| format!("(require-not (subpath (param \"WRITABLE_ROOT_{i}_RO_{j}\")))"))
                .collect();
            text.push_str(&format!(
                "(allow file-write* (require-all {subpath} {}))\n",
                carve_outs.join(" ")
            ));
        }
    }
    if policy.has_network() {
        text.push_str(NETWORK_PROFILE);
    }
    text
}

/// The `-D` parameters the profile refers to, in order.
fn parameters(roots: &[WritableRoot]) -> Vec<(String, PathBuf)> {
    let mut params = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        params.push((format!("WRITABLE_ROOT_{i}"), root.root.clone()));
        for (j, sub) in root.read_only_subpaths.iter().enumerate() {
            params.push((format!("WRITABLE_ROOT_{i}_RO_{j}"), sub.clone()));
        }
    }
    params
}

/// The real path Seatbelt will see. A path that does not exist (a carve-out that must not be
/// created) keeps its name under its canonical parent; one whose parent does not resolve either
/// is kept as written.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        match (path.parent().map(std::fs::canonicalize), path.file_name()) {
            (Some(Ok(parent)), Some(name)) => parent.join(name),
            _ => path.to_path_buf(),
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("codex-lite-seatbelt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::canonicalize(&dir).unwrap()
    }

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn read_only_profile_has_no_writes_and_no_network() {
        let args = seatbelt_args(
            &SandboxPolicy::ReadOnly,
            Path::new("/work"),
            None,
            &["ls".to_string(), "-l".to_string()],
        );
        let args = strings(&args);
        assert_eq!(args[0], "-p");
        assert_eq!(args[1], BASE_PROFILE);
        assert_eq!(args[2..], ["--", "ls", "-l"]);
        assert!(args[1].starts_with("(version 1)\n(deny default)\n"));
        assert!(!args[1].contains("network"));
        assert!(!args[1].contains("(allow file-write*"));
    }

    #[test]
    fn workspace_write_profile_names_roots_and_carve_outs() {
        let repo = scratch("ww");
        std::fs::create_dir(repo.join(".git")).unwrap();
        std::fs::create_dir(repo.join(".codex")).unwrap();
        let extra = scratch("ww-extra");
        let tmpdir = scratch("ww-tmpdir");
        let policy = SandboxPolicy::WorkspaceWrite {
            writable_roots: vec![extra.clone()],
            network_access: false,
            exclude_tmpdir_env_var: false,
            // /tmp's own carve-outs depend on the machine; $TMPDIR stands in for it.
            exclude_slash_tmp: true,
        };
        let args = strings(&seatbelt_args(
            &policy,
            &repo,
            Some(&tmpdir),
            &["true".to_string()],
        ));
        let rule = |i: usize| {
            format!(
                "(allow file-write* (require-all (subpath (param \"WRITABLE_ROOT_{i}\")) \
                 (require-not (subpath (param \"WRITABLE_ROOT_{i}_RO_0\"))) \
                 (require-not (subpath (param \"WRITABLE_ROOT_{i}_RO_1\"))) \
                 (require-not (subpath (param \"WRITABLE_ROOT_{i}_RO_2\")))))\n"
            )
        };
        let expected_rules = format!(
            "{BASE_PROFILE}\n; writable roots minus their read-only carve-outs\n{}{}{}",
            rule(0),
            rule(1),
            rule(2)
        );
        assert_eq!(args[1], expected_rules);
        // `.git`, `.codex` and `.agents` of every root, present or not: none may be created.
        let mut expected = Vec::new();
        for (i, root) in [&extra, &repo, &tmpdir].iter().enumerate() {
            expected.push(format!("-DWRITABLE_ROOT_{i}={}", root.display()));
            for (j, name) in [".git", ".codex", ".agents"].iter().enumerate() {
                expected.push(format!(
                    "-DWRITABLE_ROOT_{i}_RO_{j}={}",
                    root.join(name).display()
                ));
            }
        }
        expected.extend(["--".to_string(), "true".to_string()]);
        assert_eq!(args[2..], expected);
        for dir in [repo, extra, tmpdir] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn argv_starts_with_the_absolute_sandbox_exec() {
        let argv = seatbelt_argv(
            &SandboxPolicy::ReadOnly,
            Path::new("/work"),
            None,
            &["ls".to_string(), "-l".to_string(), "a b".to_string()],
        );
        let expected: Vec<OsString> = [
            "/usr/bin/sandbox-exec",
            "-p",
            BASE_PROFILE,
            "--",
            "ls",
            "-l",
            "a b",
        ]
        .map(OsString::from)
        .to_vec();
        assert_eq!(argv, expected);
    }

    /// Paths reach sandbox-exec as whole argv elements (`-DNAME=<bytes>`), never quoted into the
    /// profile: whatever a directory is called, it cannot change the profile's meaning. (Unix
    /// only: Windows forbids several of these names.)
    #[cfg(unix)]
    #[test]
    fn awkward_paths_travel_verbatim_as_parameters() {
        let base = scratch("awkward");
        let names = [
            "with space",
            "double\"quote",
            "single'quote",
            "paren)(allow default)",
            "semi;colon #hash",
            "back\\slash",
            "equals=sign",
            "new\nline",
            "ünïcødé 日本語 🚀",
        ];
        for name in names {
            let root = base.join(name);
            std::fs::create_dir(&root).unwrap();
            std::fs::create_dir(root.join(".git")).unwrap();
            let policy = SandboxPolicy::WorkspaceWrite {
                writable_roots: vec![],
                network_access: false,
                exclude_tmpdir_env_var: true,
                exclude_slash_tmp: true,
            };
            let command = vec![format!("echo {name}")];
            let argv = seatbelt_argv(&policy, &root, None, &command);
            let mut root_param = OsString::from("-DWRITABLE_ROOT_0=");
            root_param.push(root.as_os_str());
            let mut git_param = OsString::from("-DWRITABLE_ROOT_0_RO_0=");
            git_param.push(root.join(".git").as_os_str());
            let mut agents_param = OsString::from("-DWRITABLE_ROOT_0_RO_2=");
            agents_param.push(root.join(".agents").as_os_str());
            assert_eq!(argv.len(), 9, "{name}: {argv:?}");
            assert_eq!(argv[0], OsString::from(SANDBOX_EXEC));
            assert_eq!(argv[1], OsString::from("-p"));
            assert_eq!(argv[3], root_param, "{name}");
            assert_eq!(argv[4], git_param, "{name}");
            assert_eq!(argv[6], agents_param, "{name}");
            assert_eq!(argv[7], OsString::from("--"));
            assert_eq!(argv[8], OsString::from(&command[0]), "{name}");
            let profile = argv[2].to_str().unwrap();
            assert!(!profile.contains(name), "{name} leaked into the profile");
            assert!(!profile.contains(base.to_str().unwrap()), "{name}");
            // The profile is the same whatever the path is called.
            assert_eq!(
                profile,
                super::profile(
                    &policy,
                    &[WritableRoot {
                        root: PathBuf::from("/x"),
                        read_only_subpaths: vec![
                            PathBuf::from("/x/.git"),
                            PathBuf::from("/x/.codex"),
                            PathBuf::from("/x/.agents"),
                        ],
                    }]
                )
            );
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn codex_home_is_a_carve_out_of_the_roots_it_overlaps() {
        let repo = scratch("home-repo");
        let home = repo.join("home");
        std::fs::create_dir(&home).unwrap();
        let policy = SandboxPolicy::WorkspaceWrite {
            writable_roots: vec![home.join("inside")],
            network_access: false,
            exclude_tmpdir_env_var: true,
            exclude_slash_tmp: true,
        };
        let args = strings(&seatbelt_args_with_home(
            &policy,
            &repo,
            None,
            Some(&home),
            &["true".to_string()],
        ));
        // A root inside CODEX_HOME gets it as a carve-out too (so nothing there is writable).
        let home_param = format!("={}", home.display());
        let carve_outs: Vec<&String> = args
            .iter()
            .filter(|a| a.contains("_RO_") && a.ends_with(&home_param))
            .collect();
        assert_eq!(carve_outs.len(), 2, "{args:?}");
        assert!(
            carve_outs[0].starts_with("-DWRITABLE_ROOT_0_RO_3="),
            "{args:?}"
        );
        assert!(
            carve_outs[1].starts_with("-DWRITABLE_ROOT_1_RO_3="),
            "{args:?}"
        );
        std::fs::remove_dir_all(&repo).unwrap();
    }

    #[test]
    fn network_rules_only_when_allowed() {
        let on = SandboxPolicy::WorkspaceWrite {
            writable_roots: vec![],
            network_access: true,
            exclude_tmpdir_env_var: true,
            exclude_slash_tmp: true,
        };
        let text = profile(&on, &[]);
        assert!(text.ends_with(NETWORK_PROFILE));
        for rule in [
            "(allow network-outbound)",
            "(allow network-inbound)",
            "(allow system-socket)",
        ] {
            assert!(text.contains(rule), "{rule}");
        }
        assert!(!profile(&SandboxPolicy::ReadOnly, &[]).contains("(allow network"));
    }

    #[cfg(unix)]
    #[test]
    fn paths_are_canonicalized() {
        let dir = scratch("canon");
        std::fs::create_dir(dir.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        let policy = SandboxPolicy::WorkspaceWrite {
            writable_roots: vec![],
            network_access: false,
            exclude_tmpdir_env_var: true,
            exclude_slash_tmp: true,
        };
        let args = strings(&seatbelt_args(
            &policy,
            &dir.join("link"),
            None,
            &["x".into()],
        ));
        assert_eq!(
            args[2],
            format!("-DWRITABLE_ROOT_0={}", dir.join("real").display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
