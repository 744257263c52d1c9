//! Starting and stopping the connection: the `app-server-stdin` and `app-server-stdout`
//! threads, the bounded [`Inbox`] the main loop reads client messages (and its own jobs and
//! reasons to stop) from, and flushing what is queued at the end.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::handle::Shared;
use super::reader::{Queued, Reader};
use super::writer::{ByteBudget, Outgoing, write_loop};
use super::{Incoming, Rpc};

/// Reasons to stop queued for the main loop (the first one decides; the rest are extra).
const STOP_QUEUE: usize = 4;

/// The receiving end for client requests and notifications, in arrival order.
pub struct Inbox {
    rx: Receiver<(Incoming, usize)>,
    queued: Arc<Queued>,
    stop: Receiver<StopReason>,
}

impl Inbox {
    /// Waits for the next client message; `None` once stdin is closed and the queue drained.
    pub fn recv(&self) -> Option<Incoming> {
        let (message, size) = self.rx.recv().ok()?;
        self.queued.take(size);
        Some(message)
    }

    /// Waits for the next client message or the next job another thread handed the main loop
    /// (work that had to wait off the main loop, e.g. for MCP servers); `None` once stdin is
    /// closed and the queue drained.
    /// Also returns [`Next::Stop`] as soon as a reason to stop arrives (the client stopped
    /// reading our output, a termination signal), ahead of queued messages.
    pub fn recv_or_job<T>(&self, jobs: &Receiver<T>) -> Option<Next<T>> {
        if let Ok(reason) = self.stop.try_recv() {
            return Some(Next::Stop(reason));
        }
        crossbeam_channel::select! {
            recv(self.rx) -> message => {
                let (message, size) = message.ok()?;
                self.queued.take(size);
                Some(Next::Message(message))
            }
            recv(jobs) -> job => match job {
                Ok(job) => Some(Next::Job(job)),
                Err(_) => self.recv().map(Next::Message),
            },
            recv(self.stop) -> reason => match reason {
                Ok(reason) => Some(Next::Stop(reason)),
                // Never: the transport keeps a sender.
                Err(_) => self.recv().map(Next::Message),
            },
        }
    }
}

/// What [`Inbox::recv_or_job`] got.
pub enum Next<T> {
    /// A client message.
    Message(Incoming),
    /// A job for the main loop.
    Job(T),
    /// The connection must end now, before stdin's end.
    Stop(StopReason),
}

/// Why the server stops before the client closed stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The client closed its end of our stdout (a write failed, or the pipe reports no
    /// reader): nobody hears us any more.
    ClientGone,
    /// A termination signal (SIGTERM, SIGHUP, SIGINT, or Ctrl-C/close on Windows).
    Signal(i32),
}

/// The running transport: the writer handle, the inbox and the two I/O threads.
pub struct Transport {
    /// Handle for writing; clone it freely.
    pub rpc: Rpc,
    /// Client requests and notifications.
    pub inbox: Inbox,
    writer: JoinHandle<()>,
    stop: Sender<StopReason>,
}

impl Transport {
    /// Starts the `app-server-stdin` and `app-server-stdout` threads over `input`/`output`.
    pub fn start(
        input: impl Read + Send + 'static,
        output: impl Write + Send + 'static,
    ) -> std::io::Result<Transport> {
        // Unbounded in count: the byte budget (each line's text and overhead) bounds it.
        let (out_tx, out_rx) = unbounded();
        let egress = Arc::new(ByteBudget::default());
        let (stop_tx, stop_rx) = bounded(STOP_QUEUE);
        let rpc = Rpc {
            shared: Arc::new(Shared {
                out: out_tx,
                egress: egress.clone(),
                stop: stop_tx.clone(),
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicI64::new(0),
                opt_out: OnceLock::new(),
                muted: Mutex::new(HashSet::new()),
                any_muted: AtomicBool::new(false),
            }),
        };
        let writer_stop = stop_tx.clone();
        let writer = std::thread::Builder::new()
            .name("app-server-stdout".into())
            .spawn(move || write_loop(out_rx, output, &egress, &writer_stop))?;
        // Unbounded in count: `Queued` bounds it (messages and bytes), without slots up front.
        let (in_tx, in_rx) = unbounded();
        let queued = Arc::new(Queued::default());
        let reader = Reader {
            rpc: rpc.clone(),
            inbox: in_tx,
            queued: queued.clone(),
        };
        std::thread::Builder::new()
            .name("app-server-stdin".into())
            .spawn(move || reader.run(input))?;
        Ok(Transport {
            rpc,
            inbox: Inbox {
                rx: in_rx,
                queued,
                stop: stop_rx,
            },
            writer,
            stop: stop_tx,
        })
    }

    /// A sender of reasons to stop the main loop ([`Next::Stop`]), for watchers of signals
    /// and of the client.
    pub fn stop_sender(&self) -> Sender<StopReason> {
        self.stop.clone()
    }

    /// Flushes everything queued so far and stops the writer, waiting at most `timeout` (a
    /// client that stopped reading stdout must not keep us alive).
    pub fn finish(self, timeout: Duration) {
        let done = {
            let (tx, rx) = bounded::<()>(1);
            let out = self.rpc.shared.out.clone();
            let writer = self.writer;
            std::thread::spawn(move || {
                let _ = out.send(Outgoing::Shutdown);
                let _ = writer.join();
                let _ = tx.send(());
            });
            rx
        };
        let _ = done.recv_timeout(timeout);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::rpc::RequestId;
    use crate::rpc::reader::INGRESS_MAX_MESSAGES;
    use crate::rpc::writer::{EGRESS_HARD_MAX_BYTES, EGRESS_MAX_BYTES, EGRESS_MAX_LINES};
    use serde_json::{Value, json};

    /// Output that tests can read while the writer thread writes it.
    #[derive(Clone, Default)]
    struct SharedOutput(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedOutput {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_ingress_queue_answers_server_overloaded() {
        let extra = 5;
        let mut input = String::new();
        for id in 0..INGRESS_MAX_MESSAGES + extra {
            input.push_str(&format!("{{\"id\":{id},\"method\":\"m\"}}\n"));
        }
        let output = SharedOutput::default();
        // Nobody drains the inbox: everything past its capacity must be refused, not queued.
        let transport = Transport::start(std::io::Cursor::new(input), output.clone()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let lines = loop {
            let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
            if text.lines().count() >= extra || std::time::Instant::now() > deadline {
                break text.lines().map(str::to_string).collect::<Vec<_>>();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(lines.len(), extra, "{lines:?}");
        for (line, id) in lines.iter().zip(INGRESS_MAX_MESSAGES..) {
            let value: Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                value,
                json!({"id": id, "error": {"code": -32001, "message": "Server overloaded; retry later."}})
            );
        }
        assert!(matches!(
            transport.inbox.recv(),
            Some(Incoming::Request {
                id: RequestId::Integer(0),
                ..
            })
        ));
    }

    #[test]
    fn the_egress_budget_holds_writers_until_bytes_are_written() {
        let budget = Arc::new(ByteBudget::default());
        budget.reserve(EGRESS_MAX_BYTES - 10);
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let waiter = budget.clone();
        std::thread::spawn(move || {
            waiter.reserve(100);
            done_tx.send(()).unwrap();
        });
        assert!(
            done_rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "over budget: waits"
        );
        budget.release(EGRESS_MAX_BYTES - 10);
        assert!(
            done_rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "room again: goes on"
        );
        // A single line larger than the whole budget still passes an empty queue.
        let big = ByteBudget::default();
        big.reserve(EGRESS_MAX_BYTES * 2);
    }

    #[test]
    fn the_main_loop_goes_over_the_budget_and_a_client_that_never_reads_is_gone() {
        let budget = Arc::new(ByteBudget::default());
        assert!(budget.reserve(EGRESS_MAX_BYTES));
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let main_loop = budget.clone();
        std::thread::spawn(move || {
            main_loop.never_wait_on_this_thread();
            let within_hard_limit = main_loop.reserve(100);
            let past_it = main_loop.reserve(EGRESS_HARD_MAX_BYTES);
            done_tx.send((within_hard_limit, past_it)).unwrap();
        });
        // A full budget: the main loop's sends are queued at once, not after the client reads.
        let (within_hard_limit, past_it) = done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(within_hard_limit);
        assert!(!past_it, "past the hard limit the client is reported gone");
    }

    #[test]
    fn many_short_lines_hold_writers_too() {
        let budget = Arc::new(ByteBudget::default());
        for _ in 0..EGRESS_MAX_LINES {
            assert!(budget.reserve(1));
        }
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let waiter = budget.clone();
        std::thread::spawn(move || {
            waiter.reserve(1);
            done_tx.send(()).unwrap();
        });
        assert!(
            done_rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "a full line count: waits"
        );
        budget.release(1);
        assert!(
            done_rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "a line written: goes on"
        );
    }
}
