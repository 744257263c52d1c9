//! Drives the real `codex-lite app-server` binary over its stdio, as a client would: spawn with a
//! fresh CODEX_HOME, handshake, requests, reading notifications in order, answering server
//! requests. Every line in both directions is recorded to `target/transcripts/<test>.jsonl` for
//! the schema conformance check (`.ci/conformance.py`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};
use serde_json::{Value, json};

use super::TempDir;

/// Default wait for any single expected message.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Appends every protocol line of one test to its transcript file.
#[derive(Clone)]
pub struct Transcript {
    file: Arc<Mutex<Option<std::fs::File>>>,
}

impl Transcript {
    /// Opens `target/transcripts/<name>.jsonl` (truncating it).
    pub fn create(name: &str) -> Self {
        let dir = transcripts_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // A test that restarts the server gets one transcript per server.
        static USED: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let mut used = USED.lock().unwrap();
        let runs = used.iter().filter(|n| **n == safe).count();
        used.push(safe.clone());
        let file_name = if runs == 0 {
            format!("{safe}.jsonl")
        } else {
            format!("{safe}.{}.jsonl", runs + 1)
        };
        let file = std::fs::File::create(dir.join(file_name)).unwrap();
        Self {
            file: Arc::new(Mutex::new(Some(file))),
        }
    }

    /// Records one raw line; `dir` is `out` (server → client) or `in` (client → server).
    pub fn record(&self, dir: &str, raw: &str) {
        self.write(json!({"dir": dir, "raw": raw}));
    }

    /// Records a client line that is deliberately outside the schema (malformed, unknown, a
    /// legacy shape or an extension we accept): `.ci/conformance.py` requires every other client
    /// line to conform, and the server to refuse an out-of-schema request that is not crafted.
    pub fn record_crafted(&self, raw: &str) {
        self.write(json!({"dir": "in", "raw": raw, "crafted": true}));
    }

    fn write(&self, entry: Value) {
        if let Some(file) = self.file.lock().unwrap().as_mut() {
            writeln!(file, "{entry}").unwrap();
        }
    }
}

/// Where transcripts go: beside the target's tmp dir, so `cargo clean` removes them too.
pub fn transcripts_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("transcripts")
}

/// The current test's name (the harness names each test thread after its path).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string()
}

/// Options for spawning the server.
pub struct Builder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    codex_home: Option<PathBuf>,
    /// Descriptors the child inherits: (ours, its number in the child).
    #[cfg(unix)]
    inherited: Vec<(i32, i32)>,
}

impl Builder {
    /// Adds a `-c key=value` override (placed before `app-server`, as clients do).
    pub fn config(mut self, kv: impl Into<String>) -> Self {
        self.args.push("-c".into());
        self.args.push(kv.into());
        self
    }

    /// Adds `-c` overrides.
    pub fn configs(mut self, kvs: impl IntoIterator<Item = String>) -> Self {
        for kv in kvs {
            self = self.config(kv);
        }
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Uses an existing CODEX_HOME (e.g. to restart over the same state).
    pub fn codex_home(mut self, dir: &Path) -> Self {
        self.codex_home = Some(dir.to_path_buf());
        self
    }

    /// Hands the child `fd` (one of ours) as descriptor `at`, not close-on-exec: what a parent
    /// that leaks a descriptor (an IDE's socket) does to the server.
    #[cfg(unix)]
    pub fn inherit_fd(mut self, fd: &impl std::os::fd::AsRawFd, at: i32) -> Self {
        self.inherited.push((fd.as_raw_fd(), at));
        self
    }

    /// Spawns the server (no handshake yet).
    pub fn spawn(self) -> AppServer {
        let home_dir = match &self.codex_home {
            Some(_) => None,
            None => Some(TempDir::new("codex-home")),
        };
        let codex_home = self
            .codex_home
            .clone()
            .unwrap_or_else(|| home_dir.as_ref().unwrap().path().to_path_buf());
        let mut command = Command::new(env!("CARGO_BIN_EXE_codex-lite"));
        command
            .args(&self.args)
            .args(["app-server", "--listen", "stdio://"])
            .env("CODEX_HOME", &codex_home)
            .env_remove("OPENAI_API_KEY")
            .env_remove("CODEX_API_KEY")
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        #[cfg(unix)]
        for (fd, at) in self.inherited {
            super::os::inherit_fd(&mut command, fd, at);
        }
        let mut child = command.spawn().unwrap();
        let transcript = Transcript::create(&test_name());
        let (tx, rx) = unbounded();
        let stdout = child.stdout.take().unwrap();
        let out_transcript = transcript.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                out_transcript.record("out", &line);
                let parsed = serde_json::from_str::<Value>(&line)
                    .unwrap_or_else(|e| json!({"__not_json__": line, "error": e.to_string()}));
                if tx.send(parsed).is_err() {
                    break;
                }
            }
        });
        let stderr_text = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = stderr_text.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        AppServer {
            stdin: child.stdin.take(),
            child,
            messages: rx,
            backlog: VecDeque::new(),
            stderr: stderr_text,
            codex_home,
            _home_dir: home_dir,
            transcript,
            next_id: 0,
            crafted_next: false,
        }
    }
}

/// Waits up to `timeout` for `child` to exit; `None` if it is still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running `codex-lite app-server` child and its client-side state.
pub struct AppServer {
    child: Child,
    stdin: Option<ChildStdin>,
    messages: Receiver<Value>,
    /// Messages read while looking for something else, in arrival order.
    backlog: VecDeque<Value>,
    stderr: Arc<Mutex<String>>,
    /// The CODEX_HOME the child runs with.
    pub codex_home: PathBuf,
    _home_dir: Option<TempDir>,
    transcript: Transcript,
    next_id: i64,
    /// The next line sent is deliberately outside the schema ([`AppServer::crafted`]).
    crafted_next: bool,
}

impl AppServer {
    /// Starts configuring a server.
    pub fn builder() -> Builder {
        Builder {
            args: Vec::new(),
            env: Vec::new(),
            codex_home: None,
            #[cfg(unix)]
            inherited: Vec::new(),
        }
    }

    /// Spawns a server with defaults and completes the handshake.
    pub fn start() -> Self {
        let mut server = Self::builder().spawn();
        server.initialize();
        server
    }

    /// Sends `initialize` + `initialized`; returns the initialize result.
    pub fn initialize(&mut self) -> Value {
        self.initialize_with(json!({"clientInfo": {"name": "codex_lite_tests", "title": "Tests", "version": "1.0.0"}}))
    }

    /// Sends `initialize` with these params, then `initialized`; returns the result.
    pub fn initialize_with(&mut self, params: Value) -> Value {
        let result = self.call("initialize", params).expect("initialize failed");
        self.send(json!({"method": "initialized"}));
        result
    }

    /// Marks the next line sent (by `send`, `request`, `call`, `answer`…) as deliberately outside
    /// the schema, for the conformance check: `server.crafted().call(...)`.
    pub fn crafted(&mut self) -> &mut Self {
        self.crafted_next = true;
        self
    }

    /// Writes one raw line to the server's stdin, recorded as crafted (deliberately malformed or
    /// out of the schema: [`Transcript::record_crafted`]). Its user, the fuzzed stream, is Unix-only.
    #[cfg(unix)]
    pub fn send_raw(&mut self, line: &str) {
        self.crafted_next = true;
        self.write_line(line);
    }

    fn write_line(&mut self, line: &str) {
        if std::mem::take(&mut self.crafted_next) {
            self.transcript.record_crafted(line);
        } else {
            self.transcript.record("in", line);
        }
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Writes raw bytes without recording them (for framing tests with non-JSON input).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Writes one JSON message (which must conform to the schema unless marked
    /// [`AppServer::crafted`]).
    pub fn send(&mut self, message: Value) {
        self.write_line(&message.to_string());
    }

    /// Sends a request and returns its id without waiting.
    pub fn request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"id": id, "method": method, "params": params}));
        id
    }

    /// Sends a request and waits for its answer: `Ok(result)` or `Err(error object)`.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.request(method, params);
        let response = self.read_response(&json!(id));
        match response.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(response["result"].clone()),
        }
    }

    fn next_message(&mut self, deadline: Instant) -> Option<Value> {
        if let Some(m) = self.backlog.pop_front() {
            return Some(m);
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.messages.recv_timeout(wait) {
            Ok(m) => {
                assert!(
                    m.get("__not_json__").is_none(),
                    "server wrote a non-JSON line: {m}"
                );
                Some(m)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Reads the next message in order (from the backlog first), or `None` after `timeout`.
    pub fn read_message(&mut self, timeout: Duration) -> Option<Value> {
        self.next_message(Instant::now() + timeout)
    }

    /// Takes the first message matching `pred`, keeping the others in order for later reads.
    pub fn take_matching(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.take_matching_within(what, DEFAULT_TIMEOUT, pred)
    }

    /// [`AppServer::take_matching`] with its own timeout (for slow external processes).
    pub fn take_matching_within(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(pos) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(pos).unwrap();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(wait) {
                Ok(m) if pred(&m) => return m,
                Ok(m) => self.backlog.push_back(m),
                Err(e) => panic!(
                    "{} waiting for {what}; unread: {:?}\nstderr:\n{}",
                    if e.is_timeout() {
                        "timed out"
                    } else {
                        "the server closed stdout"
                    },
                    self.backlog,
                    self.stderr()
                ),
            }
        }
    }

    /// Waits for the response to request `id`, leaving other messages in the backlog.
    pub fn read_response(&mut self, id: &Value) -> Value {
        let id = id.clone();
        self.take_matching(&format!("response to {id}"), move |m| {
            m.get("id") == Some(&id) && m.get("method").is_none()
        })
    }

    /// Reads messages in order until one has `method` (a notification or server request) and
    /// returns it; everything before it is returned too, for order assertions.
    pub fn read_until(&mut self, method: &str) -> (Value, Vec<Value>) {
        self.read_until_within(method, DEFAULT_TIMEOUT)
    }

    /// [`AppServer::read_until`] with its own bound, for what legitimately takes long on a
    /// loaded machine (megabytes through a debug build): generous, never a sleep.
    pub fn read_until_within(&mut self, method: &str, timeout: Duration) -> (Value, Vec<Value>) {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            match self.next_message(deadline) {
                Some(m) if m.get("method").and_then(Value::as_str) == Some(method) => {
                    return (m, before);
                }
                Some(m) => before.push(m),
                None => panic!(
                    "timed out waiting for {method}; read meanwhile: {before:?}\nstderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    /// Answers a server→client request with a result.
    pub fn answer(&mut self, id: &Value, result: Value) {
        self.send(json!({"id": id, "result": result}));
    }

    /// Answers a server→client request with an error.
    pub fn answer_error(&mut self, id: &Value, code: i64, message: &str) {
        self.send(json!({"id": id, "error": {"code": code, "message": message}}));
    }

    /// Asserts nothing arrives within `quiet` (for "must not be answered" checks).
    pub fn assert_silent(&mut self, quiet: Duration) {
        if let Some(m) = self.read_message(quiet) {
            panic!("expected no message, got {m}");
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for `needle` in stderr, which another thread collects and so may
    /// lag the protocol lines; returns all of stderr read by then, found or not.
    pub fn stderr_within(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.stderr();
            if text.contains(needle) || Instant::now() >= deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Closes stdin (EOF).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits for the process to exit, up to `timeout`; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }
}

impl AppServer {
    /// The child's pid (to kill it the hard way).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        self.stdin.take();
        if self.wait_exit(Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
