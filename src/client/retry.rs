//! How long to wait before a request-level retry (model-api.md §5): exponential backoff from
//! a base delay with ±10 % jitter, or what a 429's `Retry-After` / `retry-after-ms` asks for.
//! Pure functions plus a tiny xorshift generator (no `rand` crate for one jitter factor).

use std::time::Duration;

/// First backoff delay; each further retry doubles it.
pub(super) const BASE_DELAY: Duration = Duration::from_millis(200);
/// No single backoff wait is longer than this (only reached with many configured retries).
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A server's `Retry-After` is honoured up to this; a longer ask waits this long and retries.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A xorshift64* generator for jitter, seeded from the clock, the pid and a counter so
/// concurrent round trips do not retry in lock step. Not for anything secret.
#[derive(Debug, Clone)]
pub(super) struct Jitter(u64);

impl Jitter {
    /// A generator seeded from the time, the process id and a process-wide counter.
    pub(super) fn seeded() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self::from_seed(
            nanos
                ^ (u64::from(std::process::id()) << 32)
                ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
    }

    /// A generator with a fixed seed (tests).
    pub(super) fn from_seed(seed: u64) -> Self {
        // xorshift must not start at 0.
        Self(if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A factor in [0.9, 1.1).
    fn factor(&mut self) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        0.9 + 0.2 * unit
    }
}

/// The wait before retry number `attempt` (1-based): `base · 2^(attempt−1)` times a jitter
/// factor in [0.9, 1.1), at most [`MAX_BACKOFF`].
pub(super) fn backoff(attempt: u64, base: Duration, jitter: &mut Jitter) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30) as i32;
    let secs = base.as_secs_f64() * 2f64.powi(exponent) * jitter.factor();
    Duration::from_secs_f64(secs.min(MAX_BACKOFF.as_secs_f64()))
}

/// The delay a 429 asks for: `retry-after-ms` (milliseconds, may be fractional) wins over
/// `Retry-After` (integer seconds or an HTTP date, relative to `now_unix_secs`). A date in the
/// past is zero; garbage is `None` (the caller falls back to [`backoff`]). Capped at
/// [`MAX_RETRY_AFTER`].
pub(super) fn retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now_unix_secs: i64,
) -> Option<Duration> {
    let from_ms = retry_after_ms.and_then(|v| {
        let ms: f64 = v.trim().parse().ok()?;
        (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms.min(1e9) / 1000.0))
    });
    let delay = from_ms.or_else(|| {
        let value = retry_after?.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
        }
        let at = crate::time::parse_http_date(value)?;
        Some(Duration::from_secs(
            at.saturating_sub(now_unix_secs).max(0) as u64
        ))
    })?;
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
        let cases: &[(Option<&str>, Option<&str>, Option<Duration>)] = &[
            (None, Some("3"), Some(Duration::from_secs(3))),
            (None, Some(" 0 "), Some(Duration::ZERO)),
            (None, Some("99999999999999999999"), Some(MAX_RETRY_AFTER)),
            (None, Some("120"), Some(MAX_RETRY_AFTER)),
            (
                None,
                Some("Sun, 06 Nov 1994 08:49:47 GMT"),
                Some(Duration::from_secs(10)),
            ),
            (
                None,
                Some("Sun, 06 Nov 1994 08:49:00 GMT"),
                Some(Duration::ZERO),
            ),
            (None, Some("-1"), None),
            (None, Some("1.5"), None),
            (None, Some("soon"), None),
            (None, Some(""), None),
            (None, None, None),
            (Some("1500"), Some("9"), Some(Duration::from_millis(1500))),
            (Some("2.5"), None, Some(Duration::from_micros(2500))),
            (Some("junk"), Some("2"), Some(Duration::from_secs(2))),
            (Some("-5"), None, None),
            (Some("NaN"), None, None),
            (Some("1e12"), None, Some(MAX_RETRY_AFTER)),
        ];
        for (ms, header, want) in cases {
            assert_eq!(retry_after(*ms, *header, now), *want, "{ms:?} {header:?}");
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds() {
        let mut jitter = Jitter::seeded();
        for attempt in 1..=8u64 {
            let nominal = 200.0 * 2f64.powi(attempt as i32 - 1);
            for _ in 0..200 {
                let got = backoff(attempt, BASE_DELAY, &mut jitter).as_millis() as f64;
                assert!(
                    got >= (nominal * 0.9).floor() && got < nominal * 1.1,
                    "attempt {attempt}: {got} vs {nominal}"
                );
            }
        }
        assert_eq!(backoff(100, BASE_DELAY, &mut jitter), MAX_BACKOFF);
        assert_eq!(backoff(0, Duration::ZERO, &mut jitter), Duration::ZERO);
    }

    #[test]
    fn jitter_spreads_and_seeds_differ() {
        let mut jitter = Jitter::from_seed(42);
        let factors: Vec<f64> = (0..1000).map(|_| jitter.factor()).collect();
        assert!(factors.iter().all(|f| (0.9..1.1).contains(f)));
        let (lo, hi) = factors
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), f| (lo.min(*f), hi.max(*f)));
        assert!(lo < 0.92 && hi > 1.08, "{lo} {hi}");
        let mut a = Jitter::seeded();
        let mut b = Jitter::seeded();
        assert_ne!(a.next_u64(), b.next_u64());
        assert_ne!(Jitter::from_seed(0).next_u64(), 0);
    }
}
