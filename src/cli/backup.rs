//! `aura backup run|list|verify|prune` and `aura restore --from` (a backup).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Global, load_config, open_state};
use crate::backup::target::LocalTarget;
use crate::backup::{self, archive, drill, restore};
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::store::DbOptions;

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Take a backup now; prints its id last.
    Run,
    /// List backups in the target.
    List,
    /// Restore drill: decrypt into a scratch dir and check everything.
    Verify {
        /// A backup id (default: the latest).
        id: Option<String>,
        /// The age identity file, or `-` for stdin (default in dev: the dev identity).
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Apply retention (keep_daily, keep_weekly); never removes the newest.
    Prune,
}

pub(super) fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

pub(super) fn identity(
    g: &Global,
    cfg: &crate::config::Config,
    path: Option<PathBuf>,
) -> Result<age::x25519::Identity> {
    let _ = g;
    match path {
        Some(p) => backup::read_identity(&p),
        None if cfg.dev || crate::crypto::master_source::data_dir_has_dev_key(&cfg.data_dir) => {
            backup::dev_identity(&cfg.data_dir)
        }
        None => Err(Error::Usage(
            "--identity FILE is required: the age identity matching `backup.recipients`".into(),
        )),
    }
}

pub async fn run(g: &Global, cmd: BackupCommand) -> Result<ExitCode> {
    let cfg = load_config(g)?;
    let state = open_state(g, cfg, false)?;
    match cmd {
        BackupCommand::Run => {
            let bar = spinner("backing up");
            let st = state.clone();
            let b = bar.clone();
            let s = tokio::task::spawn_blocking(move || {
                archive::run(st.backup_deps(), &|m| b.set_message(m.to_owned()))
            })
            .await??;
            bar.finish_and_clear();
            eprintln!(
                "backup {} done: {} workspace(s), {} bytes encrypted, {:.1}s, in {}",
                s.id,
                s.workspaces,
                s.size,
                s.secs,
                s.path.display()
            );
            println!("{}", s.id);
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::List => {
            let target = LocalTarget::from_config(&state.config)?;
            println!("ID\tCREATED\tSIZE\tWORKSPACES\tREGION");
            for m in target.list()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    m.id,
                    rfc3339(m.created_at),
                    m.size,
                    m.workspaces,
                    if m.region.is_empty() { "-" } else { &m.region }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Verify { id, identity: path } => {
            let ident = identity(g, &state.config, path)?;
            let bar = spinner("restore drill");
            let st = state.clone();
            let b = bar.clone();
            let report = tokio::task::spawn_blocking(move || {
                drill::run_with_progress(st.backup_deps(), id.as_deref(), &ident, &|m| {
                    b.set_message(m.to_owned())
                })
            })
            .await??;
            bar.finish_and_clear();
            if report.ok {
                println!(
                    "ok    drill {}: {} workspace(s) restored and verified in {:.1}s",
                    report.id, report.workspaces, report.secs
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "FAIL  drill {}: {} step failed: {}",
                    report.id,
                    report.failed_step.clone().unwrap_or_default(),
                    report.detail
                );
                Ok(ExitCode::FAILURE)
            }
        }
        BackupCommand::Prune => {
            let target = LocalTarget::from_config(&state.config)?;
            let b = &state.config.file.backup;
            let removed = crate::backup::target::prune(
                &target,
                b.keep_daily as usize,
                b.keep_weekly as usize,
            )?;
            println!("pruned {removed} backup(s); kept {}", target.list()?.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `aura restore --from ID --to DIR --identity FILE`.
pub async fn restore(
    g: &Global,
    from: String,
    to: Option<PathBuf>,
    workspace: Option<String>,
    identity_path: Option<PathBuf>,
) -> Result<ExitCode> {
    if let Some(ws) = workspace {
        let ws = super::workspace_arg(&ws)?;
        let state = open_state(g, load_config(g)?, false)?;
        let ident = identity(g, &state.config, identity_path)?;
        let target = LocalTarget::from_config(&state.config)?;
        let archive_path = target.archive_path(&from);
        if !archive_path.exists() {
            return Err(Error::Usage(format!(
                "no backup {from}; see `aura backup list`"
            )));
        }
        let bar = spinner("restoring one workspace");
        let st = state.clone();
        let escrow = target.escrow_path();
        let from_c = from.clone();
        let head = tokio::task::spawn_blocking(move || {
            restore::workspace(
                st.backup_deps(),
                &archive_path,
                &escrow,
                &from_c,
                ws,
                &ident,
            )
        })
        .await??;
        bar.finish_and_clear();
        println!(
            "restored workspace {ws} from backup {from} (its audit chain now continues from seq {head}); other workspaces were not touched"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let to = to.ok_or_else(|| {
        Error::Usage("--to DIR is required: the new data dir to restore into".into())
    })?;
    let cfg = load_config(g)?;
    let ident = identity(g, &cfg, identity_path)?;
    let (master, _) = crate::crypto::master_source::load(&cfg)?;
    let target = LocalTarget::from_config(&cfg)?;
    let archive_path = target.archive_path(&from);
    if !archive_path.exists() {
        return Err(Error::Usage(format!(
            "no backup {from} in {}; see `aura backup list`",
            target.dir.display()
        )));
    }
    let bar = spinner("restoring");
    let opts = DbOptions::from_config(&cfg.file.storage);
    let trust = crate::backup::drill::BackupTrust {
        public_key: None,
        max_unsigned_age: crate::audit::chains::max_unsigned_age(
            cfg.file.audit.checkpoint_interval_secs,
        ),
    };
    let escrow = target.escrow_path();
    let to_c = to.clone();
    let r = tokio::task::spawn_blocking(move || {
        restore::full(
            &archive_path,
            &escrow,
            &from,
            &ident,
            &to_c,
            master,
            opts,
            &trust,
        )
    })
    .await??;
    bar.finish_and_clear();
    if r.shredded > 0 {
        println!(
            "skipped {} workspace(s) deleted since this backup: their keys were destroyed",
            r.shredded
        );
    }
    println!(
        "restored backup {} ({} workspace(s)) into {}; start it with `aura serve --data-dir {}` and the same master key",
        r.id,
        r.workspaces,
        to.display(),
        to.display()
    );
    Ok(ExitCode::SUCCESS)
}
