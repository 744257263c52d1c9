//! The stdio transport (MCP "stdio"): the server is our child process, JSON-RPC messages are
//! lines on its stdin and stdout, its stderr is logged. It runs outside the sandbox (it is the
//! user's own program) with only its configured environment on top of a minimal base, in its
//! own process group so that shutting it down also ends what it spawned.
//!
//! Threads: exactly one, `mcp-<name>`, reads stdout and stderr (polled together on Unix),
//! hands messages to the [`Link`] and, at EOF, reaps the child and closes the link with the
//! reason (exit status and the end of stderr). Writes happen on the caller's thread, bounded
//! by the caller's deadline (stdin is non-blocking on Unix), so a server that stops reading
//! cannot hang a turn. Memory is bounded: a line longer than [`MAX_LINE_BYTES`] is dropped,
//! stderr keeps only its last [`STDERR_TAIL_BYTES`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Link, McpError, Transport, lock, truncate};
use crate::secret::Secret;

/// Longest accepted stdout line (one message); longer lines are dropped and reported.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Bytes of stderr kept for error messages.
const STDERR_TAIL_BYTES: usize = 2048;
/// Longest stderr line logged as one line.
const MAX_STDERR_LINE_BYTES: usize = 4096;
/// Read size of the reader thread: small, since an idle server keeps this buffer.
const READ_CHUNK_BYTES: usize = 4096;
/// A line buffer that grew past this (a large answer) is given back once the line is done.
const KEEP_LINE_CAPACITY_BYTES: usize = 16 * 1024;
/// Stack of the reader thread: it only shuffles bytes, so a small stack keeps an idle server
/// cheap.
const READER_STACK_BYTES: usize = 256 * 1024;
/// How long a closing server may take to exit after its stdin closed and SIGTERM.
const EXIT_GRACE: Duration = Duration::from_millis(300);

/// Variables copied from our own environment into every stdio server (mcp.md §2).
#[cfg(unix)]
const BASE_ENV: &[&str] = &["PATH", "HOME", "USER", "LANG", "TERM", "TMPDIR"];
#[cfg(windows)]
const BASE_ENV: &[&str] = &[
    "PATH",
    "PATHEXT",
    "SYSTEMROOT",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
    "TEMP",
    "TMP",
    "COMSPEC",
];

/// What to run.
pub struct StdioSpec<'a> {
    /// Program.
    pub command: &'a str,
    /// Arguments.
    pub args: &'a [String],
    /// Configured variables.
    pub env: &'a std::collections::BTreeMap<String, Secret>,
    /// Variables passed through from our environment.
    pub env_vars: &'a [String],
    /// Working directory.
    pub cwd: Option<&'a PathBuf>,
}

/// The child's environment: the base variables and `env_vars` from `ours`, then `env`.
pub fn child_env(
    spec: &StdioSpec<'_>,
    ours: &dyn Fn(&str) -> Option<String>,
) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for name in BASE_ENV
        .iter()
        .copied()
        .chain(spec.env_vars.iter().map(String::as_str))
    {
        if let Some(value) = ours(name) {
            env.insert(name.to_string(), value);
        }
    }
    for (name, value) in spec.env {
        env.insert(name.clone(), value.expose().to_string());
    }
    env
}

/// Starts the server process and its reader thread; returns the link over it.
pub fn spawn(
    name: &str,
    spec: &StdioSpec<'_>,
    rpc: crate::rpc::Rpc,
    default_cwd: PathBuf,
) -> Result<Arc<Link>, McpError> {
    let env = child_env(spec, &|k| std::env::var(k).ok());
    let mut cmd = Command::new(spec.command);
    cmd.args(spec.args)
        .env_clear()
        .envs(&env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = spec.cwd {
        cmd.current_dir(cwd);
    }
    platform::own_group(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| McpError::Transport(format!("cannot run `{}`: {e}", spec.command)))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(McpError::Transport("the child has no pipes".into()));
    };
    if let Err(e) = platform::set_nonblocking(&stdin) {
        crate::log::warn(&format!(
            "mcp server {name}: stdin stays blocking ({e}); writes cannot time out"
        ));
    }
    let process = Arc::new(Process::new(child));
    let transport = StdioTransport {
        stdin: Mutex::new(Some(stdin)),
        process: process.clone(),
    };
    let link = Arc::new(Link::new(name, Box::new(transport), rpc, default_cwd));
    let reader = Reader {
        link: Arc::downgrade(&link),
        name: name.to_string(),
        process: process.clone(),
        garbage: 0,
    };
    let spawned = std::thread::Builder::new()
        .name(format!("mcp-{name}"))
        .stack_size(READER_STACK_BYTES)
        .spawn(move || reader.run(stdout, stderr));
    if let Err(e) = spawned {
        process.terminate();
        return Err(McpError::Transport(format!(
            "cannot start the reader thread: {e}"
        )));
    }
    Ok(link)
}

/// The child and what we learned about it.
struct Process {
    child: Mutex<Child>,
    /// Set under the `child` lock once the child was reaped (its pid may then be reused).
    reaped: AtomicBool,
    stderr_tail: Mutex<Vec<u8>>,
}

impl Process {
    fn new(child: Child) -> Self {
        Self {
            child: Mutex::new(child),
            reaped: AtomicBool::new(false),
            stderr_tail: Mutex::new(Vec::new()),
        }
    }

    fn signal(&self, kill: bool) {
        let child = lock(&self.child);
        if !self.reaped.load(Ordering::SeqCst) {
            platform::signal_group(&child, kill);
        }
    }

    /// Reaps the child if it has exited, waiting up to `grace`; returns its status text.
    fn reap(&self, grace: Duration) -> Option<String> {
        let deadline = Instant::now() + grace;
        loop {
            {
                let mut child = lock(&self.child);
                if self.reaped.load(Ordering::SeqCst) {
                    return Some("exited".into());
                }
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.reaped.store(true, Ordering::SeqCst);
                        return Some(describe_status(status));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.reaped.store(true, Ordering::SeqCst);
                        return Some(format!("cannot be waited for: {e}"));
                    }
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, a short grace, SIGKILL, reaped. Idempotent.
    fn terminate(&self) {
        self.signal(false);
        if self.reap(EXIT_GRACE).is_none() {
            self.signal(true);
            let mut child = lock(&self.child);
            if !self.reaped.load(Ordering::SeqCst) {
                let _ = child.wait();
                self.reaped.store(true, Ordering::SeqCst);
            }
        }
    }

    fn stderr_tail(&self) -> String {
        let tail = lock(&self.stderr_tail);
        String::from_utf8_lossy(&tail).trim().to_string()
    }

    fn push_stderr(&self, bytes: &[u8]) {
        let mut tail = lock(&self.stderr_tail);
        tail.extend_from_slice(bytes);
        if tail.len() > STDERR_TAIL_BYTES {
            let cut = tail.len() - STDERR_TAIL_BYTES;
            tail.drain(..cut);
        }
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    match (status.code(), platform::signal_of(&status)) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "exited".to_string(),
    }
}

struct StdioTransport {
    stdin: Mutex<Option<ChildStdin>>,
    process: Arc<Process>,
}

impl Transport for StdioTransport {
    fn send(&self, _link: &Arc<Link>, message: &Value, deadline: Instant) -> Result<(), McpError> {
        let mut line = serde_json::to_vec(message)
            .map_err(|e| McpError::Transport(format!("cannot encode a message: {e}")))?;
        line.push(b'\n');
        let mut stdin = lock(&self.stdin);
        let Some(pipe) = stdin.as_mut() else {
            return Err(McpError::Closed("stdin is closed".into()));
        };
        platform::write_all(pipe, &line, deadline).map_err(|e| {
            if e.kind() == std::io::ErrorKind::TimedOut {
                McpError::Timeout(Duration::ZERO)
            } else {
                McpError::Transport(format!("cannot write to the server: {e}"))
            }
        })
    }

    fn shutdown(&self) {
        // Closing stdin is the polite request to exit; then SIGTERM, then SIGKILL.
        drop(lock(&self.stdin).take());
        self.process.terminate();
    }
}

impl Drop for StdioTransport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Splits a byte stream into lines, dropping (and counting) lines longer than `max`.
pub struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
    overflowing: bool,
    /// Lines dropped for length so far.
    pub dropped: usize,
}

impl LineSplitter {
    /// A splitter keeping lines up to `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            overflowing: false,
            dropped: 0,
        }
    }

    /// Feeds bytes; calls `on_line` for every complete line (without `\n` or `\r\n`).
    pub fn push(&mut self, mut bytes: &[u8], on_line: &mut dyn FnMut(&[u8])) {
        while !bytes.is_empty() {
            let (chunk, newline) = match bytes.iter().position(|&b| b == b'\n') {
                Some(pos) => (&bytes[..pos], true),
                None => (bytes, false),
            };
            bytes = &bytes[chunk.len() + usize::from(newline)..];
            if !self.overflowing {
                if self.buf.len() + chunk.len() > self.max {
                    self.overflowing = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            if newline {
                if self.overflowing {
                    self.overflowing = false;
                    self.dropped += 1;
                } else {
                    let line = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
                    on_line(line);
                    self.buf.clear();
                    if self.buf.capacity() > KEEP_LINE_CAPACITY_BYTES {
                        self.buf = Vec::new();
                    }
                }
            }
        }
    }
}

struct Reader {
    link: Weak<Link>,
    name: String,
    process: Arc<Process>,
    garbage: usize,
}

impl Reader {
    fn run(mut self, stdout: ChildStdout, stderr: std::process::ChildStderr) {
        let mut out_lines = LineSplitter::new(MAX_LINE_BYTES);
        let mut err_lines = LineSplitter::new(MAX_STDERR_LINE_BYTES);
        let result = platform::pump(stdout, stderr, &mut |is_stderr, bytes| {
            if is_stderr {
                self.process.push_stderr(bytes);
                err_lines.push(bytes, &mut |line| self.stderr_line(line));
            } else {
                out_lines.push(bytes, &mut |line| self.stdout_line(line));
            }
            self.link.strong_count() > 0
        });
        if let Err(e) = result {
            crate::log::warn(&format!(
                "mcp server {}: reading its output failed: {e}",
                self.name
            ));
        }
        if out_lines.dropped > 0 {
            crate::log::warn(&format!(
                "mcp server {}: dropped {} lines longer than {} bytes",
                self.name, out_lines.dropped, MAX_LINE_BYTES
            ));
        }
        // Output ended: the process is exiting (or closed its pipes and must go).
        let status = match self.process.reap(Duration::from_secs(2)) {
            Some(status) => status,
            None => {
                self.process.terminate();
                "closed its output and was stopped".to_string()
            }
        };
        let mut reason = format!("the server {status}");
        let tail = self.process.stderr_tail();
        if !tail.is_empty() {
            reason.push_str(&format!("; stderr: {}", truncate(&tail, 500)));
        }
        if self.garbage > 0 {
            reason.push_str(&format!(
                "; it printed {} lines that are not JSON-RPC",
                self.garbage
            ));
        }
        crate::log::info(&format!("mcp server {}: {reason}", self.name));
        if let Some(link) = self.link.upgrade() {
            link.close(&reason);
        }
    }

    fn stdout_line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Some(link) = self.link.upgrade() else {
            return;
        };
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Array(batch)) => batch.into_iter().for_each(|m| link.dispatch(m)),
            Ok(message) => link.dispatch(message),
            Err(_) => {
                self.garbage += 1;
                let text = String::from_utf8_lossy(line);
                if self.garbage <= 5 || self.garbage.is_power_of_two() {
                    crate::log::warn(&format!(
                        "mcp server {}: ignoring stdout line that is not JSON-RPC ({} so far): {}",
                        self.name,
                        self.garbage,
                        truncate(&text, 200)
                    ));
                }
                link.note_garbage(&truncate(&text, 200));
            }
        }
    }

    fn stderr_line(&self, line: &[u8]) {
        if crate::log::enabled(crate::log::Level::Info) {
            crate::log::info(&format!(
                "mcp server {} stderr: {}",
                self.name,
                String::from_utf8_lossy(line)
            ));
        }
    }
}

#[cfg(unix)]
mod platform {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
    use std::time::Instant;

    /// The child leads a new process group, so signals reach what it spawns too.
    pub fn own_group(cmd: &mut Command) {
        cmd.process_group(0);
    }

    pub fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
        status.signal()
    }

    /// Signals the child's process group (SIGKILL or SIGTERM). The caller guarantees the
    /// child is not reaped yet, so its pid (the group id) cannot have been reused.
    pub fn signal_group(child: &Child, kill: bool) {
        let Ok(pgid) = libc::pid_t::try_from(child.id()) else {
            return;
        };
        let signal = if kill { libc::SIGKILL } else { libc::SIGTERM };
        // SAFETY: killpg only sends a signal to the group we created.
        unsafe { libc::killpg(pgid, signal) };
    }

    pub fn set_nonblocking(stdin: &ChildStdin) -> std::io::Result<()> {
        let fd = stdin.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own, with standard flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Writes everything, waiting for room until `deadline` (`TimedOut` past it).
    pub fn write_all(
        pipe: &mut ChildStdin,
        mut bytes: &[u8],
        deadline: Instant,
    ) -> std::io::Result<()> {
        while !bytes.is_empty() {
            match pipe.write(bytes) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(std::io::ErrorKind::TimedOut.into());
                    }
                    let mut fds = [libc::pollfd {
                        fd: pipe.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    let millis = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(fds.as_mut_ptr(), 1, millis) };
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads stdout and stderr together until both end (or `on_bytes` returns false), handing
    /// each chunk to `on_bytes(is_stderr, bytes)`.
    pub fn pump(
        stdout: ChildStdout,
        stderr: ChildStderr,
        on_bytes: &mut dyn FnMut(bool, &[u8]) -> bool,
    ) -> std::io::Result<()> {
        let mut stdout = Some(stdout);
        let mut stderr = Some(stderr);
        let mut buf = vec![0u8; super::READ_CHUNK_BYTES];
        while stdout.is_some() || stderr.is_some() {
            let fd = |open: bool, raw: i32| libc::pollfd {
                fd: if open { raw } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            };
            let mut fds = [
                fd(
                    stdout.is_some(),
                    stdout.as_ref().map_or(-1, |s| s.as_raw_fd()),
                ),
                fd(
                    stderr.is_some(),
                    stderr.as_ref().map_or(-1, |s| s.as_raw_fd()),
                ),
            ];
            // SAFETY: two valid pollfds (a negative fd is ignored by poll).
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if rc < 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            for (index, pfd) in fds.iter().enumerate() {
                if pfd.revents == 0 {
                    continue;
                }
                let is_stderr = index == 1;
                let n = if is_stderr {
                    stderr.as_mut().map(|s| std::io::Read::read(s, &mut buf))
                } else {
                    stdout.as_mut().map(|s| std::io::Read::read(s, &mut buf))
                };
                match n {
                    Some(Ok(0)) | Some(Err(_)) => {
                        if is_stderr {
                            stderr = None;
                        } else {
                            stdout = None;
                        }
                    }
                    Some(Ok(n)) if !on_bytes(is_stderr, &buf[..n]) => return Ok(()),
                    Some(Ok(_)) | None => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(not(unix))]
mod platform {
    use std::io::{Read, Write};
    use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
    use std::time::Instant;

    pub fn own_group(_cmd: &mut Command) {}

    pub fn signal_of(_status: &std::process::ExitStatus) -> Option<i32> {
        None
    }

    pub fn signal_group(child: &Child, _kill: bool) {
        // No process groups here: end the server itself.
        let pid = child.id();
        let _ = std::process::Command::new("taskkill")
            .args(["/T", "/F", "/PID", &pid.to_string()])
            .status();
    }

    pub fn set_nonblocking(_stdin: &ChildStdin) -> std::io::Result<()> {
        Err(std::io::Error::other("not supported on this platform"))
    }

    pub fn write_all(
        pipe: &mut ChildStdin,
        bytes: &[u8],
        _deadline: Instant,
    ) -> std::io::Result<()> {
        pipe.write_all(bytes)
    }

    /// stderr on a helper thread (no poll on this platform), stdout here.
    pub fn pump(
        mut stdout: ChildStdout,
        mut stderr: ChildStderr,
        on_bytes: &mut dyn FnMut(bool, &[u8]) -> bool,
    ) -> std::io::Result<()> {
        let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(16);
        std::thread::Builder::new()
            .name("mcp-stderr".into())
            .spawn(move || {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            })?;
        let mut buf = vec![0u8; super::READ_CHUNK_BYTES];
        loop {
            while let Ok(chunk) = rx.try_recv() {
                if !on_bytes(true, &chunk) {
                    return Ok(());
                }
            }
            let n = stdout.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if !on_bytes(false, &buf[..n]) {
                return Ok(());
            }
        }
        while let Ok(chunk) = rx.recv() {
            on_bytes(true, &chunk);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_long_lines_are_dropped() {
        type Case<'a> = (&'a [&'a [u8]], &'a [&'a str], usize);
        let cases: &[Case] = &[
            (&[b"a\nb\r\n", b"c"], &["a", "b"], 0),
            (&[b"ab", b"c\n", b"\n"], &["abc", ""], 0),
            (&[b"0123456789AB\nok\n"], &["ok"], 1),
            (&[b"01234", b"56789AB", b"CD\nok\n"], &["ok"], 1),
            (&[b"0123456789\n"], &["0123456789"], 0),
        ];
        for (chunks, want, dropped) in cases {
            let mut splitter = LineSplitter::new(10);
            let mut got = Vec::new();
            for chunk in *chunks {
                splitter.push(chunk, &mut |l| {
                    got.push(String::from_utf8(l.to_vec()).unwrap())
                });
            }
            assert_eq!(&got, want, "{chunks:?}");
            assert_eq!(splitter.dropped, *dropped, "{chunks:?}");
        }
    }

    #[test]
    fn the_environment_is_the_base_the_pass_through_and_the_table() {
        let env: std::collections::BTreeMap<String, Secret> = [
            ("TOKEN".to_string(), Secret::new("t")),
            ("HOME".to_string(), Secret::new("/h")),
        ]
        .into_iter()
        .collect();
        let vars = vec!["EXTRA".to_string()];
        let spec = StdioSpec {
            command: "x",
            args: &[],
            env: &env,
            env_vars: &vars,
            cwd: None,
        };
        let ours = |k: &str| match k {
            "PATH" => Some("/bin".to_string()),
            "HOME" => Some("/root".to_string()),
            "EXTRA" => Some("e".to_string()),
            "OPENAI_API_KEY" => Some("secret".to_string()),
            _ => None,
        };
        let got = child_env(&spec, &ours);
        let mut keys: Vec<_> = got.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["EXTRA", "HOME", "PATH", "TOKEN"]);
        assert_eq!(got["HOME"], "/h", "the table wins");
        assert_eq!(got["EXTRA"], "e");
    }
}
