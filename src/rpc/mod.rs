//! The JSON-RPC transport of protocol.md §1–2: wire types, JSONL framing on stdin/stdout, the
//! single writer, bounded ingress, and the pending map of our own server→client requests.
//!
//! Threads: `app-server-stdin` reads and classifies lines; answers to our requests go straight
//! into the pending map (so a turn waiting on the client never blocks the reading of other
//! requests), client requests and notifications go to the bounded [`Inbox`].
//! `app-server-stdout` is the only writer of stdout. This module knows nothing of methods; the
//! server decides what a request means.
//!
//! This file holds the JSON-RPC wire types and limits. `reader` frames and classifies stdin's
//! lines, `handle` is the [`Rpc`] handle (responses, notifications, our own requests and their
//! pending map), `writer` is the single writer of stdout and its byte budget, `transport` starts
//! the two threads and hands the main loop its [`Inbox`].

mod handle;
mod reader;
mod transport;
mod writer;

pub use handle::Rpc;
pub use transport::{Inbox, Next, StopReason, Transport};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The code and message of a JSON-RPC error object from a peer (`0` and `(no message)` where
/// it leaves them out), for the clients that read other servers' answers.
pub fn error_parts(error: &Value) -> (i64, String) {
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
    let message = error.get("message").and_then(Value::as_str);
    (code, message.unwrap_or("(no message)").to_string())
}

/// Longest accepted input line; a longer one is discarded (and answered with -32600 when its
/// id can be recovered), never buffered.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// JSON-RPC: the request is not a valid request (also `Not initialized` and domain errors).
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: the method does not exist here.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the params do not decode.
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: an internal failure.
pub const INTERNAL_ERROR: i64 = -32603;
/// The ingress queue is full; the client should retry later.
pub const SERVER_OVERLOADED: i64 = -32001;

/// A request id: an integer or a string, echoed verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// An integer id (ours are always integers counting up from 0).
    Integer(i64),
    /// A string id.
    String(String),
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Integer(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// The error object of a JSON-RPC error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// One of the codes above (or the client's own code in answers to us).
    pub code: i64,
    /// Human-readable text; fixed strings of the spec are kept to the letter.
    pub message: String,
    /// Optional structured detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// -32600 with `message` (used for domain errors too, as the reference does).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, message)
    }

    /// -32601 `Method not found: <method>`.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    /// -32602 `Invalid params: <detail>`.
    pub fn invalid_params(detail: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("Invalid params: {detail}"))
    }

    /// -32603 with a short description.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(INTERNAL_ERROR, message)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code={}: {}", self.code, self.message)
    }
}

/// A message from the client that the main loop must handle.
#[derive(Debug)]
pub enum Incoming {
    /// A request; it must be answered exactly once.
    Request {
        /// Echoed in the answer.
        id: RequestId,
        /// The method name.
        method: String,
        /// The params, if any (absent and `null` are both `None`).
        params: Option<Value>,
    },
    /// A notification; it is never answered (the only one in scope, `initialized`, carries
    /// nothing we use, so params are not kept).
    Notification {
        /// The method name.
        method: String,
    },
}

/// What a server→client request finally got: the client's result or its error.
pub type ClientAnswer = Result<Value, RpcError>;

#[cfg(test)]
mod error_parts_tests {
    use super::error_parts;
    use serde_json::json;

    #[test]
    fn a_peers_error_gives_its_code_and_message_or_the_defaults() {
        let cases = [
            (
                json!({"code": -32601, "message": "no such method"}),
                (-32601, "no such method"),
            ),
            (json!({"message": "no code"}), (0, "no code")),
            (json!({"code": 7}), (7, "(no message)")),
            (json!({"code": "x", "message": 3}), (0, "(no message)")),
        ];
        for (error, (code, message)) in cases {
            assert_eq!(error_parts(&error), (code, message.to_string()), "{error}");
        }
    }
}
