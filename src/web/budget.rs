//! The global budget for request bytes held in memory (issue 27, finding 2):
//! every buffered body reserves its size (or its route's limit) before a byte
//! is read and keeps the reservation until its request ends, so however many
//! callers send bodies at once, buffered request bytes stay under
//! `limits.buffered_body_bytes`. A request that finds the budget spent waits
//! up to two seconds, then gets 503 with `Retry-After`. One network (keyed
//! as the other per-address limits are) holds at most
//! `limits.buffered_body_bytes_per_ip` of it, so slow bodies from one place
//! cannot spend the budget for everyone; beyond that it gets 429.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::web::problem::Problem;

const WAIT: Duration = Duration::from_secs(2);

/// Counted in KiB, so the semaphore's permit count stays small.
pub struct BodyBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
    per_net_kib: u32,
    /// KiB held per network; an entry goes when its network holds none.
    per_net: Arc<Mutex<HashMap<String, u32>>>,
    pub refused: AtomicU64,
}

/// A network's share of a reservation, given back when dropped.
struct NetShare {
    map: Arc<Mutex<HashMap<String, u32>>>,
    net: String,
    kib: u32,
}

impl Drop for NetShare {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = m.get_mut(&self.net) {
            *held = held.saturating_sub(self.kib);
            if *held == 0 {
                m.remove(&self.net);
            }
        }
    }
}

/// A reservation; dropping it returns the bytes to the budget.
pub struct Reserved(
    #[allow(dead_code)] OwnedSemaphorePermit,
    #[allow(dead_code)] Option<NetShare>,
);

impl BodyBudget {
    pub fn new(bytes: usize, per_net_bytes: usize) -> Self {
        let total_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX).max(1);
        let per_net_kib = u32::try_from(per_net_bytes / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, total_kib);
        Self {
            kib: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            per_net_kib,
            per_net: Arc::new(Mutex::new(HashMap::new())),
            refused: AtomicU64::new(0),
        }
    }

    /// Reserves `bytes` (waiting briefly), or answers 503.
    pub async fn reserve(&self, bytes: usize) -> Result<Reserved, Problem> {
        self.reserve_for(bytes, None).await
    }

    /// Reserves `bytes` for a request from network `net` (`None`: a trusted
    /// proxy's own address, or unknown), within the network's share: 429 at
    /// once beyond it.
    pub async fn reserve_for(
        &self,
        bytes: usize,
        net: Option<String>,
    ) -> Result<Reserved, Problem> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        let share = match net {
            Some(net) => Some(self.take_share(net, kib)?),
            None => None,
        };
        match tokio::time::timeout(WAIT, Arc::clone(&self.kib).acquire_many_owned(kib)).await {
            Ok(Ok(p)) => Ok(Reserved(p, share)),
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

    fn take_share(&self, net: String, kib: u32) -> Result<NetShare, Problem> {
        let mut m = self.per_net.lock().unwrap_or_else(|p| p.into_inner());
        let held = m.get(&net).copied().unwrap_or(0);
        if held.saturating_add(kib) > self.per_net_kib {
            drop(m);
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                bytes = u64::from(kib) * 1024,
                "request body share of one network spent; refused"
            );
            return Err(Problem {
                retry_after: Some(2),
                ..Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "urn:aura:problem:rate-limited",
                    "Too many requests",
                )
                .detail("too many request bodies in flight from your network; try again shortly")
            });
        }
        m.insert(net.clone(), held + kib);
        Ok(NetShare {
            map: Arc::clone(&self.per_net),
            net,
            kib,
        })
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
        let b = BodyBudget::new(16 * 1024 * 1024, 16 * 1024 * 1024);
        let first = b.reserve(16 * 1024 * 1024).await.unwrap();
        assert_eq!(b.in_use(), 16 * 1024 * 1024);
        let p = b.reserve(1).await.err().unwrap();
        assert_eq!(p.status, 503);
        assert_eq!(p.retry_after, Some(2));
        drop(first);
        assert!(b.reserve(64 * 1024).await.is_ok());
    }

    #[tokio::test]
    async fn one_network_holds_at_most_its_share() {
        let b = BodyBudget::new(16 * 1024 * 1024, 128 * 1024);
        let net = || Some("192.0.2.1/32".to_owned());
        let first = b.reserve_for(64 * 1024, net()).await.unwrap();
        let _second = b.reserve_for(64 * 1024, net()).await.unwrap();
        let p = b.reserve_for(1, net()).await.err().unwrap();
        assert_eq!(p.status, 429);
        // Other networks and exempt callers are not affected.
        assert!(
            b.reserve_for(64 * 1024, Some("192.0.2.2/32".into()))
                .await
                .is_ok()
        );
        assert!(b.reserve_for(64 * 1024, None).await.is_ok());
        drop(first);
        assert!(b.reserve_for(64 * 1024, net()).await.is_ok());
    }
}
