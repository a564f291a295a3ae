//! `aura audit ...`: verify every chain against its signed checkpoints,
//! export a chain, check an export offline, sign checkpoints, apply retention.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Global, load_config, open_state};
use crate::audit::anchor::Anchor;
use crate::audit::chains::{self, Chain};
use crate::audit::export::{self, Format};
use crate::audit::service;
use crate::audit::{Actor, RequestMeta};
use crate::error::{Error, Result};

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify every chain (or one workspace's) against its signed checkpoints.
    Verify {
        #[arg(long)]
        workspace: Option<String>,
        /// Also check the chains against checkpoints kept outside the data
        /// dir: a backup's manifest.json, an audit export (NDJSON, or a CSV
        /// export's .checkpoint.json) or a saved /trust.json.
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    /// Export a chain (the platform's unless --workspace) as NDJSON or CSV.
    Export {
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long, default_value = "ndjson")]
        format: String,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check an NDJSON export offline: signature, hashes, links, head.
    VerifyExport {
        file: PathBuf,
        /// The appliance's audit public key (hex) you trust; default: the one in the file.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Sign the head of every chain that changed since its last checkpoint.
    Checkpoint,
    /// Apply retention now: remove expired entries behind a signed checkpoint.
    Prune,
}

fn parse_chain(workspace: Option<String>) -> Result<Option<Chain>> {
    workspace
        .map(|w| super::workspace_arg(&w).map(Chain::Workspace))
        .transpose()
}

pub async fn run(g: &Global, cmd: AuditCommand) -> Result<ExitCode> {
    if let AuditCommand::VerifyExport { file, public_key } = cmd {
        return verify_export(file, public_key);
    }
    let state = open_state(g, load_config(g)?, false)?;
    let now = state.clock.unix();
    match cmd {
        AuditCommand::Verify { workspace, anchor } => {
            let whole = workspace.is_none();
            let chains = match parse_chain(workspace)? {
                Some(c) => vec![c],
                None => chains::all_chains(&state.control)?,
            };
            let max_age =
                chains::max_unsigned_age(state.config.file.audit.checkpoint_interval_secs);
            let mut failed = 0;
            let anchors = match &anchor {
                None => Vec::new(),
                Some(path) => {
                    let a = read_anchor(path)?;
                    if a.key()? != state.control.signer.public_key() {
                        println!(
                            "FAIL  anchor {}: signed by audit key {}, but this appliance's key is {}: the anchor is from another appliance, or this appliance's key was replaced",
                            path.display(),
                            a.public_key,
                            hex::encode(state.control.signer.public_key())
                        );
                        failed += 1;
                    }
                    let cps = a.signed()?;
                    if whole {
                        let (gone, missing) =
                            crate::audit::anchor::scopes_missing(&state.control, &cps)?;
                        for scope in gone {
                            println!(
                                "skip  workspace {scope}: in the anchor, deleted here since (its key destroyed)"
                            );
                        }
                        for scope in missing {
                            failed += 1;
                            println!(
                                "FAIL  workspace {scope}: in the anchor, but its chain is missing here"
                            );
                        }
                    }
                    cps
                }
            };
            for chain in chains {
                let report = chains::verify_chain(
                    &state.control,
                    &state.tenants,
                    chain,
                    now,
                    max_age,
                    &anchors,
                )?;
                chains::record_verification(&state.control, &report, now)?;
                let name = match chain {
                    Chain::Platform => "platform".to_owned(),
                    Chain::Workspace(w) => format!("workspace {w}"),
                };
                match report.first_bad_seq {
                    None => println!(
                        "ok    {name}: {} entries, head seq {}, signed checkpoint at seq {}{}",
                        report.entries,
                        report.head_seq,
                        report
                            .checkpoint_seq
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "none yet".into()),
                        if anchors.iter().any(|a| a.body.scope == chain.scope()) {
                            ", matches the outside anchor"
                        } else {
                            ""
                        }
                    ),
                    Some(seq) => {
                        failed += 1;
                        println!(
                            "FAIL  {name}: first bad seq {seq}: {}",
                            report.reason.clone().unwrap_or_default()
                        );
                    }
                }
            }
            if failed > 0 {
                println!(
                    "{failed} chain(s) failed verification: restore the affected workspace from a backup taken before the first bad entry, and investigate who had write access to the data dir."
                );
                Ok(ExitCode::FAILURE)
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
        AuditCommand::Export {
            workspace,
            format,
            out,
        } => {
            let format = Format::parse(&format)
                .map_err(|_| Error::Usage("--format: must be ndjson or csv".into()))?;
            let chain = parse_chain(workspace)?.unwrap_or(Chain::Platform);
            let (line, mut rx) = service::export(
                state.audit_deps(),
                chain,
                Default::default(),
                format,
                Actor::Operator,
                &RequestMeta::cli(),
                None,
            )
            .await?;
            let mut sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(
                    crate::store::create_private_file(p)
                        .map_err(|e| Error::Usage(format!("cannot create {}: {e}", p.display())))?,
                ),
                None => Box::new(std::io::stdout()),
            };
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} exporting {bytes} ({bytes_per_sec})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            if out.is_none() {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let mut bytes = 0u64;
            while let Some(chunk) = rx.recv().await {
                let chunk = chunk?;
                sink.write_all(&chunk)?;
                bytes += chunk.len() as u64;
                bar.set_position(bytes);
            }
            sink.flush()?;
            bar.finish_and_clear();
            if let (Some(p), Format::Csv) = (&out, format) {
                let side = p.with_extension("checkpoint.json");
                crate::store::create_private_file(&side)?
                    .write_all(&serde_json::to_vec_pretty(&line)?)?;
            }
            eprintln!(
                "exported {} through signed checkpoint seq {} ({bytes} bytes){}",
                chain.scope(),
                line.seq,
                out.map(|p| format!(" to {}", p.display()))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint => {
            let n = chains::checkpoint_all(&state.control, &state.tenants, "manual", now)?;
            println!("signed {n} checkpoint(s)");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prune => {
            let days = state.config.file.audit.retention_days;
            let mut total = 0;
            for chain in chains::all_chains(&state.control)? {
                if let Some((through, removed)) =
                    chains::apply_retention(&state.control, &state.tenants, chain, days, now)?
                {
                    println!(
                        "{}: removed {removed} entries through seq {through}",
                        chain.scope()
                    );
                    total += removed;
                }
            }
            println!(
                "retention applied: {total} entries removed, every chain still anchored by a signed checkpoint"
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::VerifyExport { .. } => Ok(ExitCode::SUCCESS),
    }
}

fn read_anchor(path: &std::path::Path) -> Result<Anchor> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("--anchor: cannot read {}: {e}", path.display())))?;
    Anchor::parse(&text)
}

fn verify_export(file: PathBuf, public_key: Option<String>) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", file.display())))?;
    let trusted = public_key
        .map(|k| {
            hex::decode(k.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| Error::Usage("--public-key: must be 64 hex characters".into()))
        })
        .transpose()?;
    match export::verify_ndjson(&text, trusted.as_ref()) {
        Ok(c) => {
            println!(
                "ok    {}: {} entries, signed head seq {}{}",
                file.display(),
                c.entries,
                c.checkpoint_seq,
                if c.filtered {
                    " (filtered export: each entry's hash checked, links not)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAIL  {}: {e}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
