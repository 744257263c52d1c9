//! The text side of HTTP that the logins need and nothing more: URL percent-encoding (the
//! authorize URL, form bodies), query parsing (the callback), reading one request head from a
//! socket and writing one `Connection: close` response (the callback server).
//!
//! Does not own: sending requests (`oauth.rs` uses ureq), routing (`browser.rs`).

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// Longest request head the callback server reads; a browser's GET with cookies fits easily.
const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// Percent-encodes `text` for a URL query or form value: everything but the RFC 3986
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX` (so a space is `%20`).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0x0f)] as char);
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes a query or form component: `%XX` escapes and `+` as a space, as browsers and
/// `application/x-www-form-urlencoded` do. A `%` not followed by two hex digits stays as is;
/// bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// `k1=v1&k2=v2` with both sides percent-encoded: a query string or a form body.
pub fn encode_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Parses a query string or form body into decoded pairs, in order. Empty segments are
/// skipped; a segment without `=` is a key with an empty value.
pub fn parse_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(segment), String::new()),
        })
        .collect()
}

/// The first value of `key` among `pairs`.
pub fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The start of a request: method, path (no query), raw query (no `?`, no fragment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, `/` when the target has none.
    pub path: String,
    /// The raw query string, empty when absent.
    pub query: String,
}

/// Parses a request line (`GET /auth/callback?code=… HTTP/1.1`) out of `head`; `None` when
/// it is not one. An absolute-form target (`http://host/path`) is reduced to its path.
pub fn parse_request_line(head: &str) -> Option<RequestHead> {
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if method.is_empty() || !version.starts_with("HTTP/") {
        return None;
    }
    let target = target.split('#').next().unwrap_or("");
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => target,
    };
    if !target.starts_with('/') {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Some(RequestHead {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
    })
}

/// Reads from `stream` until the end of the request head (`\r\n\r\n`); the socket's read
/// timeout bounds the wait. Errors when the peer closes early or the head is too long.
pub fn read_request_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the end of the request head",
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // Look for the terminator across the boundary of the previous read too.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some(at) = find(&head[from..], b"\r\n\r\n") {
            head.truncate(from + at);
            return Ok(String::from_utf8_lossy(&head).into_owned());
        }
        if head.len() > MAX_REQUEST_HEAD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too long",
            ));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One response of the callback server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers (the length, `Connection: close` and no-store caching are always sent).
    pub headers: Vec<(String, String)>,
    /// `text/html; charset=utf-8` or `text/plain; charset=utf-8`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    /// An HTML page.
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type: "text/html; charset=utf-8",
            body: body.into(),
        }
    }

    /// A `302 Found` to `location`.
    pub fn redirect(location: &str) -> Self {
        let mut response = Self::text(302, "");
        response
            .headers
            .push(("Location".to_string(), location.to_string()));
        response
    }

    /// Writes the response and closes the write side of `stream`.
    pub fn write_to(&self, stream: &mut TcpStream) -> io::Result<()> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!(
            "Content-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.content_type,
            self.body.len()
        ));
        out.push_str(&self.body);
        stream.write_all(out.as_bytes())?;
        stream.flush()?;
        let _ = stream.shutdown(std::net::Shutdown::Write);
        Ok(())
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Status",
    }
}

/// Escapes text for an HTML page.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_table() {
        for (plain, encoded) in [
            ("", ""),
            ("abcXYZ019-._~", "abcXYZ019-._~"),
            (
                "openid profile email offline_access",
                "openid%20profile%20email%20offline_access",
            ),
            (
                "http://localhost:1455/auth/callback",
                "http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback",
            ),
            ("a+b&c=d/e?f#g", "a%2Bb%26c%3Dd%2Fe%3Ff%23g"),
            ("é", "%C3%A9"),
            ("100%", "100%25"),
        ] {
            assert_eq!(percent_encode(plain), encoded, "{plain}");
            assert_eq!(percent_decode(encoded), plain, "{encoded}");
        }
    }

    #[test]
    fn percent_decoding_table() {
        for (encoded, plain) in [
            ("a+b", "a b"),
            ("a%2bb", "a+b"),
            ("%", "%"),
            ("%4", "%4"),
            ("%zz", "%zz"),
            ("%4g1", "%4g1"),
            ("50%25", "50%"),
            ("%E2%9C%93", "✓"),
            ("%FF", "\u{FFFD}"),
        ] {
            assert_eq!(percent_decode(encoded), plain, "{encoded}");
        }
    }

    #[test]
    fn query_parsing_table() {
        let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        for (query, expected) in [
            ("", owned(&[])),
            (
                "code=abc&state=xyz",
                owned(&[("code", "abc"), ("state", "xyz")]),
            ),
            ("a=1&&b", owned(&[("a", "1"), ("b", "")])),
            ("k=v=w", owned(&[("k", "v=w")])),
            (
                "error=access_denied&error_description=no+way%21",
                owned(&[("error", "access_denied"), ("error_description", "no way!")]),
            ),
            ("state=a&state=b", owned(&[("state", "a"), ("state", "b")])),
        ] {
            assert_eq!(parse_pairs(query), expected, "{query}");
        }
        let pairs = parse_pairs("state=a&state=b");
        assert_eq!(first(&pairs, "state"), Some("a"));
        assert_eq!(first(&pairs, "code"), None);
        let body = encode_pairs(&[("grant_type", "authorization_code"), ("x", "a b&c")]);
        assert_eq!(body, "grant_type=authorization_code&x=a%20b%26c");
        assert_eq!(
            parse_pairs(&body),
            owned(&[("grant_type", "authorization_code"), ("x", "a b&c")])
        );
    }

    #[test]
    fn request_line_table() {
        let head = |m: &str, p: &str, q: &str| {
            Some(RequestHead {
                method: m.into(),
                path: p.into(),
                query: q.into(),
            })
        };
        for (line, expected) in [
            (
                "GET /auth/callback?code=1&state=2 HTTP/1.1\r\nHost: x",
                head("GET", "/auth/callback", "code=1&state=2"),
            ),
            ("GET /success HTTP/1.1", head("GET", "/success", "")),
            ("GET /a?b#frag HTTP/1.0", head("GET", "/a", "b")),
            (
                "GET http://localhost:1455/auth/callback?x=1 HTTP/1.1",
                head("GET", "/auth/callback", "x=1"),
            ),
            ("GET http://localhost:1455 HTTP/1.1", head("GET", "/", "")),
            ("POST / HTTP/1.1", head("POST", "/", "")),
            ("GET / HTTP/1.1 extra", None),
            ("GET /", None),
            ("GET * HTTP/1.1", None),
            ("GET / FTP/1", None),
            ("", None),
        ] {
            assert_eq!(parse_request_line(line), expected, "{line:?}");
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
