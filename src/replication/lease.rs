//! The replica lease: one object, `lease.json`, names the appliance allowed
//! to write the replica (its holder id, kept in `<data_dir>/replica-holder`).
//! It is created and replaced only by conditional writes (S3 `If-None-Match`
//! / `If-Match`; for `file://`, a `flock`ed lock file and a rename), so two
//! appliances never both believe they hold it. A primary renews it every
//! few seconds; one that finds another holder stops shipping and refuses
//! writes (503) at once. `aura replica promote` takes it.

use std::io::Write;
use std::path::Path;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::target::Replica;
use crate::error::{Error, Result};

pub const LEASE: &str = "lease.json";
const HOLDER_FILE: &str = "replica-holder";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub epoch: u64,
    pub renewed_ms: i64,
}

/// This data dir's holder id (random, made once, 0600).
pub fn holder_id(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(HOLDER_FILE);
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_owned();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let mut r = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut r);
    let id = hex::encode(r);
    let mut f = crate::store::create_private_file(&path)?;
    f.write_all(id.as_bytes())?;
    f.sync_all()?;
    crate::dirsync::sync_parent(&path)?;
    Ok(id)
}

pub async fn read(replica: &Replica) -> Result<Option<Lease>> {
    Ok(match replica.get_versioned(LEASE).await? {
        Some((b, _)) => Some(parse(&b)?),
        None => None,
    })
}

fn parse(b: &[u8]) -> Result<Lease> {
    serde_json::from_slice(b)
        .map_err(|e| Error::internal(format!("the replica lease is unreadable: {e}")))
}

/// What a holder learns when it renews.
pub enum Held {
    Mine(Lease),
    TakenBy(Lease),
}

/// Renews the lease for `holder` (creating it when absent); reports another
/// holder instead of overwriting it.
pub async fn renew(replica: &Replica, holder: &str, now_ms: i64) -> Result<Held> {
    transact(replica, now_ms, |cur| match cur {
        Some(l) if l.holder != holder => Err(l.clone()),
        Some(l) => Ok(Lease {
            holder: holder.to_owned(),
            epoch: l.epoch,
            renewed_ms: now_ms,
        }),
        None => Ok(Lease {
            holder: holder.to_owned(),
            epoch: 1,
            renewed_ms: now_ms,
        }),
    })
    .await
}

/// Takes the lease for `holder` whoever holds it (a promotion): the epoch
/// goes up by one. Returns the new lease and the previous one.
pub async fn take(replica: &Replica, holder: &str, now_ms: i64) -> Result<(Lease, Option<Lease>)> {
    let before = read(replica).await?;
    match transact(replica, now_ms, |cur| {
        Ok(Lease {
            holder: holder.to_owned(),
            epoch: cur.map(|l| l.epoch + 1).unwrap_or(1),
            renewed_ms: now_ms,
        })
    })
    .await?
    {
        Held::Mine(l) => Ok((l, before)),
        Held::TakenBy(l) => Err(Error::Usage(format!(
            "the lease went to {} while promoting; try again",
            l.holder
        ))),
    }
}

/// Read, decide, conditional write; retried a few times on a lost race.
async fn transact(
    replica: &Replica,
    now_ms: i64,
    decide: impl Fn(Option<&Lease>) -> std::result::Result<Lease, Lease>,
) -> Result<Held> {
    if let Some(dir) = &replica.local_root {
        // A few small file operations: done in place.
        return file_transact(dir, now_ms, &decide);
    }
    for _ in 0..5 {
        let cur = replica.get_versioned(LEASE).await?;
        let (lease, version) = match &cur {
            Some((b, v)) => (Some(parse(b)?), Some(v.clone())),
            None => (None, None),
        };
        let next = match decide(lease.as_ref()) {
            Ok(n) => n,
            Err(other) => return Ok(Held::TakenBy(other)),
        };
        if replica
            .put_if(LEASE, serde_json::to_vec(&next)?, version)
            .await?
        {
            return Ok(Held::Mine(next));
        }
    }
    Err(Error::internal(
        "the replica lease kept changing; retrying later",
    ))
}

/// `file://`: an exclusive `flock` on `lease.json.lock` serialises writers
/// (the kernel releases it when its holder exits, even under `kill -9`, so
/// a crashed writer never blocks a promote); the new lease is written to a
/// temporary file, synced and renamed over the old one.
fn file_transact(
    dir: &Path,
    now_ms: i64,
    decide: &impl Fn(Option<&Lease>) -> std::result::Result<Lease, Lease>,
) -> Result<Held> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(format!("{LEASE}.lock")))?;
    let mut tries = 0;
    let _lock = loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(held) => break held,
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                file = f;
                tries += 1;
                if tries > 500 {
                    return Err(Error::internal("the replica lease lock stayed taken"));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err((_, e)) => return Err(std::io::Error::from(e).into()),
        }
    };
    let path = dir.join(LEASE);
    let cur = match std::fs::read(&path) {
        Ok(b) => Some(parse(&b)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let next = match decide(cur.as_ref()) {
        Ok(n) => n,
        Err(other) => return Ok(Held::TakenBy(other)),
    };
    let tmp = dir.join(format!(".{LEASE}.{now_ms}.tmp"));
    {
        let mut f = crate::store::create_private_file(&tmp)?;
        f.write_all(&serde_json::to_vec(&next)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    crate::dirsync::sync_parent(&path)?;
    Ok(Held::Mine(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(l: Option<&Lease>) -> std::result::Result<Lease, Lease> {
        Ok(Lease {
            holder: "me".into(),
            epoch: l.map_or(1, |l| l.epoch + 1),
            renewed_ms: 1,
        })
    }

    /// A crashed holder leaves `lease.json.lock` behind; with `O_EXCL` that
    /// blocked a promote for 30 s. A lock only counts while it is held.
    #[test]
    fn a_lock_file_left_by_a_dead_holder_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("{LEASE}.lock")), b"").unwrap();
        let Held::Mine(l) = file_transact(dir.path(), 1, &take).unwrap() else {
            panic!("the lease was not taken");
        };
        assert_eq!(l.epoch, 1);
    }

    #[test]
    fn a_held_lock_makes_the_writer_wait_then_give_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join(format!("{LEASE}.lock"))).unwrap();
        let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .unwrap();
        let err = file_transact(dir.path(), 1, &take).err().unwrap();
        assert!(err.to_string().contains("stayed taken"), "{err}");
        drop(held);
        assert!(matches!(
            file_transact(dir.path(), 2, &take).unwrap(),
            Held::Mine(_)
        ));
    }
}
