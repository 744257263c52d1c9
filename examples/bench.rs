//! Prints the numbers codex-lite holds itself to (README "Numbers"): binary size, time to
//! answer `initialize` after spawn, idle RSS and threads, and the CPU time of a turn that
//! streams 20 000 text deltas from a local SSE server. Run after a release build:
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench
//! ```
//!
//! Linux only (reads `/proc`). Everything stays on 127.0.0.1. A failure to set up is a
//! panic with a message: this is a measuring tool, not part of the server.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const DELTAS: usize = 20_000;
const INIT_RUNS: usize = 10;

fn binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    root.join("target/release/codex-lite")
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _home: TempHome,
}

struct TempHome(PathBuf);

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spawn(args: &[String]) -> Server {
    let home = std::env::temp_dir().join(format!(
        "codex-lite-bench-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&home).expect("temp CODEX_HOME");
    let mut child = Command::new(binary())
        .args(args)
        .arg("app-server")
        .env("CODEX_HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn target/release/codex-lite (run `cargo build --release` first)");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    Server {
        child,
        stdin,
        stdout,
        _home: TempHome(home),
    }
}

impl Server {
    fn send(&mut self, message: Value) {
        writeln!(self.stdin, "{message}").expect("write");
        self.stdin.flush().expect("flush");
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read");
        serde_json::from_str(&line).expect("json line")
    }

    fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let message = self.read();
            if pred(&message) {
                return message;
            }
        }
    }

    fn initialize(&mut self) {
        self.send(json!({"id": 0, "method": "initialize", "params": {"clientInfo": {"name": "bench", "version": "1"}}}));
        self.until(|m| m["id"] == 0);
    }

    fn proc_field(&self, file: &str, key: &str) -> String {
        let text = std::fs::read_to_string(format!("/proc/{}/{file}", self.child.id()))
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    }

    /// User + system CPU time of the server so far.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
            + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        // /proc reports CPU times in USER_HZ ticks, 100 per second on every Linux architecture
        // we build for (what `sysconf(_SC_CLK_TCK)` returns), so the example compiles anywhere.
        const USER_HZ: u64 = 100;
        Duration::from_millis(ticks * 1000 / USER_HZ)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sse(kind: &str, mut data: Value) -> String {
    data["type"] = json!(kind);
    format!("event: {kind}\ndata: {data}\n\n")
}

/// Serves one Responses request with `DELTAS` text deltas; returns the base URL.
fn serve_deltas() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let mut body = sse("response.created", json!({"response": {"id": "r"}}));
    body.push_str(&sse(
        "response.output_item.added",
        json!({"item": {"type": "message", "id": "m", "role": "assistant", "content": []}}),
    ));
    for _ in 0..DELTAS {
        body.push_str(&sse(
            "response.output_text.delta",
            json!({"item_id": "m", "delta": "x"}),
        ));
    }
    body.push_str(&sse("response.output_item.done", json!({"item": {"type": "message", "id": "m", "role": "assistant", "content": [{"type": "output_text", "text": "x".repeat(DELTAS)}]}})));
    body.push_str(&sse("response.completed", json!({"response": {"id": "r", "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}})));
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut request = Vec::new();
        let mut buf = [0u8; 65536];
        // Read the head, then the body by its content-length.
        let (head_end, length) = loop {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return;
            }
            request.extend_from_slice(&buf[..n]);
            if let Some(pos) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&request[..pos]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (pos + 4, length);
            }
        };
        while request.len() < head_end + length {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body.as_bytes());
    });
    url
}

fn main() {
    let size = std::fs::metadata(binary()).map(|m| m.len()).unwrap_or(0);
    println!(
        "binary size:            {:.2} MB ({size} bytes)",
        size as f64 / 1e6
    );

    let mut latencies: Vec<Duration> = (0..INIT_RUNS)
        .map(|_| {
            let started = Instant::now();
            let mut server = spawn(&[]);
            server.initialize();
            started.elapsed()
        })
        .collect();
    latencies.sort();
    println!(
        "initialize answered:    {:.1} ms after spawn (median of {INIT_RUNS}, max {:.1} ms)",
        latencies[INIT_RUNS / 2].as_secs_f64() * 1000.0,
        latencies[INIT_RUNS - 1].as_secs_f64() * 1000.0
    );

    let mut idle = spawn(&[]);
    idle.initialize();
    std::thread::sleep(Duration::from_millis(500));
    println!(
        "idle after initialize:  RSS {}, {} threads",
        idle.proc_field("status", "VmRSS:"),
        idle.proc_field("status", "Threads:")
    );
    drop(idle);

    let url = serve_deltas();
    let mut server = spawn(&[
        "-c".into(),
        "model_provider=bench".into(),
        "-c".into(),
        format!("model_providers.bench={{name=\"bench\",base_url=\"{url}\"}}"),
        "-c".into(),
        "model=bench-model".into(),
    ]);
    server.initialize();
    server.send(json!({"id": 1, "method": "thread/start", "params": {"ephemeral": true}}));
    let thread = server.until(|m| m["id"] == 1)["result"]["thread"]["id"].clone();
    let cpu_before = server.cpu();
    let started = Instant::now();
    server.send(json!({"id": 2, "method": "turn/start", "params": {"threadId": thread, "input": [{"type": "text", "text": "go"}]}}));
    let mut deltas = 0;
    loop {
        let message = server.read();
        match message["method"].as_str() {
            Some("item/agentMessage/delta") => deltas += 1,
            Some("turn/completed") => break,
            _ => {}
        }
    }
    let wall = started.elapsed();
    let cpu = server.cpu().saturating_sub(cpu_before);
    println!(
        "{deltas}-delta turn:      {} ms CPU, {} ms wall, peak RSS {}",
        cpu.as_millis(),
        wall.as_millis(),
        server.proc_field("status", "VmHWM:")
    );
}
