//! The HTTP CONNECT tunnel of a non-blocking connection: which proxy the environment names
//! for a URL, and the exchange (`CONNECT host:port`, the proxy's reply head) done as far as
//! the socket allows at each call.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use base64::Engine;

/// Longest reply head a proxy may send to CONNECT.
const MAX_REPLY_BYTES: usize = 8 * 1024;
/// How much of a reply one read takes: small, since nothing may follow the head.
const READ_CHUNK_BYTES: usize = 512;

/// An HTTP proxy to tunnel through.
#[derive(Debug)]
pub(super) struct Proxy {
    /// The proxy's host (no brackets) and port.
    pub(super) host: String,
    pub(super) port: u16,
    /// `Basic …` credentials for `Proxy-Authorization`, from the proxy URL's user:password.
    pub(super) authorization: Option<String>,
}

impl Proxy {
    /// A proxy at `host:port`, with credentials when `user` or `password` is set.
    pub(super) fn new(host: &str, port: u16, user: Option<&str>, password: Option<&str>) -> Self {
        let authorization = (user.is_some() || password.is_some()).then(|| {
            let pair = format!("{}:{}", user.unwrap_or(""), password.unwrap_or(""));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Proxy {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            authorization,
        }
    }
}

/// The proxy the environment names for `url` (none for loopback hosts and `NO_PROXY`
/// matches); an `Unsupported` error for proxies other than `http://` ones.
pub(super) fn from_env(url: &str) -> io::Result<Option<Proxy>> {
    choose(url, super::super::net::env_proxy(url))
}

/// The tunnel through `proxy` for `url`, if any (see [`from_env`]).
pub(super) fn choose(url: &str, proxy: Option<ureq::Proxy>) -> io::Result<Option<Proxy>> {
    let Some(proxy) = proxy else {
        return Ok(None);
    };
    let is_no_proxy = url
        .parse::<ureq::http::Uri>()
        .is_ok_and(|uri| proxy.is_no_proxy(&uri));
    if is_no_proxy {
        return Ok(None);
    }
    match proxy.protocol() {
        ureq::ProxyProtocol::Http => Ok(Some(Proxy::new(
            proxy.host(),
            proxy.port(),
            proxy.username(),
            proxy.password(),
        ))),
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "the {other:?} proxy {}:{} is not supported for {url}: only http:// proxies are",
                proxy.host(),
                proxy.port()
            ),
        )),
    }
}

/// One CONNECT exchange: the request still to send, then the reply read so far.
pub(super) struct Tunnel {
    request: Vec<u8>,
    sent: usize,
    reply: Vec<u8>,
    /// `host:port` of the proxy and of the origin, for messages.
    proxy: String,
    target: String,
}

impl Tunnel {
    /// The exchange asking `proxy` for a tunnel to `host:port`.
    pub(super) fn new(proxy: &Proxy, host: &str, port: u16) -> Self {
        let target = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(credentials) = &proxy.authorization {
            request.push_str(&format!("Proxy-Authorization: {credentials}\r\n"));
        }
        request.push_str("\r\n");
        Tunnel {
            request: request.into_bytes(),
            sent: 0,
            reply: Vec::new(),
            proxy: format!("{}:{}", proxy.host, proxy.port),
            target,
        }
    }

    /// Whether the request is still being sent (then the socket must become writable; after,
    /// readable).
    pub(super) fn is_sending(&self) -> bool {
        self.sent < self.request.len()
    }

    /// Sends and reads what the socket allows; `Ok(true)` once the proxy accepted (2xx).
    pub(super) fn advance(&mut self, stream: &mut TcpStream) -> io::Result<bool> {
        while self.is_sending() {
            match stream.write(&self.request[self.sent..]) {
                Ok(0) => return Err(self.error(io::ErrorKind::WriteZero, "cannot send CONNECT")),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(self.error(e.kind(), &format!("sending CONNECT: {e}"))),
            }
        }
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(0) => {
                    let why = "closed the connection before answering CONNECT";
                    return Err(self.error(io::ErrorKind::UnexpectedEof, why));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(self.error(e.kind(), &format!("reading its reply: {e}"))),
            };
            self.reply.extend_from_slice(&chunk[..n]);
            if let Some(end) = self.reply.windows(4).position(|w| w == b"\r\n\r\n") {
                if end + 4 != self.reply.len() {
                    // The client speaks first in HTTP and TLS: nothing may follow the head.
                    let why = "sent data after its CONNECT reply";
                    return Err(self.error(io::ErrorKind::InvalidData, why));
                }
                return self.accepted().map(|()| true);
            }
            if self.reply.len() > MAX_REPLY_BYTES {
                let why = "sent a CONNECT reply head longer than 8 KiB";
                return Err(self.error(io::ErrorKind::InvalidData, why));
            }
        }
    }

    /// Whether the complete reply head says 2xx.
    fn accepted(&self) -> io::Result<()> {
        let head = String::from_utf8_lossy(&self.reply);
        let status_line = head.lines().next().unwrap_or("").trim();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok());
        match status {
            Some(200..=299) => Ok(()),
            Some(407) => Err(self.error(
                io::ErrorKind::PermissionDenied,
                &format!("requires authentication ({status_line})"),
            )),
            _ => Err(self.error(
                io::ErrorKind::ConnectionRefused,
                &format!("refused the tunnel ({status_line})"),
            )),
        }
    }

    /// An error saying the proxy `why`, naming it and the origin.
    fn error(&self, kind: io::ErrorKind, why: &str) -> io::Error {
        io::Error::new(
            kind,
            format!("proxy {} (for {}) {why}", self.proxy, self.target),
        )
    }
}
