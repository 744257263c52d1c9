//! One HTTP/1.1 exchange over a non-blocking connection, driven by the `mcp-http` engine: the
//! request is rendered whole when the exchange is made (framing by `ureq-proto`, sans I/O), sent
//! as the socket takes it, and the response is parsed as it arrives, its head and body bytes
//! handed to a [`Sink`]. Nothing here waits: each call does what the socket allows and returns.
//!
//! Memory: once the request is sent its bytes are given back; between reads the exchange keeps
//! only the unparsed tail of what came (a partial head or chunk line), so an idle event stream
//! holds its connection, the parser state and nothing else.

use std::io::{self, ErrorKind};

use ureq_proto::BodyMode;
use ureq_proto::client::state::{RecvBody, RecvResponse};
use ureq_proto::client::{Call, RecvResponseResult, SendRequestResult};
use ureq_proto::http::{HeaderMap, HeaderValue, Request, header};

use super::McpError;
use crate::client::nonblocking::{Connection, Interest};
use crate::platform::RawSocket;

/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request head rendered (the configured headers are in it).
const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;
/// Reads per [`Exchange::drive`] before other exchanges get their turn.
const READS_PER_TURN: usize = 32;

/// What the receiver of a response wants next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flow {
    /// More of the body.
    More,
    /// Nothing more: the exchange ends here (its connection is closed).
    Done,
}

/// Receives a response as it arrives.
pub(super) trait Sink {
    /// The status and headers.
    fn head(&mut self, status: u16, headers: &HeaderMap) -> Result<Flow, McpError>;
    /// A piece of the (decoded) body.
    fn body(&mut self, bytes: &[u8]) -> Result<Flow, McpError>;
}

/// Where a call to [`Exchange::drive`] left the exchange.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Drive {
    /// Waiting for the socket.
    Waiting,
    /// More may be ready at once (it yielded to the others): drive it again without waiting.
    Again,
    /// The response ended, or the sink wanted nothing more.
    Done,
}

enum State {
    Head(Call<RecvResponse>),
    Body(Call<RecvBody>),
    Finished,
}

/// One request and its response.
pub(super) struct Exchange {
    url: String,
    conn: Connection,
    established: bool,
    /// Request bytes not yet sent (given back once all are).
    out: Vec<u8>,
    sent: usize,
    /// Response bytes received but not yet parsed.
    input: Vec<u8>,
    state: State,
}

impl Exchange {
    /// Renders the request and starts connecting to `request`'s URL.
    pub(super) fn start(mut request: Request<()>, body: Option<&[u8]>) -> Result<Self, McpError> {
        if let Some(body) = body {
            let length = HeaderValue::from(body.len());
            request.headers_mut().insert(header::CONTENT_LENGTH, length);
        }
        let url = request.uri().to_string();
        let framing = |e: ureq_proto::Error| McpError::Transport(format!("request to {url}: {e}"));
        let mut call = Call::new(request).map_err(framing)?.proceed();
        let mut out = vec![0; MAX_REQUEST_HEAD_BYTES];
        let head = call.write(&mut out).map_err(framing)?;
        if !call.can_proceed() {
            return Err(McpError::Transport(format!(
                "request to {url}: its headers exceed {} KiB",
                MAX_REQUEST_HEAD_BYTES >> 10
            )));
        }
        out.truncate(head);
        let call = match call.proceed().map_err(framing)? {
            Some(SendRequestResult::RecvResponse(call)) => call,
            Some(SendRequestResult::SendBody(mut call)) => {
                // A content-length body goes out as it is.
                let body = body.unwrap_or_default();
                call.consume_direct_write(body.len()).map_err(framing)?;
                out.extend_from_slice(body);
                call.proceed().ok_or_else(|| {
                    McpError::Transport(format!("request to {url}: the body length is off"))
                })?
            }
            _ => {
                return Err(McpError::Transport(format!(
                    "request to {url}: unexpected request framing"
                )));
            }
        };
        let conn = Connection::open(&url)
            .map_err(|e| McpError::Transport(format!("cannot reach {url}: {e}")))?;
        Ok(Exchange {
            url,
            conn,
            established: false,
            out,
            sent: 0,
            input: Vec::new(),
            state: State::Head(call),
        })
    }

    /// The socket to wait on and for what; `None` while the host name is looked up.
    pub(super) fn interest(&self) -> Option<(RawSocket, Interest)> {
        let (socket, mut interest) = self.conn.interest()?;
        if self.established && self.sent < self.out.len() {
            interest.write = true;
        }
        Some((socket, interest))
    }

    /// Does what the socket allows now: connecting, sending, reading and handing over.
    pub(super) fn drive(
        &mut self,
        read_buf: &mut [u8],
        body_buf: &mut [u8],
        sink: &mut dyn Sink,
    ) -> Result<Drive, McpError> {
        let established = self.conn.progress().map_err(|e| self.reach_error(&e))?;
        if !self.established {
            if !established {
                return Ok(Drive::Waiting);
            }
            self.established = true;
        }
        while self.sent < self.out.len() {
            match self.conn.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.reach_error(&e)),
            }
        }
        if self.sent == self.out.len() && !self.out.is_empty() {
            self.out = Vec::new();
            self.sent = 0;
        }
        for _ in 0..READS_PER_TURN {
            let n = match self.conn.read(read_buf) {
                Ok(0) => return self.at_end(),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Drive::Waiting),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(McpError::Transport(format!(
                        "reading the answer from {} failed: {e}",
                        self.url
                    )));
                }
            };
            if self.feed(&read_buf[..n], body_buf, sink)? == Flow::Done {
                return Ok(Drive::Done);
            }
        }
        Ok(Drive::Again)
    }

    fn reach_error(&self, e: &io::Error) -> McpError {
        McpError::Transport(format!("cannot reach {}: {e}", self.url))
    }

    /// The peer closed: the end of a body that runs until then, else a cut answer.
    fn at_end(&mut self) -> Result<Drive, McpError> {
        match &self.state {
            State::Body(call) if call.body_mode() == BodyMode::CloseDelimited => Ok(Drive::Done),
            State::Finished => Ok(Drive::Done),
            _ => Err(McpError::Transport(format!(
                "{} closed the connection before the answer ended",
                self.url
            ))),
        }
    }

    /// Parses newly read bytes (after any kept tail), keeping what cannot be parsed yet.
    fn feed(
        &mut self,
        read: &[u8],
        body_buf: &mut [u8],
        sink: &mut dyn Sink,
    ) -> Result<Flow, McpError> {
        if self.input.is_empty() {
            let (used, flow) = self.parse(read, body_buf, sink)?;
            self.input = read[used..].to_vec();
            return Ok(flow);
        }
        let mut input = std::mem::take(&mut self.input);
        input.extend_from_slice(read);
        let (used, flow) = self.parse(&input, body_buf, sink)?;
        input.drain(..used);
        self.input = input;
        if self.input.is_empty() {
            self.input = Vec::new(); // give the memory back
        }
        Ok(flow)
    }

    /// Parses as much of `input` as can be; returns how much it used.
    fn parse(
        &mut self,
        input: &[u8],
        body_buf: &mut [u8],
        sink: &mut dyn Sink,
    ) -> Result<(usize, Flow), McpError> {
        let framing = |e: ureq_proto::Error| {
            McpError::Protocol(format!(
                "the answer from {} is not valid HTTP: {e}",
                self.url
            ))
        };
        let mut used = 0;
        loop {
            match &mut self.state {
                State::Finished => return Ok((input.len(), Flow::Done)),
                State::Head(call) => {
                    let (n, response) =
                        call.try_response(&input[used..], false).map_err(framing)?;
                    used += n;
                    let Some(response) = response else {
                        if n > 0 {
                            continue; // an informational response went by
                        }
                        if input.len() - used > MAX_HEAD_BYTES {
                            return Err(McpError::Protocol(format!(
                                "the answer's head from {} exceeds {} KiB",
                                self.url,
                                MAX_HEAD_BYTES >> 10
                            )));
                        }
                        return Ok((used, Flow::More));
                    };
                    if sink.head(response.status().as_u16(), response.headers())? == Flow::Done {
                        self.state = State::Finished;
                        return Ok((used, Flow::Done));
                    }
                    let State::Head(call) = std::mem::replace(&mut self.state, State::Finished)
                    else {
                        return Ok((used, Flow::Done));
                    };
                    match call.proceed() {
                        Some(RecvResponseResult::RecvBody(call)) => self.state = State::Body(call),
                        // No body (204, 304, HEAD) or a redirect (never followed).
                        _ => return Ok((used, Flow::Done)),
                    }
                }
                State::Body(call) => {
                    let (n, produced) = call.read(&input[used..], body_buf).map_err(framing)?;
                    used += n;
                    if produced > 0 && sink.body(&body_buf[..produced])? == Flow::Done {
                        self.state = State::Finished;
                        return Ok((used, Flow::Done));
                    }
                    if call.body_mode() != BodyMode::CloseDelimited && call.can_proceed() {
                        self.state = State::Finished;
                        return Ok((used, Flow::Done));
                    }
                    if n == 0 && produced == 0 {
                        return Ok((used, Flow::More));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
