//! Prints the numbers codex-lite holds itself to (README "Numbers"): binary size, time to
//! answer `initialize` after spawn, idle RSS and threads, the CPU time of a turn that
//! streams 20 000 text deltas from a local SSE server, paging `thread/list` through 10 000
//! stored threads, what configured, idle MCP servers cost in our process (stdio: `python3`
//! runs `tests/mcp/misbehaving.py`, a small server; streamable HTTP: FastMCP from the MCP
//! tests' `target/mcp-venv`, when it exists), and a long session (`bench_parts/
//! long_session.rs`: resume, one more turn and paging on a thread of 500 turns / 5 000 items).
//! Run after a release build:
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

#[path = "bench_parts/long_session.rs"]
mod long_session;

#[global_allocator]
static ALLOCATOR: long_session::Counting = long_session::Counting;

const DELTAS: usize = 20_000;
const INIT_RUNS: usize = 10;
/// Idle MCP servers configured for the per-server cost (averaged over them).
const MCP_SERVERS: usize = 4;
const STORED_THREADS: usize = 10_000;
const LIST_PAGE: usize = 100;

fn binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    root.join("target/release/codex-lite")
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _home: Option<TempHome>,
}

struct TempHome(PathBuf);

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_home() -> PathBuf {
    let home = std::env::temp_dir().join(format!(
        "codex-lite-bench-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&home).expect("temp CODEX_HOME");
    home
}

fn spawn(args: &[String]) -> Server {
    let home = TempHome(temp_home());
    let mut server = spawn_in(&home.0, args);
    server._home = Some(home);
    server
}

fn spawn_in(home: &Path, args: &[String]) -> Server {
    let mut child = Command::new(binary())
        .args(args)
        .arg("app-server")
        .env("CODEX_HOME", home)
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
        _home: None,
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

/// Memory (KiB) and threads of a server.
struct Usage {
    rss: u64,
    anon: u64,
    threads: u64,
}

/// The usage of a server with a started thread and `count` idle MCP stdio servers, all ready,
/// after a pause.
fn idle_with_mcp_servers(count: usize) -> Usage {
    idle_with(count, &stdio_server_table)
}

/// The `-c` table of idle stdio server `i` (our small test server).
fn stdio_server_table(i: usize) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/misbehaving.py");
    let script = script.display().to_string();
    format!("mcp_servers.idle{i}={{command=\"python3\",args=[{script:?},\"env\"]}}")
}

/// Rounds of the marginal MCP measurements: one sample moves by a page or two (4 KiB over
/// the 4 servers) with where the allocator's pages fall.
const MARGINAL_ROUNDS: usize = 3;

/// What each of `MCP_SERVERS` more idle servers configured by `table(i)` adds, measured
/// `MARGINAL_ROUNDS` times: (anonymous KiB each, sorted; threads each, the last round).
fn marginal_cost(table: &dyn Fn(usize) -> String) -> (Vec<f64>, f64) {
    let mut anon = Vec::new();
    let mut threads = 0.0;
    for _ in 0..MARGINAL_ROUNDS {
        let one = idle_with(1, table);
        let many = idle_with(1 + MCP_SERVERS, table);
        anon.push((many.anon as f64 - one.anon as f64) / MCP_SERVERS as f64);
        threads = (many.threads as f64 - one.threads as f64) / MCP_SERVERS as f64;
    }
    anon.sort_by(f64::total_cmp);
    (anon, threads)
}

/// "median (min–max)" of sorted samples.
fn median_and_range(sorted: &[f64]) -> String {
    format!(
        "{:.1} (of {}: {:.1}–{:.1})",
        sorted[sorted.len() / 2],
        sorted.len(),
        sorted[0],
        sorted[sorted.len() - 1]
    )
}

/// The usage of a server with `count` idle MCP servers configured by `table(i)`, all ready.
fn idle_with(count: usize, table: &dyn Fn(usize) -> String) -> Usage {
    let mut args = Vec::new();
    for i in 0..count {
        args.push("-c".to_string());
        args.push(table(i));
    }
    let mut server = spawn(&args);
    server.initialize();
    server.send(json!({"id": 1, "method": "thread/start", "params": {"ephemeral": true}}));
    server.until(|m| m["id"] == 1);
    let mut ready = 0;
    while ready < count {
        let m = server.until(|m| m["method"] == "mcpServer/startupStatus/updated");
        match m["params"]["status"].as_str() {
            Some("ready") => ready += 1,
            Some("failed") => panic!("an MCP server failed: {m}"),
            _ => {}
        }
    }
    std::thread::sleep(Duration::from_millis(1000));
    let number = |key: &str| {
        server
            .proc_field("status", key)
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Usage {
        rss: number("VmRSS:"),
        anon: number("RssAnon:"),
        threads: number("Threads:"),
    }
}

/// FastMCP over streamable HTTP (the tests' pinned SDK in `target/mcp-venv`, made by the MCP
/// tests) as idle servers: the marginal cost of each, as for stdio servers. Each server holds
/// its GET event stream open. Then the same server over stdio, to tell the transport's cost
/// from its tool list's.
fn idle_http_mcp_servers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/mcp-venv/bin/python");
    if !python.exists() {
        println!(
            "idle MCP HTTP server:   not measured (no target/mcp-venv: run `cargo test mcp` once)"
        );
        return;
    }
    let mut fastmcp = Command::new(&python)
        .arg(root.join("tests/mcp/fastmcp_server.py"))
        .arg("http")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start FastMCP");
    let mut line = String::new();
    BufReader::new(fastmcp.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("FastMCP's first line");
    let url = line.trim().trim_start_matches("listening ").to_string();
    let address = url.trim_start_matches("http://").trim_end_matches("/mcp");
    for _ in 0..400 {
        if std::net::TcpStream::connect(address).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let table = |i: usize| format!("mcp_servers.web{i}={{url={url:?},startup_timeout_sec=60}}");
    let (anon, threads) = marginal_cost(&table);
    println!(
        "idle MCP HTTP server:   +{} KiB anonymous RSS, +{threads:.1} threads each (marginal over {MCP_SERVERS}, each holding its event stream)",
        median_and_range(&anon),
    );
    let _ = fastmcp.kill();
    let _ = fastmcp.wait();

    // The same server over stdio: what its tool list costs whatever the transport.
    let script = root
        .join("tests/mcp/fastmcp_server.py")
        .display()
        .to_string();
    let python = python.display().to_string();
    let table = |i: usize| {
        format!(
            "mcp_servers.fast{i}={{command={python:?},args=[{script:?}],startup_timeout_sec=60}}"
        )
    };
    let (anon, threads) = marginal_cost(&table);
    println!(
        "  the same over stdio:  +{} KiB anonymous RSS, +{threads:.1} threads each (FastMCP's tool list costs as much whatever the transport)",
        median_and_range(&anon),
    );
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

/// Writes `count` rollouts of one short turn each, in the shape codex-lite writes them (context
/// messages of a few KB before the user's message), spread over 30 day directories.
fn store_threads(home: &Path, count: usize) {
    let filler = "x".repeat(2_000);
    for n in 0..count {
        let day = 1 + n % 30;
        let secs = n / 30;
        let id = format!("01a22e00-0000-7000-8000-{n:012}");
        let dir = home.join(format!("sessions/2026/10/{day:02}"));
        std::fs::create_dir_all(&dir).expect("day directory");
        let stamp = format!(
            "2026-10-{day:02}T{:02}-{:02}-{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        let ts = "2026-10-01T00:00:00.000Z";
        let line = |kind: &str, payload: Value| {
            json!({"timestamp": ts, "type": kind, "payload": payload}).to_string()
        };
        let message = |role: &str, text: &str| json!({"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]});
        let lines = [
            line(
                "session_meta",
                json!({"id": id, "timestamp": ts, "cwd": "/work", "originator": "bench", "cli_version": "0.1.0", "source": "vscode", "model_provider": "openai", "base_instructions": null, "model": "gpt-5"}),
            ),
            line(
                "event_msg",
                json!({"type": "task_started", "turn_id": "t1"}),
            ),
            line(
                "turn_context",
                json!({"turn_id": "t1", "cwd": "/work", "approval_policy": "on-request", "sandbox_policy": {"type": "read-only"}, "model": "gpt-5", "summary": "auto"}),
            ),
            line("response_item", message("developer", &filler)),
            line("response_item", message("user", &filler)),
            line(
                "response_item",
                message("user", &format!("question number {n}")),
            ),
            line(
                "event_msg",
                json!({"type": "item_completed", "thread_id": id, "turn_id": "t1", "item": {"type": "UserMessage", "id": "u", "content": [{"type": "text", "text": format!("question number {n}"), "text_elements": []}]}}),
            ),
            line(
                "event_msg",
                json!({"type": "user_message", "message": format!("question number {n}"), "images": [], "local_images": [], "text_elements": []}),
            ),
            line("response_item", message("assistant", "an answer")),
            line(
                "event_msg",
                json!({"type": "task_complete", "turn_id": "t1", "last_agent_message": "an answer"}),
            ),
        ];
        std::fs::write(
            dir.join(format!("rollout-{stamp}-{id}.jsonl")),
            lines.join("\n") + "\n",
        )
        .expect("write rollout");
    }
}

/// Pages through every stored thread; returns (first page, whole run) times and the count.
fn page_through(server: &mut Server, first_id: u64) -> (Duration, Duration, usize) {
    let started = Instant::now();
    let mut first = Duration::ZERO;
    let mut cursor = Value::Null;
    let mut seen = 0;
    for n in 0.. {
        let id = first_id + n;
        server.send(json!({"id": id, "method": "thread/list", "params": {"limit": LIST_PAGE, "cursor": cursor}}));
        let page = server.until(|m| m["id"] == id);
        if n == 0 {
            first = started.elapsed();
        }
        seen += page["result"]["data"].as_array().map_or(0, Vec::len);
        cursor = page["result"]["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    (first, started.elapsed(), seen)
}

fn main() {
    // `-- long-session`: only the long-session figure.
    if std::env::args().any(|a| a == "long-session") {
        long_session::measure(50);
        long_session::measure(long_session::TURNS);
        return;
    }
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

    // Marginal cost: one server vs 1 + MCP_SERVERS (the code pages the first server touches
    // are a one-off, file-backed cost; anonymous memory is what each server adds).
    let none = idle_with_mcp_servers(0);
    let one = idle_with_mcp_servers(1);
    let (anon, threads) = marginal_cost(&stdio_server_table);
    println!(
        "idle MCP stdio server:  +{} KiB anonymous RSS, +{threads:.1} threads each (marginal over {MCP_SERVERS}; the first also touches {} KiB of code: RSS {} → {} KiB)",
        median_and_range(&anon),
        (one.rss - one.anon).saturating_sub(none.rss - none.anon),
        none.rss,
        one.rss,
    );

    idle_http_mcp_servers();

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
    // The peak is mostly code pages (file-backed, shared) plus the heap: say which is which.
    println!(
        "{deltas}-delta turn:      {} ms CPU, {} ms wall, peak RSS {} (after it: {} anonymous, {} file-backed)",
        cpu.as_millis(),
        wall.as_millis(),
        server.proc_field("status", "VmHWM:"),
        server.proc_field("status", "RssAnon:"),
        server.proc_field("status", "RssFile:")
    );
    drop(server);

    let home = TempHome(temp_home());
    store_threads(&home.0, STORED_THREADS);
    let mut lister = spawn_in(&home.0, &[]);
    lister.initialize();
    let cpu_before = lister.cpu();
    let (first, whole, seen) = page_through(&mut lister, 100);
    let cpu_cold = lister.cpu().saturating_sub(cpu_before);
    let cpu_before = lister.cpu();
    let (_, again, _) = page_through(&mut lister, 100_000);
    let cpu_warm = lister.cpu().saturating_sub(cpu_before);
    println!(
        "thread/list paging:     {seen} threads in pages of {LIST_PAGE}: first page {:.1} ms, all pages {} ms wall / {} ms server CPU; again {} ms / {} ms; RSS {}",
        first.as_secs_f64() * 1000.0,
        whole.as_millis(),
        cpu_cold.as_millis(),
        again.as_millis(),
        cpu_warm.as_millis(),
        lister.proc_field("status", "VmRSS:")
    );
    // A new server over the same CODEX_HOME starts from the saved list index.
    drop(lister);
    let mut restarted = spawn_in(&home.0, &[]);
    restarted.initialize();
    let cpu_before = restarted.cpu();
    let (first, whole, _) = page_through(&mut restarted, 100);
    println!(
        "  after a restart:      first page {:.1} ms, all pages {} ms wall / {} ms server CPU",
        first.as_secs_f64() * 1000.0,
        whole.as_millis(),
        restarted.cpu().saturating_sub(cpu_before).as_millis()
    );

    // Twice: a short thread, then the long one; memory should grow by about the history.
    long_session::measure(50);
    long_session::measure(long_session::TURNS);
}
