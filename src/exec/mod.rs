//! Running one command: spawning it through the platform sandbox for a policy, as the head of
//! its own process tree (a process group on Unix, a Job Object on Windows); streaming stdout and
//! stderr to a callback as they arrive while keeping capped head+tail copies; the timeout;
//! killing the whole tree (from the waiting thread or any other); exit code or signal and
//! duration. Also the private `PATH` alias directory of apply_patch.md §4 (`alias.rs`).
//!
//! This file is the portable part: the request and outcome types, the order of spawning, and the
//! waiting loop's policy (timeout, drain grace). What differs per operating system sits behind
//! one seam, `sys`: `unix.rs` (process groups, `poll`, `waitid`) and `windows.rs` (Job Objects,
//! reader threads). Nothing else in the crate needs a `cfg` to run a command.
//!
//! What the sandbox allows is `crate::sandbox`; deciding whether to run a command, approvals and
//! turning the result into protocol items are the callers'.

mod alias;
mod capture;
mod env;
#[cfg(unix)]
pub mod pty;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(unix)]
use unix as sys;
#[cfg(windows)]
use windows as sys;

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::sandbox::SandboxPolicy;

pub use alias::AliasDir;
use capture::Capture;
pub use env::{Env, Inherit, ShellEnvironmentPolicy};
pub use sys::Terminal;

/// The command as one display string, as a POSIX shell reads it back: words that hold anything
/// but plain characters are single-quoted.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Keeps a long-lived helper child (the `app-server` that `exec` and `demo` spawn) out of the
/// terminal's Ctrl-C: it runs in its own process group, so the signal reaches only its parent,
/// whose exit closes the child's stdin; the child then shuts down in order (interrupting turns
/// and killing their commands) instead of dying mid-turn with commands left running.
pub fn shield_from_terminal_signals(cmd: &mut Command) {
    sys::own_process_group(cmd);
}

/// A reasonable `output_cap_bytes` when the caller has no opinion (1 MiB per buffer).
pub const DEFAULT_OUTPUT_CAP_BYTES: usize = 1024 * 1024;

/// How long output may keep flowing after the leader exited (a grandchild holding the pipes)
/// before the tree is killed, and again before the pipes are abandoned.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The environment variable set in the child when the network is off.
pub const NETWORK_DISABLED_ENV: &str = "CODEX_SANDBOX_NETWORK_DISABLED";

/// The signal number [`ExecOutput::signal`] reports for a command we killed (SIGKILL on every
/// Unix we build for; Windows has no signals, so a killed tree is reported the same way).
pub const KILLED_SIGNAL: i32 = 9;

/// The signal a seccomp filter kills a process with (SIGSYS), when this platform has signals.
pub const BAD_SYSCALL_SIGNAL: Option<i32> = sys::BAD_SYSCALL_SIGNAL;

/// What the child's stdin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdinMode {
    /// The null device (the default: commands from the model never wait for input).
    #[default]
    Null,
    /// A pipe the caller writes through [`Running::take_stdin`] (command/exec/write).
    Piped,
    /// A new pseudo-terminal of this size for stdin, stdout and stderr (all output arrives as
    /// [`OutputStream::Stdout`]); [`Running::take_stdin`] writes to it and
    /// [`Running::terminal`] resizes it. Unix only (`pty.rs`): elsewhere spawning fails.
    Terminal(TerminalSize),
}

/// A terminal's size in character cells (default 24 rows of 80 columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    /// Rows (lines).
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// What to type to end a terminal's input (the default `VEOF`, Ctrl-D): read at the start of a
/// line, it makes the reader see end of file. A terminal has no other way to close its input.
pub const TERMINAL_EOF_CHAR: u8 = 0x04;

impl Default for TerminalSize {
    fn default() -> Self {
        Self { rows: 24, cols: 80 }
    }
}

/// Which pipe a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// Program and arguments; the program is looked up on the child's `PATH`.
    pub argv: Vec<String>,
    /// The working directory of the command.
    pub cwd: PathBuf,
    /// The cwd the policy's writable roots are computed from (the thread's or turn's cwd). It is
    /// separate from `cwd` so that a command run in some other directory does not make that
    /// directory writable; usually the two are equal.
    pub sandbox_cwd: PathBuf,
    /// The child's full environment (nothing is inherited from the server); bytes, so a
    /// variable that is not UTF-8 passes through unchanged.
    pub env: Env,
    /// Kill the tree after this long; `None` waits forever.
    pub timeout: Option<Duration>,
    /// The sandbox to run under.
    pub policy: SandboxPolicy,
    /// Bytes kept of each of stdout, stderr and the interleaved output (half head, half tail).
    pub output_cap_bytes: usize,
    /// What stdin is.
    pub stdin: StdinMode,
}

/// The outcome of a finished command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code, when it exited normally.
    pub exit_code: Option<i32>,
    /// The signal that killed it, when it was killed ([`KILLED_SIGNAL`] after a timeout or a
    /// kill).
    pub signal: Option<i32>,
    /// Captured stdout (head and tail when over the cap).
    pub stdout: Vec<u8>,
    /// Captured stderr (head and tail when over the cap).
    pub stderr: Vec<u8>,
    /// Both streams interleaved in arrival order (head and tail when over the cap).
    pub aggregated: Vec<u8>,
    /// From spawn to the end of the wait.
    pub duration: Duration,
    /// Whether the timeout fired (the tree was killed).
    pub timed_out: bool,
    /// Whether any of the three buffers dropped bytes.
    pub truncated: bool,
}

/// A running command. Call [`Running::wait`]; dropping it unwaited kills the tree and reaps it.
pub struct Running {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    watch: Option<sys::Watch>,
    tree: Arc<sys::Tree>,
    started: Instant,
    timeout: Option<Duration>,
    cap: usize,
    terminal: Option<Terminal>,
}

/// Kills a running command's whole process tree; cheap to clone, usable from any thread, and
/// idempotent. After the command was reaped it does nothing (its ids may be reused).
#[derive(Clone)]
pub struct KillHandle(Arc<sys::Tree>);

impl KillHandle {
    /// Kills every process of the command's tree (the command and anything it spawned that
    /// stayed in it); `wait` then returns promptly.
    pub fn kill(&self) {
        self.0.kill();
    }

    /// Asks every process of the tree to stop (SIGTERM on Unix; on Windows the same as
    /// [`KillHandle::kill`]); one that ignores it needs `kill` after a grace.
    pub fn terminate(&self) {
        self.0.terminate();
    }
}

/// Spawns `req.argv` under `req.policy` as the head of its own process tree; stdout and stderr
/// are pipes. The sandbox is applied inside the child (Linux helper or Seatbelt), never here.
pub fn spawn(req: ExecRequest) -> Result<Running> {
    let mut cmd = sandboxed_command(&req.policy, &req.sandbox_cwd, &req.argv, &req.env)?;
    cmd.current_dir(&req.cwd);
    let terminal = match req.stdin {
        StdinMode::Terminal(size) => {
            Some(sys::open_terminal(size, &mut cmd).context("opening a pseudo-terminal")?)
        }
        StdinMode::Null | StdinMode::Piped => {
            cmd.stdin(if req.stdin == StdinMode::Piped {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            None
        }
    };
    sys::prepare(&mut cmd, terminal.is_some());
    let spawned = cmd
        .spawn()
        .with_context(|| format!("spawning {} in {}", req.argv[0], req.cwd.display()));
    // The Command holds a terminal's slave side: close it here so the master sees the end.
    drop(cmd);
    let mut child = spawned?;
    let tree = match sys::Tree::attach(&child) {
        Ok(tree) => tree,
        Err(e) => {
            // Never leave a child we cannot control running.
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let streams = match &terminal {
        Some(t) => t
            .writer()
            .and_then(|w| Ok((Some(w), Some(t.reader()?), None)))
            .context("duplicating the terminal"),
        None => Ok((child.stdin.take(), child.stdout.take(), child.stderr.take())),
    };
    let watch = streams
        .and_then(|(stdin, stdout, stderr)| Ok((stdin, sys::Watch::new(stdout, stderr, &child)?)));
    let (stdin, watch) = match watch {
        Ok(parts) => parts,
        Err(e) => {
            // Never leave a child we cannot read running.
            tree.kill();
            let _ = tree.reap(&mut child);
            return Err(e);
        }
    };
    let tree = Arc::new(tree);
    register(&tree);
    Ok(Running {
        stdin,
        child: Some(child),
        watch: Some(watch),
        tree,
        started: Instant::now(),
        timeout: req.timeout,
        cap: req.output_cap_bytes,
        terminal,
    })
}

/// Every process tree [`spawn`] started that may still run, whoever waits for it: the
/// server's last word at shutdown ([`kill_all`]) reaches them all, including commands nobody
/// else tracks.
static LIVE: Mutex<Vec<Weak<sys::Tree>>> = Mutex::new(Vec::new());

fn register(tree: &Arc<sys::Tree>) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    // A dropped `Running` and every handle gone: nothing left to kill there.
    live.retain(|t| t.strong_count() > 0);
    live.push(Arc::downgrade(tree));
}

/// Kills every command still running in this process (the server is shutting down: its
/// turns, `command/exec` with or without a `processId`, unified exec sessions, patches).
/// Reaped commands are skipped; safe to call more than once.
pub fn kill_all() {
    let live: Vec<Arc<sys::Tree>> = LIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for tree in live {
        tree.kill();
    }
}

/// The command that runs `argv` confined by `policy` (roots computed against `policy_cwd`), with
/// exactly `env` as its environment plus the sandbox's markers. Stdio, cwd and the process tree
/// are left to the caller. danger-full-access runs `argv` directly; a policy this platform
/// cannot enforce is an error (never an unconfined run).
pub fn sandboxed_command(
    policy: &SandboxPolicy,
    policy_cwd: &Path,
    argv: &[String],
    env: &Env,
) -> Result<Command> {
    let Some(program) = argv.first() else {
        bail!("empty command");
    };
    let mut cmd = if policy.has_full_disk_write_access() {
        let mut cmd = Command::new(program);
        cmd.args(&argv[1..]);
        cmd
    } else {
        crate::sandbox::confined_command(policy, policy_cwd, argv, env)?
    };
    cmd.env_clear().envs(env);
    if !policy.has_network() {
        cmd.env(NETWORK_DISABLED_ENV, "1");
    }
    for (key, value) in crate::sandbox::marker_env(policy) {
        cmd.env(key, value);
    }
    Ok(cmd)
}

impl Running {
    /// A handle that kills the whole process tree from any thread (turn interrupt,
    /// command/exec/terminate).
    pub fn kill_handle(&self) -> KillHandle {
        KillHandle(Arc::clone(&self.tree))
    }

    /// The child's stdin when spawned with [`StdinMode::Piped`] or [`StdinMode::Terminal`];
    /// `None` otherwise or once taken. Drop it to close a pipe (a terminal stays open: type
    /// [`TERMINAL_EOF_CHAR`] instead).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// The terminal the command runs on, when spawned with [`StdinMode::Terminal`].
    pub fn terminal(&self) -> Option<Terminal> {
        self.terminal.clone()
    }

    /// Waits for the command, handing every chunk of output to `on_output` as it arrives (all of
    /// it, uncapped), and returns the outcome with capped copies. Kills the tree at the timeout,
    /// and when output keeps flowing [`DRAIN_GRACE`] after the leader exited; returns at the
    /// latest one more grace later even if an escaped process still holds the pipes.
    pub fn wait(mut self, on_output: &mut dyn FnMut(OutputStream, &[u8])) -> Result<ExecOutput> {
        let Some(mut watch) = self.watch.take() else {
            bail!("command already waited for");
        };
        // A timeout too far away to represent (a caller's u64::MAX) is no deadline at all.
        let deadline = self.timeout.and_then(|t| self.started.checked_add(t));
        let mut capture = Capture::new(self.cap);
        let mut timed_out = false;
        let mut leader_exit: Option<Instant> = None;
        let mut grace_kill: Option<Instant> = None;
        loop {
            if leader_exit.is_none() {
                let Some(child) = self.child.as_mut() else {
                    bail!("command already reaped");
                };
                if watch.leader_exited(child)? {
                    leader_exit = Some(Instant::now());
                }
            }
            if !watch.has_open_pipes() && leader_exit.is_some() {
                break;
            }
            let now = Instant::now();
            if let Some(d) = deadline
                && !timed_out
                && now >= d
            {
                timed_out = true;
                self.tree.kill();
            }
            if let Some(exited) = leader_exit {
                match grace_kill {
                    None if now >= exited + DRAIN_GRACE => {
                        self.tree.kill();
                        grace_kill = Some(now);
                    }
                    Some(killed) if now >= killed + DRAIN_GRACE => break,
                    _ => {}
                }
            }
            // The next moment something must happen without any output or exit arriving.
            let mut wake: Option<Instant> = None;
            let mut wake_at = |t: Instant| wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
            if let Some(d) = deadline.filter(|_| !timed_out) {
                wake_at(d);
            }
            match (leader_exit, grace_kill) {
                (Some(exited), None) => wake_at(exited + DRAIN_GRACE),
                (Some(_), Some(killed)) => wake_at(killed + DRAIN_GRACE),
                _ => {}
            }
            watch.wait(wake, leader_exit.is_some(), &mut |stream, bytes| {
                on_output(stream, bytes);
                capture.push(stream, bytes);
            })?;
        }
        drop(watch);
        // Until here an early return leaves the child to Drop, which kills and reaps it.
        let Some(mut child) = self.child.take() else {
            bail!("command already reaped");
        };
        let status = self.tree.reap(&mut child)?;
        let (exit_code, signal) = sys::exit_parts(status, self.tree.was_killed());
        Ok(capture.finish(exit_code, signal, self.started.elapsed(), timed_out))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.tree.kill();
            let _ = self.tree.reap(&mut child);
        }
    }
}

/// The shell-style status of a finished process: its exit code, or 128 + the signal that killed
/// it (1 when neither is known).
pub fn exit_status_code(status: ExitStatus) -> i32 {
    sys::status_code(status)
}

/// Makes this process ignore the terminal's interrupt keys (Ctrl-C, Ctrl-\) so a foreground
/// command that receives them decides our outcome (the `sandbox` CLI).
pub fn ignore_terminal_interrupts() {
    sys::ignore_terminal_interrupts();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
