//! Operations over whole chains: signing checkpoints, verifying, retention.
//! These run in the CLI and in the background jobs, on the blocking pool; they
//! reach workspaces through the audited system handle only.

use serde_json::json;

use super::signing::{CheckpointBody, stored_public_key};
use std::collections::{HashMap, HashSet};

use super::verify::{ChainReport, Verifier};
use super::{Actor, NewEntry, RequestMeta};
use crate::access::Grant;
use crate::error::Result;
use crate::ids::WorkspaceId;
use crate::store::audit as sql;
use crate::store::control::{self, Control};
use crate::store::tenant::{TenantDb, TenantPool};

pub const PLATFORM: &str = "platform";

/// Every chain on this appliance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    Platform,
    Workspace(WorkspaceId),
}

impl Chain {
    pub fn scope(&self) -> String {
        match self {
            Chain::Platform => PLATFORM.to_owned(),
            Chain::Workspace(w) => w.to_string(),
        }
    }
}

pub fn all_chains(control: &Control) -> Result<Vec<Chain>> {
    let ids = control.db.read(control::workspace_ids)?;
    let mut out = vec![Chain::Platform];
    out.extend(ids.into_iter().map(Chain::Workspace));
    Ok(out)
}

pub fn open_tenant(
    control: &Control,
    pool: &TenantPool,
    ws: WorkspaceId,
    why: &'static str,
) -> Result<TenantDb> {
    pool.open(control, &Grant::system(ws, why))
}

fn sign_and_store(control: &Control, body: CheckpointBody) -> Result<CheckpointBody> {
    let sig = control.signer.sign(&body);
    let b = body.clone();
    control
        .db
        .write(|tx| sql::insert_checkpoint(tx, &b, &sig))?;
    Ok(body)
}

/// Signs a retention anchor for a chain that starts after seq 1 (a workspace
/// moved in from another appliance, whose source had applied retention): the
/// caller has checked it against the source's own signed checkpoint.
pub fn sign_anchor(
    control: &Control,
    scope: &str,
    seq: i64,
    hash: Vec<u8>,
    now: i64,
) -> Result<CheckpointBody> {
    sign_and_store(
        control,
        CheckpointBody {
            scope: scope.to_owned(),
            seq,
            hash,
            time: now,
            reason: "retention".into(),
        },
    )
}

/// Signs the head of the platform chain.
pub fn checkpoint_platform(control: &Control, reason: &str, now: i64) -> Result<CheckpointBody> {
    let (seq, hash) = control.db.read(sql::head)?;
    sign_and_store(
        control,
        CheckpointBody {
            scope: PLATFORM.into(),
            seq,
            hash,
            time: now,
            reason: reason.into(),
        },
    )
}

/// Signs the head of one workspace chain; the checkpoint lives in control.db.
pub fn checkpoint_workspace(
    control: &Control,
    tenant: &TenantDb,
    reason: &str,
    now: i64,
) -> Result<CheckpointBody> {
    let (seq, hash) = tenant.read_blocking(|c, _| sql::head(c))?;
    sign_and_store(
        control,
        CheckpointBody {
            scope: tenant.id().to_string(),
            seq,
            hash,
            time: now,
            reason: reason.into(),
        },
    )
}

/// Signs every chain whose head moved since its last checkpoint.
pub fn checkpoint_all(
    control: &Control,
    pool: &TenantPool,
    reason: &str,
    now: i64,
) -> Result<usize> {
    let mut signed = 0;
    for chain in all_chains(control)? {
        let scope = chain.scope();
        let last = control.db.read(|c| sql::latest_checkpoint(c, &scope))?;
        let head = match chain {
            Chain::Platform => control.db.read(sql::head)?,
            Chain::Workspace(ws) => open_tenant(control, pool, ws, "audit checkpoint")?
                .read_blocking(|c, _| sql::head(c))?,
        };
        if last.is_some_and(|l| l.body.seq == head.0 && l.body.hash == head.1) {
            continue;
        }
        match chain {
            Chain::Platform => checkpoint_platform(control, reason, now)?,
            Chain::Workspace(ws) => checkpoint_workspace(
                control,
                &open_tenant(control, pool, ws, "audit checkpoint")?,
                reason,
                now,
            )?,
        };
        signed += 1;
    }
    Ok(signed)
}

/// Entries read per page while verifying: memory stays at one page however
/// long the chain is.
const VERIFY_PAGE: i64 = 128;

/// Verifies one chain, streaming it page by page (keyset by seq) inside one
/// read snapshot, so a concurrent append or retention cannot tear it.
pub fn verify_chain(control: &Control, pool: &TenantPool, chain: Chain) -> Result<ChainReport> {
    let scope = chain.scope();
    let (checkpoints, pk) = control
        .db
        .read(|c| Ok((sql::checkpoints(c, &scope)?, stored_public_key(c)?)))?;
    let mut v = Verifier::new(&scope, &checkpoints, pk.as_ref());
    let mut unlisted = None;
    match chain {
        Chain::Platform => control
            .db
            .read(|c| sql::in_snapshot(c, || walk(c, None, &mut v, &mut unlisted)))?,
        Chain::Workspace(ws) => {
            let t = open_tenant(control, pool, ws, "audit verification")?;
            t.read_blocking(|c, s| {
                sql::in_snapshot(c, || walk(c, Some(s), &mut v, &mut unlisted))
            })?;
        }
    }
    let mut report = v.finish();
    if let (true, Some((seq, reason))) = (report.ok(), unlisted) {
        report.first_bad_seq = Some(seq);
        report.reason = Some(reason);
    }
    Ok(report)
}

/// Verifies the chain in `conn` (a restored copy, say) without the
/// workspace key, streaming it like `verify_chain`.
pub fn verify_conn(
    conn: &rusqlite::Connection,
    scope: &str,
    checkpoints: &[super::verify::SignedCheckpoint],
    public_key: Option<&[u8; 32]>,
) -> Result<ChainReport> {
    let mut v = Verifier::new(scope, checkpoints, public_key);
    sql::in_snapshot(conn, || walk(conn, None, &mut v, &mut None))?;
    Ok(v.finish())
}

/// Feeds every entry to the verifier. With the workspace key, a replaced
/// entry must also be listed by the entry that replaced it (its sealed
/// `audit_seqs`), so an anonymisation cannot be borrowed to cover a hand edit
/// of any other entry; the first that is not lands in `unlisted`.
fn walk(
    c: &rusqlite::Connection,
    sealer: Option<&crate::crypto::Sealer>,
    v: &mut Verifier,
    unlisted: &mut Option<(i64, String)>,
) -> Result<()> {
    // The lists of the few replacing entries met lately, by their seq.
    let mut lists: HashMap<i64, HashSet<i64>> = HashMap::new();
    let mut after = 0;
    loop {
        let page = sql::entries_after(c, after, VERIFY_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            v.feed(e, &mut |seq| {
                sql::entry(c, seq).ok().flatten().map(|r| r.action)
            });
            let (Some(sealer), Some(by), None) = (sealer, e.redacted_by, &unlisted) else {
                continue;
            };
            if !lists.contains_key(&by) {
                if lists.len() >= 64 {
                    lists.clear();
                }
                let listed = sql::entry(c, by)?
                    .map(|r| listed_seqs(&r, sealer))
                    .unwrap_or_default();
                lists.insert(by, listed);
            }
            if !lists.get(&by).is_some_and(|l| l.contains(&e.seq)) {
                *unlisted = Some((
                    e.seq,
                    format!("the entry's details were replaced, but entry {by} does not list it"),
                ));
            }
        }
        if (page.len() as i64) < VERIFY_PAGE {
            break;
        }
    }
    Ok(())
}

/// The seqs a replacing entry lists in its sealed `audit_seqs`.
fn listed_seqs(r: &super::StoredEntry, sealer: &crate::crypto::Sealer) -> HashSet<i64> {
    let d = super::search::detail(r, sealer);
    ["after", "before"]
        .iter()
        .filter_map(|side| {
            d.get(side)
                .and_then(|s| s.get("audit_seqs"))
                .and_then(|a| a.as_array())
        })
        .flat_map(|a| a.iter().filter_map(|v| v.as_i64()))
        .collect()
}

pub fn record_verification(control: &Control, report: &ChainReport, now: i64) -> Result<()> {
    control
        .db
        .write(|tx| sql::insert_verification(tx, report, now))
}

/// Removes entries older than the retention period behind a signed
/// checkpoint, so the rest of the chain still verifies. The newest entry is
/// always kept, and the removal itself is recorded in the chain.
pub fn apply_retention(
    control: &Control,
    pool: &TenantPool,
    chain: Chain,
    default_days: u32,
    now: i64,
) -> Result<Option<(i64, usize)>> {
    let meta = RequestMeta::default();
    match chain {
        Chain::Platform => {
            let cutoff = now - i64::from(default_days) * 86_400;
            let Some(k) = retention_point(
                control
                    .db
                    .read(|c| Ok((sql::last_seq_before(c, cutoff)?, sql::head(c)?.0)))?,
            ) else {
                return Ok(None);
            };
            let hash = control
                .db
                .read(|c| sql::entry(c, k))?
                .map(|e| e.hash)
                .unwrap_or_default();
            sign_and_store(
                control,
                CheckpointBody {
                    scope: PLATFORM.into(),
                    seq: k,
                    hash,
                    time: now,
                    reason: "retention".into(),
                },
            )?;
            let keys = control.keys.clone();
            let removed = control.db.write(|tx| {
                let n = sql::delete_through(tx, k)?;
                sql::append(
                    tx,
                    &keys.sealer,
                    now,
                    &NewEntry::new(Actor::System, "audit.retention_applied", &meta).after(
                        json!({ "through_seq": k, "removed": n, "retention_days": default_days }),
                    ),
                )?;
                Ok(n)
            })?;
            Ok(Some((k, removed)))
        }
        Chain::Workspace(ws) => {
            let tenant = open_tenant(control, pool, ws, "audit retention")?;
            let days = tenant
                .read_blocking(|c, _| crate::store::tenant_settings::audit_retention_days(c))?
                .unwrap_or(default_days);
            let cutoff = now - i64::from(days) * 86_400;
            let Some(k) =
                retention_point(tenant.read_blocking(|c, _| {
                    Ok((sql::last_seq_before(c, cutoff)?, sql::head(c)?.0))
                })?)
            else {
                return Ok(None);
            };
            let hash = tenant
                .read_blocking(|c, _| sql::entry(c, k))?
                .map(|e| e.hash)
                .unwrap_or_default();
            sign_and_store(
                control,
                CheckpointBody {
                    scope: ws.to_string(),
                    seq: k,
                    hash,
                    time: now,
                    reason: "retention".into(),
                },
            )?;
            let removed = tenant.write_blocking(|t| {
                let n = sql::delete_through(t.tx, k)?;
                t.audit(
                    now,
                    &NewEntry::new(Actor::System, "audit.retention_applied", &meta)
                        .after(json!({ "through_seq": k, "removed": n, "retention_days": days })),
                )?;
                Ok(n)
            })?;
            Ok(Some((k, removed)))
        }
    }
}

/// The last seq to remove: older than the cutoff, but never the head.
fn retention_point((before_cutoff, head): (Option<i64>, i64)) -> Option<i64> {
    before_cutoff.map(|k| k.min(head - 1)).filter(|k| *k >= 1)
}
