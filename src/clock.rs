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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_moves_time() {
        let c = SystemClock::new();
        let a = c.unix();
        c.advance(3600);
        assert!(c.unix() >= a + 3600);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
