//! The isolation matrix: every API route (enumerated from the OpenAPI
//! document), every state-changing UI route (enumerated from
//! `aura::web::UI_FORMS`) and every page of the router is tried by every
//! kind of caller: anonymous, each workspace role, the owner of workspace A
//! pointing at B's objects, the admin of workspace B (with A's workspace id,
//! and with B's own workspace id around A's objects), a platform admin, and
//! programs: `aura_` API tokens scoped to A (admin and viewer), one scoped to
//! B, a revoked token and an expired access JWT. A route without an entry in
//! the tables below fails the test, and so does an entry for a route that is
//! gone.
//!
//! Expectations: members get 2xx at or above the route's least role and 403
//! below it (a token: its scope); anyone else gets 404 for anything under
//! another workspace, and 404 for another workspace's objects under their own
//! workspace id; the platform area is 403 to everyone but platform admins
//! (tokens never carry platform rights); anonymous callers, revoked tokens and
//! expired JWTs get 401 (API) or a redirect to the sign-in page (UI). Across
//! all of it, no response may carry anything of a workspace the caller is not
//! a member of (or, for a token, not scoped to).
//! Account-level routes (`/me/...` but `/me` itself) answer API tokens 403.
//! A third test (`isolation_matrix/team_scopes.rs`) crosses token scopes
//! with team places on every team-sensitive route.
//! A second test puts another workspace's ids into bodies and forms
//! (relations, members, teams, a token's service account): they must be
//! answered exactly like ids that exist nowhere.

mod common;
// Token scopes x team places x the team-sensitive routes.
#[path = "isolation_matrix/team_scopes.rs"]
mod team_scopes;
// The SCIM routes: only the workspace's own SCIM token.
#[path = "isolation_matrix/scim_routes.rs"]
mod scim_routes;

use std::collections::BTreeSet;
use std::time::Instant;

use common::{Env, PASSWORD, Server, client, login};
use rand::RngCore;
use serde_json::{Value, json};

// ---- the oracle: roles and what a route needs ------------------------------

/// Workspace roles, least privileged first (this test's own notion, not the
/// app's, so the table below is an independent statement of the rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Viewer,
    Member,
    Manager,
    Admin,
    Owner,
}

const ROLES: [Role; 5] = [
    Role::Viewer,
    Role::Member,
    Role::Manager,
    Role::Admin,
    Role::Owner,
];

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

/// Who may call a route successfully.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// No sign-in. The test sends a deliberately invalid body, so every caller,
    /// signed in or not, gets this status.
    Public(u16),
    /// Any signed-in account, whatever its workspaces.
    SignedIn,
    /// The account-level routes (sessions, second factors, passkeys,
    /// password, deletion): a person signed in (session or access JWT) gets
    /// this status (the test sends an unknown id or an invalid body where
    /// it is not 2xx); a workspace API token gets 403, since only the
    /// person manages the account; anonymous callers must sign in first.
    Person(u16),
    /// Ends what the caller signed in with: any signed-in account, except that
    /// an API token does not sign out (it is revoked instead) and gets 400.
    SignOut,
    /// Platform admins (operators) only.
    Platform,
    /// Platform admins get this status (an invalid body, a workspace that
    /// does not exist); everyone else as for `Platform`.
    PlatformOnly(u16),
    /// At least this role in the workspace the path names.
    Role(Role),
    /// Like `Role`, but the test sends an invalid body or an unknown id, so
    /// those allowed get this status instead of a 2xx.
    RoleStatus(Role, u16),
}

// ---- the API table ---------------------------------------------------------

enum Payload {
    None,
    Json(Value),
    Csv(&'static str),
    /// A raw body (a file upload).
    Bytes(&'static [u8]),
}

struct ApiRoute {
    method: &'static str,
    /// As in the OpenAPI document (under `/api/v1`).
    path: &'static str,
    need: Need,
    payload: Payload,
    /// Appended as the query string; `{canary}` is replaced.
    query: &'static str,
    /// The route deletes or rewires its objects: every attempt gets fresh ones.
    fresh: Fresh,
    /// The route ends the caller's session: every attempt signs in anew.
    own_session: bool,
}

/// Which of a workspace's objects each attempt at a route gets anew.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// None: the shared ones.
    No,
    /// A collection, a record and a team (with its member).
    Content,
    /// The same, the record deleted (for undoing a deletion).
    Deleted,
    /// A service account and an API token.
    Access,
    /// A stored integration secret.
    Secret,
    /// A webhook endpoint.
    Webhook,
    /// An inbound integration (with its generated secret).
    Inbound,
    /// The workspace's single sign-on settings.
    Sso,
    /// A SCIM token (issued anew).
    Scim,
}

fn api(method: &'static str, path: &'static str, need: Need) -> ApiRoute {
    ApiRoute {
        method,
        path,
        need,
        payload: Payload::None,
        query: "",
        fresh: Fresh::No,
        own_session: false,
    }
}

impl ApiRoute {
    fn json(mut self, v: Value) -> Self {
        self.payload = Payload::Json(v);
        self
    }
    fn csv(mut self, s: &'static str) -> Self {
        self.payload = Payload::Csv(s);
        self
    }
    fn bytes(mut self, b: &'static [u8]) -> Self {
        self.payload = Payload::Bytes(b);
        self
    }
    fn query(mut self, q: &'static str) -> Self {
        self.query = q;
        self
    }
    fn fresh(mut self) -> Self {
        self.fresh = Fresh::Content;
        self
    }
    fn fresh_access(mut self) -> Self {
        self.fresh = Fresh::Access;
        self
    }
    fn fresh_kind(mut self, kind: Fresh) -> Self {
        self.fresh = kind;
        self
    }
    fn own_session(mut self) -> Self {
        self.own_session = true;
        self
    }
}

/// One entry per (method, path) of the OpenAPI document. A new API route must
/// get an entry here (the test fails naming it until it does).
fn api_table() -> Vec<ApiRoute> {
    use Need::{Platform, PlatformOnly, Public, SignOut, SignedIn};
    let role = Need::Role;
    vec![
        // Auth. A login or token request with a body missing its password:
        // 422 for anyone, and no failed sign-in to count against the limits.
        api("POST", "/auth/login", Public(422)).json(json!({"email": "nobody@example.com"})),
        api("POST", "/auth/token", Public(422)).json(json!({"email": "nobody@example.com"})),
        api("POST", "/auth/refresh", Public(401))
            .json(json!({"refresh_token": "not-a-refresh-token"})),
        api("POST", "/auth/logout", SignOut).own_session(),
        api("GET", "/me", SignedIn),
        api("GET", "/me/sessions", Need::Person(200)),
        // `{id}` is a sign-in that does not exist.
        api("DELETE", "/me/sessions/{id}", Need::Person(404)),
        // No new password: 422 before any password check (a wrong one would
        // count against the sign-in limits).
        api("POST", "/me/password", Need::Person(422)).json(json!({"current_password": ""})),
        // Second factor: bodies missing a field, so nothing is enrolled and no
        // password is tried.
        api("GET", "/me/mfa", Need::Person(200)),
        // Passkeys: public_url here is an IP, so the relying party is off (404)
        // for ceremonies; listing works.
        api("GET", "/me/passkeys", Need::Person(200)),
        api("POST", "/me/passkeys/register/start", Need::Person(422)).json(json!({})),
        api("POST", "/me/passkeys/register/finish", Need::Person(422)).json(json!({})),
        api("POST", "/me/passkeys/{id}/remove", Need::Person(422)).json(json!({})),
        api("POST", "/auth/passkey/start", Public(404)).json(json!({})),
        api("POST", "/auth/passkey/finish", Public(422)).json(json!({})),
        api("POST", "/me/mfa/totp", Need::Person(422)).json(json!({})),
        api("POST", "/me/mfa/totp/confirm", Need::Person(422)).json(json!({})),
        api("POST", "/me/mfa/totp/remove", Need::Person(422)).json(json!({"password": ""})),
        api("POST", "/me/mfa/recovery-codes", Need::Person(422)).json(json!({})),
        // The platform area.
        api("GET", "/platform/status", Platform),
        api("GET", "/platform/audit", Platform),
        api("GET", "/platform/audit/export", Platform),
        api("GET", "/platform/audit/entries/{seq}", Platform),
        api("POST", "/platform/audit/verify", Platform),
        api("GET", "/platform/workspaces", Platform),
        // Invitations: an invalid address (422 for those allowed, and no mail),
        // an unknown id or token (404).
        api(
            "POST",
            "/workspaces/{workspace}/invitations",
            Need::RoleStatus(Role::Admin, 422),
        )
        .json(json!({"email": "not-an-address", "role": "viewer"})),
        api(
            "GET",
            "/workspaces/{workspace}/invitations",
            role(Role::Admin),
        ),
        api(
            "DELETE",
            "/workspaces/{workspace}/invitations/{invitation}",
            Need::RoleStatus(Role::Admin, 404),
        ),
        api("GET", "/invitations/{token}", Public(404)),
        // Magic links are off in the matrix's server: 404 for anyone.
        api("POST", "/auth/magic-link", Public(404)).json(json!({"email": "a@example.com"})),
        // No mail in the matrix's server: no reset links; an unknown token: 401.
        api("POST", "/auth/password-reset", Public(404)).json(json!({"email": "a@example.com"})),
        api("POST", "/auth/password-reset/confirm", Public(401))
            .json(json!({"token": "nope", "new_password": "0123456789ab"})),
        api("POST", "/invitations/{token}/accept", Public(404)).json(json!({})),
        api("POST", "/platform/workspaces", PlatformOnly(422)).json(json!({"name": "x"})),
        api(
            "POST",
            "/platform/workspaces/{workspace}/suspend",
            PlatformOnly(404),
        ),
        api(
            "POST",
            "/platform/workspaces/{workspace}/resume",
            PlatformOnly(404),
        ),
        api(
            "POST",
            "/platform/workspaces/{workspace}/impersonate",
            PlatformOnly(404),
        )
        .json(json!({"reason": "route check by the matrix"})),
        api("POST", "/platform/impersonation/end", Platform),
        // Accounts: an invalid address (422, and no account, no mail); an
        // account that does not exist (404).
        api("GET", "/platform/accounts", Platform),
        api("POST", "/platform/accounts", PlatformOnly(422))
            .json(json!({"email": "not-an-address", "name": "Matrix"})),
        api(
            "POST",
            "/platform/accounts/{user}/disable",
            PlatformOnly(404),
        ),
        api(
            "POST",
            "/platform/accounts/{user}/enable",
            PlatformOnly(404),
        ),
        api(
            "PUT",
            "/platform/accounts/{user}/platform-admin",
            PlatformOnly(404),
        )
        .json(json!({"platform_admin": true})),
        // A workspace's audit log.
        api("GET", "/workspaces/{workspace}/audit", role(Role::Admin)),
        api(
            "GET",
            "/workspaces/{workspace}/audit/export",
            role(Role::Admin),
        ),
        api(
            "GET",
            "/workspaces/{workspace}/audit/entries/{seq}",
            role(Role::Admin),
        ),
        api(
            "GET",
            "/workspaces/{workspace}/audit/status",
            role(Role::Admin),
        ),
        api(
            "POST",
            "/workspaces/{workspace}/audit/verify",
            role(Role::Admin),
        ),
        api(
            "PUT",
            "/workspaces/{workspace}/audit/settings",
            role(Role::Owner),
        )
        .json(json!({"retention_days": 90})),
        // Collections.
        api(
            "GET",
            "/workspaces/{workspace}/collections",
            role(Role::Viewer),
        ),
        api(
            "POST",
            "/workspaces/{workspace}/collections",
            role(Role::Manager),
        )
        .json(json!({"name": "Made by the matrix {unique}", "fields": [{"name": "N", "type": "text"}]})),
        api(
            "GET",
            "/workspaces/{workspace}/collections/{collection}",
            role(Role::Viewer),
        ),
        api(
            "PATCH",
            "/workspaces/{workspace}/collections/{collection}",
            role(Role::Manager),
        )
        .json(json!({"name": "Renamed by the matrix"})),
        api(
            "DELETE",
            "/workspaces/{workspace}/collections/{collection}",
            role(Role::Admin),
        )
        .fresh(),
        api(
            "GET",
            "/workspaces/{workspace}/collections/{collection}/export",
            role(Role::Viewer),
        ),
        api(
            "POST",
            "/workspaces/{workspace}/collections/{collection}/import",
            role(Role::Member),
        )
        .csv("Title,Note\nimported,by the matrix\n"),
        // Records.
        api(
            "GET",
            "/workspaces/{workspace}/collections/{collection}/records",
            role(Role::Viewer),
        )
        .query("q={canary}"),
        api(
            "POST",
            "/workspaces/{workspace}/collections/{collection}/records",
            role(Role::Member),
        )
        .json(json!({"values": {"Title": "made by the matrix", "Note": "x"}})),
        api(
            "GET",
            "/workspaces/{workspace}/collections/{collection}/records/{record}",
            role(Role::Viewer),
        ),
        api(
            "PATCH",
            "/workspaces/{workspace}/collections/{collection}/records/{record}",
            role(Role::Member),
        )
        .json(json!({"values": {"Note": "patched by the matrix"}})),
        api(
            "DELETE",
            "/workspaces/{workspace}/collections/{collection}/records/{record}",
            role(Role::Manager),
        )
        .fresh(),
        api(
            "POST",
            "/workspaces/{workspace}/collections/{collection}/records/{record}/undelete",
            role(Role::Manager),
        )
        .fresh_kind(Fresh::Deleted),
        api(
            "GET",
            "/workspaces/{workspace}/collections/{collection}/records/{record}/history",
            role(Role::Viewer),
        ),
        api(
            "POST",
            "/workspaces/{workspace}/collections/{collection}/records/{record}/history/{version}/restore",
            role(Role::Member),
        ),
        // Files: `{field}` is the fixture's file field, `{file}` a file in
        // the fixture record.
        api(
            "POST",
            "/workspaces/{workspace}/collections/{collection}/records/{record}/files/{field}",
            role(Role::Member),
        )
        .bytes(b"a file from the matrix")
        .query("name=matrix.txt")
        // Each upload is a new version: the shared record keeps its history.
        .fresh(),
        api(
            "GET",
            "/workspaces/{workspace}/collections/{collection}/records/{record}/files/{field}/{file}",
            role(Role::Viewer),
        ),
        api(
            "DELETE",
            "/workspaces/{workspace}/collections/{collection}/records/{record}/files/{field}/{file}",
            role(Role::Member),
        )
        .fresh(),
        // Members, service accounts and API tokens. `{user}` is a service
        // account with the viewer role, which any admin may change.
        api("GET", "/workspaces/{workspace}/members", role(Role::Viewer)),
        api(
            "PUT",
            "/workspaces/{workspace}/members/{user}",
            role(Role::Admin),
        )
        .json(json!({"role": "viewer"})),
        api(
            "DELETE",
            "/workspaces/{workspace}/members/{user}",
            role(Role::Admin),
        )
        .fresh_access(),
        api(
            "GET",
            "/workspaces/{workspace}/service-accounts",
            role(Role::Admin),
        ),
        api(
            "POST",
            "/workspaces/{workspace}/service-accounts",
            role(Role::Admin),
        )
        .json(json!({"name": "Matrix service account", "role": "viewer"})),
        api("GET", "/workspaces/{workspace}/tokens", role(Role::Admin)),
        api("POST", "/workspaces/{workspace}/tokens", role(Role::Admin))
            .json(json!({"name": "Matrix token", "scope": "viewer"})),
        api(
            "DELETE",
            "/workspaces/{workspace}/tokens/{token}",
            role(Role::Admin),
        )
        .fresh_access(),
        // The SCIM token: admins see, issue and revoke it; revoking gets a
        // fresh one each time.
        api(
            "GET",
            "/workspaces/{workspace}/scim/token",
            role(Role::Admin),
        ),
        api(
            "POST",
            "/workspaces/{workspace}/scim/token",
            role(Role::Admin),
        ),
        api(
            "DELETE",
            "/workspaces/{workspace}/scim/token",
            role(Role::Admin),
        )
        .fresh_kind(Fresh::Scim),
        api(
            "GET",
            "/workspaces/{workspace}/mfa-policy",
            role(Role::Viewer),
        ),
        api(
            "PUT",
            "/workspaces/{workspace}/mfa-policy",
            role(Role::Owner),
        )
        .json(json!({"required": false})),
        api("GET", "/workspaces/{workspace}/sso", role(Role::Admin)).fresh_kind(Fresh::Sso),
        api("PUT", "/workspaces/{workspace}/sso", role(Role::Admin)).json(sso_config()),
        api("DELETE", "/workspaces/{workspace}/sso", role(Role::Admin)).fresh_kind(Fresh::Sso),
        // Data-subject requests (a person no record refers to) and exports.
        api(
            "POST",
            "/workspaces/{workspace}/data-subjects/search",
            role(Role::Admin),
        )
        .json(json!({"identifier": "matrix-nobody@example.com"})),
        api(
            "POST",
            "/workspaces/{workspace}/data-subjects/export",
            role(Role::Admin),
        )
        .json(json!({"identifier": "matrix-nobody@example.com"})),
        api(
            "POST",
            "/workspaces/{workspace}/data-subjects/anonymise",
            role(Role::Admin),
        )
        .json(json!({"identifier": "matrix-nobody@example.com"})),
        api("POST", "/workspaces/{workspace}/exports", role(Role::Admin)).json(json!({})),
        api("GET", "/workspaces/{workspace}/exports", role(Role::Admin)),
        // `{export}` is a job that does not exist.
        api(
            "GET",
            "/workspaces/{workspace}/exports/{export}",
            Need::RoleStatus(Role::Admin, 404),
        ),
        api(
            "GET",
            "/workspaces/{workspace}/exports/{export}/download",
            Need::RoleStatus(Role::Admin, 404),
        ),
        // Teams.
        api("GET", "/workspaces/{workspace}/teams", role(Role::Viewer)),
        api("POST", "/workspaces/{workspace}/teams", role(Role::Admin))
            .json(json!({"name": "Matrix team"})),
        api(
            "DELETE",
            "/workspaces/{workspace}/teams/{team}",
            role(Role::Admin),
        )
        .fresh(),
        api(
            "PUT",
            "/workspaces/{workspace}/teams/{team}/members/{user}",
            role(Role::Admin),
        )
        .json(json!({"role": "member"}))
        .fresh(),
        api(
            "DELETE",
            "/workspaces/{workspace}/teams/{team}/members/{user}",
            role(Role::Admin),
        )
        .fresh(),
        // Deletion: a wrong name (422) and nothing to cancel (409), so no
        // workspace or account is ever scheduled here.
        api(
            "GET",
            "/workspaces/{workspace}/deletion",
            role(Role::Viewer),
        ),
        api(
            "POST",
            "/workspaces/{workspace}/deletion",
            Need::RoleStatus(Role::Owner, 422),
        )
        .json(json!({"confirm_name": "not the name"})),
        api(
            "DELETE",
            "/workspaces/{workspace}/deletion",
            Need::RoleStatus(Role::Owner, 409),
        ),
        // Key rotation: an owner starts one (it runs in the background).
        api(
            "POST",
            "/workspaces/{workspace}/keys/rotate",
            Need::RoleStatus(Role::Owner, 200),
        ),
        api(
            "GET",
            "/workspaces/{workspace}/keys/rotation",
            Need::RoleStatus(Role::Owner, 200),
        ),
        api("GET", "/me/deletion", Need::Person(200)),
        api("POST", "/me/deletion", Need::Person(422)).json(json!({"password": ""})),
        api("DELETE", "/me/deletion", Need::Person(409)),
        // Integrations: admins only. Deletions get fresh objects.
        api(
            "GET",
            "/workspaces/{workspace}/integrations/secrets",
            role(Role::Admin),
        ),
        api(
            "POST",
            "/workspaces/{workspace}/integrations/secrets",
            role(Role::Admin),
        )
        .json(json!({"name": "Matrix key", "value": "sk_matrix_0123456789"})),
        api(
            "POST",
            "/workspaces/{workspace}/integrations/secrets/{secret_id}/rotate",
            role(Role::Admin),
        )
        .json(json!({"value": "sk_matrix_rotated_0123", "overlap_hours": 1})),
        api(
            "DELETE",
            "/workspaces/{workspace}/integrations/secrets/{secret_id}",
            role(Role::Admin),
        )
        .fresh_kind(Fresh::Secret),
        api(
            "GET",
            "/workspaces/{workspace}/integrations/inbound",
            role(Role::Admin),
        ),
        api(
            "POST",
            "/workspaces/{workspace}/integrations/inbound",
            role(Role::Admin),
        )
        .json(json!({"name": "Matrix inbound", "mode": "token"})),
        api(
            "DELETE",
            "/workspaces/{workspace}/integrations/inbound/{integration}",
            role(Role::Admin),
        )
        .fresh_kind(Fresh::Inbound),
        api(
            "GET",
            "/workspaces/{workspace}/integrations/inbound/{integration}/events",
            role(Role::Admin),
        ),
        api("GET", "/workspaces/{workspace}/webhooks", role(Role::Admin)),
        api(
            "POST",
            "/workspaces/{workspace}/webhooks",
            role(Role::Admin),
        )
        .json(json!({"url": "https://hooks.example.invalid/matrix", "events": ["member.added"]})),
        api(
            "POST",
            "/workspaces/{workspace}/webhooks/{webhook}/rotate-secret",
            role(Role::Admin),
        )
        .json(json!({"overlap_hours": 1})),
        api(
            "PATCH",
            "/workspaces/{workspace}/webhooks/{webhook}",
            role(Role::Admin),
        )
        .json(json!({"events": ["record.created"]})),
        api(
            "DELETE",
            "/workspaces/{workspace}/webhooks/{webhook}",
            role(Role::Admin),
        )
        .fresh_kind(Fresh::Webhook),
        api(
            "GET",
            "/workspaces/{workspace}/webhooks/{webhook}/deliveries",
            role(Role::Admin),
        ),
        api(
            "POST",
            "/workspaces/{workspace}/webhooks/{webhook}/deliveries/{delivery}/redeliver",
            role(Role::Admin),
        ),
    ]
}

// ---- the UI table ----------------------------------------------------------

/// What a `:param` of a UI route is replaced with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum P {
    Ws,
    Coll,
    Rec,
    Team,
    /// An audit entry's sequence number (1: every chain has one).
    Seq,
    /// A static asset's name.
    Asset,
    /// A workspace id that exists nowhere (for platform actions).
    Nowhere,
    /// An inbound integration of the workspace.
    Integration,
    /// The fixture collection's file field, and a file in the record.
    Field,
    File,
}

const WS: &[(&str, P)] = &[(":ws", P::Ws)];
const NOWHERE_WS: &[(&str, P)] = &[(":ws", P::Nowhere)];
const INVITE: &[(&str, P)] = &[(":token", P::Nowhere)];
const COLL: &[(&str, P)] = &[(":ws", P::Ws), (":coll", P::Coll)];
const REC: &[(&str, P)] = &[(":ws", P::Ws), (":coll", P::Coll), (":rec", P::Rec)];
const TEAM: &[(&str, P)] = &[(":ws", P::Ws), (":team", P::Team)];
const FIELD: &[(&str, P)] = &[
    (":ws", P::Ws),
    (":coll", P::Coll),
    (":rec", P::Rec),
    (":field", P::Field),
];
const FILE: &[(&str, P)] = &[
    (":ws", P::Ws),
    (":coll", P::Coll),
    (":rec", P::Rec),
    (":field", P::Field),
    (":file", P::File),
];

type FormFn = fn(&Subst) -> Vec<(String, String)>;

struct UiRoute {
    /// A form post (else a page, fetched with GET).
    post: bool,
    /// Exactly as the router spells it (`aura::web::UI_FORMS`).
    path: &'static str,
    params: &'static [(&'static str, P)],
    need: Need,
    /// The form fields (the CSRF token is added by the test).
    form: FormFn,
    /// Appended as the query string; `{canary}` is replaced.
    query: &'static str,
    fresh: Fresh,
    own_session: bool,
    /// A multipart post of one file (its CSRF token in the query string).
    multipart: bool,
}

fn no_fields(_: &Subst) -> Vec<(String, String)> {
    Vec::new()
}

fn ui(path: &'static str, params: &'static [(&'static str, P)], need: Need) -> UiRoute {
    UiRoute {
        post: true,
        path,
        params,
        need,
        form: no_fields,
        query: "",
        fresh: Fresh::No,
        own_session: false,
        multipart: false,
    }
}

fn page(path: &'static str, params: &'static [(&'static str, P)], need: Need) -> UiRoute {
    UiRoute {
        post: false,
        ..ui(path, params, need)
    }
}

impl UiRoute {
    fn form(mut self, f: FormFn) -> Self {
        self.form = f;
        self
    }
    fn fresh(mut self) -> Self {
        self.fresh = Fresh::Content;
        self
    }
    fn fresh_access(mut self) -> Self {
        self.fresh = Fresh::Access;
        self
    }
    fn fresh_kind(mut self, kind: Fresh) -> Self {
        self.fresh = kind;
        self
    }
    fn own_session(mut self) -> Self {
        self.own_session = true;
        self
    }
    fn query(mut self, q: &'static str) -> Self {
        self.query = q;
        self
    }
    fn multipart(mut self) -> Self {
        self.multipart = true;
        self
    }
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The record permissions every collection form sends (the defaults).
fn default_perms() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (action, roles) in [
        (
            "read",
            &["owner", "admin", "manager", "member", "viewer"][..],
        ),
        ("create", &["owner", "admin", "manager", "member"][..]),
        ("update", &["owner", "admin", "manager", "member"][..]),
        ("delete", &["owner", "admin", "manager"][..]),
    ] {
        for r in roles {
            out.push((format!("perm.{action}"), (*r).to_owned()));
        }
    }
    out
}

/// One entry per route in `aura::web::UI_FORMS`. NEW UI FORM ROUTES MUST
/// BE ADDED HERE: the path params to substitute, the least role that may post
/// the form, and a valid form body (the test fails naming any route it does
/// not know).
fn ui_table() -> Vec<UiRoute> {
    use Need::{Person, Platform, PlatformOnly, Public, SignOut};
    let role = Need::Role;
    vec![
        // An empty sign-in form: 422 for anyone.
        ui("/login", &[], Public(422)),
        ui("/logout", &[], SignOut).own_session(),
        ui("/w/:ws/audit/verify", WS, role(Role::Admin)),
        ui("/platform/audit/verify", &[], Platform),
        ui("/platform/workspaces", &[], PlatformOnly(422)),
        ui(
            "/platform/workspaces/:ws/suspend",
            NOWHERE_WS,
            PlatformOnly(404),
        ),
        ui(
            "/platform/workspaces/:ws/resume",
            NOWHERE_WS,
            PlatformOnly(404),
        ),
        ui(
            "/platform/workspaces/:ws/impersonate",
            NOWHERE_WS,
            PlatformOnly(422),
        ),
        ui("/platform/impersonation/end", &[], Platform),
        ui("/platform/accounts", &[], PlatformOnly(422))
            .form(|_| pairs(&[("email", "not-an-address"), ("name", "Matrix")])),
        ui("/platform/accounts/disable", &[], PlatformOnly(404))
            .form(|_| pairs(&[("user_id", NOWHERE)])),
        ui("/platform/accounts/enable", &[], PlatformOnly(404))
            .form(|_| pairs(&[("user_id", NOWHERE)])),
        ui("/platform/accounts/admin", &[], PlatformOnly(404))
            .form(|_| pairs(&[("user_id", NOWHERE), ("platform_admin", "true")])),
        ui("/w/:ws/privacy/export", WS, role(Role::Admin)),
        ui("/w/:ws/privacy/subjects", WS, role(Role::Admin))
            .form(|_| pairs(&[("identifier", "matrix-nobody@example.com")])),
        ui("/w/:ws/privacy/subjects/export", WS, role(Role::Admin))
            .form(|_| pairs(&[("identifier", "matrix-nobody@example.com")])),
        ui("/w/:ws/privacy/subjects/anonymise", WS, role(Role::Admin)).form(|_| {
            pairs(&[
                ("identifier", "matrix-nobody@example.com"),
                ("confirm", "yes"),
            ])
        }),
        ui("/w/:ws/invitations", WS, Need::RoleStatus(Role::Admin, 422))
            .form(|_| pairs(&[("email", "not-an-address"), ("role", "viewer")])),
        ui(
            "/w/:ws/invitations/revoke",
            WS,
            Need::RoleStatus(Role::Admin, 404),
        )
        .form(|_| pairs(&[("invitation_id", "nope")])),
        ui("/invite/:token", INVITE, Public(404)),
        // Off: 404; an unknown link: the sign-in page with 401.
        ui("/login/magic", &[], Public(404)).form(|_| pairs(&[("email", "a@example.com")])),
        ui("/magic/:token", INVITE, Public(401)),
        ui("/reset", &[], Public(404)).form(|_| pairs(&[("email", "a@example.com")])),
        ui("/reset/:token", INVITE, Public(404))
            .form(|_| pairs(&[("new_password", "0123456789ab")])),
        ui("/platform/backups/run", &[], Platform),
        ui("/platform/backups/drill", &[], Platform),
        ui("/w/:ws/collections", WS, role(Role::Manager)).form(|_| {
            let name = format!("Made in the UI by the matrix {}", rand_hex());
            let mut f = pairs(&[("name", &name), ("f0.name", "N"), ("f0.type", "text")]);
            f.extend(default_perms());
            f
        }),
        // The schema form replaces the permissions with what it sends, so it
        // gets a fresh collection each time.
        ui("/w/:ws/c/:coll/schema", COLL, role(Role::Manager))
            .form(|s| {
                let name = format!("Renamed in the UI by the matrix {}", rand_hex());
                let mut f = pairs(&[("name", &name)]);
                f.push(("f0.id".into(), s.title_field.clone()));
                f.push(("f0.name".into(), "Title".into()));
                f.push(("f0.type".into(), "text".into()));
                f.push(("f0.searchable".into(), "on".into()));
                f.extend(default_perms());
                f
            })
            .fresh(),
        ui("/w/:ws/c/:coll/records", COLL, role(Role::Member)).form(|s| {
            vec![
                (format!("v.{}", s.title_field), "made in the UI".into()),
                (format!("v.{}", s.note_field), "by the matrix".into()),
            ]
        }),
        // The record form sends every field; the title keeps its canary.
        ui("/w/:ws/c/:coll/r/:rec", REC, role(Role::Member)).form(|s| {
            vec![
                (format!("v.{}", s.title_field), s.canary.clone()),
                (format!("v.{}", s.note_field), "updated in the UI".into()),
            ]
        }),
        ui(
            "/w/:ws/c/:coll/r/:rec/files/:field",
            FIELD,
            role(Role::Member),
        )
        .multipart()
        .fresh(),
        ui(
            "/w/:ws/c/:coll/r/:rec/files/remove",
            REC,
            role(Role::Member),
        )
        .form(|s| {
            vec![
                ("field".into(), s.file_field.clone()),
                ("file".into(), s.file.clone()),
            ]
        })
        .fresh(),
        ui("/w/:ws/c/:coll/r/:rec/delete", REC, role(Role::Manager)).fresh(),
        ui("/w/:ws/c/:coll/r/:rec/undelete", REC, role(Role::Manager)).fresh_kind(Fresh::Deleted),
        ui("/w/:ws/c/:coll/delete", COLL, role(Role::Admin)).fresh(),
        ui("/w/:ws/c/:coll/r/:rec/restore", REC, role(Role::Member))
            .form(|_| pairs(&[("version", "2")])),
        ui("/w/:ws/teams", WS, role(Role::Admin)).form(|_| pairs(&[("name", "UI matrix team")])),
        ui("/w/:ws/teams/:team/members", TEAM, role(Role::Admin))
            .form(|s| {
                vec![
                    ("user_id".into(), s.user.clone()),
                    ("role".into(), "member".into()),
                ]
            })
            .fresh(),
        ui("/w/:ws/teams/:team/members/remove", TEAM, role(Role::Admin))
            .form(|s| vec![("user_id".into(), s.user.clone())])
            .fresh(),
        ui("/w/:ws/teams/:team/delete", TEAM, role(Role::Admin)).fresh(),
        // Members, service accounts, tokens and the MFA policy.
        ui("/w/:ws/members/role", WS, role(Role::Admin)).form(|s| {
            vec![
                ("user_id".into(), s.member.clone()),
                ("role".into(), "viewer".into()),
            ]
        }),
        ui("/w/:ws/members/remove", WS, role(Role::Admin))
            .form(|s| vec![("user_id".into(), s.member.clone())])
            .fresh_access(),
        ui("/w/:ws/service-accounts", WS, role(Role::Admin))
            .form(|_| pairs(&[("name", "UI matrix robot"), ("role", "viewer")])),
        // Answers 200: the new secret is on the answering page.
        ui("/w/:ws/tokens", WS, role(Role::Admin))
            .form(|_| pairs(&[("name", "UI matrix token"), ("scope", "viewer")])),
        ui("/w/:ws/tokens/revoke", WS, role(Role::Admin))
            .form(|s| vec![("token_id".into(), s.token.clone())])
            .fresh_access(),
        ui("/w/:ws/mfa-policy", WS, role(Role::Owner)).form(|_| pairs(&[("required", "false")])),
        ui("/w/:ws/sso", WS, role(Role::Admin)).form(|_| {
            pairs(&[
                ("issuer", "https://login.example.invalid/realms/matrix"),
                ("client_id", "matrix"),
                ("client_secret", "matrix-secret"),
                ("default_role", "member"),
                ("groups_claim", "groups"),
            ])
        }),
        ui("/w/:ws/sso/delete", WS, role(Role::Admin)).fresh_kind(Fresh::Sso),
        // No sign-in waits for this link: the page says so, to anyone.
        ui("/auth/oidc/link", &[], Public(400)),
        ui("/auth/oidc/link/mail", &[], Public(400)),
        ui("/auth/oidc/link/:token", INVITE, Public(400)),
        // Answers 200: the new SCIM token is on the answering page.
        ui("/w/:ws/scim/token", WS, role(Role::Admin)),
        ui("/w/:ws/scim/token/revoke", WS, role(Role::Admin)).fresh_kind(Fresh::Scim),
        // Integrations. Creating a webhook or an inbound integration answers
        // 200: the new secret is on the answering page.
        ui("/w/:ws/integrations/secrets", WS, role(Role::Admin))
            .form(|_| pairs(&[("name", "UI matrix key"), ("value", "sk_ui_matrix_0123")])),
        ui("/w/:ws/integrations/secrets/rotate", WS, role(Role::Admin)).form(|s| {
            vec![
                ("secret_id".into(), s.secret_id.clone()),
                ("value".into(), "sk_ui_matrix_rotated".into()),
            ]
        }),
        ui("/w/:ws/integrations/secrets/delete", WS, role(Role::Admin))
            .form(|s| vec![("secret_id".into(), s.secret_id.clone())])
            .fresh_kind(Fresh::Secret),
        ui("/w/:ws/integrations/webhooks", WS, role(Role::Admin)).form(|_| {
            pairs(&[
                ("url", "https://hooks.example.invalid/ui-matrix"),
                ("events", "member.added"),
            ])
        }),
        ui("/w/:ws/integrations/webhooks/rotate", WS, role(Role::Admin))
            .form(|s| vec![("webhook_id".into(), s.webhook.clone())]),
        ui(
            "/w/:ws/integrations/webhooks/redeliver",
            WS,
            role(Role::Admin),
        )
        .form(|s| {
            vec![
                ("webhook_id".into(), s.webhook.clone()),
                ("delivery_id".into(), s.delivery.clone()),
            ]
        }),
        ui("/w/:ws/integrations/webhooks/delete", WS, role(Role::Admin))
            .form(|s| vec![("webhook_id".into(), s.webhook.clone())])
            .fresh_kind(Fresh::Webhook),
        ui("/w/:ws/integrations/inbound", WS, role(Role::Admin))
            .form(|_| pairs(&[("name", "UI matrix inbound"), ("mode", "signature")])),
        ui("/w/:ws/integrations/inbound/delete", WS, role(Role::Admin))
            .form(|s| vec![("integration_id".into(), s.integration.clone())])
            .fresh_kind(Fresh::Inbound),
        // Your account: forms missing what they need (no password is tried,
        // no session is ended).
        ui("/account/sessions/end", &[], Person(404)).form(|_| pairs(&[("id", "nope")])),
        ui("/account/password", &[], Person(422)),
        ui("/account/mfa/start", &[], Person(422)),
        ui("/account/mfa/confirm", &[], Person(422)),
        ui("/account/mfa/remove", &[], Person(422)),
        ui("/account/mfa/recovery-codes", &[], Person(422)),
        ui("/account/passkeys/remove", &[], Person(422)),
        // Deletion: no name typed (422); nothing to cancel (back to the page).
        ui("/w/:ws/deletion", WS, Need::RoleStatus(Role::Owner, 422)),
        ui("/w/:ws/deletion/cancel", WS, role(Role::Owner)),
        // An incident that does not affect the workspace (none does here).
        ui(
            "/w/:ws/incidents/ack",
            WS,
            Need::RoleStatus(Role::Admin, 404),
        )
        .form(|_| pairs(&[("incident_id", "inc_nope")])),
        ui("/w/:ws/keys/rotate", WS, role(Role::Owner)),
        ui("/account/deletion", &[], Person(422)),
        ui("/account/deletion/cancel", &[], Person(303)),
    ]
}

/// The pages (GET) and public endpoints of the router, for the leak check
/// and the 403/404 rules. The app keeps no list of these (as it does of form
/// routes), so every path literal in `src/web/mod.rs`, where the router is
/// built, must be a form route, a page here, or in `NOT_PAGES`: a new page
/// fails the test until it has an entry. NEW PAGES MUST BE ADDED HERE.
fn ui_pages() -> Vec<UiRoute> {
    use Need::{Platform, Public, SignedIn};
    let role = Need::Role;
    const SEQ: &[(&str, P)] = &[(":ws", P::Ws), (":seq", P::Seq)];
    vec![
        // Public: nothing of any workspace, to anyone.
        page("/", &[], Public(303)),
        page("/healthz", &[], Public(200)),
        page("/readyz", &[], Public(200)),
        // 404 until an operator sets a bearer token.
        page("/metrics", &[], Public(404)),
        page("/trust", &[], Public(200)),
        page("/trust.json", &[], Public(200)),
        // Without a workspace or an email: a page asking for one. A callback
        // no flow waits for: refused alike for everyone.
        page("/auth/oidc/start", &[], Public(404)),
        page("/auth/oidc/callback", &[], Public(400)),
        page("/auth/oidc/link/:token", INVITE, Public(404)),
        page("/trust/incidents/:id", &[(":id", P::Nowhere)], Public(404)),
        // 404 until an operator sets a contact.
        page("/.well-known/security.txt", &[], Public(404)),
        page("/api/openapi.json", &[], Public(200)),
        page("/assets/*path", &[("*path", P::Asset)], Public(200)),
        // Signed in.
        page("/workspaces", &[], SignedIn),
        page("/w/:ws", WS, role(Role::Viewer)),
        page("/w/:ws/collections/new", WS, role(Role::Manager)),
        page("/w/:ws/c/:coll", COLL, role(Role::Viewer)).query("q={canary}"),
        page("/w/:ws/c/:coll/new", COLL, role(Role::Member)),
        page("/w/:ws/c/:coll/schema", COLL, role(Role::Manager)),
        page("/w/:ws/c/:coll/r/:rec", REC, role(Role::Viewer)),
        page(
            "/w/:ws/c/:coll/r/:rec/files/:field/:file",
            FILE,
            role(Role::Viewer),
        ),
        page("/w/:ws/teams", WS, role(Role::Viewer)),
        page("/w/:ws/members", WS, role(Role::Viewer)),
        page("/w/:ws/sso", WS, role(Role::Admin)),
        page("/account", &[], Need::Person(200)),
        page("/w/:ws/audit", WS, role(Role::Admin)),
        page("/w/:ws/privacy", WS, role(Role::Admin)),
        page(
            "/w/:ws/privacy/exports/:id",
            &[(":ws", P::Ws), (":id", P::Nowhere)],
            Need::RoleStatus(Role::Admin, 404),
        ),
        page("/w/:ws/audit/:seq", SEQ, role(Role::Admin)),
        page("/platform", &[], Platform),
        page("/platform/audit", &[], Platform),
        page("/platform/audit/:seq", &[(":seq", P::Seq)], Platform),
        page("/platform/backups", &[], Platform),
        page("/platform/workspaces", &[], Platform),
        page("/platform/accounts", &[], Platform),
        page("/invite/:token", INVITE, Public(404)),
        page("/magic/:token", INVITE, Public(200)),
        page("/reset", &[], Public(200)),
        page("/reset/:token", INVITE, Public(404)),
        page("/w/:ws/settings", WS, role(Role::Viewer)),
        page("/w/:ws/integrations", WS, role(Role::Admin)),
        // Inbound webhooks: public, authenticated by signature. A form post
        // without the webhook headers is refused alike for every caller
        // (tests/integrations.rs covers signatures, replays and another
        // workspace's signature).
        ui(
            "/hooks/:ws/:integration",
            &[(":ws", P::Ws), (":integration", P::Integration)],
            Public(400),
        ),
    ]
}

/// Path literals in `src/web/mod.rs` that are neither form routes nor pages
/// of `ui_pages()`, and why.
const NOT_PAGES: &[(&str, &str)] = &[
    (
        "/api/v1",
        "the API's prefix; the OpenAPI document enumerates its routes",
    ),
    (
        "/scim/v2",
        "SCIM's prefix; isolation_matrix/scim_routes.rs walks every route of src/web/scim/mod.rs",
    ),
];

/// Every string literal in `src/web/mod.rs` that starts with `/`.
fn router_literals() -> BTreeSet<&'static str> {
    include_str!("../src/web/mod.rs")
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/'))
        .collect()
}

// ---- callers and fixtures --------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anon,
    /// A member of workspace A.
    A(Role),
    /// The admin (owner) of workspace B, no role in A.
    OtherAdmin,
    /// A platform admin, member of no workspace.
    Staff,
    /// An `aura_` API token of A's owner, scoped to A with this scope (the
    /// holder is the owner, so the scope is the role it acts with).
    Token(Role),
    /// An API token of B's owner, scoped to B (admin).
    OtherToken,
    /// A revoked API token of A's owner (it was scoped `owner`).
    RevokedToken,
    /// An access JWT of A's owner, past its expiry.
    ExpiredJwt,
}

impl Who {
    /// Signs in with a password (else holds a token, or nothing).
    fn is_person(self) -> bool {
        matches!(self, Who::A(_) | Who::OtherAdmin | Who::Staff)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// When an attempt applies to a route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    Always,
    /// The path names a collection, record, team, member or API token.
    Objects,
    /// The path names a record.
    Record,
}

/// One column of the matrix: a caller, and where each path id comes from.
struct Attempt {
    label: &'static str,
    who: Who,
    ws: Side,
    coll: Side,
    /// Records, teams, team and workspace members, API tokens.
    rest: Side,
    when: When,
}

impl Attempt {
    /// The path mixes ids of the two workspaces.
    fn crosses(&self) -> bool {
        self.ws != self.coll || self.ws != self.rest
    }
}

fn attempts() -> Vec<Attempt> {
    let a = |label, who| Attempt {
        label,
        who,
        ws: Side::A,
        coll: Side::A,
        rest: Side::A,
        when: When::Always,
    };
    vec![
        a("anon", Who::Anon),
        a("viewer", Who::A(Role::Viewer)),
        a("member", Who::A(Role::Member)),
        a("manager", Who::A(Role::Manager)),
        a("admin", Who::A(Role::Admin)),
        a("owner", Who::A(Role::Owner)),
        // A's owner, A's workspace id, B's objects.
        Attempt {
            label: "owner:B-objs",
            who: Who::A(Role::Owner),
            ws: Side::A,
            coll: Side::B,
            rest: Side::B,
            when: When::Objects,
        },
        // A's owner, A's collection, B's record.
        Attempt {
            label: "owner:B-rec",
            who: Who::A(Role::Owner),
            ws: Side::A,
            coll: Side::A,
            rest: Side::B,
            when: When::Record,
        },
        // B's admin, A's workspace id.
        a("B-admin", Who::OtherAdmin),
        // B's admin, B's workspace id, A's objects.
        Attempt {
            label: "B-admin:B-ws",
            who: Who::OtherAdmin,
            ws: Side::B,
            coll: Side::A,
            rest: Side::A,
            when: When::Objects,
        },
        // B's admin, B's workspace and collection, A's record.
        Attempt {
            label: "B-admin:B-coll",
            who: Who::OtherAdmin,
            ws: Side::B,
            coll: Side::B,
            rest: Side::A,
            when: When::Record,
        },
        a("staff", Who::Staff),
        // API tokens scoped to A: 2xx within their scope, 403 above it.
        a("tok-admin", Who::Token(Role::Admin)),
        a("tok-viewer", Who::Token(Role::Viewer)),
        // A token scoped to B, on A's workspace id.
        a("B-token", Who::OtherToken),
        // A token scoped to B, B's workspace id, A's objects.
        Attempt {
            label: "B-token:B-ws",
            who: Who::OtherToken,
            ws: Side::B,
            coll: Side::A,
            rest: Side::A,
            when: When::Objects,
        },
        a("revoked", Who::RevokedToken),
        a("expired", Who::ExpiredJwt),
    ]
}

/// Objects of one workspace, made by its owner through the API.
#[derive(Clone, Default)]
struct Objs {
    collection: String,
    title_field: String,
    note_field: String,
    /// The collection's file field, and a file in `record`.
    file_field: String,
    file: String,
    record: String,
    team: String,
    /// A member of `team` (the workspace's owner).
    user: String,
    /// A service account with the viewer role: a member any admin may change.
    member: String,
    /// An API token (of `member`), its id and its secret.
    token: String,
    token_secret: String,
    /// A stored integration secret and its value.
    secret_id: String,
    secret_value: String,
    /// A webhook endpoint (subscribed to `record.created`), its signing
    /// secret, and a delivery it has queued.
    webhook: String,
    webhook_secret: String,
    delivery: String,
    /// An inbound integration and its generated secret.
    integration: String,
    integration_secret: String,
}

impl Objs {
    /// What only the workspace's members may see of these objects.
    fn data(&self) -> Vec<String> {
        [
            &self.collection,
            &self.record,
            &self.file,
            &self.team,
            &self.token_secret,
            &self.secret_id,
            &self.secret_value,
            &self.webhook,
            &self.webhook_secret,
            &self.delivery,
            &self.integration,
            &self.integration_secret,
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect()
    }

    /// The workspace's accounts and tokens: control-plane objects, which the
    /// platform audit log names to a platform admin.
    fn meta(&self) -> [String; 2] {
        [self.member.clone(), self.token.clone()]
    }
}

/// Everything a path, query or form can name, resolved for one attempt.
struct Subst {
    ws: String,
    collection: String,
    title_field: String,
    note_field: String,
    file_field: String,
    file: String,
    record: String,
    team: String,
    user: String,
    member: String,
    token: String,
    secret_id: String,
    webhook: String,
    delivery: String,
    integration: String,
    canary: String,
}

struct Workspace {
    id: String,
    canary: String,
    owner_id: String,
    shared: Objs,
    /// What only members may see: the canary and every object id.
    data: Vec<String>,
    /// Also not for other workspaces' admins (a platform admin may see these
    /// in the platform log): the workspace's id and name, its people, its
    /// service accounts and the ids of its API tokens.
    meta: Vec<String>,
}

struct Caller {
    who: Who,
    client: reqwest::Client,
    csrf: String,
}

fn rand_hex() -> String {
    let mut b = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn email_of(who: Who) -> &'static str {
    match who {
        Who::Anon | Who::Token(_) | Who::OtherToken | Who::RevokedToken | Who::ExpiredJwt => "",
        Who::A(Role::Viewer) => "viewer@a.example.com",
        Who::A(Role::Member) => "member@a.example.com",
        Who::A(Role::Manager) => "manager@a.example.com",
        Who::A(Role::Admin) => "admin@a.example.com",
        Who::A(Role::Owner) => "owner@a.example.com",
        Who::OtherAdmin => "admin@b.example.com",
        Who::Staff => "staff@example.com",
    }
}

struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = r.text().await.unwrap_or_default();
    Reply {
        status,
        location,
        body,
    }
}

async fn signed_in(server: &Server, email: &str) -> (reqwest::Client, String) {
    let c = client(server);
    let r = login(&c, server, email, PASSWORD).await;
    assert_eq!(r.status(), 200, "sign-in as {email}");
    let csrf = common::page_csrf(&c, &server.url("/workspaces")).await;
    (c, csrf)
}

async fn make_objs(
    server: &Server,
    c: &reqwest::Client,
    ws: &str,
    canary: &str,
    owner_id: &str,
) -> Objs {
    let mut o = Objs::default();
    make_secret(server, c, ws, &mut o).await;
    make_webhook(server, c, ws, &mut o).await;
    make_inbound(server, c, ws, &mut o).await;
    make_content(server, c, ws, canary, owner_id, &mut o).await;
    make_access(server, c, ws, canary, &mut o).await;
    let url = server.url(&format!(
        "/api/v1/workspaces/{ws}/webhooks/{}/deliveries",
        o.webhook
    ));
    let list: Value = common::get_json(c, url).await;
    o.delivery = list["items"][0]["id"]
        .as_str()
        .expect("the fixture record queued a delivery")
        .to_owned();
    o
}

async fn make_integration_obj(
    server: &Server,
    c: &reqwest::Client,
    ws: &str,
    path: &str,
    body: Value,
) -> Value {
    let url = server.url(&format!("/api/v1/workspaces/{ws}{path}"));
    let made = send(c.post(url).json(&body)).await;
    assert_eq!(made.status, 201, "fixture {path}: {}", made.body);
    serde_json::from_str(&made.body).unwrap()
}

/// A stored secret with a random value.
async fn make_secret(server: &Server, c: &reqwest::Client, ws: &str, o: &mut Objs) {
    o.secret_value = format!("sk_fixture_{}", rand_hex());
    let v = make_integration_obj(
        server,
        c,
        ws,
        "/integrations/secrets",
        json!({"name": "Fixture key", "value": o.secret_value}),
    )
    .await;
    o.secret_id = v["id"].as_str().unwrap().to_owned();
}

/// The workspace's OpenID provider (its host never resolves).
async fn make_sso(server: &Server, c: &reqwest::Client, ws: &str) {
    let url = server.url(&format!("/api/v1/workspaces/{ws}/sso"));
    let r = send(c.put(url).json(&sso_config())).await;
    assert_eq!(r.status, 200, "fixture single sign-on: {}", r.body);
}

fn sso_config() -> Value {
    json!({"issuer": "https://login.example.invalid/realms/matrix", "client_id": "matrix", "client_secret": "matrix-secret"})
}

/// A webhook endpoint subscribed to `record.created` (its host never resolves).
async fn make_webhook(server: &Server, c: &reqwest::Client, ws: &str, o: &mut Objs) {
    let v = make_integration_obj(
        server,
        c,
        ws,
        "/webhooks",
        json!({"url": "https://hooks.example.invalid/fixture", "events": ["record.created"]}),
    )
    .await;
    o.webhook = v["id"].as_str().unwrap().to_owned();
    o.webhook_secret = v["secret"].as_str().unwrap().to_owned();
}

/// An inbound integration with a generated secret.
async fn make_inbound(server: &Server, c: &reqwest::Client, ws: &str, o: &mut Objs) {
    let v = make_integration_obj(
        server,
        c,
        ws,
        "/integrations/inbound",
        json!({"name": "Fixture inbound", "mode": "signature"}),
    )
    .await;
    o.integration = v["id"].as_str().unwrap().to_owned();
    o.integration_secret = v["secret"].as_str().unwrap().to_owned();
}

/// A collection (named after the canary) with a record (titled with it), a
/// team with the owner in it.
async fn make_content(
    server: &Server,
    c: &reqwest::Client,
    ws: &str,
    canary: &str,
    owner_id: &str,
    o: &mut Objs,
) {
    let url = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let coll = send(c.post(url("/collections")).json(&json!({
        // Fresh content is made again in the same workspace: collection
        // names are unique there, so each carries its own suffix.
        "name": format!("{canary} collection {}", &rand_hex()[..6]),
        "fields": [
            {"name": "Title", "type": "text", "searchable": true},
            {"name": "Note", "type": "text"},
            {"name": "Scan", "type": "file", "multiple": true}
        ]
    })))
    .await;
    assert_eq!(coll.status, 201, "fixture collection: {}", coll.body);
    let coll: Value = serde_json::from_str(&coll.body).unwrap();
    let cid = coll["id"].as_str().unwrap().to_owned();
    let field = |i: usize| coll["fields"][i]["id"].as_str().unwrap().to_owned();
    let rec = send(
        c.post(url(&format!("/collections/{cid}/records")))
            .json(&json!({"values": {"Title": canary, "Note": "fixture"}})),
    )
    .await;
    assert_eq!(rec.status, 201, "fixture record: {}", rec.body);
    let rec: Value = serde_json::from_str(&rec.body).unwrap();
    let rid = rec["id"].as_str().unwrap();
    let file = send(
        c.post(url(&format!(
            "/collections/{cid}/records/{rid}/files/{}",
            field(2)
        )))
        .query(&[("name", "fixture.txt")])
        .header("content-type", "text/plain")
        .body("a fixture file"),
    )
    .await;
    assert_eq!(file.status, 201, "fixture file: {}", file.body);
    let file: Value = serde_json::from_str(&file.body).unwrap();
    o.file_field = field(2);
    o.file = file["id"].as_str().unwrap().to_owned();
    let team = send(
        c.post(url("/teams"))
            .json(&json!({"name": format!("{canary} team")})),
    )
    .await;
    assert_eq!(team.status, 201, "fixture team: {}", team.body);
    let team: Value = serde_json::from_str(&team.body).unwrap();
    let tid = team["id"].as_str().unwrap().to_owned();
    let put = send(
        c.put(url(&format!("/teams/{tid}/members/{owner_id}")))
            .json(&json!({"role": "member"})),
    )
    .await;
    assert_eq!(put.status, 204, "fixture team member: {}", put.body);
    o.title_field = field(0);
    o.note_field = field(1);
    o.collection = cid;
    o.record = rec["id"].as_str().unwrap().to_owned();
    o.team = tid;
    o.user = owner_id.to_owned();
}

/// A service account with the viewer role and an API token of it.
async fn make_access(server: &Server, c: &reqwest::Client, ws: &str, canary: &str, o: &mut Objs) {
    let url = server.url(&format!("/api/v1/workspaces/{ws}/service-accounts"));
    let sa = send(
        c.post(url)
            .json(&json!({"name": format!("{canary} service account"), "role": "viewer"})),
    )
    .await;
    assert_eq!(sa.status, 201, "fixture service account: {}", sa.body);
    let sa: Value = serde_json::from_str(&sa.body).unwrap();
    o.member = sa["id"].as_str().unwrap().to_owned();
    (o.token, o.token_secret) = make_token(
        server,
        c,
        ws,
        json!({"name": format!("{canary} token"), "scope": "viewer", "service_account": o.member}),
    )
    .await;
}

/// Creates an API token in `ws` (`POST .../tokens` with `body`): its id and
/// its secret.
async fn make_token(
    server: &Server,
    c: &reqwest::Client,
    ws: &str,
    body: Value,
) -> (String, String) {
    let url = server.url(&format!("/api/v1/workspaces/{ws}/tokens"));
    let made = send(c.post(url).json(&body)).await;
    assert_eq!(made.status, 201, "fixture token {body}: {}", made.body);
    let made: Value = serde_json::from_str(&made.body).unwrap();
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("aura_"), "{made}");
    (made["id"].as_str().unwrap().to_owned(), secret)
}

/// A client that sends `Authorization: Bearer {credential}` (and a
/// same-origin `Origin`, like `common::client`), and the CSRF token for its
/// form posts: with no session, the sign-in page's pre-session cookie (double
/// submit). A live credential is sent on from the sign-in page, so a client
/// without it, sharing the cookie jar, fetches the page.
async fn bearer(server: &Server, credential: &str) -> (reqwest::Client, String) {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let build = |auth: Option<String>| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("origin", server.base.parse().unwrap());
        if let Some(a) = auth {
            headers.insert("authorization", a.parse().unwrap());
        }
        reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let csrf = common::page_csrf(&build(None), &server.url("/login")).await;
    (build(Some(format!("Bearer {credential}"))), csrf)
}

// ---- expectations ------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Success,
    Status(u16),
    /// 401 from the API; from the UI exactly a 303 to /login, pages and
    /// form posts alike (nothing else was seen; a 401 or 403 there fails).
    SignIn,
}

fn expect(need: Need, a: &Attempt) -> Expect {
    match (a.who, need) {
        (_, Need::Public(s)) => Expect::Status(s),
        (Who::Anon | Who::RevokedToken | Who::ExpiredJwt, _) => Expect::SignIn,
        // The platform area belongs to no workspace: whatever ids its path
        // carries (an account), only staff get past the door.
        (Who::Staff, Need::Platform) => Expect::Success,
        (Who::Staff, Need::PlatformOnly(s)) => Expect::Status(s),
        // Tokens never carry platform rights.
        (_, Need::Platform | Need::PlatformOnly(_)) => Expect::Status(403),
        _ if a.crosses() => Expect::Status(404),
        (_, Need::SignedIn) => Expect::Success,
        (Who::Token(_) | Who::OtherToken, Need::Person(_)) => Expect::Status(403),
        (_, Need::Person(s)) => Expect::Status(s),
        // An API token is revoked, not signed out.
        (Who::Token(_) | Who::OtherToken, Need::SignOut) => Expect::Status(400),
        (_, Need::SignOut) => Expect::Success,
        (Who::A(r) | Who::Token(r), Need::Role(min)) if r >= min => Expect::Success,
        (Who::A(r) | Who::Token(r), Need::RoleStatus(min, s)) if r >= min => Expect::Status(s),
        (Who::A(_) | Who::Token(_), Need::Role(_) | Need::RoleStatus(..)) => Expect::Status(403),
        // Not a member of (or a token for) the workspace the path names: as
        // if it did not exist.
        (Who::OtherAdmin | Who::OtherToken | Who::Staff, Need::Role(_) | Need::RoleStatus(..)) => {
            Expect::Status(404)
        }
    }
}

fn meets(ui: bool, path: &str, e: Expect, r: &Reply) -> bool {
    // To the sign-in, carrying the page asked for (a path on this site).
    let to_login = r.status == 303
        && r.location.as_deref().is_some_and(|l| {
            l == "/login"
                || l.strip_prefix("/login?next=%2F")
                    .is_some_and(|rest| !rest.starts_with("%2F"))
        });
    match e {
        Expect::Status(s) => r.status == s,
        Expect::SignIn if ui => to_login,
        Expect::SignIn => r.status == 401,
        Expect::Success if ui => {
            (200..300).contains(&r.status) || (r.status == 303 && (!to_login || path == "/logout"))
        }
        Expect::Success => (200..300).contains(&r.status),
    }
}

/// The strings of another workspace that this response must not contain,
/// leaving out anything the caller sent in the request itself.
fn needles<'a>(who: Who, a: &'a Workspace, b: &'a Workspace, sent: &str) -> Vec<&'a str> {
    let mut n: Vec<&str> = Vec::new();
    let mut add = |ws: &'a Workspace, meta: bool| {
        n.extend(ws.data.iter().map(String::as_str));
        if meta {
            n.extend(ws.meta.iter().map(String::as_str));
        }
    };
    match who {
        Who::A(_) | Who::Token(_) => add(b, true),
        // A revoked or expired credential of A's owner is nobody's.
        Who::Anon | Who::OtherAdmin | Who::OtherToken | Who::RevokedToken | Who::ExpiredJwt => {
            add(a, true)
        }
        Who::Staff => {
            add(a, false);
            add(b, false);
        }
    }
    n.retain(|s| !sent.contains(s));
    n
}

// ---- the run -------------------------------------------------------------------

struct Cell {
    status: u16,
    ok: bool,
    leaked: bool,
}

struct Row {
    route: String,
    cells: Vec<Option<Cell>>,
}

struct Run {
    /// Keeps the data dir alive as long as the server.
    _env: Env,
    server: Server,
    callers: Vec<Caller>,
    a: Workspace,
    b: Workspace,
    rows: Vec<Row>,
    failures: Vec<String>,
    leaks: usize,
    requests: usize,
    /// A's canary was seen by A's members (the leak check is not vacuous).
    a_canary_seen: bool,
}

impl Run {
    fn caller(&self, who: Who) -> &Caller {
        self.callers.iter().find(|c| c.who == who).unwrap()
    }

    fn ws(&self, side: Side) -> &Workspace {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// One workspace's shared objects with those of one kind made anew, the
    /// new ones remembered among that workspace's needles.
    async fn fresh(&mut self, side: Side, kind: Fresh) -> Objs {
        let owner = match side {
            Side::A => Who::A(Role::Owner),
            Side::B => Who::OtherAdmin,
        };
        let (c, ws) = (&self.caller(owner).client, self.ws(side));
        let mut o = ws.shared.clone();
        match kind {
            Fresh::No => {}
            Fresh::Content => {
                make_content(&self.server, c, &ws.id, &ws.canary, &ws.owner_id, &mut o).await
            }
            Fresh::Deleted => {
                make_content(&self.server, c, &ws.id, &ws.canary, &ws.owner_id, &mut o).await;
                let url = self.server.url(&format!(
                    "/api/v1/workspaces/{}/collections/{}/records/{}",
                    ws.id, o.collection, o.record
                ));
                let del = send(c.delete(url)).await;
                assert_eq!(del.status, 204, "fixture deletion: {}", del.body);
            }
            Fresh::Access => make_access(&self.server, c, &ws.id, &ws.canary, &mut o).await,
            Fresh::Secret => make_secret(&self.server, c, &ws.id, &mut o).await,
            Fresh::Webhook => make_webhook(&self.server, c, &ws.id, &mut o).await,
            Fresh::Inbound => make_inbound(&self.server, c, &ws.id, &mut o).await,
            Fresh::Sso => make_sso(&self.server, c, &ws.id).await,
            Fresh::Scim => {
                let url = self
                    .server
                    .url(&format!("/api/v1/workspaces/{}/scim/token", ws.id));
                let made = send(c.post(url)).await;
                assert_eq!(made.status, 201, "fixture SCIM token: {}", made.body);
            }
        }
        let ws = match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        };
        let shared = ws.shared.data().into_iter().chain(ws.shared.meta());
        let shared: BTreeSet<String> = shared.collect();
        ws.data
            .extend(o.data().into_iter().filter(|s| !shared.contains(s)));
        ws.meta
            .extend(o.meta().into_iter().filter(|s| !shared.contains(s)));
        o
    }

    async fn subst(&mut self, a: &Attempt, fresh: Fresh) -> Subst {
        let (coll, rest) = if fresh != Fresh::No {
            let c = self.fresh(a.coll, fresh).await;
            let r = if a.rest == a.coll {
                c.clone()
            } else {
                self.fresh(a.rest, fresh).await
            };
            (c, r)
        } else {
            (
                self.ws(a.coll).shared.clone(),
                self.ws(a.rest).shared.clone(),
            )
        };
        Subst {
            ws: self.ws(a.ws).id.clone(),
            collection: coll.collection,
            title_field: coll.title_field,
            note_field: coll.note_field,
            file_field: coll.file_field,
            file: rest.file,
            record: rest.record,
            team: rest.team,
            user: rest.user,
            member: rest.member,
            token: rest.token,
            secret_id: rest.secret_id,
            webhook: rest.webhook,
            delivery: rest.delivery,
            integration: rest.integration,
            canary: self.ws(a.coll).canary.clone(),
        }
    }

    /// The client and CSRF token an attempt uses.
    async fn session(&self, who: Who, own_session: bool) -> (reqwest::Client, String) {
        if own_session && who.is_person() {
            return signed_in(&self.server, email_of(who)).await;
        }
        let c = self.caller(who);
        (c.client.clone(), c.csrf.clone())
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        ui: bool,
        route: &str,
        path: &str,
        a: &Attempt,
        e: Expect,
        sent: &str,
        reply: &Reply,
    ) -> Cell {
        self.requests += 1;
        let ok = meets(ui, path, e, reply);
        if !ok {
            let snippet: String = reply.body.chars().take(300).collect();
            self.failures.push(format!(
                "{route} as {}: expected {e:?}, got {}{} {snippet}",
                a.label,
                reply.status,
                reply
                    .location
                    .as_deref()
                    .map(|l| format!(" → {l}"))
                    .unwrap_or_default(),
            ));
        }
        let found: Vec<String> = needles(a.who, &self.a, &self.b, sent)
            .into_iter()
            .filter(|n| reply.body.contains(n))
            .map(str::to_owned)
            .collect();
        if !found.is_empty() {
            self.leaks += 1;
            self.failures.push(format!(
                "LEAK {route} as {}: the response ({}) contains {found:?}",
                a.label, reply.status
            ));
        }
        if matches!(a.who, Who::A(_)) && !a.crosses() && reply.body.contains(&self.a.canary) {
            self.a_canary_seen = true;
        }
        Cell {
            status: reply.status,
            ok,
            leaked: !found.is_empty(),
        }
    }
}

fn applies(when: When, has_objects: bool, has_record: bool) -> bool {
    match when {
        When::Always => true,
        When::Objects => has_objects,
        When::Record => has_record,
    }
}

const NOWHERE: &str = "00000000-0000-0000-0000-000000000000";

fn fill_api_path(path: &str, s: &Subst) -> Result<String, String> {
    let mut out = path.to_owned();
    // The platform's per-workspace actions (suspend, impersonate) are tried on
    // a workspace that does not exist: the staff caller must get as far as
    // the lookup (404) without suspending the workspaces the matrix uses.
    let ws = if path.starts_with("/platform/workspaces/") {
        NOWHERE
    } else {
        s.ws.as_str()
    };
    // `{token}` is an API token's id under a workspace, else an invitation
    // link's token (an unknown one).
    let token = if path.starts_with("/invitations/") {
        "no-such-invitation"
    } else {
        s.token.as_str()
    };
    // A team's `{user}` is in the team; the workspace's, a member to change;
    // the platform's, an account that exists nowhere (the matrix's callers
    // stay enabled).
    let user = if path.contains("{team}") {
        &s.user
    } else if path.starts_with("/platform/accounts/") {
        NOWHERE
    } else {
        &s.member
    };
    for (k, v) in [
        ("{workspace}", ws),
        ("{collection}", &s.collection),
        ("{record}", &s.record),
        ("{team}", &s.team),
        ("{user}", user),
        ("{token}", token),
        ("{secret_id}", &s.secret_id),
        ("{webhook}", &s.webhook),
        ("{delivery}", &s.delivery),
        ("{integration}", &s.integration),
        ("{invitation}", "00000000-0000-0000-0000-000000000000"),
        ("{id}", "no-such-sign-in"),
        ("{seq}", "1"),
        // Version 2: the fixture record with its file (the newest before
        // the matrix writes more; a record keeps its last 20).
        ("{version}", "2"),
        ("{field}", &s.file_field),
        ("{file}", &s.file),
        ("{export}", "no-such-export"),
    ] {
        out = out.replace(k, v);
    }
    if out.contains('{') {
        Err(format!(
            "{path}: a path parameter this test cannot fill; teach fill_api_path"
        ))
    } else {
        Ok(out)
    }
}

fn fill_ui_path(route: &UiRoute, s: &Subst) -> String {
    route
        .path
        .split('/')
        .map(|seg| {
            if !seg.starts_with(':') && !seg.starts_with('*') {
                return seg.to_owned();
            }
            let p = route
                .params
                .iter()
                .find(|(name, _)| *name == seg)
                .unwrap_or_else(|| panic!("{}: no entry for {seg}", route.path))
                .1;
            match p {
                P::Ws => s.ws.clone(),
                P::Coll => s.collection.clone(),
                P::Rec => s.record.clone(),
                P::Team => s.team.clone(),
                P::Seq => "1".to_owned(),
                P::Asset => "app.css".to_owned(),
                P::Nowhere => NOWHERE.to_owned(),
                P::Integration => s.integration.clone(),
                P::Field => s.file_field.clone(),
                P::File => s.file.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn run_api(run: &mut Run, routes: &[ApiRoute], attempts: &[Attempt]) {
    for route in routes {
        let label = format!("{} {}", route.method, route.path);
        let has_objects = [
            "{collection}",
            "{record}",
            "{team}",
            "{user}",
            "{token}",
            "{secret_id}",
            "{webhook}",
            "{delivery}",
            "{integration}",
        ]
        .iter()
        .any(|p| route.path.contains(p));
        let has_record = route.path.contains("{record}");
        let mut cells = Vec::new();
        for a in attempts {
            if !applies(a.when, has_objects, has_record) {
                cells.push(None);
                continue;
            }
            let s = run.subst(a, route.fresh).await;
            let path = match fill_api_path(route.path, &s) {
                Ok(p) => p,
                Err(e) => {
                    run.failures.push(e);
                    break;
                }
            };
            let mut url = run.server.url(&format!("/api/v1{path}"));
            if !route.query.is_empty() {
                url.push('?');
                url.push_str(&route.query.replace("{canary}", &s.canary));
            }
            let (c, _) = run.session(a.who, route.own_session).await;
            let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
            let req = c.request(method, &url);
            let (req, body) = match &route.payload {
                Payload::None => (req, String::new()),
                // `{unique}` in a body: a fresh value each request (names
                // that must not repeat, such as a collection's).
                Payload::Json(v) => {
                    let text = v.to_string().replace("{unique}", &rand_hex());
                    (
                        req.header("content-type", "application/json")
                            .body(text.clone()),
                        text,
                    )
                }
                Payload::Csv(csv) => (
                    req.header("content-type", "text/csv").body(*csv),
                    (*csv).to_owned(),
                ),
                Payload::Bytes(b) => (
                    req.header("content-type", "application/octet-stream")
                        .body(*b),
                    String::from_utf8_lossy(b).into_owned(),
                ),
            };
            let reply = send(req).await;
            let e = expect(route.need, a);
            let sent = format!("{url}\n{body}");
            cells.push(Some(
                run.record(false, &label, route.path, a, e, &sent, &reply),
            ));
        }
        run.rows.push(Row {
            route: label,
            cells,
        });
    }
}

async fn run_ui(run: &mut Run, routes: &[UiRoute], attempts: &[Attempt]) {
    for route in routes {
        let label = format!(
            "UI {} {}",
            if route.post { "POST" } else { "GET" },
            route.path
        );
        let ps: Vec<P> = route.params.iter().map(|(_, p)| *p).collect();
        let has_objects = ps.iter().any(|p| matches!(p, P::Coll | P::Rec | P::Team));
        let has_record = ps.contains(&P::Rec);
        let mut cells = Vec::new();
        for a in attempts {
            if !applies(a.when, has_objects, has_record) {
                cells.push(None);
                continue;
            }
            let s = run.subst(a, route.fresh).await;
            let path = fill_ui_path(route, &s);
            let mut url = run.server.url(&path);
            if !route.query.is_empty() {
                url.push('?');
                url.push_str(&route.query.replace("{canary}", &s.canary));
            }
            let (c, csrf) = run.session(a.who, route.own_session).await;
            let mut form = (route.form)(&s);
            let sent = format!(
                "{url}\n{}",
                form.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            );
            let reply = if route.multipart {
                let sep = if url.contains('?') { '&' } else { '?' };
                send(
                    c.post(format!("{url}{sep}csrf={csrf}"))
                        .header("content-type", "multipart/form-data; boundary=M4TR1X")
                        .body(
                            "--M4TR1X\r\nContent-Disposition: form-data; name=\"file\"; \
                             filename=\"m.txt\"\r\n\r\na file from the matrix\r\n--M4TR1X--\r\n",
                        ),
                )
                .await
            } else if route.post {
                form.push(("csrf".into(), csrf));
                send(c.post(&url).form(&form)).await
            } else {
                send(c.get(&url)).await
            };
            let e = expect(route.need, a);
            cells.push(Some(
                run.record(true, &label, route.path, a, e, &sent, &reply),
            ));
        }
        run.rows.push(Row {
            route: label,
            cells,
        });
    }
}

fn print_table(run: &Run, attempts: &[Attempt]) {
    let width = run.rows.iter().map(|r| r.route.len()).max().unwrap_or(10);
    let mut out = format!("{:width$}", "route \\ caller");
    for a in attempts {
        out.push_str(&format!(" {}", a.label));
    }
    out.push('\n');
    for r in &run.rows {
        out.push_str(&format!("{:width$}", r.route));
        for (a, c) in attempts.iter().zip(&r.cells) {
            let cell = match c {
                None => "·".to_owned(),
                Some(c) => format!(
                    "{}{}{}",
                    c.status,
                    if c.ok { "" } else { "!" },
                    if c.leaked { "L" } else { "" }
                ),
            };
            out.push_str(&format!(" {cell:>w$}", w = a.label.len()));
        }
        out.push('\n');
    }
    println!(
        "{out}(! = not the expected status, L = leaked another workspace's data, · = not applicable)"
    );
}

/// Workspace A (owner, admin, manager, member, viewer) and B (its admin),
/// a platform admin, everyone signed in, each workspace's shared objects, and
/// the programs' credentials: API tokens (live and revoked) and an expired
/// access JWT.
async fn world() -> Run {
    let env = Env::new();
    let mut ids = Vec::new();
    for r in ROLES {
        ids.push((r, env.create_user(email_of(Who::A(r)), r.as_str())));
    }
    let a_owner = ids
        .iter()
        .find(|(r, _)| *r == Role::Owner)
        .unwrap()
        .1
        .clone();
    let b_owner = env.create_user(email_of(Who::OtherAdmin), "B admin");
    let out = env.cli(
        &[
            "user",
            "create",
            "--email",
            email_of(Who::Staff),
            "--platform-admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a_name = format!("IsoWs-A-{}", rand_hex());
    let b_name = format!("IsoWs-B-{}", rand_hex());
    let a_ws = env.create_workspace(&a_name, email_of(Who::A(Role::Owner)));
    for r in &ROLES[..4] {
        env.add_member(&a_ws, email_of(Who::A(*r)), r.as_str());
    }
    let b_ws = env.create_workspace(&b_name, email_of(Who::OtherAdmin));
    // An access JWT of A's owner from a server whose clock is two hours
    // behind: it expired (10 minutes after it was issued) long before the
    // main server starts. The signing key lives in control.db, so the main
    // server finds the signature good and refuses the token for its age.
    let expired_jwt = {
        let past = env.start_with(&[("AURA_TEST_CLOCK_OFFSET", "-7200")]);
        let r = send(
            client(&past)
                .post(past.url("/api/v1/auth/token"))
                .json(&json!({"email": email_of(Who::A(Role::Owner)), "password": PASSWORD})),
        )
        .await;
        assert_eq!(r.status, 200, "token from the past: {}", r.body);
        let r: Value = serde_json::from_str(&r.body).unwrap();
        let jwt = r["access_token"].as_str().unwrap().to_owned();
        // Good while it was young: only its age can refuse it later.
        let me = send(client(&past).get(past.url("/api/v1/me")).bearer_auth(&jwt)).await;
        assert_eq!(me.status, 200, "the JWT in its time: {}", me.body);
        past.stop();
        jwt
    };
    // Invitation acceptance is limited per IP; the matrix sends many.
    let server = env.start_with(&[("AURA_AUTH__REGISTRATIONS_PER_IP", "100000")]);

    let mut callers = Vec::new();
    let anon = client(&server);
    let anon_csrf = common::page_csrf(&anon, &server.url("/login")).await;
    callers.push(Caller {
        who: Who::Anon,
        client: anon,
        csrf: anon_csrf,
    });
    let mut whos: Vec<Who> = ROLES.iter().map(|r| Who::A(*r)).collect();
    whos.extend([Who::OtherAdmin, Who::Staff]);
    for who in whos {
        let (client, csrf) = signed_in(&server, email_of(who)).await;
        callers.push(Caller { who, client, csrf });
    }
    let a_canary = format!("ISOCANARY-A-{}", rand_hex());
    let b_canary = format!("ISOCANARY-B-{}", rand_hex());
    let owner_of = |who: Who| &callers.iter().find(|c| c.who == who).unwrap().client;
    let a_shared = make_objs(
        &server,
        owner_of(Who::A(Role::Owner)),
        &a_ws,
        &a_canary,
        &a_owner,
    )
    .await;
    let b_shared = make_objs(
        &server,
        owner_of(Who::OtherAdmin),
        &b_ws,
        &b_canary,
        &b_owner,
    )
    .await;
    // The programs' tokens, made by each workspace's owner.
    let (a_owner_c, b_owner_c) = (
        owner_of(Who::A(Role::Owner)).clone(),
        owner_of(Who::OtherAdmin).clone(),
    );
    let scoped = |scope: &str| json!({"name": format!("Matrix {scope} token"), "scope": scope});
    let a_admin = make_token(&server, &a_owner_c, &a_ws, scoped("admin")).await;
    let a_viewer = make_token(&server, &a_owner_c, &a_ws, scoped("viewer")).await;
    let b_token = make_token(&server, &b_owner_c, &b_ws, scoped("admin")).await;
    let revoked = make_token(&server, &a_owner_c, &a_ws, scoped("owner")).await;
    let me = send(
        client(&server)
            .get(server.url("/api/v1/me"))
            .bearer_auth(&revoked.1),
    )
    .await;
    assert_eq!(
        me.status, 200,
        "the token before its revocation: {}",
        me.body
    );
    let del = send(
        a_owner_c.delete(server.url(&format!("/api/v1/workspaces/{a_ws}/tokens/{}", revoked.0))),
    )
    .await;
    assert_eq!(del.status, 204, "revoking a token: {}", del.body);
    for (who, credential) in [
        (Who::Token(Role::Admin), &a_admin.1),
        (Who::Token(Role::Viewer), &a_viewer.1),
        (Who::OtherToken, &b_token.1),
        (Who::RevokedToken, &revoked.1),
        (Who::ExpiredJwt, &expired_jwt),
    ] {
        let (client, csrf) = bearer(&server, credential).await;
        callers.push(Caller { who, client, csrf });
    }
    // A token's secret is the workspace's data; its id, like its holder's,
    // is in the platform audit log.
    let data = |c: &str, o: &Objs, tokens: &[&(String, String)]| {
        let mut d = vec![c.to_owned()];
        d.extend(o.data());
        d.extend(tokens.iter().map(|t| t.1.clone()));
        d
    };
    let meta = |o: &Objs, tokens: &[&(String, String)]| {
        let mut m = o.meta().to_vec();
        m.extend(tokens.iter().map(|t| t.0.clone()));
        m
    };
    let a_tokens = [&a_admin, &a_viewer, &revoked];
    let mut a_meta = vec![a_ws.clone(), a_name.clone()];
    a_meta.extend(meta(&a_shared, &a_tokens));
    for (r, id) in &ids {
        a_meta.push(id.clone());
        a_meta.push(email_of(Who::A(*r)).to_owned());
    }
    let a = Workspace {
        data: data(&a_canary, &a_shared, &a_tokens),
        meta: a_meta,
        id: a_ws,
        canary: a_canary,
        owner_id: a_owner,
        shared: a_shared,
    };
    let b = Workspace {
        data: data(&b_canary, &b_shared, &[&b_token]),
        meta: [
            vec![
                b_ws.clone(),
                b_name.clone(),
                b_owner.clone(),
                email_of(Who::OtherAdmin).to_owned(),
            ],
            meta(&b_shared, &[&b_token]),
        ]
        .concat(),
        id: b_ws,
        canary: b_canary,
        owner_id: b_owner,
        shared: b_shared,
    };

    Run {
        _env: env,
        server,
        callers,
        a,
        b,
        rows: Vec::new(),
        failures: Vec::new(),
        leaks: 0,
        requests: 0,
        a_canary_seen: false,
    }
}

#[tokio::test]
async fn every_route_times_every_caller() {
    let started = Instant::now();
    let mut run = world().await;
    // The routes the app has, against the routes this test knows.
    let mut failures = Vec::new();
    let spec: Value =
        common::get_json(&run.callers[0].client, run.server.url("/api/openapi.json")).await;
    let mut in_spec = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            in_spec.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let api_routes = api_table();
    let in_table: BTreeSet<String> = api_routes
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        in_table.len(),
        api_routes.len(),
        "duplicate API table entries"
    );
    for missing in in_spec.difference(&in_table) {
        failures.push(format!(
            "API route {missing} is in the OpenAPI document but has no entry in api_table()"
        ));
    }
    for stale in in_table.difference(&in_spec) {
        failures.push(format!(
            "api_table() has an entry for {stale}, which the OpenAPI document does not list"
        ));
    }
    let ui_routes = ui_table();
    let ui_known: BTreeSet<&str> = aura::web::UI_FORMS.iter().map(|f| f.path).collect();
    let ui_in_table: BTreeSet<&str> = ui_routes.iter().map(|r| r.path).collect();
    assert_eq!(
        ui_in_table.len(),
        ui_routes.len(),
        "duplicate UI table entries"
    );
    for missing in ui_known.difference(&ui_in_table) {
        failures.push(format!(
            "UI form route {missing} is in aura::web::UI_FORMS but has no entry in ui_table()"
        ));
    }
    for stale in ui_in_table.difference(&ui_known) {
        failures.push(format!(
            "ui_table() has an entry for {stale}, which aura::web::UI_FORMS does not list"
        ));
    }
    let pages = ui_pages();
    let page_paths: BTreeSet<&str> = pages.iter().map(|r| r.path).collect();
    assert_eq!(page_paths.len(), pages.len(), "duplicate page entries");
    let router = router_literals();
    for lit in &router {
        let known = ui_known.contains(lit)
            || page_paths.contains(lit)
            || NOT_PAGES.iter().any(|(p, _)| p == lit);
        if !known {
            failures.push(format!(
                "{lit} appears in src/web/mod.rs but is neither a form route nor in ui_pages() or NOT_PAGES"
            ));
        }
    }
    for stale in page_paths.iter().filter(|p| !router.contains(*p)) {
        failures.push(format!(
            "ui_pages() has an entry for {stale}, which src/web/mod.rs does not mention"
        ));
    }
    let mut bad_params = BTreeSet::new();
    for r in ui_routes.iter().chain(&pages) {
        let segs: BTreeSet<&str> = r
            .path
            .split('/')
            .filter(|s| s.starts_with(':') || s.starts_with('*'))
            .collect();
        let named: BTreeSet<&str> = r.params.iter().map(|(n, _)| *n).collect();
        if segs != named {
            bad_params.insert(r.path);
            failures.push(format!(
                "UI entry {}: params {named:?} do not match the path's {segs:?}",
                r.path
            ));
        }
    }
    let api_routes: Vec<ApiRoute> = api_routes
        .into_iter()
        .filter(|r| in_spec.contains(&format!("{} {}", r.method, r.path)))
        .collect();
    let ui_routes: Vec<UiRoute> = ui_routes
        .into_iter()
        .filter(|r| ui_known.contains(r.path) && !bad_params.contains(r.path))
        .collect();
    let pages: Vec<UiRoute> = pages
        .into_iter()
        .filter(|r| router.contains(r.path) && !bad_params.contains(r.path))
        .collect();

    let attempts = attempts();
    run.failures = failures;
    run_api(&mut run, &api_routes, &attempts).await;
    run_ui(&mut run, &ui_routes, &attempts).await;
    run_ui(&mut run, &pages, &attempts).await;

    print_table(&run, &attempts);
    println!(
        "{} API routes, {} UI form routes, {} pages, {} attempts, {} leaks, {:.1}s",
        api_routes.len(),
        ui_routes.len(),
        pages.len(),
        run.requests,
        run.leaks,
        started.elapsed().as_secs_f64()
    );
    assert!(
        run.a_canary_seen,
        "A's canary never reached A's own members: the leak check would be vacuous"
    );
    assert!(
        run.failures.is_empty(),
        "{} problem(s), {} leak(s):\n{}",
        run.failures.len(),
        run.leaks,
        run.failures.join("\n")
    );
    run.server.stop();
}

/// Ids of another workspace inside request bodies and forms (relation targets
/// and values, member fields, owning teams, team members, the service account
/// a new API token is for) are refused exactly like ids that exist nowhere:
/// the same status and the same answer, so a caller cannot even tell that
/// they exist.
#[tokio::test]
async fn another_workspaces_ids_in_bodies_are_unknown_ids() {
    let run = world().await;
    let owner = run.caller(Who::A(Role::Owner));
    let (c, csrf) = (&owner.client, owner.csrf.as_str());
    let (a, b) = (&run.a, &run.b);
    let api = |p: &str| run.server.url(&format!("/api/v1/workspaces/{}{p}", a.id));
    let ui = |p: &str| run.server.url(&format!("/w/{}{p}", a.id));

    // A collection of A with a relation to A's own collection and a member field.
    let links = send(c.post(api("/collections")).json(&json!({
        "name": "Links",
        "fields": [
            {"name": "Rel", "type": "relation", "collection": a.shared.collection},
            {"name": "Who", "type": "member"}
        ]
    })))
    .await;
    assert_eq!(links.status, 201, "{}", links.body);
    let links: Value = serde_json::from_str(&links.body).unwrap();
    let links_id = links["id"].as_str().unwrap().to_owned();
    let rel_field = links["fields"][0]["id"].as_str().unwrap().to_owned();
    let who_field = links["fields"][1]["id"].as_str().unwrap().to_owned();
    let rec = send(
        c.post(api(&format!("/collections/{links_id}/records")))
            .json(&json!({"values": {"Rel": a.shared.record, "Who": a.owner_id}})),
    )
    .await;
    assert_eq!(rec.status, 201, "{}", rec.body);
    let rec: Value = serde_json::from_str(&rec.body).unwrap();
    let rec_id = rec["id"].as_str().unwrap().to_owned();

    type Build<'a> = Box<dyn Fn(&str) -> reqwest::RequestBuilder + 'a>;
    let records = api(&format!("/collections/{links_id}/records"));
    let import = api(&format!("/collections/{links_id}/import"));
    let form = |pairs: Vec<(String, String)>| {
        let mut f = pairs;
        f.push(("csrf".into(), csrf.to_owned()));
        f
    };
    let cases: Vec<(&str, &str, Build)> = vec![
        (
            "relation target of a new collection",
            &b.shared.collection,
            Box::new(|id| {
                c.post(api("/collections")).json(&json!({"name": "Bad link",
                    "fields": [{"name": "Rel", "type": "relation", "collection": id}]}))
            }),
        ),
        (
            "relation target added to a collection",
            &b.shared.collection,
            Box::new(|id| {
                c.patch(api(&format!("/collections/{links_id}"))).json(
                    &json!({"fields": [{"name": "Rel2", "type": "relation", "collection": id}]}),
                )
            }),
        ),
        (
            "owning team of a new collection",
            &b.shared.team,
            Box::new(|id| {
                c.post(api("/collections"))
                    .json(&json!({"name": "Bad team", "team_id": id,
                    "fields": [{"name": "N", "type": "text"}]}))
            }),
        ),
        (
            "relation value of a new record",
            &b.shared.record,
            Box::new(|id| c.post(&records).json(&json!({"values": {"Rel": id}}))),
        ),
        (
            "relation value of a record update",
            &b.shared.record,
            Box::new(|id| {
                c.patch(format!("{records}/{rec_id}"))
                    .json(&json!({"values": {"Rel": id}}))
            }),
        ),
        (
            "member value of a new record",
            &b.owner_id,
            Box::new(|id| c.post(&records).json(&json!({"values": {"Who": id}}))),
        ),
        (
            "relation value in a CSV import",
            &b.shared.record,
            Box::new(|id| {
                c.post(&import)
                    .header("content-type", "text/csv")
                    .body(format!("Rel\n{id}\n"))
            }),
        ),
        (
            "member value in a CSV import",
            &b.owner_id,
            Box::new(|id| {
                c.post(&import)
                    .header("content-type", "text/csv")
                    .body(format!("Who\n{id}\n"))
            }),
        ),
        (
            "service account of a new API token",
            &b.shared.member,
            Box::new(|id| {
                c.post(api("/tokens"))
                    .json(&json!({"name": "Bad holder", "scope": "viewer", "service_account": id}))
            }),
        ),
        (
            "team member",
            &b.owner_id,
            Box::new(|id| {
                c.put(api(&format!("/teams/{}/members/{id}", a.shared.team)))
                    .json(&json!({"role": "member"}))
            }),
        ),
        (
            "UI: team member",
            &b.owner_id,
            Box::new(|id| {
                c.post(ui(&format!("/teams/{}/members", a.shared.team)))
                    .form(&form(pairs(&[("user_id", id), ("role", "member")])))
            }),
        ),
        (
            "UI: relation value of a new record",
            &b.shared.record,
            Box::new(|id| {
                c.post(ui(&format!("/c/{links_id}/records")))
                    .form(&form(vec![(format!("v.{rel_field}"), id.to_owned())]))
            }),
        ),
        (
            "UI: member value of a new record",
            &b.owner_id,
            Box::new(|id| {
                c.post(ui(&format!("/c/{links_id}/records")))
                    .form(&form(vec![(format!("v.{who_field}"), id.to_owned())]))
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (what, foreign, build) in &cases {
        let nowhere = uuid::Uuid::now_v7().to_string();
        let theirs = send(build(foreign)).await;
        let none = send(build(&nowhere)).await;
        println!(
            "{what}: another workspace's id → {}, an unknown id → {}",
            theirs.status, none.status
        );
        if theirs.status < 400 {
            failures.push(format!(
                "{what}: another workspace's id was accepted ({}): {}",
                theirs.status, theirs.body
            ));
        }
        let (t, n) = (
            theirs.body.replace(*foreign, "<id>"),
            none.body.replace(&nowhere, "<id>"),
        );
        if theirs.status != none.status || t != n {
            failures.push(format!(
                "{what}: another workspace's id answers differently from an unknown one:\n  theirs ({}): {t}\n  unknown ({}): {n}",
                theirs.status, none.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
