//! `/platform/accounts`: people's accounts for platform admins: the list,
//! a new account invited by mail (the person chooses their own password),
//! disable and enable, platform rights. The rules live in
//! `identity::staff`; refusals come back as field errors on this page.

use maud::html;
use poem::http::StatusCode;
use poem::{Response, handler};

use super::admin_page::{AdminPage, heading, next_or_again};
use super::csrf_field;
use super::forms::{Posted, at, see_other, summary, when};
use crate::error::{Error, FieldError};
use crate::identity::staff;
use crate::ids::UserId;

const HERE: &str = "/platform/accounts";

async fn render(
    p: &AdminPage<'_>,
    status: StatusCode,
    errors: &[FieldError],
) -> poem::Result<Response> {
    let admin = &p.admin;
    let list = staff::list(&admin.deps()).await?;
    // A refused form's fields (none on a GET), shown again as typed.
    let kept = |key: &str| p.form.owned(key);
    let now = admin.state.clock.unix();
    let me = admin.who.user_id;
    p.page(status, "Accounts (platform)", |token| {
        html! {
            section.card {
                (heading("Accounts"))
                p.muted { "People's accounts on this appliance (a workspace's service accounts are managed in the workspace). A disabled account cannot sign in by any method; disabling it ends its sessions and API sign-ins and revokes its personal API tokens. Every change here is in the platform audit log." }
                (summary(errors, &[("email", "Email", "acct-email"), ("name", "Name", "acct-name")]))
                table.list id="platform-accounts" {
                    thead { tr { th { "Account" } th { "Platform admin" } th { "State" } th { "Workspaces" } th { "Created" } th { "Last seen" } th {} } }
                    tbody {
                        @for o in &list {
                            @let u = &o.user;
                            @let id = u.id.to_string();
                            tr data-account=(id) data-email=(u.email) {
                                td { (u.name.as_deref().unwrap_or("")) br; code { (u.email) } }
                                td { @if u.platform_admin { "yes" } @else { "no" } }
                                td {
                                    @if u.disabled { span.badge { "disabled" } }
                                    @else if u.password_hash.is_none() { span.badge { "invited" } }
                                    @else { span.badge { "active" } }
                                }
                                td { (o.workspaces) }
                                td { (when(u.created_at, now)) }
                                td { @if let Some(t) = o.last_seen_at { (when(t, now)) } @else { span.muted { "—" } } }
                                td {
                                    @if u.disabled {
                                        form method="post" action="/platform/accounts/enable" {
                                            (csrf_field(token))
                                            input type="hidden" name="user_id" value=(id);
                                            button.secondary type="submit" { "Enable" }
                                        }
                                    } @else if u.id != me {
                                        form method="post" action="/platform/accounts/disable"
                                            data-confirm="Disable this account? Its sessions end now and it cannot sign in until it is enabled."
                                            data-confirm-label="Disable" {
                                            (csrf_field(token))
                                            input type="hidden" name="user_id" value=(id);
                                            button.secondary type="submit" { "Disable" }
                                        }
                                    }
                                    form method="post" action="/platform/accounts/admin" {
                                        (csrf_field(token))
                                        input type="hidden" name="user_id" value=(id);
                                        input type="hidden" name="platform_admin" value=(if u.platform_admin { "false" } else { "true" });
                                        button.secondary type="submit" {
                                            @if u.platform_admin { "Remove platform admin" } @else { "Make platform admin" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "New account" }
                p.muted { "The person gets a mail with a link to choose their own password (it works once, for 7 days). Add them to a workspace afterwards, or invite them from the workspace instead." }
                form id="new-account" method="post" action=(HERE) {
                    (csrf_field(token))
                    label for="acct-email" { "Email" }
                    @let e = at(errors, "email", "acct-email");
                    input id="acct-email" name="email" type="email" value=(kept("email")) required maxlength="254" aria-invalid=[e.invalid] aria-describedby=[e.described];
                    (e.note)
                    label for="acct-name" { "Name" }
                    @let e = at(errors, "name", "acct-name");
                    input id="acct-name" name="name" value=(kept("name")) required maxlength="200" aria-invalid=[e.invalid] aria-describedby=[e.described];
                    (e.note)
                    label.check {
                        input type="checkbox" name="platform_admin" value="true" checked[kept("platform_admin") == "true"];
                        " Platform admin"
                    }
                    button type="submit" { "Create and invite" }
                }
            }
        }
    })
    .await
}

#[handler]
pub async fn accounts_page(p: AdminPage<'_>) -> poem::Result<Response> {
    render(&p, StatusCode::OK, &[]).await
}

/// Back to the list with `label`'s flash, or the list again with the
/// refusal's field errors.
async fn done(p: &AdminPage<'_>, r: Result<&'static str, Error>) -> poem::Result<Response> {
    let secure = p.admin.state.config.secure_cookies();
    let next = |label| {
        let mut resp = see_other(HERE.into());
        super::flash::set_platform(&mut resp, secure, label);
        resp
    };
    next_or_again(r, next, async |errors| {
        render(p, StatusCode::UNPROCESSABLE_ENTITY, errors).await
    })
    .await
}

fn user_field(form: &Posted) -> Result<UserId, Error> {
    form.text("user_id")
        .parse()
        .map_err(|_| Error::NotFound("user"))
}

#[handler]
pub async fn create_account(p: AdminPage<'_>) -> poem::Result<Response> {
    let admin = &p.admin;
    let r = staff::invite(
        &admin.deps(),
        &admin.who,
        staff::Invite {
            email: p.form.owned("email"),
            name: p.form.owned("name"),
            platform_admin: p.form.get("platform_admin") == Some("true"),
        },
        &admin.meta,
    )
    .await
    .map(|i| {
        if i.mailed {
            "platform.account_invited"
        } else {
            "platform.account_invite_unsent"
        }
    });
    done(&p, r).await
}

async fn set_disabled(p: AdminPage<'_>, disabled: bool) -> poem::Result<Response> {
    let admin = &p.admin;
    let user = user_field(&p.form)?;
    let r = staff::set_disabled(&admin.deps(), &admin.who, user, disabled, &admin.meta)
        .await
        .map(|()| {
            if disabled {
                "platform.account_disabled"
            } else {
                "platform.account_enabled"
            }
        });
    done(&p, r).await
}

#[handler]
pub async fn disable(p: AdminPage<'_>) -> poem::Result<Response> {
    set_disabled(p, true).await
}

#[handler]
pub async fn enable(p: AdminPage<'_>) -> poem::Result<Response> {
    set_disabled(p, false).await
}

#[handler]
pub async fn set_platform_admin(p: AdminPage<'_>) -> poem::Result<Response> {
    let admin = &p.admin;
    let user = user_field(&p.form)?;
    let on = match p.form.get("platform_admin") {
        Some("true") => true,
        Some("false") => false,
        _ => {
            let e = Error::field("platform_admin", "must be true or false");
            return done(&p, Err(e)).await;
        }
    };
    let r = staff::set_platform_admin(&admin.deps(), &admin.who, user, on, &admin.meta)
        .await
        .map(|()| "platform.account_admin");
    done(&p, r).await
}
