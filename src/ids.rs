//! Identifiers and randomness: UUID v7 (time-ordered, for threads, turns and items), random
//! bytes from the kernel (`getrandom`), URL-safe random tokens (PKCE, OAuth state).

/// Fills `buf` with bytes from the kernel's CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // getrandom cannot fail on supported kernels once the pool is initialised; fall
            // back to /dev/urandom rather than returning predictable bytes.
            use std::io::Read;
            if let Ok(mut f) = std::fs::File::open("/dev/urandom")
                && f.read_exact(rest).is_ok()
            {
                return;
            }
            panic!("no source of randomness available");
        }
    }
}

/// A new UUID v7 (RFC 9562): 48 bits of unix milliseconds, then random bits, so ids sort by
/// creation time.
pub fn uuid_v7() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes[6..]);
    let ms = crate::time::unix_millis();
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `n` random bytes as unpadded URL-safe base64 (for PKCE verifiers and OAuth `state`).
pub fn random_token(n: usize) -> String {
    use base64::Engine;
    let mut bytes = vec![0u8; n];
    fill_random(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `text` has the shape of a UUID (8-4-4-4-12 hex digits).
pub fn is_uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, len)| p.len() == len && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v7_shape_and_order() {
        let a = uuid_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = uuid_v7();
        assert!(is_uuid(&a) && is_uuid(&b), "{a} {b}");
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert!(a < b);
        assert_ne!(random_token(32), random_token(32));
        assert_eq!(random_token(32).len(), 43);
        for bad in [
            "",
            "x",
            "0000000-0000-0000-0000-000000000000",
            "g0000000-0000-0000-0000-000000000000",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }
}
