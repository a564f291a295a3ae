//! The mail a notice owes each person. The notice and its recipients are
//! recorded first (`notice_mail`, in the notice's own transaction); each
//! message is marked sent once the relay accepted it. Without a relay, or
//! when it refuses, the mail stays owed and the server retries it, so a
//! notice is never lost and a restart does not send it twice.

use crate::clock::rfc3339;
use crate::error::Result;
use crate::identity::Deps;
use crate::ids::UserId;
use crate::mail::Mail;
use crate::store::notices as sql;
use crate::store::{control, notices::IncidentRow};

/// Mail older than this that is still owed is retried by the server; younger
/// mail belongs to the command that created it (which may still be sending).
pub const RETRY_AFTER_SECS: i64 = 600;

pub fn incident_notice(id: &str, seq: i64) -> String {
    format!("incident:{id}:{seq}")
}

/// Sends the mail owed for notices whose key starts with `prefix` (all of
/// it), or with `None` the mail older than `RETRY_AFTER_SECS`; returns
/// (sent now, still owed).
pub async fn deliver(deps: &Deps<'_>, prefix: Option<&str>) -> Result<(usize, usize)> {
    let (prefix, until) = match prefix {
        Some(p) => (p.to_owned(), i64::MAX),
        None => (String::new(), deps.clock.unix() - RETRY_AFTER_SECS),
    };
    let owed = deps
        .control
        .db
        .read_async(move |c| sql::unsent_mail(c, &prefix, until))
        .await?;
    if !deps.mailer.configured() {
        return Ok((0, owed.len()));
    }
    let (mut sent, mut pending) = (0, 0);
    for (notice, user) in owed {
        let mail = match compose(deps, &notice, user).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%notice, error = %e, "could not write a notice");
                pending += 1;
                continue;
            }
        };
        if let Some(mail) = mail {
            if let Err(e) = deps.mailer.send(mail).await {
                tracing::warn!(%notice, error = %e, "notice not sent; retried later");
                pending += 1;
                continue;
            }
            sent += 1;
        }
        // Sent, or nothing left to say (the account or the entry is gone).
        let now = deps.clock.unix();
        let n = notice.clone();
        deps.control
            .db
            .write_async(move |tx| sql::mark_sent(tx, &n, user, now))
            .await?;
    }
    Ok((sent, pending))
}

async fn compose(deps: &Deps<'_>, notice: &str, user: UserId) -> Result<Option<Mail>> {
    if let Some(rest) = notice.strip_prefix("incident:") {
        let Some((id, seq)) = rest.rsplit_once(':') else {
            return Ok(None);
        };
        let seq: i64 = seq.parse().unwrap_or(0);
        return incident_mail(deps, id, seq, user).await;
    }
    if let Some(digest) = notice.strip_prefix("subprocessor:") {
        return super::subprocessors::mail_for(deps, digest, user).await;
    }
    Ok(None)
}

/// The recipient's address, if the account still exists.
pub async fn address_of(deps: &Deps<'_>, user: UserId) -> Result<Option<String>> {
    let keys = deps.control.keys.clone();
    Ok(deps
        .control
        .db
        .read_async(move |c| control::get_user(c, &keys, user))
        .await?
        .map(|u| u.email))
}

struct IncidentMail {
    incident: IncidentRow,
    kind: String,
    at: i64,
    summary: Option<String>,
    /// The recipient's own workspaces among those affected: (id, name).
    theirs: Vec<(String, String)>,
    to: String,
}

async fn incident_mail(deps: &Deps<'_>, id: &str, seq: i64, user: UserId) -> Result<Option<Mail>> {
    let keys = deps.control.keys.clone();
    let id = id.to_owned();
    let found = deps
        .control
        .db
        .read_async(move |c| {
            let Some(incident) = sql::get_incident(c, &id)? else {
                return Ok(None);
            };
            let Some(u) = sql::updates(c, &keys, &id)?
                .into_iter()
                .find(|u| u.seq == seq)
            else {
                return Ok(None);
            };
            let Some(to) = control::get_user(c, &keys, user)? else {
                return Ok(None);
            };
            let affected = sql::incident_workspaces(c, &id)?;
            let theirs = control::memberships_for_user(c, &keys, user)?
                .into_iter()
                .filter(|(w, role)| *role == crate::access::Role::Owner && affected.contains(&w.id))
                .map(|(w, _)| (w.id.to_string(), w.name))
                .collect();
            Ok(Some(IncidentMail {
                incident,
                kind: u.kind,
                at: u.at,
                summary: u.summary,
                theirs,
                to: to.email,
            }))
        })
        .await?;
    let Some(m) = found else { return Ok(None) };
    if m.theirs.is_empty() {
        // No longer an owner of any affected workspace.
        return Ok(None);
    }
    let base = &deps.config.public_url;
    let (subject, headline) = match m.kind.as_str() {
        "declared" => (
            "Security incident affecting your Aura workspace",
            "A security incident affecting your workspace was declared",
        ),
        "resolved" => (
            "Security incident resolved",
            "The security incident affecting your workspace was resolved",
        ),
        _ => (
            "Update on the security incident affecting your Aura workspace",
            "There is an update on the security incident affecting your workspace",
        ),
    };
    let mut body = format!("{headline} ({}, {}).\n\n", m.incident.id, rfc3339(m.at));
    body.push_str("Your workspaces affected:\n");
    for (ws, name) in &m.theirs {
        body.push_str(&format!("  \"{name}\": {base}/w/{ws}\n"));
    }
    body.push_str(&format!("\nStatus: {}\n\n", m.incident.status));
    if let Some(s) = &m.summary {
        body.push_str(s);
        body.push_str("\n\n");
    }
    body.push_str(&format!(
        "The incident and every update: {base}/trust/incidents/{}\n\
         Until an owner or admin acknowledges it, a banner shows it inside the workspace.\n",
        m.incident.id
    ));
    Ok(Some(Mail {
        to: m.to,
        subject: subject.into(),
        body,
    }))
}
