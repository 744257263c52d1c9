//! Identifiers and randomness: UUID v7 (time-ordered, for threads, turns and items), random
//! bytes from the kernel (`getrandom`), URL-safe random tokens (PKCE, OAuth state).

/// Fills `buf` with bytes from the operating system's CSPRNG (`getrandom(2)` on Linux,
/// `/dev/urandom` on other Unixes, `BCryptGenRandom` on Windows). Without any source of
/// randomness there is no safe way to make PKCE verifiers or ids, so that (never seen on a
/// supported system) aborts the process with a message.
pub fn fill_random(buf: &mut [u8]) {
    if let Err(e) = crate::platform::fill_random(buf) {
        crate::log::error(&format!("no source of randomness: {e}"));
        std::process::abort();
    }
}

/// A new UUID v7 (RFC 9562): 48 bits of unix milliseconds, then 74 random bits used as a
/// counter within the millisecond (RFC 9562 §6.2, method 2), so ids from this process sort by
/// creation order even when many are made in the same millisecond or the clock steps back.
pub fn uuid_v7() -> String {
    static LAST: std::sync::Mutex<(u64, u128)> = std::sync::Mutex::new((0, 0));
    const COUNTER_BITS: u32 = 74;
    let mut random = [0u8; 16];
    fill_random(&mut random);
    let fresh = u128::from_be_bytes(random) >> (128 - COUNTER_BITS + 1); // top bit left free
    let now = crate::time::unix_millis() & 0xffff_ffff_ffff;
    let (ms, counter) = {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        let next = if now > last.0 {
            (now, fresh)
        } else {
            // Same (or earlier) millisecond: count up from the last id, by a random step so
            // ids stay hard to guess.
            let step = 1 + (fresh & 0xffff);
            let counter = last.1 + step;
            if counter >> COUNTER_BITS != 0 {
                (last.0 + 1, fresh) // counter exhausted: borrow the next millisecond
            } else {
                (last.0, counter)
            }
        };
        *last = next;
        next
    };
    let rand_a = (counter >> 62) as u16 & 0x0fff;
    let rand_b = (counter as u64) & 0x3fff_ffff_ffff_ffff;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6..8].copy_from_slice(&(0x7000 | rand_a).to_be_bytes());
    bytes[8..].copy_from_slice(&(0x8000_0000_0000_0000 | rand_b).to_be_bytes());
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
        let b = uuid_v7();
        let many: Vec<String> = (0..10_000).map(|_| uuid_v7()).collect();
        assert!(many.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        assert!(many.iter().all(|id| is_uuid(id) && &id[14..15] == "7"));
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
