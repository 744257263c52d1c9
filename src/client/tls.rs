//! Which certificate authorities HTTPS trusts, like a desktop tool behind a corporate proxy:
//! the system's CA bundle (the first of the usual PEM locations, or `SSL_CERT_FILE` when set),
//! plus the PEM bundle named by `CODEX_CA_CERTIFICATE` (a private or proxy CA). When neither
//! yields a certificate (e.g. Windows, whose store is not a file), the bundled Mozilla roots
//! are used. Read once per process; an unreadable file is named in one warning and skipped.
//! The same roots serve ureq's requests ([`config`]) and the connections we drive ourselves
//! with rustls ([`client_config`]).

use std::io;
use std::sync::{Arc, LazyLock};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Extra CA bundle (PEM), added to the system's roots.
pub const CA_CERTIFICATE_ENV: &str = "CODEX_CA_CERTIFICATE";
/// OpenSSL's variable naming the system bundle (PEM); replaces the usual locations.
pub const SSL_CERT_FILE_ENV: &str = "SSL_CERT_FILE";

/// Where distributions keep the system CA bundle, first match wins.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Arch, Alpine, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL, CentOS
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7+
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/pki/tls/cacert.pem",            // OpenELEC
    "/etc/ssl/cert.pem",                  // macOS, FreeBSD, OpenBSD, Alpine
];

/// The TLS settings of every HTTPS request ureq makes (agent-level, built once).
pub(crate) fn config() -> TlsConfig {
    static CONFIG: LazyLock<TlsConfig> =
        LazyLock::new(|| TlsConfig::builder().root_certs(roots().clone()).build());
    CONFIG.clone()
}

/// The rustls settings of connections we drive ourselves (`client::nonblocking`): the same
/// roots as [`config`], ring as the crypto provider (as ureq uses), TLS 1.2 and 1.3, ALPN
/// `http/1.1`. Built once; an error (no usable protocol version) is kept and returned again.
pub(crate) fn client_config() -> io::Result<Arc<ClientConfig>> {
    static CONFIG: LazyLock<Result<Arc<ClientConfig>, String>> =
        LazyLock::new(|| client_config_from(roots()).map_err(|e| e.to_string()));
    CONFIG.clone().map_err(io::Error::other)
}

/// A rustls client config trusting `roots` (see [`client_config`]).
pub(super) fn client_config_from(roots: &RootCerts) -> io::Result<Arc<ClientConfig>> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::Specific(certs) => {
            store.add_parsable_certificates(certs.iter().map(|c| CertificateDer::from(c.der())));
        }
        _ => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| io::Error::other(format!("tls settings: {e}")))?
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The root set of this process (read once, on first use).
fn roots() -> &'static RootCerts {
    static ROOTS: LazyLock<RootCerts> =
        LazyLock::new(|| roots_from(&|name| std::env::var(name).ok(), SYSTEM_BUNDLES));
    &ROOTS
}

/// The root set for `env` and the candidate system bundles.
fn roots_from(env: &dyn Fn(&str) -> Option<String>, system: &[&str]) -> RootCerts {
    let nonempty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let mut certs = Vec::new();
    let system_file = match nonempty(SSL_CERT_FILE_ENV) {
        Some(path) => Some(path),
        None => system
            .iter()
            .find(|p| std::path::Path::new(p).is_file())
            .map(|p| p.to_string()),
    };
    if let Some(path) = system_file {
        certs.extend(read_bundle(&path));
    }
    if let Some(path) = nonempty(CA_CERTIFICATE_ENV) {
        certs.extend(read_bundle(&path));
    }
    if certs.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::Specific(Arc::new(certs))
    }
}

/// The certificates of one PEM bundle; problems are logged (naming the file) and skipped.
pub(super) fn read_bundle(path: &str) -> Vec<Certificate<'static>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            crate::log::warn(&format!("cannot read CA bundle {path}: {e}"));
            return Vec::new();
        }
    };
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&bytes)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        crate::log::warn(&format!(
            "CA bundle {path} holds no PEM certificate; ignoring it"
        ));
    }
    certs
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const CA: &str = include_str!("../../tests/fixtures/tls/ca.pem");

    fn count(roots: &RootCerts) -> Option<usize> {
        match roots {
            RootCerts::Specific(certs) => Some(certs.len()),
            _ => None,
        }
    }

    #[test]
    fn roots_from_system_bundle_env_and_fallback() {
        let dir = std::env::temp_dir().join(format!("codex-lite-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, CA).unwrap();
        let two = dir.join("two.pem");
        std::fs::write(&two, format!("{CA}{CA}")).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let (ca, two, junk) = (
            ca.display().to_string(),
            two.display().to_string(),
            junk.display().to_string(),
        );
        let missing = dir.join("missing.pem").display().to_string();
        struct Case<'a> {
            name: &'a str,
            ssl_cert_file: Option<&'a str>,
            codex_ca: Option<&'a str>,
            system: Vec<&'a str>,
            want: Option<usize>,
        }
        let cases = [
            Case {
                name: "nothing anywhere: bundled web roots",
                ssl_cert_file: None,
                codex_ca: None,
                system: vec![missing.as_str()],
                want: None,
            },
            Case {
                name: "system bundle only",
                ssl_cert_file: None,
                codex_ca: None,
                system: vec![missing.as_str(), two.as_str()],
                want: Some(2),
            },
            Case {
                name: "system bundle plus CODEX_CA_CERTIFICATE",
                ssl_cert_file: None,
                codex_ca: Some(ca.as_str()),
                system: vec![two.as_str()],
                want: Some(3),
            },
            Case {
                name: "SSL_CERT_FILE replaces the system locations",
                ssl_cert_file: Some(ca.as_str()),
                codex_ca: None,
                system: vec![two.as_str()],
                want: Some(1),
            },
            Case {
                name: "unreadable and empty bundles are skipped",
                ssl_cert_file: Some(junk.as_str()),
                codex_ca: Some(missing.as_str()),
                system: vec![],
                want: None,
            },
        ];
        for case in cases {
            let env = |name: &str| match name {
                SSL_CERT_FILE_ENV => case.ssl_cert_file.map(str::to_string),
                CA_CERTIFICATE_ENV => case.codex_ca.map(str::to_string),
                _ => None,
            };
            assert_eq!(
                count(&roots_from(&env, &case.system)),
                case.want,
                "{}",
                case.name
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
