//! `aura keys rotate-master | rotate | status`: the master key and the
//! workspace data keys over time. See docs/operations.md, "Key rotation".
//!
//! rotate-master, step by step (each step survives a kill -9):
//! 1. refuse while a server runs (it holds the old key in memory);
//! 2. one control.db transaction rewraps every data key, rewrites the key
//!    check and records the new key file's path: before its commit the old key
//!    opens everything, after it the new one does (and a start with the old
//!    key configured finds the new key through the recorded path);
//! 3. the new key file is renamed over the configured `master_key_file` (the
//!    old one stays beside it as `.retired-<unix>`), then the record is
//!    cleared; under a systemd credential the command prints what to run;
//! 4. the key escrow at the backup targets is rewritten under the new key.
//!
//! Running it again with the same file finishes an interrupted rotation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::{Global, load_config};
use crate::app::AppState;
use crate::clock::{Clock, SystemClock};
use crate::crypto::master_source::{self, KeyOrigin};
use crate::error::{Error, Result};
use crate::store::control::Control;
use crate::store::{DbOptions, dir_lock, master_rotation};
use crate::workspace::key_rotation;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Rewrap every data key under a new master key (stop the server first).
    RotateMaster {
        /// The new key: 32 random bytes or 64 hex characters, mode 0600
        /// (e.g. `head -c 32 /dev/urandom > new.key; chmod 600 new.key`).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
    /// Rotate a workspace's data key: new writes use the new key at once,
    /// old values are re-sealed, then the old key is destroyed. With the
    /// server running it does the work in the background; stopped, this
    /// command does it (run it again after an interruption to resume).
    Rotate {
        #[arg(long)]
        workspace: String,
    },
    /// Print the master key's age and last rotation, and each workspace's
    /// newest data key rotation.
    Status,
}

use crate::ops::crash_point;

pub async fn run(g: &Global, cmd: KeysCommand) -> Result<ExitCode> {
    match cmd {
        KeysCommand::RotateMaster { new_key_file } => rotate_master(g, &new_key_file).await,
        KeysCommand::Rotate { workspace } => rotate_workspace(g, &workspace).await,
        KeysCommand::Status => {
            let state = super::open_state(g, load_config(g)?, false)?;
            let info = state.control.db.read(master_rotation::info)?;
            println!("master key: {}", describe(&info, state.clock.unix()));
            for w in state
                .control
                .db
                .read(|c| crate::store::control::list_workspaces(c, &state.control.keys))?
            {
                if let Some(r) = key_rotation::status(&state.control, w.id)? {
                    println!("{}: {}", w.id, rotation_line(&r));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line for `aura doctor` and `keys status`.
pub(crate) fn describe(info: &master_rotation::MasterKeyInfo, now: i64) -> String {
    let day = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .map(|d| d.date().to_string())
            .unwrap_or_default()
    };
    let mut s = match info.since {
        Some(t) => format!(
            "in use since {} ({} days)",
            day(t),
            (now - t).max(0) / 86_400
        ),
        None => "age unknown".into(),
    };
    match info.last_rotation {
        Some(t) => s.push_str(&format!("; last rotated {}", day(t))),
        None => s.push_str("; never rotated"),
    }
    if let Some(p) = &info.pending_file {
        s.push_str(&format!(
            "; ROTATION NOT FINISHED: run `aura keys rotate-master --new-key-file {}`",
            p.display()
        ));
    }
    s
}

async fn rotate_master(g: &Global, new_key_file: &Path) -> Result<ExitCode> {
    crate::telemetry::init_cli();
    let cfg = load_config(g)?;
    let _lock = dir_lock::exclusive(&cfg.data_dir)?;
    let new_file = std::fs::canonicalize(new_key_file)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", new_key_file.display())))?;
    let new = master_source::read_key_file(&new_file)?;
    let (old, origin) = master_source::load(&cfg)?;
    let opts = DbOptions::from_config(&cfg.file.storage);
    let path = cfg.control_db_path();
    let now = SystemClock::with_offset(0).unix();
    let control = Control::open(&path, opts, old)?;
    if master_rotation::key_matches(&control, &new)? {
        println!("control.db is already under the new master key; finishing the rotation");
    } else {
        let n = master_rotation::rewrap_all(&control, &new, &new_file, now, &crash_point)?;
        crash_point("after-commit");
        // Into the main file, where a start's read-only key check looks.
        control.db.checkpoint()?;
        crash_point("after-checkpoint");
        println!(
            "rewrapped {} platform and {} workspace data keys under the new master key",
            n.platform, n.workspace
        );
    }
    drop(control);
    match &origin {
        KeyOrigin::File(p) | KeyOrigin::DevFile(p) => {
            let same = std::fs::canonicalize(p).is_ok_and(|c| c == new_file);
            if !same {
                let retired = master_source::install_key_file(&new_file, p, now)?;
                crash_point("after-install");
                println!(
                    "the new key is now {} (the configured key file)",
                    p.display()
                );
                if let Some(r) = retired {
                    println!(
                        "the old key is kept as {}: it still opens backups made before now; \
                         move it offline, and shred it once those backups have expired",
                        r.display()
                    );
                }
            }
            let control = Control::open(&path, opts, master_source::read_key_file(p)?)?;
            master_rotation::clear_pending(&control)?;
        }
        KeyOrigin::Credential(p) => println!(
            "the server reads its key from the systemd credential {}; seal the new key and \
             restart:\n  systemd-creds encrypt --name=master.key {} /etc/aura/master.key.cred\n  \
             systemctl restart aura\nthen run this command again with the same file to finish \
             (until then the server starts with {} as recorded)",
            p.display(),
            new_file.display(),
            new_file.display()
        ),
        KeyOrigin::DevEnv => println!(
            "dev mode: set AURA_MASTER_KEY to the new key's 64 hex characters before the next start"
        ),
    }
    let clock = Arc::new(SystemClock::with_offset(0));
    let state = Arc::new(AppState::open(cfg, new, clock, false)?);
    let n = tokio::task::spawn_blocking(move || {
        crate::backup::escrow::rewrite_after_shred(state.backup_deps())
    })
    .await??;
    if n > 0 {
        println!("rewrote the key escrow at {n} backup target(s) under the new key");
    }
    println!("master key rotated; start the server (`systemctl start aura`)");
    Ok(ExitCode::SUCCESS)
}

fn rotation_line(r: &crate::store::key_rotation::Rotation) -> String {
    match (r.finished_at, r.new_key_id) {
        (Some(t), Some(k)) => format!(
            "data key {k} since {}; {} values re-sealed; old keys destroyed",
            crate::clock::rfc3339(t),
            r.resealed
        ),
        _ => format!(
            "rotation under way: {} values re-sealed, {} to go",
            r.resealed,
            r.remaining
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into())
        ),
    }
}

async fn rotate_workspace(g: &Global, workspace: &str) -> Result<ExitCode> {
    crate::telemetry::init_cli();
    let cfg = load_config(g)?;
    let ws: crate::ids::WorkspaceId = workspace
        .parse()
        .map_err(|_| Error::field("workspace", "is not a workspace id"))?;
    let lock = dir_lock::exclusive(&cfg.data_dir);
    let state = super::open_state(g, cfg, false)?;
    let known = state
        .control
        .db
        .read(|c| crate::store::control::get_workspace(c, &state.control.keys, ws))?;
    if known.is_none() {
        return Err(Error::NotFound("workspace"));
    }
    let (_, started) = key_rotation::request(
        &state.control,
        state.clock.unix(),
        ws,
        crate::audit::Actor::Operator,
        &crate::audit::RequestMeta::cli(),
    )?;
    if !started {
        println!("a rotation of {ws} was already under way; resuming it");
    }
    if lock.is_err() {
        println!(
            "the running server re-seals {ws} in the background; follow it with `aura keys status`"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let started_at = std::time::Instant::now();
    let st = Arc::clone(&state);
    let n = tokio::task::spawn_blocking(move || {
        key_rotation::run_one(st.backup_deps(), ws, &|done, left| {
            eprintln!("re-sealed {done}, {left} to go");
        })
    })
    .await??;
    println!(
        "rotated the data key of {ws}: {n} values re-sealed in {:.1} s; the old key is destroyed",
        started_at.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
