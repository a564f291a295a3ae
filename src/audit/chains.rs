//! Operations over whole chains: signing checkpoints, verifying, retention.
//! These run in the CLI and in the background jobs, on the blocking pool; they
//! reach workspaces through the audited system handle only.

use serde_json::json;

use super::signing::{CheckpointBody, stored_public_key};
use super::verify::{ChainReport, verify};
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

pub fn verify_chain(control: &Control, pool: &TenantPool, chain: Chain) -> Result<ChainReport> {
    let scope = chain.scope();
    let (checkpoints, pk) = control
        .db
        .read(|c| Ok((sql::checkpoints(c, &scope)?, stored_public_key(c)?)))?;
    let (entries, sealer) = match chain {
        Chain::Platform => (control.db.read(sql::all_entries)?, None),
        Chain::Workspace(ws) => {
            let t = open_tenant(control, pool, ws, "audit verification")?;
            let entries = t.read_blocking(|c, _| sql::all_entries(c))?;
            (entries, Some(t))
        }
    };
    let mut report = verify(&scope, &entries, &checkpoints, pk.as_ref());
    if let (true, Some(t)) = (report.ok(), sealer) {
        if let Some((seq, reason)) = redactions_unlisted(&entries, t.sealer()) {
            report.first_bad_seq = Some(seq);
            report.reason = Some(reason);
        }
    }
    Ok(report)
}

/// With the workspace key, a replaced entry must also be listed by the entry
/// that replaced it (its sealed `audit_seqs`), so an anonymisation cannot be
/// borrowed to cover a hand edit of any other entry.
fn redactions_unlisted(
    entries: &[super::StoredEntry],
    sealer: &crate::crypto::Sealer,
) -> Option<(i64, String)> {
    let first = entries.first()?.seq;
    for e in entries {
        let Some(by) = e.redacted_by else { continue };
        let listed = usize::try_from(by - first)
            .ok()
            .and_then(|i| entries.get(i))
            .map(|r| super::search::detail(r, sealer))
            .and_then(|d| {
                ["after", "before"].iter().find_map(|side| {
                    d.get(side)
                        .and_then(|s| s.get("audit_seqs"))
                        .and_then(|a| a.as_array())
                        .map(|a| a.iter().any(|v| v.as_i64() == Some(e.seq)))
                })
            })
            .unwrap_or(false);
        if !listed {
            return Some((
                e.seq,
                format!("the entry's details were replaced, but entry {by} does not list it"),
            ));
        }
    }
    None
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
