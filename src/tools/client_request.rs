//! Server→client requests a tool waits on inside a turn (approvals, MCP elicitations, dynamic
//! tool calls): send, wait for the answer while steering is queued, cancel on an interrupt or a
//! closed connection, and announce `serverRequest/resolved` (protocol.md §7).

use crossbeam_channel::select;
use serde_json::Value;

use crate::protocol::notify::RequestResolved;
use crate::rpc::RpcError;
use crate::thread::Control;
use crate::turn::TurnRunner;

/// How a server→client request ended.
pub(crate) enum Reply {
    /// The client's `result`.
    Result(Value),
    /// The client answered with an error.
    Error(RpcError),
    /// The turn was interrupted or the connection closed; the request was cancelled.
    Cancelled,
}

/// Sends `method` to the client and waits for its reply; returns the request's id with it.
/// Steering that arrives meanwhile is queued for the turn.
pub(crate) fn send_and_wait(turn: &mut TurnRunner, method: &str, params: &Value) -> (i64, Reply) {
    let (request_id, answer) = turn.rpc.request(method, params);
    let control = turn.control.clone();
    let reply = loop {
        if turn.handle.is_interrupted() {
            break None;
        }
        select! {
            recv(answer) -> reply => break reply.ok(), // Err: the connection closed
            recv(control) -> message => match message {
                Ok(Control::Steer(input)) => turn.pending_steer(input),
                Ok(Control::Interrupt) | Err(_) => break None,
            },
        }
    };
    let reply = match reply {
        Some(Ok(result)) => Reply::Result(result),
        Some(Err(error)) => Reply::Error(error),
        None => {
            turn.rpc.cancel(request_id);
            Reply::Cancelled
        }
    };
    (request_id, reply)
}

/// Tells the client that request `request_id` needs no answer any more (answered or moot).
pub(crate) fn resolved(turn: &TurnRunner, request_id: i64) {
    turn.rpc.notify(
        "serverRequest/resolved",
        RequestResolved {
            thread_id: &turn.thread_id,
            request_id,
        },
    );
}

/// An approval: the turn is marked as waiting on the user, then `prepare` (which may announce
/// the item) gives the request's params, `method` is asked, and the request is announced
/// resolved afterwards whatever the outcome. A failed request is logged (callers treat it as a
/// decline).
pub(crate) fn ask_approval(
    turn: &mut TurnRunner,
    method: &str,
    prepare: impl FnOnce(&mut TurnRunner) -> Value,
) -> Reply {
    turn.set_waiting_on_approval(true);
    let params = prepare(turn);
    let (request_id, reply) = send_and_wait(turn, method, &params);
    if let Reply::Error(error) = &reply {
        crate::log::warn(&format!(
            "approval request {request_id} failed: {error}; treating it as decline"
        ));
    }
    resolved(turn, request_id);
    turn.set_waiting_on_approval(false);
    reply
}
