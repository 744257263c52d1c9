//! The [`Rpc`] handle every thread writes to the client with: responses, notifications (minus
//! those opted out of or about muted threads), and our own server→client requests with the
//! pending map their answers are delivered through.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_channel::{Receiver, Sender, bounded};
use serde::Serialize;
use serde_json::Value;

use super::writer::{ByteBudget, LINE_OVERHEAD, Outgoing};
use super::{ClientAnswer, RequestId, RpcError, StopReason};

/// What every clone of [`Rpc`] shares: the stdout queue and its byte budget, the pending map,
/// the next request id, and the notification filters.
pub(super) struct Shared {
    pub(super) out: Sender<Outgoing>,
    pub(super) egress: Arc<ByteBudget>,
    /// Where a client that stopped reading is reported to the main loop.
    pub(super) stop: Sender<StopReason>,
    pub(super) pending: Mutex<HashMap<i64, Sender<ClientAnswer>>>,
    pub(super) next_id: AtomicI64,
    pub(super) opt_out: OnceLock<HashSet<String>>,
    /// Threads whose turn and item notifications this connection no longer wants
    /// (`thread/unsubscribe`), and whether there are any (checked first, without a lock).
    pub(super) muted: Mutex<HashSet<String>>,
    pub(super) any_muted: AtomicBool,
}

/// A cheap, cloneable handle for writing to the client: responses, notifications and our own
/// requests. All methods are safe to call from any thread; they block only when the stdout
/// queue is full (the client is not reading).
#[derive(Clone)]
pub struct Rpc {
    pub(super) shared: Arc<Shared>,
}

#[derive(Serialize)]
struct ResultOut<'a, R> {
    id: &'a RequestId,
    result: R,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    id: &'a RequestId,
    error: &'a RpcError,
}

#[derive(Serialize)]
struct NotificationOut<'a, P> {
    method: &'a str,
    params: P,
    #[serde(rename = "emittedAtMs")]
    emitted_at_ms: u64,
}

#[derive(Serialize)]
struct RequestOut<'a, P> {
    id: i64,
    method: &'a str,
    params: P,
}

impl Rpc {
    fn send_line(&self, line: String) {
        if !self.shared.egress.reserve(line.len() + LINE_OVERHEAD) {
            crate::log::error("the client has left too much of our output unread; stopping");
            let _ = self.shared.stop.try_send(StopReason::ClientGone);
        }
        // A send fails only after shutdown, when nothing more may be written.
        let _ = self.shared.out.send(Outgoing::Line(line));
    }

    fn send_serialized(&self, what: &str, value: &impl Serialize) {
        match serde_json::to_string(value) {
            Ok(line) => self.send_line(line),
            Err(e) => crate::log::error(&format!("cannot serialize {what}: {e}")),
        }
    }

    /// Makes the calling thread, the main loop, one whose sends never wait for a slow client:
    /// they are queued over the stdout budget (turns' output still waits), and a client that
    /// leaves far too much unread is reported gone (hardening.md §2).
    pub fn never_wait_on_this_thread(&self) {
        self.shared.egress.never_wait_on_this_thread();
    }

    /// Answers request `id` with `result`.
    pub fn respond(&self, id: &RequestId, result: impl Serialize) {
        self.send_serialized("response", &ResultOut { id, result });
    }

    /// Answers request `id` with an error.
    pub fn respond_error(&self, id: &RequestId, error: &RpcError) {
        self.send_serialized("error response", &ErrorOut { id, error });
    }

    /// Answers with `result` or the error, whichever `outcome` holds.
    pub fn respond_with<R: Serialize>(&self, id: &RequestId, outcome: Result<R, RpcError>) {
        match outcome {
            Ok(result) => self.respond(id, result),
            Err(error) => self.respond_error(id, &error),
        }
    }

    /// Sends a notification stamped with `emittedAtMs`, unless the client opted out of
    /// `method` at `initialize`.
    pub fn notify(&self, method: &str, params: impl Serialize) {
        if self.is_opted_out(method) || self.is_muted(method, &params) {
            return;
        }
        self.send_serialized(
            method,
            &NotificationOut {
                method,
                params,
                emitted_at_ms: crate::time::unix_millis(),
            },
        );
    }

    /// Stops turn and item notifications about `thread_id` (`thread/unsubscribe`); false when
    /// they were stopped already.
    pub fn mute_thread(&self, thread_id: &str) -> bool {
        let mut muted = self.shared.muted.lock().unwrap_or_else(|e| e.into_inner());
        let added = muted.insert(thread_id.to_string());
        self.shared.any_muted.store(true, Ordering::SeqCst);
        added
    }

    /// Sends `thread_id`'s notifications again (the thread was resumed or is gone).
    pub fn unmute_thread(&self, thread_id: &str) {
        if !self.shared.any_muted.load(Ordering::SeqCst) {
            return;
        }
        let mut muted = self.shared.muted.lock().unwrap_or_else(|e| e.into_inner());
        muted.remove(thread_id);
        self.shared
            .any_muted
            .store(!muted.is_empty(), Ordering::SeqCst);
    }

    /// Whether notification `method` with `params` concerns a muted thread: turn and item
    /// notifications, usage and errors carry its `threadId` (status changes and thread-level
    /// events still go out). Free while no thread is muted.
    fn is_muted(&self, method: &str, params: &impl Serialize) -> bool {
        if !self.shared.any_muted.load(Ordering::Relaxed) {
            return false;
        }
        let scoped = method.starts_with("turn/")
            || method.starts_with("item/")
            || matches!(
                method,
                "thread/tokenUsage/updated" | "error" | "serverRequest/resolved"
            );
        if !scoped {
            return false;
        }
        let Ok(value) = serde_json::to_value(params) else {
            return false;
        };
        let Some(thread_id) = value.get("threadId").and_then(Value::as_str) else {
            return false;
        };
        self.shared
            .muted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(thread_id)
    }

    /// Whether the client asked never to receive `method`.
    pub fn is_opted_out(&self, method: &str) -> bool {
        self.shared
            .opt_out
            .get()
            .is_some_and(|set| set.contains(method))
    }

    /// Records the notification methods the client opted out of; only the first call counts
    /// (there is one `initialize` per connection).
    pub fn set_opt_out(&self, methods: impl IntoIterator<Item = String>) {
        let _ = self.shared.opt_out.set(methods.into_iter().collect());
    }

    /// Sends a server→client request. The answer arrives on the returned receiver, delivered
    /// by the reader thread; wait on it with `recv_timeout`. The receiver disconnects when the
    /// connection closes. Call [`Rpc::cancel`] when giving up so a late answer is ignored.
    pub fn request(&self, method: &str, params: impl Serialize) -> (i64, Receiver<ClientAnswer>) {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = bounded(1);
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.insert(id, tx);
        }
        self.send_serialized(method, &RequestOut { id, method, params });
        (id, rx)
    }

    /// Forgets a pending server→client request; its answer, if it ever comes, is ignored.
    pub fn cancel(&self, id: i64) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.remove(&id);
        }
    }

    /// Hands the client's answer to whoever waits on request `id` (called by the reader).
    pub(super) fn deliver(&self, id: &RequestId, answer: ClientAnswer) {
        let waiter = match id {
            RequestId::Integer(n) => self
                .shared
                .pending
                .lock()
                .ok()
                .and_then(|mut pending| pending.remove(n)),
            RequestId::String(_) => None,
        };
        match waiter {
            Some(tx) => {
                let _ = tx.send(answer);
            }
            None => crate::log::warn(&format!(
                "ignoring an answer to request id {id}, which is not pending"
            )),
        }
    }

    /// Forgets every pending request, so their waiters see a disconnect (stdin closed).
    pub(super) fn drop_all_pending(&self) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.clear();
        }
    }
}
