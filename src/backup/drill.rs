//! The restore drill: decrypt the latest (or a named) backup into a scratch
//! dir and prove it restores: manifest hashes, `PRAGMA integrity_check`, row
//! counts, every audit chain, and one sealed row per workspace opened with
//! the escrowed key. The result goes to the platform audit log.

use std::path::Path;

use serde::Serialize;
use serde_json::json;

use super::archive::{self, Escrow};
use super::target::LocalTarget;
use super::{Manifest, ManifestWorkspace};
use crate::audit::signing::stored_public_key;
use crate::audit::verify::{Entries, Inputs, SignedCheckpoint, check};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::{MasterKey, Sealer, Slot};
use crate::error::{Error, Result};
use crate::store::audit as sql;
use crate::store::{Detached, Sql};

#[derive(Clone, Debug, Serialize)]
pub struct DrillReport {
    pub id: String,
    pub ok: bool,
    /// The step that failed, if any.
    pub failed_step: Option<String>,
    pub detail: String,
    pub secs: f64,
    pub workspaces: usize,
}

fn ro(path: &Path) -> Result<Detached> {
    Detached::read_only(path)
}

/// What a check of an unpacked backup trusts beyond the archive itself.
pub struct BackupTrust {
    /// The appliance's audit key, when known (the drill and a one-workspace
    /// restore run on the live appliance); else the key stored in the backup.
    pub public_key: Option<[u8; 32]>,
    /// Two checkpoint intervals: older entries must be signed.
    pub max_unsigned_age: i64,
}

impl BackupTrust {
    pub fn live(deps: super::Deps<'_>) -> Self {
        Self {
            public_key: Some(deps.control.signer.public_key()),
            max_unsigned_age: crate::audit::chains::max_unsigned_age(
                deps.config.file.audit.checkpoint_interval_secs,
            ),
        }
    }
}

/// Checks an unpacked backup in `dir` with the same chain verification as
/// `aura audit verify` (`audit::verify::check`), plus the manifest's anchor;
/// returns the failed step and why.
pub fn check_unpacked(
    dir: &Path,
    manifest: &Manifest,
    escrow: &Escrow,
    master: &MasterKey,
    trust: &BackupTrust,
) -> std::result::Result<(), (String, String)> {
    check_unpacked_with(dir, manifest, escrow, master, trust, &|_| {})
}

/// `check_unpacked`, telling `progress` which workspace it checks.
fn check_unpacked_with(
    dir: &Path,
    manifest: &Manifest,
    escrow: &Escrow,
    master: &MasterKey,
    trust: &BackupTrust,
    progress: &dyn Fn(&str),
) -> std::result::Result<(), (String, String)> {
    progress("integrity and row counts");
    let step = |s: &str, e: Error| (s.to_owned(), e.to_string());
    // Sealed files were checked against their SHA-256 when unpacked; their
    // contents open only with the workspace's key.
    for f in manifest
        .files
        .iter()
        .filter(|f| !archive::is_sealed_file(&f.path))
    {
        let conn = ro(&dir.join(&f.path)).map_err(|e| step("integrity", e))?;
        let res: String = crate::store::backup::integrity_check(&conn)
            .map_err(|e| step("integrity", e.into()))?;
        if res != "ok" {
            return Err(("integrity".into(), format!("{}: {res}", f.path)));
        }
        let counts =
            archive::table_counts(&dir.join(&f.path)).map_err(|e| step("row counts", e))?;
        if counts != f.tables {
            return Err((
                "row counts".into(),
                format!("{} does not have the rows its manifest lists", f.path),
            ));
        }
    }
    let control = ro(&dir.join("control.db")).map_err(|e| step("audit chains", e))?;
    let stored = stored_public_key(&control).map_err(|e| step("audit chains", e))?;
    let pk = trust.public_key.or(stored);
    let (anchors, freshness) = match &manifest.audit_anchor {
        Some(a) => {
            let key = a.key().map_err(|e| step("audit chains", e))?;
            if Some(key) != pk {
                return Err((
                    "audit chains".into(),
                    "the manifest's audit anchor is signed by another key than the appliance's"
                        .into(),
                ));
            }
            (
                a.signed().map_err(|e| step("audit chains", e))?,
                Some((manifest.created_at, trust.max_unsigned_age)),
            )
        }
        // Backups taken before manifests carried an anchor.
        None => (Vec::new(), None),
    };
    let chain = |scope: &str,
                 db: &dyn Sql,
                 sealer: Option<&Sealer>|
     -> std::result::Result<(), (String, String)> {
        let cps = sql::checkpoints(&control, scope).map_err(|e| step("audit chains", e))?;
        let mine: Vec<SignedCheckpoint> = anchors
            .iter()
            .filter(|a| a.body.scope == scope)
            .cloned()
            .collect();
        let r = check(&Inputs {
            scope,
            entries: Entries::Db(db),
            checkpoints: &cps,
            public_key: pk.as_ref(),
            sealer,
            freshness,
            anchors: &mine,
        })
        .map_err(|e| step("audit chains", e))?;
        match r.first_bad_seq {
            None => Ok(()),
            Some(seq) => Err((
                "audit chains".into(),
                format!(
                    "{scope}: first bad seq {seq}: {}",
                    r.reason.unwrap_or_default()
                ),
            )),
        }
    };
    chain("platform", &control, None)?;
    let total = manifest.workspaces.len();
    for (n, ManifestWorkspace { id, .. }) in manifest.workspaces.iter().enumerate() {
        progress(&format!("check workspace {} of {total}: {id}", n + 1));
        let db = ro(&dir.join("tenants").join(id).join("data.db"))
            .map_err(|e| step("audit chains", e))?;
        // A workspace shredded since this backup: its key is gone on purpose,
        // so its rows cannot be opened; its chain still verifies (without
        // the checks that need its key).
        if escrow.shredded.contains(id) && !escrow.keys.iter().any(|k| &k.workspace == id) {
            chain(id, &db, None)?;
            continue;
        }
        let keys = escrow
            .keys
            .iter()
            .filter(|k| &k.workspace == id)
            .map(|k| {
                let wrapped = hex::decode(&k.wrapped_hex).map_err(|_| Error::Crypto("escrow entry is not hex"))?;
                master.unwrap_key(id, k.key_id, &wrapped)
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|e| ("sealed rows".to_owned(), format!("workspace {id}: its key does not unwrap ({e}); wrong master key, or the workspace was shredded")))?;
        if keys.is_empty() {
            return Err((
                "sealed rows".into(),
                format!("workspace {id}: no key in the escrow (shredded?)"),
            ));
        }
        let sealer = Sealer::new(id.clone(), &keys).map_err(|e| step("sealed rows", e))?;
        chain(id, &db, Some(&sealer))?;
        // One sealed row per workspace, opened with the escrowed key.
        if let Some(e) = sql::entries_after(&db, 0, 1)
            .map_err(|e| step("sealed rows", e))?
            .first()
        {
            let ct = e.detail_ct.clone().unwrap_or_default();
            sealer
                .open(Slot::new("audit_log", &e.seq.to_string(), "detail"), &ct)
                .map_err(|_| {
                    (
                        "sealed rows".to_owned(),
                        format!("workspace {id}: a sealed row does not open"),
                    )
                })?;
        }
    }
    Ok(())
}

/// Brings a backup (and the current escrow) from the first S3 target that
/// has it, when the local copy is gone.
fn fetch_remote(deps: super::Deps<'_>, target: &LocalTarget, id: &str) -> Result<()> {
    let name = format!("{id}.tar.zst.age");
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| Error::internal("fetching a backup needs the async runtime"))?;
    for r in super::s3::S3Target::all(deps.config)? {
        let found = handle.block_on(async {
            if !r.exists(&name).await {
                return Ok::<_, Error>(false);
            }
            r.download(&name, &target.archive_path(id)).await?;
            r.download(super::target::ESCROW, &target.escrow_path())
                .await?;
            Ok(true)
        })?;
        if found {
            tracing::info!(target = %r.label, backup = id, "fetched the backup from S3 for the drill");
            return Ok(());
        }
    }
    Err(Error::Usage(format!(
        "no backup {id} locally or in any S3 target; see `aura backup list`"
    )))
}

/// Runs a drill on `id` (or the latest backup) and records the result.
pub fn run(
    deps: super::Deps<'_>,
    id: Option<&str>,
    identity: &age::x25519::Identity,
) -> Result<DrillReport> {
    run_with_progress(deps, id, identity, &|_| {})
}

/// `run`, telling `progress` each step (one line per workspace checked).
pub fn run_with_progress(
    deps: super::Deps<'_>,
    id: Option<&str>,
    identity: &age::x25519::Identity,
    progress: &dyn Fn(&str),
) -> Result<DrillReport> {
    let started = std::time::Instant::now();
    let target = LocalTarget::from_config(deps.config)?;
    let id = match id {
        Some(i) => i.to_owned(),
        None => target
            .latest()?
            .map(|m| m.id)
            .ok_or_else(|| Error::Usage("there is no backup yet; run `aura backup run`".into()))?,
    };
    let archive_path = target.archive_path(&id);
    if !archive_path.exists() {
        fetch_remote(deps, &target, &id)?;
    }
    let scratch = deps
        .config
        .data_dir
        .join("backups")
        .join(format!(".drill-{id}"));
    let _ = std::fs::remove_dir_all(&scratch);
    let outcome = (|| -> std::result::Result<usize, (String, String)> {
        progress("decrypt and unpack");
        let manifest = archive::unpack(&archive_path, identity, &scratch, Some(&id))
            .map_err(|e| ("decrypt and unpack".to_owned(), e.to_string()))?;
        let escrow = archive::read_escrow(&target.escrow_path(), identity)
            .map_err(|e| ("key escrow".to_owned(), e.to_string()))?;
        check_unpacked_with(
            &scratch,
            &manifest,
            &escrow,
            &deps.control.master,
            &BackupTrust::live(deps),
            progress,
        )?;
        progress("the live chains against the backup's anchor");
        // The live chains against the backup's copy of their newest
        // checkpoints: deleting checkpoints here (and rewriting what they
        // covered) cannot go unnoticed past the next backup.
        if let Some(anchor) = &manifest.audit_anchor {
            let trust = BackupTrust::live(deps);
            let problem = crate::audit::anchor::check_live_against(
                deps.control,
                deps.tenants,
                anchor,
                deps.clock.unix(),
                trust.max_unsigned_age,
            )
            .map_err(|e| ("audit anchor".to_owned(), e.to_string()))?;
            if let Some(p) = problem {
                return Err(("audit anchor".into(), format!("the live {p}")));
            }
        }
        Ok(manifest.workspaces.len())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    let secs = started.elapsed().as_secs_f64();
    let report = match outcome {
        Ok(n) => DrillReport {
            id: id.clone(),
            ok: true,
            failed_step: None,
            detail: "restored and verified".into(),
            secs,
            workspaces: n,
        },
        Err((s, d)) => DrillReport {
            id: id.clone(),
            ok: false,
            failed_step: Some(s),
            detail: d,
            secs,
            workspaces: 0,
        },
    };
    deps.control.audit_alone(
        deps.clock.unix(),
        &NewEntry::new(Actor::System, "backup.drill", &RequestMeta::default())
            .target("backup", &id)
            .after(
                json!({ "ok": report.ok, "failed_step": report.failed_step, "secs": report.secs }),
            ),
    )?;
    Ok(report)
}
