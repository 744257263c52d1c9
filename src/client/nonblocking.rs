//! A TCP connection (plain or TLS, direct or through an HTTP CONNECT proxy) that never
//! blocks, for an engine that drives many connections from one thread by polling their
//! sockets (MCP's streamable-HTTP engine, `mcp::http`).
//!
//! The caller asks [`Connection::interest`] what to wait for, waits (e.g. with
//! `platform::poll_sockets`), then calls [`Connection::progress`] until it returns `true`, and
//! from then on [`Connection::read`] and [`Connection::write`] plaintext. Every call returns at
//! once: a name lookup runs on a short-lived helper thread (`net-resolve`; IP literals and
//! `localhost` need none), a TCP connect is a non-blocking `connect`, the proxy exchange and
//! the TLS handshake advance as far as the socket allows.
//!
//! Owns: reaching the origin of a URL (addresses tried in order), the CONNECT tunnel, and TLS
//! driven by hand (rustls, the roots of `client::tls`). Does not own: HTTP itself, timeouts
//! (the engine bounds how long it waits), or which proxy applies (`client::net::env_proxy`).
//!
//! Memory: an established plain connection holds its socket and the host's name; a TLS one
//! adds rustls's state (its buffers shrink when idle). The proxy's reply is dropped once the
//! tunnel is up.

mod proxy;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;

use crossbeam_channel::{Receiver, TryRecvError};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::platform::{self, RawSocket};
use proxy::{Proxy, Tunnel};

/// Most bytes rustls may hold for sending (encrypted records not yet taken by the socket);
/// [`Connection::write`] takes no more until they drain. rustls's default is 64 KiB.
const TLS_SEND_LIMIT_BYTES: usize = 32 * 1024;

/// What a connection waits for before it can make progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interest {
    /// The socket must be readable (a reply, a handshake record, data or the peer closing).
    pub(crate) read: bool,
    /// The socket must be writable (a connect finishing, bytes of our own to send).
    pub(crate) write: bool,
}

/// A connection to one origin that never blocks (see the module documentation).
pub(crate) struct Connection {
    /// The origin's host (no brackets) and port, for TLS's server name, CONNECT and messages.
    host: String,
    port: u16,
    stage: Stage,
    /// The TLS session of an `https` origin, started once the TCP path (or tunnel) is up.
    tls: Option<Box<ClientConnection>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match &self.stage {
            Stage::Resolving { .. } => "resolving",
            Stage::Connecting { .. } => "connecting",
            Stage::Tunneling { .. } => "tunneling",
            Stage::Open(_) if self.tls.as_ref().is_some_and(|t| t.is_handshaking()) => {
                "handshaking"
            }
            Stage::Open(_) => "open",
            Stage::Failed => "failed",
        };
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("stage", &stage)
            .finish()
    }
}

/// An established connection's stream, TLS session (for https) and host.
type Established<'a> = (&'a mut TcpStream, Option<&'a mut ClientConnection>, &'a str);

/// Where the connection is.
enum Stage {
    /// A helper thread looks up the name of `next`'s host.
    Resolving {
        answer: Receiver<io::Result<Vec<SocketAddr>>>,
        next: Option<Box<Proxy>>,
    },
    /// A TCP connect in progress; the other addresses wait in `rest`.
    Connecting {
        stream: TcpStream,
        rest: std::vec::IntoIter<SocketAddr>,
        next: Option<Box<Proxy>>,
    },
    /// The CONNECT request goes to the proxy and its reply comes back.
    Tunneling {
        stream: TcpStream,
        tunnel: Box<Tunnel>,
    },
    /// A byte stream to the origin (TLS may still be handshaking).
    Open(TcpStream),
    /// An error was returned: the connection is unusable.
    Failed,
}

impl Connection {
    /// Starts connecting to the origin of `url` (http:// or https://, default ports 80/443),
    /// through the environment's HTTP proxy unless the host is loopback or in `NO_PROXY`: an
    /// `http://` proxy is used with CONNECT (with `Proxy-Authorization: Basic` from the proxy
    /// URL's user:password if present); an HTTPS-protocol or SOCKS proxy is an `Unsupported`
    /// error naming it. Never blocks: an IP literal or `localhost` (127.0.0.1, then ::1)
    /// connects at once (non-blocking connect); another host name is looked up on a
    /// short-lived thread whose answer a later call picks up; all addresses are tried in order
    /// while they refuse.
    pub(crate) fn open(url: &str) -> io::Result<Connection> {
        let (https, host, port) = parse_origin(url)?;
        let proxy = proxy::from_env(url)?;
        let tls = match https {
            true => Some(super::tls::client_config()?),
            false => None,
        };
        Self::open_with(&host, port, proxy, tls)
    }

    /// [`Connection::open`] with the proxy and the TLS settings given (`None`: plain).
    fn open_with(
        host: &str,
        port: u16,
        proxy: Option<Proxy>,
        tls: Option<Arc<ClientConfig>>,
    ) -> io::Result<Connection> {
        let tls = match tls {
            Some(config) => {
                let name = ServerName::try_from(host.to_string()).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}"))
                })?;
                let mut session = ClientConnection::new(config, name)
                    .map_err(|e| io::Error::other(format!("tls with {host}: {e}")))?;
                session.set_buffer_limit(Some(TLS_SEND_LIMIT_BYTES));
                Some(Box::new(session))
            }
            None => None,
        };
        let mut connection = Connection {
            host: host.to_string(),
            port,
            stage: Stage::Failed,
            tls,
        };
        let (first_host, first_port) = match &proxy {
            Some(p) => (p.host.clone(), p.port),
            None => (connection.host.clone(), port),
        };
        let next = proxy.map(Box::new);
        connection.stage = match known_addresses(&first_host, first_port) {
            Some(addrs) => connection.connect_first(addrs, next, None)?,
            None => Stage::Resolving {
                answer: resolve(first_host, first_port)?,
                next,
            },
        };
        Ok(connection)
    }

    /// The socket to wait on and for what; `None` while a name lookup runs (the caller then
    /// calls [`Connection::progress`] again within ~10 ms). Once established: read always (the
    /// peer may send or close at any time), write while TLS records of our own wait; the
    /// caller adds write when it has data for [`Connection::write`].
    pub(crate) fn interest(&self) -> Option<(RawSocket, Interest)> {
        let (stream, read, write) = match &self.stage {
            Stage::Resolving { .. } | Stage::Failed => return None,
            Stage::Connecting { stream, .. } => (stream, false, true),
            Stage::Tunneling { stream, tunnel } => {
                (stream, !tunnel.is_sending(), tunnel.is_sending())
            }
            // Reading is always welcome: handshake records, data, or the peer closing.
            Stage::Open(stream) => (
                stream,
                true,
                self.tls.as_ref().is_some_and(|t| t.wants_write()),
            ),
        };
        Some((platform::stream_socket(stream), Interest { read, write }))
    }

    /// Advances whatever is in progress (name lookup, TCP connect, proxy CONNECT exchange, TLS
    /// handshake, sending TLS records rustls holds); `Ok(true)` once established with nothing
    /// of its own left to send. Call it whenever the socket was reported ready (or after a
    /// short timeout while resolving). Errors are final (refused, proxy said no, certificate
    /// invalid, ...), their message names the host.
    pub(crate) fn progress(&mut self) -> io::Result<bool> {
        loop {
            let stage = std::mem::replace(&mut self.stage, Stage::Failed);
            self.stage = match stage {
                Stage::Resolving { answer, next } => match answer.try_recv() {
                    Err(TryRecvError::Empty) => {
                        self.stage = Stage::Resolving { answer, next };
                        return Ok(false);
                    }
                    Ok(Ok(addrs)) => self.connect_first(addrs, next, None)?,
                    Ok(Err(e)) => return Err(self.failed(next.as_deref(), "resolving", e)),
                    Err(TryRecvError::Disconnected) => {
                        let e = io::Error::other("the name lookup ended without an answer");
                        return Err(self.failed(next.as_deref(), "resolving", e));
                    }
                },
                Stage::Connecting { stream, rest, next } => match connect_state(&stream) {
                    Ok(false) => {
                        self.stage = Stage::Connecting { stream, rest, next };
                        return Ok(false);
                    }
                    Ok(true) => {
                        // Small requests and replies must not wait for Nagle's delayed ACK.
                        let _ = stream.set_nodelay(true);
                        match next {
                            Some(proxy) => Stage::Tunneling {
                                stream,
                                tunnel: Box::new(Tunnel::new(&proxy, &self.host, self.port)),
                            },
                            None => Stage::Open(stream),
                        }
                    }
                    Err(e) => self.connect_first(rest.collect(), next, Some(e))?,
                },
                Stage::Tunneling {
                    mut stream,
                    mut tunnel,
                } => match tunnel.advance(&mut stream) {
                    Ok(true) => Stage::Open(stream),
                    Ok(false) => {
                        self.stage = Stage::Tunneling { stream, tunnel };
                        return Ok(false);
                    }
                    Err(e) => return Err(e),
                },
                Stage::Open(mut stream) => {
                    let result = self.drive_tls(&mut stream);
                    if result.is_ok() {
                        self.stage = Stage::Open(stream);
                    }
                    return result;
                }
                Stage::Failed => return Err(self.unusable()),
            };
        }
    }

    /// Once established: reads plaintext into `buf` (not empty). `Ok(0)`: the peer closed
    /// (for TLS: close_notify, or EOF without it); `Err(WouldBlock)`: nothing now.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (stream, tls, host) = self.established()?;
        let Some(tls) = tls else {
            return stream.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // EOF without close_notify: HTTP's own framing tells a cut reply.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                other => return other,
            }
            // At EOF rustls notes it and its reader reports it on the next round.
            if tls.read_tls(stream)? > 0 {
                process(tls, stream, host)?;
            }
        }
    }

    /// Once established: takes as much of `data` as it can now (for TLS: into rustls, then
    /// tries to send); `Err(WouldBlock)` when nothing was taken. What rustls still holds is
    /// sent by later [`Connection::progress`] calls (interest then includes write).
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let (stream, tls, _) = self.established()?;
        let Some(tls) = tls else {
            return stream.write(data);
        };
        flush(tls, stream)?;
        let taken = tls.writer().write(data)?;
        if taken == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        flush(tls, stream)?;
        Ok(taken)
    }

    /// The stream, TLS session and host once established; an error before.
    fn established(&mut self) -> io::Result<Established<'_>> {
        match (&mut self.stage, &mut self.tls) {
            (Stage::Open(stream), None) => Ok((stream, None, &self.host)),
            (Stage::Open(stream), Some(tls)) if !tls.is_handshaking() => {
                Ok((stream, Some(tls), &self.host))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("the connection to {} is not established", self.host),
            )),
        }
    }

    /// Runs the TLS handshake and sends what rustls holds, as far as the socket allows.
    fn drive_tls(&mut self, stream: &mut TcpStream) -> io::Result<bool> {
        let Some(tls) = &mut self.tls else {
            return Ok(true);
        };
        let host = &self.host;
        let in_handshake = |e: io::Error| io::Error::new(e.kind(), format!("tls with {host}: {e}"));
        loop {
            if !flush(tls, stream).map_err(in_handshake)? {
                return Ok(false);
            }
            if !tls.is_handshaking() {
                return Ok(true);
            }
            match tls.read_tls(stream) {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the server");
                    return Err(in_handshake(e));
                }
                Ok(_) => process(tls, stream, host)?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(in_handshake(e)),
            }
        }
    }

    /// The next TCP connect: the first of `addrs` that starts; `last` is the previous
    /// address's failure, reported when none is left.
    fn connect_first(
        &self,
        addrs: Vec<SocketAddr>,
        next: Option<Box<Proxy>>,
        mut last: Option<io::Error>,
    ) -> io::Result<Stage> {
        let mut rest = addrs.into_iter();
        for addr in rest.by_ref() {
            match platform::connect_nonblocking(&addr) {
                Ok(stream) => return Ok(Stage::Connecting { stream, rest, next }),
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
        Err(self.failed(next.as_deref(), "connecting to", e))
    }

    /// `err` while doing `what` with the proxy (when `proxy` is set) or the origin.
    fn failed(&self, proxy: Option<&Proxy>, what: &str, err: io::Error) -> io::Error {
        let message = match proxy {
            Some(p) => format!(
                "{what} proxy {}:{} (for {}): {err}",
                p.host, p.port, self.host
            ),
            None => format!("{what} {}:{}: {err}", self.host, self.port),
        };
        io::Error::new(err.kind(), message)
    }

    /// The error of a call after an error.
    fn unusable(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::NotConnected,
            format!("the connection to {} failed earlier", self.host),
        )
    }
}

/// Whether `url` is https, and its host (no brackets) and port.
fn parse_origin(url: &str) -> io::Result<(bool, String, u16)> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{why}: {url}"));
    let uri: ureq::http::Uri = url.parse().map_err(|_| invalid("not a url"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(invalid("not an http or https url")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("no host in url"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    Ok((https, host, port))
}

/// The addresses of `host` known without a lookup: an IP literal's, and loopback for
/// `localhost` and `*.localhost` (RFC 6761), IPv4 first (the address most local servers
/// listen on; the other is tried when it refuses). Local MCP servers are the common case, and
/// this spares each of their requests a lookup thread.
fn known_addresses(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    (name == "localhost" || name.ends_with(".localhost")).then(|| {
        vec![
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        ]
    })
}

/// Starts looking `host` up on a helper thread; the answer arrives on the receiver.
fn resolve(host: String, port: u16) -> io::Result<Receiver<io::Result<Vec<SocketAddr>>>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("net-resolve".into())
        .spawn(move || {
            let addrs = (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect);
            // The connection may be gone: then nobody wants the answer.
            let _ = tx.send(addrs);
        })?;
    Ok(rx)
}

/// Whether a non-blocking connect has finished (`false`: still in progress); its failure.
fn connect_state(stream: &TcpStream) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sends what rustls holds until the socket is full; whether everything went.
fn flush(tls: &mut ClientConnection, stream: &mut TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Lets rustls process the records read; on a TLS error (bad certificate, bad record) its
/// alert goes to the server if the socket takes it, and the error names `host`.
fn process(tls: &mut ClientConnection, stream: &mut TcpStream, host: &str) -> io::Result<()> {
    match tls.process_new_packets() {
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = flush(tls, stream);
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("tls with {host}: {e}"),
            ))
        }
    }
}
