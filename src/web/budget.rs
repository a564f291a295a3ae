//! The global budget for request bytes held in memory (issue 27, finding 2):
//! every buffered body reserves its size (or its route's limit) before a byte
//! is read and keeps the reservation until its request ends, so however many
//! callers send bodies at once, buffered request bytes stay under
//! `limits.buffered_body_bytes`. A request that finds the budget spent waits
//! up to two seconds, then gets 503 with `Retry-After`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use poem::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::web::problem::Problem;

const WAIT: Duration = Duration::from_secs(2);

/// Counted in KiB, so the semaphore's permit count stays small.
pub struct BodyBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
    pub refused: AtomicU64,
}

/// A reservation; dropping it returns the bytes to the budget.
pub struct Reserved(#[allow(dead_code)] OwnedSemaphorePermit);

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        let total_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        Self {
            kib: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            refused: AtomicU64::new(0),
        }
    }

    /// Reserves `bytes` (waiting briefly), or answers 503.
    pub async fn reserve(&self, bytes: usize) -> Result<Reserved, Problem> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        match tokio::time::timeout(WAIT, Arc::clone(&self.kib).acquire_many_owned(kib)).await {
            Ok(Ok(p)) => Ok(Reserved(p)),
            _ => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(bytes, "request body budget spent; refused");
                Err(Problem {
                    retry_after: Some(2),
                    ..Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "urn:aura:problem:busy",
                        "Server busy",
                    )
                    .detail("too many large requests at once; try again shortly")
                })
            }
        }
    }

    /// Bytes reserved right now.
    pub fn in_use(&self) -> u64 {
        u64::from(self.total_kib).saturating_sub(self.kib.available_permits() as u64) * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_past_the_budget_wait_then_get_503() {
        let b = BodyBudget::new(16 * 1024 * 1024);
        let first = b.reserve(16 * 1024 * 1024).await.unwrap();
        assert_eq!(b.in_use(), 16 * 1024 * 1024);
        let p = b.reserve(1).await.err().unwrap();
        assert_eq!(p.status, 503);
        assert_eq!(p.retry_after, Some(2));
        drop(first);
        assert!(b.reserve(64 * 1024).await.is_ok());
    }
}
