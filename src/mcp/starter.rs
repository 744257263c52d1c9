//! Server starts (mcp.md §2): every start in progress runs on one thread, `mcp-start`, as a
//! small state machine (connect; `initialize`, then `notifications/initialized`; `tools/list`
//! page by page) advanced as the answers arrive on their channels, each start bounded by its
//! own deadline. Servers thus start in parallel, and none needs a thread of its own, not even
//! while it starts: the thread runs while a start is in progress and ends with the last one.
//!
//! Nothing here waits on one server: sends are bounded non-blocking writes (stdio) or handed
//! to the `mcp-http` thread (HTTP), and answers are awaited together. Connecting (spawning the process,
//! or preparing the HTTP session) happens on this thread and does not wait for the server. The
//! one wait is a failed start's clean-up: a stdio server that ignores SIGTERM gets 300 ms before
//! SIGKILL, during which the other starts wait.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvError, Select, Sender, unbounded};
use serde_json::{Value, json};

use super::client::{Link, McpError, PROTOCOL_VERSION, Pending, ServerFacts, lock};
use super::slot::{Connected, Slot};

/// Most `tools/list` pages followed before the listing counts as broken.
const MAX_TOOL_PAGES: usize = 100;
/// Most tools kept per server: more is a broken server, not a tool box.
const MAX_TOOLS: usize = 5000;
/// Stack of `mcp-start`: it parses JSON and builds requests.
const STACK_BYTES: usize = 256 * 1024;

/// One start to run.
pub struct Job {
    /// The server.
    pub slot: Arc<Slot>,
    /// Which start of the slot this is (a superseded start's outcome is dropped).
    pub generation: u64,
    /// The root offered to the server when no call is running.
    pub cwd: std::path::PathBuf,
    /// When the start gives up.
    pub deadline: Instant,
    /// The app-server thread whose request started it, for the status notifications.
    pub thread_id: Option<String>,
}

/// A start waiting for an answer.
struct Running {
    job: Job,
    link: Arc<Link>,
    pending: Pending,
    step: Step,
}

enum Step {
    /// Waiting for `initialize`.
    Initializing,
    /// Waiting for a page of `tools/list`; what came so far.
    Listing {
        facts: ServerFacts,
        tools: Vec<Value>,
        pages: usize,
    },
}

/// The running thread's queue; [`submit`] sends under this lock and the thread ends under
/// it, so no start is handed to a thread that is ending.
static STARTER: Mutex<Option<Sender<Job>>> = Mutex::new(None);

/// Hands a start to `mcp-start`, starting the thread if none runs.
pub fn submit(job: Job) -> std::io::Result<()> {
    let mut starter = lock(&STARTER);
    let sender = match starter.as_ref() {
        Some(sender) => sender.clone(),
        None => {
            let (sender, jobs) = unbounded();
            std::thread::Builder::new()
                .name("mcp-start".into())
                .stack_size(STACK_BYTES)
                .spawn(move || run(&jobs))?;
            *starter = Some(sender.clone());
            sender
        }
    };
    sender
        .send(job)
        .map_err(|_| std::io::Error::other("the start thread is gone"))
}

fn run(jobs: &Receiver<Job>) {
    let mut running: Vec<Running> = Vec::new();
    loop {
        if running.is_empty() {
            let next = {
                let mut starter = lock(&STARTER);
                match jobs.try_recv() {
                    Ok(job) => job,
                    Err(_) => {
                        // No start left: the thread ends until the next one. What the
                        // starts parsed and dropped (tool lists, answers) is given back, so
                        // an idle server keeps only what it needs.
                        *starter = None;
                        drop(starter);
                        crate::platform::release_free_memory();
                        return;
                    }
                }
            };
            begin(next, &mut running);
            continue;
        }
        let deadline = running.iter().map(|r| r.job.deadline).min();
        let event = {
            let mut select = Select::new();
            select.recv(jobs);
            for start in &running {
                select.recv(&start.pending.answer);
            }
            match deadline.map(|d| select.select_deadline(d)) {
                Some(Ok(operation)) => match operation.index() {
                    0 => Event::Job(operation.recv(jobs)),
                    index => {
                        let answer = operation.recv(&running[index - 1].pending.answer);
                        Event::Answer(index - 1, answer)
                    }
                },
                _ => Event::Timeout,
            }
        };
        match event {
            Event::Job(Ok(job)) => begin(job, &mut running),
            // Our own sender is held in `STARTER` while this thread runs.
            Event::Job(Err(_)) => {}
            Event::Answer(index, answer) => {
                let start = running.swap_remove(index);
                let answer = match answer {
                    Ok(answer) => answer,
                    Err(RecvError) => Err(start.link.closed_error()),
                };
                advance(start, answer, &mut running);
            }
            Event::Timeout => {
                let now = Instant::now();
                let (late, on_time) = running.drain(..).partition(|r| r.job.deadline <= now);
                running = on_time;
                for start in late {
                    start.link.cancel(start.pending.id, "timed out");
                    let timeout = start.job.slot.config.startup_timeout;
                    end(start.job, &start.link, Err(McpError::Timeout(timeout)));
                }
            }
        }
    }
}

enum Event {
    Job(Result<Job, RecvError>),
    Answer(usize, Result<Result<Value, McpError>, RecvError>),
    Timeout,
}

/// Connects and sends `initialize`.
fn begin(job: Job, running: &mut Vec<Running>) {
    let link = match job.slot.open(job.generation, job.cwd.clone()) {
        Ok(link) => link,
        Err(message) => {
            return job
                .slot
                .finish(job.generation, Err(message), job.thread_id.as_deref());
        }
    };
    let params = json!({
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {"elicitation": {}, "roots": {"listChanged": false}},
        "clientInfo": {
            "name": "codex-lite",
            "title": "codex-lite",
            "version": env!("CARGO_PKG_VERSION"),
        },
    });
    match link.start_request("initialize", params, None, None, job.deadline) {
        Ok(pending) => running.push(Running {
            job,
            link,
            pending,
            step: Step::Initializing,
        }),
        Err(error) => end(job, &link, Err(error)),
    }
}

/// Takes one answer: the next request, or the end of the start.
fn advance(start: Running, answer: Result<Value, McpError>, running: &mut Vec<Running>) {
    let Running {
        job, link, step, ..
    } = start;
    match next_step(&link, step, answer, job.deadline) {
        Ok(Next::Wait(pending, step)) => running.push(Running {
            job,
            link,
            pending,
            step,
        }),
        Ok(Next::Done(facts, tools)) => end(job, &link, Ok((facts, tools))),
        Err(error) => end(job, &link, Err(error)),
    }
}

/// Where a start goes after an answer.
enum Next {
    /// Another request is out.
    Wait(Pending, Step),
    /// The handshake is done and every tool listed.
    Done(ServerFacts, Vec<Value>),
}

fn next_step(
    link: &Arc<Link>,
    step: Step,
    answer: Result<Value, McpError>,
    deadline: Instant,
) -> Result<Next, McpError> {
    let result = answer?;
    let (facts, tools, pages, cursor) = match step {
        Step::Initializing => (initialized(link, &result)?, Vec::new(), 0, None),
        Step::Listing {
            facts,
            mut tools,
            pages,
        } => match take_tools_page(&mut tools, &result)? {
            None => return Ok(Next::Done(facts, tools)),
            Some(_) if pages >= MAX_TOOL_PAGES => {
                return Err(McpError::Protocol(format!(
                    "tools/list did not end after {MAX_TOOL_PAGES} pages"
                )));
            }
            Some(cursor) => (facts, tools, pages, Some(cursor)),
        },
    };
    let params = match cursor {
        Some(cursor) => json!({"cursor": cursor}),
        None => json!({}),
    };
    let pending = link.start_request("tools/list", params, None, None, deadline)?;
    Ok(Next::Wait(
        pending,
        Step::Listing {
            facts,
            tools,
            pages: pages + 1,
        },
    ))
}

/// Checks the answer to `initialize` and sends `notifications/initialized`.
fn initialized(link: &Arc<Link>, result: &Value) -> Result<ServerFacts, McpError> {
    if result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(McpError::Protocol(
            "initialize result without protocolVersion".into(),
        ));
    }
    link.notify("notifications/initialized", json!({}))?;
    Ok(ServerFacts {
        server_info: result.get("serverInfo").cloned(),
        capabilities: result.get("capabilities").cloned(),
    })
}

/// Adds a `tools/list` page to `tools`; returns the cursor of the next page, if any.
fn take_tools_page(tools: &mut Vec<Value>, page: &Value) -> Result<Option<String>, McpError> {
    let Some(items) = page.get("tools").and_then(Value::as_array) else {
        return Err(McpError::Protocol("tools/list result without tools".into()));
    };
    for tool in items {
        if tool.get("name").and_then(Value::as_str).is_none() {
            return Err(McpError::Protocol("a tool without a name".into()));
        }
        if tools.len() >= MAX_TOOLS {
            return Err(McpError::Protocol(format!("more than {MAX_TOOLS} tools")));
        }
        tools.push(tool.clone());
    }
    Ok(page
        .get("nextCursor")
        .and_then(Value::as_str)
        .filter(|next| !next.is_empty())
        .map(str::to_string))
}

/// Reports the outcome to the slot (a failed connection is shut down first).
fn end(job: Job, link: &Arc<Link>, outcome: Result<(ServerFacts, Vec<Value>), McpError>) {
    let outcome = match outcome {
        Ok((facts, tools)) => Ok(Connected {
            link: link.clone(),
            facts,
            tools: tools
                .into_iter()
                .filter(|t| {
                    let name = t.get("name").and_then(Value::as_str).unwrap_or("");
                    job.slot.config.is_tool_allowed(name)
                })
                .collect(),
        }),
        Err(error) => {
            let message = job.slot.startup_error(link, &error);
            link.shutdown();
            Err(message)
        }
    };
    job.slot
        .finish(job.generation, outcome, job.thread_id.as_deref());
}
