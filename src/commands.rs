//! `command/exec`, `command/exec/write`, `command/exec/terminate` and `command/exec/resize`
//! (protocol.md §8): one command under the sandbox without a thread, buffered or streamed as
//! base64 deltas, on its own thread `command-exec`; stdin fed by a writer thread so the main loop
//! never blocks on a pipe. With `tty: true` the command runs on a pseudo-terminal (`exec::pty`):
//! streamed, stdout and stderr merged, resizable, and `closeStdin` types the EOF character.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use crossbeam_channel::{Sender, TrySendError, bounded};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::exec::{self, ExecRequest, KillHandle, OutputStream, StdinMode, Terminal, TerminalSize};
use crate::rpc::{RequestId, Rpc, RpcError};
use crate::sandbox::{ProtocolSandboxPolicy, SandboxPolicy};
use crate::server::{Server, decode};
use crate::thread::lock;

/// Queued stdin writes per process before `command/exec/write` is refused.
const STDIN_QUEUE: usize = 64;

enum StdinMessage {
    Write(Vec<u8>),
    Close,
}

struct Process {
    kill: KillHandle,
    stdin: Option<Sender<StdinMessage>>,
    terminal: Option<Terminal>,
}

/// Running commands by client-supplied `processId`.
#[derive(Default, Clone)]
pub struct Registry {
    processes: Arc<Mutex<HashMap<String, Process>>>,
}

impl Registry {
    /// Kills every running command (the connection closed).
    pub fn terminate_all(&self) {
        for process in lock(&self.processes).values() {
            process.kill.kill();
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecParams {
    command: Vec<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    env: Option<HashMap<String, Option<String>>>,
    #[serde(default)]
    timeout_ms: Option<i64>,
    #[serde(default)]
    disable_timeout: bool,
    #[serde(default)]
    sandbox_policy: Option<ProtocolSandboxPolicy>,
    #[serde(default)]
    output_bytes_cap: Option<usize>,
    #[serde(default)]
    disable_output_cap: bool,
    #[serde(default)]
    process_id: Option<String>,
    #[serde(default)]
    stream_stdout_stderr: bool,
    #[serde(default)]
    stream_stdin: bool,
    #[serde(default)]
    tty: bool,
    #[serde(default)]
    size: Option<SizeParams>,
}

/// `CommandExecTerminalSize`.
#[derive(Deserialize, Clone, Copy)]
struct SizeParams {
    rows: u16,
    cols: u16,
}

impl SizeParams {
    fn to_size(self) -> Result<TerminalSize, RpcError> {
        if self.rows == 0 || self.cols == 0 {
            return Err(RpcError::new(
                crate::rpc::INVALID_PARAMS,
                "command/exec size rows and cols must be greater than 0",
            ));
        }
        Ok(TerminalSize {
            rows: self.rows,
            cols: self.cols,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResizeParams {
    process_id: String,
    size: SizeParams,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WriteParams {
    process_id: String,
    #[serde(default)]
    delta_base64: Option<String>,
    #[serde(default)]
    close_stdin: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TerminateParams {
    process_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutputDelta<'a> {
    process_id: &'a str,
    stream: &'static str,
    delta_base64: String,
    cap_reached: bool,
}

/// One stream's capture: the first `cap` bytes, streamed or kept.
struct Capture {
    kept: Vec<u8>,
    seen: usize,
    cap: usize,
}

impl Capture {
    /// The part of `bytes` within the cap, and whether this chunk crossed it.
    fn take<'a>(&mut self, bytes: &'a [u8]) -> (&'a [u8], bool) {
        let room = self.cap.saturating_sub(self.seen);
        let before = self.seen;
        self.seen = self.seen.saturating_add(bytes.len());
        let within = &bytes[..bytes.len().min(room)];
        (within, before <= self.cap && self.seen > self.cap)
    }
}

impl Server {
    /// Dispatches command/exec methods; `None` when `method` is not
    /// one of them (the caller answers -32601), else the outcome (the caller answers errors).
    pub fn handle_command_request(
        &mut self,
        id: &RequestId,
        method: &str,
        params: Option<Value>,
    ) -> Option<Result<(), RpcError>> {
        Some(match method {
            "command/exec" => decode(params).and_then(|p| self.command_exec(id, p)),
            "command/exec/write" => decode(params)
                .and_then(|p| self.command_write(p))
                .map(|()| self.rpc.respond(id, json!({}))),
            "command/exec/terminate" => decode(params)
                .and_then(|p| self.command_terminate(p))
                .map(|()| self.rpc.respond(id, json!({}))),
            "command/exec/resize" => decode(params)
                .and_then(|p| self.command_resize(p))
                .map(|()| self.rpc.respond(id, json!({}))),
            _ => return None,
        })
    }

    fn command_exec(&mut self, id: &RequestId, params: ExecParams) -> Result<(), RpcError> {
        if params.command.is_empty() {
            return Err(RpcError::invalid_request("command must not be empty"));
        }
        let terminal_size = match (params.tty, params.size) {
            (true, size) => Some(size.map_or(Ok(TerminalSize::default()), SizeParams::to_size)?),
            (false, Some(_)) => {
                return Err(RpcError::new(
                    crate::rpc::INVALID_PARAMS,
                    "command/exec size requires tty: true",
                ));
            }
            (false, None) => None,
        };
        if (params.tty || params.stream_stdout_stderr || params.stream_stdin)
            && params.process_id.is_none()
        {
            return Err(RpcError::invalid_request(
                "command/exec tty or streaming requires a client-supplied processId",
            ));
        }
        if params.disable_timeout && params.timeout_ms.is_some() {
            return Err(RpcError::invalid_request(
                "disableTimeout cannot be combined with timeoutMs",
            ));
        }
        if params.disable_output_cap && params.output_bytes_cap.is_some() {
            return Err(RpcError::invalid_request(
                "disableOutputCap cannot be combined with outputBytesCap",
            ));
        }
        let server_cwd = std::env::current_dir()
            .map_err(|e| RpcError::internal(format!("cannot read the server's cwd: {e}")))?;
        let cwd = crate::threads::resolve_cwd(params.cwd.as_deref(), &server_cwd)?;
        let mut env = self.tool_env.env.clone();
        for (key, value) in params.env.iter().flatten() {
            match value {
                Some(v) => env.insert(key.into(), v.into()),
                None => env.remove(std::ffi::OsStr::new(key)),
            };
        }
        let policy = match params.sandbox_policy {
            Some(p) => p.0,
            None => SandboxPolicy::from_config(
                self.config.sandbox_mode,
                &self.config.sandbox_workspace_write,
            )
            .map_err(|e| RpcError::invalid_request(e.to_string()))?,
        };
        let timeout = if params.disable_timeout {
            None
        } else {
            Some(
                params
                    .timeout_ms
                    .map_or(crate::tools::DEFAULT_COMMAND_TIMEOUT, |ms| {
                        Duration::from_millis(ms.max(0) as u64)
                    }),
            )
        };
        let cap = if params.disable_output_cap {
            usize::MAX
        } else {
            params
                .output_bytes_cap
                .unwrap_or(exec::DEFAULT_OUTPUT_CAP_BYTES)
        };
        let request = ExecRequest {
            argv: params.command,
            sandbox_cwd: cwd.clone(),
            cwd,
            env,
            timeout,
            policy,
            // Our own capture below applies the client's cap; this bounds exec's buffers.
            output_cap_bytes: 64 * 1024,
            stdin: match terminal_size {
                Some(size) => StdinMode::Terminal(size),
                None if params.stream_stdin => StdinMode::Piped,
                None => StdinMode::Null,
            },
        };
        let process_id = params.process_id;
        if let Some(pid) = &process_id
            && lock(&self.commands.processes).contains_key(pid)
        {
            return Err(RpcError::invalid_request(format!(
                "processId {pid} is already in use"
            )));
        }
        let mut running = exec::spawn(request)
            .map_err(|e| RpcError::invalid_request(format!("failed to start command: {e:#}")))?;
        let terminal = running.terminal();
        let stdin =
            match running.take_stdin() {
                Some(pipe) => Some(spawn_stdin_writer(pipe, terminal.is_some()).map_err(|e| {
                    RpcError::internal(format!("cannot start the stdin writer: {e}"))
                })?),
                None => None,
            };
        if let Some(pid) = &process_id {
            lock(&self.commands.processes).insert(
                pid.clone(),
                Process {
                    kill: running.kill_handle(),
                    stdin,
                    terminal,
                },
            );
        }
        let rpc = self.rpc.clone();
        let registry = self.commands.clone();
        let id = id.clone();
        // A terminal is always streamed (the protocol: tty implies both streams).
        let stream = params.stream_stdout_stderr || params.tty;
        let spawned = std::thread::Builder::new()
            .name("command-exec".into())
            .spawn(move || {
                let result = wait_command(&rpc, running, process_id.as_deref(), stream, cap);
                if let Some(pid) = &process_id {
                    lock(&registry.processes).remove(pid);
                }
                rpc.respond_with(&id, result);
            });
        spawned
            .map(|_| ())
            .map_err(|e| RpcError::internal(format!("cannot start the command thread: {e}")))
    }

    fn command_write(&mut self, params: WriteParams) -> Result<(), RpcError> {
        let bytes = match &params.delta_base64 {
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| RpcError::invalid_params(format!("deltaBase64 is not base64: {e}")))?,
            None => Vec::new(),
        };
        let processes = lock(&self.commands.processes);
        let process = find(&processes, &params.process_id)?;
        let stdin = process.stdin.as_ref().ok_or_else(|| {
            RpcError::invalid_request(format!(
                "stdin of processId {} is not streamed (set streamStdin)",
                params.process_id
            ))
        })?;
        let send = |message| match stdin.try_send(message) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(RpcError::new(
                crate::rpc::SERVER_OVERLOADED,
                "Server overloaded; retry later.",
            )),
            Err(TrySendError::Disconnected(_)) => Err(RpcError::invalid_request(format!(
                "stdin of processId {} is closed",
                params.process_id
            ))),
        };
        if !bytes.is_empty() {
            send(StdinMessage::Write(bytes))?;
        }
        if params.close_stdin {
            send(StdinMessage::Close)?;
        }
        Ok(())
    }

    fn command_resize(&mut self, params: ResizeParams) -> Result<(), RpcError> {
        let size = params.size.to_size()?;
        let processes = lock(&self.commands.processes);
        let process = find(&processes, &params.process_id)?;
        let terminal = process.terminal.as_ref().ok_or_else(|| {
            RpcError::invalid_request("failed to resize PTY: process is not attached to a PTY")
        })?;
        terminal
            .resize(size)
            .map_err(|e| RpcError::invalid_request(format!("failed to resize PTY: {e}")))
    }

    fn command_terminate(&mut self, params: TerminateParams) -> Result<(), RpcError> {
        let processes = lock(&self.commands.processes);
        let process = find(&processes, &params.process_id)?;
        process.kill.kill();
        Ok(())
    }
}

fn find<'a>(
    processes: &'a HashMap<String, Process>,
    process_id: &str,
) -> Result<&'a Process, RpcError> {
    processes.get(process_id).ok_or_else(|| {
        RpcError::invalid_request(format!("no running command with processId {process_id}"))
    })
}

/// Feeds the child's stdin from a queue. `Close` closes a pipe; a terminal has no end of file,
/// so there it types the EOF character (what a user's Ctrl-D does) and stops.
fn spawn_stdin_writer(
    mut pipe: std::process::ChildStdin,
    is_terminal: bool,
) -> std::io::Result<Sender<StdinMessage>> {
    let (tx, rx) = bounded(STDIN_QUEUE);
    std::thread::Builder::new()
        .name("command-exec-stdin".into())
        .spawn(move || {
            while let Ok(message) = rx.recv() {
                let (bytes, last) = match message {
                    StdinMessage::Write(bytes) => (bytes, false),
                    StdinMessage::Close if is_terminal => (vec![exec::TERMINAL_EOF_CHAR], true),
                    StdinMessage::Close => break,
                };
                if pipe.write_all(&bytes).and_then(|()| pipe.flush()).is_err() || last {
                    break;
                }
            }
        })?;
    Ok(tx)
}

fn wait_command(
    rpc: &Rpc,
    running: exec::Running,
    process_id: Option<&str>,
    stream: bool,
    cap: usize,
) -> Result<Value, RpcError> {
    let mut captures = [
        Capture {
            kept: Vec::new(),
            seen: 0,
            cap,
        },
        Capture {
            kept: Vec::new(),
            seen: 0,
            cap,
        },
    ];
    let output = running.wait(&mut |which, bytes| {
        let index = usize::from(which == OutputStream::Stderr);
        let (within, crossed) = captures[index].take(bytes);
        if stream {
            if within.is_empty() && !crossed {
                return;
            }
            rpc.notify(
                "command/exec/outputDelta",
                OutputDelta {
                    process_id: process_id.unwrap_or_default(),
                    stream: if index == 0 { "stdout" } else { "stderr" },
                    delta_base64: base64::engine::general_purpose::STANDARD.encode(within),
                    cap_reached: crossed,
                },
            );
        } else {
            captures[index].kept.extend_from_slice(within);
        }
    });
    let output = output.map_err(|e| RpcError::internal(format!("command failed: {e:#}")))?;
    let exit_code = output
        .exit_code
        .unwrap_or_else(|| 128 + output.signal.unwrap_or(exec::KILLED_SIGNAL));
    let [stdout, stderr] = captures.map(|c| String::from_utf8_lossy(&c.kept).into_owned());
    Ok(json!({"exitCode": exit_code, "stdout": stdout, "stderr": stderr}))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn capture_marks_the_chunk_that_crosses_the_cap() {
        let mut c = Capture {
            kept: Vec::new(),
            seen: 0,
            cap: 5,
        };
        assert_eq!(c.take(b"abc"), (&b"abc"[..], false));
        assert_eq!(c.take(b"defg"), (&b"de"[..], true));
        assert_eq!(c.take(b"hij"), (&b""[..], false));
        let mut exact = Capture {
            kept: Vec::new(),
            seen: 0,
            cap: 3,
        };
        assert_eq!(exact.take(b"abc"), (&b"abc"[..], false));
        assert_eq!(exact.take(b"d"), (&b""[..], true));
    }
}
