//! Process control on Unix, through the portable API: real `sh` commands.

use std::path::Path;
use std::time::Duration;

use super::leader_exited;
use crate::exec::{
    Env, ExecOutput, ExecRequest, NETWORK_DISABLED_ENV, OutputStream, StdinMode, sandboxed_command,
    spawn,
};
use crate::sandbox::SandboxPolicy;

fn request(script: &str) -> ExecRequest {
    let cwd = std::env::temp_dir();
    ExecRequest {
        argv: vec!["sh".to_string(), "-c".to_string(), script.to_string()],
        sandbox_cwd: cwd.clone(),
        cwd,
        env: Env::from([("PATH".into(), std::env::var_os("PATH").unwrap_or_default())]),
        timeout: None,
        policy: SandboxPolicy::DangerFullAccess,
        output_cap_bytes: 1 << 20,
        stdin: StdinMode::Null,
    }
}

/// Runs `req`, returning the outcome and everything the callback saw per stream.
fn run(req: ExecRequest) -> (ExecOutput, Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let output = spawn(req)
        .unwrap()
        .wait(&mut |stream, bytes| match stream {
            OutputStream::Stdout => out.extend_from_slice(bytes),
            OutputStream::Stderr => err.extend_from_slice(bytes),
        })
        .unwrap();
    (output, out, err)
}

#[test]
fn streams_both_pipes_and_reports_the_exit_code() {
    let (output, out, err) = run(request("echo out; echo err >&2; echo more; exit 3"));
    assert_eq!(output.exit_code, Some(3));
    assert_eq!(output.signal, None);
    assert_eq!(out, b"out\nmore\n");
    assert_eq!(err, b"err\n");
    assert_eq!(output.stdout, b"out\nmore\n");
    assert_eq!(output.stderr, b"err\n");
    assert_eq!(output.aggregated.len(), b"out\nmore\nerr\n".len());
    assert!(!output.timed_out);
    assert!(!output.truncated);
}

#[test]
fn output_written_before_the_first_read_is_kept() {
    let running = spawn(request("echo early; echo late >&2")).unwrap();
    // Let the command finish before anyone reads; the pipes hold the output.
    let mut status = running.child.as_ref().map(|c| c.id()).unwrap();
    for _ in 0..200 {
        if leader_exited(status as libc::pid_t).unwrap() {
            status = 0;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(status, 0, "the command did not finish");
    let output = running.wait(&mut |_, _| {}).unwrap();
    assert_eq!(output.stdout, b"early\n");
    assert_eq!(output.stderr, b"late\n");
    assert_eq!(output.exit_code, Some(0));
}

#[test]
fn large_output_is_streamed_whole_and_capped_head_and_tail() {
    let mut req = request("seq 1 100000");
    req.output_cap_bytes = 1000;
    let (output, out, _) = run(req);
    let full: String = (1..=100000).map(|i| format!("{i}\n")).collect();
    assert_eq!(out, full.as_bytes(), "the callback sees everything");
    assert!(output.truncated);
    assert_eq!(output.stdout.len(), 1000);
    assert_eq!(&output.stdout[..500], &full.as_bytes()[..500]);
    assert_eq!(&output.stdout[500..], &full.as_bytes()[full.len() - 500..]);
    assert_eq!(output.aggregated, output.stdout);
}

#[test]
fn timeout_kills_the_group() {
    let mut req = request("sleep 30 & sleep 30; echo never");
    req.timeout = Some(Duration::from_millis(200));
    let (output, out, _) = run(req);
    assert!(output.timed_out);
    assert_eq!(output.signal, Some(libc::SIGKILL));
    assert_eq!(output.exit_code, None);
    assert!(out.is_empty());
}

#[test]
fn kill_handle_works_from_another_thread_and_is_idempotent() {
    let running = spawn(request("echo ready; sleep 30")).unwrap();
    let handle = running.kill_handle();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        rx.recv().unwrap();
        handle.kill();
        handle.kill();
        handle
    });
    let mut tx = Some(tx);
    let output = running
        .wait(&mut |_, bytes| {
            if bytes.starts_with(b"ready")
                && let Some(tx) = tx.take()
            {
                tx.send(()).unwrap();
            }
        })
        .unwrap();
    let handle = killer.join().unwrap();
    assert_eq!(output.signal, Some(libc::SIGKILL));
    assert!(!output.timed_out);
    // After the reap the handle must not signal anything.
    handle.kill();
}

#[test]
fn a_grandchild_holding_the_pipes_is_killed_after_the_grace() {
    let (output, out, _) = run(request("sleep 30 & echo started"));
    assert_eq!(output.exit_code, Some(0));
    assert_eq!(out, b"started\n");
}

#[test]
fn an_escaped_grandchild_does_not_hang_the_wait() {
    // setsid leaves the group, so the group kill cannot reach it; wait still returns.
    let (output, out, _) = run(request("setsid sleep 30 & echo $!"));
    assert_eq!(output.exit_code, Some(0));
    let pid: libc::pid_t = String::from_utf8_lossy(&out).trim().parse().unwrap();
    // SAFETY: signalling the test's own stray sleep.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn piped_stdin_reaches_the_child() {
    let mut req = request("cat");
    req.stdin = StdinMode::Piped;
    let mut running = spawn(req).unwrap();
    let mut stdin = running.take_stdin().unwrap();
    assert!(running.take_stdin().is_none());
    std::io::Write::write_all(&mut stdin, b"hello\n").unwrap();
    drop(stdin);
    let output = running.wait(&mut |_, _| {}).unwrap();
    assert_eq!(output.stdout, b"hello\n");
}

#[test]
fn the_environment_is_exactly_the_requested_one() {
    let mut req = request("env");
    req.env.insert("FOO".into(), "bar".into());
    let (_, out, _) = run(req.clone());
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("FOO=bar\n"), "{text}");
    assert!(!text.contains("HOME="), "{text}");
    assert!(!text.contains(NETWORK_DISABLED_ENV), "{text}");
}

#[test]
fn network_off_is_announced_in_the_environment() {
    let cmd = sandboxed_command(
        &SandboxPolicy::ReadOnly,
        Path::new("/"),
        &["env".to_string()],
        &Env::new(),
    )
    .unwrap();
    let envs: Vec<_> = cmd.get_envs().collect();
    assert!(envs.contains(&(
        std::ffi::OsStr::new(NETWORK_DISABLED_ENV),
        Some(std::ffi::OsStr::new("1"))
    )));
    #[cfg(target_os = "linux")]
    {
        assert_eq!(
            cmd.get_args().next(),
            Some(std::ffi::OsStr::new("--sandbox-policy-cwd"))
        );
    }
}

#[test]
fn empty_argv_is_an_error() {
    let mut req = request("true");
    req.argv.clear();
    let err = spawn(req).err().unwrap();
    assert_eq!(err.to_string(), "empty command");
}

#[test]
fn dropping_unwaited_kills_and_reaps() {
    let running = spawn(request("sleep 30")).unwrap();
    let pid = running.child.as_ref().map(|c| c.id()).unwrap() as libc::pid_t;
    drop(running);
    // Reaped: the pid is no longer our child.
    // SAFETY: waitid on a pid that is not our child only reports ECHILD.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    assert_eq!(rc, -1);
}

#[test]
fn alias_dir_is_private_and_symlinks_our_executable() {
    use std::os::unix::fs::PermissionsExt;
    let home = std::env::temp_dir().join(format!("codex-lite-alias-unix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let dir = crate::exec::AliasDir::create(&home).unwrap();
    let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let exe = std::env::current_exe().unwrap();
    for name in crate::exec::alias::ALIASES {
        assert_eq!(std::fs::read_link(dir.path().join(name)).unwrap(), exe);
    }
    drop(dir);
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn a_timeout_too_far_away_is_no_deadline() {
    let mut req = request("echo done");
    req.timeout = Some(Duration::MAX);
    let (output, out, _) = run(req);
    assert_eq!(output.exit_code, Some(0));
    assert_eq!(out, b"done\n");
}
