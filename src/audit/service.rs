//! What the API, the UI and the CLI call: search, read, export, verify and
//! retention settings for one chain, each on the blocking pool.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use super::chains::{self, Chain};
use super::export::{self, CheckpointLine, Format};
use super::search::{self, EntryView, SearchPage, SearchParams};
use super::verify::ChainReport;
use super::{Actor, NewEntry, RequestMeta};
use crate::access::SystemTask;
use crate::access::enter::TenantHandle;
use crate::bounds::DataBounds;
use crate::bounds::paced::PacedSender;
use crate::clock::SharedClock;
use crate::config::AuditConfig;
use crate::error::{Error, Result};
use crate::records::visibility::{ReadScope, Reader};
use crate::search::IndexRegistry;
use crate::store::audit::{self as sql, SqlFilter, VerificationRow};
use crate::store::control::Control;
use crate::store::tenant::TenantPool;
use crate::store::tenant_settings;

/// What the audit service needs from the appliance beyond a workspace
/// handle: narrow values, borrowed for one call (`AppState::audit_deps`).
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub control: &'a Arc<Control>,
    pub tenants: &'a Arc<TenantPool>,
    pub clock: &'a SharedClock,
    pub bounds: &'a DataBounds,
    pub indexes: &'a IndexRegistry,
    pub config: &'a AuditConfig,
}

fn index_key(chain: Chain) -> String {
    format!("audit:{}", chain.scope())
}

/// Builds search parameters from raw query values, naming any bad field.
#[allow(clippy::too_many_arguments)]
pub fn params(
    q: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    ip: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
) -> Result<SearchParams> {
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let mut errors = Vec::new();
    let mut time = |field: &str, v: Option<String>| match nonempty(v) {
        Some(v) => search::parse_time(field, &v)
            .map_err(|e| collect(&mut errors, e))
            .ok(),
        None => None,
    };
    let from = time("from", from);
    let to = time("to", to);
    let before_seq = match nonempty(cursor) {
        Some(c) => match c.parse::<i64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                errors.push(field_error(
                    "cursor",
                    "must be a next_cursor value from a previous page",
                ));
                None
            }
        },
        None => None,
    };
    let limit = limit.unwrap_or(search::DEFAULT_LIMIT);
    if !(1..=search::MAX_LIMIT).contains(&limit) {
        errors.push(field_error(
            "limit",
            &format!("must be between 1 and {}", search::MAX_LIMIT),
        ));
    }
    let q = nonempty(q);
    if q.as_ref().is_some_and(|q| q.len() > 500) {
        errors.push(field_error("q", "must be at most 500 characters"));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(SearchParams {
        q,
        filter: SqlFilter {
            actor: nonempty(actor),
            action: nonempty(action),
            target: nonempty(target),
            ip: nonempty(ip),
            from,
            to,
            before_seq,
            ..SqlFilter::default()
        },
        limit,
        ..SearchParams::default()
    })
}

fn field_error(field: &str, message: &str) -> crate::error::FieldError {
    crate::error::FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn collect(errors: &mut Vec<crate::error::FieldError>, e: Error) {
    if let Error::Validation(mut v) = e {
        errors.append(&mut v);
    }
}

/// The search pool's slot, and the budget and word limit, for one search.
async fn bounded(
    bounds: &DataBounds,
    mut p: SearchParams,
) -> Result<(crate::bounds::Slot, SearchParams)> {
    let slot = bounds.search.slot().await?;
    p.max_terms = bounds.limits.search_max_terms;
    p.budget = Some(bounds.search_budget());
    Ok((slot, p))
}

pub async fn search_workspace(
    deps: Deps<'_>,
    ctx: &TenantHandle,
    p: SearchParams,
) -> Result<SearchPage> {
    let (_slot, p) = bounded(deps.bounds, p).await?;
    let open = workspace_index(&deps, &ctx.db);
    let reader = Reader::of(ctx);
    let defs = ctx.db.defs();
    ctx.db
        .read(move |conn, sealer| {
            // Opening decrypts the index files: on the blocking pool.
            let index = open()?;
            let scope = reader.scope(conn, sealer, &defs)?;
            search::search(conn, sealer, &index, &p, &scope)
        })
        .await
}

/// Opens (on first use) a workspace's persisted audit index.
fn workspace_index(
    deps: &Deps<'_>,
    db: &crate::store::tenant::TenantDb,
) -> impl FnOnce() -> Result<Arc<std::sync::Mutex<crate::search::MemIndex>>> + Send + 'static {
    let registry = deps.indexes.clone();
    let key = index_key(Chain::Workspace(db.id()));
    let disk = crate::search::index_dir(db.dir(), "audit");
    let (sealer, alive) = (db.keys().search.clone(), db.liveness());
    move || registry.get_sealed(&key, &disk, sealer, alive)
}

pub async fn search_platform(deps: Deps<'_>, p: SearchParams) -> Result<SearchPage> {
    let (_slot, p) = bounded(deps.bounds, p).await?;
    let index = deps.indexes.get(&index_key(Chain::Platform))?;
    let keys = deps.control.keys.clone();
    deps.control
        .db
        .read_async(move |conn| {
            search::search(conn, &keys.sealer, &index, &p, &ReadScope::everything())
        })
        .await
}

pub async fn entry_workspace(ctx: &TenantHandle, seq: i64) -> Result<EntryView> {
    let reader = Reader::of(ctx);
    let defs = ctx.db.defs();
    ctx.db
        .read(move |conn, sealer| {
            let scope = reader.scope(conn, sealer, &defs)?;
            sql::entry(conn, seq)?
                .map(|e| search::view_in(&e, sealer, &scope))
                .ok_or(Error::NotFound("audit entry"))
        })
        .await
}

pub async fn entry_platform(control: &Control, seq: i64) -> Result<EntryView> {
    let keys = control.keys.clone();
    control
        .db
        .read_async(move |conn| {
            sql::entry(conn, seq)?
                .map(|e| search::view(&e, &keys.sealer))
                .ok_or(Error::NotFound("audit entry"))
        })
        .await
}

pub type ExportStream = crate::bounds::paced::BodyStream;

/// Records the export in the chain, signs the head (which includes that
/// record), and streams everything up to the head, with the values of
/// collections `reader` may not read withheld (`None`: the operator, who
/// reads everything). Returns the checkpoint line and the body stream.
/// Exports the workspace's own chain, for the request's actor, with the
/// values of collections they may not read withheld.
pub async fn export_workspace(
    deps: Deps<'_>,
    ctx: &TenantHandle,
    filter: SqlFilter,
    format: Format,
) -> Result<(CheckpointLine, ExportStream)> {
    let chain = Chain::Workspace(ctx.db.id());
    let reader = Some(Reader::of(ctx));
    export(
        deps,
        chain,
        filter,
        format,
        ctx.actor.clone(),
        &ctx.meta,
        reader,
    )
    .await
}

pub async fn export(
    deps: Deps<'_>,
    chain: Chain,
    filter: SqlFilter,
    format: Format,
    actor: Actor,
    meta: &RequestMeta,
    reader: Option<Reader>,
) -> Result<(CheckpointLine, ExportStream)> {
    let filtered = filter.actor.is_some()
        || filter.action.is_some()
        || filter.target.is_some()
        || filter.ip.is_some()
        || filter.from.is_some()
        || filter.to.is_some();
    // Capped in all and per chain (429 beyond), before anything is written.
    let slot = deps.bounds.export_slot(&chain.scope()).await?;
    let now = deps.clock.unix();
    let detail = json!({ "format": format.extension(), "filtered": filtered });
    let meta = meta.clone();
    let (control, tenants) = (Arc::clone(deps.control), Arc::clone(deps.tenants));
    let line = tokio::task::spawn_blocking(move || -> Result<CheckpointLine> {
        let body = match chain {
            Chain::Platform => {
                control.audit_alone(
                    now,
                    &NewEntry::new(actor, "audit.exported", &meta).after(detail),
                )?;
                chains::checkpoint_platform(&control, "export", now)?
            }
            Chain::Workspace(ws) => {
                let t = chains::open_tenant(&control, &tenants, ws, SystemTask::AuditExport)?;
                t.write_blocking(|t| {
                    t.audit(
                        now,
                        &NewEntry::new(actor, "audit.exported", &meta).after(detail),
                    )
                })?;
                chains::checkpoint_workspace(&control, &t, "export", now)?
            }
        };
        let sig = control.signer.sign(&body);
        Ok(CheckpointLine::new(
            &body,
            &sig,
            &control.signer.public_key(),
            filtered,
        ))
    })
    .await??;

    let lim = &deps.bounds.limits;
    let (mut tx, rx) = PacedSender::channel(
        std::time::Duration::from_secs(lim.export_stall_secs),
        lim.export_min_bytes_per_sec,
        Some(slot),
    );
    let (control, tenants) = (Arc::clone(deps.control), Arc::clone(deps.tenants));
    let header = line.clone();
    // An async producer reading bounded pages (keyset by seq), so a slow
    // reader holds neither a thread nor more than a page or two in memory.
    tokio::spawn(async move {
        let tenant = match chain {
            Chain::Platform => None,
            Chain::Workspace(ws) => {
                let grant = crate::access::SystemTask::AuditExport.grant(ws);
                match tenants.open_async(&control, grant).await {
                    Ok(t) => Some(t),
                    Err(e) => {
                        tracing::warn!(error = %e, "audit export stopped");
                        tx.fail("export failed");
                        return;
                    }
                }
            }
        };
        // Which collections' values this reader may see, decided once.
        let scope = match &tenant {
            None => Ok(ReadScope::everything()),
            Some(t) => {
                let defs = t.defs();
                t.read(move |c, s| ReadScope::of(reader.as_ref(), c, s, &defs))
                    .await
            }
        };
        let scope = match scope {
            Ok(scope) => std::sync::Arc::new(scope),
            Err(e) => {
                tracing::warn!(error = %e, "audit export stopped");
                tx.fail("export failed");
                return;
            }
        };
        let first = export::head_bytes(format, &header);
        let mut next = match first {
            Ok(b) => Some((b, Some(0))),
            Err(_) => None,
        };
        while let Some((bytes, after)) = next.take() {
            if !bytes.is_empty() && tx.send(Bytes::from(bytes)).await.is_err() {
                return;
            }
            let Some(after) = after else { return };
            let (f, h, sc) = (
                filter.clone(),
                header.clone(),
                std::sync::Arc::clone(&scope),
            );
            let page = match &tenant {
                None => {
                    let keys = control.keys.clone();
                    control
                        .db
                        .read_async(move |c| {
                            export::page(c, &keys.sealer, &f, format, &h, &sc, after)
                        })
                        .await
                }
                Some(t) => {
                    t.read(move |c, s| export::page(c, s, &f, format, &h, &sc, after))
                        .await
                }
            };
            match page {
                Ok(p) => next = Some((p.bytes, p.next_after)),
                Err(e) => {
                    tracing::warn!(error = %e, "audit export stopped");
                    tx.fail("export failed");
                    return;
                }
            }
        }
    });
    Ok((line, rx))
}

/// Verifies one chain now, records the result, and notes it in the platform chain.
pub async fn verify_now(
    deps: Deps<'_>,
    chain: Chain,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<ChainReport> {
    let (control, tenants) = (Arc::clone(deps.control), Arc::clone(deps.tenants));
    let now = deps.clock.unix();
    let meta = meta.clone();
    let interval = deps.config.checkpoint_interval_secs;
    // The bulk pool: few at once, a short queue, 429 beyond (finding 4).
    deps.bounds.bulk.run(move || {
        let report = chains::verify_chain(
            &control,
            &tenants,
            chain,
            now,
            chains::max_unsigned_age(interval),
            &[],
        )?;
        chains::record_verification(&control, &report, now)?;
        control.audit_alone(
            now,
            &NewEntry::new(actor, "audit.verified", &meta)
                .target("audit_chain", chain.scope())
                .after(json!({ "ok": report.ok(), "entries": report.entries, "first_bad_seq": report.first_bad_seq })),
        )?;
        Ok(report)
    })
    .await
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ChainStatus {
    pub last_verification: Option<VerificationRow>,
    pub checkpoint_seq: Option<i64>,
    pub checkpoint_time: Option<i64>,
    pub retention_days: u32,
}

/// The platform chain's verification, newest checkpoint and retention.
pub async fn status_platform(deps: Deps<'_>) -> Result<ChainStatus> {
    chain_status(deps.control, Chain::Platform, deps.config.retention_days).await
}

/// The same for the request's workspace, its retention read through the
/// request's own handle.
pub async fn status_workspace(deps: Deps<'_>, ctx: &TenantHandle) -> Result<ChainStatus> {
    let default_days = deps.config.retention_days;
    let retention_days = ctx
        .db
        .read(|c, _| tenant_settings::audit_retention_days(c))
        .await?
        .unwrap_or(default_days);
    chain_status(deps.control, Chain::Workspace(ctx.db.id()), retention_days).await
}

async fn chain_status(
    control: &Arc<Control>,
    chain: Chain,
    retention_days: u32,
) -> Result<ChainStatus> {
    let scope = chain.scope();
    let (v, cp) = control
        .db
        .read_async(move |c| {
            Ok((
                sql::latest_verification(c, &scope)?,
                sql::latest_checkpoint(c, &scope)?,
            ))
        })
        .await?;
    Ok(ChainStatus {
        last_verification: v,
        checkpoint_seq: cp.as_ref().map(|c| c.body.seq),
        checkpoint_time: cp.as_ref().map(|c| c.body.time),
        retention_days,
    })
}

pub async fn set_retention(ctx: &TenantHandle, config: &AuditConfig, days: u32) -> Result<u32> {
    if !(7..=36_500).contains(&days) {
        return Err(Error::field(
            "retention_days",
            "must be between 7 and 36500",
        ));
    }
    let now = ctx.now();
    let default_days = config.retention_days;
    let meta = ctx.meta.clone();
    // The request's actor: a token or impersonating staff are named as such.
    let actor = ctx.actor.clone();
    ctx.db
        .write(move |t| {
            let before = tenant_settings::audit_retention_days(t)?.unwrap_or(default_days);
            tenant_settings::set_audit_retention_days(t, days)?;
            t.audit(
                now,
                &NewEntry::new(actor, "audit.retention_changed", &meta)
                    .before(json!({ "retention_days": before }))
                    .after(json!({ "retention_days": days })),
            )?;
            Ok(days)
        })
        .await
}

/// The newest entry of one action in the platform chain, decrypted (for the
/// backups page, /trust and /metrics). Blocking.
pub fn last_platform_entry(control: &Control, action: &str) -> Option<EntryView> {
    let f = SqlFilter {
        action: Some(action.to_owned()),
        ..Default::default()
    };
    let keys = control.keys.clone();
    control
        .db
        .read(|c| {
            Ok(sql::query(c, &f, 1)?
                .first()
                .map(|e| search::view(e, &keys.sealer)))
        })
        .ok()
        .flatten()
}

/// The newest `n` entries of `action` in the platform chain, newest first
/// (none when they cannot be read).
pub fn recent_platform_entries(control: &Control, action: &str, n: i64) -> Vec<EntryView> {
    let f = SqlFilter {
        action: Some(action.to_owned()),
        ..Default::default()
    };
    let keys = control.keys.clone();
    control
        .db
        .read(|c| {
            Ok(sql::query(c, &f, n)?
                .iter()
                .map(|e| search::view(e, &keys.sealer))
                .collect())
        })
        .unwrap_or_default()
}

/// Appends one entry to a workspace's own chain, in a transaction of its
/// own, for code that acts on the workspace without a membership (platform
/// actions, an accepted invitation) after its control.db change committed.
/// The system handle names `why`.
pub async fn record_in_workspace<F>(
    control: &Arc<Control>,
    tenants: &Arc<TenantPool>,
    ws: crate::ids::WorkspaceId,
    why: crate::access::SystemTask,
    now: i64,
    meta: &RequestMeta,
    entry: F,
) -> Result<()>
where
    F: for<'m> FnOnce(&'m RequestMeta) -> NewEntry<'m> + Send + 'static,
{
    let grant = why.grant(ws);
    let db = tenants.open_async(control, grant).await?;
    let meta = meta.clone();
    db.write(move |t| t.audit(now, &entry(&meta)).map(|_| ()))
        .await
}
