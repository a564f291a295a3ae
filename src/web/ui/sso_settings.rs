//! The workspace's single sign-on settings page (owners and admins): the
//! provider, what to register there, provisioning, group mappings and the
//! SSO-only policy with its break-glass owner.

use maud::html;
use poem::{Response, handler};

use super::csrf_field;
use super::forms::{WsPost, at, status_for, summary};
use crate::access::{Role, op};
use crate::error::{Error, FieldError};
use crate::identity::sso::{self, RoleMapping, Settings, SsoChange, TeamMapping};
use crate::web::api::sso::signed_in_by_sso;
use crate::web::tenant::TenantPage;

#[handler]
pub async fn sso_page(ctx: TenantPage<op::SsoRead>) -> poem::Result<Response> {
    render(&ctx, &[], None).await
}

const FIELDS: &[(&str, &str, &str)] = &[
    ("issuer", "Issuer URL", "sso-issuer"),
    ("client_id", "Client ID", "sso-client-id"),
    ("client_secret", "Client secret", "sso-client-secret"),
    ("scopes", "Scopes", "sso-scopes"),
    ("allowed_domains", "Email domains", "sso-domains"),
    ("default_role", "Default role", "sso-default-role"),
    ("groups_claim", "Groups claim", "sso-groups-claim"),
    ("role_mappings", "Role mappings", "sso-roles"),
    ("team_mappings", "Team mappings", "sso-teams"),
    ("require_sso", "Require single sign-on", "sso-require"),
    ("break_glass", "Break-glass owner", "sso-break-glass"),
];

/// Mappings as the form shows them: `group = value`, one a line.
fn lines<'a>(pairs: impl Iterator<Item = (&'a str, String)>) -> String {
    pairs.map(|(g, v)| format!("{g} = {v}\n")).collect()
}

/// The page; after a refused form, what was sent (`sent`) stays in it.
async fn render<O>(
    ctx: &TenantPage<O>,
    errors: &[FieldError],
    sent: Option<&super::forms::Posted>,
) -> poem::Result<Response> {
    let state = ctx.state();
    let ws = ctx.ws().to_owned();
    let current = match sso::get(&state.control, ctx).await {
        Ok(v) => Some(v),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let teams = crate::records::teams::list(ctx).await?;
    let members = crate::records::teams::members(&state.control, ctx).await?;
    let owners: Vec<_> = members.iter().filter(|(_, r)| *r == Role::Owner).collect();
    let team_name = |id: &str| {
        teams
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let s = current.as_ref().map(|c| &c.settings);
    let base = state.config.public_url.trim_end_matches('/');
    let kept = |key: &str, stored: String| -> String {
        match sent {
            Some(p) => p.text(key).to_owned(),
            None => stored,
        }
    };
    let issuer = kept("issuer", s.map(|s| s.issuer.clone()).unwrap_or_default());
    let client_id = kept(
        "client_id",
        s.map(|s| s.client_id.clone()).unwrap_or_default(),
    );
    let scopes = kept(
        "scopes",
        s.map(|s| {
            s.scopes
                .iter()
                .filter(|x| *x != "openid")
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "email profile".into()),
    );
    let domains = kept(
        "allowed_domains",
        s.map(|s| s.allowed_domains.join(" ")).unwrap_or_default(),
    );
    let claim = kept(
        "groups_claim",
        s.map(|s| s.groups_claim.clone())
            .unwrap_or_else(|| "groups".into()),
    );
    let roles = s.map(|s| {
        lines(
            s.role_mappings
                .iter()
                .map(|m| (&*m.group, m.role.as_str().into())),
        )
    });
    let roles = kept("role_mappings", roles.unwrap_or_default());
    let team_map = s.map(|s| {
        lines(
            s.team_mappings
                .iter()
                .map(|m| (&*m.group, team_name(&m.team))),
        )
    });
    let team_lines = kept("team_mappings", team_map.unwrap_or_default());
    let default_role = s.map(|s| s.default_role).unwrap_or(Role::Member);
    let provisioning = match sent {
        Some(p) => p.get("provisioning").is_some(),
        None => s.is_some_and(|s| s.provisioning),
    };
    let require = match sent {
        Some(p) => p.get("require_sso").is_some(),
        None => current.as_ref().is_some_and(|c| c.require_sso),
    };
    let break_glass = current
        .as_ref()
        .and_then(|c| c.break_glass)
        .map(|b| b.to_string());
    let writable = ctx.writable();
    let may_write = ctx.may(
        crate::access::permissions::Resource::SingleSignOn,
        crate::access::permissions::Action::Update,
    );
    ctx.page(status_for(errors), "Single sign-on", |token| {
        html! {
            section.card id="sso" {
                h1 { "Single sign-on" }
                (summary(errors, FIELDS))
                p.muted { "Let people sign in to this workspace through your organisation's OpenID Connect provider (Entra ID, Google Workspace, Okta, Keycloak, authentik, Kanidm). docs/identity.md has a guide per provider." }
                dl.facts {
                    dt { "Redirect URI to register at the provider" } dd { code id="sso-redirect" { (base) "/auth/oidc/callback" } }
                    dt { "Sign-in link for your people" } dd { code id="sso-link" { (base) (sso::start_link(ctx.db.id())) } }
                    @if let Some(c) = &current {
                        dt { "Status" } dd id="sso-status" { @if c.require_sso { "Required for members" } @else { "Offered beside passwords" } }
                    } @else {
                        dt { "Status" } dd id="sso-status" { "Not set up" }
                    }
                }
                @if may_write && writable {
                    form method="post" action=(format!("/w/{ws}/sso")) id="sso-form" {
                        (csrf_field(token))
                        @let e = at(errors, "issuer", "sso-issuer");
                        label for="sso-issuer" { "Issuer URL" }
                        input #sso-issuer type="url" name="issuer" value=(issuer) required placeholder="https://login.example.com/realms/acme" aria-invalid=[e.invalid] aria-describedby=[e.described];
                        (e.note)
                        @let e = at(errors, "client_id", "sso-client-id");
                        label for="sso-client-id" { "Client ID" }
                        input #sso-client-id name="client_id" value=(client_id) required aria-invalid=[e.invalid] aria-describedby=[e.described];
                        (e.note)
                        @let e = at(errors, "client_secret", "sso-client-secret");
                        label for="sso-client-secret" { "Client secret" }
                        @if current.is_some() { p.muted { "Stored sealed and never shown. Leave empty to keep it." } }
                        input #sso-client-secret type="password" name="client_secret" autocomplete="off" required[current.is_none()] aria-invalid=[e.invalid] aria-describedby=[e.described];
                        (e.note)
                        @let e = at(errors, "scopes", "sso-scopes");
                        label for="sso-scopes" { "Scopes (besides openid), separated by spaces" }
                        input #sso-scopes name="scopes" value=(scopes) aria-invalid=[e.invalid] aria-describedby=[e.described];
                        (e.note)
                        @let e = at(errors, "allowed_domains", "sso-domains");
                        label for="sso-domains" { "Email domains it signs in (e.g. example.com), separated by spaces" }
                        p.muted { "Also how the sign-in page finds this workspace from someone's email. Empty accepts any email the provider has verified." }
                        input #sso-domains name="allowed_domains" value=(domains) aria-invalid=[e.invalid] aria-describedby=[e.described];
                        (e.note)
                        fieldset {
                            legend { "People the provider brings in" }
                            label.check { input #sso-provisioning type="checkbox" name="provisioning" value="on" checked[provisioning]; " Create their account and membership at first sign-in" }
                            @let e = at(errors, "default_role", "sso-default-role");
                            label for="sso-default-role" { "With the role" }
                            select #sso-default-role name="default_role" aria-invalid=[e.invalid] aria-describedby=[e.described] {
                                @for r in Role::ALL.into_iter().filter(|r| *r != Role::Owner) {
                                    option value=(r.as_str()) selected[r == default_role] { (r.as_str()) }
                                }
                            }
                            (e.note)
                        }
                        fieldset {
                            legend { "Groups" }
                            @let e = at(errors, "groups_claim", "sso-groups-claim");
                            label for="sso-groups-claim" { "Claim holding the groups" }
                            input #sso-groups-claim name="groups_claim" value=(claim) aria-invalid=[e.invalid] aria-describedby=[e.described];
                            (e.note)
                            @let e = at(errors, "role_mappings", "sso-roles");
                            label for="sso-roles" { "Group → role, one per line (" code { "aura-admins = admin" } "); applied at each sign-in, never to owners" }
                            textarea #sso-roles name="role_mappings" rows="3" aria-invalid=[e.invalid] aria-describedby=[e.described] { (roles) }
                            (e.note)
                            @let e = at(errors, "team_mappings", "sso-teams");
                            label for="sso-teams" { "Group → team, one per line (" code { "sales = Sales" } ")" }
                            @if !teams.is_empty() { p.muted { "Teams: " @for (i, t) in teams.iter().enumerate() { @if i > 0 { ", " } (t.name) } } }
                            textarea #sso-teams name="team_mappings" rows="3" aria-invalid=[e.invalid] aria-describedby=[e.described] { (team_lines) }
                            (e.note)
                        }
                        fieldset {
                            legend { "Policy" }
                            @let e = at(errors, "require_sso", "sso-require");
                            label.check { input #sso-require type="checkbox" name="require_sso" value="on" checked[require] aria-invalid=[e.invalid] aria-describedby=[e.described]; " Require single sign-on: members' passwords, emailed links and personal API tokens stop working here (their sessions end at once)" }
                            (e.note)
                            @let e = at(errors, "break_glass", "sso-break-glass");
                            label for="sso-break-glass" { "Break-glass owner (may still sign in with a password; every use is audited)" }
                            select #sso-break-glass name="break_glass" aria-invalid=[e.invalid] aria-describedby=[e.described] {
                                option value="" { "None" }
                                @for (u, _) in &owners {
                                    @let id = u.id.to_string();
                                    option value=(id) selected[break_glass.as_deref() == Some(id.as_str())] { (u.email) }
                                }
                            }
                            (e.note)
                        }
                        button type="submit" { "Save" }
                    }
                    @if current.is_some() {
                        form method="post" action=(format!("/w/{ws}/sso/delete")) data-confirm="Remove single sign-on? People who only sign in through it will need a password or an emailed link." {
                            (csrf_field(token))
                            button.danger type="submit" { "Remove single sign-on" }
                        }
                    }
                }
            }
        }
    })
    .await
}

/// "group = value" lines; a line without `=` is an error naming its number.
fn parse_lines(text: &str, field: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
    {
        match line.rsplit_once('=') {
            Some((g, v)) if !g.trim().is_empty() && !v.trim().is_empty() => {
                out.push((g.trim().to_owned(), v.trim().to_owned()))
            }
            _ => {
                return Err(Error::field(
                    format!("{field}[{i}]"),
                    format!("line {} must read `group = value`", i + 1),
                ));
            }
        }
    }
    Ok(out)
}

#[handler]
pub async fn sso_submit(p: WsPost<op::SsoUpdate>) -> poem::Result<Response> {
    let r = async {
        let f = &p.form;
        let role = |v: &str, field: &str| {
            v.parse::<Role>()
                .map_err(|_| Error::field(field.to_owned(), "is not a role"))
        };
        let teams = crate::records::teams::list(&p.ctx).await?;
        let mut role_mappings = Vec::new();
        for (i, (group, r)) in parse_lines(f.text("role_mappings"), "role_mappings")?
            .into_iter()
            .enumerate()
        {
            role_mappings.push(RoleMapping {
                group,
                role: role(&r, &format!("role_mappings[{i}].role"))?,
            });
        }
        let mut team_mappings = Vec::new();
        for (group, t) in parse_lines(f.text("team_mappings"), "team_mappings")? {
            let team = teams
                .iter()
                .find(|x| x.name == t || x.id == t)
                .map(|x| x.id.clone())
                .unwrap_or(t);
            team_mappings.push(TeamMapping { group, team });
        }
        let words = |k: &str| {
            f.text(k)
                .split([' ', ',', '\n'])
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let secret = Some(f.owned("client_secret")).filter(|s| !s.is_empty());
        let break_glass = Some(f.text("break_glass"))
            .filter(|b| !b.is_empty())
            .map(|b| {
                b.parse()
                    .map_err(|_| Error::field("break_glass", "is not an owner of this workspace"))
            })
            .transpose()?;
        let change = SsoChange {
            settings: Settings {
                issuer: f.owned("issuer"),
                client_id: f.owned("client_id"),
                scopes: words("scopes"),
                allowed_domains: words("allowed_domains"),
                default_role: role(f.text("default_role"), "default_role")?,
                provisioning: f.get("provisioning").is_some(),
                groups_claim: f.owned("groups_claim"),
                role_mappings,
                team_mappings,
            },
            client_secret: secret,
            require_sso: f.get("require_sso").is_some(),
            break_glass,
        };
        let by_sso = signed_in_by_sso(p.ctx.who(), p.ctx.db.id());
        sso::put(
            &p.state.control,
            &p.state.config.file.sso,
            &p.ctx,
            by_sso,
            change,
        )
        .await
    };
    let ws = p.ctx.ws().to_owned();
    let sent = &p.form;
    p.then(
        r.await,
        |_| format!("/w/{ws}/sso"),
        async |ctx, errors| render(ctx, errors, Some(sent)).await,
    )
    .await
}

#[handler]
pub async fn sso_delete(p: WsPost<op::SsoDelete>) -> poem::Result<Response> {
    let ws = p.ctx.ws().to_owned();
    let r = sso::delete(&p.state.control, &p.ctx).await;
    p.then(
        r,
        |_| format!("/w/{ws}/sso"),
        async |ctx, errors| render(ctx, errors, None).await,
    )
    .await
}
