//! The schema editor: define a collection (name, owner, typed fields,
//! record permissions) and change it later. Parsing the editor's rows into
//! `FieldInput`s is all it does; `records` decides what is valid.

use maud::{Markup, html};
use poem::{Response, handler};

use super::csrf_field;
use super::forms::{Id, WsPost, breadcrumbs, errors_box, every, one, status_for};
use crate::access::enter::TenantHandle;
use crate::access::{Role, op};
use crate::error::FieldError;
use crate::ids::CollectionId;
use crate::records::schema::{Field, FieldInput, FieldType, Permissions};
use crate::records::{self, CollectionChange, Need, NewCollection, Visible};
use crate::web::tenant::TenantPage;

const NEW_ROWS: usize = 3;

fn type_select(name: &str, selected: Option<FieldType>, disabled: bool) -> Markup {
    html! {
        select name=(name) disabled[disabled] aria-label="Field type" {
            @if selected.is_none() { option value="" { "— type —" } }
            @for t in FieldType::ALL {
                option value=(t.as_str()) selected[Some(t) == selected] { (t.as_str().replace('_', " ")) }
            }
        }
    }
}

/// A stored field as the editor shows it (the same shape a post gives back).
fn as_input(f: &Field) -> FieldInput {
    FieldInput {
        id: Some(f.id.clone()),
        name: f.name.clone(),
        kind: f.kind.as_str().to_owned(),
        required: f.required,
        unique: f.unique,
        pii: f.pii,
        searchable: f.searchable,
        retired: f.retired,
        options: f.options.clone(),
        currency: f.currency.clone(),
        collection: f.collection.clone(),
    }
}

/// One row of the field table: a stored field (its type fixed), a field
/// sent back with errors (as typed), or a blank row.
fn field_row(i: usize, f: Option<&FieldInput>, relation_targets: &[(String, String)]) -> Markup {
    let p = |k: &str| format!("f{i}.{k}");
    let flag = |k: &str, on: bool, label: &str| {
        html! { label.check { input type="checkbox" name=(p(k)) value="on" checked[on]; " " (label) } }
    };
    let stored = f.is_some_and(|f| f.id.is_some());
    let kind = f.and_then(|f| FieldType::parse("type", &f.kind).ok());
    html! {
        tr.field-row {
            td {
                @if let Some(id) = f.and_then(|f| f.id.as_deref()) { input type="hidden" name=(p("id")) value=(id); input type="hidden" name=(p("type")) value=(f.map(|f| f.kind.as_str()).unwrap_or_default()); }
                input name=(p("name")) value=(f.map(|f| f.name.as_str()).unwrap_or("")) placeholder="Field name" aria-label="Field name";
            }
            td { (type_select(&p("type"), kind, stored)) }
            td.flags {
                (flag("required", f.is_some_and(|f| f.required), "required"))
                (flag("unique", f.is_some_and(|f| f.unique), "unique"))
                (flag("pii", f.is_some_and(|f| f.pii), "personal data"))
                (flag("searchable", f.is_some_and(|f| f.searchable), "searchable"))
                @if stored { (flag("retired", f.is_some_and(|f| f.retired), "retired")) }
            }
            td {
                input name=(p("options")) value=(f.map(|f| f.options.join(", ")).unwrap_or_default()) placeholder="choices, comma separated (select)" aria-label="Choices";
                input name=(p("currency")) value=(f.and_then(|f| f.currency.clone()).unwrap_or_default()) placeholder="currency, e.g. EUR (money)" maxlength="3" aria-label="Currency";
                @if !stored || kind == Some(FieldType::Relation) {
                    select name=(p("collection")) disabled[stored] aria-label="Related collection" {
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
    /// The rows: the stored fields, or what was posted when it came back.
    fields: &'a [FieldInput],
    name: &'a str,
    teams: &'a [(String, String)],
    relation_targets: &'a [(String, String)],
    permissions: &'a Permissions,
    errors: &'a [FieldError],
}

fn schema_form(f: SchemaForm<'_>, token: &str) -> Markup {
    let action = match f.coll {
        Some(c) => format!("/w/{}/c/{}/schema", f.ws, c.row.id),
        None => format!("/w/{}/collections", f.ws),
    };
    let fields = f.fields;
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

async fn relation_targets(ctx: &TenantHandle) -> poem::Result<Vec<(String, String)>> {
    Ok(records::list_collections(ctx)
        .await?
        .into_iter()
        .map(|c| (c.row.id, c.row.def.name.clone()))
        .collect())
}

async fn team_choices(ctx: &TenantHandle) -> poem::Result<Vec<(String, String)>> {
    Ok(records::teams::list(ctx)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

/// What the schema editor shows: the collection (`None`: a new one), its
/// name and permissions as stored or as sent back.
struct Editing<'a> {
    coll: Option<&'a Visible>,
    name: &'a str,
    permissions: &'a Permissions,
    fields: Vec<FieldInput>,
}

impl<'a> Editing<'a> {
    fn stored(v: &'a Visible) -> Self {
        let d = &v.row.def;
        Editing {
            coll: Some(v),
            name: &d.name,
            permissions: &d.permissions,
            fields: d.fields.iter().map(as_input).collect(),
        }
    }
}

/// The schema editor page (200), or the form sent back with its errors (422).
async fn render_schema<O>(
    ctx: &TenantPage<O>,
    e: Editing<'_>,
    errors: &[FieldError],
) -> poem::Result<Response> {
    let teams = match e.coll {
        None => team_choices(ctx).await?,
        Some(_) => Vec::new(),
    };
    let targets = relation_targets(ctx).await?;
    let title = if e.coll.is_some() {
        "Schema"
    } else {
        "New collection"
    };
    ctx.page(status_for(errors), title, |t| {
        let form = SchemaForm {
            ws: ctx.ws(),
            coll: e.coll,
            fields: &e.fields,
            name: e.name,
            teams: &teams,
            relation_targets: &targets,
            permissions: e.permissions,
            errors,
        };
        schema_form(form, t)
    })
    .await
}

/// Where a saved schema goes: the collection's page.
fn to_collection(ws: &str) -> impl FnOnce(Visible) -> String + '_ {
    move |v| format!("/w/{ws}/c/{}", v.row.id)
}

#[handler]
pub async fn new_collection(ctx: TenantPage<op::CollectionCreate>) -> poem::Result<Response> {
    let permissions = Permissions::default();
    let e = Editing {
        coll: None,
        name: "",
        permissions: &permissions,
        fields: Vec::new(),
    };
    render_schema(&ctx, e, &[]).await
}

#[handler]
pub async fn create_collection(p: WsPost<op::CollectionCreate>) -> poem::Result<Response> {
    let pairs = &p.form.0;
    let name = p.form.owned("name");
    let permissions = parse_permissions(pairs);
    let input = NewCollection {
        name: name.clone(),
        fields: parse_fields(pairs),
        team_id: p
            .form
            .get("team_id")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        permissions: Some(permissions.clone()),
    };
    let created = records::create_collection(&p.ctx, &p.state.bounds.limits, input).await;
    let e = Editing {
        coll: None,
        name: &name,
        permissions: &permissions,
        fields: parse_fields(pairs),
    };
    p.then(created, to_collection(p.ctx.ws()), async |ctx, errors| {
        render_schema(ctx, e, errors).await
    })
    .await
}

#[handler]
pub async fn schema_page(
    ctx: TenantPage<op::CollectionRead>,
    Id(cid): Id<CollectionId>,
) -> poem::Result<Response> {
    let v = records::load(&ctx, &cid, Need::Manage).await?;
    render_schema(&ctx, Editing::stored(&v), &[]).await
}

#[handler]
pub async fn schema_submit(
    p: WsPost<op::CollectionUpdate>,
    Id(cid): Id<CollectionId>,
) -> poem::Result<Response> {
    let pairs = &p.form.0;
    let change = CollectionChange {
        name: p.form.get("name").map(str::to_owned),
        fields: Some(parse_fields(pairs)),
        // The editor always sends the marker; a form without it leaves the
        // permissions alone rather than reading "no boxes" as "nobody".
        permissions: p.form.get("perm.present").map(|_| parse_permissions(pairs)),
    };
    let limits = &p.state.bounds.limits;
    let changed = records::change_collection(&p.ctx, limits, &cid, change).await;
    p.then(changed, to_collection(p.ctx.ws()), async |ctx, errors| {
        // The form again as it was sent, not as stored: nothing typed is lost.
        let v = records::load(ctx, &cid, Need::See).await?;
        let e = Editing {
            name: p.form.get("name").unwrap_or(&v.row.def.name),
            fields: parse_fields(pairs),
            ..Editing::stored(&v)
        };
        render_schema(ctx, e, errors).await
    })
    .await
}
