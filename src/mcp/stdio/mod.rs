//! The stdio transport (MCP "stdio"): the server is our child process, JSON-RPC messages are
//! lines on its stdin and stdout, its stderr is logged. It runs outside the sandbox (it is the
//! user's own program) with only its configured environment on top of a minimal base, in its
//! own process group so that shutting it down also ends what it spawned.
//!
//! Files: this one starts the server and writes to it; `reader.rs` turns its output into
//! messages and, at the end, closes the connection with the reason; `process.rs` owns the
//! child (reaping, stopping, its stderr tail); `sys.rs` is the operating-system seam.
//!
//! Threads: on Unix no server has a thread of its own. One thread, `mcp-stdio`
//! (`poller.rs`), reads every server's stdout and stderr, from the start of its handshake to
//! its end; answers reach their waiters through channels. Elsewhere each server has a reader
//! thread (`threaded.rs`). Writes happen on the caller's thread, bounded by the caller's
//! deadline (stdin is non-blocking on Unix), so a server that stops reading cannot hang a
//! turn, nor, for the answers the reading thread writes, the other servers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Link, McpError, Transport, lock};
use crate::secret::Secret;

mod process;
mod reader;
#[cfg(unix)]
#[path = "poller.rs"]
mod reading;
#[cfg(not(unix))]
#[path = "threaded.rs"]
mod reading;
mod sys;

use process::Process;

/// Stack of the threads that read servers (`mcp-stdio`, or a server's own reader elsewhere)
/// and end them: they parse JSON and shuffle bytes, so a small stack keeps them cheap.
pub const THREAD_STACK_BYTES: usize = 256 * 1024;

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

/// Starts the server process and has its output read (`reading::watch`); returns the link over
/// it.
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
    sys::own_group(&mut cmd);
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
    if let Err(e) = sys::set_nonblocking(&stdin) {
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
    let reader = reader::Reader::new(name, Arc::downgrade(&link), process);
    if let Err(e) = reading::watch(stdout, stderr, reader) {
        link.shutdown();
        return Err(McpError::Transport(format!(
            "cannot start reading the server: {e}"
        )));
    }
    Ok(link)
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
        // The thread that reads every server answers their `ping`s and `roots/list`s: it
        // tries once, so one server that does not read its stdin cannot stall the others
        // (an answer of up to PIPE_BUF bytes is written whole or not at all).
        let deadline = if reading::on_poller_thread() {
            Instant::now()
        } else {
            deadline
        };
        let mut stdin = lock(&self.stdin);
        let Some(pipe) = stdin.as_mut() else {
            return Err(McpError::Closed("stdin is closed".into()));
        };
        sys::write_all(pipe, &line, deadline).map_err(|e| {
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
        // The connection is gone: the reading thread stops reading for it.
        reading::nudge();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

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
