//! Subprocessor changes with notice: a `[[trust.subprocessors]]` entry with a
//! future `effective` day is upcoming. /trust lists it as such until that
//! day, and the first time the server sees it (at start, then hourly) every
//! workspace's owners are mailed once: the notice is remembered in control.db
//! under the digest of role, host and day, so a restart does not mail again,
//! and audited in the platform chain.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::config::DeclaredSubprocessor;
use crate::error::Result;
use crate::identity::Deps;
use crate::ids::UserId;
use crate::mail::Mail;
use crate::store::{audit, control, notices as sql};

/// What identifies one announced change: a changed role, host or day is a
/// new notice.
pub fn digest(s: &DeclaredSubprocessor) -> String {
    let mut h = Sha256::new();
    for part in [&s.role, &s.host, &s.effective] {
        h.update(part.trim().as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// The declared entries whose `effective` day is still ahead of `now`.
pub fn upcoming(subprocessors: &[DeclaredSubprocessor], now: i64) -> Vec<&DeclaredSubprocessor> {
    subprocessors
        .iter()
        .filter(|s| s.effective_unix().is_some_and(|t| t > now))
        .collect()
}

/// Notices every upcoming entry not yet noticed, then sends the mail owed
/// (and retries older mail still owed, incidents' too).
pub async fn run(deps: &Deps<'_>) -> Result<String> {
    let now = deps.clock.unix();
    let mut noticed = 0;
    for s in upcoming(&deps.config.file.trust.subprocessors, now) {
        let d = digest(s);
        let keys = deps.control.keys.clone();
        let entry = s.clone();
        let new = deps
            .control
            .db
            .write_async(move |tx| {
                if sql::subprocessor_noticed(tx, &d)? {
                    return Ok(false);
                }
                let workspaces = control::workspace_ids(tx)?;
                let owners = super::owners_of(tx, &keys, &workspaces)?;
                sql::insert_subprocessor_notice(tx, &d, &entry.effective, now)?;
                sql::owe_mail(tx, &format!("subprocessor:{d}"), &owners, now)?;
                let meta = RequestMeta::default();
                audit::append(
                    tx,
                    &keys.sealer,
                    now,
                    &NewEntry::new(Actor::System, "trust.subprocessor_notice", &meta)
                        .target("subprocessor", &d)
                        .after(json!({
                            "role": entry.role,
                            "host": entry.host,
                            "effective": entry.effective,
                            "owners": owners.len(),
                        })),
                )?;
                Ok(true)
            })
            .await?;
        if new {
            noticed += 1;
        }
    }
    let (sent, pending) = super::mail::deliver(deps, Some("subprocessor:")).await?;
    let (retried, still) = super::mail::deliver(deps, None).await?;
    Ok(format!(
        "{noticed} new subprocessor notice(s); {} mail sent, {} still owed",
        sent + retried,
        pending.max(still)
    ))
}

/// The mail for one owner about the entry with this digest; none if the
/// config no longer declares it.
pub async fn mail_for(deps: &Deps<'_>, digest_hex: &str, user: UserId) -> Result<Option<Mail>> {
    let t = &deps.config.file.trust;
    let Some(s) = t.subprocessors.iter().find(|s| digest(s) == digest_hex) else {
        return Ok(None);
    };
    let Some(to) = super::mail::address_of(deps, user).await? else {
        return Ok(None);
    };
    let base = &deps.config.public_url;
    let body = format!(
        "The Aura appliance at {base} will start using a new subprocessor on {} (UTC):\n\n  \
         {}: {}\n\nYou receive this notice as an owner of a workspace there. Every \
         subprocessor, current and upcoming, is listed on the trust page: {base}/trust\n",
        s.effective, s.role, s.host
    );
    Ok(Some(Mail {
        to,
        subject: format!("Notice: a new subprocessor from {}", s.effective),
        body,
    }))
}
