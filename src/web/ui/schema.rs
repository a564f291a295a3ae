//! The schema editor: define a collection (name, owner, typed fields,
//! record permissions) and change it later. Parsing the editor's rows into
//! `FieldInput`s is all it does; `records` decides what is valid.

use maud::{Markup, html};
use poem::{Response, handler};

use super::csrf_field;
use super::forms::{Id, WsPost, breadcrumbs, every, status_for};
use super::schema_fields::{as_input, field_row, parse_fields};
use super::schema_retention;
use crate::access::enter::TenantHandle;
use crate::access::permissions::{Action, Resource, allows};
use crate::access::{Role, op};
use crate::error::FieldError;
use crate::ids::CollectionId;
use crate::records::schema::{FieldInput, Permissions, Retention};
use crate::records::{self, CollectionChange, Need, NewCollection, Visible};
use crate::web::tenant::TenantPage;

const NEW_ROWS: usize = 3;

/// The errors of row `i` (`fields[i].key`), by key (`options[2]` counts as
/// `options`; a server-assigned `id` shows at the name).
fn row_errors(errors: &[FieldError], i: usize) -> Vec<(&'static str, &str)> {
    let prefix = format!("fields[{i}].");
    errors
        .iter()
        .filter_map(|e| {
            let key = e.field.strip_prefix(&prefix)?;
            let key = key.split('[').next().unwrap_or(key);
            Some((input_key(key)?, e.message.as_str()))
        })
        .collect()
}

/// The input of a row that shows an error about `key`.
fn input_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "name" | "id" => "name",
        "type" => "type",
        "options" => "options",
        "currency" => "currency",
        "collection" => "collection",
        "required" => "required",
        "unique" => "unique",
        "pii" => "pii",
        "searchable" => "searchable",
        "retired" => "retired",
        "max_size" => "max_size",
        "types" => "types",
        "multiple" => "multiple",
        "retention" | "retention.field" => "retention_field",
        "retention.days" => "retention_days",
        _ => return None,
    })
}

fn key_label(key: &str) -> &'static str {
    match key {
        "name" => "name",
        "type" => "type",
        "options" => "choices",
        "currency" => "currency",
        "collection" => "related collection",
        "required" => "required",
        "unique" => "unique",
        "pii" => "personal data",
        "searchable" => "searchable",
        "max_size" => "largest file",
        "types" => "file types",
        "multiple" => "several files",
        "retention_field" => "retention date field",
        "retention_days" => "retention days",
        _ => "retired",
    }
}

/// The summary of a schema form's errors, each linking to its input: the
/// collection's name, or a row's input ("Field 2 (Amount): currency").
fn schema_errors_box(errors: &[FieldError], fields: &[FieldInput]) -> Markup {
    let anchor = |field: &str| -> Option<(String, String)> {
        if field == "name" {
            return Some(("Name".into(), "name".into()));
        }
        if let Some(k) = field.strip_prefix("retention.") {
            return Some((format!("Retention: {k}"), format!("retention-{k}")));
        }
        let rest = field.strip_prefix("fields[")?;
        let (i, key) = rest.split_once("].")?;
        let i: usize = i.parse().ok()?;
        let key = input_key(key.split('[').next().unwrap_or(key))?;
        let name = fields.get(i).map(|f| f.name.trim()).unwrap_or_default();
        let label = if name.is_empty() {
            format!("Field {}: {}", i + 1, key_label(key))
        } else {
            format!("Field {} ({name}): {}", i + 1, key_label(key))
        };
        Some((label, format!("in-f{i}-{key}")))
    };
    super::forms::summary_by(errors, anchor)
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
    /// The owner team chosen (a new collection sent back).
    team: Option<&'a str>,
    /// Whether the person may delete the collection (admins).
    can_delete: bool,
    /// The collection's retention window as shown (its date field by name).
    retention: Option<&'a Retention>,
    errors: &'a [FieldError],
}

/// The message of the error about `key` at the top of the form, if any.
fn top_error<'e>(errors: &'e [FieldError], key: &str) -> Option<&'e str> {
    errors
        .iter()
        .find(|e| e.field == key)
        .map(|e| e.message.as_str())
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
            (schema_errors_box(f.errors, fields))
            form id="schema" method="post" action=(action) {
                (csrf_field(token))
                @let name_err = top_error(f.errors, "name");
                label for="name" { "Name" }
                @if f.coll.is_some() { p.muted id="name-hint" { "Rename the collection here; its records and links stay as they are." } }
                input id="name" name="name" value=(f.name) required maxlength="64" aria-invalid=[name_err.map(|_| "true")] aria-describedby=[name_err.map(|_| "err-name")];
                @if let Some(m) = name_err { span.field-error id="err-name" { (m) } }
                @if f.coll.is_none() {
                    @let team_err = top_error(f.errors, "team_id");
                    label for="team" { "Owner" }
                    select id="team" name="team_id" aria-invalid=[team_err.map(|_| "true")] aria-describedby=[team_err.map(|_| "err-team")] {
                        option value="" { "The whole workspace" }
                        @for (id, name) in f.teams { option value=(id) selected[f.team == Some(id.as_str())] { "Team " (name) } }
                    }
                    @if let Some(m) = team_err { span.field-error id="err-team" { (m) } }
                }
                h2 { "Fields" }
                p.muted { "A field's type is fixed once created; rename, retire or add fields freely. Existing records stay valid." }
                table.list id="fields" {
                    thead { tr { th { "Name" } th { "Type" } th { "Flags" } th { "Settings" } } }
                    tbody {
                        @for (i, fd) in fields.iter().enumerate() { (field_row(i, Some(fd), f.relation_targets, &row_errors(f.errors, i))) }
                        @for i in fields.len()..fields.len() + NEW_ROWS { (field_row(i, None, f.relation_targets, &[])) }
                    }
                }
                button.secondary type="button" data-add-row="#fields" { "Add another field" }
                (schema_retention::collection_inputs(f.retention, f.errors))
                h2 { "Who may work with records" }
                (permissions_table(f.permissions))
                button type="submit" { "Save" }
            }
        }
        @if let (Some(c), true) = (f.coll, f.can_delete) {
            section.card id="delete-collection" {
                h2 { "Delete this collection" }
                p { "Deleting " strong { (c.row.def.name) } " deletes all its records and their history with it; it cannot be undone. A collection another collection relates to cannot be deleted until that relation field is retired." }
                form method="post" action=(format!("/w/{}/c/{}/delete", f.ws, c.row.id)) data-confirm=(format!("Delete the collection {} and all its records?", c.row.def.name)) data-confirm-label="Delete collection" {
                    (csrf_field(token))
                    button.danger type="submit" { "Delete collection" }
                }
            }
        }
    }
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
    team: Option<&'a str>,
    retention: Option<Retention>,
}

impl<'a> Editing<'a> {
    fn stored(v: &'a Visible) -> Self {
        let d = &v.row.def;
        Editing {
            coll: Some(v),
            name: &d.name,
            permissions: &d.permissions,
            fields: d
                .fields
                .iter()
                .map(|f| FieldInput {
                    retention: f
                        .retention
                        .as_ref()
                        .map(|r| schema_retention::for_editing(d, r)),
                    ..as_input(f)
                })
                .collect(),
            team: None,
            retention: d
                .retention
                .as_ref()
                .map(|r| schema_retention::for_editing(d, r)),
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
            team: e.team,
            // Not while the workspace is read-only (its banner says why).
            can_delete: ctx.writable()
                && e.coll
                    .is_some_and(|c| allows(c.role, Resource::Collection, Action::Delete)),
            errors,
            retention: e.retention.as_ref(),
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
        team: None,
        retention: None,
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
        retention: schema_retention::parse(pairs, "retention."),
    };
    let created = records::create_collection(&p.ctx, &p.state.bounds.limits, input).await;
    if created.is_ok() {
        records::retention::recount(&p.state.control, &p.ctx.db, p.ctx.now()).await;
    }
    let e = Editing {
        coll: None,
        name: &name,
        permissions: &permissions,
        fields: parse_fields(pairs),
        team: p.form.get("team_id"),
        retention: schema_retention::parse(pairs, "retention."),
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
        // Likewise: only a form with the retention inputs changes the window.
        retention: p
            .form
            .get("retention.present")
            .map(|_| schema_retention::parse(pairs, "retention.")),
    };
    let limits = &p.state.bounds.limits;
    let changed = records::change_collection(&p.ctx, limits, &cid, change).await;
    if changed.is_ok() {
        records::retention::recount(&p.state.control, &p.ctx.db, p.ctx.now()).await;
    }
    p.then(changed, to_collection(p.ctx.ws()), async |ctx, errors| {
        // The form again as it was sent, not as stored: nothing typed is lost.
        let v = records::load(ctx, &cid, Need::See).await?;
        let e = Editing {
            name: p.form.get("name").unwrap_or(&v.row.def.name),
            fields: parse_fields(pairs),
            retention: schema_retention::parse(pairs, "retention."),
            ..Editing::stored(&v)
        };
        render_schema(ctx, e, errors).await
    })
    .await
}

/// Deletes a collection with its records (admins; the API's rule: refused
/// while another collection relates to it), after the page's confirmation.
#[handler]
pub async fn delete_collection(
    p: WsPost<op::CollectionDelete>,
    Id(cid): Id<CollectionId>,
) -> poem::Result<Response> {
    let deleted = records::delete_collection(&p.ctx, &cid).await;
    if deleted.is_ok() {
        records::retention::recount(&p.state.control, &p.ctx.db, p.ctx.now()).await;
    }
    let ws = p.ctx.ws();
    p.then(
        deleted,
        |()| format!("/w/{ws}"),
        async |ctx, errors| {
            let v = records::load(ctx, &cid, Need::See).await?;
            render_schema(ctx, Editing::stored(&v), errors).await
        },
    )
    .await
}
