//! The replica's part of the scheduled restore drill: one workspace picked at
//! random, rebuilt from the replica as of a random instant in the window, and
//! checked like a backup (integrity, audit chains against control.db as of
//! the same read, one sealed row opened with the live key). The result goes
//! to the platform audit log as `replication.drill`.

use rand::RngCore;
use serde_json::json;

use super::Deps;
use super::target::Replica;
use super::{CONTROL, catalog, files, restore};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::backup::drill::{BackupTrust, check_unpacked};
use crate::backup::{FORMAT_VERSION, FileEntry, Manifest, ManifestWorkspace};
use crate::clock::rfc3339_ms;
use crate::error::{Error, Result};

fn pick(n: usize) -> usize {
    (rand::rngs::OsRng.next_u64() % n.max(1) as u64) as usize
}

/// Runs the replica drill (blocking; call from the blocking pool) and
/// returns its one-line summary; `Ok(None)` when replication is off.
pub fn run(deps: &Deps, identity: &age::x25519::Identity) -> Result<Option<String>> {
    let Some(replica) = Replica::from_config(&deps.config)? else {
        return Ok(None);
    };
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| Error::internal("the replica drill needs the async runtime"))?;
    let scratch = deps.config.data_dir.join("backups").join(".replica-drill");
    let _ = std::fs::remove_dir_all(&scratch);
    let outcome = handle.block_on(drill(deps, &replica, identity, &scratch));
    let _ = std::fs::remove_dir_all(&scratch);
    let (ws, at, verdict, file) = outcome?;
    let ok = verdict.is_ok();
    let (step, detail) = verdict.err().unwrap_or_default();
    deps.control.audit_alone(
        deps.clock.unix(),
        &NewEntry::new(Actor::System, "replication.drill", &RequestMeta::default())
            .target("workspace", &ws)
            .after(json!({ "ok": ok, "at": rfc3339_ms(at), "failed_step": (!ok).then_some(&step), "detail": detail, "file_checked": file })),
    )?;
    Ok(Some(if ok {
        format!(
            "replica drill of workspace {ws} at {} passed",
            rfc3339_ms(at)
        )
    } else {
        format!(
            "replica drill of workspace {ws} at {} FAILED at {step}: {detail}",
            rfc3339_ms(at)
        )
    }))
}

type Verdict = std::result::Result<(), (String, String)>;

async fn drill(
    deps: &Deps,
    replica: &Replica,
    identity: &age::x25519::Identity,
    scratch: &std::path::Path,
) -> Result<(String, i64, Verdict, Option<String>)> {
    let live: Vec<String> = replica
        .databases()
        .await?
        .into_iter()
        .filter(|d| d.starts_with("ws-"))
        .collect();
    if live.is_empty() {
        return Err(Error::Usage("the replica holds no workspace yet".into()));
    }
    let db = &live[pick(live.len())];
    let ws = db.trim_start_matches("ws-").to_owned();
    let now = deps.clock.unix_ms();
    let cutoff = now - i64::from(deps.config.file.replication.retention_days) * 86_400_000;
    let gens = restore::generations(replica, db).await?;
    let (oldest, newest) = catalog::window(&gens, cutoff)
        .ok_or_else(|| Error::Usage(format!("the replica holds nothing of {db}")))?;
    let at = oldest + pick(usize::try_from(newest - oldest + 1).unwrap_or(1)) as i64;
    let none = |what: &str| Error::internal(format!("{what} has no state at the drill's instant"));
    let ws_file = scratch.join("tenants").join(&ws).join("data.db");
    let s_ws = restore::rebuild(
        replica,
        db,
        Some(at),
        cutoff,
        identity,
        &ws_file,
        &|_, _, _| {},
    )
    .await?
    .ok_or_else(|| none(db))?;
    // control.db as of the workspace's read: every checkpoint in it names
    // entries that workspace state already holds.
    let control = scratch.join("control.db");
    restore::rebuild(
        replica,
        CONTROL,
        Some(s_ws),
        cutoff,
        identity,
        &control,
        &|_, _, _| {},
    )
    .await?
    .ok_or_else(|| none(CONTROL))?;
    let file = |path: &str| -> Result<FileEntry> {
        Ok(FileEntry {
            path: path.to_owned(),
            sha256: String::new(),
            size: 0,
            tables: crate::backup::archive::table_counts(&scratch.join(path))?,
        })
    };
    let manifest = Manifest {
        format: FORMAT_VERSION,
        id: format!("replica@{}", rfc3339_ms(s_ws)),
        aura_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: s_ws / 1000,
        region: replica.region.clone(),
        residency: deps.config.file.residency.clone(),
        workspaces: vec![ManifestWorkspace {
            id: ws.clone(),
            key_ids: Vec::new(),
        }],
        files: vec![file("control.db")?, file(&format!("tenants/{ws}/data.db"))?],
        audit_anchor: None,
    };
    let escrow = crate::backup::escrow::current(&deps.control, deps.clock.unix())?;
    let mut verdict = check_unpacked(
        scratch,
        &manifest,
        &escrow,
        &deps.control.master,
        &BackupTrust::live(deps.backup()),
    );
    // One of the files that state names, if any: fetched and opened to
    // its end with the live key.
    let mut file = None;
    if verdict.is_ok() {
        let checked = match files::sealer_from_escrow(&escrow, &deps.control.master, &ws) {
            Ok(sealer) => {
                let dir = scratch.join("tenants").join(&ws);
                files::drill_one(replica, &ws, &ws_file, &dir, identity, &sealer).await
            }
            Err(e) => Err(e),
        };
        match checked {
            Ok(f) => file = f,
            Err(e) => verdict = Err(("files".into(), e.to_string())),
        }
    }
    Ok((ws, at, verdict, file))
}
