//! The one source of time. Domain code takes a `Clock` so that expiry, lockouts,
//! retention and schedules can be tested by moving time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// Unix seconds are what the stores keep; the clock hands them out directly.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;

    fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Unix milliseconds, for waits that whole seconds would blur.
    fn unix_ms(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1_000_000) as i64
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time, optionally shifted by a fixed offset. The offset exists so
/// end-to-end tests can start a real server "in the future" (`AURA_TEST_CLOCK_OFFSET`
/// is honoured only in dev/test builds of the configuration).
#[derive(Debug, Default)]
pub struct SystemClock {
    offset_secs: AtomicI64,
}

impl SystemClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_offset(offset_secs: i64) -> Self {
        Self {
            offset_secs: AtomicI64::new(offset_secs),
        }
    }

    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let offset = self.offset_secs.load(Ordering::SeqCst);
        OffsetDateTime::now_utc() + time::Duration::seconds(offset)
    }
}

/// The offset `AURA_TEST_CLOCK_OFFSET` asks for, in seconds: honoured only when
/// `allowed` (dev mode, or a debug build such as the one `cargo test` runs),
/// else 0, so an environment variable cannot move token expiry, lockouts,
/// retention or shredding dates on a release appliance (SECURITY.md).
pub fn test_clock_offset(requested: Option<&str>, allowed: bool) -> i64 {
    if !allowed {
        return 0;
    }
    requested.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// RFC 3339 rendering used in API responses.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// RFC 3339 with milliseconds, as `time` writes it (`.120` is `.12`, no
/// fraction when it is zero), for the years 0–9999; outside them `time`
/// answers (and so does this). Record lists write two per record, and
/// `time`'s general formatter took 4 % of a list request.
pub fn rfc3339_ms(ms: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return String::new();
    };
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
    }
    let mut b = [0u8; 24];
    let mut put = |at: usize, v: u32, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year as u32, 4);
    put(5, u32::from(u8::from(t.month())), 2);
    put(8, u32::from(t.day()), 2);
    put(11, u32::from(t.hour()), 2);
    put(14, u32::from(t.minute()), 2);
    put(17, u32::from(t.second()), 2);
    put(20, u32::from(t.millisecond()), 3);
    b[4] = b'-';
    b[7] = b'-';
    b[10] = b'T';
    b[13] = b':';
    b[16] = b':';
    b[19] = b'.';
    // Trailing zeros of the fraction go, and the dot with them.
    let mut end = 23;
    while end > 20 && b[end - 1] == b'0' {
        end -= 1;
    }
    if end == 20 {
        end = 19;
    }
    b[end] = b'Z';
    String::from_utf8_lossy(&b[..=end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_ms_writes_what_time_writes() {
        let time_says = |ms: i64| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default()
        };
        let mut ms: i64 = -62_167_219_200_000 - 5; // just before year 0
        let mut cases = vec![0, 1, 10, 100, 120, 123, 999, 1000, -1, i64::MIN, i64::MAX];
        cases.extend([253_402_300_799_999, 253_402_300_800_000, 1_795_000_000_000]);
        for _ in 0..20_000 {
            cases.push(ms);
            ms += 31_622_400_017 + 7;
        }
        for ms in cases {
            assert_eq!(rfc3339_ms(ms), time_says(ms), "{ms}");
        }
    }

    #[test]
    fn offset_moves_time() {
        let c = SystemClock::new();
        let a = c.unix();
        c.advance(3600);
        assert!(c.unix() >= a + 3600);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    /// A release build (`cfg!(debug_assertions)` false) without `--dev` passes
    /// `allowed = false`: the variable must not move the clock there.
    #[test]
    fn test_clock_offset_is_ignored_in_a_release_build_without_dev() {
        assert_eq!(test_clock_offset(Some("31536000"), false), 0);
        assert_eq!(test_clock_offset(Some("-7200"), false), 0);
        assert_eq!(test_clock_offset(Some("3600"), true), 3600);
        assert_eq!(test_clock_offset(Some("-7200"), true), -7200);
        assert_eq!(test_clock_offset(Some("soon"), true), 0);
        assert_eq!(test_clock_offset(None, true), 0);
    }
}
