//! The sandbox on this machine's kernel: the real helper (argv[0] `codex-linux-sandbox`) and the
//! `sandbox` CLI run real commands, and the outcomes are checked on disk, by errno and by exit
//! status. Writes outside the writable roots fail with `EROFS` (the helper's read-only view of the
//! filesystem stops them before Landlock would answer `EACCES`). The red-team suite
//! (`redteam*.rs`) goes after the same sandbox as an attacker would. Network, signal and syscall checks run this very test binary inside the sandbox as a
//! probe (`probe` below, driven by an environment variable). Where the kernel lacks a feature a
//! test writes `skipped: …` to stderr (uncaptured) and returns: a visible skip, never a pass.
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::support::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_codex-lite");
const PROBE_ENV: &str = "CODEX_LITE_SANDBOX_PROBE";

/// Says why a test did not run, bypassing libtest's output capture so it is always seen.
fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// The kernel's Landlock ABI, if it has Landlock at all.
fn landlock_abi() -> Option<i64> {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only returns a
    // number (or -1).
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    (v > 0).then_some(v)
}

/// Returns early from the test, visibly, when the kernel's Landlock ABI is below `$min`.
macro_rules! require_landlock {
    ($min:expr) => {
        match landlock_abi() {
            Some(abi) if abi >= $min => {}
            Some(_) => {
                skip(&format!("landlock ABI {} unavailable", $min));
                return;
            }
            None => {
                skip("landlock unavailable");
                return;
            }
        }
    };
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn read_only() -> Value {
    json!({"type": "read-only"})
}

fn workspace_write() -> Value {
    json!({"type": "workspace-write", "writable_roots": [], "network_access": false,
           "exclude_tmpdir_env_var": false, "exclude_slash_tmp": false})
}

/// The CODEX_HOME the helper is given in these tests (where its placeholder registry lives),
/// shared by all of them as concurrent commands share one in real use.
pub(crate) fn codex_home() -> PathBuf {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-codex-home");
    std::fs::create_dir_all(&home).unwrap();
    home
}

/// The helper running `argv` under `policy` in `cwd`, with `TMPDIR` unset unless a test sets it.
fn helper(policy: &Value, cwd: &Path, argv: &[&str]) -> Command {
    helper_with(policy, cwd, &[], argv)
}

/// [`helper`] with extra helper flags before the `--`.
fn helper_with(policy: &Value, cwd: &Path, flags: &[&str], argv: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg0("codex-linux-sandbox")
        .arg("--sandbox-policy-cwd")
        .arg(cwd)
        .arg("--sandbox-policy")
        .arg(policy.to_string())
        .args(flags)
        .arg("--")
        .args(argv)
        .current_dir(cwd)
        .env_remove("TMPDIR")
        .env("CODEX_HOME", codex_home())
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .stdin(Stdio::null());
    cmd
}

/// One shell operation's outcome inside the sandbox: its exit status and its output on one line.
#[derive(Debug)]
struct Outcome {
    status: i32,
    output: String,
}

/// Runs each `(label, shell command)` in one sandboxed `sh` and returns the outcomes by label.
fn run_ops(
    mut cmd_for: impl FnMut(&[&str]) -> Command,
    ops: &[(&str, String)],
) -> HashMap<String, Outcome> {
    let mut script = String::new();
    for (label, op) in ops {
        script.push_str(&format!(
            "out=$( {{ {op} ; }} 2>&1 ); rc=$?; printf '%s %s %s\\n' {label} $rc \"$(printf %s \"$out\" | tr '\\n' ' ')\"\n"
        ));
    }
    let out = cmd_for(&["sh", "-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "sandboxed sh failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut outcomes = HashMap::new();
    for line in stdout.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(label), Some(status), output) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        outcomes.insert(
            label.to_string(),
            Outcome {
                status: status.parse().unwrap(),
                output: output.unwrap_or_default().to_string(),
            },
        );
    }
    assert_eq!(outcomes.len(), ops.len(), "{stdout}");
    outcomes
}

fn assert_ok(outcomes: &HashMap<String, Outcome>, label: &str) {
    let o = &outcomes[label];
    assert_eq!(o.status, 0, "{label} should succeed: {o:?}");
}

fn assert_denied(outcomes: &HashMap<String, Outcome>, label: &str, message: &str) {
    let o = &outcomes[label];
    assert_ne!(o.status, 0, "{label} should fail: {o:?}");
    assert!(
        o.output.contains(message),
        "{label}: expected `{message}` in {o:?}"
    );
}

/// Every file and directory beneath `path` with its contents, to prove nothing changed.
fn snapshot(path: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            out.push((p.clone(), None));
            for entry in std::fs::read_dir(&p).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else {
            out.push((p.clone(), Some(std::fs::read(&p).unwrap())));
        }
    }
    out.sort();
    out
}

/// A git repository with a `.codex/` directory and a linked worktree (whose `.git` is a file).
struct Repo {
    dir: TempDir,
    main: PathBuf,
    worktree: PathBuf,
    /// Where the worktree's `.git` file points.
    gitdir: PathBuf,
}

fn git(cwd: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn repo() -> Repo {
    // Outside /tmp: "elsewhere" must not fall under a writable root wherever the checkout is.
    let dir = TempDir::new_outside_tmp("sandbox");
    let main = dir.path().join("main");
    std::fs::create_dir(&main).unwrap();
    git(&main, &["init", "-q"]);
    git(&main, &["commit", "-q", "--allow-empty", "-m", "init"]);
    std::fs::create_dir(main.join(".codex")).unwrap();
    std::fs::write(main.join(".codex/config.toml"), "model = \"x\"\n").unwrap();
    git(&main, &["worktree", "add", "-q", "../wt"]);
    let worktree = dir.path().join("wt");
    let pointer = std::fs::read_to_string(worktree.join(".git")).unwrap();
    let gitdir = PathBuf::from(pointer.trim().strip_prefix("gitdir: ").unwrap());
    assert!(gitdir.is_dir(), "{}", gitdir.display());
    std::fs::create_dir(dir.path().join("other")).unwrap();
    std::fs::create_dir(dir.path().join("tmpdir")).unwrap();
    std::fs::create_dir(dir.path().join("extra")).unwrap();
    Repo {
        dir,
        main,
        worktree,
        gitdir,
    }
}

/// A unique path directly under `/tmp` (outside every fixture), removed by the caller.
fn slash_tmp_path(name: &str) -> PathBuf {
    PathBuf::from(format!(
        "/tmp/codex-lite-sandbox-{name}-{}",
        std::process::id()
    ))
}

#[test]
fn read_only_denies_every_write_except_dev_null() {
    require_landlock!(1);
    let r = repo();
    let tmpdir = r.dir.path().join("tmpdir");
    let in_tmp = slash_tmp_path("ro");
    let before = (
        snapshot(&r.main.join(".git")),
        snapshot(&r.main.join(".codex")),
    );
    let outcomes = run_ops(
        |argv| {
            let mut cmd = helper(&read_only(), &r.main, argv);
            cmd.env("TMPDIR", &tmpdir);
            cmd
        },
        &[
            ("cwd", "echo x > new.txt".to_string()),
            ("mkdir", "mkdir sub".to_string()),
            ("tmp", format!("echo x > {}", in_tmp.display())),
            ("tmpdir", "echo x > \"$TMPDIR/f\"".to_string()),
            ("git", "echo x >> .git/config".to_string()),
            ("codex", "echo x > .codex/new".to_string()),
            (
                "elsewhere",
                format!("echo x > {}/other/f", r.dir.path().display()),
            ),
            ("devnull", "echo x > /dev/null".to_string()),
            ("read", "cat .codex/config.toml".to_string()),
        ],
    );
    for label in ["cwd", "mkdir", "tmp", "tmpdir", "git", "codex", "elsewhere"] {
        assert_denied(&outcomes, label, "Read-only file system");
    }
    assert_ok(&outcomes, "devnull");
    assert_ok(&outcomes, "read");
    assert!(outcomes["read"].output.contains("model"));
    assert!(!r.main.join("new.txt").exists());
    assert!(!r.main.join("sub").exists());
    assert!(!in_tmp.exists());
    assert!(!tmpdir.join("f").exists());
    assert!(!r.dir.path().join("other/f").exists());
    let after = (
        snapshot(&r.main.join(".git")),
        snapshot(&r.main.join(".codex")),
    );
    assert_eq!(before, after);
}

#[test]
fn workspace_write_allows_cwd_tmp_tmpdir_and_configured_roots_only() {
    require_landlock!(1);
    let r = repo();
    let tmpdir = r.dir.path().join("tmpdir");
    let extra = r.dir.path().join("extra");
    let in_tmp = slash_tmp_path("ww");
    let mut policy = workspace_write();
    policy["writable_roots"] = json!([extra]);
    let outcomes = run_ops(
        |argv| {
            let mut cmd = helper(&policy, &r.main, argv);
            cmd.env("TMPDIR", &tmpdir);
            cmd
        },
        &[
            ("cwd", "echo x > new.txt".to_string()),
            ("nested", "mkdir -p a/b && echo x > a/b/c".to_string()),
            ("tmp", format!("echo x > {}", in_tmp.display())),
            ("tmpdir", "echo x > \"$TMPDIR/f\"".to_string()),
            ("extra", format!("echo x > {}/f", extra.display())),
            (
                "elsewhere",
                format!("echo x > {}/other/f", r.dir.path().display()),
            ),
            ("etc", "echo x > /etc/codex-lite-sandbox-test".to_string()),
        ],
    );
    let _ = std::fs::remove_file(&in_tmp);
    for label in ["cwd", "nested", "tmp", "tmpdir", "extra"] {
        assert_ok(&outcomes, label);
    }
    assert_denied(&outcomes, "elsewhere", "Read-only file system");
    assert_denied(&outcomes, "etc", "Read-only file system");
    assert!(r.main.join("new.txt").exists());
    assert!(r.main.join("a/b/c").exists());
    assert!(tmpdir.join("f").exists());
    assert!(extra.join("f").exists());
    assert!(!r.dir.path().join("other/f").exists());
    assert!(!Path::new("/etc/codex-lite-sandbox-test").exists());
}

#[test]
fn workspace_write_can_exclude_slash_tmp_and_tmpdir() {
    require_landlock!(1);
    let r = repo();
    let tmpdir = r.dir.path().join("tmpdir");
    let in_tmp = slash_tmp_path("excl");
    let mut policy = workspace_write();
    policy["exclude_slash_tmp"] = json!(true);
    policy["exclude_tmpdir_env_var"] = json!(true);
    let outcomes = run_ops(
        |argv| {
            let mut cmd = helper(&policy, &r.main, argv);
            cmd.env("TMPDIR", &tmpdir);
            cmd
        },
        &[
            ("cwd", "echo x > new.txt".to_string()),
            ("tmp", format!("echo x > {}", in_tmp.display())),
            ("tmpdir", "echo x > \"$TMPDIR/f\"".to_string()),
        ],
    );
    let _ = std::fs::remove_file(&in_tmp);
    assert_ok(&outcomes, "cwd");
    assert_denied(&outcomes, "tmp", "Read-only file system");
    assert_denied(&outcomes, "tmpdir", "Read-only file system");
}

#[test]
fn git_and_codex_dirs_cannot_be_modified_created_in_or_deleted() {
    require_landlock!(1);
    let r = repo();
    let before = (
        snapshot(&r.main.join(".git")),
        snapshot(&r.main.join(".codex")),
    );
    let outcomes = run_ops(
        |argv| helper(&workspace_write(), &r.main, argv),
        &[
            ("allowed", "echo x > allowed.txt".to_string()),
            ("git_modify", "echo x >> .git/config".to_string()),
            ("git_hook", "echo x > .git/hooks/pre-commit".to_string()),
            ("git_delete", "rm .git/HEAD".to_string()),
            ("git_rmrf", "rm -rf .git".to_string()),
            ("git_mv", "mv .git moved".to_string()),
            (
                "git_umount",
                "umount .git && echo x >> .git/config".to_string(),
            ),
            (
                "git_commit",
                "git add allowed.txt && git commit -q -m x".to_string(),
            ),
            ("codex_modify", "echo x >> .codex/config.toml".to_string()),
            ("codex_create", "touch .codex/new".to_string()),
            ("codex_delete", "rm .codex/config.toml".to_string()),
            ("codex_rmdir", "rm -rf .codex".to_string()),
            ("codex_mv", "mv .codex moved2".to_string()),
        ],
    );
    assert_ok(&outcomes, "allowed");
    for label in [
        "git_modify",
        "git_hook",
        "git_delete",
        "git_rmrf",
        "git_commit",
    ] {
        assert_denied(&outcomes, label, "Read-only file system");
    }
    for label in [
        "codex_modify",
        "codex_create",
        "codex_delete",
        "codex_rmdir",
    ] {
        assert_denied(&outcomes, label, "Read-only file system");
    }
    // A mount point cannot be renamed away.
    assert_denied(&outcomes, "git_mv", "busy");
    assert_denied(&outcomes, "codex_mv", "busy");
    // Landlock forbids unmounting, even for root.
    assert_ne!(
        outcomes["git_umount"].status, 0,
        "{:?}",
        outcomes["git_umount"]
    );
    let after = (
        snapshot(&r.main.join(".git")),
        snapshot(&r.main.join(".codex")),
    );
    assert_eq!(before, after);
    assert!(!r.main.join("moved").exists() && !r.main.join("moved2").exists());
}

#[test]
fn worktree_git_file_and_its_gitdir_target_are_read_only() {
    require_landlock!(1);
    let r = repo();
    let pointer = r.worktree.join(".git");
    let before = (snapshot(&pointer), snapshot(&r.gitdir));
    let outcomes = run_ops(
        |argv| helper(&workspace_write(), &r.worktree, argv),
        &[
            ("allowed", "echo x > allowed.txt".to_string()),
            ("pointer_modify", "echo x >> .git".to_string()),
            ("pointer_delete", "rm -f .git".to_string()),
            ("pointer_mv", "mv .git moved".to_string()),
            ("target_create", format!("touch {}/new", r.gitdir.display())),
            (
                "target_modify",
                format!("echo x >> {}/HEAD", r.gitdir.display()),
            ),
            ("target_delete", format!("rm {}/HEAD", r.gitdir.display())),
            (
                "git_commit",
                "git add allowed.txt && git commit -q -m x".to_string(),
            ),
        ],
    );
    assert_ok(&outcomes, "allowed");
    assert_denied(&outcomes, "pointer_modify", "Read-only file system");
    assert_denied(&outcomes, "pointer_delete", "busy");
    assert_denied(&outcomes, "pointer_mv", "busy");
    for label in ["target_create", "target_modify", "target_delete"] {
        assert_denied(&outcomes, label, "Read-only file system");
    }
    assert_ne!(
        outcomes["git_commit"].status, 0,
        "{:?}",
        outcomes["git_commit"]
    );
    assert_eq!(before, (snapshot(&pointer), snapshot(&r.gitdir)));
}

#[test]
fn danger_full_access_allows_everything() {
    let r = repo();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let outcomes = run_ops(
        |argv| helper(&json!({"type": "danger-full-access"}), &r.main, argv),
        &[
            (
                "elsewhere",
                format!("echo x > {}/other/f", r.dir.path().display()),
            ),
            ("git", "echo '# x' >> .git/config".to_string()),
        ],
    );
    assert_ok(&outcomes, "elsewhere");
    assert_ok(&outcomes, "git");
    let probe = run_probe(
        &json!({"type": "danger-full-access"}),
        &r.main,
        &format!("tcp:{port}"),
    );
    assert_eq!(probe.result, "ok", "{probe:?}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_ok());
}

// ---- the probe: this test binary, run inside the sandbox ----

/// Not a test of its own: when `CODEX_LITE_SANDBOX_PROBE` is set (only inside the sandbox, by
/// [`run_probe`]) it performs that action, prints `probe: <result>` and exits.
#[test]
fn probe() {
    let Ok(action) = std::env::var(PROBE_ENV) else {
        return;
    };
    let result = probe_action(&action);
    println!("probe: {result}");
    std::process::exit(0);
}

fn errno_result(result: std::io::Result<()>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("errno={}", e.raw_os_error().unwrap_or(-1)),
    }
}

fn probe_action(action: &str) -> String {
    use std::io::Read;
    let (name, arg) = action.split_once(':').unwrap_or((action, ""));
    match name {
        "tcp" => errno_result(
            std::net::TcpStream::connect(("127.0.0.1", arg.parse().unwrap())).map(drop),
        ),
        "udp" => errno_result((|| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
            socket.send_to(b"x", ("127.0.0.1", arg.parse::<u16>().unwrap()))?;
            Ok(())
        })()),
        "socketpair" => errno_result((|| {
            // read/write, not send/recv: `sendto` is on the spec's deny list even for AF_UNIX
            // (and Rust's UnixStream writes with it).
            let (a, b) = std::os::unix::net::UnixStream::pair()?;
            let (mut a, mut b) = (
                std::fs::File::from(std::os::fd::OwnedFd::from(a)),
                std::fs::File::from(std::os::fd::OwnedFd::from(b)),
            );
            a.write_all(b"ping")?;
            let mut buf = [0u8; 4];
            b.read_exact(&mut buf)?;
            assert_eq!(&buf, b"ping");
            Ok(())
        })()),
        "kill" => {
            // SAFETY: sending a signal to a pid the test owns.
            let rc = unsafe { libc::kill(arg.parse().unwrap(), libc::SIGKILL) };
            errno_result(if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            })
        }
        "handle-write" => errno_result(write_through_handle(arg)),
        #[cfg(target_arch = "x86_64")]
        "int80" => {
            let ret: i32;
            // SAFETY: i386 getpid (20) through the legacy gate; it has no side effects. The
            // 64-bit registers the gate may clobber are declared.
            unsafe {
                std::arch::asm!("int 0x80", inlateout("eax") 20i32 => ret,
                    out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
            }
            format!("returned {ret}")
        }
        #[cfg(target_arch = "x86_64")]
        "x32" => {
            let ret: i64;
            // SAFETY: x32 getpid (0x40000000 | 39); no side effects; rcx/r11 clobbered by syscall.
            unsafe {
                std::arch::asm!("syscall", inlateout("rax") 0x4000_0027i64 => ret,
                    out("rcx") _, out("r11") _, options(nostack));
            }
            format!("returned {ret}")
        }
        other => format!("unknown probe {other}"),
    }
}

/// Appends to `path` through `open_by_handle_at` on the cwd's mount, which is the original
/// (writable) mount even when `path` itself is covered by a read-only bind mount.
fn write_through_handle(path: &str) -> std::io::Result<()> {
    #[repr(C)]
    struct FileHandle {
        handle_bytes: u32,
        handle_type: i32,
        f_handle: [u8; 128],
    }
    let last = std::io::Error::last_os_error;
    let c_path = std::ffi::CString::new(path).unwrap();
    let mut handle = FileHandle {
        handle_bytes: 128,
        handle_type: 0,
        f_handle: [0; 128],
    };
    let mut mount_id: i32 = 0;
    // SAFETY: valid pointers to a NUL-terminated path, a 128-byte handle and an int.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            &mut handle,
            &mut mount_id,
            0,
        )
    };
    if rc != 0 {
        return Err(last());
    }
    let mount_fd = std::fs::File::open(".")?;
    // SAFETY: `handle` was filled by name_to_handle_at; the fd is open.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount_fd.as_raw_fd(),
            &mut handle,
            libc::O_WRONLY | libc::O_APPEND,
        )
    };
    if fd < 0 {
        return Err(last());
    }
    // SAFETY: the syscall returned a fresh fd we own.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd as i32) };
    file.write_all(b"# written through a handle\n")
}

#[derive(Debug)]
struct ProbeRun {
    /// What the probe printed after `probe: `, empty when it died first.
    result: String,
    signal: Option<i32>,
    /// For failure messages (read through `Debug`): the exit code and what the helper or probe
    /// said.
    #[allow(dead_code)]
    code: Option<i32>,
    #[allow(dead_code)]
    stderr: String,
}

fn probe_command(policy: &Value, cwd: &Path, action: &str) -> Command {
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let mut cmd = helper(
        policy,
        cwd,
        &[
            exe,
            "--exact",
            "suite::sandbox::probe",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ],
    );
    cmd.env(PROBE_ENV, action);
    cmd
}

fn run_probe(policy: &Value, cwd: &Path, action: &str) -> ProbeRun {
    let output = probe_command(policy, cwd, action).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("probe: "))
        .unwrap_or_default()
        .to_string();
    ProbeRun {
        result,
        signal: output.status.signal(),
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn network_off_denies_tcp_and_udp_but_not_unix_socketpairs() {
    require_landlock!(1);
    let r = repo();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let udp_port = udp.local_addr().unwrap().port();
    for policy in [read_only(), workspace_write()] {
        let eperm = format!("errno={}", libc::EPERM);
        let run = run_probe(&policy, &r.main, &format!("tcp:{tcp_port}"));
        assert_eq!(run.result, eperm, "{policy} {run:?}");
        let run = run_probe(&policy, &r.main, &format!("udp:{udp_port}"));
        assert_eq!(run.result, eperm, "{policy} {run:?}");
        let run = run_probe(&policy, &r.main, "socketpair");
        assert_eq!(run.result, "ok", "{policy} {run:?}");
    }
    // The probes have exited: anything they got through would be waiting here.
    tcp.set_nonblocking(true).unwrap();
    assert_eq!(
        tcp.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    udp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        udp.recv(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}

#[test]
fn network_on_allows_connect() {
    require_landlock!(1);
    let r = repo();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let mut policy = workspace_write();
    policy["network_access"] = json!(true);
    let run = run_probe(&policy, &r.main, &format!("tcp:{port}"));
    assert_eq!(run.result, "ok", "{run:?}");
    tcp.set_nonblocking(true).unwrap();
    assert!(tcp.accept().is_ok());
}

#[test]
fn signals_cannot_leave_the_sandbox() {
    require_landlock!(1);
    let r = repo();
    let mut outside = Command::new("sleep").arg("30").spawn().unwrap();
    let run = run_probe(&read_only(), &r.main, &format!("kill:{}", outside.id()));
    let still_running = outside.try_wait().unwrap().is_none();
    let _ = outside.kill();
    let _ = outside.wait();
    // The host's pids do not exist in the sandbox's PID namespace.
    assert_eq!(run.result, format!("errno={}", libc::ESRCH), "{run:?}");
    assert!(still_running);
    // Inside the sandbox, signals between its own processes still work.
    let outcomes = run_ops(
        |argv| helper(&read_only(), &r.main, argv),
        &[(
            "inside",
            "sleep 30 & kill $!; wait $!; test $? -eq 143".to_string(),
        )],
    );
    assert_ok(&outcomes, "inside");
}

#[test]
fn foreign_syscall_abis_are_killed() {
    if !cfg!(target_arch = "x86_64") {
        skip("foreign syscall ABIs are an x86_64 matter");
        return;
    }
    require_landlock!(1);
    let r = repo();
    for action in ["int80", "x32"] {
        // Without the filter the call returns (or, without i386 emulation, faults).
        let control = run_probe(&json!({"type": "danger-full-access"}), &r.main, action);
        if control.signal.is_some() {
            skip(&format!(
                "{action}: the kernel has no entry for this ABI ({control:?})"
            ));
            continue;
        }
        assert!(control.result.starts_with("returned"), "{control:?}");
        let run = run_probe(&read_only(), &r.main, action);
        assert_eq!(run.signal, Some(libc::SIGSYS), "{action}: {run:?}");
        assert_eq!(run.result, "", "{action}: {run:?}");
    }
}

/// Makes every namespace creation (`unshare`, `clone` with a namespace flag) fail with EPERM in
/// the spawned process, as on a host that refuses them (user namespaces disabled, a container's
/// seccomp profile).
pub(crate) fn deny_namespaces(cmd: &mut Command) {
    // CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
    deny_clone_flags(cmd, 0x7E02_0000);
}

/// Makes `unshare` and `clone` with any of `flags` fail with EPERM in the spawned process.
fn deny_clone_flags(cmd: &mut Command, flags: u32) {
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let jset = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let ins = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let filter = [
        ins(ld, 0, 0, 0),
        ins(jeq, 4, 0, libc::SYS_unshare as u32),
        ins(jeq, 0, 4, libc::SYS_clone as u32),
        ins(ld, 0, 0, 16),
        ins(jset, 0, 2, flags),
        ins(ret, 0, 0, eperm),
        ins(ret, 0, 0, eperm),
        ins(ret, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: the closure only makes two prctl calls (async-signal-safe) on its own copy of the
    // filter, which lives as long as the closure.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn without_namespaces_it_fails_closed_and_names_the_fix() {
    let r = repo();
    for policy in [read_only(), workspace_write()] {
        let marker = r.dir.path().join("ran");
        let mut cmd = helper(&policy, &r.main, &["touch", marker.to_str().unwrap()]);
        deny_namespaces(&mut cmd);
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{stderr}");
        assert!(
            stderr.starts_with("codex-linux-sandbox: cannot create the sandbox's"),
            "{stderr}"
        );
        assert!(stderr.contains("namespaces"), "{stderr}");
        assert!(
            stderr.contains("sandbox_linux.allow_without_namespaces=true"),
            "{stderr}"
        );
        assert!(
            stderr.contains("refusing to run the command unsandboxed"),
            "{stderr}"
        );
        assert!(!marker.exists(), "the command ran");
    }
}

#[test]
fn root_without_user_namespaces_still_gets_the_other_namespaces() {
    if !is_root() {
        skip("not root: only root may make namespaces without a user namespace");
        return;
    }
    let r = repo();
    let mut cmd = helper(
        &workspace_write(),
        &r.main,
        &[
            "sh",
            "-c",
            &format!(
                "echo x > ok.txt; ! (echo x > {}/other/f) 2>/dev/null; ! touch .git/x 2>/dev/null; \
                 readlink /proc/self/ns/user; ps -e --no-headers | wc -l; grep CapEff /proc/self/status",
                r.dir.path().display()
            ),
        ],
    );
    deny_clone_flags(&mut cmd, libc::CLONE_NEWUSER as u32);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    // The host's user namespace, a PID namespace of our own (sh, ps, wc and init), no
    // capabilities.
    let host_user_ns = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_eq!(lines[0], host_user_ns.to_str().unwrap(), "{stdout}");
    assert!(lines[1].trim().parse::<u32>().unwrap() <= 5, "{stdout}");
    assert_eq!(lines[2], "CapEff:\t0000000000000000", "{stdout}");
    assert!(r.main.join("ok.txt").exists());
    assert!(!r.dir.path().join("other/f").exists());
    assert!(!r.main.join(".git/x").exists());
}

#[test]
fn the_degraded_mode_is_explicit_and_says_what_it_lacks_every_time() {
    require_landlock!(1);
    let r = repo();
    for _ in 0..2 {
        // The flag the server adds for `[sandbox_linux] allow_without_namespaces = true`.
        let mut cmd = helper_with(
            &workspace_write(),
            &r.main,
            &["--allow-without-namespaces"],
            &[
                "sh",
                "-c",
                &format!(
                    "echo x > ok.txt && ! (echo x > {}/other/f) 2>/dev/null",
                    r.dir.path().display()
                ),
            ],
        );
        deny_namespaces(&mut cmd);
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
        assert!(
            warnings[0].starts_with("codex-linux-sandbox: warning: no namespaces"),
            "{stderr}"
        );
        assert!(warnings[0].contains("NOT protected"), "{stderr}");
        // Its carve-out mounts need a namespace too: the paths left open are named.
        let unprotected = warnings
            .iter()
            .find(|w| w.contains("NOT write-protected"))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(
            unprotected.contains(r.main.join(".git").to_str().unwrap()),
            "{unprotected}"
        );
        assert!(r.main.join("ok.txt").exists());
        assert!(!r.dir.path().join("other/f").exists());
    }
}

#[test]
fn without_root_a_user_namespace_protects_the_carve_outs() {
    require_landlock!(1);
    if !is_root() {
        skip("not root: every other test already runs the user-namespace path");
        return;
    }
    let r = repo();
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(r.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let before = snapshot(&r.main.join(".git"));
    let outcomes = run_ops(
        |argv| {
            let mut cmd = helper(&workspace_write(), &r.main, argv);
            cmd.uid(65534).gid(65534);
            cmd
        },
        &[
            ("whoami", "test \"$(id -u)\" = 65534".to_string()),
            ("allowed", "echo x > allowed.txt".to_string()),
            ("git_hook", "echo x > .git/hooks/pre-commit".to_string()),
            ("codex_mv", "mv .codex moved".to_string()),
        ],
    );
    assert_ok(&outcomes, "whoami");
    assert_ok(&outcomes, "allowed");
    assert_denied(&outcomes, "git_hook", "Read-only file system");
    assert_denied(&outcomes, "codex_mv", "busy");
    assert_eq!(before, snapshot(&r.main.join(".git")));
}

#[test]
fn root_cannot_bypass_the_carve_outs_with_its_capabilities() {
    require_landlock!(1);
    if !is_root() {
        skip("not root: root capabilities are not in play");
        return;
    }
    let r = repo();
    let before = snapshot(&r.main.join(".git"));
    // Control: outside the sandbox the handle trick does write (so the check below can fail).
    let copy = r.dir.path().join("other/control");
    std::fs::write(&copy, "").unwrap();
    let control = run_probe(
        &json!({"type": "danger-full-access"}),
        &r.main,
        &format!("handle-write:{}", copy.display()),
    );
    assert_eq!(control.result, "ok", "{control:?}");
    let run = run_probe(&workspace_write(), &r.main, "handle-write:.git/config");
    assert_eq!(run.result, format!("errno={}", libc::EPERM), "{run:?}");
    let outcomes = run_ops(
        |argv| helper(&workspace_write(), &r.main, argv),
        &[("mknod", "mknod blk b 7 0".to_string())],
    );
    assert_denied(&outcomes, "mknod", "Operation not permitted");
    assert_eq!(before, snapshot(&r.main.join(".git")));
}

#[test]
fn helper_usage_and_exec_errors() {
    let out = Command::new(BIN)
        .arg0("codex-linux-sandbox")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("codex-linux-sandbox: missing --sandbox-policy-cwd"),
        "{stderr}"
    );
    assert!(stderr.contains("usage: codex-linux-sandbox"), "{stderr}");

    require_landlock!(1);
    let dir = TempDir::new("sandbox-exec");
    let out = helper(&read_only(), dir.path(), &["/nonexistent/program"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("codex-linux-sandbox: /nonexistent/program:"),
        "{stderr}"
    );
    // The command's own exit status comes through.
    let out = helper(&read_only(), dir.path(), &["sh", "-c", "exit 42"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(42));
    // The network-off marker reaches the command.
    let out = helper(
        &read_only(),
        dir.path(),
        &["sh", "-c", "echo $CODEX_SANDBOX_NETWORK_DISABLED"],
    )
    .env("CODEX_SANDBOX_NETWORK_DISABLED", "1")
    .output()
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");
}

// ---- the `sandbox` CLI ----

fn cli(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("CODEX_HOME", home)
        .env_remove("TMPDIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn sandbox_cli_runs_commands_under_the_policy() {
    require_landlock!(1);
    let r = repo();
    let home = TempDir::new("sandbox-home");
    let (h, cwd) = (home.path(), r.main.as_path());
    // Exit status is the command's; 128+signal when it is killed.
    assert_eq!(
        cli(h, cwd, &["sandbox", "linux", "--", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    assert_eq!(
        cli(h, cwd, &["sandbox", "linux", "sh", "-c", "kill -TERM $$"])
            .status
            .code(),
        Some(128 + libc::SIGTERM)
    );
    // Read-only by default.
    let out = cli(h, cwd, &["sandbox", "linux", "touch", "ro.txt"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    assert!(!cwd.join("ro.txt").exists());
    // --full-auto: workspace-write in the current directory, carve-outs kept.
    for (args, file) in [
        (&["sandbox", "linux", "--full-auto", "--"][..], "a.txt"),
        (&["sandbox", "landlock", "--full-auto"][..], "b.txt"),
        (&["debug", "landlock", "--full-auto"][..], "c.txt"),
    ] {
        let mut argv = args.to_vec();
        argv.extend(["touch", file]);
        let out = cli(h, cwd, &argv);
        assert_eq!(out.status.code(), Some(0), "{argv:?}: {out:?}");
        assert!(cwd.join(file).exists(), "{argv:?}");
    }
    let out = cli(
        h,
        cwd,
        &[
            "sandbox",
            "linux",
            "--full-auto",
            "touch",
            ".git/hooks/pre-commit",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(!cwd.join(".git/hooks/pre-commit").exists());
    // [sandbox_workspace_write] settings apply, from -c as from config.toml.
    let extra = r.dir.path().join("extra");
    let root = format!(
        "sandbox_workspace_write.writable_roots=[\"{}\"]",
        extra.display()
    );
    let target = extra.join("f").display().to_string();
    let out = cli(
        h,
        cwd,
        &[
            "sandbox",
            "linux",
            "--full-auto",
            "-c",
            &root,
            "touch",
            &target,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    std::fs::write(
        h.join("config.toml"),
        format!(
            "[sandbox_workspace_write]\nwritable_roots = [\"{}\"]\n",
            r.dir.path().join("other").display()
        ),
    )
    .unwrap();
    let target = r.dir.path().join("other/g").display().to_string();
    let out = cli(
        h,
        cwd,
        &["sandbox", "linux", "--full-auto", "touch", &target],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn sandbox_cli_on_the_wrong_os_and_usage_errors() {
    let home = TempDir::new("sandbox-home");
    for word in ["macos", "seatbelt"] {
        let out = cli(home.path(), home.path(), &["sandbox", word, "--", "true"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "Seatbelt sandbox is only available on macOS\n"
        );
    }
    let out = cli(home.path(), home.path(), &["sandbox", "linux"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing COMMAND"));
    let out = cli(home.path(), home.path(), &["sandbox", "windows", "ls"]);
    assert_eq!(out.status.code(), Some(2));
}
