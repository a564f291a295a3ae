//! A workspace's provider settings: what an owner or admin may write, how
//! each field is checked, and the audited change in both chains.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::access::Role;
use crate::access::enter::TenantHandle;
use crate::config::SsoConfig;
use crate::error::{Error, FieldError, Result};
use crate::identity::members::{Change, control_update};
use crate::ids::{UserId, WorkspaceId};
use crate::store::control::Control;
use crate::store::sso::{self as store, SsoRow};
use crate::store::{accounts, teams};

/// What the provider is and what a sign-in through it does (sealed at rest).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// Emails a sign-in may carry; empty: any (then only verified emails).
    pub allowed_domains: Vec<String>,
    /// The role of a person the provider brings in (never owner).
    pub default_role: Role,
    /// Whether a person with no account here gets one at first sign-in.
    pub provisioning: bool,
    /// The ID token (or userinfo) claim holding the person's groups.
    pub groups_claim: String,
    pub role_mappings: Vec<RoleMapping>,
    pub team_mappings: Vec<TeamMapping>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoleMapping {
    pub group: String,
    pub role: Role,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TeamMapping {
    pub group: String,
    pub team: String,
}

/// A change as written: the settings, a new client secret (none keeps the
/// stored one), and the policy.
pub struct SsoChange {
    pub settings: Settings,
    pub client_secret: Option<String>,
    pub require_sso: bool,
    pub break_glass: Option<UserId>,
}

/// What reading it shows: never the secret, only that there is one.
#[derive(Clone, Debug)]
pub struct SsoView {
    pub settings: Settings,
    pub require_sso: bool,
    pub break_glass: Option<UserId>,
    pub updated_at: i64,
}

fn parse(row: &SsoRow) -> Result<Settings> {
    serde_json::from_str(&row.settings).map_err(|e| Error::internal(format!("sso settings: {e}")))
}

/// The workspace's provider, for its owners and admins.
pub async fn get(control: &Control, ctx: &TenantHandle) -> Result<SsoView> {
    let (keys, ws) = (control.keys.clone(), ctx.db.id());
    let row = control
        .db
        .read_async(move |c| store::get(c, &keys, ws))
        .await?
        .ok_or(Error::NotFound("single sign-on"))?;
    Ok(SsoView {
        settings: parse(&row)?,
        require_sso: row.required,
        break_glass: row.break_glass,
        updated_at: row.updated_at,
    })
}

/// The provider as sign-in needs it: settings and the opened secret; for
/// the platform area, from `[platform.sso]` and its secret file.
pub(super) async fn load(
    deps: &crate::identity::Deps<'_>,
    realm: super::flow::Realm,
) -> Result<Option<(Settings, String)>> {
    let ws = match realm {
        super::flow::Realm::Workspace(ws) => ws,
        super::flow::Realm::Platform => return platform(deps).await,
    };
    let keys = deps.control.keys.clone();
    let row = deps
        .control
        .db
        .read_async(move |c| store::get(c, &keys, ws))
        .await?;
    row.map(|r| Ok((parse(&r)?, r.secret))).transpose()
}

async fn platform(deps: &crate::identity::Deps<'_>) -> Result<Option<(Settings, String)>> {
    let p = &deps.config.file.platform.sso;
    if !p.enabled {
        return Ok(None);
    }
    let secret = tokio::fs::read_to_string(&p.client_secret_file)
        .await
        .map_err(|e| Error::internal(format!("[platform.sso] client_secret_file: {e}")))?;
    let settings = Settings {
        issuer: p.issuer.clone(),
        client_id: p.client_id.clone(),
        scopes: p.scopes.clone(),
        allowed_domains: p.allowed_domains.clone(),
        default_role: Role::Member,
        provisioning: false,
        groups_claim: p.groups_claim.clone(),
        role_mappings: Vec::new(),
        team_mappings: Vec::new(),
    };
    Ok(Some((settings, secret.trim().to_owned())))
}

fn audit_view(s: &Settings, required: bool, break_glass: Option<UserId>) -> serde_json::Value {
    json!({
        "configured": true, "issuer": s.issuer, "client_id": s.client_id, "scopes": s.scopes,
        "allowed_domains": s.allowed_domains, "default_role": s.default_role.as_str(),
        "provisioning": s.provisioning, "groups_claim": s.groups_claim,
        "role_mappings": s.role_mappings, "team_mappings": s.team_mappings,
        "require_sso": required, "break_glass": break_glass.map(|b| b.to_string()),
    })
}

/// Writes the workspace's provider (owners and admins), audited in both
/// chains with before and after (the secret only as "changed").
pub async fn put(
    control: &Control,
    cfg: &SsoConfig,
    ctx: &TenantHandle,
    caller_sso: bool,
    change: SsoChange,
) -> Result<SsoView> {
    let mut settings = change.settings;
    validate(cfg, &mut settings, change.client_secret.as_deref())?;
    check_teams(ctx, &settings.team_mappings).await?;
    let ws = ctx.db.id();
    let me = ctx.user;
    let (required, break_glass) = (change.require_sso, change.break_glass);
    if required && break_glass.is_none() {
        return Err(Error::field(
            "break_glass",
            "name a break-glass owner (who may still sign in with a password) before requiring single sign-on",
        ));
    }
    if required && !caller_sso && break_glass != Some(me) {
        return Err(Error::field(
            "require_sso",
            "sign in through the provider first (or name yourself as the break-glass owner), or you would be shut out",
        ));
    }
    let now = ctx.now();
    let json = serde_json::to_string(&settings).map_err(|e| Error::internal(e.to_string()))?;
    let after = audit_view(&settings, required, break_glass);
    let mut after_entry = after.clone();
    after_entry["client_secret_changed"] = json!(change.client_secret.is_some());
    let entry = Change {
        action: "sso.config_changed",
        target_type: "workspace",
        target_id: ws.to_string(),
        after: after_entry,
    };
    let keys = control.keys.clone();
    let domains = settings.allowed_domains.clone();
    let secret = change.client_secret;
    control_update(control, ctx, entry, move |tx| {
        if let Some(b) = break_glass
            && accounts::membership_role(tx, ws, b)? != Some(Role::Owner)
        {
            return Err(Error::field(
                "break_glass",
                "must be an owner of this workspace",
            ));
        }
        let old = store::get(tx, &keys, ws)?;
        let secret = match (secret, &old) {
            (Some(s), _) => s,
            (None, Some(o)) => o.secret.clone(),
            (None, None) => {
                return Err(Error::field("client_secret", "is required the first time"));
            }
        };
        // A first provider is a change from none: before says so.
        let before = match &old {
            Some(o) => audit_view(&parse(o)?, o.required, o.break_glass),
            None => json!({ "configured": false }),
        };
        let row = SsoRow {
            settings: json,
            secret,
            required,
            break_glass,
            updated_at: now,
        };
        store::put(tx, &keys, ws, &row, &domains, now)?;
        Ok(((), Some(before)))
    })
    .await?;
    get(control, ctx).await
}

/// Removes the workspace's provider (and with it any SSO requirement).
pub async fn delete(control: &Control, ctx: &TenantHandle) -> Result<()> {
    let ws = ctx.db.id();
    let keys = control.keys.clone();
    let entry = Change {
        action: "sso.config_removed",
        target_type: "workspace",
        target_id: ws.to_string(),
        after: json!({}),
    };
    control_update(control, ctx, entry, move |tx| {
        let old = store::get(tx, &keys, ws)?.ok_or(Error::NotFound("single sign-on"))?;
        let before = audit_view(&parse(&old)?, old.required, old.break_glass);
        store::delete(tx, ws)?;
        Ok(((), Some(before)))
    })
    .await
}

/// Workspaces with a provider, and those requiring it (for /trust).
pub async fn counts(control: &Control) -> Result<(i64, i64)> {
    control.db.read_async(store::counts).await
}

/// The link a workspace's people sign in with.
pub fn start_link(ws: WorkspaceId) -> String {
    format!("/auth/oidc/start?workspace={ws}")
}

async fn check_teams(ctx: &TenantHandle, maps: &[TeamMapping]) -> Result<()> {
    let ids: Vec<String> = maps.iter().map(|m| m.team.clone()).collect();
    let missing = ctx
        .db
        .read(move |c, _| {
            for (i, id) in ids.iter().enumerate() {
                if !teams::team_exists(c, id)? {
                    return Ok(Some(i));
                }
            }
            Ok(None)
        })
        .await?;
    match missing {
        Some(i) => Err(Error::field(
            format!("team_mappings[{i}].team"),
            "is not a team of this workspace",
        )),
        None => Ok(()),
    }
}

fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && !d.starts_with('.')
        && !d.ends_with('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Checks every field, naming each bad one; normalises domains and scopes.
fn validate(cfg: &SsoConfig, s: &mut Settings, secret: Option<&str>) -> Result<()> {
    let mut errs = Vec::new();
    let mut bad = |field: String, message: &str| {
        errs.push(FieldError {
            field,
            message: message.into(),
        })
    };
    match super::policy(cfg).check_url(&s.issuer) {
        Ok(u) if u.query().is_some() || u.fragment().is_some() => {
            bad("issuer".into(), "must not have a query or fragment")
        }
        Ok(_) => s.issuer = s.issuer.trim().to_owned(),
        Err(Error::Validation(v)) => {
            for e in v {
                bad("issuer".into(), &e.message);
            }
        }
        Err(e) => return Err(e),
    }
    if !printable(&s.client_id, 255) {
        bad("client_id".into(), "must be 1 to 255 printable characters");
    }
    if secret.is_some_and(|v| !printable(v, 1024)) {
        bad(
            "client_secret".into(),
            "must be 1 to 1024 printable characters",
        );
    }
    if s.scopes.len() > 20 {
        bad("scopes".into(), "at most 20");
    }
    for (i, sc) in s.scopes.iter().enumerate() {
        let ok = !sc.is_empty()
            && sc.len() <= 100
            && sc
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !ok {
            bad(
                format!("scopes[{i}]"),
                "is not a scope token (RFC 6749 3.3)",
            );
        }
    }
    if !s.scopes.iter().any(|x| x == "openid") {
        s.scopes.insert(0, "openid".into());
    }
    if s.allowed_domains.len() > 50 {
        bad("allowed_domains".into(), "at most 50");
    }
    for d in s.allowed_domains.iter_mut() {
        *d = d.trim().to_ascii_lowercase();
    }
    for (i, d) in s.allowed_domains.iter().enumerate() {
        if !valid_domain(d) {
            bad(
                format!("allowed_domains[{i}]"),
                "is not a domain like example.com",
            );
        }
    }
    s.allowed_domains.sort();
    s.allowed_domains.dedup();
    if s.default_role == Role::Owner {
        bad("default_role".into(), "cannot be owner");
    }
    let claim_ok = !s.groups_claim.is_empty()
        && s.groups_claim.len() <= 64
        && s.groups_claim
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_:./-".contains(&b));
    if !claim_ok {
        bad(
            "groups_claim".into(),
            "must be 1 to 64 letters, digits or _:./-",
        );
    }
    if s.role_mappings.len() > 100 || s.team_mappings.len() > 100 {
        bad(
            "role_mappings".into(),
            "at most 100 role and 100 team mappings",
        );
    }
    for (i, m) in s.role_mappings.iter().enumerate() {
        if !printable(&m.group, 256) {
            bad(
                format!("role_mappings[{i}].group"),
                "must be 1 to 256 printable characters",
            );
        }
        if m.role == Role::Owner {
            bad(
                format!("role_mappings[{i}].role"),
                "cannot be owner: owners are named in Aura",
            );
        }
    }
    for (i, m) in s.team_mappings.iter().enumerate() {
        if !printable(&m.group, 256) {
            bad(
                format!("team_mappings[{i}].group"),
                "must be 1 to 256 printable characters",
            );
        }
        if !printable(&m.team, 64) {
            bad(
                format!("team_mappings[{i}].team"),
                "is not a team of this workspace",
            );
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errs))
    }
}
