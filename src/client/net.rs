//! The HTTP agent of one request attempt, built so that an abort stops it at once in every
//! phase. `ureq::Agent::shutdown` already interrupts a request waiting for its response, a
//! body read, and TLS/CONNECT handshakes, but not name resolution or a TCP connect in
//! progress; so this module plugs in its own resolver (lookups of names run on a helper thread
//! the caller stops waiting for) and its own TCP connector (a non-blocking `connect` polled in
//! short slices against the abort flag), then ureq's CONNECT-proxy and rustls connectors.
//!
//! Proxies: requests to loopback hosts never use a proxy; other hosts use `HTTPS_PROXY` /
//! `HTTP_PROXY` / `ALL_PROXY` (and `NO_PROXY`) from the environment when they name an HTTP(S)
//! proxy. SOCKS proxies are not supported (ureq is built without them): they are ignored with
//! a warning and the request goes direct.
//!
//! Uses ureq's `unversioned` transport and resolver API (pinned by Cargo.lock); a ureq update
//! that changes it shows up as a compile error here, nowhere else.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    RustlsConnector, ShutdownHandle, Transport,
};

/// How often a blocked connect or name lookup looks at the abort flag.
const ABORT_POLL: Duration = Duration::from_millis(10);
/// Where a socket shutdown does not wake a blocked read, reads wait at most this long before
/// looking at the abort flag.
const ABORT_POLL_READ: Duration = Duration::from_millis(100);
/// Longest TCP connect (per attempt, over all addresses of the host) before it counts as a
/// transport error and is retried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest name lookup before it counts as a transport error.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection's input buffer, which also bounds a response's head (ureq's default is
/// 128 KiB in and 64 KiB of head: a turn would hold that while it streams).
const INPUT_BUFFER_BYTES: usize = 32 * 1024;
/// A connection's output buffer: a request's head must fit, its body goes through in pieces
/// of this size (ureq's default: 128 KiB).
const OUTPUT_BUFFER_BYTES: usize = 16 * 1024;

/// A response header's value as text; `None` when absent or not text.
pub(crate) fn header_text(headers: &ureq::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Builds the agent for one attempt against `url`. `aborted` is the round trip's abort flag:
/// the connector and resolver give up within [`ABORT_POLL`] once it is set; everything later
/// is interrupted by `Agent::shutdown`.
pub(crate) fn agent(url: &str, aborted: Arc<AtomicBool>) -> Agent {
    agent_with_timeout(url, aborted, None)
}

/// Like [`agent`], with a bound on the whole request (`None`: none beyond connect and name
/// lookup), for short JSON requests that must never hang a caller.
pub(crate) fn agent_with_timeout(
    url: &str,
    aborted: Arc<AtomicBool>,
    timeout: Option<Duration>,
) -> Agent {
    build(
        url,
        aborted,
        timeout,
        (INPUT_BUFFER_BYTES, OUTPUT_BUFFER_BYTES),
    )
}

/// The agent, with `(input, output)` buffer sizes.
fn build(
    url: &str,
    aborted: Arc<AtomicBool>,
    timeout: Option<Duration>,
    (input, output): (usize, usize),
) -> Agent {
    let proxy = proxy_for(url);
    // The CA bundles are read (once) only when TLS can happen: plain-HTTP providers never pay
    // for them.
    let needs_tls = url.starts_with("https://")
        || proxy
            .as_ref()
            .is_some_and(|p| p.protocol() == ureq::ProxyProtocol::Https);
    let mut builder = Agent::config_builder()
        .timeout_global(timeout)
        .http_status_as_error(false)
        .proxy(proxy)
        // A POST is never silently re-sent elsewhere.
        .max_redirects(0)
        // One attempt, one connection: nothing is reused, so nothing stale is.
        .max_idle_connections(0)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_resolve(Some(RESOLVE_TIMEOUT))
        .input_buffer_size(input)
        .max_response_header_size(input)
        .output_buffer_size(output);
    if needs_tls {
        builder = builder.tls_config(super::tls::config());
    }
    let config = builder.build();
    let connector = ()
        .chain(ConnectProxyConnector::default())
        .chain(AbortableTcpConnector {
            aborted: aborted.clone(),
        })
        .chain(SharedTls);
    Agent::with_parts(config, connector, AbortableResolver { aborted })
}

/// The environment's proxy for `url` (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, any
/// protocol), `None` for loopback hosts; `NO_PROXY` is left to the caller
/// (`ureq::Proxy::is_no_proxy`).
pub(crate) fn env_proxy(url: &str) -> Option<ureq::Proxy> {
    if super::request::is_loopback_url(url) {
        return None;
    }
    ureq::Proxy::try_from_env()
}

fn proxy_for(url: &str) -> Option<ureq::Proxy> {
    let proxy = env_proxy(url)?;
    match proxy.protocol() {
        ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https => Some(proxy),
        _ => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                crate::log::warn("socks proxies are not supported; model requests go direct")
            });
            None
        }
    }
}

fn aborted_error() -> ureq::Error {
    ureq::Error::Io(io::Error::new(
        io::ErrorKind::Interrupted,
        "model request aborted",
    ))
}

/// rustls, with its client config (root store, crypto provider) built once per process rather
/// than once per agent.
#[derive(Debug)]
struct SharedTls;

static TLS: LazyLock<RustlsConnector> = LazyLock::new(RustlsConnector::default);

impl<In: Transport> Connector<In> for SharedTls {
    type Out = <RustlsConnector as Connector<In>>::Out;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        TLS.connect(details, chained)
    }
}

/// Name resolution that returns as soon as the round trip is aborted. IP literals are parsed
/// inline; names are looked up on a helper thread (`getaddrinfo` cannot be interrupted), which
/// finishes on its own and is then dropped.
#[derive(Debug)]
struct AbortableResolver {
    aborted: Arc<AtomicBool>,
}

impl Resolver for AbortableResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let is_literal = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .is_some_and(|h| h.parse::<IpAddr>().is_ok());
        if is_literal {
            return DefaultResolver::default().resolve(uri, config, NextTimeout::default());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (uri_owned, config_owned) = (uri.clone(), config.clone());
        std::thread::Builder::new()
            .name("model-dns".into())
            .spawn(move || {
                let result = DefaultResolver::default().resolve(
                    &uri_owned,
                    &config_owned,
                    NextTimeout::default(),
                );
                let _ = tx.send(result);
            })
            .map_err(ureq::Error::Io)?;
        let deadline = timeout.not_zero().map(|t| Instant::now() + *t);
        loop {
            if self.aborted.load(Ordering::SeqCst) {
                return Err(aborted_error());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ureq::Error::Timeout(timeout.reason));
            }
            match rx.recv_timeout(ABORT_POLL) {
                Ok(result) => return result,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(ureq::Error::HostNotFound);
                }
            }
        }
    }
}

/// Opens the TCP connection with a non-blocking `connect` polled in [`ABORT_POLL`] slices, so
/// an abort ends a connect to an unresponsive host at once; the socket is registered with the
/// agent's shutdown right after connecting (before TLS), like ureq's own connector does.
#[derive(Debug)]
struct AbortableTcpConnector {
    aborted: Arc<AtomicBool>,
}

impl<In: Transport> Connector<In> for AbortableTcpConnector {
    type Out = Either<In, SocketTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(transport) = chained {
            // A CONNECT proxy tunnel already made the connection.
            return Ok(Some(Either::A(transport)));
        }
        let deadline = details.timeout.not_zero().map(|t| Instant::now() + *t);
        let mut last_err = None;
        let mut connected = None;
        for addr in details.addrs.iter() {
            match crate::platform::connect_abortable(addr, deadline, &self.aborted, ABORT_POLL) {
                Ok(stream) => {
                    connected = Some(stream);
                    break;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                    return Err(aborted_error());
                }
                Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                    return Err(ureq::Error::Timeout(details.timeout.reason));
                }
                Err(err) => last_err = Some(err),
            }
        }
        let stream = match connected {
            Some(stream) => stream,
            None => {
                return Err(ureq::Error::Io(last_err.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::ConnectionRefused, "no address to connect to")
                })));
            }
        };
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let transport = SocketTransport {
            stream: Arc::new(stream),
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            read_timeout: None,
            write_timeout: None,
            aborted: self.aborted.clone(),
        };
        let handle: Weak<dyn ShutdownHandle> = Arc::downgrade(&transport.stream) as _;
        (details.register_shutdown)(handle)?;
        Ok(Some(Either::B(transport)))
    }
}

/// HTTP/1.1 over a plain TCP socket (what ureq's own `TcpTransport` does, which it does not
/// let other connectors build). The socket is shared with the shutdown handle, so an abort
/// wakes blocked reads and writes.
struct SocketTransport {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// The round trip's abort flag, for systems where shutting the socket down does not wake a
    /// blocked read ([`crate::platform::SHUTDOWN_WAKES_BLOCKED_READS`]).
    aborted: Arc<AtomicBool>,
}

impl fmt::Debug for SocketTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// The timeout to put on the socket: `None` (block) when nothing must happen.
fn io_timeout(timeout: &NextTimeout) -> Result<Option<Duration>, ureq::Error> {
    if timeout.after.is_zero() {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|t| *t))
}

fn map_io(err: io::Error, timeout: &NextTimeout) -> ureq::Error {
    match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ureq::Error::Timeout(timeout.reason),
        _ => ureq::Error::Io(err),
    }
}

impl Transport for SocketTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let wanted = io_timeout(&timeout)?;
        if wanted != self.write_timeout {
            self.stream.set_write_timeout(wanted)?;
            self.write_timeout = wanted;
        }
        let output = &self.buffers.output()[..amount];
        (&*self.stream)
            .write_all(output)
            .map_err(|e| map_io(e, &timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let wanted = io_timeout(&timeout)?;
        let deadline = wanted.map(|w| Instant::now() + w);
        // Where a shutdown does not wake a blocked read (Windows), read in short slices and
        // look at the abort flag between them.
        let sliced = !crate::platform::SHUTDOWN_WAKES_BLOCKED_READS;
        let amount = loop {
            let slice = if sliced {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                Some(left.map_or(ABORT_POLL_READ, |l| l.clamp(ABORT_POLL, ABORT_POLL_READ)))
            } else {
                wanted
            };
            if slice != self.read_timeout {
                self.stream.set_read_timeout(slice)?;
                self.read_timeout = slice;
            }
            let input = self.buffers.input_append_buf();
            match (&*self.stream).read(input) {
                // Without a timeout a signal must not end the read; with one, the kernel
                // restarts nothing either, and the budget is at most slightly extended.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if sliced
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                {
                    if self.aborted.load(Ordering::SeqCst) {
                        return Err(aborted_error());
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(map_io(e, &timeout));
                    }
                }
                result => break result.map_err(|e| map_io(e, &timeout))?,
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // Open and idle: a non-blocking read would block. Data or EOF means unusable.
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let idle = matches!(
            (&*self.stream).read(&mut byte),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        );
        self.stream.set_nonblocking(false).is_ok() && idle
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, TcpListener};

    #[test]
    fn connects_and_reports_refusal() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let flag = AtomicBool::new(false);
        let mut stream =
            crate::platform::connect_abortable(&addr, None, &flag, ABORT_POLL).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        stream.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        drop(listener);
        let err = crate::platform::connect_abortable(&addr, None, &flag, ABORT_POLL).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }

    #[test]
    fn connects_over_ipv6_loopback_when_available() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no ipv6 loopback");
            return;
        };
        let addr = listener.local_addr().unwrap();
        let stream =
            crate::platform::connect_abortable(&addr, None, &AtomicBool::new(false), ABORT_POLL)
                .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);
    }

    #[test]
    fn an_aborted_flag_stops_a_connect_in_progress() {
        // 192.0.2.0/24 (TEST-NET-1) is never routed: the connect either hangs (SYN without an
        // answer) or fails at once with "unreachable" where there is no route at all. Either
        // way it must return within a few poll slices of the abort.
        let addr: SocketAddr = "192.0.2.1:9".parse().unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let setter = {
            let flag = flag.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                flag.store(true, Ordering::SeqCst);
            })
        };
        let started = Instant::now();
        let result = crate::platform::connect_abortable(
            &addr,
            Some(Instant::now() + Duration::from_secs(20)),
            &flag,
            ABORT_POLL,
        );
        let elapsed = started.elapsed();
        setter.join().unwrap();
        assert!(result.is_err(), "connected to TEST-NET-1?");
        assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    }

    #[test]
    fn loopback_requests_bypass_env_proxies() {
        assert!(proxy_for("http://127.0.0.1:1/v1/responses").is_none());
        assert!(proxy_for("http://localhost:1/v1/responses").is_none());
    }
}
