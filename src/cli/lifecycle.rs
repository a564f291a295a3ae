//! `aura workspace purge-due | move-out | move-in | move-confirm |
//! move-cancel`: deletions that are due, and moving a workspace between
//! appliances. Long steps show a spinner; each command ends with a one-line
//! summary on stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use super::WorkspaceCommand;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::lifecycle::{self, moving};

fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Runs `job` on the blocking pool with a spinner that shows its steps.
async fn with_spinner<T: Send + 'static>(
    what: &str,
    state: &Arc<AppState>,
    job: impl FnOnce(&AppState, &dyn Fn(&str)) -> Result<T> + Send + 'static,
) -> Result<T> {
    let bar = spinner(what);
    let b = bar.clone();
    let st = Arc::clone(state);
    let out = tokio::task::spawn_blocking(move || job(&st, &|m: &str| b.set_message(m.to_owned())))
        .await?;
    bar.finish_and_clear();
    out
}

pub async fn run(state: &Arc<AppState>, cmd: WorkspaceCommand) -> Result<ExitCode> {
    match cmd {
        WorkspaceCommand::PurgeDue => {
            let p = with_spinner("looking for due deletions", state, |s, progress| {
                lifecycle::purge_due(&s.lifecycle_deps(), progress)
            })
            .await?;
            println!("{p}");
        }
        WorkspaceCommand::MoveOut {
            workspace,
            to_recipient,
            out,
            target_region,
            allow_cross_region,
        } => {
            let out = out.unwrap_or_else(|| PathBuf::from(format!("aura-move-{workspace}.age")));
            let ask = moving::Ask {
                target_region,
                allow_cross_region,
            };
            let r = with_spinner("moving out", state, move |s, progress| {
                moving::move_out(
                    &s.lifecycle_deps(),
                    &workspace,
                    &to_recipient,
                    &ask,
                    &out,
                    progress,
                )
            })
            .await?;
            let region = match (
                r.destination.target_region.as_str(),
                &r.destination.cross_region_reason,
            ) {
                ("", _) => String::new(),
                (t, None) => format!(" for region {t}"),
                (t, Some(_)) => format!(" for region {t} (cross-region, reason recorded)"),
            };
            println!(
                "wrote {}{region} ({} bytes, {} audit entries); the workspace is read-only here. Copy the file to the target and run `aura workspace move-in {} --identity FILE --source-key {}` there (this appliance's audit public key: give it to the target's operator by a channel you trust, or let them read `document.audit.public_key` from this appliance's /trust.json), then `aura workspace move-confirm ID` here",
                r.path.display(),
                r.size,
                r.entries,
                r.path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                r.source_key
            );
        }
        WorkspaceCommand::MoveIn {
            bundle,
            identity,
            source_key,
            allow_cross_region,
        } => {
            let source_key = moving::parse_source_key(&source_key)?;
            let ident = crate::backup::read_identity(&identity)?;
            let r = with_spinner("moving in", state, move |s, progress| {
                moving::move_in(
                    &s.lifecycle_deps(),
                    &bundle,
                    &ident,
                    &source_key,
                    allow_cross_region.as_deref(),
                    progress,
                )
            })
            .await?;
            println!(
                "moved in workspace {} ({} audit entries, chain re-anchored here); {} member(s) matched existing accounts, {} account(s) created without a password (they use \"Forgot password\")",
                r.workspace, r.entries, r.members_matched, r.members_created
            );
        }
        WorkspaceCommand::MoveConfirm { workspace } => {
            let ws = workspace.clone();
            let n = with_spinner("shredding the moved workspace", state, move |s, _| {
                moving::move_confirm(&s.lifecycle_deps(), &ws)
            })
            .await?;
            println!(
                "workspace {workspace} shredded here: its key is destroyed ({n} backup escrow(s) rewritten)"
            );
        }
        WorkspaceCommand::MoveCancel { workspace } => {
            let ws = workspace.clone();
            with_spinner("cancelling the move", state, move |s, _| {
                moving::move_cancel(&s.lifecycle_deps(), &ws)
            })
            .await?;
            println!("workspace {workspace} is writable here again");
        }
        other => {
            return Err(Error::internal(format!(
                "{other:?} is not a lifecycle command"
            )));
        }
    }
    Ok(ExitCode::SUCCESS)
}
