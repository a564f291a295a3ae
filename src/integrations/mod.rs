//! Integrations: stored secrets (write-only, rotated with an overlap),
//! outbound webhooks (Standard Webhooks signatures, retries with backoff and
//! jitter, a delivery log, redelivery, an SSRF guard at connect time) and
//! inbound webhooks (signature or token, a 5-minute timestamp window, replays
//! refused, processed asynchronously). See docs/integrations.md.
//!
//! Outbound events come from committed state: `outbox::emit` runs inside the
//! transaction that writes a change's audit entry and queues one delivery per
//! subscribed endpoint there, so an event exists if and only if its change
//! committed. The worker (`worker::spawn`) sends them afterwards.

pub mod fair;
pub mod inbound;
pub mod outbox;
pub mod secrets;
pub mod signing;
pub mod ssrf;
pub mod webhooks;
pub mod worker;

/// The event types an endpoint may subscribe to: the audit actions of
/// records and memberships that become webhook events.
pub const EVENT_TYPES: &[&str] = &[
    "record.created",
    "record.updated",
    "record.restored",
    "record.deleted",
    "record.undeleted",
    "records.imported",
    "member.added",
    "member.role_changed",
    "member.removed",
];

/// Most endpoints one workspace may have.
pub const MAX_ENDPOINTS: i64 = 50;
/// Longest overlap a rotation may ask for.
pub const MAX_OVERLAP_HOURS: u32 = 720;

/// A new id for an integration object.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The overlap a rotation asked for (or the configured default), as the
/// time the previous value stops working; `None` for no overlap.
pub fn previous_until(
    asked: Option<u32>,
    default_hours: u32,
    now: i64,
) -> crate::error::Result<Option<i64>> {
    let hours = asked.unwrap_or(default_hours);
    if hours > MAX_OVERLAP_HOURS {
        return Err(crate::error::Error::field(
            "overlap_hours",
            format!("must be between 0 and {MAX_OVERLAP_HOURS}"),
        ));
    }
    Ok((hours > 0).then(|| now + i64::from(hours) * 3600))
}
