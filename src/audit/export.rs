//! Streamed exports of one chain, NDJSON or CSV, cut at a signed checkpoint.
//! NDJSON starts with the checkpoint line (with the appliance's public key), so
//! `aura audit verify-export FILE` (or any Ed25519 + SHA-256 tool) can check it
//! offline: every entry's hash, the links between them, and the head against
//! the signature. CSV cells are neutralised against spreadsheet formulas
//! (`records::csv_cell`); CSV is for reading, NDJSON for verifying.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::search::{EntryView, view_in};
use super::signing::{ChainLink, CheckpointBody, verify_signature};
use super::{GENESIS, StoredEntry};
use crate::crypto::Sealer;
use crate::error::{Error, Result};
use crate::records::csv_cell::neutralise;
use crate::records::visibility::ReadScope;
use crate::store::Sql;
use crate::store::audit::{self as sql, SqlFilter};

const BATCH: i64 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    pub fn parse(v: &str) -> Result<Self> {
        match v {
            "ndjson" | "" => Ok(Format::Ndjson),
            "csv" => Ok(Format::Csv),
            _ => Err(Error::field("format", "must be ndjson or csv")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
        }
    }
}

/// The first NDJSON line; also sent as the `x-aura-checkpoint` header.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub scope: String,
    pub seq: i64,
    pub hash: String,
    pub time: i64,
    pub reason: String,
    /// The checkpoint's place in its chain of checkpoints (absent on
    /// checkpoints signed before they were chained): with it, this line is an
    /// outside anchor for `aura audit verify --anchor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    pub signature: String,
    pub public_key: String,
    /// True when filters were applied: entries then need not be contiguous.
    pub filtered: bool,
}

impl CheckpointLine {
    pub fn new(
        body: &CheckpointBody,
        signature: &[u8],
        public_key: &[u8; 32],
        filtered: bool,
    ) -> Self {
        Self {
            kind: "checkpoint".into(),
            scope: body.scope.clone(),
            seq: body.seq,
            hash: hex::encode(&body.hash),
            time: body.time,
            reason: body.reason.clone(),
            index: body.link.as_ref().map(|l| l.index),
            prev: body.link.as_ref().map(|l| hex::encode(&l.prev)),
            signature: hex::encode(signature),
            public_key: hex::encode(public_key),
            filtered,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct EntryLine {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    entry: Value,
}

const CSV_HEADER: [&str; 15] = [
    "seq",
    "time",
    "actor",
    "actor_type",
    "action",
    "target",
    "target_type",
    "ip",
    "request_id",
    "user_agent",
    "before",
    "after",
    "hash",
    "prev_hash",
    "detail_sha256",
];

/// One entry as a CSV line; every cell is neutralised against spreadsheet
/// formulas (a user agent or a detail may start with `=`).
fn csv_row(v: &EntryView) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let cells = [
        v.seq.to_string(),
        v.time.clone(),
        v.actor.clone(),
        v.actor_type.clone(),
        v.action.clone(),
        v.target.clone().unwrap_or_default(),
        v.target_type.clone().unwrap_or_default(),
        v.ip.clone().unwrap_or_default(),
        v.request_id.clone().unwrap_or_default(),
        v.user_agent.clone().unwrap_or_default(),
        v.before.to_string(),
        v.after.to_string(),
        v.hash.clone(),
        v.prev_hash.clone(),
        v.detail_sha256.clone().unwrap_or_default(),
    ];
    w.write_record(cells.iter().map(|c| neutralise(c).into_owned()))
        .map_err(|e| Error::internal(format!("csv: {e}")))?;
    w.into_inner()
        .map_err(|e| Error::internal(format!("csv: {e}")))
}

/// Writes the export through `sink` in chunks, each entry as a reader with
/// `scope` sees it (withheld values stay covered by `detail_sha256`, so the
/// export still verifies); returns the number of entries.
pub fn write(
    conn: &dyn Sql,
    sealer: &Sealer,
    filter: &SqlFilter,
    format: Format,
    header: &CheckpointLine,
    scope: &ReadScope,
    sink: &mut dyn FnMut(Vec<u8>) -> Result<()>,
) -> Result<u64> {
    sink(head_bytes(format, header)?)?;
    let mut after = 0;
    let mut count = 0u64;
    loop {
        let page = page(conn, sealer, filter, format, header, scope, after)?;
        count += page.entries;
        sink(page.bytes)?;
        match page.next_after {
            Some(n) => after = n,
            None => break,
        }
    }
    Ok(count)
}

/// What comes before the entries: the checkpoint line, or the CSV header.
pub fn head_bytes(format: Format, header: &CheckpointLine) -> Result<Vec<u8>> {
    match format {
        Format::Ndjson => {
            let mut line = serde_json::to_vec(header)?;
            line.push(b'\n');
            Ok(line)
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
            w.write_record(CSV_HEADER)
                .map_err(|e| Error::internal(format!("csv: {e}")))?;
            w.into_inner()
                .map_err(|e| Error::internal(format!("csv: {e}")))
        }
    }
}

/// One bounded page of an export: entries after `after` (keyset by seq) up
/// to the checkpoint, at most `BATCH` of them and about `PAGE_BYTES`.
pub struct Page {
    pub bytes: Vec<u8>,
    pub entries: u64,
    /// Where the next page starts; None when this was the last.
    pub next_after: Option<i64>,
}

/// A page stops growing past this many bytes, so a log of huge entries is
/// still read in bounded pieces.
pub const PAGE_BYTES: usize = 1 << 20;

pub fn page(
    conn: &dyn Sql,
    sealer: &Sealer,
    filter: &SqlFilter,
    format: Format,
    header: &CheckpointLine,
    scope: &ReadScope,
    after: i64,
) -> Result<Page> {
    let mut f = filter.clone();
    f.max_seq = Some(header.seq);
    f.before_seq = None;
    f.ascending_after = Some(after);
    let batch = sql::query(conn, &f, BATCH)?;
    let full = batch.len() as i64 == BATCH;
    let mut bytes = Vec::new();
    let mut entries = 0u64;
    let mut last = after;
    for e in &batch {
        let v = view_in(e, sealer, scope);
        match format {
            Format::Ndjson => {
                let line = EntryLine {
                    kind: "entry".into(),
                    entry: serde_json::to_value(&v)?,
                };
                bytes.extend(serde_json::to_vec(&line)?);
                bytes.push(b'\n');
            }
            Format::Csv => bytes.extend(csv_row(&v)?),
        }
        entries += 1;
        last = e.seq;
        if bytes.len() >= PAGE_BYTES {
            break;
        }
    }
    let more = full || (entries as usize) < batch.len();
    Ok(Page {
        bytes,
        entries,
        next_after: (more && entries > 0).then_some(last),
    })
}

/// The result of checking an NDJSON export offline.
#[derive(Debug, PartialEq, Eq)]
pub struct ExportCheck {
    pub entries: u64,
    pub checkpoint_seq: i64,
    pub filtered: bool,
}

/// Verifies an NDJSON export with nothing but its own contents (and,
/// optionally, the public key the verifier trusts).
pub fn verify_ndjson(text: &str, trusted_key: Option<&[u8; 32]>) -> Result<ExportCheck> {
    let bad = |m: String| Error::Usage(format!("export does not verify: {m}"));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines
        .next()
        .ok_or_else(|| bad("the file is empty".into()))?;
    let cp: CheckpointLine = serde_json::from_str(first)
        .map_err(|_| bad("the first line is not a checkpoint".into()))?;
    let pk: [u8; 32] = hex::decode(&cp.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("the public key is malformed".into()))?;
    if trusted_key.is_some_and(|t| *t != pk) {
        return Err(bad(
            "signed by a different key than the one you trust".into()
        ));
    }
    let body = CheckpointBody {
        scope: cp.scope.clone(),
        seq: cp.seq,
        hash: hex::decode(&cp.hash).map_err(|_| bad("checkpoint hash is malformed".into()))?,
        time: cp.time,
        reason: cp.reason.clone(),
        link: match (cp.index, &cp.prev) {
            (Some(index), Some(prev)) => Some(ChainLink {
                index,
                prev: hex::decode(prev).map_err(|_| bad("checkpoint prev is malformed".into()))?,
            }),
            _ => None,
        },
    };
    let sig = hex::decode(&cp.signature).map_err(|_| bad("signature is malformed".into()))?;
    if !verify_signature(&pk, &body, &sig) {
        return Err(bad("the checkpoint signature is invalid".into()));
    }
    let mut prev: Option<(i64, Vec<u8>)> = None;
    let mut count = 0u64;
    for line in lines {
        let v: EntryLine = serde_json::from_str(line)
            .map_err(|_| bad(format!("line {} is not an entry", count + 2)))?;
        let e: EntryView = serde_json::from_value(v.entry)
            .map_err(|_| bad(format!("line {} is not an entry", count + 2)))?;
        let stored = StoredEntry {
            seq: e.seq,
            time: e.time_unix,
            actor_type: e.actor_type.clone(),
            actor_id: (e.actor != e.actor_type).then(|| e.actor.clone()),
            action: e.action.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target.clone(),
            ip: e.ip.clone(),
            request_id: e.request_id.clone(),
            detail_ct: None,
            detail_digest: None,
            redacted_by: None,
            resealed: false,
            prev_hash: hex::decode(&e.prev_hash).unwrap_or_default(),
            hash: hex::decode(&e.hash).unwrap_or_default(),
        };
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        sha2::Digest::update(&mut h, &stored.prev_hash);
        sha2::Digest::update(&mut h, stored.canonical_with(e.detail_sha256.clone()));
        if sha2::Digest::finalize(h).to_vec() != stored.hash {
            return Err(bad(format!("entry seq {} does not match its hash", e.seq)));
        }
        if !cp.filtered {
            let linked = match &prev {
                Some((pseq, phash)) => e.seq == pseq + 1 && stored.prev_hash == *phash,
                None => e.seq > 1 || stored.prev_hash == GENESIS,
            };
            if !linked {
                return Err(bad(format!(
                    "entry seq {} does not link to the one before",
                    e.seq
                )));
            }
        }
        prev = Some((e.seq, stored.hash.clone()));
        count += 1;
    }
    if !cp.filtered {
        match &prev {
            Some((seq, hash)) if *seq == cp.seq && *hash == body.hash => {}
            None if cp.seq == 0 => {}
            _ => return Err(bad("the last entry is not the signed head".into())),
        }
    }
    Ok(ExportCheck {
        entries: count,
        checkpoint_seq: cp.seq,
        filtered: cp.filtered,
    })
}
