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
use crate::access::enter::TenantCtx;
use crate::app::AppState;
use crate::bounds::paced::PacedSender;
use crate::error::{Error, Result};
use crate::records::visibility::{ReadScope, Reader};
use crate::store::audit::{self as sql, SqlFilter, VerificationRow};
use crate::store::tenant_settings;

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
    state: &AppState,
    mut p: SearchParams,
) -> Result<(crate::bounds::Slot, SearchParams)> {
    let slot = state.bounds.search.slot().await?;
    p.max_terms = state.bounds.limits.search_max_terms;
    p.budget = Some(state.bounds.search_budget());
    Ok((slot, p))
}

pub async fn search_workspace(
    state: &Arc<AppState>,
    ctx: &TenantCtx,
    p: SearchParams,
) -> Result<SearchPage> {
    let (_slot, p) = bounded(state, p).await?;
    let open = workspace_index(state, &ctx.db);
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
    state: &AppState,
    db: &crate::store::tenant::TenantDb,
) -> impl FnOnce() -> Result<Arc<std::sync::Mutex<crate::search::MemIndex>>> + Send + 'static {
    let registry = state.indexes.clone();
    let key = index_key(Chain::Workspace(db.id()));
    let disk = crate::search::index_dir(db.dir(), "audit");
    let (sealer, alive) = (db.keys().search.clone(), db.liveness());
    move || registry.get_sealed(&key, &disk, sealer, alive)
}

pub async fn search_platform(state: &Arc<AppState>, p: SearchParams) -> Result<SearchPage> {
    let (_slot, p) = bounded(state, p).await?;
    let index = state.indexes.get(&index_key(Chain::Platform))?;
    let keys = state.control.keys.clone();
    state
        .control
        .db
        .read_async(move |conn| {
            search::search(conn, &keys.sealer, &index, &p, &ReadScope::everything())
        })
        .await
}

pub async fn entry_workspace(ctx: &TenantCtx, seq: i64) -> Result<EntryView> {
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

pub async fn entry_platform(state: &Arc<AppState>, seq: i64) -> Result<EntryView> {
    let keys = state.control.keys.clone();
    state
        .control
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
pub async fn export(
    state: &Arc<AppState>,
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
    let slot = state.bounds.export_slot(&chain.scope()).await?;
    let now = state.clock.unix();
    let detail = json!({ "format": format.extension(), "filtered": filtered });
    let meta = meta.clone();
    let st = Arc::clone(state);
    let line = tokio::task::spawn_blocking(move || -> Result<CheckpointLine> {
        let body = match chain {
            Chain::Platform => {
                st.control.audit_alone(
                    now,
                    &NewEntry::new(actor, "audit.exported", &meta).after(detail),
                )?;
                chains::checkpoint_platform(&st.control, "export", now)?
            }
            Chain::Workspace(ws) => {
                let t = chains::open_tenant(&st.control, &st.tenants, ws, SystemTask::AuditExport)?;
                t.write_blocking(|t| {
                    t.audit(
                        now,
                        &NewEntry::new(actor, "audit.exported", &meta).after(detail),
                    )
                })?;
                chains::checkpoint_workspace(&st.control, &t, "export", now)?
            }
        };
        let sig = st.control.signer.sign(&body);
        Ok(CheckpointLine::new(
            &body,
            &sig,
            &st.control.signer.public_key(),
            filtered,
        ))
    })
    .await??;

    let lim = &state.bounds.limits;
    let (mut tx, rx) = PacedSender::channel(
        std::time::Duration::from_secs(lim.export_stall_secs),
        lim.export_min_bytes_per_sec,
        Some(slot),
    );
    let st = Arc::clone(state);
    let header = line.clone();
    // An async producer reading bounded pages (keyset by seq), so a slow
    // reader holds neither a thread nor more than a page or two in memory.
    tokio::spawn(async move {
        let tenant = match chain {
            Chain::Platform => None,
            Chain::Workspace(ws) => {
                let grant = crate::access::SystemTask::AuditExport.grant(ws);
                match st.tenants.open_async(&st.control, grant).await {
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
                    let keys = st.control.keys.clone();
                    st.control
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
    state: &Arc<AppState>,
    chain: Chain,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<ChainReport> {
    let st = Arc::clone(state);
    let now = state.clock.unix();
    let meta = meta.clone();
    // The bulk pool: few at once, a short queue, 429 beyond (finding 4).
    state.bounds.bulk.run(move || {
        let report = chains::verify_chain(
            &st.control,
            &st.tenants,
            chain,
            now,
            chains::max_unsigned_age(st.config.file.audit.checkpoint_interval_secs),
            &[],
        )?;
        chains::record_verification(&st.control, &report, now)?;
        st.control.audit_alone(
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

pub async fn status(state: &Arc<AppState>, chain: Chain) -> Result<ChainStatus> {
    let st = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let scope = chain.scope();
        let (v, cp) = st.control.db.read(|c| {
            Ok((
                sql::latest_verification(c, &scope)?,
                sql::latest_checkpoint(c, &scope)?,
            ))
        })?;
        let default_days = st.config.file.audit.retention_days;
        let retention_days = match chain {
            Chain::Platform => default_days,
            Chain::Workspace(ws) => {
                chains::open_tenant(&st.control, &st.tenants, ws, SystemTask::AuditStatus)?
                    .read_blocking(|c, _| tenant_settings::audit_retention_days(c))?
                    .unwrap_or(default_days)
            }
        };
        Ok(ChainStatus {
            last_verification: v,
            checkpoint_seq: cp.as_ref().map(|c| c.body.seq),
            checkpoint_time: cp.as_ref().map(|c| c.body.time),
            retention_days,
        })
    })
    .await?
}

pub async fn set_retention(
    state: &Arc<AppState>,
    ctx: &TenantCtx,
    days: u32,
    meta: &RequestMeta,
) -> Result<u32> {
    if !(7..=36_500).contains(&days) {
        return Err(Error::field(
            "retention_days",
            "must be between 7 and 36500",
        ));
    }
    let now = state.clock.unix();
    let default_days = state.config.file.audit.retention_days;
    let meta = meta.clone();
    // The request's actor: a token or impersonating staff are named as such.
    let actor = ctx.actor.clone();
    ctx.db
        .write(move |t| {
            let before = tenant_settings::audit_retention_days(t.tx)?.unwrap_or(default_days);
            tenant_settings::set_audit_retention_days(t.tx, days)?;
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
pub fn last_platform_entry(state: &AppState, action: &str) -> Option<EntryView> {
    let f = SqlFilter {
        action: Some(action.to_owned()),
        ..Default::default()
    };
    let keys = state.control.keys.clone();
    state
        .control
        .db
        .read(|c| {
            Ok(sql::query(c, &f, 1)?
                .first()
                .map(|e| search::view(e, &keys.sealer)))
        })
        .ok()
        .flatten()
}

/// Appends one entry to a workspace's own chain, in a transaction of its
/// own, for code that acts on the workspace without a membership (platform
/// actions, an accepted invitation) after its control.db change committed.
/// The system handle names `why`.
pub async fn record_in_workspace<F>(
    state: &AppState,
    ws: crate::ids::WorkspaceId,
    why: crate::access::SystemTask,
    now: i64,
    meta: &RequestMeta,
    entry: F,
) -> Result<()>
where
    F: for<'m> FnOnce(&'m RequestMeta) -> NewEntry<'m> + Send + 'static,
{
    record_in_workspace_with(&state.tenants, &state.control, ws, why, now, meta, entry).await
}

/// `record_in_workspace` for domain code that holds the pool and control.db
/// rather than the application state.
pub async fn record_in_workspace_with<F>(
    tenants: &Arc<crate::store::tenant::TenantPool>,
    control: &Arc<crate::store::control::Control>,
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
