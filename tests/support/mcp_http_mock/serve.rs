//! Accepting connections and answering requests: sessions checked, `initialize`, `tools/list`,
//! `tools/call` (by each tool's behaviour: `call.rs`), notifications and answers (202), the GET
//! event stream, DELETE.

use super::conn::{Conn, Input, Io};
use super::*;
use call::{call, hold};

mod call;

pub(super) fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped() {
            return;
        }
        let Ok(stream) = stream else { continue };
        let conn = {
            let mut state = shared.state();
            state.accepted += 1;
            state.accepted
        };
        if conn as usize > MAX_CONNECTIONS {
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let worker_shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name(format!("mcp-http-mock-{conn}"))
            .spawn(move || serve(stream, conn, &worker_shared));
        if let Ok(worker) = worker {
            shared.workers.lock().unwrap().push(worker);
        }
    }
}

fn serve(stream: TcpStream, id: u64, shared: &Arc<Shared>) {
    let _ = stream.set_read_timeout(Some(SLICE));
    // Small writes (a dribbled answer) go at once, not when the previous one is acknowledged.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let stream: Box<dyn Io> = match &shared.tls {
        Some(config) => match rustls::ServerConnection::new(config.clone()) {
            Ok(tls) => Box::new(rustls::StreamOwned::new(tls, stream)),
            Err(_) => return,
        },
        None => Box::new(stream),
    };
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        id,
        deadline: Instant::now() + MAX_CONNECTION,
    };
    loop {
        let request = match conn.request(shared) {
            Input::Request(request) => request,
            Input::Closed => {
                shared.mark_closed(id);
                break;
            }
            Input::Stopped => break,
        };
        let wants_close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        {
            let mut state = shared.state();
            state.requests.push(request.clone());
        }
        shared.changed.notify_all();
        match respond(&mut conn, &request, shared) {
            Next::KeepAlive if !wants_close => {}
            Next::KeepAlive | Next::Close => break,
            Next::PeerClosed => {
                shared.mark_closed(id);
                break;
            }
        }
    }
    let _ = conn.stream.tcp().shutdown(Shutdown::Both);
}

/// What becomes of a connection after an answer.
enum Next {
    KeepAlive,
    /// The mock closes it.
    Close,
    /// The client closed it meanwhile.
    PeerClosed,
}

fn respond(conn: &mut Conn, request: &Request, shared: &Shared) -> Next {
    if request.method == "CONNECT" {
        // Acting as the client's proxy: the tunnel ends here, at the mock itself, which then
        // serves the requests that come through it.
        return sent(conn.write(b"HTTP/1.1 200 Connection established\r\n\r\n"));
    }
    if shared.sessions
        && let Some(refusal) = session_refusal(request, shared)
    {
        return refusal.send(conn);
    }
    match request.method.as_str() {
        "GET" => event_stream(conn, request, shared),
        "DELETE" => Answer::status(200, "").send(conn),
        "POST" => post(conn, request, shared),
        _ => Answer::status(405, "").send(conn),
    }
}

/// 400 without a session, 404 for an expired or unknown one (`initialize` needs none).
fn session_refusal(request: &Request, shared: &Shared) -> Option<Answer> {
    if request.is_rpc("initialize") {
        return None;
    }
    let state = shared.state();
    match request.header("mcp-session-id") {
        None => Some(Answer::status(400, "missing Mcp-Session-Id")),
        Some(id) if state.expired.contains(id) || !state.issued.iter().any(|s| s == id) => {
            Some(Answer::json(
                404,
                &json!({"jsonrpc": "2.0", "id": null,
                        "error": {"code": -32001, "message": "Session not found"}}),
            ))
        }
        Some(_) => None,
    }
}

fn post(conn: &mut Conn, request: &Request, shared: &Shared) -> Next {
    let accept = request.header("accept").unwrap_or_default();
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return Answer::status(
            406,
            "Accept must list application/json and text/event-stream",
        )
        .send(conn);
    }
    if !request
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return Answer::status(415, "Content-Type must be application/json").send(conn);
    }
    let message = request.json();
    let (Some(method), Some(id)) = (
        message.get("method").and_then(Value::as_str),
        message.get("id").cloned(),
    ) else {
        // A notification or an answer.
        return Answer::status(202, "").send(conn);
    };
    let result = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    match method {
        "initialize" if shared.initialize_hangs => hold(conn, shared),
        "initialize" => {
            let mut answer = Answer::json(
                200,
                &result(json!({
                    "protocolVersion": shared.protocol_version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "mcp-http-mock", "version": "1.0.0"},
                })),
            );
            if shared.sessions {
                let mut state = shared.state();
                let session = format!("mock-session-{}", state.issued.len() + 1);
                state.issued.push(session.clone());
                answer.headers.push(("Mcp-Session-Id".into(), session));
            }
            answer.send(conn)
        }
        "tools/list" => {
            let tools: Vec<Value> = shared
                .state()
                .tools
                .iter()
                .map(|(name, _)| {
                    json!({
                        "name": name,
                        "description": format!("mock tool {name}"),
                        "inputSchema": {"type": "object", "properties": {}},
                        "annotations": {"readOnlyHint": true},
                    })
                })
                .collect();
            Answer::json(200, &result(json!({"tools": tools}))).send(conn)
        }
        "tools/call" => {
            let name = message
                .pointer("/params/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let behaviour = shared
                .state()
                .tools
                .iter()
                .find(|(tool, _)| tool == name)
                .map(|(_, b)| b.clone());
            let Some(behaviour) = behaviour else {
                let error = json!({"jsonrpc": "2.0", "id": id,
                                   "error": {"code": -32602, "message": format!("unknown tool {name}")}});
                return Answer::json(200, &error).send(conn);
            };
            let token = message
                .pointer("/params/_meta/progressToken")
                .cloned()
                .unwrap_or(Value::Null);
            call(conn, shared, behaviour, &token, result)
        }
        other => {
            let error = json!({"jsonrpc": "2.0", "id": id,
                               "error": {"code": -32601, "message": format!("Method not found: {other}")}});
            Answer::json(200, &error).send(conn)
        }
    }
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";

/// One SSE event carrying `message`, as one chunk.
fn sse_chunk(message: &Value) -> Vec<u8> {
    let event = format!("event: message\ndata: {message}\n\n");
    format!("{:x}\r\n{event}\r\n", event.len()).into_bytes()
}

fn sent(ok: bool) -> Next {
    if ok {
        Next::KeepAlive
    } else {
        Next::PeerClosed
    }
}

/// A GET: 405, or an event stream fed by the test until it closes it, the client leaves, or
/// the mock stops.
fn event_stream(conn: &mut Conn, request: &Request, shared: &Shared) -> Next {
    match shared.events {
        Events::Refuse => return Answer::status(405, "").send(conn),
        Events::Fail(status) => return Answer::status(status, "event stream broken").send(conn),
        Events::Open => {}
    }
    if !request
        .header("accept")
        .is_some_and(|v| v.contains("text/event-stream"))
    {
        return Answer::status(406, "Accept must list text/event-stream").send(conn);
    }
    if !conn.write(SSE_HEAD.as_bytes()) {
        return Next::PeerClosed;
    }
    let (tx, rx): (Sender<StreamCommand>, Receiver<StreamCommand>) = unbounded();
    shared.state().streams.push((conn.id, tx));
    shared.changed.notify_all();
    let next = loop {
        if shared.stopped() || Instant::now() > conn.deadline {
            break Next::Close;
        }
        match rx.try_recv() {
            Ok(StreamCommand::Event(message)) => {
                if !conn.write(&sse_chunk(&message)) {
                    break Next::PeerClosed;
                }
                continue;
            }
            Ok(StreamCommand::Close) => {
                let _ = conn.write(b"0\r\n\r\n");
                break Next::Close;
            }
            Err(_) => {}
        }
        if !conn.is_open() {
            break Next::PeerClosed;
        }
    };
    shared.state().streams.retain(|(id, _)| *id != conn.id);
    shared.changed.notify_all();
    next
}

/// A whole answer with a length.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn status(status: u16, text: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    fn send(self, conn: &mut Conn) -> Next {
        let reason = match self.status {
            200 => "OK",
            202 => "Accepted",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            500 => "Internal Server Error",
            406 => "Not Acceptable",
            415 => "Unsupported Media Type",
            _ => "Status",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-length: {}\r\n",
            self.status,
            self.body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        sent(conn.write(&out))
    }
}
