//! The non-blocking connection against loopback peers: plain TCP, refusal, IPv6, a name
//! looked up on the helper thread, origins parsed; TLS is `over_tls.rs`'s, CONNECT proxies
//! `proxies.rs`'s, both using the helpers here. Every wait is a bounded poll loop.

use super::proxy::{self, Proxy};
use super::*;
use crate::platform::{PollEntry, poll_sockets};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod over_tls;
mod proxies;

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
fn ipv6_loopback_connects_by_address_and_as_localhost_when_ipv4_refuses() {
    // `localhost` tries 127.0.0.1 first; nothing listens there on this port, so it must
    // fall back to ::1.
    for host in ["[::1]", "localhost"] {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no ipv6 loopback");
            return;
        };
        let port = listener.local_addr().unwrap().port();
        let server = serve_one(listener, ping_pong);
        let mut conn = Connection::open(&format!("http://{host}:{port}")).unwrap();
        establish(&mut conn).unwrap_or_else(|e| panic!("{host}: {e}"));
        exchange(&mut conn);
        server.join().unwrap();
    }
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
