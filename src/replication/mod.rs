//! Continuous replication of control.db and every workspace's data.db to
//! `replication.url` (docs/replication.md). One background task polls every
//! database each `replication.interval_ms`: a database whose file or WAL
//! changed is read consistently (a read transaction, so no commit waits for
//! replication) and the pages that changed since the last read are shipped
//! as an age-encrypted segment; a snapshot starts each generation. Old
//! generations leave after `retention_days`; a shredded workspace's objects
//! leave at once, and control.db starts a new generation so no replicated
//! control.db state still holds its destroyed key.
//!
//! One task for all databases rather than one per database: an unchanged
//! database costs two `stat` calls per pass, and once idle for 30 s holds
//! no connection or file open, so thousands of workspaces cost little
//! (docs/replication.md).

pub mod catalog;
pub mod drill;
mod early;
#[cfg(test)]
mod early_tests;
pub mod files;
pub mod lease;
#[cfg(test)]
mod pass_tests;
mod restart;
pub mod restore;
pub mod segment;
pub mod shipper;
pub mod standby;
pub mod status;
pub mod target;
pub mod wal;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::Result;
use crate::store::control::Control;
use crate::store::tenant::TenantPool;
use shipper::{Due, Outcome, Shipper};
use target::Replica;

pub const CONTROL: &str = "control";
pub const HEARTBEAT: &str = "status.json";
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
const LEASE_EVERY: Duration = Duration::from_secs(2);
/// Deleted files' objects are looked for this often (each workspace's file
/// objects are listed): their removal waits for days of retention anyway.
const FILES_PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Between passes, how often the WALs of databases under write load are
/// looked at (`Shipper::early_due`).
const EARLY_CHECK_EVERY: Duration = Duration::from_millis(25);

/// What replication needs from the appliance, owned: the replicator and a
/// standby run for as long as the server does (`AppState::replication_deps`).
#[derive(Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    pub clock: SharedClock,
    pub control: Arc<Control>,
    pub tenants: Arc<TenantPool>,
    /// What the replicator knows (lag per database, lease, standby).
    pub status: Arc<status::ReplicaStatus>,
}

impl Deps {
    /// Restores swap a workspace in the way backups do.
    pub fn backup(&self) -> crate::backup::Deps<'_> {
        crate::backup::Deps {
            config: &self.config,
            control: &self.control,
            tenants: &self.tenants,
            clock: &self.clock,
        }
    }
}

/// The replica name of a workspace's database.
pub fn workspace_db(ws: &str) -> String {
    format!("ws-{ws}")
}

/// The trust page's line, while replication runs.
pub fn trust_line(status: &status::ReplicaStatus, now_ms: i64) -> Option<String> {
    let region = status.region()?;
    Some(match status.summary(now_ms) {
        Some((lag, oldest)) if oldest > 0 => format!(
            "replicated continuously to {region}, lag {} s, point-in-time recovery to {}",
            lag.round() as i64,
            crate::clock::rfc3339_ms(oldest)
        ),
        _ => format!("replicated continuously to {region}, first pass under way"),
    })
}

/// Starts the replicator when `replication.url` is set.
pub fn spawn(deps: Deps) -> Option<tokio::task::JoinHandle<()>> {
    let replica = match Replica::from_config(&deps.config) {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => {
            tracing::error!(error = %e, "replication is configured but cannot start");
            return None;
        }
    };
    let recipients = match crate::backup::recipients(&deps.config) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "replication needs `backup.recipients`; not started");
            return None;
        }
    };
    deps.status.set_region(&replica.region);
    tracing::info!(target = %replica.label, region = %replica.region, "replicating continuously");
    Some(tokio::spawn(run(deps, replica, recipients)))
}

async fn run(deps: Deps, replica: Replica, recipients: Vec<age::x25519::Recipient>) {
    let cfg = deps.config.file.replication.clone();
    let interval = Duration::from_millis(cfg.interval_ms);
    let tmp_dir = deps.config.data_dir.join(".replica-tmp");
    if let Err(e) = crate::store::create_private_dir(&tmp_dir) {
        tracing::error!(error = %e, "replication cannot create its scratch dir; not started");
        return;
    }
    let mut shippers: BTreeMap<String, Shipper> = BTreeMap::new();
    let mut file_shippers: BTreeMap<String, files::FileShipper> = BTreeMap::new();
    let mut last_prune: Option<Instant> = None;
    let mut failing: std::collections::BTreeSet<String> = Default::default();
    let mut last_sweep: Option<Instant> = None;
    let mut last_beat: Option<Instant> = None;
    let mut last_lease: Option<Instant> = None;
    let holder = match lease::holder_id(&deps.config.data_dir) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "replication cannot read its holder id; not started");
            return;
        }
    };
    loop {
        let pass = Instant::now();
        if last_lease.is_none_or(|t| t.elapsed() >= LEASE_EVERY) {
            hold_lease(&deps, &replica, &holder).await;
            last_lease = Some(Instant::now());
        }
        if deps.status.fenced().is_some() {
            // Nothing is shipped while fenced: no read transaction is held.
            shippers.values_mut().for_each(Shipper::let_go);
            tokio::time::sleep(interval).await;
            continue;
        }
        discover(&deps, &mut shippers);
        let mut gone = Vec::new();
        let names: Vec<String> = shippers.keys().cloned().collect();
        for name in names {
            let Some(sh) = shippers.get_mut(&name) else {
                continue;
            };
            let ctx = (&deps, &replica, recipients.as_slice(), tmp_dir.as_path());
            if sync_one(
                ctx,
                &name,
                sh,
                Due::Regular,
                &mut file_shippers,
                &mut failing,
            )
            .await
            {
                gone.push(name);
            }
            // A round can take seconds: a scrub's checkpoint waiting on a
            // pin taken earlier in it does not wait for its end.
            if crate::store::wal_wanted::any() {
                shippers.values_mut().for_each(|sh| {
                    sh.let_go_if_wanted();
                });
            }
        }
        for name in gone {
            shippers.remove(&name);
            file_shippers.remove(&name);
            deps.status.remove(&name);
            // A workspace whose files went is forgotten by the replica too
            // if its key was destroyed (the sweep also catches shreds done
            // while this server was down or by the CLI).
            if name != CONTROL {
                last_sweep = None;
            }
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            let prune = last_prune.is_none_or(|t| t.elapsed() >= FILES_PRUNE_EVERY);
            match sweep(&deps, &replica, &mut shippers, prune).await {
                Ok(()) => {
                    last_sweep = Some(Instant::now());
                    if prune {
                        last_prune = last_sweep;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "replica retention sweep failed"),
            }
        }
        if last_beat.is_none_or(|t| t.elapsed() >= HEARTBEAT_EVERY) {
            let beat = status::Heartbeat {
                written_ms: deps.clock.unix_ms(),
                databases: deps.status.snapshot(),
            };
            if let Ok(bytes) = serde_json::to_vec(&beat) {
                if replica.put(HEARTBEAT, bytes).await.is_ok() {
                    last_beat = Some(Instant::now());
                }
            }
        }
        // Until the next pass, a database under write load whose WAL
        // outgrew its limit is read (and its WAL restarted) at once: the
        // pin otherwise lets the WAL grow to `PIN_WAL_LIMIT` between passes,
        // and every commit then appends to cold memory (docs/benchmarks.md,
        // "after the start and cold-open changes").
        // No check this close to the next pass: it reads them all anyway.
        let next = pass + interval;
        loop {
            let left = next.saturating_duration_since(Instant::now());
            if left <= EARLY_CHECK_EVERY {
                tokio::time::sleep(left).await;
                break;
            }
            tokio::time::sleep(EARLY_CHECK_EVERY).await;
            let fenced = deps.status.fenced().is_some();
            for (name, sh) in shippers.iter_mut() {
                // A scrub's checkpoint waits for this pin: let go now, not
                // at the next pass.
                if sh.let_go_if_wanted() {
                    tracing::debug!(database = %name, "pin let go for a checkpoint");
                }
                if !fenced && sh.early_due() {
                    let ctx = (&deps, &replica, recipients.as_slice(), tmp_dir.as_path());
                    // A database gone is dropped at the next pass.
                    let _ =
                        sync_one(ctx, name, sh, Due::Early, &mut file_shippers, &mut failing).await;
                }
            }
        }
    }
}

type Ctx<'a> = (
    &'a Deps,
    &'a Replica,
    &'a [age::x25519::Recipient],
    &'a std::path::Path,
);

/// One database's pass: its segment shipped, then the files it names, and
/// the status updated. True when the database is gone.
async fn sync_one(
    (deps, replica, recipients, tmp_dir): Ctx<'_>,
    name: &str,
    sh: &mut Shipper,
    due: Due,
    file_shippers: &mut BTreeMap<String, files::FileShipper>,
    failing: &mut std::collections::BTreeSet<String>,
) -> bool {
    let now_ms = deps.clock.unix_ms();
    let mut synced = sh.sync(replica, recipients, tmp_dir, now_ms, due).await;
    // A workspace's new files follow the segment that names them;
    // the database counts as replicated once they are shipped too.
    if let Some(ws) = name.strip_prefix("ws-") {
        let fs = file_shippers.entry(name.to_owned()).or_default();
        let files_due = match &synced {
            Ok(Outcome::Shipped { .. }) => true,
            Ok(Outcome::Unchanged) => fs.pending,
            _ => false,
        };
        if files_due {
            let shipped = match ws.parse() {
                Ok(id) => {
                    let blobs = deps.tenants.blobs(id);
                    fs.ship_new(replica, recipients, tmp_dir, ws, &blobs).await
                }
                Err(_) => Ok(0),
            };
            if let Err(e) = shipped {
                synced = Err(e);
            }
        }
    }
    match synced {
        Ok(Outcome::Gone) => return true,
        Ok(o) => {
            // The generation forced after a shred is shipped: the older
            // ones, which may hold the destroyed key, go (retried each pass).
            if let (true, false, Some(keep)) = (sh.drop_older, sh.force_new, sh.generation()) {
                match restore::drop_generations_except(replica, name, keep).await {
                    Ok(()) => sh.drop_older = false,
                    Err(e) => {
                        tracing::warn!(database = %name, error = %e, "older generations not yet dropped after a shred; retrying")
                    }
                }
            }
            if failing.remove(name) {
                tracing::info!(database = %name, "replication resumed");
            }
            deps.status.update(name, |d| {
                d.synced_ms = now_ms;
                d.full_compares = sh.full_compares;
                d.wal_restarts = sh.wal_restarts;
                if let Outcome::Shipped {
                    seq,
                    generation,
                    new_generation,
                    at_ms,
                } = o
                {
                    d.shipped_ms = at_ms;
                    d.seq = seq;
                    if new_generation && d.oldest_ms == 0 {
                        d.oldest_ms = at_ms;
                    }
                    d.generation = generation;
                }
            });
        }
        Err(e) => {
            if failing.insert(name.to_owned()) {
                tracing::warn!(database = %name, error = %e, "replication failed; retrying every pass");
            }
        }
    }
    false
}

/// Before the server listens: a primary whose replica lease another
/// appliance holds must not accept a single write. Also reads the replica
/// once, so a wrong endpoint or credentials show at start.
pub async fn confirm_lease(deps: &Deps) {
    if deps.status.is_standby() {
        return;
    }
    let replica = match Replica::from_config(&deps.config) {
        Ok(Some(r)) => r,
        _ => return,
    };
    match lease::holder_id(&deps.config.data_dir) {
        Ok(holder) => hold_lease(deps, &replica, &holder).await,
        Err(e) => tracing::error!(error = %e, "cannot read the replica holder id"),
    }
}

/// Renews the lease; another holder fences this server at once (no more
/// shipping, writes answered 503, `/readyz` not ready), loudly.
async fn hold_lease(deps: &Deps, replica: &Replica, holder: &str) {
    match lease::renew(replica, holder, deps.clock.unix_ms()).await {
        Ok(lease::Held::Mine(_)) => {
            if deps
                .status
                .fenced()
                .is_some_and(|w| w.starts_with("the replica lease is held"))
            {
                tracing::info!("this appliance holds the replica lease again; writes accepted");
            }
            deps.status.set_fenced(None);
        }
        Ok(lease::Held::TakenBy(l)) => {
            let why = format!(
                "the replica lease is held by appliance {} (epoch {}): another appliance was promoted; this one refuses writes",
                l.holder, l.epoch
            );
            if deps.status.fenced().is_none() {
                tracing::error!(holder = %l.holder, epoch = l.epoch, "{why}");
            }
            deps.status.set_fenced(Some(why));
        }
        Err(e) => tracing::warn!(error = %e, "could not renew the replica lease; retrying"),
    }
}

/// Adds a shipper for control.db and each workspace's data.db on disk.
fn discover(deps: &Deps, shippers: &mut BTreeMap<String, Shipper>) {
    if !shippers.contains_key(CONTROL) {
        let control = Arc::clone(&deps.control);
        let writer: restart::Writer =
            Arc::new(move |wait, f| control.db.with_writer(wait, |conn| f(conn)).transpose());
        shippers.insert(
            CONTROL.to_owned(),
            Shipper::new(
                CONTROL.to_owned(),
                deps.config.control_db_path(),
                Some(writer),
            ),
        );
    }
    let Ok(dir) = std::fs::read_dir(deps.config.tenants_dir()) else {
        return;
    };
    for e in dir.flatten() {
        let id = e.file_name().to_string_lossy().to_string();
        let Ok(ws) = id.parse::<crate::ids::WorkspaceId>() else {
            continue;
        };
        let db = e.path().join("data.db");
        let name = workspace_db(&id);
        if !shippers.contains_key(&name) && db.exists() {
            let pool = Arc::clone(&deps.tenants);
            let writer: restart::Writer =
                Arc::new(move |wait, f| pool.with_writer(ws, wait, |conn| f(conn)));
            shippers.insert(name.clone(), Shipper::new(name, db, Some(writer)));
        }
    }
}

/// Deletes shredded workspaces' objects, their files' too (and rolls
/// control.db to a new generation when it did), then applies retention to
/// every database and, with `prune_files`, to deleted files.
async fn sweep(
    deps: &Deps,
    replica: &Replica,
    shippers: &mut BTreeMap<String, Shipper>,
    prune_files: bool,
) -> Result<()> {
    let control_db = deps.config.control_db_path();
    let shredded =
        tokio::task::spawn_blocking(move || crate::store::replica_copy::shredded(&control_db))
            .await
            .map_err(|e| crate::error::Error::internal(format!("replication task: {e}")))??;
    let dbs = replica.databases().await?;
    let with_files = replica.children(files::ROOT).await?;
    let mut forgot = 0;
    for id in &shredded {
        let name = workspace_db(id);
        if with_files.contains(&name) && !shippers.contains_key(&name) {
            let n = replica.delete_all(&files::prefix(id)).await?;
            tracing::info!(workspace = %id, objects = n, "shredded workspace's files deleted from the replica");
        }
        if dbs.contains(&name) && !shippers.contains_key(&name) {
            let n = replica.delete_all(&format!("{name}/")).await?;
            if n > 0 {
                tracing::info!(workspace = %id, objects = n, "shredded workspace deleted from the replica");
                forgot += 1;
            }
        }
    }
    if forgot > 0 {
        if let Some(c) = shippers.get_mut(CONTROL) {
            c.force_new = true;
            // Kept until the older generations are gone, should this
            // pass fail and a later one ship the new generation.
            c.drop_older = true;
            let now_ms = deps.clock.unix_ms();
            let tmp = deps.config.data_dir.join(".replica-tmp");
            let recipients = crate::backup::recipients(&deps.config)?;
            if let Outcome::Shipped {
                generation, at_ms, ..
            } = c
                .sync(replica, &recipients, &tmp, now_ms, Due::Regular)
                .await?
            {
                restore::drop_generations_except(replica, CONTROL, &generation).await?;
                c.drop_older = false;
                deps.status.update(CONTROL, |d| d.oldest_ms = at_ms);
            }
        }
    }
    let cutoff =
        deps.clock.unix_ms() - i64::from(deps.config.file.replication.retention_days) * 86_400_000;
    for name in replica.databases().await? {
        let oldest = restore::apply_retention(replica, &name, cutoff).await?;
        let live = shippers.contains_key(&name);
        if let Some(o) = oldest.filter(|_| live) {
            deps.status.update(&name, |d| d.oldest_ms = o.max(cutoff));
        }
        let (Some(o), Some(ws)) = (oldest, name.strip_prefix("ws-")) else {
            continue;
        };
        if prune_files && live && with_files.contains(&name) {
            let db = deps.config.tenants_dir().join(ws).join("data.db");
            let n = files::prune_deleted(replica, ws, &db, o, deps.clock.unix_ms()).await?;
            if n > 0 {
                tracing::info!(workspace = %ws, files = n, "deleted files no kept state names left the replica");
            }
        }
    }
    Ok(())
}
