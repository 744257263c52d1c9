//! A seeded random JSON-RPC stream into the real binary's stdin (hardening.md §2): garbage
//! lines, broken UTF-8, deep nesting, odd ids, answers to requests never made, every method
//! with random or plausible params, commands that would sleep for long. The server must go on
//! answering, then exit cleanly when stdin closes, leaving no process behind. The stream is
//! bounded and reproducible: `CODEX_LITE_FUZZ_SEED=<n>` replays one.
#![cfg(unix)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::TempDir;
use crate::support::app_server::AppServer;
use crate::support::os::processes_naming;

/// Lines per stream, and streams per run.
const LINES: usize = 1500;
const SEEDS: [u64; 2] = [0x5eed_0001, 0xc0de_cafe];

/// xorshift64*: small, seeded, good enough to pick shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const METHODS: &[&str] = &[
    "initialize",
    "thread/start",
    "thread/resume",
    "thread/fork",
    "thread/list",
    "thread/read",
    "thread/archive",
    "thread/unarchive",
    "thread/name/set",
    "thread/loaded/list",
    "thread/unsubscribe",
    "thread/rollback",
    "thread/compact/start",
    "turn/start",
    "turn/interrupt",
    "turn/steer",
    "review/start",
    "model/list",
    "command/exec",
    "command/exec/write",
    "command/exec/terminate",
    "command/exec/resize",
    "account/read",
    "account/logout",
    "account/login/cancel",
    "getAuthStatus",
    "mcpServerStatus/list",
    "config/read",
    "no/such/method",
    "",
];

const STRINGS: &[&str] = &[
    "",
    "x",
    "ünïcødé 日本 🚀",
    "\u{0}",
    "../../../../etc/passwd",
    "/",
    "-1",
    "null",
    "%s%n",
    "\u{202e}evil",
    "a\nb",
    "read-only",
    "workspace-write",
    "danger-full-access",
    "never",
    "untrusted",
];

/// A random JSON value at most `depth` deep.
fn value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!(*rng.pick(&[0.5, -1e308, 1e308, f64::MIN_POSITIVE])),
        4 => json!(*rng.pick(&[u64::MAX as f64, -0.0])),
        5 => json!(rng.pick(STRINGS)),
        6 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth - 1)).collect()),
        _ => {
            let keys = [
                "threadId",
                "turnId",
                "input",
                "cwd",
                "command",
                "processId",
                "type",
                "text",
                "sandboxPolicy",
                "approvalPolicy",
                "model",
                "limit",
                "cursor",
                "size",
                "tty",
                "deltaBase64",
                "closeStdin",
                "timeoutMs",
                "env",
            ];
            let mut object = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                object.insert(rng.pick(&keys).to_string(), value(rng, depth - 1));
            }
            Value::Object(object)
        }
    }
}

/// Plausible params for `method`, with some fields randomized, so the handlers get past
/// decoding into their real work.
fn params(rng: &mut Rng, method: &str, threads: &[String], marker: &str) -> Value {
    let thread_id = if rng.chance(70) && !threads.is_empty() {
        json!(rng.pick(threads))
    } else {
        value(rng, 1)
    };
    let policy = rng
        .pick(&[
            json!({"type": "dangerFullAccess"}),
            json!({"type": "readOnly"}),
            json!({"type": "workspaceWrite", "writableRoots": [], "networkAccess": false}),
            json!({"type": "externalSandbox"}),
            json!({"type": "workspaceWrite", "writableRoots": ["relative"]}),
        ])
        .clone();
    let input = json!([{"type": "text", "text": rng.pick(STRINGS)}]);
    match method {
        "thread/start" | "thread/fork" | "thread/resume" => json!({
            "threadId": thread_id,
            "ephemeral": rng.chance(80),
            "approvalPolicy": rng.pick(&["never", "untrusted", "on-request", "bogus"]),
            "sandbox": rng.pick(&["read-only", "workspace-write", "danger-full-access", "x"]),
            "config": if rng.chance(20) { value(rng, 2) } else { json!({}) },
        }),
        "turn/start" => json!({"threadId": thread_id, "input": input}),
        "turn/steer" => json!({"threadId": thread_id, "input": input}),
        "turn/interrupt" => json!({"threadId": thread_id, "turnId": value(rng, 0)}),
        "command/exec" => {
            let mut p = json!({
                // The marker ($0 of a shell that loops for long) names every process this
                // test may leave behind.
                "command": ["sh", "-c", "while :; do sleep 1; done", marker],
                "sandboxPolicy": policy,
                "timeoutMs": rng.below(3000),
            });
            if rng.chance(50) {
                p["processId"] = json!(format!("p{}", rng.below(8)));
                p["streamStdoutStderr"] = json!(rng.chance(50));
                p["streamStdin"] = json!(rng.chance(50));
                p["tty"] = json!(rng.chance(20));
            }
            if rng.chance(30) {
                p["disableTimeout"] = json!(true);
                p.as_object_mut().unwrap().remove("timeoutMs");
            }
            p
        }
        "command/exec/write" => json!({
            "processId": format!("p{}", rng.below(8)),
            "deltaBase64": rng.pick(&["aGk=", "!!!", ""]),
            "closeStdin": rng.chance(50),
        }),
        "command/exec/terminate" => json!({"processId": format!("p{}", rng.below(8))}),
        "command/exec/resize" => json!({
            "processId": format!("p{}", rng.below(8)),
            "size": {"rows": rng.below(3), "cols": rng.below(70000)},
        }),
        _ => value(rng, 3),
    }
}

/// One line of the stream (as bytes: some are not UTF-8).
fn line(rng: &mut Rng, id: &mut i64, threads: &[String], marker: &str) -> Vec<u8> {
    *id += 1;
    match rng.below(20) {
        0 => b"{not json".to_vec(),
        1 => vec![0xff, 0xfe, b'{', 0xc3, b'}'],
        2 => "[".repeat(rng.below(5000)).into_bytes(),
        3 => json!({"id": *id, "result": value(rng, 2)}).to_string().into_bytes(),
        4 => json!({"id": format!("s{id}"), "error": {"code": -1, "message": "no"}})
            .to_string()
            .into_bytes(),
        5 => json!({"method": rng.pick(METHODS), "params": value(rng, 2)})
            .to_string()
            .into_bytes(),
        6 => json!({"id": value(rng, 1), "method": value(rng, 0)}).to_string().into_bytes(),
        7 => value(rng, 3).to_string().into_bytes(),
        8 => format!("{{\"id\":{id},\"method\":\"thread/list\",\"params\":{{\"limit\":{}}}}}", u64::MAX)
            .into_bytes(),
        9 => json!({"jsonrpc": "2.0", "id": *id, "method": "turn/start", "params": {
            "threadId": threads.first(), "input": [{"type": "text", "text": "x".repeat(rng.below(100_000))}]
        }})
        .to_string()
        .into_bytes(),
        _ => {
            let method = *rng.pick(METHODS);
            let id_value = if rng.chance(85) { json!(*id) } else { json!(format!("id-{id}")) };
            json!({"id": id_value, "method": method, "params": params(rng, method, threads, marker)})
                .to_string()
                .into_bytes()
        }
    }
}

#[test]
fn a_fuzzed_json_rpc_stream_leaves_the_server_answering_then_exiting_cleanly() {
    let seeds: Vec<u64> = match std::env::var("CODEX_LITE_FUZZ_SEED") {
        Ok(seed) => vec![seed.parse().expect("CODEX_LITE_FUZZ_SEED is a number")],
        Err(_) => SEEDS.to_vec(),
    };
    for seed in seeds {
        let marker = format!("fuzzmarker-{}-{seed}", std::process::id());
        let cwd = TempDir::new("fuzz-cwd");
        // A model endpoint that refuses at once: turns fail fast, nothing leaves the machine.
        let mut server = AppServer::builder()
            .config("model_provider=\"dead\"")
            .config("model_providers.dead={name=\"dead\", base_url=\"http://127.0.0.1:1/v1\", request_max_retries=0, stream_max_retries=0}")
            .spawn();
        // Before the handshake, then the handshake, then everything.
        server.send_bytes(b"{\"id\":\"early\",\"method\":\"thread/start\"}\n\x00\xff\n");
        server.initialize();
        let threads: Vec<String> = (0..2)
            .map(|_| {
                let result = server
                    .call(
                        "thread/start",
                        json!({"ephemeral": true, "cwd": cwd.path()}),
                    )
                    .unwrap();
                result["thread"]["id"].as_str().unwrap().to_string()
            })
            .collect();
        let mut rng = Rng(seed | 1);
        let mut id = 1_000_000;
        let started = Instant::now();
        for _ in 0..LINES {
            let mut bytes = line(&mut rng, &mut id, &threads, &marker);
            // Deep nesting is sent unrecorded: it would only test the transcript checker's
            // own recursion limit.
            let deep = bytes.starts_with(b"[[");
            match std::str::from_utf8(&bytes) {
                Ok(text) if !text.contains('\n') && !deep => server.send_raw(text),
                _ => {
                    bytes.push(b'\n');
                    server.send_bytes(&bytes);
                }
            }
        }
        // Still answering.
        let answer = server.call("thread/loaded/list", json!({}));
        assert!(
            answer.is_ok(),
            "seed {seed}: {answer:?}\n{}",
            server.stderr()
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "seed {seed}: the stream took {:?}",
            started.elapsed()
        );
        server.close_stdin();
        let status = server.wait_exit(Duration::from_secs(15));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "seed {seed}: {status:?}\n{}",
            server.stderr()
        );
        assert!(
            !server.stderr().contains("panicked"),
            "seed {seed}: {}",
            server.stderr()
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = processes_naming(&marker);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            left = processes_naming(&marker);
        }
        for pid in &left {
            // SAFETY: killing this test's own strays before failing.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
        assert!(left.is_empty(), "seed {seed}: orphans {left:?}");
    }
}
