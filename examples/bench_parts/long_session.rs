//! The long-session figure: a stored thread of `TURNS` turns and ten items each (a question,
//! eight shell calls with their outputs, an answer), written with the server's own rollout writer.
//! Measured: `thread/resume` (wall, CPU, memory it adds), one more turn (until its request
//! reaches the model, and the whole turn), paging through every turn and every item, and a
//! resume that asks for the turns too. Run for a small and the long thread, so memory can be
//! compared with the size of the history itself (weighed in this process by a counting
//! allocator).

use super::*;

use codex_lite::protocol::{
    CommandSource, ItemStatus, ThreadItem, TokenUsage, TurnStatus, UserInput,
};
use codex_lite::rollout::{Entry, Rollout, SessionMeta, TurnContext};

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting live bytes, so the bench can weigh the loaded history itself
/// (what `rollout::load` keeps) in its own process.
pub struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Live heap bytes of the loaded thread in this process: all of it, and of that its model
/// history (the rest is mostly the turns' items).
fn loaded_bytes(home: &Path, thread: &str) -> (usize, usize) {
    let (path, _) = codex_lite::rollout::find(home, thread).expect("stored rollout");
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut loaded = codex_lite::rollout::load(&path).expect("load");
    let bytes = LIVE_BYTES.load(Ordering::Relaxed).saturating_sub(before);
    let history = std::mem::take(&mut loaded.history);
    let without_history = LIVE_BYTES.load(Ordering::Relaxed);
    drop(history);
    let history_bytes = without_history.saturating_sub(LIVE_BYTES.load(Ordering::Relaxed));
    drop(loaded);
    (bytes, history_bytes)
}

/// Turns of the long thread.
pub const TURNS: usize = 500;
/// Shell calls per turn (each a `commandExecution` item, a call and an output in the history).
const CALLS_PER_TURN: usize = 8;

/// Writes a thread of `turns` turns into `home` as the server would; returns its id and the
/// rollout's size in bytes.
fn store_long_thread(home: &Path, turns: usize) -> (String, u64) {
    let id = codex_lite::ids::uuid_v7();
    let meta = SessionMeta {
        id: id.clone(),
        created_at: 1_790_000_000,
        cwd: home.display().to_string(),
        originator: Some("bench".into()),
        cli_version: "0.1.0".into(),
        source: "vscode".into(),
        model_provider: "bench".into(),
        model: "bench-model".into(),
        forked_from_id: None,
        base_instructions: None,
        developer_instructions: None,
        dynamic_tools: None,
    };
    let mut rollout = Rollout::create(home, &meta).expect("rollout");
    let mut append = |entry: Entry| rollout.append(&entry).expect("append");
    let output = "line of command output\n".repeat(40);
    let message = |role: &str, kind: &str, text: &str| json!({"type": "message", "role": role, "content": [{"type": kind, "text": text}]});
    let mut total = TokenUsage::default();
    for t in 0..turns {
        let turn_id = format!("turn-{t:05}");
        append(Entry::TurnStarted {
            turn_id: turn_id.clone(),
        });
        append(Entry::TurnContext(TurnContext {
            cwd: meta.cwd.clone(),
            model: "bench-model".into(),
            effort: None,
            summary: None,
            approval_policy: "never".into(),
            sandbox_policy: json!({"type": "read-only"}),
        }));
        if t == 0 {
            append(Entry::ResponseItem(message(
                "developer",
                "input_text",
                &"permissions ".repeat(60),
            )));
            append(Entry::ResponseItem(message(
                "user",
                "input_text",
                "<environment_context>\n  <cwd>/bench</cwd>\n</environment_context>",
            )));
        }
        let question = format!("question {t}: please look at the build and fix what fails");
        append(Entry::ResponseItem(message(
            "user",
            "input_text",
            &question,
        )));
        append(Entry::ThreadItem {
            turn_id: turn_id.clone(),
            item: ThreadItem::UserMessage {
                id: format!("user-{t}"),
                content: vec![UserInput::Text {
                    text: question,
                    text_elements: Vec::new(),
                }],
            },
        });
        for c in 0..CALLS_PER_TURN {
            let call_id = format!("call-{t}-{c}");
            append(Entry::ResponseItem(
                json!({"type": "function_call", "call_id": call_id, "name": "shell", "arguments": "{\"command\":[\"cargo\",\"build\"]}"}),
            ));
            append(Entry::ThreadItem {
                turn_id: turn_id.clone(),
                item: ThreadItem::CommandExecution {
                    id: call_id.clone(),
                    command: "cargo build".into(),
                    cwd: meta.cwd.clone(),
                    status: ItemStatus::Completed,
                    aggregated_output: Some(output.clone()),
                    exit_code: Some(0),
                    duration_ms: Some(1200),
                    command_actions: Vec::new(),
                    process_id: None,
                    source: CommandSource::Agent,
                },
            });
            append(Entry::ResponseItem(
                json!({"type": "function_call_output", "call_id": call_id, "output": output}),
            ));
        }
        let answer = format!("answer {t}: the build passes now; here is what I changed and why.");
        append(Entry::ResponseItem(message(
            "assistant",
            "output_text",
            &answer,
        )));
        append(Entry::ThreadItem {
            turn_id: turn_id.clone(),
            item: ThreadItem::AgentMessage {
                id: format!("msg-{t}"),
                text: answer,
            },
        });
        let last = TokenUsage {
            input_tokens: 2_000,
            cached_input_tokens: 0,
            output_tokens: 100,
            reasoning_output_tokens: 0,
            total_tokens: 2_100,
        };
        total.add(&last);
        append(Entry::TokenUsage { total, last });
        append(Entry::TurnCompleted {
            turn_id,
            status: TurnStatus::Completed,
            error: None,
        });
    }
    let size = std::fs::metadata(rollout.path())
        .map(|m| m.len())
        .unwrap_or(0);
    (id, size)
}

/// Serves one Responses request with a short answer; reports when the whole request arrived
/// and its size.
fn serve_answer() -> (String, std::sync::mpsc::Receiver<(Instant, usize)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut body = sse("response.created", json!({"response": {"id": "r"}}));
    body.push_str(&sse("response.output_item.done", json!({"item": {"type": "message", "id": "m", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}})));
    body.push_str(&sse("response.completed", json!({"response": {"id": "r", "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}})));
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut request = Vec::new();
        let mut buf = [0u8; 65536];
        let mut wanted = None;
        while wanted.is_none_or(|w| request.len() < w) {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return;
            }
            request.extend_from_slice(&buf[..n]);
            if wanted.is_none()
                && let Some(pos) = request.windows(4).position(|w| w == b"\r\n\r\n")
            {
                let head = String::from_utf8_lossy(&request[..pos]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                wanted = Some(pos + 4 + length);
            }
        }
        let _ = tx.send((Instant::now(), request.len()));
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body.as_bytes());
    });
    (url, rx)
}

fn kib(server: &Server, key: &str) -> u64 {
    server
        .proc_field("status", key)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Pages through a thread with `method` in pages of `limit`; returns (pages, entries, time).
fn page_all(
    server: &mut Server,
    method: &str,
    thread: &str,
    limit: u32,
    first_id: u64,
) -> (usize, usize, Duration) {
    let started = Instant::now();
    let (mut pages, mut entries, mut cursor) = (0, 0, Value::Null);
    loop {
        let id = first_id + pages as u64;
        server.send(json!({"id": id, "method": method, "params": {"threadId": thread, "limit": limit, "cursor": cursor}}));
        let page = server.until(|m| m["id"] == id);
        pages += 1;
        entries += page["result"]["data"].as_array().map_or(0, Vec::len);
        cursor = page["result"]["nextCursor"].clone();
        if cursor.is_null() {
            return (pages, entries, started.elapsed());
        }
    }
}

/// Measures one stored thread of `turns` turns and prints a line.
pub fn measure(turns: usize) {
    let home = TempHome(temp_home());
    let (thread, file_bytes) = store_long_thread(&home.0, turns);
    let (loaded_bytes, history_bytes) = loaded_bytes(&home.0, &thread);
    let (url, arrived) = serve_answer();
    let mut server = spawn_in(
        &home.0,
        &[
            "-c".into(),
            "model_provider=bench".into(),
            "-c".into(),
            format!("model_providers.bench={{name=\"bench\",base_url=\"{url}\"}}"),
            "-c".into(),
            "model=bench-model".into(),
        ],
    );
    server.initialize();
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle = kib(&server, "VmRSS:");

    let cpu_before = server.cpu();
    let started = Instant::now();
    server.send(json!({"id": 1, "method": "thread/resume", "params": {"threadId": thread, "excludeTurns": true}}));
    let resumed = server.until(|m| m["id"] == 1);
    assert!(resumed.get("result").is_some(), "resume failed: {resumed}");
    let resume_wall = started.elapsed();
    let resume_cpu = server.cpu().saturating_sub(cpu_before);
    let rss_resumed = kib(&server, "VmRSS:");

    let (turn_pages, turn_count, turns_time) =
        page_all(&mut server, "thread/turns/list", thread.as_str(), 25, 100);
    let (item_pages, item_count, items_time) = page_all(
        &mut server,
        "thread/items/list",
        thread.as_str(),
        100,
        10_000,
    );
    let rss_paged = kib(&server, "VmRSS:");

    let cpu_before = server.cpu();
    let started = Instant::now();
    server.send(json!({"id": 2, "method": "turn/start", "params": {"threadId": thread, "input": [{"type": "text", "text": "one more"}]}}));
    let (at, request_bytes) = arrived
        .recv_timeout(Duration::from_secs(60))
        .expect("the turn's request");
    let to_request = at.saturating_duration_since(started);
    server.until(|m| m["method"] == "turn/completed");
    let turn_wall = started.elapsed();
    let turn_cpu = server.cpu().saturating_sub(cpu_before);
    let rss_after = kib(&server, "VmRSS:");
    let peak = kib(&server, "VmHWM:");

    // A client that asks for the turns too (resuming the loaded thread answers them all).
    let started = Instant::now();
    server.send(json!({"id": 3, "method": "thread/resume", "params": {"threadId": thread}}));
    let with_turns = server.until(|m| m["id"] == 3);
    let with_turns_wall = started.elapsed();
    let with_turns_bytes = with_turns.to_string().len();
    let peak_with_turns = kib(&server, "VmHWM:");
    println!(
        "long session, {turns} turns / {} items ({:.1} MB rollout, {:.1} MB loaded, of it {:.1} MB the model history): resume {} ms wall / {} ms CPU, RSS {} → {} KiB (+{} KiB); \
         one more turn: request ({:.1} MB) sent after {} ms, turn {} ms wall / {} ms CPU, RSS {} KiB (peak {} KiB); \
         turns/list {turn_count} turns in {turn_pages} pages of 25: {:.1} ms ({:.2} ms a page); \
         items/list {item_count} items in {item_pages} pages of 100: {:.1} ms ({:.2} ms a page); RSS after paging {} KiB; \
         resume with its turns: {:.1} MB answer in {} ms, peak RSS {} KiB",
        turns * (2 + CALLS_PER_TURN),
        file_bytes as f64 / 1e6,
        loaded_bytes as f64 / 1e6,
        history_bytes as f64 / 1e6,
        resume_wall.as_millis(),
        resume_cpu.as_millis(),
        rss_idle,
        rss_resumed,
        rss_resumed.saturating_sub(rss_idle),
        request_bytes as f64 / 1e6,
        to_request.as_millis(),
        turn_wall.as_millis(),
        turn_cpu.as_millis(),
        rss_after,
        peak,
        turns_time.as_secs_f64() * 1000.0,
        turns_time.as_secs_f64() * 1000.0 / turn_pages as f64,
        items_time.as_secs_f64() * 1000.0,
        items_time.as_secs_f64() * 1000.0 / item_pages as f64,
        rss_paged,
        with_turns_bytes as f64 / 1e6,
        with_turns_wall.as_millis(),
        peak_with_turns,
    );
}
