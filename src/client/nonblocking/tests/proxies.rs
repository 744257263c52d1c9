//! The non-blocking connection through CONNECT proxies: plain and TLS tunnels (with
//! credentials), a proxy refusing the tunnel or asking for credentials, and which proxy applies
//! (by protocol, `NO_PROXY`).

use super::over_tls::{serve_tls, tls_client_config};
use super::*;

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
