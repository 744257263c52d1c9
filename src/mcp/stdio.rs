//! The stdio transport (MCP "stdio"): the server is our child process, JSON-RPC messages are
//! lines on its stdin and stdout, its stderr is logged. It runs outside the sandbox (it is the
//! user's own program) with only its configured environment on top of a minimal base, in its
//! own process group so that shutting it down also ends what it spawned.
//!
//! Threads: exactly one, `mcp-<name>`, the thread that started the server (`slot.rs`). On
//! Unix it reads stdout and stderr (polled together) on that thread already during the
//! handshake ([`Transport::read_until`]) and then goes on reading for as long as the server
//! lives ([`Transport::take_reader`]), so no second thread (and no second stack or malloc
//! arena) is ever made for a server; elsewhere the reader is a thread of its own from the
//! start. The reader hands messages to the [`Link`] and, at EOF, reaps the child and closes
//! the link with the reason (exit status and the end of stderr). Writes happen on the caller's
//! thread, bounded by the caller's deadline (stdin is non-blocking on Unix), so a server that
//! stops reading cannot hang a turn.
//!
//! Memory is bounded, and an idle server keeps almost none: a line longer than
//! [`MAX_LINE_BYTES`] is dropped, stderr keeps only its last [`STDERR_TAIL_BYTES`], and the read
//! buffer and line buffers are allocated while bytes arrive and given back once they are
//! handled.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
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
/// Read size of the reader: one buffer of this size exists only while bytes are handled.
const READ_CHUNK_BYTES: usize = 4096;
/// Stack of a stdio server's thread (start, then reader): it parses JSON and shuffles bytes,
/// so a small stack keeps an idle server cheap.
pub const THREAD_STACK_BYTES: usize = 256 * 1024;
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

/// Starts the server process; returns the link over it. Its reader runs on the caller's
/// thread while the caller waits for answers, until the caller takes it for good with
/// [`Link::take_reader`]; where reading needs a thread of its own (not Unix), that thread is
/// started here.
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
    let link = Arc::new_cyclic(|link| {
        let reader = Reader {
            stdout: Some(stdout),
            stderr: Some(stderr),
            out_lines: LineSplitter::new(MAX_LINE_BYTES),
            err_lines: LineSplitter::new(MAX_STDERR_LINE_BYTES),
            sink: Sink {
                link: link.clone(),
                name: name.to_string(),
                process: process.clone(),
                garbage: 0,
            },
        };
        let transport = StdioTransport {
            stdin: Mutex::new(Some(stdin)),
            process: process.clone(),
            reader: Mutex::new(Some(reader)),
        };
        Link::new(name, Box::new(transport), rpc, default_cwd)
    });
    if !platform::READS_WITH_DEADLINE {
        let reader = link.take_reader();
        let spawned = std::thread::Builder::new()
            .name(format!("mcp-{name}-reader"))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || reader.into_iter().for_each(|read| read()));
        if let Err(e) = spawned {
            process.terminate();
            return Err(McpError::Transport(format!(
                "cannot start the reader thread: {e}"
            )));
        }
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
        keep_tail(&mut lock(&self.stderr_tail), bytes, STDERR_TAIL_BYTES);
    }
}

/// Appends `bytes` to `tail`, keeping only its last `max` bytes, in a buffer of exactly `max`
/// (allocated by the first bytes: a quiet server has none).
fn keep_tail(tail: &mut Vec<u8>, bytes: &[u8], max: usize) {
    let bytes = &bytes[bytes.len().saturating_sub(max)..];
    let cut = (tail.len() + bytes.len()).saturating_sub(max);
    tail.drain(..cut);
    if !bytes.is_empty() && tail.capacity() < max {
        let room = max - tail.len();
        tail.reserve_exact(room);
    }
    tail.extend_from_slice(bytes);
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
    /// The reader until a thread takes it for good; meanwhile waiters read with it.
    reader: Mutex<Option<Reader>>,
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

    fn read_until(&self, deadline: Instant, is_done: &dyn Fn() -> bool) -> bool {
        if !platform::READS_WITH_DEADLINE {
            return false;
        }
        let mut reader = lock(&self.reader);
        let Some(active) = reader.as_mut() else {
            return false;
        };
        if active.read(Some(deadline), is_done) {
            // The output ended: the link is closed now, with the reason.
            *reader = None;
        }
        true
    }

    fn take_reader(&self) -> Option<Box<dyn FnOnce() + Send>> {
        let reader = lock(&self.reader).take()?;
        Some(Box::new(move || reader.run()))
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
                    // Given back, not kept: an idle server holds no line buffer.
                    self.buf = Vec::new();
                }
            }
        }
    }
}

/// Reads a server's stdout and stderr: messages go to the link; at the end, the link is
/// closed with the reason.
struct Reader {
    /// Open until it ends.
    stdout: Option<ChildStdout>,
    /// Open until it ends.
    stderr: Option<ChildStderr>,
    out_lines: LineSplitter,
    err_lines: LineSplitter,
    sink: Sink,
}

/// Where a reader's lines go.
struct Sink {
    link: Weak<Link>,
    name: String,
    process: Arc<Process>,
    garbage: usize,
}

impl Reader {
    /// Reads until the server's output ends or the link is gone, then closes the link.
    fn run(mut self) {
        if !self.read(None, &|| false) {
            self.end();
        }
    }

    /// Reads until `is_done()` (looked at after every chunk), `deadline` (`None`: none) or the
    /// end of the output; true at the end, when the link was closed with the reason.
    fn read(&mut self, deadline: Option<Instant>, is_done: &dyn Fn() -> bool) -> bool {
        let Reader {
            stdout,
            stderr,
            out_lines,
            err_lines,
            sink,
        } = self;
        let result = platform::pump(stdout, stderr, deadline, &mut |is_stderr, bytes| {
            if is_stderr {
                sink.process.push_stderr(bytes);
                err_lines.push(bytes, &mut |line| sink.stderr_line(line));
            } else {
                out_lines.push(bytes, &mut |line| sink.stdout_line(line));
            }
            sink.link.strong_count() > 0 && !is_done()
        });
        let ended = match result {
            Ok(()) => self.stdout.is_none() && self.stderr.is_none(),
            Err(e) => {
                crate::log::warn(&format!(
                    "mcp server {}: reading its output failed: {e}",
                    self.sink.name
                ));
                true
            }
        };
        if ended {
            self.end();
        }
        ended
    }

    /// The output ended (or nobody listens any more): reaps the process and closes the link
    /// with the reason.
    fn end(&mut self) {
        (self.stdout, self.stderr) = (None, None);
        let sink = &self.sink;
        if self.out_lines.dropped > 0 {
            crate::log::warn(&format!(
                "mcp server {}: dropped {} lines longer than {} bytes",
                sink.name, self.out_lines.dropped, MAX_LINE_BYTES
            ));
        }
        // The process is exiting (or closed its pipes and must go).
        let status = match sink.process.reap(Duration::from_secs(2)) {
            Some(status) => status,
            None => {
                sink.process.terminate();
                "closed its output and was stopped".to_string()
            }
        };
        let mut reason = format!("the server {status}");
        let tail = sink.process.stderr_tail();
        if !tail.is_empty() {
            reason.push_str(&format!("; stderr: {}", truncate(&tail, 500)));
        }
        if sink.garbage > 0 {
            reason.push_str(&format!(
                "; it printed {} lines that are not JSON-RPC",
                sink.garbage
            ));
        }
        crate::log::info(&format!("mcp server {}: {reason}", sink.name));
        if let Some(link) = sink.link.upgrade() {
            link.close(&reason);
        }
    }
}

impl Sink {
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

    /// `pump` can stop at a deadline (poll), so a server's reader runs on the thread that waits
    /// for its answers.
    pub const READS_WITH_DEADLINE: bool = true;

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

    /// Reads stdout and stderr together until both end (each is set to `None` at its end),
    /// `on_bytes` returns false or `deadline` passes, handing each chunk to
    /// `on_bytes(is_stderr, bytes)`. The read buffer exists only while a chunk is handled.
    pub fn pump(
        stdout: &mut Option<ChildStdout>,
        stderr: &mut Option<ChildStderr>,
        deadline: Option<Instant>,
        on_bytes: &mut dyn FnMut(bool, &[u8]) -> bool,
    ) -> std::io::Result<()> {
        while stdout.is_some() || stderr.is_some() {
            let timeout = match deadline {
                None => -1,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(());
                    }
                    i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX)
                }
            };
            let fd = |raw: Option<i32>| libc::pollfd {
                fd: raw.unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            };
            let mut fds = [
                fd(stdout.as_ref().map(|s| s.as_raw_fd())),
                fd(stderr.as_ref().map(|s| s.as_raw_fd())),
            ];
            // SAFETY: two valid pollfds (a negative fd is ignored by poll).
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
            if rc < 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if rc == 0 {
                continue;
            }
            let mut buf = vec![0u8; super::READ_CHUNK_BYTES];
            for (index, pfd) in fds.iter().enumerate() {
                if pfd.revents == 0 {
                    continue;
                }
                let is_stderr = index == 1;
                let pipe: &mut dyn std::io::Read = match (is_stderr, &mut *stdout, &mut *stderr) {
                    (false, Some(out), _) => out,
                    (true, _, Some(err)) => err,
                    _ => continue,
                };
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        if is_stderr {
                            *stderr = None;
                        } else {
                            *stdout = None;
                        }
                    }
                    Ok(n) if !on_bytes(is_stderr, &buf[..n]) => return Ok(()),
                    Ok(_) => {}
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

    /// `pump` blocks in reads: a server's reader is a thread of its own.
    pub const READS_WITH_DEADLINE: bool = false;

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

    /// stderr on a helper thread (no poll on this platform), stdout here, until both end;
    /// the reader runs on a thread of its own here (`READS_WITH_DEADLINE` is false), so there
    /// is no deadline.
    pub fn pump(
        stdout: &mut Option<ChildStdout>,
        stderr: &mut Option<ChildStderr>,
        _deadline: Option<Instant>,
        on_bytes: &mut dyn FnMut(bool, &[u8]) -> bool,
    ) -> std::io::Result<()> {
        let (Some(mut stdout), Some(mut stderr)) = (stdout.take(), stderr.take()) else {
            return Ok(());
        };
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
    fn the_stderr_tail_keeps_the_last_bytes_in_a_fixed_buffer() {
        let cases: &[(&[&[u8]], &[u8])] = &[
            (&[], b""),
            (&[b"abc"], b"abc"),
            (&[b"abc", b"defg"], b"cdefg"),
            (&[b"0123456789"], b"56789"),
            (&[b"ab", b"0123456789", b"x"], b"6789x"),
        ];
        for (chunks, want) in cases {
            let mut tail = Vec::new();
            for chunk in *chunks {
                keep_tail(&mut tail, chunk, 5);
                assert!(tail.capacity() <= 5, "{chunks:?}: {}", tail.capacity());
            }
            assert_eq!(&tail, want, "{chunks:?}");
        }
    }

    #[test]
    fn a_line_buffer_is_given_back_once_its_line_is_handled() {
        let mut splitter = LineSplitter::new(1 << 20);
        splitter.push(&[b'x'; 5000], &mut |_| {});
        assert!(splitter.buf.capacity() >= 5000, "a partial line is kept");
        splitter.push(b"\n", &mut |l| assert_eq!(l.len(), 5000));
        assert_eq!(splitter.buf.capacity(), 0);
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
