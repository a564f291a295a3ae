//! The records UI: a workspace's collections, the schema editor, the record
//! table (pages, sorting, search), the record form generated from the schema
//! (hints in the browser, truth on the server), history with restore, and CSV
//! export and import. Every page goes through the same `records` functions
//! as the API, so the same checks apply.

use std::collections::HashMap;
use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Path, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{csrf_field, html_response, layout};
use crate::access::Role;
use crate::access::enter::{TenantCtx, enter};
use crate::access::permissions::{Action, Resource, allows};
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::error::{Error, FieldError};
use crate::records::schema::{Field, FieldInput, FieldType, Permissions, RecordAction};
use crate::records::values::{self, Values};
use crate::records::{self, CollectionChange, NewCollection, Visible, rfc3339_ms};
use crate::store::records::{self as rstore, RecordRow};
use crate::web::csrf;
use crate::web::session::SignedIn;

// ---- shared ----------------------------------------------------------------

/// The form fields of a posted form, in order, repeated keys kept.
pub fn form_pairs(req: &Request) -> Vec<(String, String)> {
    let body = req
        .data::<csrf::FormBody>()
        .map(|b| b.0.as_slice())
        .unwrap_or_default();
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn one<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn every<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A signed-in page with the header and the page's CSRF token.
pub async fn page(
    req: &Request,
    state: &AppState,
    who: &SignedIn,
    status: StatusCode,
    title: &str,
    body: impl FnOnce(&str) -> Markup,
) -> poem::Result<Response> {
    let user = who.0.user_id;
    let control = Arc::clone(&state.control);
    let email = state
        .control
        .db
        .read_async(move |c| crate::store::control::get_user(c, &control.keys, user))
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    let (token, _) = csrf::token_for(req, state);
    let markup = body(&token);
    Ok(html_response(
        status,
        layout(
            title,
            &super::Chrome {
                email: Some(&email),
                csrf: &token,
            },
            markup,
        ),
    ))
}

pub async fn enter_ui(
    state: &AppState,
    who: &SignedIn,
    ws: &str,
    needs: Role,
    action: &'static str,
    meta: &RequestMeta,
) -> poem::Result<TenantCtx> {
    Ok(enter(state, &who.0, ws, needs, action, meta).await?)
}

fn see_other(url: String) -> Response {
    Redirect::see_other(url).into_response()
}

fn errors_box(errors: &[FieldError]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.error role="alert" {
                p { "Nothing was saved. Please fix:" }
                ul { @for e in errors { li { strong { (e.field) } " " (e.message) } } }
            }
        }
    }
}

fn breadcrumbs(ws: &str, coll: Option<&Visible>) -> Markup {
    html! {
        p.crumbs {
            a href="/workspaces" { "Workspaces" } " › "
            a href=(format!("/w/{ws}")) { "Collections" }
            @if let Some(c) = coll {
                " › " a href=(format!("/w/{ws}/c/{}", c.row.id)) { (c.row.def.name) }
            }
        }
    }
}

// ---- workspace home: the collection list -----------------------------------

#[handler]
pub async fn workspace_home(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path(ws): Path<String>,
) -> poem::Result<Response> {
    let ctx = enter_ui(&state, &who, &ws, Role::Viewer, "collection.read", &meta).await?;
    let colls = records::list_collections(&ctx).await?;
    let teams = records::teams::list(&ctx).await?;
    let team_name = |id: &str| {
        teams
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    };
    let can_create = allows(ctx.role, Resource::Collection, Action::Create);
    let admin = ctx.role.at_least(Role::Admin);
    page(req, &state, &who, StatusCode::OK, "Collections", |_| {
        html! {
            section.card {
                p.crumbs { a href="/workspaces" { "Workspaces" } }
                h1 { "Collections" }
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
                p.actions {
                    @if can_create { a.button id="new-collection" href=(format!("/w/{ws}/collections/new")) { "New collection" } }
                    a.button.secondary href=(format!("/w/{ws}/teams")) { "Teams" }
                    @if admin { a.button.secondary href=(format!("/w/{ws}/audit")) { "Audit log" } }
                }
            }
        }
    })
    .await
}

// ---- the schema editor -----------------------------------------------------

const NEW_ROWS: usize = 3;

fn type_select(name: &str, selected: Option<FieldType>, disabled: bool) -> Markup {
    html! {
        select name=(name) disabled[disabled] {
            @if selected.is_none() { option value="" { "— type —" } }
            @for t in FieldType::ALL {
                option value=(t.as_str()) selected[Some(t) == selected] { (t.as_str().replace('_', " ")) }
            }
        }
    }
}

fn field_row(i: usize, f: Option<&Field>, relation_targets: &[(String, String)]) -> Markup {
    let p = |k: &str| format!("f{i}.{k}");
    let flag = |k: &str, on: bool, label: &str| {
        html! { label.check { input type="checkbox" name=(p(k)) value="on" checked[on]; " " (label) } }
    };
    html! {
        tr.field-row {
            td {
                @if let Some(f) = f { input type="hidden" name=(p("id")) value=(f.id); input type="hidden" name=(p("type")) value=(f.kind.as_str()); }
                input name=(p("name")) value=(f.map(|f| f.name.as_str()).unwrap_or("")) placeholder="Field name" aria-label="Field name";
            }
            td { (type_select(&p("type"), f.map(|f| f.kind), f.is_some())) }
            td.flags {
                (flag("required", f.is_some_and(|f| f.required), "required"))
                (flag("unique", f.is_some_and(|f| f.unique), "unique"))
                (flag("pii", f.is_some_and(|f| f.pii), "personal data"))
                (flag("searchable", f.is_some_and(|f| f.searchable), "searchable"))
                @if f.is_some() { (flag("retired", f.is_some_and(|f| f.retired), "retired")) }
            }
            td {
                input name=(p("options")) value=(f.map(|f| f.options.join(", ")).unwrap_or_default()) placeholder="choices, comma separated (select)";
                input name=(p("currency")) value=(f.and_then(|f| f.currency.clone()).unwrap_or_default()) placeholder="currency, e.g. EUR (money)" maxlength="3";
                @if f.is_none_or(|f| f.kind == FieldType::Relation) {
                    select name=(p("collection")) disabled[f.is_some()] aria-label="Related collection" {
                        option value="" { "— related collection (relation) —" }
                        @for (id, name) in relation_targets {
                            option value=(id) selected[f.and_then(|f| f.collection.as_deref()) == Some(id.as_str())] { (name) }
                        }
                    }
                }
            }
        }
    }
}

fn permissions_table(p: &Permissions) -> Markup {
    let rows = [
        ("read", &p.read),
        ("create", &p.create),
        ("update", &p.update),
        ("delete", &p.delete),
    ];
    html! {
        table.list.perms {
            input type="hidden" name="perm.present" value="1";
            thead { tr { th { "Records" } @for r in Role::ALL { th { (r) } } } }
            tbody {
                @for (action, roles) in rows {
                    tr {
                        td { (action) }
                        @for r in Role::ALL {
                            td { input type="checkbox" name=(format!("perm.{action}")) value=(r.as_str()) checked[roles.contains(&r)] aria-label=(format!("{r} may {action}")); }
                        }
                    }
                }
            }
        }
    }
}

struct SchemaForm<'a> {
    ws: &'a str,
    coll: Option<&'a Visible>,
    name: &'a str,
    teams: &'a [(String, String)],
    relation_targets: &'a [(String, String)],
    permissions: &'a Permissions,
    errors: &'a [FieldError],
}

fn schema_form(f: SchemaForm<'_>, token: &str) -> Markup {
    let (action, fields): (String, &[Field]) = match f.coll {
        Some(c) => (
            format!("/w/{}/c/{}/schema", f.ws, c.row.id),
            &c.row.def.fields,
        ),
        None => (format!("/w/{}/collections", f.ws), &[]),
    };
    html! {
        section.card {
            (breadcrumbs(f.ws, f.coll))
            h1 { @if f.coll.is_some() { "Schema" } @else { "New collection" } }
            (errors_box(f.errors))
            form id="schema" method="post" action=(action) {
                (csrf_field(token))
                label for="name" { "Name" }
                input id="name" name="name" value=(f.name) required maxlength="64";
                @if f.coll.is_none() {
                    label for="team" { "Owner" }
                    select id="team" name="team_id" {
                        option value="" { "The whole workspace" }
                        @for (id, name) in f.teams { option value=(id) { "Team " (name) } }
                    }
                }
                h2 { "Fields" }
                p.muted { "A field's type is fixed once created; rename, retire or add fields freely. Existing records stay valid." }
                table.list id="fields" {
                    thead { tr { th { "Name" } th { "Type" } th { "Flags" } th { "Settings" } } }
                    tbody {
                        @for (i, fd) in fields.iter().enumerate() { (field_row(i, Some(fd), f.relation_targets)) }
                        @for i in fields.len()..fields.len() + NEW_ROWS { (field_row(i, None, f.relation_targets)) }
                    }
                }
                button.secondary type="button" data-add-row="#fields" { "Add another field" }
                h2 { "Who may work with records" }
                (permissions_table(f.permissions))
                button type="submit" { "Save" }
            }
        }
    }
}

/// Reads the schema editor's rows. Blank new rows are skipped.
fn parse_fields(pairs: &[(String, String)]) -> Vec<FieldInput> {
    let mut idx: Vec<usize> = pairs
        .iter()
        .filter_map(|(k, _)| k.strip_prefix('f')?.split_once('.')?.0.parse().ok())
        .collect();
    idx.sort_unstable();
    idx.dedup();
    idx.into_iter()
        .filter_map(|i| {
            let get = |k: &str| one(pairs, &format!("f{i}.{k}")).map(str::trim);
            let flag = |k: &str| get(k) == Some("on");
            let id = get("id").filter(|s| !s.is_empty()).map(str::to_owned);
            let name = get("name").unwrap_or_default().to_owned();
            if id.is_none() && name.is_empty() {
                return None;
            }
            Some(FieldInput {
                id,
                name,
                kind: get("type").unwrap_or_default().to_owned(),
                required: flag("required"),
                unique: flag("unique"),
                pii: flag("pii"),
                searchable: flag("searchable"),
                retired: flag("retired"),
                options: get("options")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                currency: get("currency")
                    .filter(|s| !s.is_empty())
                    .map(str::to_uppercase),
                collection: get("collection")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            })
        })
        .collect()
}

fn parse_permissions(pairs: &[(String, String)]) -> Permissions {
    let roles = |action: &str| {
        every(pairs, &format!("perm.{action}"))
            .into_iter()
            .filter_map(|r| r.parse::<Role>().ok())
            .collect()
    };
    Permissions {
        read: roles("read"),
        create: roles("create"),
        update: roles("update"),
        delete: roles("delete"),
    }
}

async fn relation_targets(ctx: &TenantCtx) -> poem::Result<Vec<(String, String)>> {
    Ok(records::list_collections(ctx)
        .await?
        .into_iter()
        .map(|c| (c.row.id, c.row.def.name))
        .collect())
}

async fn team_choices(ctx: &TenantCtx) -> poem::Result<Vec<(String, String)>> {
    Ok(records::teams::list(ctx)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

#[handler]
pub async fn new_collection(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path(ws): Path<String>,
) -> poem::Result<Response> {
    let need = crate::access::permissions::needs(Resource::Collection, Action::Create);
    let ctx = enter_ui(&state, &who, &ws, need, "collection.create", &meta).await?;
    let teams = team_choices(&ctx).await?;
    let targets = relation_targets(&ctx).await?;
    let perms = Permissions::default();
    page(req, &state, &who, StatusCode::OK, "New collection", |t| {
        schema_form(
            SchemaForm {
                ws: &ws,
                coll: None,
                name: "",
                teams: &teams,
                relation_targets: &targets,
                permissions: &perms,
                errors: &[],
            },
            t,
        )
    })
    .await
}

fn validation_errors(e: Error) -> poem::Result<Vec<FieldError>> {
    match e {
        Error::Validation(v) => Ok(v),
        Error::Conflict(m) => Ok(vec![FieldError {
            field: "".into(),
            message: m,
        }]),
        other => Err(other.into()),
    }
}

#[handler]
pub async fn create_collection(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path(ws): Path<String>,
) -> poem::Result<Response> {
    let need = crate::access::permissions::needs(Resource::Collection, Action::Create);
    let ctx = enter_ui(&state, &who, &ws, need, "collection.create", &meta).await?;
    let pairs = form_pairs(req);
    let name = one(&pairs, "name").unwrap_or_default().to_owned();
    let perms = parse_permissions(&pairs);
    let input = NewCollection {
        name: name.clone(),
        fields: parse_fields(&pairs),
        team_id: one(&pairs, "team_id")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        permissions: Some(perms.clone()),
    };
    match records::create_collection(&state, &ctx, &meta, input).await {
        Ok(v) => Ok(see_other(format!("/w/{ws}/c/{}", v.row.id))),
        Err(e) => {
            let errors = validation_errors(e)?;
            let teams = team_choices(&ctx).await?;
            let targets = relation_targets(&ctx).await?;
            page(
                req,
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                "New collection",
                |t| {
                    schema_form(
                        SchemaForm {
                            ws: &ws,
                            coll: None,
                            name: &name,
                            teams: &teams,
                            relation_targets: &targets,
                            permissions: &perms,
                            errors: &errors,
                        },
                        t,
                    )
                },
            )
            .await
        }
    }
}

#[handler]
pub async fn schema_page(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path((ws, coll)): Path<(String, String)>,
) -> poem::Result<Response> {
    let ctx = enter_ui(&state, &who, &ws, Role::Viewer, "collection.read", &meta).await?;
    let v = records::load(&ctx, &coll).await?;
    if !v.can_manage() {
        let e = crate::access::enter::deny(
            &state,
            &ctx.db,
            ctx.user,
            v.role,
            "collection.update",
            "manager",
            &meta,
        )
        .await;
        return Err(e.into());
    }
    let targets = relation_targets(&ctx).await?;
    page(req, &state, &who, StatusCode::OK, "Schema", |t| {
        schema_form(
            SchemaForm {
                ws: &ws,
                coll: Some(&v),
                name: &v.row.def.name,
                teams: &[],
                relation_targets: &targets,
                permissions: &v.row.def.permissions,
                errors: &[],
            },
            t,
        )
    })
    .await
}

#[handler]
pub async fn schema_submit(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path((ws, coll)): Path<(String, String)>,
) -> poem::Result<Response> {
    let ctx = enter_ui(&state, &who, &ws, Role::Viewer, "collection.update", &meta).await?;
    let pairs = form_pairs(req);
    let change = CollectionChange {
        name: one(&pairs, "name").map(str::to_owned),
        fields: Some(parse_fields(&pairs)),
        // The editor always sends the marker; a form without it leaves the
        // permissions alone rather than reading "no boxes" as "nobody".
        permissions: one(&pairs, "perm.present").map(|_| parse_permissions(&pairs)),
    };
    match records::change_collection(&state, &ctx, &meta, &coll, change).await {
        Ok(v) => Ok(see_other(format!("/w/{ws}/c/{}", v.row.id))),
        Err(e) => {
            let errors = validation_errors(e)?;
            let v = records::load(&ctx, &coll).await?;
            let targets = relation_targets(&ctx).await?;
            page(
                req,
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Schema",
                |t| {
                    schema_form(
                        SchemaForm {
                            ws: &ws,
                            coll: Some(&v),
                            name: &v.row.def.name,
                            teams: &[],
                            relation_targets: &targets,
                            permissions: &v.row.def.permissions,
                            errors: &errors,
                        },
                        t,
                    )
                },
            )
            .await
        }
    }
}

// ---- the record table -----------------------------------------------------

#[derive(Deserialize, Default)]
pub struct TableQuery {
    q: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

const TABLE_COLUMNS: usize = 6;

#[handler]
pub async fn collection_page(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path((ws, coll)): Path<(String, String)>,
    Query(tq): Query<TableQuery>,
) -> poem::Result<Response> {
    let ctx = enter_ui(&state, &who, &ws, Role::Viewer, "records.read", &meta).await?;
    let p = records::list_records(
        &state,
        &ctx,
        &meta,
        &coll,
        records::ListParams {
            limit: Some(25),
            cursor: tq.cursor.clone(),
            q: tq.q.clone(),
            sort: tq.sort.clone(),
        },
    )
    .await?;
    let v = &p.coll;
    let cols: Vec<&Field> = v.row.def.live_fields().take(TABLE_COLUMNS).collect();
    let q = tq.q.clone().unwrap_or_default();
    let base = format!("/w/{ws}/c/{}", v.row.id);
    let link = |extra: &[(&str, &str)]| {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if !q.is_empty() {
            pairs.push(("q", &q));
        }
        pairs.extend_from_slice(extra);
        format!(
            "{base}?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    };
    let sort_link = |col: &str| {
        let next = if p.sort.as_str() == format!("-{col}") {
            col.to_owned()
        } else {
            format!("-{col}")
        };
        link(&[("sort", &next)])
    };
    let next = p
        .next_cursor
        .as_ref()
        .map(|c| link(&[("sort", p.sort.as_str()), ("cursor", c)]));
    let api = format!("/api/v1/workspaces/{ws}/collections/{}", v.row.id);
    page(req, &state, &who, StatusCode::OK, &v.row.def.name, |token| {
        html! {
            section.card {
                (breadcrumbs(&ws, None))
                h1 { (v.row.def.name) }
                form.search method="get" action=(base) {
                    input id="q" type="search" name="q" value=(q) placeholder="Search the searchable fields" aria-label="Search";
                    button type="submit" { "Search" }
                    @if !q.is_empty() { " " a href=(base) { "Clear" } }
                }
                @if p.items.is_empty() {
                    p.muted id="empty" { @if q.is_empty() { "No records yet." } @else { "No records match." } }
                } @else {
                    table.list id="records" {
                        thead { tr {
                            @for f in &cols { th { (f.name) } }
                            th { a href=(sort_link("created_at")) { "Created" } }
                            th { a href=(sort_link("updated_at")) { "Updated" } }
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
                                    td { (rfc3339_ms(r.created_at)) }
                                    td { (rfc3339_ms(r.updated_at)) }
                                }
                            }
                        }
                    }
                }
                p.actions {
                    @if tq.cursor.is_some() { a.button.secondary href=(link(&[("sort", p.sort.as_str())])) { "First page" } }
                    @if let Some(n) = &next { a.button.secondary id="next-page" href=(n) { "Next page" } }
                }
                p.actions {
                    @if v.can(RecordAction::Create) { a.button id="new-record" href=(format!("{base}/new")) { "New record" } }
                    a.button.secondary href=(format!("{api}/export")) download { "Export CSV" }
                    @if v.can_manage() { a.button.secondary href=(format!("{base}/schema")) { "Schema" } }
                }
            }
            @if v.can(RecordAction::Create) {
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

// ---- the record form --------------------------------------------------------

/// What each input shows: the stored value, or what was typed before an error.
type Shown = HashMap<String, Vec<String>>;

fn shown_from(def_fields: &[Field], vals: &Values) -> Shown {
    let mut out = Shown::new();
    for f in def_fields {
        let Some(v) = vals.get(&f.id) else { continue };
        let items = match f.kind {
            FieldType::MultiSelect => v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            FieldType::Money => {
                let text = values::money_text(v);
                let (amount, code) = text.split_once(' ').unwrap_or((&text, ""));
                vec![amount.to_owned(), code.to_owned()]
            }
            FieldType::Datetime => vec![
                v.as_str()
                    .map(|s| s.trim_end_matches('Z').chars().take(16).collect())
                    .unwrap_or_default(),
            ],
            FieldType::Boolean => vec![if v.as_bool() == Some(true) {
                "on".into()
            } else {
                String::new()
            }],
            _ => vec![values::to_text(f, v)],
        };
        out.insert(f.id.clone(), items);
    }
    out
}

fn shown_from_form(def_fields: &[Field], pairs: &[(String, String)]) -> Shown {
    def_fields
        .iter()
        .map(|f| {
            let key = format!("v.{}", f.id);
            let mut items: Vec<String> =
                every(pairs, &key).into_iter().map(str::to_owned).collect();
            if f.kind == FieldType::Money {
                items = vec![
                    one(pairs, &key).unwrap_or_default().to_owned(),
                    one(pairs, &format!("{key}.currency"))
                        .unwrap_or_default()
                        .to_owned(),
                ];
            }
            (f.id.clone(), items)
        })
        .collect()
}

/// Turns the form into the JSON a client would send; unparsable inputs are
/// errors named like the API's.
fn values_from_form(
    def_fields: &[Field],
    pairs: &[(String, String)],
) -> (Map<String, Value>, Vec<FieldError>) {
    let mut map = Map::new();
    let mut errors = Vec::new();
    for f in def_fields {
        let key = format!("v.{}", f.id);
        let raw = one(pairs, &key).unwrap_or_default();
        let parsed = match f.kind {
            FieldType::Boolean => Ok(Some(json!(raw == "on"))),
            FieldType::MultiSelect => {
                let picked = every(pairs, &key);
                Ok((!picked.is_empty()).then(|| json!(picked)))
            }
            FieldType::Money => {
                let cur = one(pairs, &format!("{key}.currency")).unwrap_or_default();
                if raw.trim().is_empty() {
                    Ok(None)
                } else {
                    values::from_text(f, &format!("{} {}", raw.trim(), cur.trim().to_uppercase()))
                }
            }
            FieldType::Datetime if !raw.trim().is_empty() && raw.trim().len() == 16 => {
                values::from_text(f, &format!("{}:00Z", raw.trim()))
            }
            _ => values::from_text(f, raw),
        };
        match parsed {
            Ok(v) => {
                map.insert(f.name.clone(), v.unwrap_or(Value::Null));
            }
            Err(m) => errors.push(FieldError {
                field: format!("values.{}", f.name),
                message: m,
            }),
        }
    }
    (map, errors)
}

/// Choices for relation and member fields.
struct Choices {
    members: Vec<(String, String)>,
    relations: HashMap<String, Vec<(String, String)>>,
}

async fn choices(state: &AppState, ctx: &TenantCtx, v: &Visible) -> poem::Result<Choices> {
    let fields: Vec<&Field> = v.row.def.live_fields().collect();
    let members = if fields.iter().any(|f| f.kind == FieldType::Member) {
        records::teams::members(state, ctx)
            .await?
            .into_iter()
            .map(|(u, _)| (u.id.to_string(), u.email))
            .collect()
    } else {
        Vec::new()
    };
    let mut relations = HashMap::new();
    for f in fields.iter().filter(|f| f.kind == FieldType::Relation) {
        let Some(target) = f.collection.clone() else {
            continue;
        };
        // Only collections the person may read offer their records.
        let Ok(tv) = records::load(ctx, &target).await else {
            continue;
        };
        if !tv.can(RecordAction::Read) {
            continue;
        }
        let label_field = tv.row.def.live_fields().next().cloned();
        let t2 = target.clone();
        let rows: Vec<RecordRow> = ctx
            .db
            .read(move |c, s| rstore::list_records(c, s, &t2, rstore::Sort::CreatedDesc, None, 200))
            .await?;
        let opts = rows
            .into_iter()
            .map(|r| {
                let label = label_field
                    .as_ref()
                    .and_then(|lf| r.values.get(&lf.id).map(|x| values::to_text(lf, x)))
                    .unwrap_or_else(|| r.id.clone());
                (r.id, label)
            })
            .collect();
        relations.insert(target, opts);
    }
    Ok(Choices { members, relations })
}

fn input_for(f: &Field, shown: &Shown, choices: &Choices) -> Markup {
    let name = format!("v.{}", f.id);
    let id = format!("in-{}", f.id);
    let cur = shown.get(&f.id).cloned().unwrap_or_default();
    let first = cur.first().cloned().unwrap_or_default();
    let req = f.required;
    html! {
        @match f.kind {
            FieldType::LongText => textarea id=(id) name=(name) required[req] maxlength="20000" rows="4" { (first) },
            FieldType::Integer => input id=(id) name=(name) type="number" step="1" value=(first) required[req];
            FieldType::Decimal => input id=(id) name=(name) inputmode="decimal" pattern="-?[0-9]+([.][0-9]+)?" value=(first) required[req];
            FieldType::Money => span.money {
                input id=(id) name=(name) inputmode="decimal" pattern="-?[0-9]+([.][0-9]+)?" value=(first) required[req] placeholder="123.45";
                @let code = cur.get(1).cloned().filter(|c| !c.is_empty()).or_else(|| f.currency.clone()).unwrap_or_default();
                input name=(format!("{name}.currency")) value=(code) maxlength="3" placeholder="EUR" aria-label=(format!("{} currency", f.name)) readonly[f.currency.is_some()];
            },
            FieldType::Boolean => input id=(id) name=(name) type="checkbox" value="on" checked[first == "on"];
            FieldType::Date => input id=(id) name=(name) type="date" value=(first) required[req];
            FieldType::Datetime => input id=(id) name=(name) type="datetime-local" value=(first) required[req];
            FieldType::Email => input id=(id) name=(name) type="email" value=(first) required[req];
            FieldType::Phone => input id=(id) name=(name) type="tel" value=(first) required[req];
            FieldType::Url => input id=(id) name=(name) type="url" value=(first) required[req];
            FieldType::Select => select id=(id) name=(name) required[req] {
                option value="" { "—" }
                @for o in &f.options { option value=(o) selected[first == *o] { (o) } }
            },
            FieldType::MultiSelect => span.multi id=(id) {
                @for o in &f.options {
                    label.check { input type="checkbox" name=(name) value=(o) checked[cur.contains(o)]; " " (o) }
                }
            },
            FieldType::Relation => {
                @match f.collection.as_ref().and_then(|c| choices.relations.get(c)) {
                    Some(opts) => select id=(id) name=(name) required[req] {
                        option value="" { "—" }
                        @for (rid, label) in opts { option value=(rid) selected[first == *rid] { (label) } }
                    },
                    None => input id=(id) name=(name) value=(first) placeholder="record id" required[req];,
                }
            },
            FieldType::Member => select id=(id) name=(name) required[req] {
                option value="" { "—" }
                @for (uid, email) in &choices.members { option value=(uid) selected[first == *uid] { (email) } }
            },
            FieldType::Text => input id=(id) name=(name) value=(first) required[req] maxlength="1000";
        }
    }
}

struct RecordForm<'a> {
    ws: &'a str,
    v: &'a Visible,
    rec: Option<&'a RecordRow>,
    shown: &'a Shown,
    choices: &'a Choices,
    errors: &'a [FieldError],
    history: &'a [rstore::VersionRow],
}

fn record_form(f: RecordForm<'_>, token: &str) -> Markup {
    let base = format!("/w/{}/c/{}", f.ws, f.v.row.id);
    let action = match f.rec {
        Some(r) => format!("{base}/r/{}", r.id),
        None => format!("{base}/records"),
    };
    let editable = match f.rec {
        Some(_) => f.v.can(RecordAction::Update),
        None => f.v.can(RecordAction::Create),
    };
    html! {
        section.card {
            (breadcrumbs(f.ws, Some(f.v)))
            h1 { @if let Some(r) = f.rec { "Record " small.muted { (r.id) } } @else { "New record" } }
            (errors_box(f.errors))
            form id="record" method="post" action=(action) {
                (csrf_field(token))
                fieldset disabled[!editable] {
                    @for fd in f.v.row.def.live_fields() {
                        label for=(format!("in-{}", fd.id)) {
                            (fd.name)
                            @if fd.required { " *" }
                            @if fd.kind == FieldType::Datetime { span.muted { " (UTC)" } }
                        }
                        (input_for(fd, f.shown, f.choices))
                    }
                }
                @if editable { button type="submit" { "Save" } }
            }
            @if let Some(r) = f.rec {
                p.muted { "Version " (r.version) " · created " (rfc3339_ms(r.created_at)) " · updated " (rfc3339_ms(r.updated_at)) }
                @if f.v.can(RecordAction::Delete) {
                    form method="post" action=(format!("{base}/r/{}/delete", r.id)) {
                        (csrf_field(token))
                        button.danger type="submit" { "Delete record" }
                    }
                }
            }
        }
        @if let Some(r) = f.rec {
            section.card {
                h2 { "History" }
                p.muted { "The last 20 versions are kept. Restoring writes the old values as a new version." }
                table.list id="history" {
                    thead { tr { th { "Version" } th { "When" } th { "Values" } th {} } }
                    tbody {
                        @for h in f.history {
                            tr {
                                td { (h.version) }
                                td { (rfc3339_ms(h.time)) }
                                td { code { (Value::Object(values::to_api(&f.v.row.def, &h.values))) } }
                                td {
                                    @if h.version != r.version && f.v.can(RecordAction::Update) {
                                        form method="post" action=(format!("{base}/r/{}/restore", r.id)) {
                                            (csrf_field(token))
                                            input type="hidden" name="version" value=(h.version);
                                            button.secondary type="submit" { "Restore" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[handler]
pub async fn new_record(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path((ws, coll)): Path<(String, String)>,
) -> poem::Result<Response> {
    let ctx = enter_ui(&state, &who, &ws, Role::Viewer, "records.read", &meta).await?;
    let v = records::load_for(&state, &ctx, &meta, &coll, RecordAction::Create).await?;
    let ch = choices(&state, &ctx, &v).await?;
    page(req, &state, &who, StatusCode::OK, "New record", |t| {
        record_form(
            RecordForm {
                ws: &ws,
                v: &v,
                rec: None,
                shown: &Shown::new(),
                choices: &ch,
                errors: &[],
                history: &[],
            },
            t,
        )
    })
    .await
}

#[handler]
pub async fn create_record(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path((ws, coll)): Path<(String, String)>,
) -> poem::Result<Response> {
    let ctx = enter_ui(&state, &who, &ws, Role::Viewer, "records.create", &meta).await?;
    let v = records::load_for(&state, &ctx, &meta, &coll, RecordAction::Create).await?;
    let pairs = form_pairs(req);
    let fields: Vec<Field> = v.row.def.live_fields().cloned().collect();
    let (mut input, errors) = values_from_form(&fields, &pairs);
    input.retain(|_, x| !x.is_null());
    let result = if errors.is_empty() {
        records::create_record(&state, &ctx, &meta, &coll, input, None)
            .await
            .map(|c| c.record)
    } else {
        Err(Error::Validation(errors))
    };
    match result {
        Ok(r) => Ok(see_other(format!("/w/{ws}/c/{coll}/r/{}", r.id))),
        Err(e) => {
            let errors = validation_errors(e)?;
            let ch = choices(&state, &ctx, &v).await?;
            let shown = shown_from_form(&fields, &pairs);
            page(
                req,
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                "New record",
                |t| {
                    record_form(
                        RecordForm {
                            ws: &ws,
                            v: &v,
                            rec: None,
                            shown: &shown,
                            choices: &ch,
                            errors: &errors,
                            history: &[],
                        },
                        t,
                    )
                },
            )
            .await
        }
    }
}

#[handler]
pub async fn record_page(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path((ws, coll, id)): Path<(String, String, String)>,
) -> poem::Result<Response> {
    let ctx = enter_ui(&state, &who, &ws, Role::Viewer, "records.read", &meta).await?;
    let (v, rec, history) = records::history(&state, &ctx, &meta, &coll, &id).await?;
    let ch = choices(&state, &ctx, &v).await?;
    let fields: Vec<Field> = v.row.def.live_fields().cloned().collect();
    let shown = shown_from(&fields, &rec.values);
    page(req, &state, &who, StatusCode::OK, "Record", |t| {
        record_form(
            RecordForm {
                ws: &ws,
                v: &v,
                rec: Some(&rec),
                shown: &shown,
                choices: &ch,
                errors: &[],
                history: &history,
            },
            t,
        )
    })
    .await
}

#[handler]
pub async fn update_record(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path((ws, coll, id)): Path<(String, String, String)>,
) -> poem::Result<Response> {
    let ctx = enter_ui(&state, &who, &ws, Role::Viewer, "records.update", &meta).await?;
    let v = records::load_for(&state, &ctx, &meta, &coll, RecordAction::Update).await?;
    let pairs = form_pairs(req);
    let fields: Vec<Field> = v.row.def.live_fields().cloned().collect();
    let (input, errors) = values_from_form(&fields, &pairs);
    let result = if errors.is_empty() {
        records::update_record(&state, &ctx, &meta, &coll, &id, input).await
    } else {
        Err(Error::Validation(errors))
    };
    match result {
        Ok(_) => Ok(see_other(format!("/w/{ws}/c/{coll}/r/{id}"))),
        Err(e) => {
            let errors = validation_errors(e)?;
            let (v, rec, history) = records::history(&state, &ctx, &meta, &coll, &id).await?;
            let ch = choices(&state, &ctx, &v).await?;
            let shown = shown_from_form(&fields, &pairs);
            page(
                req,
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Record",
                |t| {
                    record_form(
                        RecordForm {
                            ws: &ws,
                            v: &v,
                            rec: Some(&rec),
                            shown: &shown,
                            choices: &ch,
                            errors: &errors,
                            history: &history,
                        },
                        t,
                    )
                },
            )
            .await
        }
    }
}

#[handler]
pub async fn delete_record(
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path((ws, coll, id)): Path<(String, String, String)>,
) -> poem::Result<Response> {
    let ctx = enter_ui(&state, &who, &ws, Role::Viewer, "records.delete", &meta).await?;
    records::delete_record(&state, &ctx, &meta, &coll, &id).await?;
    Ok(see_other(format!("/w/{ws}/c/{coll}")))
}

#[handler]
pub async fn restore_record(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
    Path((ws, coll, id)): Path<(String, String, String)>,
) -> poem::Result<Response> {
    let ctx = enter_ui(&state, &who, &ws, Role::Viewer, "records.update", &meta).await?;
    let pairs = form_pairs(req);
    let version: i64 = one(&pairs, "version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::field("version", "must be a version number"))?;
    records::restore_version(&state, &ctx, &meta, &coll, &id, version).await?;
    Ok(see_other(format!("/w/{ws}/c/{coll}/r/{id}")))
}
