//! The non-blocking connection over TLS against a loopback rustls server with the test
//! certificate: bytes both ways and the end seen (with and without close_notify), untrusted and
//! mismatched certificates refused, a large write completed in parts.

use super::*;

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
pub(super) fn tls_client_config(trust_test_ca: bool) -> Arc<ClientConfig> {
    let roots = match trust_test_ca {
        true => {
            let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
            ureq::tls::RootCerts::Specific(Arc::new(crate::client::tls::read_bundle(ca)))
        }
        false => ureq::tls::RootCerts::WebPki,
    };
    crate::client::tls::client_config_from(&roots).unwrap()
}

/// Runs `serve` over TLS on the next connection to `listener`; the handshake's failure (if
/// any) is returned instead.
pub(super) fn serve_tls(
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
