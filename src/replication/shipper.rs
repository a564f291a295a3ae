//! One database's replication: notice a commit (the file or its WAL
//! changed), read a consistent copy, and ship the pages that changed since
//! the last read as the next segment of the current generation, or a whole
//! snapshot that starts a new generation (the first time, after a restart,
//! every hour, or when told to). The copy is a read transaction, so writers
//! never wait for it.

use std::path::{Path, PathBuf};

use rand::RngCore;
use sha2::Digest;

use super::catalog::{segment_name, snapshot_name};
use super::segment::{self, Segment};
use super::target::Replica;
use crate::error::{Error, Result};

/// A new generation (a full snapshot) at least this often.
const SNAPSHOT_EVERY_MS: i64 = 3_600_000;
const MAX_SEGMENTS: u64 = 3_600;

/// Sizes and modification times of the file and its WAL.
type Fingerprint = [(u64, i128); 2];

#[derive(Clone)]
struct Gen {
    id: String,
    started_ms: i64,
    seq: u64,
    page_size: u32,
    hashes: Vec<[u8; 16]>,
}

pub struct Shipper {
    /// `control` or `ws-<id>`.
    pub name: String,
    path: PathBuf,
    fp: Option<Fingerprint>,
    current: Option<Gen>,
    /// Start a new generation at the next pass (after a shred, so no older
    /// control.db state, with the destroyed key in it, is kept).
    pub force_new: bool,
}

pub enum Outcome {
    Unchanged,
    Shipped {
        seq: u64,
        generation: String,
        new_generation: bool,
        /// The instant the shipped state is stamped with.
        at_ms: i64,
    },
    Gone,
}

pub struct Shipped {
    at_ms: i64,
    current: Gen,
    name: String,
    sealed: Vec<u8>,
    new_generation: bool,
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let stat = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as i128)
                .unwrap_or(0);
            (m.len(), t)
        })
    };
    let db = stat(path)?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Some([db, stat(Path::new(&wal)).unwrap_or((0, 0))])
}

/// A file modified this close to when it was looked at may be modified
/// again within the same timestamp tick (the kernel's coarse clock) with the
/// same size, which its fingerprint would not show ("racily clean", as git
/// calls it): such a fingerprint is not kept, so the next pass reads again.
const RACY_NS: i128 = 100_000_000;

fn racy(fp: &Fingerprint) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    fp.iter().any(|(_, mtime)| now - mtime < RACY_NS)
}

fn page_hash(p: &[u8]) -> [u8; 16] {
    let d = sha2::Sha256::digest(p);
    let mut h = [0u8; 16];
    h.copy_from_slice(&d[..16]);
    h
}

impl Shipper {
    pub fn new(name: String, path: PathBuf) -> Self {
        Self {
            name,
            path,
            fp: None,
            current: None,
            force_new: false,
        }
    }

    pub fn generation(&self) -> Option<&str> {
        self.current.as_ref().map(|g| g.id.as_str())
    }

    /// One pass: ships what changed, if anything.
    pub async fn sync(
        &mut self,
        replica: &Replica,
        recipients: &[age::x25519::Recipient],
        tmp_dir: &Path,
        now_ms: i64,
    ) -> Result<Outcome> {
        let Some(fp) = fingerprint(&self.path) else {
            return Ok(Outcome::Gone);
        };
        if !self.force_new && self.current.is_some() && self.fp == Some(fp) {
            return Ok(Outcome::Unchanged);
        }
        let keep = (!racy(&fp)).then_some(fp);
        let (src, tmp) = (
            self.path.clone(),
            tmp_dir.join(format!("{}.copy", self.name)),
        );
        let (prev, name, force) = (self.current.clone(), self.name.clone(), self.force_new);
        let recipients = recipients.to_vec();
        let began = std::time::Instant::now();
        let planned = tokio::task::spawn_blocking(move || {
            let copied = crate::store::replica_copy::consistent_copy(&src, &tmp)
                .and_then(|()| Ok(std::fs::read(&tmp)?));
            let _ = std::fs::remove_file(&tmp);
            // The copy holds every commit made before its read began, which
            // can be after `now_ms`: the state is stamped once the copy is
            // done, so a restore to an instant never gets a commit made
            // after it.
            let at_ms = now_ms
                .saturating_add(i64::try_from(began.elapsed().as_millis()).unwrap_or(i64::MAX));
            plan(&name, &copied?, prev, force, at_ms, &recipients)
        })
        .await
        .map_err(|e| Error::internal(format!("replication task: {e}")))??;
        let Some(s) = planned else {
            self.fp = keep;
            return Ok(Outcome::Unchanged);
        };
        replica.put(&s.name, s.sealed).await?;
        let out = Outcome::Shipped {
            seq: s.current.seq,
            generation: s.current.id.clone(),
            new_generation: s.new_generation,
            at_ms: s.at_ms,
        };
        self.current = Some(s.current);
        self.fp = keep;
        self.force_new = false;
        Ok(out)
    }
}

/// Diffs the copy against the last shipped state and seals what to upload
/// (`None`: no page changed).
fn plan(
    db: &str,
    image: &[u8],
    prev: Option<Gen>,
    force: bool,
    now_ms: i64,
    recipients: &[age::x25519::Recipient],
) -> Result<Option<Shipped>> {
    let page_size = segment::page_size_of(image)
        .ok_or_else(|| Error::internal(format!("{db}: the copy is not a database image")))?;
    let ps = page_size as usize;
    let hashes: Vec<[u8; 16]> = image.chunks(ps).map(page_hash).collect();
    let page_count = u32::try_from(hashes.len()).map_err(|_| Error::internal("too many pages"))?;
    let fresh = match &prev {
        None => true,
        Some(g) => {
            force
                || g.page_size != page_size
                || g.seq >= MAX_SEGMENTS
                || now_ms - g.started_ms >= SNAPSHOT_EVERY_MS
        }
    };
    let pick =
        |i: usize| -> (u32, Vec<u8>) { (i as u32 + 1, image[i * ps..(i + 1) * ps].to_vec()) };
    let (current, name, pages) = if fresh {
        let mut r = [0u8; 4];
        rand::rngs::OsRng.fill_bytes(&mut r);
        let id = format!("{now_ms:013}-{}", hex::encode(r));
        let name = snapshot_name(db, &id, now_ms);
        let pages = (0..hashes.len()).map(pick).collect::<Vec<_>>();
        let current = Gen {
            id,
            started_ms: now_ms,
            seq: 0,
            page_size,
            hashes,
        };
        (current, name, pages)
    } else {
        let Some(mut g) = prev else {
            return Err(Error::internal("no generation"));
        };
        let changed: Vec<usize> = (0..hashes.len())
            .filter(|&i| g.hashes.get(i) != Some(&hashes[i]))
            .collect();
        if changed.is_empty() && g.hashes.len() == hashes.len() {
            return Ok(None);
        }
        g.seq += 1;
        g.hashes = hashes;
        let name = segment_name(db, &g.id, g.seq, now_ms);
        (g, name, changed.into_iter().map(pick).collect())
    };
    let seg = Segment {
        page_size,
        page_count,
        at_ms: now_ms,
        pages,
    };
    Ok(Some(Shipped {
        at_ms: now_ms,
        sealed: segment::seal(&seg, recipients)?,
        name,
        new_generation: fresh,
        current,
    }))
}
