//! One connection of the mock, plain or TLS: requests read (a request line, headers, a body by
//! `Content-Length` or chunked) with every wait bounded, bytes written whole.

use super::*;

/// What reading from the peer gave.
pub(super) enum Input {
    Request(Request),
    /// The peer closed (EOF or an error).
    Closed,
    /// The mock stops, the connection outlived [`MAX_CONNECTION`], or the request is broken.
    Stopped,
}

/// A plain or TLS connection (the Responses mock's).
pub(super) use crate::support::mock_responses::Conn as Io;

/// A connection's read side: bytes read ahead are kept for the next request.
pub(super) struct Conn {
    pub(super) stream: Box<dyn Io>,
    pub(super) buf: Vec<u8>,
    pub(super) id: u64,
    pub(super) deadline: Instant,
}

impl Conn {
    /// Reads more bytes (waiting at most one [`SLICE`]): `Some(true)` when some came,
    /// `Some(false)` when none yet, `None` at EOF or on an error.
    pub(super) fn fill(&mut self) -> Option<bool> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => None,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(true)
            }
            Err(e) if is_transient(&e) => Some(false),
            Err(_) => None,
        }
    }

    /// Reads until `ready(buf)` gives a length, bounded by the stop flag and the deadline.
    fn read_until(
        &mut self,
        shared: &Shared,
        ready: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Vec<u8>, Input> {
        loop {
            if let Some(n) = ready(&self.buf) {
                return Ok(self.buf.drain(..n).collect());
            }
            if shared.stopped()
                || Instant::now() > self.deadline
                || self.buf.len() > MAX_REQUEST_BYTES
            {
                return Err(Input::Stopped);
            }
            if self.fill().is_none() {
                return Err(Input::Closed);
            }
        }
    }

    pub(super) fn request(&mut self, shared: &Shared) -> Input {
        match self.read_request(shared) {
            Ok(request) => Input::Request(request),
            Err(input) => input,
        }
    }

    fn read_request(&mut self, shared: &Shared) -> Result<Request, Input> {
        let head = self.read_until(shared, |b| {
            b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
        })?;
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split_whitespace();
        let method = first.next().unwrap_or_default().to_string();
        let path = first.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let mut body = Vec::new();
        if let Some(length) = find("content-length") {
            let length: usize = length.parse().map_err(|_| Input::Stopped)?;
            body = self.read_until(shared, |b| (b.len() >= length).then_some(length))?;
        } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let line = self.read_until(shared, |b| {
                    b.windows(2).position(|w| w == b"\r\n").map(|p| p + 2)
                })?;
                let line = String::from_utf8_lossy(&line);
                let size = line.trim().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size, 16).map_err(|_| Input::Stopped)?;
                let chunk =
                    self.read_until(shared, |b| (b.len() >= size + 2).then_some(size + 2))?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        Ok(Request {
            conn: self.id,
            request: RecordedRequest {
                method,
                path,
                headers,
                body,
            },
        })
    }

    /// Waits one slice for the peer: false once it closed.
    pub(super) fn is_open(&mut self) -> bool {
        self.fill().is_some()
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> bool {
        // A write may meet the read timeout of the TLS handshake's reads: retried, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(0) => return false,
                Ok(n) => rest = &rest[n..],
                Err(e) if is_transient(&e) && Instant::now() < deadline => {}
                Err(_) => return false,
            }
        }
        self.stream.flush().is_ok()
    }
}

/// Whether a read or write failed only for now (a timeout, a signal): worth trying again.
fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}
