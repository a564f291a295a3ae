//! Operations over whole chains: signing checkpoints, verifying, retention.
//! These run in the CLI and in the background jobs, on the blocking pool; they
//! reach workspaces through the audited system handle only.

use serde_json::json;

use super::signing::CheckpointBody;
use super::verify::{ChainReport, Entries, Inputs, SignedCheckpoint, check};
use super::{Actor, NewEntry, RequestMeta};
use crate::access::SystemTask;
use crate::error::Result;
use crate::ids::WorkspaceId;
use crate::store::audit as sql;
use crate::store::control::{self, Control};
use crate::store::idle_stamps;
use crate::store::tenant::{FileStamp, TenantDb, TenantPool, Visit};

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
    why: SystemTask,
) -> Result<TenantDb> {
    pool.open(control, &why.grant(ws))
}

/// `open_tenant` for a walk over every chain: the workspace closes again
/// after the look unless it was open before (`TenantPool::visit`).
pub fn visit_tenant<'p>(
    control: &Control,
    pool: &'p TenantPool,
    ws: WorkspaceId,
    why: SystemTask,
) -> Result<Visit<'p>> {
    pool.visit(control, &why.grant(ws))
}

/// Signs `body` as the next link of its scope's checkpoint chain. Reading the
/// chain's tip and inserting happen in one write transaction, so two signers
/// (the schedule and an export, say) cannot fork the chain.
fn sign_and_store(control: &Control, mut body: CheckpointBody) -> Result<CheckpointBody> {
    let signer = control.signer.clone();
    control.db.write(|tx| {
        let last = sql::latest_checkpoint(tx, &body.scope)?;
        body.link = Some(CheckpointBody::link_after(last.as_ref().map(|l| &l.body)));
        let sig = signer.sign(&body);
        sql::insert_checkpoint(tx, &body, &sig)
    })?;
    Ok(body)
}

/// Signs the head of a workspace chain that was just put back from a backup:
/// a `restore` checkpoint, which tells verifiers that earlier checkpoints of
/// the old timeline at or above its seq no longer apply (they stay in the
/// checkpoint chain, so the chain itself stays whole).
pub fn checkpoint_restored(
    control: &Control,
    tenant: &TenantDb,
    now: i64,
) -> Result<CheckpointBody> {
    checkpoint_workspace(control, tenant, "restore", now)
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
            link: None,
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
            link: None,
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
            link: None,
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
    Ok(sign_heads(control, pool, reason, now, None)?.signed)
}

/// The newest checkpoint (by chain index) the running server has seen or
/// signed for each chain. It lives in memory only, where someone who edits
/// the data dir cannot reach it: if a chain's newest checkpoint goes
/// backwards while the server runs, checkpoints were deleted, and the server
/// must not sign a new head over whatever was rewritten under them.
///
/// It also keeps, per workspace, the file stamp taken before the last pass
/// that found its head signed: a workspace whose files have not changed since
/// is skipped without being opened (ten thousand mostly idle workspaces
/// stay closed between passes). The stamps are kept in control.db too
/// (`store::idle_stamps`), so the first pass after a start skips them as
/// well; a forged stamp can only make the signer skip a workspace.
#[derive(Debug, Default)]
pub struct SeenTips(
    std::sync::Mutex<std::collections::HashMap<String, i64>>,
    std::sync::Mutex<Stamps>,
);

/// The stamps, whether they were read from control.db yet, and what was
/// saved there last.
#[derive(Debug, Default)]
pub struct Stamps {
    by_workspace: std::collections::HashMap<WorkspaceId, FileStamp>,
    loaded: bool,
    saved: std::collections::HashMap<WorkspaceId, FileStamp>,
}

impl SeenTips {
    fn unchanged(&self, ws: WorkspaceId, stamp: Option<FileStamp>) -> bool {
        stamp.is_some()
            && self
                .1
                .lock()
                .is_ok_and(|m| m.by_workspace.get(&ws).copied() == stamp)
    }

    fn note_signed(&self, ws: WorkspaceId, stamp: Option<FileStamp>) {
        if let Ok(mut m) = self.1.lock() {
            match stamp {
                Some(st) => m.by_workspace.insert(ws, st),
                None => m.by_workspace.remove(&ws),
            };
        }
    }

    /// Reads the saved stamps once, before the first pass. A failed read
    /// costs looks, never a pass: logged, and the pass opens them all.
    fn load(&self, control: &Control) {
        let Ok(mut m) = self.1.lock() else {
            return;
        };
        if m.loaded {
            return;
        }
        m.loaded = true;
        match control
            .db
            .read(|c| idle_stamps::load(c, idle_stamps::Pass::Checkpoint))
        {
            Ok(saved) => {
                // A stamp noted meanwhile is newer than the saved one.
                for (ws, st) in &saved {
                    m.by_workspace.entry(*ws).or_insert(*st);
                }
                m.saved = saved;
            }
            Err(e) => tracing::warn!(error = %e, "reading the checkpoint pass's saved file stamps"),
        }
    }

    /// Saves the stamps that changed since the last save. A failed save is
    /// logged; the next pass tries again.
    fn save(&self, control: &Control) {
        let (before, now) = match self.1.lock() {
            Ok(m) if m.by_workspace != m.saved => (m.saved.clone(), m.by_workspace.clone()),
            _ => return,
        };
        let saved = control
            .db
            .write(|tx| idle_stamps::save(tx, idle_stamps::Pass::Checkpoint, &before, &now));
        match saved {
            Ok(()) => {
                if let Ok(mut m) = self.1.lock() {
                    m.saved = now;
                }
            }
            Err(e) => tracing::warn!(error = %e, "saving the checkpoint pass's file stamps"),
        }
    }
}

/// What one pass of the signer did.
pub struct Signed {
    pub signed: usize,
    /// Workspaces it opened to read their head (the others were skipped).
    pub opened: usize,
    pub refused: Vec<Refused>,
}

/// A chain the scheduled signer refused to sign, and why.
pub struct Refused {
    pub scope: String,
    pub tip_seq: i64,
    pub reason: String,
}

/// `checkpoint_all` for the running server: refuses to sign a chain whose
/// newest checkpoint is older than one it saw before.
pub fn checkpoint_all_watched(
    control: &Control,
    pool: &TenantPool,
    reason: &str,
    now: i64,
    seen: &SeenTips,
) -> Result<Signed> {
    sign_heads(control, pool, reason, now, Some(seen))
}

fn sign_heads(
    control: &Control,
    pool: &TenantPool,
    reason: &str,
    now: i64,
    seen: Option<&SeenTips>,
) -> Result<Signed> {
    let mut signed = 0;
    let mut opened = 0;
    let mut refused = Vec::new();
    if let Some(s) = seen {
        s.load(control);
    }
    let chains = all_chains(control)?;
    let mut known = match seen {
        Some(s) => {
            s.0.lock()
                .map_err(|_| crate::error::Error::internal("checkpoint tips lock poisoned"))?
                .clone()
        }
        None => Default::default(),
    };
    let scopes: Vec<String> = chains.iter().map(Chain::scope).collect();
    known.retain(|scope, _| scopes.contains(scope));
    for chain in chains {
        let scope = chain.scope();
        let last = control.db.read(|c| sql::latest_checkpoint(c, &scope))?;
        let tip = last
            .as_ref()
            .and_then(|l| l.body.link.as_ref())
            .map(|l| l.index)
            .unwrap_or(0);
        if let Some(&before) = known.get(&scope) {
            if tip < before {
                refused.push(Refused {
                    scope: scope.clone(),
                    tip_seq: last.as_ref().map(|l| l.body.seq).unwrap_or(0),
                    reason: format!(
                        "the chain's newest signed checkpoint went back from #{before} to #{tip} while the server ran: checkpoints were deleted; not signing this chain (run `aura audit verify --anchor` with your newest backup's manifest)"
                    ),
                });
                continue;
            }
        }
        known.insert(scope.clone(), tip);
        // Taken before the look: a commit after it changes the next stamp.
        let stamp = match (chain, seen) {
            (Chain::Workspace(ws), Some(s)) => {
                let st = pool.file_stamp(ws);
                if last.is_some() && s.unchanged(ws, st) {
                    continue;
                }
                st
            }
            _ => None,
        };
        let note = |chain: Chain| {
            if let (Chain::Workspace(ws), Some(s)) = (chain, seen) {
                s.note_signed(ws, stamp);
            }
        };
        opened += usize::from(matches!(chain, Chain::Workspace(_)));
        let tenant = match chain {
            Chain::Platform => None,
            Chain::Workspace(ws) => Some(visit_tenant(
                control,
                pool,
                ws,
                SystemTask::AuditCheckpoint,
            )?),
        };
        let head = match &tenant {
            None => control.db.read(sql::head)?,
            Some(t) => t.read_blocking(|c, _| sql::head(c))?,
        };
        if last.is_some_and(|l| l.body.seq == head.0 && l.body.hash == head.1) {
            note(chain);
            continue;
        }
        let body = match &tenant {
            None => checkpoint_platform(control, reason, now)?,
            Some(t) => checkpoint_workspace(control, t, reason, now)?,
        };
        if let Some(l) = body.link {
            known.insert(scope, l.index);
        }
        note(chain);
        signed += 1;
    }
    if let Some(s) = seen {
        let mut map =
            s.0.lock()
                .map_err(|_| crate::error::Error::internal("checkpoint tips lock poisoned"))?;
        // Keep the higher of what another caller stored meanwhile.
        for (scope, index) in known {
            let e = map.entry(scope).or_insert(index);
            *e = (*e).max(index);
        }
        map.retain(|scope, _| scopes.contains(scope));
        drop(map);
        s.save(control);
    }
    Ok(Signed {
        signed,
        opened,
        refused,
    })
}

/// How old an unsigned entry may be before verification calls it uncovered:
/// two checkpoint intervals.
pub fn max_unsigned_age(checkpoint_interval_secs: u64) -> i64 {
    i64::try_from(checkpoint_interval_secs)
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(2)
}

/// Verifies one live chain with every check: entries, the checkpoint chain,
/// coverage of entries older than `max_unsigned_age` at `now`, redactions
/// (with the workspace key), and `anchors` kept outside the data dir. The
/// public key is the one derived from the sealed signing key, so a public
/// key swapped in control.db does not vouch for forged checkpoints. The
/// chain is streamed page by page inside one read snapshot (so a concurrent
/// append or retention cannot tear it), never held whole in memory.
pub fn verify_chain(
    control: &Control,
    pool: &TenantPool,
    chain: Chain,
    now: i64,
    max_unsigned_age: i64,
    anchors: &[SignedCheckpoint],
) -> Result<ChainReport> {
    let scope = chain.scope();
    let checkpoints = control.db.read(|c| sql::checkpoints(c, &scope))?;
    let pk = control.signer.public_key();
    let anchors: Vec<SignedCheckpoint> = anchors
        .iter()
        .filter(|a| a.body.scope == scope)
        .cloned()
        .collect();
    let run = |entries: Entries<'_>, sealer: Option<&crate::crypto::Sealer>| {
        check(&Inputs {
            scope: &scope,
            entries,
            checkpoints: &checkpoints,
            public_key: Some(&pk),
            sealer,
            freshness: Some((now, max_unsigned_age)),
            anchors: &anchors,
        })
    };
    match chain {
        Chain::Platform => control.db.read(|c| run(Entries::Db(c), None)),
        Chain::Workspace(ws) => {
            let t = visit_tenant(control, pool, ws, SystemTask::AuditVerification)?;
            t.read_blocking(|c, s| run(Entries::Db(c), Some(s)))
        }
    }
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
                    link: None,
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
            // The retention record is signed at once, so the chain's head is
            // never left uncovered.
            checkpoint_platform(control, "schedule", now)?;
            Ok(Some((k, removed)))
        }
        Chain::Workspace(ws) => {
            let tenant = visit_tenant(control, pool, ws, SystemTask::AuditRetention)?;
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
                    link: None,
                },
            )?;
            let removed = tenant.write_blocking(|t| {
                let n = sql::delete_through(t, k)?;
                // Search indexes (persisted ones too, in any process) still
                // hold the removed entries' words: they rebuild.
                crate::store::tenant_settings::bump_generation_in(t)?;
                t.audit(
                    now,
                    &NewEntry::new(Actor::System, "audit.retention_applied", &meta)
                        .after(json!({ "through_seq": k, "removed": n, "retention_days": days })),
                )?;
                Ok(n)
            })?;
            checkpoint_workspace(control, &tenant, "schedule", now)?;
            Ok(Some((k, removed)))
        }
    }
}

/// The last seq to remove: older than the cutoff, but never the head.
fn retention_point((before_cutoff, head): (Option<i64>, i64)) -> Option<i64> {
    before_cutoff.map(|k| k.min(head - 1)).filter(|k| *k >= 1)
}
