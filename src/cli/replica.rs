//! `aura replica status` and `aura restore --at TIME|latest` (point-in-time
//! recovery from the continuous replica; docs/replication.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use super::backup::identity;
use super::{Global, load_config, open_state};
use crate::clock::rfc3339_ms;
use crate::error::{Error, Result};
use crate::replication::{catalog, restore, status, target::Replica};

#[derive(Subcommand, Debug)]
pub enum ReplicaCommand {
    /// Per database: last replicated transaction, lag, segments, oldest
    /// recoverable instant.
    Status,
    /// Make this appliance the primary: take the replica lease (a
    /// conditional write), which fences the previous holder at once.
    Promote,
}

fn replica_of(cfg: &crate::config::Config) -> Result<Replica> {
    Replica::from_config(cfg)?.ok_or_else(|| {
        Error::Usage("replication is off: set `[replication] url` in the config".into())
    })
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub async fn run(g: &Global, cmd: ReplicaCommand) -> Result<ExitCode> {
    let cfg = load_config(g)?;
    let replica = replica_of(&cfg)?;
    match cmd {
        ReplicaCommand::Status => {
            let now = now_ms();
            let cutoff = now - i64::from(cfg.file.replication.retention_days) * 86_400_000;
            let beat: Option<status::Heartbeat> = replica
                .get(crate::replication::HEARTBEAT)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            println!("replica {} (region {})", replica.label, replica.region);
            println!("DATABASE\tLAST REPLICATED\tSEQ\tLAG S\tSEGMENTS\tOLDEST RECOVERABLE");
            for db in replica.databases().await? {
                let gens = restore::generations(&replica, &db).await?;
                let Some((oldest, newest)) = catalog::window(&gens, cutoff) else {
                    continue;
                };
                let segments: usize = gens.iter().map(|g| g.segments.len()).sum();
                let last = gens.last();
                let seq = last
                    .map(|g| format!("{}/{}", g.id, g.segments.len()))
                    .unwrap_or_default();
                // Lag: since the replica last matched the live database (the
                // heartbeat), else since the newest object.
                let synced = beat
                    .as_ref()
                    .and_then(|b| b.databases.get(&db))
                    .map(|d| d.synced_ms)
                    .unwrap_or(newest);
                println!(
                    "{db}\t{}\t{seq}\t{:.1}\t{segments}\t{}",
                    rfc3339_ms(newest),
                    status::lag_seconds(now, synced),
                    rfc3339_ms(oldest)
                );
            }
            if let Some(b) = beat {
                println!(
                    "the primary last wrote its heartbeat {:.1} s ago",
                    status::lag_seconds(now, b.written_ms)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ReplicaCommand::Promote => {
            let bar = super::backup::spinner("taking the replica lease");
            crate::store::create_private_dir(&cfg.data_dir)?;
            let me = crate::replication::lease::holder_id(&cfg.data_dir)?;
            let (l, before) = crate::replication::lease::take(&replica, &me, now_ms()).await?;
            bar.finish_and_clear();
            println!(
                "promoted: this appliance ({me}) holds the lease of {} at epoch {}{}; start or keep `aura serve` running here",
                replica.label,
                l.epoch,
                match before {
                    Some(b) if b.holder != me => format!(
                        "; the previous primary ({}) refuses writes from its next renewal (within seconds)",
                        b.holder
                    ),
                    _ => String::new(),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_at(at: &str) -> Result<Option<i64>> {
    if at == "latest" {
        return Ok(None);
    }
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            Error::Usage(format!(
                "--at: `{at}` is not an RFC 3339 instant like 2026-12-04T10:15:00Z, or `latest`"
            ))
        })?;
    Ok(Some((t.unix_timestamp_nanos() / 1_000_000) as i64))
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} objects [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// ", N file(s)" and any named but not in the replica.
fn files_note(f: crate::replication::files::Fetched) -> String {
    match (f.placed, f.missing) {
        (0, 0) => String::new(),
        (n, 0) => format!(", {n} file(s) fetched and checked"),
        (n, m) => format!(
            ", {n} file(s) fetched and checked, {m} named but not in the replica (removed before they could be shipped; they answer 404)"
        ),
    }
}

/// `aura restore --at TIME|latest [--workspace WS | --to DIR]`.
pub async fn restore(
    g: &Global,
    at: &str,
    to: Option<PathBuf>,
    workspace: Option<String>,
    identity_path: Option<PathBuf>,
) -> Result<ExitCode> {
    let t = parse_at(at)?;
    let bar = bar();
    let progress = |db: &str, done: u64, total: u64| {
        bar.set_message(db.to_owned());
        bar.set_length(total);
        bar.set_position(done);
    };
    if let Some(ws) = workspace {
        let ws = super::workspace_arg(&ws)?;
        let state = open_state(g, load_config(g)?, false)?;
        let ident = identity(g, &state.config, identity_path)?;
        let replica = replica_of(&state.config)?;
        let (head, state_ms, files) = restore::workspace_in_place(
            &state.replication_deps(),
            &replica,
            ws,
            t,
            &ident,
            &progress,
        )
        .await?;
        bar.finish_and_clear();
        println!(
            "restored workspace {ws} to {at} (its state replicated at {}{}) from {}; its audit chain continues from seq {head}; other workspaces were not touched",
            rfc3339_ms(state_ms),
            files_note(files),
            replica.label
        );
        return Ok(ExitCode::SUCCESS);
    }
    let to = to.ok_or_else(|| {
        Error::Usage("--to DIR (a new data dir) or --workspace WS is required".into())
    })?;
    let cfg = load_config(g)?;
    let ident = identity(g, &cfg, identity_path)?;
    let (master, _) = crate::crypto::master_source::load(&cfg)?;
    let replica = replica_of(&cfg)?;
    let r = restore::appliance(&cfg, &replica, t, &ident, &to, master, &progress).await?;
    bar.finish_and_clear();
    println!(
        "restored the appliance to {at} (control.db as replicated at {}, {} workspace(s){}{}) into {}; start it with `aura serve --data-dir {}` and the same master key",
        rfc3339_ms(r.state_ms),
        r.workspaces,
        files_note(r.files),
        if r.later > 0 {
            format!(", {} created later left out", r.later)
        } else {
            String::new()
        },
        to.display(),
        to.display()
    );
    Ok(ExitCode::SUCCESS)
}
