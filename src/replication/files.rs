//! Attached files in the replica (docs/replication.md, "Files"). A sealed
//! file never changes and its id is never reused, so each one is shipped
//! once, as its own object `files/ws-<id>/<file id>.age`: the sealed bytes
//! as stored, age-encrypted to `backup.recipients` like every other object.
//! New files are found in the `files` table by rowid (no listing of the
//! files directory); a restore fetches exactly the files the restored
//! database names and checks that each opens with the workspace's key.
//! A file deleted from the workspace stays until no kept state of its
//! database can name it; a shredded workspace's files leave at once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use super::target::Replica;
use crate::crypto::file_seal::{FileBinding, OpeningReader};
use crate::crypto::{MasterKey, Sealer};
use crate::error::{Error, Result};
use crate::store::Detached;
use crate::store::blobs::Blobs;
use crate::store::replica_files::{self, Named};

/// The prefix of all file objects (not a database: `Replica::databases`
/// leaves it out).
pub const ROOT: &str = "files";

/// A deleted file's object goes once every kept state of its database was
/// read this long after the deletion was noticed (a snapshot read that
/// began before the deletion and ended after it is still a state naming it).
const GONE_MARGIN_MS: i64 = 600_000;

/// `files/ws-<id>/`.
pub fn prefix(ws: &str) -> String {
    format!("{ROOT}/{}/", super::workspace_db(ws))
}

pub fn object(ws: &str, file: &str) -> String {
    format!("{}{file}.age", prefix(ws))
}

async fn in_pool<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("replication task: {e}")))?
}

/// age-encrypts the file at `src` into a new private file `dest`, streamed.
/// `Ok(false)`: `src` is gone (removed since its row was read).
fn seal_to(
    blobs: &Blobs,
    id: &str,
    dest: &Path,
    recipients: &[age::x25519::Recipient],
) -> Result<bool> {
    // From the appliance's file storage (its data dir or its bucket).
    let mut input = match blobs.reader(id) {
        Ok(r) => r,
        Err(Error::NotFound(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let out = BufWriter::with_capacity(256 * 1024, crate::store::create_private_file(dest)?);
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| Error::internal(format!("age: {e}")))?;
    let mut w = enc.wrap_output(out)?;
    std::io::copy(&mut input, &mut w)?;
    w.finish()?.flush()?;
    Ok(true)
}

/// Decrypts the age file `src` into a new private file `dest`, synced.
fn open_to(src: &Path, dest: &Path, identity: &age::x25519::Identity) -> Result<()> {
    let input = BufReader::with_capacity(256 * 1024, std::fs::File::open(src)?);
    let dec = age::Decryptor::new(input)
        .map_err(|e| Error::Usage(format!("a replica file object is not an age file: {e}")))?;
    let mut r = dec
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|_| {
            Error::Usage(
                "this identity cannot open the replica (not one of `backup.recipients`)".into(),
            )
        })?;
    let mut out = BufWriter::with_capacity(256 * 1024, crate::store::create_private_file(dest)?);
    std::io::copy(&mut r, &mut out)
        .map_err(|e| Error::Usage(format!("a replica file object does not decrypt: {e}")))?;
    out.into_inner()
        .map_err(|e| Error::Io(e.into_error()))?
        .sync_all()?;
    Ok(())
}

/// Ships one sealed file; `Ok(false)` when it was removed before it could be.
async fn ship_one(
    replica: &Replica,
    recipients: &[age::x25519::Recipient],
    tmp_dir: &Path,
    ws: &str,
    blobs: &Blobs,
    id: &str,
) -> Result<bool> {
    let tmp = tmp_dir.join(format!("file-{id}.age"));
    let (t, r, b, i) = (
        tmp.clone(),
        recipients.to_vec(),
        blobs.clone(),
        id.to_owned(),
    );
    let sealed = in_pool(move || seal_to(&b, &i, &t, &r)).await;
    let shipped = match sealed {
        Ok(true) => replica.put_file(&object(ws, id), &tmp).await.map(|()| true),
        other => other,
    };
    let _ = std::fs::remove_file(&tmp);
    shipped
}

/// What one workspace's file shipping knows: the highest rowid of the
/// `files` table shipped and the id it had, and whether the replica's
/// listing was compared once since this process started.
#[derive(Default)]
pub struct FileShipper {
    hw: i64,
    hw_id: Option<String>,
    compared: bool,
    /// The last attempt failed: try again at the next pass even if the
    /// database did not change.
    pub pending: bool,
}

impl FileShipper {
    /// Ships the files added to the workspace since the last call (the
    /// first call, and any after the newest rows were removed, compares
    /// the whole table with the replica's listing instead). Returns how
    /// many were shipped.
    pub async fn ship_new(
        &mut self,
        replica: &Replica,
        recipients: &[age::x25519::Recipient],
        tmp_dir: &Path,
        ws: &str,
        blobs: &Blobs,
    ) -> Result<usize> {
        self.pending = true;
        let db = blobs.tenant_dir().join("data.db");
        let from = if self.compared { self.hw } else { 0 };
        let d = db.clone();
        let (mut added, at) =
            in_pool(move || replica_files::added_since(&Detached::read_only(&d)?, from)).await?;
        if self.compared && self.hw > 0 && at != self.hw_id {
            // The newest rows went: their rowids may now name new files.
            self.compared = false;
            added = in_pool(move || replica_files::added_since(&Detached::read_only(&db)?, 0))
                .await?
                .0;
        }
        let present: BTreeSet<String> = if self.compared || added.is_empty() {
            BTreeSet::new()
        } else {
            listed(replica, ws)
                .await?
                .into_iter()
                .filter(|(_, (there, _))| *there)
                .map(|(id, _)| id)
                .collect()
        };
        if !self.compared {
            (self.hw, self.hw_id) = (0, None);
        }
        let mut n = 0;
        for (rowid, id) in added {
            if !present.contains(&id)
                && ship_one(replica, recipients, tmp_dir, ws, blobs, &id).await?
            {
                n += 1;
            }
            self.hw = rowid;
            self.hw_id = Some(id);
        }
        self.compared = true;
        self.pending = false;
        Ok(n)
    }
}

/// The replica's file objects of a workspace: file id -> whether its
/// object is there, and the instant its deletion was noticed (a
/// `<id>.gone-<ms>` marker), if it was.
async fn listed(replica: &Replica, ws: &str) -> Result<BTreeMap<String, (bool, Option<i64>)>> {
    let p = prefix(ws);
    let mut out: BTreeMap<String, (bool, Option<i64>)> = BTreeMap::new();
    for (name, _) in replica.list(&p).await? {
        let Some(leaf) = name.strip_prefix(&p) else {
            continue;
        };
        if let Some(id) = leaf.strip_suffix(".age") {
            out.entry(id.to_owned()).or_default().0 = true;
        } else if let Some((id, ms)) = leaf.split_once(".gone-") {
            if let Ok(ms) = ms.parse::<i64>() {
                out.entry(id.to_owned()).or_default().1 = Some(ms);
            }
        }
    }
    Ok(out)
}

/// Deleted files no kept state needs: a file object the live table no
/// longer names gets a `.gone-<now>` marker; once the oldest kept snapshot
/// of the workspace's database was read `GONE_MARGIN_MS` after that, the
/// object and its marker go. Returns how many objects went.
pub async fn prune_deleted(
    replica: &Replica,
    ws: &str,
    db: &Path,
    oldest_kept_ms: i64,
    now_ms: i64,
) -> Result<usize> {
    let d = db.to_owned();
    let live: BTreeSet<String> = in_pool(move || replica_files::named(&Detached::read_only(&d)?))
        .await?
        .into_iter()
        .map(|n| n.id)
        .collect();
    let p = prefix(ws);
    let mut n = 0;
    for (id, (there, gone)) in listed(replica, ws).await? {
        if live.contains(&id) {
            // Live again (a restore to before its deletion): the old mark
            // goes, so a later deletion is timed afresh and the object
            // stays while kept states name it.
            if let Some(ms) = gone {
                replica.delete(&format!("{p}{id}.gone-{ms:013}")).await?;
            }
            continue;
        }
        match gone {
            None if !there => {}
            None => {
                replica
                    .put(&format!("{p}{id}.gone-{now_ms:013}"), Vec::new())
                    .await?
            }
            Some(ms) if oldest_kept_ms > ms + GONE_MARGIN_MS => {
                replica.delete(&object(ws, &id)).await?;
                replica.delete(&format!("{p}{id}.gone-{ms:013}")).await?;
                n += 1;
            }
            Some(_) => {}
        }
    }
    Ok(n)
}

/// What a restore did with a database's files.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fetched {
    pub placed: usize,
    /// Named by the restored state but not in the replica (removed within
    /// a pass of being added, before it could be shipped).
    pub missing: usize,
}

/// Fetches into `<into>/files/` every file the database at `db_file` names
/// that is not there yet (nor in `have`'s `files/`: a live workspace's
/// copy of the same file, ids being never reused), decrypted with the
/// operator's identity (the sealed bytes as they were stored).
pub async fn fetch_named(
    replica: &Replica,
    ws: &str,
    db_file: &Path,
    into: &Path,
    have: Option<&Path>,
    identity: &age::x25519::Identity,
) -> Result<(Vec<Named>, Fetched)> {
    let d = db_file.to_owned();
    let named = in_pool(move || replica_files::named(&Detached::read_only(&d)?)).await?;
    let mut got = Fetched::default();
    if named.is_empty() {
        return Ok((named, got));
    }
    crate::store::create_private_dir(&crate::store::files::dir(into))?;
    for f in &named {
        let held = have
            .and_then(|h| crate::store::files::path(h, &f.id))
            .is_some_and(|p| p.exists());
        if held {
            continue;
        }
        match fetch_one(replica, ws, &f.id, into, identity).await? {
            Some(true) => got.placed += 1,
            Some(false) => {}
            None => {
                tracing::warn!(workspace = %ws, file = %f.id, "a file the restored state names is not in the replica");
                got.missing += 1;
            }
        }
    }
    crate::dirsync::sync_parent(&crate::store::files::dir(into).join("x"))?;
    Ok((named, got))
}

/// Fetches one file into `<into>/files/<id>`: `Some(true)` placed,
/// `Some(false)` already there, `None` not in the replica.
async fn fetch_one(
    replica: &Replica,
    ws: &str,
    id: &str,
    into: &Path,
    identity: &age::x25519::Identity,
) -> Result<Option<bool>> {
    let Some(dest) = crate::store::files::path(into, id) else {
        return Ok(Some(false));
    };
    if dest.exists() {
        return Ok(Some(false));
    }
    let tmp = dest.with_extension("age");
    if !replica.get_to_file(&object(ws, id), &tmp).await? {
        return Ok(None);
    }
    // Decrypted beside its place and renamed in: a reader (a standby
    // serving downloads) never sees half a file.
    let part = dest.with_extension("part");
    let (t, p, de, who) = (tmp.clone(), part.clone(), dest.clone(), identity.clone());
    let opened = in_pool(move || {
        open_to(&t, &p, &who)?;
        std::fs::rename(&p, &de)?;
        Ok(())
    })
    .await;
    let _ = std::fs::remove_file(&tmp);
    if opened.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    opened.map(|()| Some(true))
}

/// The drill's check of files: one file the rebuilt database names (at
/// random), fetched into `scratch` and opened to its end with its key.
/// `Ok(None)`: the state names no file; `Err`: why the check failed.
pub async fn drill_one(
    replica: &Replica,
    ws: &str,
    db_file: &Path,
    scratch: &Path,
    identity: &age::x25519::Identity,
    sealer: &Sealer,
) -> Result<Option<String>> {
    let d = db_file.to_owned();
    let named = in_pool(move || replica_files::named(&Detached::read_only(&d)?)).await?;
    if named.is_empty() {
        return Ok(None);
    }
    crate::store::create_private_dir(&crate::store::files::dir(scratch))?;
    let start = (rand::RngCore::next_u64(&mut rand::rngs::OsRng) % named.len() as u64) as usize;
    for i in 0..named.len() {
        let f = &named[(start + i) % named.len()];
        if fetch_one(replica, ws, &f.id, scratch, identity)
            .await?
            .is_some()
        {
            verify(ws, db_file, scratch, std::slice::from_ref(f), sealer)?;
            return Ok(Some(f.id.clone()));
        }
    }
    Err(Error::Usage(format!(
        "none of the {} file(s) the state names is in the replica",
        named.len()
    )))
}

/// A workspace's sealer from an escrow of wrapped keys (the live one, or a
/// restored control.db's).
pub fn sealer_from_escrow(
    escrow: &crate::backup::archive::Escrow,
    master: &MasterKey,
    ws: &str,
) -> Result<Sealer> {
    let keys = escrow
        .keys
        .iter()
        .filter(|k| k.workspace == ws)
        .map(|k| {
            let wrapped = hex::decode(&k.wrapped_hex)
                .map_err(|_| Error::Crypto("escrow entry is not hex"))?;
            master.unwrap_key(ws, k.key_id, &wrapped)
        })
        .collect::<Result<Vec<_>>>()?;
    if keys.is_empty() {
        return Err(Error::Usage(format!(
            "workspace {ws} has no key (shredded?): its files cannot be checked"
        )));
    }
    Sealer::new(ws.to_owned(), &keys)
}

/// Checks that each of `named` under `<dir>/files/` opens, to its last
/// chunk, with its key from the database at `db_file` under `sealer`.
/// A file not there (missing from the replica) is skipped.
pub fn verify(
    ws: &str,
    db_file: &Path,
    dir: &Path,
    named: &[Named],
    sealer: &Sealer,
) -> Result<()> {
    let db = Detached::read_only(db_file)?;
    for f in named {
        if !crate::store::files::path(dir, &f.id).is_some_and(|p| p.exists()) {
            continue;
        }
        let bad = |why: String| {
            Error::Usage(format!(
                "file {} of workspace {ws} from the replica does not open with the workspace key: {why}; nothing was changed",
                f.id
            ))
        };
        let key = crate::store::files::file_key(&db, sealer, &f.record, &f.field, &f.id)
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad("no key".into()))?;
        let binding = FileBinding {
            workspace: ws,
            record: &f.record,
            field: &f.field,
            file: &f.id,
        };
        // A fetched file, in the local scratch directory.
        let p = crate::store::files::path(dir, &f.id).ok_or_else(|| bad("not a file id".into()))?;
        let src = std::fs::File::open(&p).map_err(|e| bad(e.to_string()))?;
        let mut r = OpeningReader::new(&key, binding, BufReader::with_capacity(128 * 1024, src))
            .map_err(|e| bad(e.to_string()))?;
        std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

/// A standby's files of one workspace: fetches those the database copy it
/// is about to apply names and the local directory lacks. Returns how many
/// it names that the replica does not hold yet (an upload still under way
/// on the primary: the caller tries again at the next round).
pub async fn follow(
    replica: &Replica,
    identity: &age::x25519::Identity,
    ws: &str,
    db_copy: &Path,
    tenant_dir: &Path,
) -> Result<usize> {
    let (_, got) = fetch_named(replica, ws, db_copy, tenant_dir, None, identity).await?;
    Ok(got.missing)
}

/// After the copy was applied: removes the local files it no longer names.
pub fn follow_sweep(db_copy: &Path, tenant_dir: &Path) -> Result<usize> {
    // A standby keeps its files in its data dir.
    let local = Blobs::new(
        std::sync::Arc::new(crate::store::blobs::Storage::Local),
        tenant_dir.to_owned(),
        String::new(),
    );
    crate::store::files::sweep(&Detached::read_only(db_copy)?, &local, false)
}
