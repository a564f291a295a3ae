//! Mail about deletions: a workspace's owners hear when its deletion is
//! scheduled and when it is cancelled; a person hears about their own
//! account. Sent after the change committed; a message that cannot go out
//! is logged and changes nothing (the change stands either way).

use crate::access::Role;
use crate::clock::rfc3339;
use crate::identity::Deps;
use crate::ids::{UserId, WorkspaceId};
use crate::mail::{Mail, Mailer};
use crate::store::control;

pub enum Event {
    Scheduled { due: i64 },
    Cancelled,
}

/// Mails every owner (people, not service accounts) of `ws`.
pub async fn owners(deps: &Deps<'_>, ws: WorkspaceId, name: &str, event: Event) {
    if !deps.mailer.configured() {
        tracing::info!(workspace = %ws, "mail is off: owners not notified of the deletion");
        return;
    }
    let keys = deps.control.keys.clone();
    let members = match deps
        .control
        .db
        .read_async(move |c| control::workspace_members(c, &keys, ws))
        .await
    {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(workspace = %ws, error = %e, "could not list owners to notify");
            return;
        }
    };
    let url = format!("{}/w/{ws}/settings", deps.config.public_url);
    let (subject, body) = match event {
        Event::Scheduled { due } => (
            format!("Workspace \"{name}\" is scheduled for deletion"),
            format!(
                "An owner scheduled the workspace \"{name}\" for deletion. It is read-only now.\n\n\
                 On {} its data key is destroyed and its data, including every backup of it, \
                 can no longer be read.\n\nAny owner can cancel the deletion until then: {url}\n",
                rfc3339(due)
            ),
        ),
        Event::Cancelled => (
            format!("Deletion of workspace \"{name}\" cancelled"),
            format!(
                "The deletion of the workspace \"{name}\" was cancelled; it can be changed again.\n\n{url}\n"
            ),
        ),
    };
    for (u, role) in members {
        if role != Role::Owner || u.email.ends_with("@service.invalid") {
            continue;
        }
        send(deps.mailer, &u.email, &subject, &body).await;
    }
}

/// Mails the holder of an account about its scheduled (or cancelled) deletion.
pub async fn account(deps: &Deps<'_>, user: UserId, event: Event) {
    if !deps.mailer.configured() {
        return;
    }
    let keys = deps.control.keys.clone();
    let Ok(Some(u)) = deps
        .control
        .db
        .read_async(move |c| control::get_user(c, &keys, user))
        .await
    else {
        return;
    };
    let url = format!("{}/account", deps.config.public_url);
    let (subject, body) = match event {
        Event::Scheduled { due } => (
            "Your Aura account is scheduled for deletion".to_owned(),
            format!(
                "Your account is scheduled for deletion on {}. Until then you can cancel it on \
                 your account page: {url}\n",
                rfc3339(due)
            ),
        ),
        Event::Cancelled => (
            "Deletion of your Aura account cancelled".to_owned(),
            format!("The deletion of your account was cancelled.\n\n{url}\n"),
        ),
    };
    send(deps.mailer, &u.email, &subject, &body).await;
}

async fn send(mailer: &Mailer, to: &str, subject: &str, body: &str) {
    let mail = Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        body: body.to_owned(),
    };
    if let Err(e) = mailer.send(mail).await {
        tracing::warn!(error = %e, "deletion notice not sent");
    }
}
