//! Who may act in a workspace, in the browser: members and their roles,
//! service accounts, and API tokens (the secret is shown once, on the page
//! that answers the creating form, and never again).

use maud::html;
use poem::{Response, handler};

use super::forms::{At, WsPost, at, status_for, summary};
use super::sent::Sent;
use super::{csrf_field, row_action};
use crate::access::permissions::{Action, Resource, allows};
use crate::access::{Role, op};
use crate::clock::rfc3339;
use crate::error::{Error, FieldError};
use crate::identity::{api_tokens, invitations, members};
use crate::ids::TokenId;
use crate::records::teams;
use crate::web::api::invitations::invite_mail;
use crate::web::tenant::TenantPage;

fn role_select(name: &str, id: &str, selected: Role, up_to: Role, e: At) -> maud::Markup {
    html! {
        select name=(name) id=(id) aria-label="Role" aria-invalid=[e.invalid] aria-describedby=[e.described] {
            @for r in Role::ALL.into_iter().filter(|r| up_to.at_least(*r)) {
                option value=(r.as_str()) selected[r == selected] { (r.as_str()) }
            }
        }
        (e.note)
    }
}

/// Each form's fields: (form, key, label, input id), for the summary's
/// links and the errors beside the inputs.
const FIELDS: &[(&str, &str, &str, &str)] = &[
    ("invite", "email", "Email", "invite-email"),
    ("invite", "role", "Role", "invite-role"),
    ("service", "name", "Name", "sa-name"),
    ("service", "role", "Role", "sa-role"),
    ("token", "name", "Name", "token-name"),
    ("token", "service_account", "Acts as", "token-holder"),
    ("token", "scope", "Scope", "token-scope"),
    ("token", "expires_in_days", "Expires in days", "token-days"),
];

/// The page: with a new token's secret shown once, or with the errors of a
/// failed form (422).
async fn render<O>(
    ctx: &TenantPage<O>,
    errors: &[FieldError],
    secret: Option<&str>,
    sent: Option<Sent<'_>>,
) -> poem::Result<Response> {
    render_all(ctx, errors, secret, sent, None).await
}

/// The page answering the SCIM token form: the new secret shown once.
pub async fn render_with_scim<O>(ctx: &TenantPage<O>, scim_secret: &str) -> poem::Result<Response> {
    render_all(ctx, &[], None, None, Some(scim_secret)).await
}

async fn render_all<O>(
    ctx: &TenantPage<O>,
    errors: &[FieldError],
    secret: Option<&str>,
    sent: Option<Sent<'_>>,
    scim_secret: Option<&str>,
) -> poem::Result<Response> {
    // What a refused form sent, shown again.
    let kept = |form: &str, key: &str| sent.and_then(|s| s.kept(form, key));
    // A refused form's errors, beside its inputs.
    let sent_form = sent.map(|s| s.form).unwrap_or_default();
    let err = |form: &str, key: &str| {
        let id = FIELDS
            .iter()
            .find(|(f, k, ..)| *f == form && *k == key)
            .map_or("", |(.., id)| *id);
        at(if form == sent_form { errors } else { &[] }, key, id)
    };
    let linked: Vec<(&str, &str, &str)> = FIELDS
        .iter()
        .filter(|(f, ..)| *f == sent_form)
        .map(|(_, k, l, id)| (*k, *l, *id))
        .collect();
    let kept_role = |form: &str, key: &str, default: Role| {
        kept(form, key)
            .and_then(|r| r.parse().ok())
            .unwrap_or(default)
    };
    let state = ctx.state();
    let ws = ctx.db.id().to_string();
    let people = teams::members(&state.control, ctx).await?;
    let admin = allows(ctx.role, Resource::Member, Action::Update);
    let (services, tokens, names) = if admin {
        (
            members::service_accounts(&state.control, ctx).await?,
            api_tokens::list(&state.control, ctx).await?,
            api_tokens::holder_names(&state.control, ctx).await?,
        )
    } else {
        Default::default()
    };
    let service_ids: Vec<String> = services.iter().map(|(id, ..)| id.to_string()).collect();
    let scim = if admin {
        Some(super::scim::status(ctx).await?)
    } else {
        None
    };
    let owner = ctx.may(Resource::Workspace, Action::Settings);
    // Forms that change members: not while the workspace is read-only.
    let edit = admin && ctx.writable();
    let invites = if admin {
        invitations::list(&state.control, ctx).await?
    } else {
        Vec::new()
    };
    let now = ctx.now();
    let require_mfa = members::mfa_policy(&state.control, ctx).await?;
    let me = ctx.user;
    let my_role = ctx.role;
    ctx.page(status_for(errors), "Members and tokens", |token| {
        html! {
            section.card {
                h1 { "Members" }
                (summary(errors, &linked))
                table.list id="members" {
                    thead { tr { th { "Person" } th { "Role" } th {} } }
                    tbody {
                        @for (u, role) in &people {
                            @let uid = u.id.to_string();
                            @let robot = service_ids.contains(&uid);
                            tr data-user=(uid) {
                                td {
                                    @if robot { (u.name.clone().unwrap_or_default()) " " span.badge { "service account" } }
                                    @else { (u.email) @if let Some(n) = &u.name { " (" (n) ")" } }
                                }
                                td {
                                    @if edit && u.id != me {
                                        form.inline method="post" action=(format!("/w/{ws}/members/role")) {
                                            (csrf_field(token))
                                            input type="hidden" name="user_id" value=(uid);
                                            (role_select("role", &format!("role-{uid}"), *role, my_role, at(&[], "role", "")))
                                            button.secondary type="submit" { "Change role" }
                                        }
                                    } @else { span.badge { (role.as_str()) } }
                                }
                                td { @if edit && u.id != me {
                                    (row_action(token, &format!("/w/{ws}/members/remove"), ("user_id", &uid), ("danger", "Remove")))
                                } }
                            }
                        }
                    }
                }
            }
            section.card id="mfa-policy" {
                h2 { "Two-factor sign-in" }
                @if require_mfa {
                    p { "Required: people without a second factor reach nothing here until they set one up on their account page." }
                } @else {
                    p.muted { "Not required." }
                }
                @if owner {
                    form method="post" action=(format!("/w/{ws}/mfa-policy")) {
                        (csrf_field(token))
                        input type="hidden" name="required" value=(if require_mfa { "false" } else { "true" });
                        button type="submit" { @if require_mfa { "Stop requiring it" } @else { "Require it" } }
                    }
                }
            }
            @if admin {
                section.card id="sso-card" {
                    h2 { "Single sign-on" }
                    p.muted { "Sign-in through your organisation's OpenID provider, group mappings, and requiring it." }
                    p { a.button.secondary href=(format!("/w/{ws}/sso")) { "Single sign-on settings" } }
                }
                section.card id="invitations" {
                    h2 { "Invitations" }
                    form.inline id="invite-form" method="post" action=(format!("/w/{ws}/invitations")) {
                        (csrf_field(token))
                        @let e = err("invite", "email");
                        input name="email" id="invite-email" type="email" value=(kept("invite", "email").unwrap_or_default()) required placeholder="name@example.com" aria-label="Email" aria-invalid=[e.invalid] aria-describedby=[e.described];
                        (e.note)
                        (role_select("role", "invite-role", kept_role("invite", "role", Role::Member), my_role, err("invite", "role")))
                        button type="submit" { "Invite" }
                    }
                    p.muted { "The link goes out by mail, works once and expires after 7 days." }
                    @if !invites.is_empty() {
                        table.list {
                            thead { tr { th { "Email" } th { "Role" } th { "Status" } th { "Expires" } th {} } }
                            tbody {
                                @for i in &invites {
                                    @let pending = i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > now;
                                    tr data-invitation=(i.id) {
                                        td { (i.email) }
                                        td { span.badge { (i.role.as_str()) } }
                                        td { @if i.accepted_at.is_some() { "accepted" } @else if i.revoked_at.is_some() { "revoked" } @else if pending { "pending" } @else { "expired" } }
                                        td { (rfc3339(i.expires_at)) }
                                        td { @if pending {
                                            (row_action(token, &format!("/w/{ws}/invitations/revoke"), ("invitation_id", &i.id), ("danger", "Revoke")))
                                        } }
                                    }
                                }
                            }
                        }
                    }
                }
                section.card {
                    h2 { "Service accounts" }
                    p.muted { "An account for a program: it never signs in and acts only through API tokens, with the role you give it." }
                    form.inline id="new-service-account" method="post" action=(format!("/w/{ws}/service-accounts")) {
                        (csrf_field(token))
                        @let e = err("service", "name");
                        input name="name" id="sa-name" value=(kept("service", "name").unwrap_or_default()) required maxlength="200" placeholder="Name" aria-label="Name" aria-invalid=[e.invalid] aria-describedby=[e.described];
                        (e.note)
                        (role_select("role", "sa-role", kept_role("service", "role", Role::Member), my_role, err("service", "role")))
                        button type="submit" { "Create service account" }
                    }
                }
                section.card {
                    h2 { "API tokens" }
                    @if let Some(s) = secret {
                        div.notice role="status" {
                            p { strong { "Copy this token now. " } "Aura keeps only a fingerprint of it, so it cannot be shown again." }
                            code id="new-token" { (s) }
                        }
                    }
                    table.list id="tokens" {
                        thead { tr { th { "Name" } th { "Acts as" } th { "Scope" } th { "Expires" } th { "Last used" } th {} } }
                        tbody {
                            @for t in &tokens {
                                tr data-token=(t.id) {
                                    td { (t.name) }
                                    td { (names.get(&t.user_id).cloned().unwrap_or_default()) }
                                    td { span.badge { (t.scope.as_str()) } }
                                    td { (t.expires_at.map(rfc3339).unwrap_or_else(|| "never".into())) }
                                    td { (t.last_used_at.map(rfc3339).unwrap_or_else(|| "never".into())) }
                                    td {
                                        @if t.revoked_at.is_some() { span.badge { "revoked" } }
                                        @else {
                                            (row_action(token, &format!("/w/{ws}/tokens/revoke"), ("token_id", &t.id), ("danger", "Revoke")))
                                        }
                                    }
                                }
                            }
                        }
                    }
                    form id="new-token-form" method="post" action=(format!("/w/{ws}/tokens")) {
                        (csrf_field(token))
                        label for="token-name" { "Name" }
                        @let e = err("token", "name");
                        input id="token-name" name="name" value=(kept("token", "name").unwrap_or_default()) required maxlength="200" aria-invalid=[e.invalid] aria-describedby=[e.described];
                        (e.note)
                        label for="token-holder" { "Acts as" }
                        @let holder = err("token", "service_account");
                        select id="token-holder" name="service_account" aria-invalid=[holder.invalid] aria-describedby=[holder.described] {
                            option value="" { "me" }
                            @for (id, name, _) in &services { option value=(id) selected[kept("token", "service_account") == Some(id.to_string().as_str())] { (name) } }
                        }
                        label for="token-scope" { "Scope (the most it may do)" }
                        (holder.note)
                        (role_select("scope", "token-scope", kept_role("token", "scope", Role::Viewer), my_role, err("token", "scope")))
                        label for="token-days" { "Expires in days (empty: never)" }
                        @let e = err("token", "expires_in_days");
                        input id="token-days" name="expires_in_days" type="number" min="1" max="3650" value=(kept("token", "expires_in_days").unwrap_or("90")) aria-invalid=[e.invalid] aria-describedby=[e.described];
                        (e.note)
                        button type="submit" { "Create token" }
                    }
                }
            }
            @if let Some(s) = &scim {
                (super::scim::section(s, &ws, token, scim_secret, edit))
            }
        }
    })
    .await
}

#[handler]
pub async fn members_page(ctx: TenantPage<op::MemberRead>) -> poem::Result<Response> {
    render(&ctx, &[], None, None).await
}

impl<O: crate::access::op::Op> WsPost<O> {
    /// After a change: back to the page, or the page again with what went wrong.
    async fn back<T>(&self, r: Result<T, Error>) -> poem::Result<Response> {
        self.back_to(r, "").await
    }

    /// `back`, the form named `form` (`invite`, `service`, `token`) shown
    /// again as it was sent.
    async fn back_to<T>(&self, r: Result<T, Error>, form: &'static str) -> poem::Result<Response> {
        self.back_to_section(r, "members", form, async |ctx, errors, sent| {
            render(ctx, errors, None, Some(sent)).await
        })
        .await
    }

    /// Back to the page after a SCIM token form, at its section.
    pub(super) async fn back_scim<T>(&self, r: Result<T, Error>) -> poem::Result<Response> {
        let to = |_| format!("/w/{}/members#scim", self.ctx.db.id());
        self.then(r, to, async |ctx, errors| {
            render(ctx, errors, None, None).await
        })
        .await
    }

    fn user(&self) -> Result<crate::ids::UserId, Error> {
        self.form
            .text("user_id")
            .parse()
            .map_err(|_| Error::NotFound("member"))
    }

    fn role(&self, field: &str) -> Result<Role, Error> {
        self.form
            .text(field)
            .parse()
            .map_err(|_| Error::field(field, "must be owner, admin, manager, member or viewer"))
    }
}

#[handler]
pub async fn change_role(p: WsPost<op::MemberUpdate>) -> poem::Result<Response> {
    let user = p.user()?;
    let r = async { members::set_role(&p.state.control, &p.ctx, user, p.role("role")?).await };
    p.back(r.await).await
}

#[handler]
pub async fn remove_member(p: WsPost<op::MemberDelete>) -> poem::Result<Response> {
    let user = p.user()?;
    p.back(members::remove(&p.state.control, &p.ctx, user).await)
        .await
}

#[handler]
pub async fn create_service_account(p: WsPost<op::ServiceAccountCreate>) -> poem::Result<Response> {
    let r = async {
        let (name, role) = (p.form.text("name"), p.role("role")?);
        members::create_service_account(&p.state.control, &p.ctx, name, role).await
    };
    p.back_to(r.await, "service").await
}

#[handler]
pub async fn create_token(p: WsPost<op::ApiTokenCreate>) -> poem::Result<Response> {
    let made = async {
        let scope = p.role("scope")?;
        let expires_in_days =
            match p.form.text("expires_in_days").trim() {
                "" => None,
                d => Some(d.parse::<u32>().map_err(|_| {
                    Error::field("expires_in_days", "must be a whole number of days")
                })?),
            };
        let new = api_tokens::NewToken {
            name: p.form.owned("name"),
            scope,
            expires_in_days,
            service_account: p
                .form
                .get("service_account")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        };
        api_tokens::create(&p.state.control, &p.ctx, new).await
    };
    match made.await {
        Ok(c) => render(&p.ctx, &[], Some(&c.secret), None).await,
        Err(e) => p.back_to(Err::<(), _>(e), "token").await,
    }
}

#[handler]
pub async fn revoke_token(p: WsPost<op::ApiTokenDelete>) -> poem::Result<Response> {
    let r = async {
        let id = p.form.text("token_id").parse::<TokenId>()?;
        api_tokens::revoke(&p.state.control, &p.ctx, id).await
    };
    p.back(r.await).await
}

#[handler]
pub async fn set_mfa_policy(p: WsPost<op::WorkspaceSettings>) -> poem::Result<Response> {
    let r = match p.form.get("required") {
        Some("true") => members::set_mfa_policy(&p.state.control, &p.ctx, true).await,
        Some("false") => members::set_mfa_policy(&p.state.control, &p.ctx, false).await,
        _ => Err(Error::field("required", "must be true or false")),
    };
    p.back(r).await
}

#[handler]
pub async fn invite(p: WsPost<op::InvitationCreate>) -> poem::Result<Response> {
    let r = async {
        let (email, role) = (p.form.text("email"), p.role("role")?);
        invitations::invite(invite_mail(&p.state), &p.ctx, email, role).await
    };
    p.back_to(r.await, "invite").await
}

#[handler]
pub async fn revoke_invitation(p: WsPost<op::InvitationDelete>) -> poem::Result<Response> {
    let id = p.form.text("invitation_id");
    p.back(invitations::revoke(&p.state.control, &p.ctx, id).await)
        .await
}
