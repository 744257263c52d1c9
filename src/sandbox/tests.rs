use super::*;
use crate::test_dir::Scratch;
use serde_json::json;

fn workspace(roots: &[&str], network: bool, no_tmpdir: bool, no_tmp: bool) -> SandboxPolicy {
    SandboxPolicy::WorkspaceWrite {
        writable_roots: roots.iter().map(PathBuf::from).collect(),
        network_access: network,
        exclude_tmpdir_env_var: no_tmpdir,
        exclude_slash_tmp: no_tmp,
    }
}

#[test]
fn helper_spelling_round_trips() {
    let cases = [
        (SandboxPolicy::ReadOnly, json!({"type": "read-only"})),
        (
            SandboxPolicy::DangerFullAccess,
            json!({"type": "danger-full-access"}),
        ),
        (
            workspace(&["/data"], true, false, true),
            json!({"type": "workspace-write", "writable_roots": ["/data"], "network_access": true,
                   "exclude_tmpdir_env_var": false, "exclude_slash_tmp": true}),
        ),
    ];
    for (policy, value) in cases {
        assert_eq!(serde_json::to_value(&policy).unwrap(), value);
        assert_eq!(
            serde_json::from_value::<SandboxPolicy>(value).unwrap(),
            policy
        );
    }
}

#[test]
fn helper_spelling_defaults_and_errors() {
    let parsed: SandboxPolicy = serde_json::from_str(r#"{"type":"workspace-write"}"#).unwrap();
    assert_eq!(parsed, workspace(&[], false, false, false));
    for bad in [
        r#"{"type":"workspace-write","writable_roots":["relative/dir"]}"#,
        r#"{"type":"workspaceWrite"}"#,
        r#"{"type":"readOnly"}"#,
        r#"{}"#,
    ] {
        assert!(serde_json::from_str::<SandboxPolicy>(bad).is_err(), "{bad}");
    }
    let err = serde_json::from_str::<SandboxPolicy>(
        r#"{"type":"workspace-write","writable_roots":["rel"]}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("writable root rel is not an absolute path"),
        "{err}"
    );
}

#[test]
fn protocol_spelling_round_trips() {
    let cases = [
        (SandboxPolicy::ReadOnly, json!({"type": "readOnly"})),
        (
            SandboxPolicy::DangerFullAccess,
            json!({"type": "dangerFullAccess"}),
        ),
        (
            workspace(&["/data"], false, true, false),
            json!({"type": "workspaceWrite", "writableRoots": ["/data"], "networkAccess": false,
                   "excludeTmpdirEnvVar": true, "excludeSlashTmp": false}),
        ),
    ];
    for (policy, value) in cases {
        let wrapped = ProtocolSandboxPolicy(policy.clone());
        assert_eq!(serde_json::to_value(&wrapped).unwrap(), value);
        let back: ProtocolSandboxPolicy = serde_json::from_value(value).unwrap();
        assert_eq!(SandboxPolicy::from(back), policy);
    }
}

#[test]
fn protocol_spelling_defaults_and_errors() {
    let parse = |v: serde_json::Value| serde_json::from_value::<ProtocolSandboxPolicy>(v);
    assert_eq!(
        parse(json!({"type": "workspaceWrite"})).unwrap().0,
        workspace(&[], false, false, false)
    );
    assert_eq!(
        parse(json!({"type": "readOnly", "networkAccess": false}))
            .unwrap()
            .0,
        SandboxPolicy::ReadOnly
    );
    for (bad, message) in [
        (
            json!({"type": "readOnly", "networkAccess": true}),
            "readOnly sandbox policy with networkAccess is not supported",
        ),
        (
            json!({"type": "externalSandbox", "networkAccess": "enabled"}),
            "externalSandbox sandbox policy is not supported",
        ),
        (
            json!({"type": "workspaceWrite", "writableRoots": ["x"]}),
            "not an absolute path",
        ),
        (json!({"type": "read-only"}), "unknown variant"),
    ] {
        let err = parse(bad.clone()).unwrap_err().to_string();
        assert!(err.contains(message), "{bad}: {err}");
    }
}

#[test]
fn from_config_maps_modes_and_settings() {
    let settings = SandboxWorkspaceWrite {
        writable_roots: vec![PathBuf::from("/data")],
        network_access: true,
        exclude_tmpdir_env_var: true,
        exclude_slash_tmp: false,
    };
    assert_eq!(
        SandboxPolicy::from_config(SandboxMode::ReadOnly, &settings).unwrap(),
        SandboxPolicy::ReadOnly
    );
    assert_eq!(
        SandboxPolicy::from_config(SandboxMode::DangerFullAccess, &settings).unwrap(),
        SandboxPolicy::DangerFullAccess
    );
    assert_eq!(
        SandboxPolicy::from_config(SandboxMode::WorkspaceWrite, &settings).unwrap(),
        workspace(&["/data"], true, true, false)
    );
    let relative = SandboxWorkspaceWrite {
        writable_roots: vec![PathBuf::from("data")],
        ..SandboxWorkspaceWrite::default()
    };
    assert_eq!(
        SandboxPolicy::from_config(SandboxMode::WorkspaceWrite, &relative),
        Err(SandboxError::RelativeWritableRoot(PathBuf::from("data")))
    );
}

#[test]
fn network_and_full_access_predicates() {
    assert!(!SandboxPolicy::ReadOnly.has_network());
    assert!(SandboxPolicy::DangerFullAccess.has_network());
    assert!(workspace(&[], true, false, false).has_network());
    assert!(!workspace(&[], false, false, false).has_network());
    assert!(SandboxPolicy::DangerFullAccess.has_full_disk_write_access());
    assert!(!workspace(&[], true, false, false).has_full_disk_write_access());
}

fn root_paths(roots: &[WritableRoot]) -> Vec<PathBuf> {
    roots.iter().map(|r| r.root.clone()).collect()
}

#[test]
fn writable_roots_order_and_exclusions() {
    let cwd = Path::new("/nonexistent/project");
    let tmpdir = Some(Path::new("/var/tmp/me"));
    let roots =
        |p: SandboxPolicy, t: Option<&Path>| root_paths(&p.writable_roots_with_tmpdir(cwd, t));
    let paths = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
    assert_eq!(
        roots(workspace(&["/data", "/opt/x"], false, false, false), tmpdir),
        paths(&[
            "/data",
            "/opt/x",
            "/nonexistent/project",
            "/tmp",
            "/var/tmp/me"
        ])
    );
    assert_eq!(
        roots(workspace(&[], false, true, false), tmpdir),
        paths(&["/nonexistent/project", "/tmp"])
    );
    assert_eq!(
        roots(workspace(&[], false, false, true), tmpdir),
        paths(&["/nonexistent/project", "/var/tmp/me"])
    );
    // $TMPDIR only when set and absolute; duplicates keep their first place.
    assert_eq!(
        roots(workspace(&[], false, false, false), Some(Path::new("rel"))),
        paths(&["/nonexistent/project", "/tmp"])
    );
    assert_eq!(
        roots(
            workspace(&["/tmp"], false, false, false),
            Some(Path::new("/tmp"))
        ),
        paths(&["/tmp", "/nonexistent/project"])
    );
    assert!(SandboxPolicy::ReadOnly.writable_roots(cwd).is_empty());
    assert!(
        SandboxPolicy::DangerFullAccess
            .writable_roots(cwd)
            .is_empty()
    );
}

#[test]
fn carve_outs_for_git_dir_and_codex_dir() {
    let dir = Scratch::new("roots-gitdir");
    let root = dir.0.join("repo");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join(".codex")).unwrap();
    let policy = workspace(&[], false, true, true);
    let roots = policy.writable_roots(&root);
    // `.agents` does not exist: listed all the same, it must not be created.
    assert_eq!(
        roots,
        vec![WritableRoot {
            root: root.clone(),
            read_only_subpaths: vec![root.join(".git"), root.join(".codex"), root.join(".agents")],
        }]
    );
}

#[test]
fn carve_outs_for_git_pointer_file_and_commondir() {
    let dir = Scratch::new("roots-pointer");
    let main_git = dir.0.join("main/.git");
    let worktree_git = main_git.join("worktrees/wt");
    std::fs::create_dir_all(&worktree_git).unwrap();
    std::fs::write(worktree_git.join("commondir"), "../..\n").unwrap();
    let cases = [
        // absolute target, as `git worktree add` writes it: the target and its commondir
        (
            format!("gitdir: {}\n", worktree_git.display()),
            vec![worktree_git.clone(), worktree_git.join("../..")],
        ),
        // relative target, resolved against the root
        (
            "gitdir: ../main/.git/worktrees/wt\n".to_string(),
            vec![
                dir.0.join("wt/../main/.git/worktrees/wt"),
                dir.0.join("wt/../main/.git/worktrees/wt/../.."),
            ],
        ),
        // a target that does not exist is not a carve-out (the file still is)
        ("gitdir: /nonexistent/target\n".to_string(), vec![]),
        // not a pointer file at all
        ("hello\n".to_string(), vec![]),
    ];
    for (text, targets) in cases {
        let wt = dir.0.join("wt");
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(wt.join(".git"), &text).unwrap();
        let mut expected = vec![wt.join(".git")];
        expected.extend(targets);
        expected.extend([wt.join(".codex"), wt.join(".agents")]);
        let roots = workspace(&[], false, true, true).writable_roots(&wt);
        assert_eq!(roots[0].read_only_subpaths, expected, "{text}");
    }
}

#[cfg(unix)]
#[test]
fn symlinked_carve_outs_list_the_link_and_its_target() {
    let dir = Scratch::new("roots-links");
    let root = dir.0.join("root");
    let real_git = dir.0.join("real.git");
    std::fs::create_dir_all(&real_git).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(&real_git, root.join(".git")).unwrap();
    std::fs::write(root.join(".codex"), "a file, protected all the same").unwrap();
    let roots = workspace(&[], false, true, true).writable_roots(&root);
    assert_eq!(
        roots[0].read_only_subpaths,
        vec![
            root.join(".git"),
            std::fs::canonicalize(&real_git).unwrap(),
            root.join(".codex"),
            root.join(".agents"),
        ]
    );
}

#[test]
fn gitdir_line_parsing() {
    assert_eq!(gitdir_target("gitdir: /a/b\n"), Some("/a/b"));
    assert_eq!(gitdir_target("gitdir:/a/b"), Some("/a/b"));
    assert_eq!(gitdir_target("gitdir: ../x  \r\nmore"), Some("../x"));
    assert_eq!(gitdir_target("gitdir:   \n"), None);
    assert_eq!(gitdir_target("ref: refs/heads/main"), None);
    assert_eq!(gitdir_target(""), None);
}

#[test]
fn denial_detection() {
    // Windows has no signals: there SIGSYS cannot be reported, hence cannot mean a denial.
    let sigsys = crate::exec::BAD_SYSCALL_SIGNAL;
    let cases: [(Option<i32>, Option<i32>, &str, bool); 12] = [
        (
            Some(1),
            None,
            "touch: cannot touch 'x': Permission denied",
            true,
        ),
        (Some(1), None, "bash: x: Read-only file system", true),
        (Some(1), None, "connect: Operation not permitted", true),
        (Some(2), None, "blocked by SECCOMP", true),
        (
            Some(125),
            None,
            "codex-linux-sandbox: landlock is not supported",
            true,
        ),
        (Some(1), None, "Sandbox says no", true),
        (Some(1), None, "no such file or directory", false),
        (Some(0), None, "permission denied", false),
        (None, sigsys, "", sigsys.is_some()),
        (
            None,
            Some(crate::exec::KILLED_SIGNAL),
            "permission denied",
            false,
        ),
        (None, None, "permission denied", false),
        (Some(1), None, "", false),
    ];
    for (code, signal, output, expected) in cases {
        assert_eq!(
            looks_denied(code, signal, output),
            expected,
            "{code:?} {signal:?} {output}"
        );
    }
}

#[test]
fn unenforceable_policies_name_the_policy_to_choose() {
    let message = SandboxError::Unenforceable {
        policy: SandboxPolicy::ReadOnly.name(),
        os: "windows",
    }
    .to_string();
    assert_eq!(
        message,
        "the read-only sandbox is not available on windows, so the command was not run: choose \
         the danger-full-access policy to run commands without a sandbox (sandbox_mode = \
         \"danger-full-access\" in config.toml, or sandboxPolicy {\"type\":\"dangerFullAccess\"})"
    );
    let names = [
        SandboxPolicy::ReadOnly,
        SandboxPolicy::WorkspaceWrite {
            writable_roots: vec![],
            network_access: false,
            exclude_tmpdir_env_var: false,
            exclude_slash_tmp: false,
        },
        SandboxPolicy::DangerFullAccess,
    ]
    .map(|p| p.name());
    assert_eq!(
        names,
        ["read-only", "workspace-write", "danger-full-access"]
    );
}
