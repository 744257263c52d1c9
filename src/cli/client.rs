//! A client of `codex-lite app-server` running as a child process: spawning it, JSON-lines
//! framing over its stdin/stdout, requests with their responses, notifications and
//! server→client requests in arrival order, and shutdown. This is what any embedding app
//! writes; `exec` and `demo` use it. It knows no method beyond the JSON-RPC shapes.
//!
//! Threads: `app-server-reader` reads the child's stdout line by line into a bounded channel;
//! everything else (writing, parsing, waiting) happens on the caller's thread, so the order in
//! which the caller sees messages is the order the server wrote them.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use serde_json::{Value, json};

/// Lines read ahead of the caller before the reader thread waits (back-pressure on the child).
const READ_AHEAD_LINES: usize = 256;
/// How often `finish` checks whether the child has exited.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Which way a protocol line travelled (for a caller that shows the raw exchange).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From us (the client) to the server.
    ToServer,
    /// From the server to us.
    FromServer,
}

/// A JSON-RPC error object from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcFailure {
    /// The error code (-32600, -32601, …).
    pub code: i64,
    /// The server's message.
    pub message: String,
}

impl std::fmt::Display for RpcFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

/// One message from the server other than the answer the caller is waiting for.
#[derive(Debug, Clone)]
pub enum Message {
    /// A notification: `method` and `params` (`null` when absent).
    Notification {
        /// The notification method.
        method: String,
        /// Its params.
        params: Value,
    },
    /// A server→client request the caller must answer with [`AppServerChild::respond`].
    Request {
        /// The id to answer with.
        id: Value,
        /// The request method.
        method: String,
        /// Its params.
        params: Value,
    },
}

/// Receives every raw protocol line, in order, when the caller wants to show them.
pub type Tap = Box<dyn FnMut(Direction, &str)>;

/// The running child and our end of its stdio. Dropping it kills the child if it is still
/// running; [`AppServerChild::finish`] is the orderly way out.
pub struct AppServerChild {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: i64,
    backlog: VecDeque<Message>,
    tap: Option<Tap>,
}

/// How to start the child.
pub struct Spawn {
    /// The program: normally our own binary.
    pub program: PathBuf,
    /// Arguments, e.g. `-c k=v … app-server`.
    pub args: Vec<OsString>,
    /// Environment variables set for the child (the rest is inherited).
    pub env: Vec<(OsString, OsString)>,
    /// Whether the child's stderr (its log) is discarded rather than shared with ours.
    pub quiet: bool,
}

impl Spawn {
    /// Our own binary with `args`, inheriting the environment and stderr.
    pub fn own_binary(args: Vec<OsString>) -> Result<Self> {
        let program = std::env::current_exe().context("locating the codex-lite binary")?;
        Ok(Self {
            program,
            args,
            env: Vec::new(),
            quiet: false,
        })
    }
}

impl AppServerChild {
    /// Starts the child and its reader thread.
    pub fn spawn(spec: Spawn) -> Result<Self> {
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if spec.quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            });
        crate::exec::shield_from_terminal_signals(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} app-server", spec.program.display()))?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the app-server child has no stdout");
        };
        let (tx, lines) = bounded(READ_AHEAD_LINES);
        let reader = std::thread::Builder::new()
            .name("app-server-reader".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = reader {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e).context("starting the app-server reader thread");
        }
        Ok(Self {
            child,
            stdin,
            lines,
            next_id: 0,
            backlog: VecDeque::new(),
            tap: None,
        })
    }

    /// Shows every raw line to `tap` from now on.
    pub fn set_tap(&mut self, tap: Tap) {
        self.tap = Some(tap);
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn write(&mut self, message: &Value) -> Result<()> {
        let line = message.to_string();
        if let Some(tap) = self.tap.as_mut() {
            tap(Direction::ToServer, &line);
        }
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("the app-server's stdin is already closed"))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .context("writing to the app-server (it may have exited)")
    }

    /// Sends a request and waits up to `timeout` (forever when `None`) for its answer.
    /// Notifications and server requests that arrive meanwhile are kept, in order, for
    /// [`AppServerChild::next`].
    pub fn request(
        &mut self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Result<Value, RpcFailure>> {
        let id = self.next_id;
        self.next_id += 1;
        self.write(&json!({"id": id, "method": method, "params": params}))?;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let Some(message) = self.read(deadline)? else {
                bail!(
                    "no answer to {method} within {:?}",
                    timeout.unwrap_or_default()
                );
            };
            match classify(message) {
                Parsed::Response { id: got, outcome } if got == json!(id) => return Ok(outcome),
                Parsed::Response { id: got, .. } => {
                    crate::log::warn(&format!("app-server answered unknown request id {got}"));
                }
                Parsed::Message(m) => self.backlog.push_back(m),
                Parsed::Invalid(line) => {
                    crate::log::warn(&format!("ignoring an app-server line: {line}"));
                }
            }
        }
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str, params: Option<Value>) -> Result<()> {
        let message = match params {
            Some(params) => json!({"method": method, "params": params}),
            None => json!({"method": method}),
        };
        self.write(&message)
    }

    /// Answers a server→client request.
    pub fn respond(&mut self, id: &Value, result: Value) -> Result<()> {
        self.write(&json!({"id": id, "result": result}))
    }

    /// Answers a server→client request with an error.
    pub fn respond_error(&mut self, id: &Value, code: i64, message: &str) -> Result<()> {
        self.write(&json!({"id": id, "error": {"code": code, "message": message}}))
    }

    /// The next notification or server request, waiting up to `timeout` (forever when
    /// `None`); `Ok(None)` on timeout, an error once the server has gone.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Option<Message>> {
        if let Some(message) = self.backlog.pop_front() {
            return Ok(Some(message));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let Some(line) = self.read(deadline)? else {
                return Ok(None);
            };
            match classify(line) {
                Parsed::Message(m) => return Ok(Some(m)),
                Parsed::Response { id, .. } => {
                    crate::log::warn(&format!("app-server answered unknown request id {id}"));
                }
                Parsed::Invalid(line) => {
                    crate::log::warn(&format!("ignoring an app-server line: {line}"));
                }
            }
        }
    }

    /// One raw line (shown to the tap), `None` at the deadline.
    fn read(&mut self, deadline: Option<Instant>) -> Result<Option<String>> {
        let line = match deadline {
            None => self.lines.recv().ok(),
            Some(deadline) => match self.lines.recv_deadline(deadline) {
                Ok(line) => Some(line),
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(line) = line else {
            let status = self.wait_exit(Duration::from_secs(1));
            bail!(
                "the app-server stopped unexpectedly ({})",
                status.map_or_else(|| "still running".to_string(), |s| s.to_string())
            );
        };
        if let Some(tap) = self.tap.as_mut() {
            tap(Direction::FromServer, &line);
        }
        Ok(Some(line))
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(EXIT_POLL_INTERVAL),
                _ => return None,
            }
        }
    }

    /// Orderly shutdown: closes the child's stdin (the server then stops its work, flushes and
    /// exits 0) and waits up to `timeout`, killing it after that. Returns its exit status.
    pub fn finish(mut self, timeout: Duration) -> Option<ExitStatus> {
        drop(self.stdin.take());
        // Keep draining so a server flushing its last lines never blocks on a full pipe.
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if let Err(RecvTimeoutError::Disconnected) = self.lines.recv_timeout(EXIT_POLL_INTERVAL)
            {
                std::thread::sleep(EXIT_POLL_INTERVAL);
            }
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for AppServerChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

enum Parsed {
    Response {
        id: Value,
        outcome: Result<Value, RpcFailure>,
    },
    Message(Message),
    Invalid(String),
}

/// Sorts one line into a response, a notification, a server request or garbage.
fn classify(line: String) -> Parsed {
    let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(&line) else {
        return Parsed::Invalid(line);
    };
    let method = map
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    let params = map.remove("params").unwrap_or(Value::Null);
    match (map.remove("id"), method) {
        (Some(id), Some(method)) => Parsed::Message(Message::Request { id, method, params }),
        (None, Some(method)) => Parsed::Message(Message::Notification { method, params }),
        (Some(id), None) => {
            let outcome = match map.remove("error") {
                Some(error) => {
                    let (code, message) = crate::rpc::error_parts(&error);
                    Err(RpcFailure { code, message })
                }
                None => Ok(map.remove("result").unwrap_or(Value::Null)),
            };
            Parsed::Response { id, outcome }
        }
        (None, None) => Parsed::Invalid(line),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn classifies_lines() {
        let cases: &[(&str, &str)] = &[
            (r#"{"id":1,"result":{"a":1}}"#, "response ok"),
            (
                r#"{"id":"x","error":{"code":-32601,"message":"m"}}"#,
                "response err",
            ),
            (r#"{"method":"turn/started","params":{}}"#, "notification"),
            (
                r#"{"id":0,"method":"item/commandExecution/requestApproval","params":{}}"#,
                "request",
            ),
            (r#"{"jsonrpc":"2.0"}"#, "invalid"),
            ("not json", "invalid"),
            ("[1,2]", "invalid"),
        ];
        for (line, want) in cases {
            let got = match classify(line.to_string()) {
                Parsed::Response { outcome: Ok(_), .. } => "response ok",
                Parsed::Response {
                    outcome: Err(_), ..
                } => "response err",
                Parsed::Message(Message::Notification { .. }) => "notification",
                Parsed::Message(Message::Request { .. }) => "request",
                Parsed::Invalid(_) => "invalid",
            };
            assert_eq!(got, *want, "{line}");
        }
        let Parsed::Response {
            outcome: Err(e), ..
        } = classify(r#"{"id":2,"error":{"code":-32600,"message":"thread not found: t"}}"#.into())
        else {
            panic!("not an error response");
        };
        assert_eq!(e.code, -32600);
        assert_eq!(e.to_string(), "thread not found: t (code -32600)");
    }
}
