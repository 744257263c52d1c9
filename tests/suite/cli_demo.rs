//! `codex-lite demo` (interop.md §3): the offline tour runs one complete turn against its
//! built-in scripted model, shows each step, and exits 0; `--json` shows the raw protocol
//! lines, which are recorded for the schema conformance check.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::TempDir;
use crate::support::app_server::{Transcript, test_name};

fn demo(args: &[&str]) -> std::process::Output {
    // No CODEX_HOME, no network settings: the demo brings its own.
    let home = TempDir::new("demo-home");
    Command::new(env!("CARGO_BIN_EXE_codex-lite"))
        .arg("demo")
        .args(args)
        .env("HOME", home.path())
        .env_remove("CODEX_HOME")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn the_demo_shows_a_complete_turn_offline() {
    let out = demo(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Each step, in order.
    let steps = [
        "→ initialize",
        "→ account/login/start",
        "← account/updated",
        "commands can be sandboxed here",
        "→ thread/start",
        "→ turn/start",
        "model server: 401 Unauthorized",
        "← account/chatgptAuthTokens/refresh",
        "fresh tokens",
        "thinking: ",
        // The catalog's default model takes `shell_command`: the user's shell runs the script.
        "command: ",
        "-lc 'cat greeting.txt",
        "Hello, world",
        "Read-only file system",
        "patch completed: update ",
        "← item/commandExecution/requestApproval",
        "→ (answer)                              accept",
        "written with your approval",
        "(exit 0)",
        "codex: Done",
        "turn completed; tokens:",
        "demo finished: the turn completed and the app-server exited 0",
    ];
    let mut from = 0;
    for step in steps {
        let at = stdout[from..]
            .find(step)
            .unwrap_or_else(|| panic!("step {step:?} missing (or out of order) in:\n{stdout}"));
        from += at + step.len();
    }
    // The scratch directory is gone.
    let scratch = std::env::temp_dir().join(format!("codex-lite-demo-{}", out_pid(&stdout)));
    assert!(!scratch.exists(), "{} left behind", scratch.display());
}

/// The demo's pid, from the workspace path it prints.
fn out_pid(stdout: &str) -> String {
    let line = stdout.lines().find(|l| l.contains("workspace ")).unwrap();
    let start = line.find("codex-lite-demo-").unwrap() + "codex-lite-demo-".len();
    line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

#[test]
fn the_demo_shows_raw_protocol_lines_on_request() {
    let out = demo(&["--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let transcript = Transcript::create(&test_name());
    let mut methods = Vec::new();
    for line in stdout.lines() {
        let (dir, raw) = if let Some(raw) = line.strip_prefix("→ ") {
            ("in", raw)
        } else if let Some(raw) = line.strip_prefix("← ") {
            ("out", raw)
        } else {
            panic!("not a protocol line: {line}");
        };
        let message: Value = serde_json::from_str(raw).unwrap();
        if let Some(method) = message["method"].as_str() {
            methods.push(format!("{dir} {method}"));
        }
        transcript.record(dir, raw);
    }
    for want in [
        "in initialize",
        "in account/login/start",
        "in command/exec",
        "in thread/start",
        "in turn/start",
        "out account/chatgptAuthTokens/refresh",
        "out item/commandExecution/requestApproval",
        "out turn/completed",
    ] {
        assert!(
            methods.iter().any(|m| m == want),
            "{want} missing: {methods:?}"
        );
    }
    assert_eq!(
        methods.last().map(String::as_str),
        Some("out turn/completed")
    );
}

/// The README's first command must work for a normal user too: as root, the demo runs again
/// as `nobody` (from a copy of the binary that user can reach); as a normal user, as is.
#[cfg(unix)]
#[test]
fn the_demo_runs_as_a_normal_user() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65534;
    let bin_dir = std::env::temp_dir().join(format!("codex-lite-demo-bin-{}", std::process::id()));
    std::fs::create_dir_all(&bin_dir).unwrap();
    let bin = bin_dir.join("codex-lite");
    std::fs::copy(env!("CARGO_BIN_EXE_codex-lite"), &bin).unwrap();
    std::fs::set_permissions(&bin_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = Command::new(&bin);
    command
        .arg("demo")
        .current_dir("/")
        .env("HOME", "/nonexistent")
        .env_remove("CODEX_HOME")
        .stdin(Stdio::null());
    if unsafe { libc::geteuid() } == 0 {
        // std drops the supplementary groups when root sets a uid.
        command.uid(NOBODY).gid(NOBODY);
    }
    let out = command.output().unwrap();
    let _ = std::fs::remove_dir_all(&bin_dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("commands can be sandboxed here"),
        "{stdout}"
    );
    assert!(
        stdout.contains("demo finished: the turn completed"),
        "{stdout}"
    );
}
