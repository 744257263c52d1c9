//! Answering `tools/call` by the tool's [`Behaviour`]: JSON (with a length, chunked, with a
//! trailer, until the close, batched, after a `100 Continue`, late, dribbled), SSE streams running
//! their [`Step`]s, steps sent on the event streams, held connections, raw bytes.

use super::*;

/// A tool's result whose content is `text`.
fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

/// Answers a `tools/call` as `behaviour` says; `result` makes the JSON-RPC answer of a result,
/// `token` is the call's progress token.
pub(super) fn call(
    conn: &mut Conn,
    shared: &Shared,
    behaviour: Behaviour,
    token: &Value,
    result: impl Fn(Value) -> Value,
) -> Next {
    match behaviour {
        Behaviour::Json(text) => Answer::json(200, &result(text_result(&text))).send(conn),
        Behaviour::ChunkedWithTrailer(text) => {
            let body = result(text_result(&text)).to_string().into_bytes();
            let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n".to_vec();
            for part in body.chunks(body.len().div_ceil(2).max(1)) {
                out.extend_from_slice(format!("{:x};note=\"a b\"\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0;last\r\nx-checksum: 1234\r\n\r\n");
            sent(conn.write(&out))
        }
        Behaviour::AfterContinue(text) => {
            if !conn.write(b"HTTP/1.1 100 Continue\r\n\r\n") {
                return Next::PeerClosed;
            }
            Answer::json(200, &result(text_result(&text))).send(conn)
        }
        Behaviour::Bytes(bytes) => {
            let _ = conn.write(&bytes);
            Next::Close
        }
        Behaviour::Batch(text) => {
            let log = json!({"jsonrpc": "2.0", "method": "notifications/message",
                             "params": {"level": "info", "data": "batched"}});
            Answer::json(200, &json!([log, result(text_result(&text))])).send(conn)
        }
        Behaviour::Chunked(text) => {
            let body = result(text_result(&text)).to_string().into_bytes();
            let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            for part in body.chunks(body.len().div_ceil(3).max(1)) {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            sent(conn.write(&out))
        }
        Behaviour::Sse(steps, text) => {
            if !conn.write(SSE_HEAD.as_bytes()) {
                return Next::PeerClosed;
            }
            if let Some(next) = run_steps(steps, token, shared, conn, Sink::Post) {
                return next;
            }
            let done = conn.write(&sse_chunk(&result(text_result(&text))));
            sent(done && conn.write(b"0\r\n\r\n"))
        }
        Behaviour::SseWithoutResult(steps) => {
            if !conn.write(SSE_HEAD.as_bytes()) {
                return Next::PeerClosed;
            }
            if let Some(next) = run_steps(steps, token, shared, conn, Sink::Post) {
                return next;
            }
            sent(conn.write(b"0\r\n\r\n"))
        }
        Behaviour::JsonAfterEvents(steps, text) => {
            if let Some(next) = run_steps(steps, token, shared, conn, Sink::EventStreams) {
                return next;
            }
            Answer::json(200, &result(text_result(&text))).send(conn)
        }
        Behaviour::Dribble(text) => {
            let mut out = SSE_HEAD.as_bytes().to_vec();
            out.extend_from_slice(&sse_chunk(&result(text_result(&text))));
            out.extend_from_slice(b"0\r\n\r\n");
            for piece in out.chunks(5) {
                if shared.stopped() || !conn.write(piece) {
                    return Next::PeerClosed;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Next::KeepAlive
        }
        Behaviour::Hang => hold(conn, shared),
        Behaviour::SseThenDrop(steps) => {
            if !conn.write(SSE_HEAD.as_bytes()) {
                return Next::PeerClosed;
            }
            if let Some(next) = run_steps(steps, token, shared, conn, Sink::Post) {
                return next;
            }
            Next::Close
        }
        Behaviour::UntilClose(text) => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
            let body = result(text_result(&text)).to_string();
            let _ = conn.write(head.as_bytes()) && conn.write(body.as_bytes());
            Next::Close
        }
        Behaviour::Delayed(pause, text) => {
            let until = Instant::now() + pause;
            while Instant::now() < until {
                if shared.stopped() {
                    return Next::Close;
                }
                std::thread::sleep(SLICE);
            }
            Answer::json(200, &result(text_result(&text))).send(conn)
        }
        Behaviour::Raw {
            status,
            content_type,
            body,
        } => Answer {
            status,
            headers: vec![("Content-Type".into(), content_type)],
            body,
        }
        .send(conn),
    }
}

/// Holds the connection, answering nothing, until the client closes it or the mock stops.
pub(super) fn hold(conn: &mut Conn, shared: &Shared) -> Next {
    while !shared.stopped() && Instant::now() < conn.deadline {
        if !conn.is_open() {
            return Next::PeerClosed;
        }
    }
    Next::Close
}

/// Where a step's messages go.
#[derive(Clone, Copy, PartialEq)]
enum Sink {
    /// The SSE answer of the POST.
    Post,
    /// The open GET event streams.
    EventStreams,
}

/// Runs the steps of an answer, the POST's connection held meanwhile (and watched: a client
/// that closes it is seen even while a step waits); `None` when all went, else what becomes of
/// the connection.
fn run_steps(
    steps: Vec<Step>,
    token: &Value,
    shared: &Shared,
    conn: &mut Conn,
    sink: Sink,
) -> Option<Next> {
    for step in steps {
        let message = match step {
            Step::Progress {
                progress,
                total,
                message,
            } => json!({"jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": token, "progress": progress,
                                   "total": total, "message": message}}),
            Step::Send(message) => message,
            Step::AwaitAnswer(id) => {
                let answered = |s: &State| s.requests.iter().any(|r| r.is_answer_to(&id));
                if let Some(next) = await_state(shared, conn, answered) {
                    return Some(next);
                }
                continue;
            }
            Step::Gate(name) => {
                if let Some(next) = await_state(shared, conn, |s| s.gates.contains(&name)) {
                    return Some(next);
                }
                continue;
            }
        };
        match sink {
            Sink::Post if !conn.write(&sse_chunk(&message)) => return Some(Next::PeerClosed),
            Sink::EventStreams if shared.push_event(&message) == 0 => return Some(Next::Close),
            _ => {}
        }
    }
    None
}

/// Waits (at most [`MAX_AWAIT`]) until `done` holds for the mock's state, watching the held
/// connection; `None` once it holds, else what becomes of the connection.
fn await_state(shared: &Shared, conn: &mut Conn, done: impl Fn(&State) -> bool) -> Option<Next> {
    let deadline = Instant::now() + MAX_AWAIT;
    loop {
        if done(&shared.state()) {
            return None;
        }
        if shared.stopped() || Instant::now() > deadline {
            return Some(Next::Close);
        }
        if !conn.is_open() {
            return Some(Next::PeerClosed);
        }
    }
}
