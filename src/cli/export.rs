//! `aura workspace export WS --out PATH [--recipient age1...]`: the whole
//! workspace as one archive (see `crate::export`), with a progress bar and a
//! one-line summary.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use crate::app::AppState;
use crate::audit::{Actor, RequestMeta};
use crate::error::{Error, Result};
use crate::ids::WorkspaceId;

pub fn run(
    state: &AppState,
    workspace: &str,
    out: PathBuf,
    recipient: Option<String>,
) -> Result<ExitCode> {
    let ws: WorkspaceId = workspace.parse().map_err(|_| {
        Error::Usage(format!(
            "`{workspace}` is not a workspace id; see `aura workspace list`"
        ))
    })?;
    let recipient = recipient
        .map(|r| crate::export::recipient("--recipient", &r))
        .transpose()
        .map_err(|_| {
            Error::Usage(
                "--recipient must be an age X25519 recipient (age1...); make one with `age-keygen`"
                    .into(),
            )
        })?;
    let db = crate::audit::chains::open_tenant(
        &state.control,
        &state.tenants,
        ws,
        crate::access::SystemTask::WorkspaceExport,
    )
    .map_err(|_| Error::Usage(format!("no workspace {ws}; see `aura workspace list`")))?;
    if out.exists() {
        return Err(Error::Usage(format!(
            "{} exists; choose a new --out path (an export never overwrites a file)",
            out.display()
        )));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&out)
        .map_err(|e| Error::Usage(format!("cannot create {}: {e}", out.display())))?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records and audit entries [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let checkpoint = crate::export::begin(
        &state.control,
        state.clock.unix(),
        &db,
        Actor::Operator,
        &RequestMeta::cli(),
        recipient.is_some(),
    )?;
    let writer = std::io::BufWriter::new(file);
    let summary = match recipient {
        Some(r) => {
            let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
                .map_err(|e| Error::internal(format!("age: {e}")))?;
            let w = enc.wrap_output(writer)?;
            let (w, summary) = crate::export::write(
                &state.control,
                state.clock.unix(),
                &db,
                &checkpoint,
                None,
                w,
                &progress,
            )?;
            finish(w.finish()?)?;
            summary
        }
        None => {
            let (w, summary) = crate::export::write(
                &state.control,
                state.clock.unix(),
                &db,
                &checkpoint,
                None,
                writer,
                &progress,
            )?;
            finish(w)?;
            summary
        }
    };
    bar.finish_and_clear();
    println!(
        "exported workspace {ws}: {} collections, {} records, {} audit entries, {} files ({} attached), {} bytes -> {}",
        summary.collections,
        summary.records,
        summary.audit_entries,
        summary.files,
        summary.attached_files,
        summary.bytes,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn finish(mut w: std::io::BufWriter<std::fs::File>) -> Result<()> {
    w.flush()?;
    w.get_ref().sync_all()?;
    Ok(())
}
