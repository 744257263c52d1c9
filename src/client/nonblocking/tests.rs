//! The non-blocking connection against loopback peers: plain TCP, refusal, IPv6, a name
//! looked up on the helper thread, TLS (good, untrusted and mismatched certificates, a large
//! write), and CONNECT proxies (accepting, through TLS, and asking for credentials). Every
//! wait is a bounded poll loop.

use super::proxy::{self, Proxy};
use super::*;
use crate::platform::{PollEntry, poll_sockets};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a test waits for anything.
const PATIENCE: Duration = Duration::from_secs(20);

/// Waits (bounded) until `conn` can make progress; `write` adds writability to its interest.
fn wait(conn: &Connection, write: bool) {
    match conn.interest() {
        None => std::thread::sleep(Duration::from_millis(10)),
        Some((socket, interest)) => {
            let mut entries = [PollEntry::new(
                socket,
                interest.read,
                interest.write || write,
            )];
            poll_sockets(&mut entries, Some(Duration::from_millis(200))).unwrap();
        }
    }
}

/// Drives `conn` until established.
fn establish(conn: &mut Connection) -> io::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if conn.progress()? {
            return Ok(());
        }
        wait(conn, false);
    }
    panic!("not established within {PATIENCE:?}");
}

/// Writes all of `data`; how many calls took some of it.
fn write_all(conn: &mut Connection, data: &[u8]) -> usize {
    let deadline = Instant::now() + PATIENCE;
    let (mut sent, mut calls) = (0, 0);
    while sent < data.len() {
        assert!(Instant::now() < deadline, "write stuck at {sent} bytes");
        match conn.write(&data[sent..]) {
            Ok(n) => {
                sent += n;
                calls += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.progress().unwrap();
                wait(conn, true);
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    // What rustls still holds goes out on progress.
    while !conn.progress().unwrap() {
        assert!(Instant::now() < deadline, "flush stuck");
        wait(conn, false);
    }
    calls
}

/// Reads until `want` bytes came or the peer closed.
fn read_up_to(conn: &mut Connection, want: usize) -> Vec<u8> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        assert!(
            Instant::now() < deadline,
            "read stuck at {} bytes",
            got.len()
        );
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait(conn, false),
            Err(e) => panic!("read: {e}"),
        }
    }
    got
}

/// Accepts one connection on `listener` and runs `serve` on it (reads bounded by a timeout).
fn serve_one(
    listener: TcpListener,
    serve: impl FnOnce(TcpStream) + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        serve(stream);
    })
}

/// Answers "ping" with "pong", then closes.
fn ping_pong(mut stream: impl Read + Write) {
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    stream.write_all(b"pong").unwrap();
    stream.flush().unwrap();
}

/// Sends "ping", expects "pong" and then the peer's close.
fn exchange(conn: &mut Connection) {
    assert_eq!(write_all(conn, b"ping"), 1);
    assert_eq!(read_up_to(conn, usize::MAX), b"pong");
}

#[test]
fn plain_connections_exchange_bytes_both_ways() {
    for host in ["127.0.0.1", "localhost"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = serve_one(listener, ping_pong);
        let mut conn = Connection::open(&format!("http://{host}:{port}/mcp")).unwrap();
        assert!(
            conn.interest().is_some(),
            "{host}: connecting without a lookup"
        );
        establish(&mut conn).unwrap_or_else(|e| panic!("{host}: {e}"));
        exchange(&mut conn);
        server.join().unwrap();
    }
}

#[test]
fn localhost_falls_back_to_ipv6_when_ipv4_refuses() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no ipv6 loopback");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let server = serve_one(listener, ping_pong);
    let mut conn = Connection::open(&format!("http://localhost:{port}")).unwrap();
    establish(&mut conn).unwrap();
    exchange(&mut conn);
    server.join().unwrap();
}

#[test]
fn a_name_is_looked_up_on_the_helper_thread() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = serve_one(listener, ping_pong);
    // `open` knows localhost without a lookup: ask the resolver thread for it directly.
    let mut conn = Connection {
        host: "localhost".to_string(),
        port,
        stage: Stage::Resolving {
            answer: resolve("localhost".to_string(), port).unwrap(),
            next: None,
        },
        tls: None,
    };
    assert!(conn.interest().is_none(), "no socket while resolving");
    establish(&mut conn).unwrap();
    exchange(&mut conn);
    server.join().unwrap();
}

#[test]
fn addresses_known_without_a_lookup() {
    let v4 = |ip: [u8; 4]| SocketAddr::from((ip, 8080));
    let loopback = Some(vec![
        v4([127, 0, 0, 1]),
        SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 8080)),
    ]);
    let cases = [
        ("10.1.2.3", Some(vec![v4([10, 1, 2, 3])])),
        (
            "::1",
            Some(vec![SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 8080))]),
        ),
        ("localhost", loopback.clone()),
        ("LocalHost.", loopback.clone()),
        ("mcp.localhost", loopback),
        ("localhost.example.com", None),
        ("example.com", None),
    ];
    for (host, want) in cases {
        assert_eq!(known_addresses(host, 8080), want, "{host}");
    }
}

#[test]
fn a_refused_port_is_an_error_naming_the_host() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = match Connection::open(&format!("http://127.0.0.1:{port}")) {
        Ok(mut conn) => establish(&mut conn).unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn ipv6_loopback_connects_when_available() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no ipv6 loopback");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let server = serve_one(listener, ping_pong);
    let mut conn = Connection::open(&format!("http://[::1]:{port}")).unwrap();
    establish(&mut conn).unwrap();
    exchange(&mut conn);
    server.join().unwrap();
}

#[test]
fn origins_are_parsed_with_default_ports() {
    type Origin<'a> = (bool, &'a str, u16);
    let cases: &[(&str, Option<Origin>)] = &[
        ("http://example.com/mcp", Some((false, "example.com", 80))),
        ("https://example.com/mcp", Some((true, "example.com", 443))),
        (
            "https://example.com:8443",
            Some((true, "example.com", 8443)),
        ),
        ("http://[::1]:9/x", Some((false, "::1", 9))),
        ("ftp://example.com/", None),
        ("example.com", None),
        ("http://", None),
    ];
    for (url, want) in cases {
        let got = parse_origin(url).ok();
        let got = got.as_ref().map(|(tls, h, p)| (*tls, h.as_str(), *p));
        assert_eq!(got, *want, "{url}");
    }
}

/// The test CA's server certificate (names `localhost` and 127.0.0.1), ALPN http/1.1.
fn tls_server_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let certs = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A client config trusting the test CA (`true`) or only the bundled Mozilla roots.
fn tls_client_config(trust_test_ca: bool) -> Arc<ClientConfig> {
    let roots = match trust_test_ca {
        true => {
            let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
            ureq::tls::RootCerts::Specific(Arc::new(super::super::tls::read_bundle(ca)))
        }
        false => ureq::tls::RootCerts::WebPki,
    };
    super::super::tls::client_config_from(&roots).unwrap()
}

/// Runs `serve` over TLS on the next connection to `listener`; the handshake's failure (if
/// any) is returned instead.
fn serve_tls(
    listener: TcpListener,
    serve: impl FnOnce(&mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>) + Send + 'static,
) -> JoinHandle<()> {
    serve_one(listener, move |stream| {
        let session = rustls::ServerConnection::new(tls_server_config()).unwrap();
        let mut tls = rustls::StreamOwned::new(session, stream);
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return;
        }
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        serve(&mut tls);
        tls.conn.send_close_notify();
        let _ = tls.conn.complete_io(&mut tls.sock);
    })
}

#[test]
fn tls_exchanges_bytes_and_sees_the_end() {
    // (host, the server closes the socket without close_notify)
    for (host, abrupt) in [
        ("127.0.0.1", false),
        ("localhost", false),
        ("127.0.0.1", true),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = serve_tls(listener, move |tls| {
            ping_pong(&mut *tls);
            if abrupt {
                tls.sock.shutdown(std::net::Shutdown::Both).unwrap();
            }
        });
        let config = Some(tls_client_config(true));
        let mut conn = Connection::open_with(host, port, None, config).unwrap();
        establish(&mut conn).unwrap_or_else(|e| panic!("{host}: {e}"));
        // "pong", then Ok(0) for close_notify and for a bare EOF alike.
        exchange(&mut conn);
        server.join().unwrap();
    }
}

#[test]
fn tls_refuses_untrusted_and_mismatched_certificates() {
    struct Case {
        name: &'static str,
        bind: &'static str,
        host: &'static str,
        trust_test_ca: bool,
        want: &'static str,
    }
    let cases = [
        Case {
            name: "a CA outside the trusted roots",
            bind: "127.0.0.1:0",
            host: "127.0.0.1",
            trust_test_ca: false,
            want: "UnknownIssuer",
        },
        Case {
            name: "a certificate for other names (it names localhost and 127.0.0.1 only)",
            bind: "127.0.0.1:0",
            host: "mcp.localhost",
            trust_test_ca: true,
            want: "not valid for name",
        },
        Case {
            name: "a certificate for other addresses",
            bind: "[::1]:0",
            host: "::1",
            trust_test_ca: true,
            want: "not valid for name",
        },
    ];
    for case in cases {
        let Ok(listener) = TcpListener::bind(case.bind) else {
            eprintln!("skipped: {}: cannot bind {}", case.name, case.bind);
            continue;
        };
        let port = listener.local_addr().unwrap().port();
        let server = serve_tls(listener, |_| panic!("handshake succeeded"));
        let config = Some(tls_client_config(case.trust_test_ca));
        let mut conn = Connection::open_with(case.host, port, None, config).unwrap();
        let err = establish(&mut conn).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(case.want), "{}: {message}", case.name);
        assert!(message.contains(case.host), "{}: {message}", case.name);
        assert!(conn.progress().is_err(), "{}: errors are final", case.name);
        drop(conn);
        server.join().unwrap();
    }
}

#[test]
fn a_two_mib_tls_write_completes_in_parts() {
    const SIZE: usize = 2 << 20;
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let expected = data.clone();
    let server = serve_tls(listener, move |tls| {
        let mut got = vec![0u8; SIZE];
        tls.read_exact(&mut got).unwrap();
        assert!(got == expected, "the bytes arrived changed");
        tls.write_all(b"done").unwrap();
    });
    let config = Some(tls_client_config(true));
    let mut conn = Connection::open_with("127.0.0.1", port, None, config).unwrap();
    establish(&mut conn).unwrap();
    let calls = write_all(&mut conn, &data);
    assert!(calls > 1, "one write took 2 MiB");
    assert_eq!(read_up_to(&mut conn, usize::MAX), b"done");
    server.join().unwrap();
}

/// A CONNECT proxy for one tunnel: sends back the request head it got over `heads`, answers
/// `reply`, and on 2xx splices the client to the port the request named.
fn serve_proxy(
    reply: &'static str,
    heads: crossbeam_channel::Sender<String>,
) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = serve_one(listener, move |mut client| {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            client.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        heads.send(head.clone()).unwrap();
        client.write_all(reply.as_bytes()).unwrap();
        if !reply.starts_with("HTTP/1.1 200") {
            return;
        }
        let target = head.split_whitespace().nth(1).unwrap().to_string();
        let origin = TcpStream::connect(target).unwrap();
        let (mut up_read, mut up_write) =
            (client.try_clone().unwrap(), origin.try_clone().unwrap());
        let upstream = std::thread::spawn(move || {
            let _ = io::copy(&mut up_read, &mut up_write);
            let _ = up_write.shutdown(std::net::Shutdown::Write);
        });
        let (mut down_read, mut down_write) = (origin, client);
        let _ = io::copy(&mut down_read, &mut down_write);
        let _ = down_write.shutdown(std::net::Shutdown::Write);
        upstream.join().unwrap();
    });
    (port, handle)
}

#[test]
fn connect_proxies_tunnel_plain_and_tls() {
    for tls in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin = match tls {
            true => serve_tls(listener, |tls| ping_pong(tls)),
            false => serve_one(listener, ping_pong),
        };
        let (heads_tx, heads) = crossbeam_channel::bounded(1);
        let (proxy_port, proxy) =
            serve_proxy("HTTP/1.1 200 Connection established\r\n\r\n", heads_tx);
        let via = Proxy::new("127.0.0.1", proxy_port, Some("user"), Some("pass"));
        let config = tls.then(|| tls_client_config(true));
        let mut conn = Connection::open_with("localhost", port, Some(via), config).unwrap();
        establish(&mut conn).unwrap_or_else(|e| panic!("tls {tls}: {e}"));
        exchange(&mut conn);
        let head = heads.recv_timeout(PATIENCE).unwrap();
        assert!(
            head.starts_with(&format!("CONNECT localhost:{port} HTTP/1.1\r\n")),
            "{head}"
        );
        // base64("user:pass")
        assert!(
            head.contains("\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n"),
            "{head}"
        );
        drop(conn);
        origin.join().unwrap();
        proxy.join().unwrap();
    }
}

#[test]
fn a_proxy_refusing_the_tunnel_is_a_clear_error() {
    let cases: &[(&str, io::ErrorKind, &str)] = &[
        (
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
            io::ErrorKind::PermissionDenied,
            "requires authentication (HTTP/1.1 407 Proxy Authentication Required)",
        ),
        (
            "HTTP/1.1 403 Forbidden\r\n\r\n",
            io::ErrorKind::ConnectionRefused,
            "refused the tunnel (HTTP/1.1 403 Forbidden)",
        ),
    ];
    for (reply, kind, want) in cases {
        let (heads_tx, heads) = crossbeam_channel::bounded(1);
        let (proxy_port, proxy) = serve_proxy(reply, heads_tx);
        let via = Proxy::new("127.0.0.1", proxy_port, None, None);
        let mut conn = Connection::open_with("example.com", 443, Some(via), None).unwrap();
        let err = establish(&mut conn).unwrap_err();
        assert_eq!(err.kind(), *kind, "{err}");
        let message = err.to_string();
        assert!(message.contains(want), "{message}");
        assert!(
            message.contains(&format!("127.0.0.1:{proxy_port}")),
            "{message}"
        );
        assert!(message.contains("example.com:443"), "{message}");
        assert!(!heads.recv().unwrap().contains("Proxy-Authorization"));
        proxy.join().unwrap();
    }
}

#[test]
fn proxies_are_chosen_by_protocol_and_no_proxy() {
    let url = "https://example.com/mcp";
    let parse = |p: &str| Some(ureq::Proxy::new(p).unwrap());
    let no_proxy = ureq::Proxy::builder(ureq::ProxyProtocol::Http)
        .host("proxy.test")
        .port(3128)
        .no_proxy("example.com")
        .build()
        .ok();
    type Chosen = (&'static str, u16, Option<&'static str>);
    struct Case {
        name: &'static str,
        proxy: Option<ureq::Proxy>,
        want: Result<Option<Chosen>, &'static str>,
    }
    let cases = [
        Case {
            name: "no proxy",
            proxy: None,
            want: Ok(None),
        },
        Case {
            name: "http proxy with credentials",
            proxy: parse("http://user:pass@proxy.test:3128"),
            want: Ok(Some(("proxy.test", 3128, Some("Basic dXNlcjpwYXNz")))),
        },
        Case {
            name: "http proxy without credentials",
            proxy: parse("http://proxy.test:8080"),
            want: Ok(Some(("proxy.test", 8080, None))),
        },
        Case {
            name: "host in NO_PROXY",
            proxy: no_proxy,
            want: Ok(None),
        },
        Case {
            name: "https proxy",
            proxy: parse("https://proxy.test:3129"),
            want: Err("proxy.test:3129 is not supported"),
        },
        Case {
            name: "socks proxy",
            proxy: parse("socks5://proxy.test:1080"),
            want: Err("proxy.test:1080 is not supported"),
        },
    ];
    for case in cases {
        match (proxy::choose(url, case.proxy), case.want) {
            (Ok(got), Ok(want)) => {
                let got = got
                    .as_ref()
                    .map(|p| (p.host.as_str(), p.port, p.authorization.as_deref()));
                assert_eq!(got, want, "{}", case.name);
            }
            (Err(e), Err(want)) => {
                assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{}", case.name);
                assert!(e.to_string().contains(want), "{}: {e}", case.name);
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
        }
    }
    assert!(proxy::from_env("http://127.0.0.1:9/mcp").unwrap().is_none());
}
