//! The `mcp-http` thread: it drives every HTTP exchange of every streamable-HTTP MCP server —
//! the POSTs (a start's handshake, tool calls, notifications, answers to the server) and the
//! GET event streams held open while servers are idle — over non-blocking sockets, waiting in
//! one poll on all of them and on a wake-up channel. So a server costs no thread of its own
//! (README *Numbers*), and a server that never answers holds up nobody: each POST has its own
//! deadline, and an abort drops the exchange, which closes its connection.
//!
//! The thread starts with the first exchange and ends when none is left (no POST in flight,
//! no event stream open or waiting to be reopened). Nothing done here waits: answers reach
//! the waiters through the link's channels, and what the link sends from here (an answer to a
//! server's `ping`) is queued as one more exchange.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::events::{self, EventsSink};
use super::exchange::{Drive, Exchange, Flow, Head, Sink};
use super::post::PostSink;
use super::{Link, McpError, Shared, lock};
use crate::platform::{PollEntry, WakeReceiver, Waker, poll_sockets};

/// The thread's read buffer, shared by every exchange.
const BUFFER_BYTES: usize = 4096;
/// Stack of `mcp-http`: it parses JSON and TLS records.
const STACK_BYTES: usize = 256 * 1024;
/// How often exchanges whose host name is being looked up are looked at.
const RESOLVE_POLL: Duration = Duration::from_millis(10);
/// The pause before an ended event stream is reopened.
const REOPEN_PAUSE: Duration = Duration::from_secs(1);

/// What an exchange is for, and who hears how it ended.
pub(super) enum Purpose {
    /// A message POSTed; its answer goes to the link.
    Post(PostSink),
    /// The server's GET event stream.
    Events(EventsSink),
    /// Ending the session; the sender hears when it is done.
    Delete(Option<Sender<()>>),
}

/// One exchange handed to the engine.
pub(super) struct Job {
    /// The server it belongs to.
    pub(super) server: Arc<Shared>,
    /// Its key among the server's exchanges (a request id, or a negative number).
    pub(super) key: i64,
    pub(super) exchange: Exchange,
    pub(super) purpose: Purpose,
    /// When it gives up, if ever.
    pub(super) deadline: Option<Instant>,
}

/// An event stream waiting to be reopened.
struct Reopen {
    at: Instant,
    server: Arc<Shared>,
    link: Weak<Link>,
    failures: u32,
}

enum Command {
    Start(Box<Job>),
    /// Drops the server's exchange with that key, or all of them (and any stream reopening).
    Abort(Arc<Shared>, Option<i64>),
}

/// The running engine, as seen by those who hand it work. [`submit`] sends under this lock
/// and the engine ends under it, so nothing is handed to an engine that is ending.
struct Handle {
    to_engine: Sender<Command>,
    wake: Waker,
}

static ENGINE: Mutex<Option<Handle>> = Mutex::new(None);

/// The engine's thread name.
const THREAD_NAME: &str = "mcp-http";

/// Whether the calling thread is the engine (which must not wait for its own work).
pub(super) fn on_engine_thread() -> bool {
    std::thread::current().name() == Some(THREAD_NAME)
}

/// Hands an exchange to the engine, starting it if none runs.
pub(super) fn start(job: Job) -> Result<(), McpError> {
    submit(Command::Start(Box::new(job)))
}

/// Drops the server's exchange `key` (all of them with `None`), closing its connection.
pub(super) fn abort(server: &Arc<Shared>, key: Option<i64>) {
    let mut engine = lock(&ENGINE);
    if let Some(handle) = engine.as_ref() {
        if handle
            .to_engine
            .send(Command::Abort(server.clone(), key))
            .is_ok()
        {
            handle.wake.wake();
        } else {
            *engine = None;
        }
    }
}

fn submit(command: Command) -> Result<(), McpError> {
    let mut engine = lock(&ENGINE);
    if engine.is_none() {
        let (wake, woken) = crate::platform::wake_pair()
            .map_err(|e| McpError::Transport(format!("cannot start the HTTP engine: {e}")))?;
        let (to_engine, commands) = unbounded();
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .stack_size(STACK_BYTES)
            .spawn(move || run(&commands, &woken))
            .map_err(|e| McpError::Transport(format!("cannot start the HTTP engine: {e}")))?;
        *engine = Some(Handle { to_engine, wake });
    }
    let Some(handle) = engine.as_ref() else {
        return Err(McpError::Transport("the HTTP engine is gone".into()));
    };
    handle
        .to_engine
        .send(command)
        .map_err(|_| McpError::Transport("the HTTP engine is gone".into()))?;
    handle.wake.wake();
    Ok(())
}

/// A running exchange and whether it may have more to do at once.
struct Running {
    job: Job,
    again: bool,
}

fn run(commands: &Receiver<Command>, woken: &WakeReceiver) {
    let mut running: Vec<Running> = Vec::new();
    let mut reopening: Vec<Reopen> = Vec::new();
    let mut entries: Vec<PollEntry> = Vec::new();
    let mut polled: Vec<Option<usize>> = Vec::new();
    let mut read_buf = [0u8; BUFFER_BYTES];
    loop {
        for command in commands.try_iter() {
            apply(command, &mut running, &mut reopening);
        }
        if running.is_empty() && reopening.is_empty() {
            let mut engine = lock(&ENGINE);
            match commands.try_recv() {
                Ok(command) => {
                    drop(engine);
                    apply(command, &mut running, &mut reopening);
                    continue;
                }
                Err(_) => {
                    // Nothing left: the thread ends until the next exchange.
                    *engine = None;
                    return;
                }
            }
        }
        let now = Instant::now();
        expire(&mut running, &mut reopening, now);
        reopen_due(&mut running, &mut reopening, now);

        // Wait for the sockets, the wake-up channel, or the next deadline.
        entries.clear();
        polled.clear();
        entries.push(PollEntry::new(woken.raw_socket(), true, false));
        let mut timeout = running
            .iter()
            .flat_map(|r| [r.job.deadline, r.job.exchange.connect_deadline()])
            .flatten()
            .chain(reopening.iter().map(|r| r.at))
            .min()
            .map(|at| at.saturating_duration_since(now));
        for entry in &running {
            match entry.job.exchange.interest() {
                Some((socket, interest)) => {
                    polled.push(Some(entries.len()));
                    entries.push(PollEntry::new(socket, interest.read, interest.write));
                }
                None => {
                    polled.push(None);
                    timeout = Some(timeout.map_or(RESOLVE_POLL, |t| t.min(RESOLVE_POLL)));
                }
            }
            if entry.again {
                timeout = Some(Duration::ZERO);
            }
        }
        if let Err(e) = poll_sockets(&mut entries, timeout) {
            crate::log::warn(&format!(
                "mcp servers: waiting for their sockets failed: {e}"
            ));
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if entries[0].readable {
            woken.drain();
        }
        let mut ended = Vec::new();
        for (index, entry) in running.iter_mut().enumerate() {
            let ready = match polled[index] {
                Some(at) => entries[at].readable || entries[at].writable,
                None => true, // a name lookup may have finished
            };
            if !(ready || entry.again) {
                continue;
            }
            match drive(&mut entry.job, &mut read_buf) {
                Ok(Drive::Waiting) => entry.again = false,
                Ok(Drive::Again) => entry.again = true,
                Ok(Drive::Done) => ended.push((index, Ok(()))),
                Err(e) => ended.push((index, Err(e))),
            }
        }
        if ended.is_empty() {
            continue;
        }
        // From the last, so that each removal leaves the lower indices in place.
        for (index, outcome) in ended.into_iter().rev() {
            let done = running.swap_remove(index);
            if let Some(reopen) = finish(done.job.purpose, outcome) {
                reopening.push(reopen);
            }
        }
        if !running
            .iter()
            .any(|r| matches!(r.job.purpose, Purpose::Post(_)))
        {
            // The last POST ended (a start's handshake, a tool call): what it parsed and
            // dropped is given back, so idle servers keep only their streams.
            crate::platform::release_free_memory();
        }
    }
}

fn drive(job: &mut Job, read_buf: &mut [u8]) -> Result<Drive, McpError> {
    let sink: &mut dyn Sink = match &mut job.purpose {
        Purpose::Post(sink) => sink,
        Purpose::Events(sink) => sink,
        Purpose::Delete(_) => &mut Discard,
    };
    job.exchange.drive(read_buf, sink)
}

/// Reads a response and keeps nothing of it.
struct Discard;

impl Sink for Discard {
    fn head(&mut self, _: &Head<'_>) -> Result<Flow, McpError> {
        Ok(Flow::Done)
    }
    fn body(&mut self, _: &[u8]) -> Result<Flow, McpError> {
        Ok(Flow::Done)
    }
}

/// Tells whoever waits how an exchange ended; an event stream to reopen comes back.
fn finish(purpose: Purpose, outcome: Result<(), McpError>) -> Option<Reopen> {
    match purpose {
        Purpose::Post(sink) => sink.finish(outcome),
        Purpose::Events(sink) => {
            let (server, link, failures) = sink.finish(outcome)?;
            return Some(Reopen {
                at: Instant::now() + REOPEN_PAUSE,
                server,
                link,
                failures,
            });
        }
        Purpose::Delete(done) => {
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
    }
    None
}

fn apply(command: Command, running: &mut Vec<Running>, reopening: &mut Vec<Reopen>) {
    match command {
        Command::Start(job) => running.push(Running {
            job: *job,
            again: true,
        }),
        Command::Abort(server, key) => {
            // Dropped unheard: whoever aborted has stopped waiting.
            running.retain(|r| {
                !(Arc::ptr_eq(&r.job.server, &server) && key.is_none_or(|k| k == r.job.key))
            });
            if key.is_none() {
                reopening.retain(|r| !Arc::ptr_eq(&r.server, &server));
            }
        }
    }
}

/// Ends the exchanges whose time ran out, and those still connecting after
/// [`exchange::CONNECT_TIMEOUT`](super::exchange::CONNECT_TIMEOUT) (an event stream has no
/// deadline of its own; some systems never report a failed connect).
fn expire(running: &mut Vec<Running>, reopening: &mut Vec<Reopen>, now: Instant) {
    let mut index = 0;
    while index < running.len() {
        let job = &running[index].job;
        if job.deadline.is_some_and(|d| d <= now) {
            match running.swap_remove(index).job.purpose {
                Purpose::Post(sink) => sink.time_out(),
                Purpose::Events(_) => {}
                Purpose::Delete(done) => drop(done),
            }
        } else if job.exchange.connect_deadline().is_some_and(|d| d <= now) {
            let job = running.swap_remove(index).job;
            let error = job.exchange.connect_timed_out();
            if let Some(reopen) = finish(job.purpose, Err(error)) {
                reopening.push(reopen);
            }
        } else {
            index += 1;
        }
    }
}

/// Reopens the event streams whose pause is over.
fn reopen_due(running: &mut Vec<Running>, reopening: &mut Vec<Reopen>, now: Instant) {
    let mut index = 0;
    while index < reopening.len() {
        if reopening[index].at > now {
            index += 1;
            continue;
        }
        let due = reopening.swap_remove(index);
        match events::open(&due.server, due.link.clone(), due.failures) {
            Ok((exchange, sink)) => running.push(Running {
                job: Job {
                    server: due.server,
                    key: super::EVENTS_KEY,
                    exchange,
                    purpose: Purpose::Events(sink),
                    deadline: None,
                },
                again: true,
            }),
            Err(e) if due.failures + 1 < events::MAX_EVENT_STREAM_FAILURES => {
                crate::log::debug(&format!(
                    "mcp server {}: event stream failed: {e}",
                    due.server.name
                ));
                reopening.push(Reopen {
                    at: now + REOPEN_PAUSE,
                    failures: due.failures + 1,
                    ..due
                });
            }
            Err(_) => {}
        }
    }
}
