//! `aura incident declare | update | resolve | list`: the operator's side of
//! incident notification (see `notices`). Each command records first and
//! mails after: without a mail relay the incident is still recorded, shown in
//! the affected workspaces and on /trust, and the owners' mail is kept owed
//! until the server has a relay.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::{Global, load_config, open_state};
use crate::audit::RequestMeta;
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::notices::{self, Outcome, Scope};

#[derive(Subcommand, Debug)]
pub enum IncidentCommand {
    /// Declare an incident: mails the owners of the affected workspaces, shows
    /// a banner in them until acknowledged, audits it in every affected chain
    /// and lists it on /trust (date, status, scope as a count); prints its id.
    Declare {
        /// `all`, or the ids of the affected workspaces (`aura workspace list`).
        #[arg(long, num_args = 1.., required = true, value_name = "all|WS")]
        workspaces: Vec<String>,
        /// What happened, as markdown or plain text. It is mailed to the
        /// owners and published at /trust/incidents/ID: name no customer.
        #[arg(long, value_name = "FILE")]
        summary: PathBuf,
    },
    /// Add an update (mailed to the owners again, and audited).
    Update {
        /// The incident id (`aura incident list`).
        id: String,
        #[arg(long, value_name = "FILE")]
        summary: PathBuf,
    },
    /// Resolve it, optionally with the post-incident summary.
    Resolve {
        id: String,
        #[arg(long, value_name = "FILE")]
        summary: Option<PathBuf>,
    },
    /// List every incident with its status, scope and mail still owed.
    List,
}

/// A summary file: UTF-8 text of at most `notices::MAX_SUMMARY` characters.
fn read_summary(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Usage(format!("--summary: cannot read {}: {e}", path.display())))?;
    if bytes.len() > notices::MAX_SUMMARY * 4 {
        return Err(Error::Usage(format!(
            "--summary: {} is longer than {} characters",
            path.display(),
            notices::MAX_SUMMARY
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("--summary: {} is not UTF-8 text", path.display())))
}

fn explain(e: Error) -> Error {
    match e {
        Error::NotFound(what) => Error::Usage(format!("no such {what}; see `aura incident list`")),
        other => super::admin::explain(other),
    }
}

pub async fn run(g: &Global, cmd: IncidentCommand) -> Result<ExitCode> {
    let state = open_state(g, load_config(g)?, false)?;
    let meta = RequestMeta::cli();
    let outcome = match cmd {
        IncidentCommand::Declare {
            workspaces,
            summary,
        } => {
            let text = read_summary(&summary)?;
            let scope = if workspaces.len() == 1 && workspaces[0] == "all" {
                Scope::All
            } else {
                let ids = workspaces
                    .iter()
                    .map(|w| {
                        w.parse().map_err(|_| {
                            Error::Usage(format!(
                                "--workspaces: `{w}` is neither `all` nor a workspace id; see `aura workspace list`"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Scope::Listed(ids)
            };
            notices::declare(&state.deps(), scope, &text, &meta)
                .await
                .map_err(explain)?
        }
        IncidentCommand::Update { id, summary } => {
            let text = read_summary(&summary)?;
            notices::update(&state.deps(), &id, Some(&text), false, &meta)
                .await
                .map_err(explain)?
        }
        IncidentCommand::Resolve { id, summary } => {
            let text = summary.as_deref().map(read_summary).transpose()?;
            notices::update(&state.deps(), &id, text.as_deref(), true, &meta)
                .await
                .map_err(explain)?
        }
        IncidentCommand::List => return list(&state).await,
    };
    report(&state, &outcome);
    Ok(ExitCode::SUCCESS)
}

fn report(state: &crate::app::AppState, o: &Outcome) {
    println!("{}", o.id);
    eprintln!(
        "incident {}: {} workspace(s); {} owner(s) mailed, {} mail owed",
        o.id, o.workspaces, o.mailed, o.pending
    );
    if o.pending > 0 && !state.mailer.configured() {
        eprintln!(
            "mail is not configured, so the owners were not mailed yet: set [mail] smtp_host \
             (and smtp_port, smtp_tls, from) in the config, or AURA_MAIL__SMTP_HOST, and restart \
             `aura serve`; the server sends the mail still owed (see `aura incident list`). \
             The incident is recorded, shown in the workspaces and on /trust."
        );
    } else if o.pending > 0 {
        eprintln!(
            "the mail relay refused some messages (see the log above); the server retries them"
        );
    }
    if !o.unaudited.is_empty() {
        eprintln!(
            "could not write the entry in these workspaces' chains: {:?}",
            o.unaudited
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
    }
}

async fn list(state: &crate::app::AppState) -> Result<ExitCode> {
    println!("ID\tDECLARED\tSTATUS\tSCOPE\tUPDATES\tMAIL SENT\tMAIL OWED");
    for (i, updates) in notices::list(&state.deps()).await? {
        let prefix = format!("incident:{}:", i.id);
        let (sent, owed) = state
            .control
            .db
            .read_async(move |c| crate::store::notices::mail_counts(c, &prefix))
            .await?;
        println!(
            "{}\t{}\t{}\t{}\t{}\t{sent}\t{owed}",
            i.id,
            rfc3339(i.declared_at),
            i.status,
            notices::scope_words(&i),
            updates.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
