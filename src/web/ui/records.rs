//! The records UI: a workspace's collections and the record table (pages,
//! sorting, search, CSV export and import). The schema editor is in
//! `schema`, the record form in `record_form`. Every page goes through the
//! same `records` functions as the API, so the same checks apply.

use maud::html;
use poem::http::StatusCode;
use poem::web::Query;
use poem::{Response, handler};
use serde::Deserialize;

use super::forms::{Id, breadcrumbs, when};
use crate::access::op;
use crate::access::permissions::{Action, Resource};
use crate::ids::CollectionId;
use crate::records;
use crate::records::schema::{Field, RecordAction};
use crate::records::values;
use crate::web::tenant::TenantPage;

#[handler]
pub async fn workspace_home(ctx: TenantPage<op::CollectionRead>) -> poem::Result<Response> {
    let ws = ctx.ws();
    let colls = records::list_collections(&ctx).await?;
    let teams = records::teams::list(&ctx).await?;
    let receivers = crate::integrations::webhooks::receiver_hosts(&ctx).await?;
    let team_name = |id: &str| {
        teams
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    };
    let can_create = ctx.may(Resource::Collection, Action::Create);
    ctx.page(StatusCode::OK, "Collections", |_| {
        html! {
            section.card {
                div.page-head {
                    h1 { "Collections" }
                    @if can_create { a.button id="new-collection" href=(format!("/w/{ws}/collections/new")) { "New collection" } }
                }
                @if colls.is_empty() {
                    p.muted { "No collections yet." }
                } @else {
                    table.list id="collections" {
                        thead { tr { th { "Name" } th { "Owner" } th { "Fields" } th { "Your access" } } }
                        tbody {
                            @for c in &colls {
                                tr {
                                    td { a href=(format!("/w/{ws}/c/{}", c.row.id)) { (c.row.def.name) } }
                                    td { @match &c.row.team_id { Some(t) => { "Team " (team_name(t)) }, None => { "Workspace" } } }
                                    td { (c.row.def.live_fields().count()) }
                                    td { span.badge { (c.role) } }
                                }
                            }
                        }
                    }
                }
                @if !receivers.is_empty() {
                    p.muted id="webhook-receivers" {
                        "This workspace's webhooks send data to: "
                        @for (i, h) in receivers.iter().enumerate() { @if i > 0 { ", " } code { (h) } }
                    }
                }
            }
        }
    })
    .await
}

#[derive(Deserialize, Default)]
pub struct TableQuery {
    q: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    /// Rows a page: one of `PAGE_SIZES` (else the first).
    limit: Option<u32>,
}

const PAGE_SIZES: [u32; 3] = [25, 50, 100];

const TABLE_COLUMNS: usize = 6;

#[handler]
pub async fn collection_page(
    ctx: TenantPage<op::RecordRead>,
    Id(cid): Id<CollectionId>,
    Query(tq): Query<TableQuery>,
) -> poem::Result<Response> {
    let (state, ws) = (ctx.state(), ctx.ws());
    let page_size = tq
        .limit
        .filter(|l| PAGE_SIZES.contains(l))
        .unwrap_or(PAGE_SIZES[0]);
    let finder = records::search::Finder {
        indexes: &state.indexes,
        bounds: &state.bounds,
    };
    let p = records::list_records(
        &ctx,
        finder,
        &cid,
        records::ListParams {
            limit: Some(i64::from(page_size)),
            cursor: tq.cursor.clone(),
            q: tq.q.clone(),
            sort: tq.sort.clone(),
        },
    )
    .await?;
    let v = &p.coll;
    let cols: Vec<&Field> = v.row.def.live_fields().take(TABLE_COLUMNS).collect();
    let q = tq.q.clone().unwrap_or_default();
    let writable = ctx.writable();
    let now = ctx.now();
    let base = format!("/w/{ws}/c/{}", v.row.id);
    let link = |extra: &[(&str, &str)]| {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if !q.is_empty() {
            pairs.push(("q", &q));
        }
        let size = page_size.to_string();
        if page_size != PAGE_SIZES[0] {
            pairs.push(("limit", &size));
        }
        pairs.extend_from_slice(extra);
        format!(
            "{base}?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    };
    // Times sort newest first on the first click, fields A to Z; a second
    // click turns the order round.
    let sort_link = |col: &str, desc_first: bool| {
        let next = if p.sort == format!("-{col}") {
            col.to_owned()
        } else if p.sort == col || desc_first {
            format!("-{col}")
        } else {
            col.to_owned()
        };
        link(&[("sort", &next)])
    };
    let sorted = |col: &str| {
        if p.sort == col {
            Some(("ascending", " ▲"))
        } else if p.sort == format!("-{col}") {
            Some(("descending", " ▼"))
        } else {
            None
        }
    };
    // Search hits come newest first: no field order is offered with `q`,
    // nor for a collection past the field sort's cap (it would be a 422).
    let field_sorts = q.is_empty() && records::sort::fits(&ctx, &v.row.id).await?;
    let next = p
        .next_cursor
        .as_ref()
        .map(|c| link(&[("sort", &p.sort), ("cursor", c)]));
    let api = format!("/api/v1/workspaces/{ws}/collections/{}", v.row.id);
    ctx.page(StatusCode::OK, &v.row.def.name, |token| {
        html! {
            section.card {
                (breadcrumbs(ws, None))
                div.page-head {
                    h1 { (v.row.def.name) }
                    div.actions {
                        @if writable && v.can(RecordAction::Create) { a.button id="new-record" href=(format!("{base}/new")) { "New record" } }
                        a.button.secondary href=(format!("{api}/export")) download { "Export CSV" }
                        @if writable && v.can_manage() { a.button.secondary href=(format!("{base}/schema")) { "Schema" } }
                    }
                }
                (super::schema_retention::notice(&v.row.def))
                form.search method="get" action=(base) {
                    input id="q" type="search" name="q" value=(q) placeholder="Search the searchable fields" aria-label="Search";
                    button type="submit" { "Search" }
                    @if !q.is_empty() { " " a href=(base) { "Clear" } }
                }
                @if p.items.is_empty() {
                    p.muted id="empty" { @if q.is_empty() { "No records yet." } @else { "No records match." } }
                } @else {
                    p.muted id="record-count" {
                        // A page and a "more" mark, not a full count: counting a
                        // sealed collection means reading all of it.
                        @if next.is_some() || tq.cursor.is_some() { "Showing " (p.items.len()) " records; there are more." }
                        @else { (p.items.len()) @if p.items.len() == 1 { " record" } @else { " records" } }
                    }
                    table.list id="records" {
                        thead { tr {
                            @for f in &cols {
                                @if field_sorts && records::sort::sortable(f.kind) {
                                    @let dir = sorted(&f.id);
                                    th aria-sort=[dir.map(|d| d.0)] { a href=(sort_link(&f.id, false)) { (f.name) @if let Some((_, arrow)) = dir { span aria-hidden="true" { (arrow) } } } }
                                } @else { th { (f.name) } }
                            }
                            @for (col, label) in [("created_at", "Created"), ("updated_at", "Updated")] {
                                @let dir = sorted(col);
                                th aria-sort=[dir.map(|d| d.0)] { a href=(sort_link(col, true)) { (label) @if let Some((_, arrow)) = dir { span aria-hidden="true" { (arrow) } } } }
                            }
                        } }
                        tbody {
                            @for r in &p.items {
                                tr {
                                    @for (i, f) in cols.iter().enumerate() {
                                        td {
                                            @let text = r.values.get(&f.id).map(|x| values::to_text(f, x)).unwrap_or_default();
                                            @if i == 0 {
                                                a href=(format!("{base}/r/{}", r.id)) { @if text.is_empty() { "(open)" } @else { (text) } }
                                            } @else { (text) }
                                        }
                                    }
                                    @if cols.is_empty() { td { a href=(format!("{base}/r/{}", r.id)) { "(open)" } } }
                                    td { (when(r.created_at / 1000, now)) }
                                    td { (when(r.updated_at / 1000, now)) }
                                }
                            }
                        }
                    }
                }
                div.actions {
                    @if tq.cursor.is_some() { a.button.secondary href=(link(&[("sort", &p.sort)])) { "First page" } }
                    @if let Some(n) = &next { a.button.secondary id="next-page" href=(n) { "Next page" } }
                    form.inline method="get" action=(base) id="page-size" {
                        @if !q.is_empty() { input type="hidden" name="q" value=(q); }
                        input type="hidden" name="sort" value=(p.sort);
                        label for="limit" { "Rows a page" }
                        select id="limit" name="limit" {
                            @for s in PAGE_SIZES { option value=(s) selected[s == page_size] { (s) } }
                        }
                        button.secondary type="submit" { "Show" }
                    }
                }
            }
            @if writable && v.can(RecordAction::Create) {
                section.card {
                    h2 { "Import CSV" }
                    p.muted { "The first row names the fields. All rows are imported, or none: every problem is listed with its line and column." }
                    form id="import" data-import=(format!("{api}/import")) {
                        input type="hidden" name="csrf" value=(token);
                        input id="import-file" type="file" accept=".csv,text/csv" required aria-label="CSV file";
                        button type="submit" { "Import" }
                    }
                    div id="import-result" {}
                }
            }
        }
    })
    .await
}
