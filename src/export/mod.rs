//! Workspace export: one archive with everything a workspace holds, readable
//! without Aura.
//!
//! ```text
//! [age(] zstd( tar(
//!   workspace.json                         id, name, region, times
//!   members.json                           people, emails, roles
//!   teams.json                             teams with leads and members
//!   collections/<id>/schema.json           the definition (fields, permissions)
//!   collections/<id>/records-0001.json     records as the API shows them
//!   collections/<id>/records-0001.csv      the same as CSV (5,000 per part)
//!   collections/<id>/files/<record>/<file id>/<name>
//!                                          each attached file, as uploaded
//!   audit/log.ndjson                       the chain, signed checkpoint first
//!   manifest.json                          SHA-256 and size of every file
//! ) ) [)]
//! ```
//!
//! A person sees a record's values only where they may read that record
//! (`records::visibility`): an export made through the API holds only the
//! collections its requester may read, and its audit log withholds the values
//! of the others (the manifest counts the collections left out). The
//! operator's `aura workspace export` holds everything.
//!
//! The archive streams into any `Write` (a file for the CLI; an age-encrypted
//! spool for the server's export jobs); each part is built in memory, so no
//! plaintext touches a temp file.

mod files;
pub mod jobs;

use std::io::{Read, Write};

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audit::chains;
use crate::audit::export::{self as audit_export, CheckpointLine, Format};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::{Error, Result};
use crate::records::csv_io::csv_rows;
use crate::records::visibility::{ReadScope, Reader};
use crate::records::{record_json, rfc3339_ms};
use crate::store::audit::SqlFilter;
use crate::store::control::{self, Control};
use crate::store::records::{self as rstore, Sort};
use crate::store::teams as tstore;
use crate::store::tenant::TenantDb;

pub const FORMAT: &str = "aura-workspace-export/1";
const PART: usize = 5_000;

/// What a finished export holds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub collections: u64,
    pub records: u64,
    pub audit_entries: u64,
    pub files: u64,
    /// Attached files carried (each also counted in `files`).
    pub attached_files: u64,
    pub bytes: u64,
}

/// Called with (items done, items in all): records and audit entries.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

#[derive(Serialize)]
struct FileSum {
    path: String,
    sha256: String,
    bytes: u64,
}

/// A `Write` that counts what passes through.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct Builder<W: Write> {
    tar: tar::Builder<zstd::Encoder<'static, Counting<W>>>,
    sums: Vec<FileSum>,
    time: u64,
}

impl<W: Write> Builder<W> {
    /// Appends one file, unlisted (the manifest itself).
    fn append(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(self.time);
        h.set_cksum();
        self.tar
            .append_data(&mut h, path, data)
            .map_err(|e| Error::internal(format!("export archive: {e}")))
    }

    /// Appends one file and lists it for the manifest.
    fn add(&mut self, path: &str, data: &[u8]) -> Result<()> {
        self.append(path, data)?;
        self.sums.push(FileSum {
            path: path.to_owned(),
            sha256: hex::encode(Sha256::digest(data)),
            bytes: data.len() as u64,
        });
        Ok(())
    }

    /// Appends one file read from `data` (`size` bytes, hashed by the
    /// caller beforehand) and lists it for the manifest.
    fn add_streamed(
        &mut self,
        path: &str,
        size: u64,
        sha: &[u8],
        data: impl std::io::Read,
    ) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o600);
        h.set_mtime(self.time);
        h.set_cksum();
        self.tar.append_data(&mut h, path, data).map_err(|e| {
            if crate::crypto::file_seal::is_integrity_error(&e) {
                Error::Integrity("a file")
            } else {
                Error::internal(format!("export archive: {e}"))
            }
        })?;
        self.sums.push(FileSum {
            path: path.to_owned(),
            sha256: hex::encode(sha),
            bytes: size,
        });
        Ok(())
    }

    fn json(&mut self, path: &str, v: &impl Serialize) -> Result<()> {
        let data = serde_json::to_vec_pretty(v)?;
        self.add(path, &data)
    }
}

/// Records the export in the workspace's chain and signs the head (with the
/// appliance's key, in `control`), so the archive's audit log ends with its
/// own export and verifies offline. `now` is in Unix seconds.
pub fn begin(
    control: &Control,
    now: i64,
    db: &TenantDb,
    actor: Actor,
    meta: &RequestMeta,
    encrypted: bool,
) -> Result<CheckpointLine> {
    // An export changes no data, so it is allowed (and recorded) while the
    // workspace is read-only, e.g. during its deletion's grace period.
    db.append_audit_blocking(
        now,
        &NewEntry::new(actor, "workspace.exported", meta)
            .target("workspace", db.id())
            .after(json!({ "encrypted": encrypted })),
    )?;
    let body = chains::checkpoint_workspace(control, db, "export", now)?;
    let sig = control.signer.sign(&body);
    Ok(CheckpointLine::new(
        &body,
        &sig,
        &control.signer.public_key(),
        false,
    ))
}

/// Writes the archive of one workspace into `out` (zstd-compressed tar), as
/// `reader` may see it (`None`: everything). Call `begin` first; `checkpoint`
/// bounds the audit log. The workspace's row and members come from
/// `control`; `now` (Unix seconds) dates the archive.
pub fn write<W: Write>(
    control: &Control,
    now: i64,
    db: &TenantDb,
    checkpoint: &CheckpointLine,
    reader: Option<&Reader>,
    out: W,
    progress: Progress<'_>,
) -> Result<(W, Summary)> {
    let ws = db.id();
    let keys = control.keys.clone();
    let (row, members) = control.db.read(|c| {
        Ok((
            control::get_workspace(c, &keys, ws)?,
            control::workspace_members(c, &keys, ws)?,
        ))
    })?;
    let row = row.ok_or(Error::NotFound("workspace"))?;
    let defs = db.defs();
    let (collections, teams, records_total, scope) = db.read_blocking(|c, s| {
        let n = rstore::count_live(c)?;
        Ok((
            rstore::list_collections(c, s)?,
            tstore::list_teams(c, s)?,
            n,
            ReadScope::of(reader, c, s, &defs)?,
        ))
    })?;
    let all = collections.len();
    let collections: Vec<_> = collections
        .into_iter()
        .filter(|c| scope.may_read(&c.id))
        .collect();
    let withheld_collections = all - collections.len();
    let total =
        u64::try_from(records_total).unwrap_or(0) + u64::try_from(checkpoint.seq).unwrap_or(0);
    let enc = zstd::Encoder::new(
        Counting {
            inner: out,
            bytes: 0,
        },
        3,
    )
    .map_err(|e| Error::internal(format!("zstd: {e}")))?;
    let mut b = Builder {
        tar: tar::Builder::new(enc),
        sums: Vec::new(),
        time: u64::try_from(now).unwrap_or(0),
    };
    let mut summary = Summary::default();
    let mut done = 0u64;
    progress(0, total);

    b.json(
        "workspace.json",
        &json!({
            "id": ws.to_string(),
            "name": row.name,
            "region": row.region,
            "created_at": crate::clock::rfc3339(row.created_at),
            "exported_at": crate::clock::rfc3339(now),
        }),
    )?;
    let people: Vec<Value> = members
        .iter()
        .map(|(u, role)| {
            json!({
                "id": u.id.to_string(),
                "email": u.email,
                "name": u.name,
                "role": role.as_str(),
            })
        })
        .collect();
    b.json("members.json", &people)?;
    let teams: Vec<Value> = teams
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "name": t.name,
                "members": t.members.iter().map(|(u, r)| json!({"user_id": u, "role": r})).collect::<Vec<_>>(),
            })
        })
        .collect();
    b.json("teams.json", &teams)?;

    for coll in &collections {
        summary.collections += 1;
        let dir = format!("collections/{}", coll.id);
        b.json(
            &format!("{dir}/schema.json"),
            &json!({
                "id": coll.id,
                "team_id": coll.team_id,
                "name": coll.def.name,
                "fields": coll.def.fields,
                "permissions": coll.def.permissions,
                "created_at": rfc3339_ms(coll.created_at),
                "updated_at": rfc3339_ms(coll.updated_at),
            }),
        )?;
        let fields: Vec<_> = coll.def.live_fields().cloned().collect();
        let mut after = None;
        let mut part = 0;
        loop {
            let page = db.read_blocking(|c, s| {
                rstore::list_records(c, s, &coll.id, Sort::CreatedAsc, after, PART)
            })?;
            if page.is_empty() && part > 0 {
                break;
            }
            part += 1;
            let json_rows: Vec<Value> = page.iter().map(|r| record_json(&coll.def, r)).collect();
            b.json(&format!("{dir}/records-{part:04}.json"), &json_rows)?;
            let csv = csv_rows(&fields, &page, true)
                .ok_or_else(|| Error::internal("export: csv rows"))?;
            b.add(&format!("{dir}/records-{part:04}.csv"), &csv)?;
            summary.attached_files += files::append(&mut b, db, &coll.id, &coll.def, &page)?;
            summary.records += page.len() as u64;
            done += page.len() as u64;
            progress(done, total);
            match page.last() {
                Some(last) if page.len() == PART => after = Some((last.created_at, last.seq)),
                _ => break,
            }
        }
    }

    // The audit log can be far larger than memory: it is read twice in
    // bounded pages (keyset by seq), once for its size and hash (the tar
    // header comes first), once into the archive; both must agree.
    let mut first = AuditPages::new(db, checkpoint, &scope);
    let size = std::io::copy(&mut first, &mut std::io::sink())?;
    let (sha, entries) = (first.hasher.clone().finalize(), first.entries);
    let mut second = AuditPages::new(db, checkpoint, &scope);
    b.add_streamed("audit/log.ndjson", size, &sha, (&mut second).take(size))?;
    if second.hasher.finalize() != sha {
        return Err(Error::internal(
            "export: the audit log changed while it was written",
        ));
    }
    summary.audit_entries = entries;
    progress(total, total);

    summary.files = b.sums.len() as u64 + 1;
    let manifest = json!({
        "format": FORMAT,
        "aura_version": env!("CARGO_PKG_VERSION"),
        "workspace": ws.to_string(),
        "exported_at": crate::clock::rfc3339(now),
        "audit_checkpoint": { "seq": checkpoint.seq, "hash": checkpoint.hash },
        "counts": { "collections": summary.collections, "records": summary.records, "attached_files": summary.attached_files, "audit_entries": summary.audit_entries, "members": members.len(), "teams": teams.len() },
        // Collections the requester may not read: not in the archive, and
        // their values withheld from its audit log.
        "withheld_collections": withheld_collections,
        "files": b.sums,
    });
    b.append("manifest.json", &serde_json::to_vec_pretty(&manifest)?)?;
    let enc = b
        .tar
        .into_inner()
        .map_err(|e| Error::internal(format!("export archive: {e}")))?;
    let counting = enc
        .finish()
        .map_err(|e| Error::internal(format!("zstd: {e}")))?;
    summary.bytes = counting.bytes;
    Ok((counting.inner, summary))
}

/// The workspace's audit log up to the export's checkpoint as NDJSON, read
/// page by page (a bounded read each), hashed as it goes.
struct AuditPages<'a> {
    db: &'a TenantDb,
    checkpoint: &'a CheckpointLine,
    /// Whose values the reader may see (`records::visibility`).
    scope: &'a ReadScope,
    buf: Vec<u8>,
    pos: usize,
    /// Where the next page starts; None once the last page was read.
    next: Option<i64>,
    started: bool,
    hasher: Sha256,
    entries: u64,
}

impl<'a> AuditPages<'a> {
    fn new(db: &'a TenantDb, checkpoint: &'a CheckpointLine, scope: &'a ReadScope) -> Self {
        Self {
            db,
            checkpoint,
            scope,
            buf: Vec::new(),
            pos: 0,
            next: Some(0),
            started: false,
            hasher: Sha256::new(),
            entries: 0,
        }
    }

    fn refill(&mut self) -> Result<bool> {
        let bytes = if !self.started {
            self.started = true;
            audit_export::head_bytes(Format::Ndjson, self.checkpoint)?
        } else {
            let Some(after) = self.next else {
                return Ok(false);
            };
            let filter = SqlFilter::default();
            let (cp, scope) = (self.checkpoint, self.scope);
            let page = self.db.read_blocking(|c, s| {
                audit_export::page(c, s, &filter, Format::Ndjson, cp, scope, after)
            })?;
            self.entries += page.entries;
            self.next = page.next_after;
            page.bytes
        };
        self.hasher.update(&bytes);
        self.buf = bytes;
        self.pos = 0;
        Ok(true)
    }
}

impl std::io::Read for AuditPages<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            if !self.refill().map_err(std::io::Error::other)? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Parses an age recipient given at export time, naming the field.
pub fn recipient(field: &str, raw: &str) -> Result<age::x25519::Recipient> {
    raw.trim()
        .parse()
        .map_err(|_| Error::field(field, "must be an age X25519 recipient (age1...)"))
}
