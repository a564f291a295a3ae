//! The record form generated from a collection's schema (typed inputs as
//! hints, the server as the truth), the record page with its history and
//! restore, and the handlers that create, update, delete and restore.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::{Response, handler};
use serde_json::{Map, Value, json};

use super::forms::{Id, Posted, RecordAt, WsPost, breadcrumbs, every, one, status_for, summary_by};
use super::{csrf_field, row_action};
use crate::access::enter::TenantHandle;
use crate::access::op;
use crate::app::AppState;
use crate::error::{Error, FieldError};
use crate::ids::{CollectionId, RecordId};
use crate::records::schema::{Field, FieldType, RecordAction};
use crate::records::values::{self, Values};
use crate::records::{self, Visible, rfc3339_ms};
use crate::store::records::{self as rstore, RecordRow};
use crate::web::tenant::TenantPage;

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
    // File fields change through their own forms (`record_files`).
    for f in def_fields.iter().filter(|f| f.kind != FieldType::File) {
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

async fn choices(state: &AppState, ctx: &TenantHandle, v: &Visible) -> poem::Result<Choices> {
    let fields: Vec<&Field> = v.row.def.live_fields().collect();
    let members = if fields.iter().any(|f| f.kind == FieldType::Member) {
        records::teams::members(&state.control, ctx)
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
        let Ok(tid) = target.parse() else {
            continue;
        };
        let Ok(tv) = records::load(ctx, &tid, records::Need::See).await else {
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

fn input_for(f: &Field, shown: &Shown, choices: &Choices, invalid: bool) -> Markup {
    let name = format!("v.{}", f.id);
    let id = format!("in-{}", f.id);
    // With an error: marked invalid and described by the message below it.
    let inv = invalid.then_some("true");
    let described = invalid.then(|| format!("err-{}", f.id));
    let cur = shown.get(&f.id).cloned().unwrap_or_default();
    let first = cur.first().cloned().unwrap_or_default();
    let req = f.required;
    html! {
        @match f.kind {
            FieldType::LongText => textarea id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) required[req] maxlength="20000" rows="4" { (first) },
            FieldType::Integer => input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) type="number" step="1" value=(first) required[req];
            FieldType::Decimal => input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) inputmode="decimal" pattern="-?[0-9]+([.][0-9]+)?" value=(first) required[req];
            FieldType::Money => span.money {
                input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) inputmode="decimal" pattern="-?[0-9]+([.][0-9]+)?" value=(first) required[req] placeholder="123.45";
                @let code = cur.get(1).cloned().filter(|c| !c.is_empty()).or_else(|| f.currency.clone()).unwrap_or_default();
                input name=(format!("{name}.currency")) value=(code) maxlength="3" placeholder="EUR" aria-label=(format!("{} currency", f.name)) readonly[f.currency.is_some()];
            },
            FieldType::Boolean => input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) type="checkbox" value="on" checked[first == "on"];
            FieldType::Date => input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) type="date" value=(first) required[req];
            FieldType::Datetime => input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) type="datetime-local" value=(first) required[req];
            FieldType::Email => input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) type="email" value=(first) required[req];
            FieldType::Phone => input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) type="tel" value=(first) required[req];
            FieldType::Url => input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) type="url" value=(first) required[req];
            FieldType::Select => select id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) required[req] {
                option value="" { "—" }
                @for o in &f.options { option value=(o) selected[first == *o] { (o) } }
            },
            FieldType::MultiSelect => span.multi id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] {
                @for o in &f.options {
                    label.check { input type="checkbox" name=(name) value=(o) checked[cur.contains(o)]; " " (o) }
                }
            },
            FieldType::Relation => {
                @match f.collection.as_ref().and_then(|c| choices.relations.get(c)) {
                    Some(opts) => select id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) required[req] {
                        option value="" { "—" }
                        @for (rid, label) in opts { option value=(rid) selected[first == *rid] { (label) } }
                    },
                    None => input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) value=(first) placeholder="record id" required[req];,
                }
            },
            FieldType::Member => select id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) required[req] {
                option value="" { "—" }
                @for (uid, email) in &choices.members { option value=(uid) selected[first == *uid] { (email) } }
            },
            FieldType::Text => input id=(id) aria-invalid=[inv] aria-describedby=[described.as_deref()] name=(name) value=(first) required[req] maxlength="1000";
            // Shown in the files section below the form instead.
            FieldType::File => {},
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
    /// False in a read-only workspace: the record shows, its forms do not.
    writable: bool,
}

/// The field an error names (`values.Guests`, `values.f_12ab`, `Guests`):
/// its label and id.
fn field_anchor(def: &crate::records::schema::Definition, name: &str) -> Option<(String, String)> {
    let key = name.strip_prefix("values.").unwrap_or(name);
    let key = key.split('.').next().unwrap_or(key);
    def.live_field(key).map(|f| (f.name.clone(), f.id.clone()))
}

fn record_form(f: RecordForm<'_>, token: &str) -> Markup {
    let base = format!("/w/{}/c/{}", f.ws, f.v.row.id);
    let action = match f.rec {
        Some(r) => format!("{base}/r/{}", r.id),
        None => format!("{base}/records"),
    };
    let editable = f.writable
        && match f.rec {
            Some(_) => f.v.can(RecordAction::Update),
            None => f.v.can(RecordAction::Create),
        };
    html! {
        section.card {
            (breadcrumbs(f.ws, Some(f.v)))
            h1 {
                @if let Some(r) = f.rec {
                    @match f.v.row.def.title(&r.values) {
                        Some(t) => { (t) " " small.muted title=(r.id) { "in " (f.v.row.def.name) } }
                        None => { "Record " small.muted { (r.id) } }
                    }
                } @else { "New record" }
            }
            (summary_by(f.errors, |name| field_anchor(&f.v.row.def, name).map(|(label, id)| (label, format!("in-{id}")))))
            form id="record" method="post" action=(action) {
                (csrf_field(token))
                fieldset disabled[!editable] {
                    @for fd in f.v.row.def.live_fields().filter(|fd| fd.kind != FieldType::File) {
                        label for=(format!("in-{}", fd.id)) {
                            (fd.name)
                            @if fd.required { " *" }
                            @if fd.kind == FieldType::Datetime { span.muted { " (UTC)" } }
                        }
                        @let errs: Vec<&FieldError> = f.errors.iter().filter(|e| field_anchor(&f.v.row.def, &e.field).is_some_and(|(_, id)| id == fd.id)).collect();
                        (input_for(fd, f.shown, f.choices, !errs.is_empty()))
                        @if !errs.is_empty() {
                            p.field-error id=(format!("err-{}", fd.id)) {
                                @for (i, e) in errs.iter().enumerate() { @if i > 0 { " " } (fd.name) " " (e.message) "." }
                            }
                        }
                    }
                }
                @if editable { button type="submit" { "Save" } }
            }
            @if let Some(r) = f.rec {
                p.muted { "Version " (r.version) " · created " (rfc3339_ms(r.created_at)) " · updated " (rfc3339_ms(r.updated_at)) }
                @if f.writable && f.v.can(RecordAction::Delete) {
                    form id="delete-record" method="post" action=(format!("{base}/r/{}/delete", r.id))
                        data-confirm="Delete this record? Its history stays in the audit log." data-confirm-label="Delete record" {
                        (csrf_field(token))
                        button.danger type="submit" { "Delete record" }
                    }
                }
            }
        }
        @if let Some(r) = f.rec {
            (super::record_files::files_section(f.ws, f.v, r, token, f.writable, f.errors))
        } @else if f.v.row.def.live_fields().any(|fd| fd.kind == FieldType::File) {
            p.muted { "Save the record first, then add its files." }
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
                                    @if h.version != r.version && f.writable && f.v.can(RecordAction::Update) {
                                        (row_action(token, &format!("{base}/r/{}/restore", r.id), ("version", &h.version), ("secondary", "Restore")))
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

/// What the record page is about: the collection, and the record with its
/// history (`None`: the new-record page).
struct Subject<'a> {
    v: &'a Visible,
    rec: Option<(&'a RecordRow, &'a [rstore::VersionRow])>,
}

/// The record page (200), or the form sent back with its errors (422).
async fn render_record<O>(
    ctx: &TenantPage<O>,
    s: Subject<'_>,
    shown: &Shown,
    errors: &[FieldError],
) -> poem::Result<Response> {
    let choices = choices(ctx.state(), ctx, s.v).await?;
    let (rec, history) = match s.rec {
        Some((r, h)) => (Some(r), h),
        None => (None, &[][..]),
    };
    let title = if rec.is_some() {
        "Record"
    } else {
        "New record"
    };
    ctx.page(status_for(errors), title, |t| {
        let form = RecordForm {
            ws: ctx.ws(),
            v: s.v,
            rec,
            shown,
            choices: &choices,
            errors,
            history,
            writable: ctx.writable(),
        };
        record_form(form, t)
    })
    .await
}

/// The values a posted record form gives, read against the collection's
/// live fields: what a client would send, or the fields it could not parse.
/// The posted values, or every problem at once: the ones the form's own
/// parsing finds and, with them, the required fields left empty (the rule
/// `values::validate` applies to what parses), so a person fixes the form
/// in one pass.
fn posted_values(fields: &[Field], form: &Posted) -> Result<Map<String, Value>, Error> {
    match values_from_form(fields, &form.0) {
        (input, errors) if errors.is_empty() => Ok(input),
        (input, mut errors) => {
            for f in fields.iter().filter(|f| f.required) {
                let named = format!("values.{}", f.name);
                let empty = input.get(&f.id).is_none_or(Value::is_null);
                if empty && !errors.iter().any(|e| e.field == named) {
                    errors.push(FieldError {
                        field: named,
                        message: "is required".into(),
                    });
                }
            }
            Err(Error::Validation(errors))
        }
    }
}

/// A record's page (ids display as the path spells them: canonical).
fn record_url(ws: &str, cid: &CollectionId, rid: impl std::fmt::Display) -> String {
    format!("/w/{ws}/c/{cid}/r/{rid}")
}

#[handler]
pub async fn new_record(
    ctx: TenantPage<op::RecordRead>,
    Id(cid): Id<CollectionId>,
) -> poem::Result<Response> {
    let v = records::load(&ctx, &cid, records::Need::Record(RecordAction::Create)).await?;
    let s = Subject { v: &v, rec: None };
    render_record(&ctx, s, &Shown::new(), &[]).await
}

#[handler]
pub async fn create_record(
    p: WsPost<op::RecordCreate>,
    Id(cid): Id<CollectionId>,
) -> poem::Result<Response> {
    let v = records::load(&p.ctx, &cid, records::Need::Record(RecordAction::Create)).await?;
    let fields: Vec<Field> = v.row.def.live_fields().cloned().collect();
    let created = match posted_values(&fields, &p.form) {
        Ok(mut input) => {
            input.retain(|_, x| !x.is_null());
            records::create_record(&p.ctx, &p.state.control, &cid, input, None).await
        }
        Err(e) => Err(e),
    };
    let to = |c: records::Created| record_url(p.ctx.ws(), &cid, c.record.id);
    p.then(created, to, async |ctx, errors| {
        let shown = shown_from_form(&fields, &p.form.0);
        let s = Subject { v: &v, rec: None };
        render_record(ctx, s, &shown, errors).await
    })
    .await
}

#[handler]
pub async fn record_page(
    ctx: TenantPage<op::RecordRead>,
    RecordAt(cid, rid): RecordAt,
) -> poem::Result<Response> {
    record_page_with_errors(&ctx, &cid, &rid, &[]).await
}

/// The record's page with `errors` (a file upload's, at its field).
pub async fn record_page_with_errors<O>(
    ctx: &TenantPage<O>,
    cid: &CollectionId,
    rid: &RecordId,
    errors: &[FieldError],
) -> poem::Result<Response> {
    let (v, rec, history) = records::history(ctx, cid, rid).await?;
    let fields: Vec<Field> = v.row.def.live_fields().cloned().collect();
    let shown = shown_from(&fields, &rec.values);
    let s = Subject {
        v: &v,
        rec: Some((&rec, &history)),
    };
    render_record(ctx, s, &shown, errors).await
}

#[handler]
pub async fn update_record(
    p: WsPost<op::RecordUpdate>,
    RecordAt(cid, rid): RecordAt,
) -> poem::Result<Response> {
    let v = records::load(&p.ctx, &cid, records::Need::Record(RecordAction::Update)).await?;
    let fields: Vec<Field> = v.row.def.live_fields().cloned().collect();
    let updated = match posted_values(&fields, &p.form) {
        Ok(input) => records::update_record(&p.ctx, &p.state.control, &cid, &rid, input).await,
        Err(e) => Err(e),
    };
    let to = |_| record_url(p.ctx.ws(), &cid, rid);
    p.then(updated, to, async |ctx, errors| {
        let (v, rec, history) = records::history(ctx, &cid, &rid).await?;
        let shown = shown_from_form(&fields, &p.form.0);
        let s = Subject {
            v: &v,
            rec: Some((&rec, &history)),
        };
        render_record(ctx, s, &shown, errors).await
    })
    .await
}

#[handler]
pub async fn delete_record(
    p: WsPost<op::RecordDelete>,
    RecordAt(cid, rid): RecordAt,
) -> poem::Result<Response> {
    records::delete_record(&p.ctx, &cid, &rid).await?;
    let undo = format!("{}/undelete", record_url(p.ctx.ws(), &cid, rid));
    Ok(p.done_undoably(format!("/w/{}/c/{cid}", p.ctx.ws()), &undo))
}

/// "Undo" after a deletion: the record is back, on its own page.
#[handler]
pub async fn undelete_record(
    p: WsPost<op::RecordUndelete>,
    RecordAt(cid, rid): RecordAt,
) -> poem::Result<Response> {
    // From an audit entry's page: that deletion's values, or a 409.
    let entry = p.form.get("entry").and_then(|s| s.parse().ok());
    records::undelete_record(&p.ctx, &cid, &rid, entry).await?;
    Ok(p.done(record_url(p.ctx.ws(), &cid, rid)))
}

#[handler]
pub async fn restore_record(
    p: WsPost<op::RecordUpdate>,
    RecordAt(cid, rid): RecordAt,
) -> poem::Result<Response> {
    let version: i64 = p
        .form
        .get("version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::field("version", "must be a version number"))?;
    records::restore_version(&p.ctx, &p.state.control, &cid, &rid, version).await?;
    Ok(p.done(record_url(p.ctx.ws(), &cid, rid)))
}
