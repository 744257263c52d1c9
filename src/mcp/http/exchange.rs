//! One HTTP/1.1 exchange over a non-blocking connection, driven by the `mcp-http` engine: the
//! request is rendered whole when the exchange is made, sent as the socket takes it, and the
//! response is parsed as it arrives (heads by `httparse`; bodies by length, chunked, or until
//! the connection closes), its head and body bytes handed to a [`Sink`]. Nothing here waits:
//! each call does what the socket allows and returns.
//!
//! Memory: once the request is sent its bytes are given back; between reads the exchange keeps
//! only the unparsed tail of what came (a partial head or chunk line) and a few counters, so an
//! idle event stream holds its connection and little else.

use std::io::{self, ErrorKind};
use std::time::{Duration, Instant};

use super::McpError;
use crate::client::nonblocking::{Connection, Interest};
use crate::platform::RawSocket;

/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most response headers accepted.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (with extensions) or trailer line accepted.
const MAX_CHUNK_LINE_BYTES: usize = 4096;
/// Longest a connection may take to be established (connect, proxy tunnel, TLS handshake).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
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

/// A response's status and headers.
pub(super) struct Head<'a> {
    /// The status code.
    pub(super) status: u16,
    headers: &'a [httparse::Header<'a>],
}

impl Head<'_> {
    /// The first value of header `name` (any case) as text.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    }
}

/// Receives a response as it arrives.
pub(super) trait Sink {
    /// The status and headers.
    fn head(&mut self, head: &Head<'_>) -> Result<Flow, McpError>;
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

/// A request's bytes, head then body, built header by header.
pub(super) struct RequestHead(Vec<u8>);

impl RequestHead {
    /// `method` on `url` (`http://` or `https://`), with its `Host`.
    pub(super) fn new(method: &str, url: &str) -> Result<Self, McpError> {
        let bad = || McpError::Transport(format!("not an http(s) URL: {url}"));
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(bad)?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.is_empty() || path.contains('#') {
            return Err(bad());
        }
        let mut head = RequestHead(format!("{method} {path} HTTP/1.1\r\n").into_bytes());
        head.header("host", authority.rsplit('@').next().unwrap_or(authority))?;
        Ok(head)
    }

    /// Adds a header; a value that could break the head (a line end, a control character) is
    /// refused.
    pub(super) fn header(&mut self, name: &str, value: &str) -> Result<&mut Self, McpError> {
        check_header(name, value)?;
        for part in [name, ": ", value, "\r\n"] {
            self.0.extend_from_slice(part.as_bytes());
        }
        Ok(self)
    }

    /// The whole request: the head, then `body` with its length.
    fn finish(mut self, body: Option<&[u8]>) -> Vec<u8> {
        if let Some(body) = body {
            self.0
                .extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
            self.0.extend_from_slice(body);
        } else {
            self.0.extend_from_slice(b"\r\n");
        }
        self.0
    }
}

/// Refuses a header that could not be sent as it is: a name that is not a token, a value with
/// a line end or another control character (which could smuggle headers in).
pub(super) fn check_header(name: &str, value: &str) -> Result<(), McpError> {
    let is_token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    let is_text = |c: u8| c == b'\t' || (c >= 0x20 && c != 0x7f);
    if name.is_empty() || !name.bytes().all(is_token) {
        return Err(McpError::Transport(format!(
            "header {name:?}: not a valid name"
        )));
    }
    if !value.bytes().all(is_text) {
        return Err(McpError::Transport(format!(
            "header {name}: value is not a valid header"
        )));
    }
    Ok(())
}

/// How the response's body ends.
#[derive(Debug)]
enum Body {
    /// After this many more bytes.
    Length(u64),
    /// With a zero-size chunk.
    Chunked(Chunk),
    /// When the connection closes.
    UntilClose,
}

/// Where a chunked body is.
#[derive(Debug)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk: this many bytes left, then its CRLF.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Reading trailer lines until the empty one.
    Trailers,
}

enum State {
    Head,
    Body(Body),
    Finished,
}

/// One request and its response.
pub(super) struct Exchange {
    url: String,
    conn: Connection,
    established: bool,
    /// When connecting gives up.
    connect_by: Instant,
    /// Request bytes not yet sent (given back once all are).
    out: Vec<u8>,
    sent: usize,
    /// Response bytes received but not yet parsed.
    input: Vec<u8>,
    state: State,
}

impl Exchange {
    /// Starts connecting to `url` to send `head` and `body`.
    pub(super) fn start(
        url: &str,
        head: RequestHead,
        body: Option<&[u8]>,
    ) -> Result<Self, McpError> {
        let conn = Connection::open(url)
            .map_err(|e| McpError::Transport(format!("cannot reach {url}: {e}")))?;
        Ok(Exchange {
            url: url.to_string(),
            conn,
            established: false,
            connect_by: Instant::now() + CONNECT_TIMEOUT,
            out: head.finish(body),
            sent: 0,
            input: Vec::new(),
            state: State::Head,
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

    /// When connecting gives up, while it is still in progress.
    pub(super) fn connect_deadline(&self) -> Option<Instant> {
        (!self.established).then_some(self.connect_by)
    }

    /// The error of a connection not established in time.
    pub(super) fn connect_timed_out(&self) -> McpError {
        McpError::Transport(format!(
            "cannot reach {}: not connected within {} s",
            self.url,
            CONNECT_TIMEOUT.as_secs()
        ))
    }

    /// Does what the socket allows now: connecting, sending, reading and handing over.
    pub(super) fn drive(
        &mut self,
        read_buf: &mut [u8],
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
            if self.feed(&read_buf[..n], sink)? == Flow::Done {
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
            State::Body(Body::UntilClose) | State::Finished => Ok(Drive::Done),
            _ => Err(McpError::Transport(format!(
                "{} closed the connection before the answer ended",
                self.url
            ))),
        }
    }

    /// Parses newly read bytes (after any kept tail), keeping what cannot be parsed yet.
    fn feed(&mut self, read: &[u8], sink: &mut dyn Sink) -> Result<Flow, McpError> {
        if self.input.is_empty() {
            let (used, flow) = self.parse(read, sink)?;
            self.input = read[used..].to_vec();
            return Ok(flow);
        }
        let mut input = std::mem::take(&mut self.input);
        input.extend_from_slice(read);
        let (used, flow) = self.parse(&input, sink)?;
        input.drain(..used);
        // Kept only while something is half-read.
        self.input = if input.is_empty() { Vec::new() } else { input };
        Ok(flow)
    }

    /// Parses as much of `input` as can be; returns how much it used.
    fn parse(&mut self, input: &[u8], sink: &mut dyn Sink) -> Result<(usize, Flow), McpError> {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            let step = match self.state {
                State::Finished => return Ok((input.len(), Flow::Done)),
                State::Head => self.parse_head(rest, sink)?,
                State::Body(Body::UntilClose) => {
                    if rest.is_empty() {
                        return Ok((used, Flow::More));
                    }
                    (rest.len(), sink.body(rest)?)
                }
                State::Body(Body::Length(ref mut left)) => {
                    let take = rest.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= take as u64;
                    let ended = *left == 0;
                    let flow = if take > 0 {
                        sink.body(&rest[..take])?
                    } else {
                        Flow::More
                    };
                    if ended {
                        self.state = State::Finished;
                        return Ok((used + take, Flow::Done));
                    }
                    (take, flow)
                }
                State::Body(Body::Chunked(ref mut chunk)) => {
                    let (n, ended, flow) = read_chunked(chunk, rest, sink, &self.url)?;
                    if ended {
                        self.state = State::Finished;
                        return Ok((used + n, Flow::Done));
                    }
                    (n, flow)
                }
            };
            let (n, flow) = step;
            used += n;
            if flow == Flow::Done {
                self.state = State::Finished;
                return Ok((used, Flow::Done));
            }
            if n == 0 {
                return Ok((used, Flow::More));
            }
        }
    }

    /// Parses a response head from `input` if it is all there; `(0, More)` when not yet.
    fn parse_head(&mut self, input: &[u8], sink: &mut dyn Sink) -> Result<(usize, Flow), McpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let length = match response.parse(input) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) if input.len() > MAX_HEAD_BYTES => {
                return Err(McpError::Protocol(format!(
                    "the answer's head from {} exceeds {} KiB",
                    self.url,
                    MAX_HEAD_BYTES >> 10
                )));
            }
            Ok(httparse::Status::Partial) => return Ok((0, Flow::More)),
            Err(e) => {
                return Err(McpError::Protocol(format!(
                    "the answer from {} is not valid HTTP: {e}",
                    self.url
                )));
            }
        };
        let status = response.code.unwrap_or(0);
        if (100..200).contains(&status) {
            return Ok((length, Flow::More)); // an informational response; the real one follows
        }
        let head = Head {
            status,
            headers: response.headers,
        };
        let body = if status == 204 || status == 304 {
            None
        } else if head
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            Some(Body::Chunked(Chunk::Size))
        } else if let Some(value) = head.header("content-length") {
            let length = value.parse::<u64>().map_err(|_| {
                McpError::Protocol(format!("bad content-length from {}: {value}", self.url))
            })?;
            Some(Body::Length(length))
        } else {
            Some(Body::UntilClose)
        };
        let flow = sink.head(&head)?;
        self.state = match body {
            Some(Body::Length(0)) | None => State::Finished,
            Some(body) => State::Body(body),
        };
        let flow = if matches!(self.state, State::Finished) {
            Flow::Done
        } else {
            flow
        };
        Ok((length, flow))
    }
}

/// Decodes chunked bytes from `input`: how much was used, whether the body ended, and what the
/// sink wants.
fn read_chunked(
    chunk: &mut Chunk,
    input: &[u8],
    sink: &mut dyn Sink,
    url: &str,
) -> Result<(usize, bool, Flow), McpError> {
    let bad = |what: &str| McpError::Protocol(format!("bad chunked answer from {url}: {what}"));
    let line = |input: &[u8]| -> Result<Option<usize>, McpError> {
        match input.windows(2).position(|w| w == b"\r\n") {
            Some(at) => Ok(Some(at)),
            None if input.len() > MAX_CHUNK_LINE_BYTES => Err(bad("a line too long")),
            None => Ok(None),
        }
    };
    match chunk {
        Chunk::Size => {
            let Some(end) = line(input)? else {
                return Ok((0, false, Flow::More));
            };
            let text = std::str::from_utf8(&input[..end]).map_err(|_| bad("a size"))?;
            let digits = text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(digits, 16).map_err(|_| bad("a size"))?;
            *chunk = if size == 0 {
                Chunk::Trailers
            } else {
                Chunk::Data(size)
            };
            Ok((end + 2, false, Flow::More))
        }
        Chunk::Data(left) => {
            let take = input
                .len()
                .min(usize::try_from(*left).unwrap_or(usize::MAX));
            if take == 0 {
                return Ok((0, false, Flow::More));
            }
            *left -= take as u64;
            if *left == 0 {
                *chunk = Chunk::DataEnd;
            }
            Ok((take, false, sink.body(&input[..take])?))
        }
        Chunk::DataEnd => {
            if input.len() < 2 {
                return Ok((0, false, Flow::More));
            }
            if &input[..2] != b"\r\n" {
                return Err(bad("no line end after a chunk"));
            }
            *chunk = Chunk::Size;
            Ok((2, false, Flow::More))
        }
        Chunk::Trailers => {
            let Some(end) = line(input)? else {
                return Ok((0, false, Flow::More));
            };
            // The empty line ends the body; other trailer lines are skipped.
            Ok((end + 2, end == 0, Flow::More))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
