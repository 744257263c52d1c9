//! HTTP/1.1 framing of one exchange against a loopback peer that answers with scripted bytes,
//! written in pieces: every body framing, heads split across reads, early ends.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::*;
use crate::platform::{PollEntry, poll_sockets};

/// Records what the exchange hands over.
#[derive(Default)]
struct Record {
    status: Option<u16>,
    body: Vec<u8>,
    /// Answer `Done` right after the head.
    head_only: bool,
}

impl Sink for Record {
    fn head(&mut self, head: &Head<'_>) -> Result<Flow, McpError> {
        self.status = Some(head.status);
        Ok(if self.head_only {
            Flow::Done
        } else {
            Flow::More
        })
    }
    fn body(&mut self, bytes: &[u8]) -> Result<Flow, McpError> {
        self.body.extend_from_slice(bytes);
        Ok(Flow::More)
    }
}

/// Serves one connection: reads the request (until its body is in), then writes `pieces`
/// with a pause between them, then closes (unless `hold`). Returns the URL and the request.
fn peer(pieces: Vec<Vec<u8>>, hold: bool) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.ends_with(b"{\"x\":1}") && !request.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        for piece in pieces {
            if stream.write_all(&piece).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if hold {
            std::thread::sleep(Duration::from_secs(2));
        }
        request
    });
    (url, handle)
}

/// Drives an exchange to its end (bounded), as the engine does.
fn run(url: &str, sink: &mut Record) -> Result<(), McpError> {
    let mut head = RequestHead::new("POST", url)?;
    head.header("content-type", "application/json")?;
    let mut exchange = Exchange::start(url, head, Some(b"{\"x\":1}"))?;
    let mut read_buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut again = true;
    while Instant::now() < deadline {
        if !again {
            let (socket, interest) = exchange.interest().expect("an IP literal needs no lookup");
            let mut entries = [PollEntry::new(socket, interest.read, interest.write)];
            poll_sockets(&mut entries, Some(Duration::from_millis(100))).unwrap();
        }
        match exchange.drive(&mut read_buf, sink)? {
            Drive::Done => return Ok(()),
            Drive::Again => again = true,
            Drive::Waiting => again = false,
        }
    }
    panic!("the exchange did not end");
}

fn bytes_of(pieces: &[&str]) -> Vec<Vec<u8>> {
    pieces.iter().map(|p| p.as_bytes().to_vec()).collect()
}

#[test]
fn every_body_framing_is_read_whole_even_in_small_pieces() {
    let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    let one_byte_at_a_time: Vec<String> = chunked.chars().map(String::from).collect();
    let cases: Vec<(&str, Vec<Vec<u8>>, u16, &str)> = vec![
        (
            "content-length, one piece",
            bytes_of(&["HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"]),
            200,
            "hello",
        ),
        (
            "content-length, head split mid-line",
            bytes_of(&[
                "HTTP/1.1 200 O",
                "K\r\ncontent-le",
                "ngth: 5\r\n\r",
                "\nhel",
                "lo",
            ]),
            200,
            "hello",
        ),
        (
            "chunked, one byte at a time",
            one_byte_at_a_time
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect(),
            200,
            "hello, world",
        ),
        (
            "chunked with extensions, upper-case sizes and trailers",
            bytes_of(&[
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "A;name=value\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n",
            ]),
            200,
            "0123456789",
        ),
        (
            "until the connection closes",
            bytes_of(&["HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the ", "end"]),
            200,
            "to the end",
        ),
        (
            "an informational response first",
            bytes_of(&[
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok",
            ]),
            202,
            "ok",
        ),
        (
            "no body",
            bytes_of(&["HTTP/1.1 204 No Content\r\n\r\n"]),
            204,
            "",
        ),
        (
            "an error status with its text",
            bytes_of(&["HTTP/1.1 500 Oops\r\ncontent-length: 4\r\n\r\nboom"]),
            500,
            "boom",
        ),
    ];
    for (name, pieces, status, body) in cases {
        let (url, server) = peer(pieces, false);
        let mut record = Record::default();
        run(&url, &mut record).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(record.status, Some(status), "{name}");
        assert_eq!(String::from_utf8_lossy(&record.body), body, "{name}");
        let request = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            request.starts_with("POST /mcp HTTP/1.1\r\n"),
            "{name}: {request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.contains("\r\ncontent-length: 7\r\n"),
            "{name}: {request}"
        );
        assert!(lower.contains("\r\nhost: 127.0.0.1:"), "{name}: {request}");
        assert!(request.ends_with("\r\n\r\n{\"x\":1}"), "{name}: {request}");
    }
}

#[test]
fn cut_and_oversized_answers_are_errors() {
    let huge_head = format!(
        "HTTP/1.1 200 OK\r\n{}",
        "x-filler: 0123456789012345678901234567890123456789\r\n".repeat(2000)
    );
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        (
            "closed inside a content-length body",
            bytes_of(&["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhal"]),
            "closed the connection before the answer ended",
        ),
        (
            "closed inside the head",
            bytes_of(&["HTTP/1.1 200 OK\r\ncontent-"]),
            "closed the connection before the answer ended",
        ),
        ("a head without end", vec![huge_head.into_bytes()], "head"),
        (
            "a chunk size that is not hexadecimal",
            bytes_of(&["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"]),
            "bad chunked answer",
        ),
        (
            "a chunk without its line end",
            bytes_of(&["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabXY"]),
            "bad chunked answer",
        ),
        (
            "a content-length that is not a number",
            bytes_of(&["HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n"]),
            "bad content-length",
        ),
        (
            "not HTTP",
            bytes_of(&["SSH-2.0-OpenSSH_9.6\r\n\r\n"]),
            "not valid HTTP",
        ),
    ];
    for (name, pieces, wanted) in cases {
        let (url, server) = peer(pieces, false);
        let error = run(&url, &mut Record::default())
            .expect_err(name)
            .to_string();
        assert!(error.contains(wanted), "{name}: {error}");
        let _ = server.join();
    }
}

#[test]
fn a_sink_that_wants_only_the_head_ends_the_exchange_without_the_body() {
    // The peer never finishes its body: the exchange still ends at once.
    let (url, server) = peer(
        bytes_of(&["HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nab"]),
        true,
    );
    let mut record = Record {
        head_only: true,
        ..Record::default()
    };
    let started = Instant::now();
    run(&url, &mut record).unwrap();
    assert_eq!(record.status, Some(200));
    assert!(record.body.is_empty());
    assert!(started.elapsed() < Duration::from_secs(2));
    let _ = server.join();
}

#[test]
fn a_refused_connection_names_the_url() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let error = run(&url, &mut Record::default()).unwrap_err().to_string();
    assert!(error.contains(&url), "{error}");
}

#[test]
fn request_heads_name_the_path_and_host_and_refuse_what_could_smuggle_headers() {
    let cases = [
        (
            "http://127.0.0.1:8000/mcp",
            "GET /mcp HTTP/1.1\r\nhost: 127.0.0.1:8000\r\n",
        ),
        (
            "https://example.com",
            "GET / HTTP/1.1\r\nhost: example.com\r\n",
        ),
        (
            "http://h/a/b?x=1&y=2",
            "GET /a/b?x=1&y=2 HTTP/1.1\r\nhost: h\r\n",
        ),
        ("http://h?x=1", "GET /?x=1 HTTP/1.1\r\nhost: h\r\n"),
        ("http://user:pw@h:81/p", "GET /p HTTP/1.1\r\nhost: h:81\r\n"),
        ("http://[::1]:9/p", "GET /p HTTP/1.1\r\nhost: [::1]:9\r\n"),
    ];
    for (url, wanted) in cases {
        let head = RequestHead::new("GET", url).unwrap().finish(None);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            format!("{wanted}\r\n"),
            "{url}"
        );
    }
    for url in ["ftp://h/p", "http:///p", "127.0.0.1/mcp", "http://h/p#frag"] {
        assert!(RequestHead::new("GET", url).is_err(), "{url}");
    }
    let mut head = RequestHead::new("POST", "http://h/p").unwrap();
    head.header("x-ok", "a value\twith tab and ünïcode")
        .unwrap();
    for (name, value) in [
        ("x-a", "line\r\nx-injected: 1"),
        ("x-b", "nul\0"),
        ("bad name", "v"),
        ("", "v"),
        ("x:c", "v"),
    ] {
        assert!(head.header(name, value).is_err(), "{name:?}: {value:?}");
    }
    let bytes = head.finish(Some(b"{}"));
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .ends_with("x-ok: a value\twith tab and ünïcode\r\ncontent-length: 2\r\n\r\n{}")
    );
}

#[test]
fn a_connection_counts_as_connecting_until_established_and_not_after() {
    // A peer that takes the TCP connection but never answers the TLS handshake.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/mcp", listener.local_addr().unwrap());
    let silent = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        drop(stream);
    });
    let head = RequestHead::new("GET", &url).unwrap();
    let mut exchange = Exchange::start(&url, head, None).unwrap();
    let started = Instant::now();
    let deadline = exchange.connect_deadline().expect("connecting");
    assert!(deadline > started + CONNECT_TIMEOUT - Duration::from_secs(1));
    let mut buf = [0u8; 64];
    for _ in 0..20 {
        let _ = exchange.drive(&mut buf, &mut Record::default());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        exchange.connect_deadline(),
        Some(deadline),
        "the handshake never ended"
    );
    assert!(exchange.connect_timed_out().to_string().contains(&url));
    let _ = silent.join();

    // Once established, no connect deadline is left.
    let (url, server) = peer(
        bytes_of(&["HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]),
        false,
    );
    let mut head = RequestHead::new("POST", &url).unwrap();
    head.header("x", "1").unwrap();
    let mut exchange = Exchange::start(&url, head, Some(b"{\"x\":1}")).unwrap();
    let mut entries = [PollEntry::new(exchange.interest().unwrap().0, false, true)];
    poll_sockets(&mut entries, Some(Duration::from_secs(5))).unwrap();
    let _ = exchange.drive(&mut buf, &mut Record::default());
    assert_eq!(exchange.connect_deadline(), None);
    let _ = server.join();
}
