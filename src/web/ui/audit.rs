//! The audit pages: search with filters and free text, entry detail with a
//! before/after diff, export links, and the chain's verification status. One
//! rendering for a workspace's chain and for the platform's.

use maud::{Markup, html};
use poem::web::{Path, Query, Redirect};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;
use serde_json::Value;

use super::admin_page::AdminPage;
use super::names::Names;
use crate::access::op;
use crate::audit::Actor;
use crate::audit::chains::Chain;
use crate::audit::search::{EntryView, SearchPage};
use crate::audit::service::{self, ChainStatus};
use crate::error::Error;
use crate::web::session::Admin;
use crate::web::tenant::TenantPage;
use poem::http::StatusCode;

#[derive(Deserialize, Default, Clone)]
pub struct Filters {
    q: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    ip: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

impl Filters {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("q", &self.q),
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("ip", &self.ip),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|s| !s.is_empty()).map(|s| (k, s)))
        .collect()
    }

    fn query_string(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs = self.pairs();
        pairs.extend_from_slice(extra);
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// The search, with a person named by email or name in "Actor" turned
    /// into their id.
    fn params(&self, names: &Names) -> crate::error::Result<crate::audit::search::SearchParams> {
        let mut f = self.clone();
        if let Some(id) = f.actor.as_deref().and_then(|a| names.find_person(a)) {
            f.actor = Some(id);
        }
        service::params(
            f.q, f.actor, f.action, f.target, f.ip, f.from, f.to, f.cursor, None,
        )
    }
}

struct ChainPage<'a> {
    title: &'a str,
    base: String,
    export_base: String,
    filters: &'a Filters,
    page: &'a SearchPage,
    status: &'a ChainStatus,
    csrf: &'a str,
    names: &'a Names,
    /// Unix seconds: times show as "3 minutes ago", exact on hover.
    now: i64,
}

fn status_box(s: &ChainStatus, verify_action: &str, csrf: &str, now: i64) -> Markup {
    let when = |t: i64| super::forms::when(t, now);
    html! {
        section.card.status {
            h2 { "Integrity" }
            @match &s.last_verification {
                Some(v) if v.ok => p.ok-line { "Verified intact " (when(v.time)) " — " (v.entries) " entries." }
                Some(v) => p.error { "Verification FAILED " (when(v.time)) " at seq "
                    (v.first_bad_seq.map(|s| s.to_string()).unwrap_or_default()) ": " (v.reason.clone().unwrap_or_default()) }
                None => p.muted { "Not verified yet." }
            }
            p.muted {
                @match (s.checkpoint_seq, s.checkpoint_time) {
                    (Some(seq), Some(t)) => { "Newest signed checkpoint: seq " (seq) ", " (when(t)) ". " }
                    _ => { "No signed checkpoint yet. " }
                }
                "Entries are kept " (s.retention_days) " days."
            }
            form method="post" action=(verify_action) {
                (super::csrf_field(csrf))
                button type="submit" { "Verify now" }
            }
        }
    }
}

fn chain_page(p: ChainPage<'_>) -> Markup {
    let f = p.filters;
    html! {
        section.card {
            h1 { (p.title) }
            form.filters method="get" action=(p.base) {
                div.grid {
                    label { "Search" input type="search" name="q" value=(f.q.clone().unwrap_or_default()) placeholder="free text"; }
                    label { "Action" input name="action" value=(f.action.clone().unwrap_or_default()) placeholder="e.g. member or auth.login"; }
                    label { "Actor" input name="actor" value=(f.actor.clone().unwrap_or_default()) placeholder="name, email or system"; }
                    label { "Target" input name="target" value=(f.target.clone().unwrap_or_default()) placeholder="id or type:id"; }
                    label { "IP" input name="ip" value=(f.ip.clone().unwrap_or_default()); }
                    label { "From" input type="date" name="from" value=(f.from.clone().unwrap_or_default()); }
                    label { "To" input type="date" name="to" value=(f.to.clone().unwrap_or_default()); }
                }
                button type="submit" { "Search" }
                " "
                a.button.secondary href=(format!("{}?{}", p.export_base, f.query_string(&[("format", "ndjson")]))) { "Export NDJSON" }
                " "
                a.button.secondary href=(format!("{}?{}", p.export_base, f.query_string(&[("format", "csv")]))) { "Export CSV" }
            }
            @if p.page.items.is_empty() {
                p.muted { "No entries match." }
            } @else {
                table.list.audit {
                    thead { tr { th { "#" } th { "Time" } th { "Action" } th { "Actor" } th { "Target" } th { "IP" } } }
                    tbody {
                        @for e in &p.page.items {
                            tr {
                                td { a href=(format!("{}/{}", p.base, e.seq)) { (e.seq) } }
                                td { (super::forms::when(e.time_unix, p.now)) }
                                td { code.action { (e.action) } }
                                td { (p.names.person(&e.actor)) }
                                td { (p.names.target(e.target_type.as_deref(), e.target.as_deref())) }
                                td { (e.ip.clone().unwrap_or_default()) }
                            }
                        }
                    }
                }
                @if let Some(c) = &p.page.next_cursor {
                    p { a href=(format!("{}?{}", p.base, f.query_string(&[("cursor", c)]))) { "Older entries →" } }
                }
            }
        }
        (status_box(p.status, &format!("{}/verify", p.base), p.csrf, p.now))
    }
}

/// An entry's before/after side by side; a record's `values` one row a
/// field.
fn diff_rows(before: &Value, after: &Value) -> Vec<(String, String, String, bool)> {
    let flat = |v: &Value| -> Value {
        let mut out = serde_json::Map::new();
        for (k, x) in v.as_object().into_iter().flatten() {
            match (k.as_str(), x.as_object()) {
                ("values", Some(fields)) => {
                    for (f, y) in fields {
                        out.insert(f.clone(), y.clone());
                    }
                }
                _ => {
                    out.insert(k.clone(), x.clone());
                }
            }
        }
        Value::Object(out)
    };
    let (before, after) = (&flat(before), &flat(after));
    let keys: std::collections::BTreeSet<String> = [before, after]
        .iter()
        .filter_map(|v| v.as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    let show = |v: Option<&Value>| match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    keys.into_iter()
        .map(|k| {
            let b = show(before.get(&k));
            let a = show(after.get(&k));
            let changed = b != a;
            (k, b, a, changed)
        })
        .collect()
}

fn entry_page(e: &EntryView, back: &str, names: &Names, csrf: &str) -> Markup {
    html! {
        section.card {
            p { a href=(back) { "← Audit log" } }
            h1 { "Entry " (e.seq) ": " code { (e.action) } }
            @if let Some(undo) = names.undo_of(e) {
                form.inline method="post" action=(undo) id="restore-deleted" {
                    (super::csrf_field(csrf))
                    input type="hidden" name="entry" value=(e.seq);
                    p.muted { "This record is deleted; its values are kept in this entry." }
                    button type="submit" { "Restore this record" }
                }
            }
            table.kv {
                tr { th { "Time" } td { (e.time) } }
                tr { th { "Actor" } td { (e.actor_type) @if e.actor != e.actor_type { " " (names.person(&e.actor)) } } }
                tr { th { "Target" } td { (names.target(e.target_type.as_deref(), e.target.as_deref())) @if let Some(t) = &e.target { " " code.muted { (t) } } } }
                tr { th { "IP" } td { (e.ip.clone().unwrap_or_default()) } }
                tr { th { "User agent" } td { (e.user_agent.clone().unwrap_or_default()) } }
                @if let Some(r) = &e.impersonation_reason {
                    tr { th { "Impersonation reason" } td { (r) } }
                }
                tr { th { "Request id" } td { code { (e.request_id.clone().unwrap_or_default()) } } }
                tr { th { "Hash" } td { code.hash { (e.hash) } } }
                tr { th { "Previous hash" } td { code.hash { (e.prev_hash) } } }
            }
            h2 { "Change" }
            @let rows = diff_rows(&e.before, &e.after);
            @if e.withheld {
                p.muted { "Withheld: this entry holds values of a collection whose records you may not read. Those on its team (or with its read permission) see them." }
            } @else if rows.is_empty() {
                p.muted { "This entry records an event, not a change of state." }
            } @else {
                table.list.diff {
                    thead { tr { th { "Field" } th { "Before" } th { "After" } } }
                    tbody {
                        @for (k, b, a, changed) in rows {
                            tr class=(if changed { "changed" } else { "" }) {
                                td title=(k) { (names.key(&k)) }
                                td.before { (names.value(&k, &b)) } td.after { (names.value(&k, &a)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[handler]
pub async fn workspace_audit(
    ctx: TenantPage<op::AuditRead>,
    Query(filters): Query<Filters>,
) -> poem::Result<Response> {
    let (state, ws) = (ctx.state(), ctx.ws());
    let mut names = Names::workspace(state, &ctx).await?;
    let page = service::search_workspace(state.audit_deps(), &ctx, filters.params(&names)?).await?;
    names.add_records(&ctx, &page.items).await;
    let status = service::status_workspace(state.audit_deps(), &ctx).await?;
    let body = chain_page(ChainPage {
        title: "Audit log",
        base: format!("/w/{ws}/audit"),
        export_base: format!("/api/v1/workspaces/{ws}/audit/export"),
        filters: &filters,
        page: &page,
        status: &status,
        csrf: ctx.csrf(),
        names: &names,
        now: ctx.now(),
    });
    ctx.page(StatusCode::OK, "Audit log", |_| body).await
}

#[handler]
pub async fn workspace_entry(
    ctx: TenantPage<op::AuditRead>,
    Path((ws, seq)): Path<(String, String)>,
) -> poem::Result<Response> {
    let seq: i64 = seq.parse().map_err(|_| Error::NotFound("audit entry"))?;
    let e = service::entry_workspace(&ctx, seq).await?;
    let mut names = Names::workspace(ctx.state(), &ctx).await?;
    names.add_records(&ctx, std::slice::from_ref(&e)).await;
    let back = format!("/w/{ws}/audit");
    ctx.page(StatusCode::OK, "Audit entry", |token| {
        entry_page(&e, &back, &names, token)
    })
    .await
}

#[handler]
pub async fn workspace_verify(ctx: TenantPage<op::AuditVerify>) -> poem::Result<Response> {
    service::verify_now(
        ctx.state().audit_deps(),
        Chain::Workspace(ctx.db.id()),
        ctx.actor.clone(),
        &ctx.meta,
    )
    .await?;
    Ok(Redirect::see_other(format!("/w/{}/audit", ctx.ws())).into_response())
}

#[handler]
pub async fn platform_audit(
    p: AdminPage<'_>,
    Query(filters): Query<Filters>,
) -> poem::Result<Response> {
    let admin = &p.admin;
    let named = Names::accounts(&admin.state, &[], filters.actor.as_deref()).await?;
    let page = service::search_platform(admin.state.audit_deps(), filters.params(&named)?).await?;
    let ids: Vec<&str> = page
        .items
        .iter()
        .flat_map(|e| [Some(e.actor.as_str()), e.target.as_deref()])
        .flatten()
        .collect();
    let names = Names::accounts(&admin.state, &ids, None).await?;
    let status = service::status_platform(admin.state.audit_deps()).await?;
    let (csrf, _) = crate::web::csrf::token_for(p.req, &admin.state);
    let st = crate::web::api::platform::status(&admin.state);
    let tls_box = maud::html! {
        section.card.tls {
            h2 { "Appliance" }
            p { "Version " (st.version) " · TLS " strong { (st.tls_mode) }
                @if !st.region.is_empty() { " · region " (st.region) } }
            @if let Some(e) = &st.tls_last_event { p.muted { "Last certificate event: " (e) } }
            @if let Some(e) = &st.tls_last_error { p.error { "Certificate renewal failing (the current certificate keeps serving): " (e) } }
        }
    };
    let body = chain_page(ChainPage {
        title: "Platform audit log",
        base: "/platform/audit".into(),
        export_base: "/api/v1/platform/audit/export".into(),
        filters: &filters,
        page: &page,
        status: &status,
        csrf: &csrf,
        names: &names,
        now: admin.state.clock.unix(),
    });
    p.page(StatusCode::OK, "Platform audit", |_| {
        maud::html! { (tls_box) (body) }
    })
    .await
}

#[handler]
pub async fn platform_entry(p: AdminPage<'_>, Path(seq): Path<String>) -> poem::Result<Response> {
    let admin = &p.admin;
    let seq: i64 = seq.parse().map_err(|_| Error::NotFound("audit entry"))?;
    let e = service::entry_platform(&admin.state.control, seq).await?;
    let ids: Vec<&str> = [Some(e.actor.as_str()), e.target.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let names = Names::accounts(&admin.state, &ids, None).await?;
    // Platform entries restore nothing: no CSRF token needed.
    let body = entry_page(&e, "/platform/audit", &names, "");
    p.page(StatusCode::OK, "Audit entry", |_| body).await
}

#[handler]
pub async fn platform_verify(admin: Admin) -> poem::Result<Response> {
    service::verify_now(
        admin.state.audit_deps(),
        Chain::Platform,
        Actor::User(admin.who.user_id),
        &admin.meta,
    )
    .await?;
    Ok(Redirect::see_other("/platform/audit").into_response())
}
