//! The integrations worker: sends due webhook deliveries (signed, through the
//! SSRF-guarded client), schedules retries with exponential backoff and
//! jitter, and processes received inbound events. It looks at workspaces the
//! outbox marked, those with work still pending, and every workspace now and
//! then (work left from before a restart).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Map, Value, json};

use tokio::sync::{Semaphore, mpsc};

use super::fair::EndpointBackoff;
use super::{outbox, signing, ssrf};
use crate::access::SystemTask;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::clock::SharedClock;
use crate::config::residency::Residency;
use crate::config::{Config, IntegrationsConfig};
use crate::error::{Error, Result};
use crate::ids::WorkspaceId;
use crate::store::control::Control;
use crate::store::idle_stamps;
use crate::store::integrations::{self as istore, EventRow};
use crate::store::records as rstore;
use crate::store::tenant::{FileStamp, TenantDb, TenantPool, TenantTx};
use crate::store::webhooks::{self as wstore, Attempt, DeliveryRow};

const FULL_SCAN_EVERY: Duration = Duration::from_secs(30);
const BATCH: usize = 32;

/// The wait before retry number `attempt` (1 = after the first failure):
/// `base * 2^(attempt-1)`, capped, then uniformly between half and all of it.
pub fn backoff_ms(cfg: &IntegrationsConfig, attempt: u32) -> u64 {
    let exp = cfg
        .retry_base_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(40));
    let capped = exp.min(cfg.retry_max_secs.saturating_mul(1000)).max(1);
    let half = capped / 2;
    half + rand::thread_rng().gen_range(0..=capped - half)
}

/// What the worker needs from the appliance, owned: it runs for as long as
/// the server does (`AppState::integrations_deps`).
#[derive(Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    pub clock: SharedClock,
    pub control: Arc<Control>,
    pub tenants: Arc<TenantPool>,
}

/// What every workspace task shares.
struct Shared {
    deps: Deps,
    client: reqwest::Client,
    policy: ssrf::Policy,
    residency: Residency,
    backoff: EndpointBackoff,
}

pub fn spawn(deps: Deps) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cfg = deps.config.file.integrations.clone();
        let policy = ssrf::Policy::from_config(&cfg);
        let client = match ssrf::client(policy.clone(), Duration::from_secs(cfg.timeout_secs)) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook deliveries are off");
                return;
            }
        };
        let shared = Arc::new(Shared {
            deps: deps.clone(),
            client,
            policy,
            residency: Residency::from_file(&deps.config.file),
            backoff: EndpointBackoff::default(),
        });
        let slots = Arc::new(Semaphore::new(cfg.workspaces_in_parallel.max(1)));
        let poll = Duration::from_millis(cfg.poll_interval_ms);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut pending: HashSet<WorkspaceId> = HashSet::new();
        // Workspaces whose task is running, and those marked again meanwhile.
        let mut running: HashSet<WorkspaceId> = HashSet::new();
        let mut again: HashSet<WorkspaceId> = HashSet::new();
        let mut last_scan: Option<Instant> = None;
        // The file stamp of each workspace whose last pass left nothing to
        // do: the full scan skips it, unopened, until its files change.
        // Kept in control.db at each full scan, so the first scan after a
        // start skips them too (`store::idle_stamps`).
        let mut idle = saved_stamps(&deps).await;
        let mut saved = idle.clone();
        loop {
            while let Ok(done) = done_rx.try_recv() {
                finished(done, &mut running, &mut again, &mut pending, &mut idle);
            }
            let mut targets = outbox::take_dirty();
            targets.extend(pending.iter().copied());
            if last_scan.is_none_or(|t| t.elapsed() >= FULL_SCAN_EVERY) {
                last_scan = Some(Instant::now());
                if idle != saved && save_stamps(&deps, saved.clone(), idle.clone()).await {
                    saved = idle.clone();
                }
                match active_workspaces(&deps).await {
                    Ok(all) => targets.extend(all.into_iter().filter(|ws| {
                        let stamp = deps.tenants.file_stamp(*ws);
                        stamp.is_none() || idle.get(ws) != stamp.as_ref()
                    })),
                    Err(e) => tracing::warn!(error = %e, "integrations worker: listing workspaces"),
                }
            }
            for ws in targets {
                if running.contains(&ws) {
                    again.insert(ws);
                    continue;
                }
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    pending.insert(ws);
                    continue;
                };
                running.insert(ws);
                pending.remove(&ws);
                let (sh, tx) = (Arc::clone(&shared), done_tx.clone());
                tokio::spawn(async move {
                    // Taken before the pass: a commit during it changes the
                    // next stamp, so the scan looks again.
                    let stamp = sh.deps.tenants.file_stamp(ws);
                    let was_open = sh.deps.tenants.is_open(ws);
                    let result = run_workspace(&sh, ws).await;
                    // A workspace the scan opened closes again, unless a
                    // request holds it (the pool's LRU is for requests).
                    if !was_open {
                        let pool = Arc::clone(&sh.deps.tenants);
                        let _ = tokio::task::spawn_blocking(move || pool.close_if_idle(ws)).await;
                    }
                    drop(permit);
                    let _ = tx.send(Done { ws, result, stamp });
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                // Woken after the commit that queued the work.
                _ = outbox::woken() => {}
                Some(done) = done_rx.recv() => {
                    finished(done, &mut running, &mut again, &mut pending, &mut idle);
                }
            }
        }
    })
}

/// One workspace's pass, reported back to the loop.
struct Done {
    ws: WorkspaceId,
    result: Result<bool>,
    stamp: Option<FileStamp>,
}

fn finished(
    Done { ws, result, stamp }: Done,
    running: &mut HashSet<WorkspaceId>,
    again: &mut HashSet<WorkspaceId>,
    pending: &mut HashSet<WorkspaceId>,
    idle: &mut HashMap<WorkspaceId, FileStamp>,
) {
    running.remove(&ws);
    match (&result, stamp) {
        (Ok(false), Some(st)) => idle.insert(ws, st),
        _ => idle.remove(&ws),
    };
    let more = match result {
        Ok(more) => more,
        Err(e) => {
            tracing::warn!(error = %e, workspace = %ws, "integrations worker");
            false
        }
    };
    if again.remove(&ws) || more {
        pending.insert(ws);
    }
}

async fn saved_stamps(deps: &Deps) -> HashMap<WorkspaceId, FileStamp> {
    let read = deps
        .control
        .db
        .read_async(|c| idle_stamps::load(c, idle_stamps::Pass::Webhooks))
        .await;
    read.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "integrations worker: reading the saved file stamps");
        HashMap::new()
    })
}

/// True once saved.
async fn save_stamps(
    deps: &Deps,
    before: HashMap<WorkspaceId, FileStamp>,
    now: HashMap<WorkspaceId, FileStamp>,
) -> bool {
    let saved = deps
        .control
        .db
        .write_async(move |tx| idle_stamps::save(tx, idle_stamps::Pass::Webhooks, &before, &now))
        .await;
    if let Err(e) = &saved {
        tracing::warn!(error = %e, "integrations worker: saving the file stamps");
    }
    saved.is_ok()
}

async fn active_workspaces(deps: &Deps) -> Result<Vec<WorkspaceId>> {
    let keys = deps.control.keys.clone();
    let all = deps
        .control
        .db
        .read_async(move |c| crate::store::control::list_workspaces(c, &keys))
        .await?;
    Ok(all
        .into_iter()
        .filter(|w| w.state == "active")
        .map(|w| w.id)
        .collect())
}

/// One pass over a workspace, within its time budget and concurrency; true
/// when it still has pending work.
async fn run_workspace(sh: &Arc<Shared>, ws: WorkspaceId) -> Result<bool> {
    let deps = &sh.deps;
    let cfg = &deps.config.file.integrations;
    let deadline = Instant::now() + Duration::from_secs(cfg.workspace_budget_secs);
    let db = deps
        .tenants
        .open_async(&deps.control, SystemTask::IntegrationsWorker.grant(ws))
        .await?;
    let events = db.read(|c, s| istore::received_events(c, s, BATCH)).await?;
    for ev in events {
        let now = deps.clock.unix();
        let now_ms = crate::records::now_ms(&deps.clock);
        db.write(move |t| process_event(t, ev, now, now_ms)).await?;
    }
    let now_ms = crate::records::now_ms(&deps.clock);
    let due = db
        .read(move |c, s| wstore::due_deliveries(c, s, now_ms, BATCH))
        .await?;
    let mut set = tokio::task::JoinSet::new();
    for (row, payload) in due {
        if Instant::now() >= deadline {
            break;
        }
        if let Some(wait) = sh.backoff.remaining(&row.endpoint_id) {
            postpone(deps, &db, &row.endpoint_id, wait).await?;
            continue;
        }
        // At most `workspace_concurrency` attempts in flight; each outcome is
        // recorded as soon as it is known.
        while set.len() >= cfg.workspace_concurrency.max(1) {
            if let Some(Ok((row, out))) = set.join_next().await {
                settle(sh, &db, row, out).await?;
            }
        }
        let (eid, now) = (row.endpoint_id.clone(), deps.clock.unix());
        let target = db
            .read(move |c, s| {
                let url = wstore::get_endpoint(c, s, &eid)?.map(|e| e.url);
                Ok(url.zip(Some(wstore::endpoint_secrets(c, s, &eid, now)?)))
            })
            .await?;
        let Some((url, secrets)) = target else {
            continue;
        };
        let sh2 = Arc::clone(sh);
        set.spawn(async move {
            let ts = sh2.deps.clock.unix();
            let out = send(&sh2, &url, &secrets, &row, &payload, ts).await;
            (row, out)
        });
    }
    while let Some(done) = set.join_next().await {
        let Ok((row, out)) = done else { continue };
        settle(sh, &db, row, out).await?;
    }
    db.read(|c, _| wstore::has_pending(c)).await
}

/// Records an attempt, and backs its endpoint off when it keeps timing out.
async fn settle(sh: &Shared, db: &TenantDb, row: DeliveryRow, out: Outcome) -> Result<()> {
    let slow = matches!(out.error, Some("timed out") | Some("could not connect"));
    let endpoint = row.endpoint_id.clone();
    record(&sh.deps, db, row, out).await?;
    let cfg = &sh.deps.config.file.integrations;
    if let Some(wait) = sh.backoff.note(cfg, &endpoint, slow) {
        tracing::info!(endpoint = %endpoint, secs = wait.as_secs(), "webhook endpoint backed off");
        postpone(&sh.deps, db, &endpoint, wait).await?;
    }
    Ok(())
}

/// Moves a backed-off endpoint's pending deliveries to the end of its wait.
async fn postpone(deps: &Deps, db: &TenantDb, endpoint: &str, wait: Duration) -> Result<()> {
    let until = crate::records::now_ms(&deps.clock)
        .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    let endpoint = endpoint.to_owned();
    db.write(move |t| wstore::postpone_endpoint(t, &endpoint, until).map(|_| ()))
        .await
}

struct Outcome {
    status: Option<u16>,
    error: Option<&'static str>,
    ms: i64,
    /// Refused before sending for a reason no retry can change while this
    /// config runs (residency): given up at once.
    refused: bool,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

fn classify(e: &reqwest::Error) -> &'static str {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<ssrf::Blocked>() {
            return "refused by the SSRF guard (non-global address)";
        }
        src = s.source();
    }
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
}

async fn send(
    sh: &Shared,
    url: &str,
    secrets: &[String],
    row: &DeliveryRow,
    payload: &[u8],
    ts: i64,
) -> Outcome {
    let started = Instant::now();
    let ms = || i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (client, policy) = (&sh.client, &sh.policy);
    // IP literals skip the resolver: the URL check refuses them here, at
    // every attempt (the allow-list may have changed since creation).
    let checked = match policy.check_url(url) {
        Ok(u) => u,
        Err(_) => {
            return Outcome {
                status: None,
                error: Some("refused by the SSRF guard (address or scheme not allowed)"),
                ms: ms(),
                refused: false,
            };
        }
    };
    // Residency too: the config may have changed since the endpoint was
    // made. Nothing is sent, and the log says why.
    if sh.residency.check_url(&checked).is_err() {
        return Outcome {
            status: None,
            error: Some(
                "refused by residency: the host matches no outbound.hosts pattern in this appliance's region; nothing was sent",
            ),
            ms: ms(),
            refused: true,
        };
    }
    let signature = signing::signature_header(secrets, &row.msg_id, ts, payload);
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &row.msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(payload.to_vec())
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let error = match status {
                200..=299 => None,
                300..=399 => Some("redirect (not followed)"),
                _ => Some("error status"),
            };
            Outcome {
                status: Some(status),
                error,
                ms: ms(),
                refused: false,
            }
        }
        Err(e) => {
            let error = classify(&e);
            tracing::debug!(delivery = %row.id, error, "webhook attempt failed");
            Outcome {
                status: None,
                error: Some(error),
                ms: ms(),
                refused: false,
            }
        }
    }
}

async fn record(deps: &Deps, db: &TenantDb, row: DeliveryRow, out: Outcome) -> Result<()> {
    let cfg = &deps.config.file.integrations;
    let attempt = row.attempts + 1;
    let now = deps.clock.unix();
    let next = if out.ok() || out.refused || attempt >= i64::from(cfg.max_attempts) {
        None
    } else {
        let wait = backoff_ms(cfg, u32::try_from(attempt).unwrap_or(u32::MAX));
        Some(
            crate::records::now_ms(&deps.clock)
                .saturating_add(i64::try_from(wait).unwrap_or(i64::MAX)),
        )
    };
    db.write(move |t| {
        wstore::record_attempt(
            t,
            &Attempt {
                delivery_id: &row.id,
                attempt,
                time: now,
                status_code: out.status,
                error: out.error,
                duration_ms: out.ms,
                next_attempt_ms: next,
                succeeded: out.ok(),
            },
        )
    })
    .await
}

/// Marks a received event processed; with a target collection, its JSON
/// (the `data` object of a Standard Webhooks payload, else the whole body)
/// becomes a record there first. A failure is recorded on the event.
fn process_event(t: &TenantTx<'_>, ev: EventRow, now: i64, now_ms: i64) -> Result<()> {
    let Some(integration) = istore::get_inbound(t, t.sealer, &ev.integration_id)? else {
        return Ok(());
    };
    let Some(coll) = integration.collection_id.clone() else {
        return istore::finish_event(t, t.sealer, &ev.id, None, None, now);
    };
    let made =
        istore::in_event_savepoint(t, || to_record(t, &coll, &ev, &integration.id, now, now_ms))?;
    match made {
        Ok(record) => istore::finish_event(t, t.sealer, &ev.id, Some(&record), None, now),
        Err(e) => {
            let why = match e {
                Error::Validation(v) => v
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; "),
                Error::NotFound(what) => format!("{what} not found"),
                Error::Conflict(m) => m,
                other => {
                    tracing::warn!(error = %other, "inbound event processing");
                    "could not be processed".into()
                }
            };
            istore::finish_event(t, t.sealer, &ev.id, None, Some(&why), now)
        }
    }
}

fn to_record(
    t: &TenantTx<'_>,
    coll: &str,
    ev: &EventRow,
    integration: &str,
    now: i64,
    now_ms: i64,
) -> Result<String> {
    let body: Value =
        serde_json::from_slice(&ev.body).map_err(|_| Error::field("body", "is not JSON"))?;
    let input: Map<String, Value> = match body {
        Value::Object(mut m) => match m.remove("data") {
            Some(Value::Object(d)) => d,
            Some(other) => {
                m.insert("data".into(), other);
                m
            }
            None => m,
        },
        _ => return Err(Error::field("body", "must be a JSON object")),
    };
    let row = rstore::get_collection(t, t.sealer, coll)?.ok_or(Error::NotFound("collection"))?;
    let members = HashSet::new();
    let lookup = crate::records::TxLookup {
        conn: t,
        members: &members,
    };
    let vals = crate::records::values::validate(&row.def, &input, None, &lookup)?;
    let rec = rstore::insert_record(t, &row, vals, now_ms, None)?;
    t.audit(
        now,
        &NewEntry::new(Actor::System, "record.created", &RequestMeta::default())
            .target("record", &rec.id)
            .after(json!({
                "collection": row.id, "version": 1,
                "inbound_integration": integration, "inbound_event": ev.id,
            })),
    )?;
    Ok(rec.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let cfg = IntegrationsConfig {
            retry_base_ms: 1000,
            retry_max_secs: 10,
            ..Default::default()
        };
        for _ in 0..50 {
            let b1 = backoff_ms(&cfg, 1);
            assert!((500..=1000).contains(&b1), "{b1}");
            let b3 = backoff_ms(&cfg, 3);
            assert!((2000..=4000).contains(&b3), "{b3}");
            let b20 = backoff_ms(&cfg, 20);
            assert!((5000..=10_000).contains(&b20), "{b20}");
        }
        let spread: HashSet<u64> = (0..20).map(|_| backoff_ms(&cfg, 2)).collect();
        assert!(spread.len() > 1, "jitter varies the wait");
    }
}
