//! The schema editor's field rows: one row per field (its name, type,
//! flags and its type's settings), what a stored field shows in it, and the
//! rows read back from a post.

use maud::{Markup, html};

use super::forms::one;
use crate::records::schema::{Field, FieldInput, FieldType};

fn type_select(
    name: &str,
    id: &str,
    selected: Option<FieldType>,
    disabled: bool,
    invalid: Option<&str>,
    described: Option<&str>,
) -> Markup {
    html! {
        select id=(id) name=(name) disabled[disabled] aria-label="Field type" aria-invalid=[invalid] aria-describedby=[described] data-field-type {
            @if selected.is_none() { option value="" { "— type —" } }
            @for t in FieldType::ALL {
                option value=(t.as_str()) selected[Some(t) == selected] { (t.as_str().replace('_', " ")) }
            }
        }
    }
}

/// A stored field as the editor shows it (the same shape a post gives back).
pub(super) fn as_input(f: &Field) -> FieldInput {
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
        max_size: f.max_size,
        types: f.types.clone(),
        multiple: f.multiple,
        retention: f.retention.clone(),
    }
}

/// Which types a type-specific setting belongs to (`data-for`, read by
/// app.js to show it only for them).
fn setting_for(key: &str) -> &'static str {
    match key {
        "options" => "select multi_select",
        "currency" => "money",
        "max_size" | "types" | "multiple" | "retention" => "file",
        _ => "relation",
    }
}

/// One row of the field table: a stored field (its type fixed, only its
/// type's setting shown), a field sent back with errors (as typed), or a
/// blank row (every setting shown and labelled; app.js shows only the
/// chosen type's).
pub(super) fn field_row(
    i: usize,
    f: Option<&FieldInput>,
    relation_targets: &[(String, String)],
    errors: &[(&'static str, &str)],
) -> Markup {
    let p = |k: &str| format!("f{i}.{k}");
    let id = |k: &str| format!("in-f{i}-{k}");
    let err_id = |k: &str| format!("err-f{i}-{k}");
    let bad = |k: &str| errors.iter().any(|(e, _)| *e == k);
    let inv = |k: &str| bad(k).then_some("true");
    let described = |k: &str| bad(k).then(|| err_id(k));
    let message = |k: &str| {
        html! {
            @if bad(k) {
                span.field-error id=(err_id(k)) {
                    @for (_, m) in errors.iter().filter(|(e, _)| *e == k) { (m) " " }
                }
            }
        }
    };
    let flag = |k: &str, on: bool, label: &str| {
        html! {
            label.check { input id=(id(k)) type="checkbox" name=(p(k)) value="on" checked[on] aria-invalid=[inv(k)] aria-describedby=[described(k)]; " " (label) }
            (message(k))
        }
    };
    let stored = f.is_some_and(|f| f.id.is_some());
    let kind = f.and_then(|f| FieldType::parse("type", &f.kind).ok());
    // A stored field shows only its own type's setting; other rows all.
    let shows = |key: &str| {
        !stored || kind.is_some_and(|k| setting_for(key).split(' ').any(|t| t == k.as_str()))
    };
    let stored_target = f
        .and_then(|f| f.collection.as_deref())
        .filter(|_| stored && kind == Some(FieldType::Relation));
    let fixed_currency = stored && f.is_some_and(|f| f.currency.is_some());
    html! {
        tr.field-row {
            td {
                @if let Some(fid) = f.and_then(|f| f.id.as_deref()) { input type="hidden" name=(p("id")) value=(fid); input type="hidden" name=(p("type")) value=(f.map(|f| f.kind.as_str()).unwrap_or_default()); }
                input id=(id("name")) name=(p("name")) value=(f.map(|f| f.name.as_str()).unwrap_or("")) placeholder="Field name" aria-label="Field name" aria-invalid=[inv("name")] aria-describedby=[described("name")];
                (message("name"))
            }
            td {
                (type_select(&p("type"), &id("type"), kind, stored, inv("type"), described("type").as_deref()))
                (message("type"))
            }
            td.flags {
                (flag("required", f.is_some_and(|f| f.required), "required"))
                (flag("unique", f.is_some_and(|f| f.unique), "unique"))
                (flag("pii", f.is_some_and(|f| f.pii), "personal data"))
                (flag("searchable", f.is_some_and(|f| f.searchable), "searchable"))
                @if stored { (flag("retired", f.is_some_and(|f| f.retired), "retired")) }
            }
            td.settings {
                @if shows("options") {
                    label.opt data-for=(setting_for("options")) {
                        span { "Choices (select, multi select), comma separated" }
                        input id=(id("options")) name=(p("options")) value=(f.map(|f| f.options.join(", ")).unwrap_or_default()) placeholder="e.g. open, paid" aria-invalid=[inv("options")] aria-describedby=[described("options")];
                        (message("options"))
                    }
                }
                @if shows("currency") {
                    label.opt data-for=(setting_for("currency")) {
                        span { "Currency (money)" }
                        input id=(id("currency")) name=(p("currency")) value=(f.and_then(|f| f.currency.clone()).unwrap_or_default()) placeholder="e.g. EUR" maxlength="3" readonly[fixed_currency] aria-invalid=[inv("currency")] aria-describedby=[described("currency")];
                        (message("currency"))
                    }
                }
                @if shows("max_size") {
                    label.opt data-for=(setting_for("max_size")) {
                        span { "Largest file in bytes (file); empty: the appliance's limit" }
                        input id=(id("max_size")) name=(p("max_size")) inputmode="numeric" pattern="[0-9]*" value=(f.and_then(|f| f.max_size).map(|n| n.to_string()).unwrap_or_default()) placeholder="e.g. 5000000" aria-invalid=[inv("max_size")] aria-describedby=[described("max_size")];
                        (message("max_size"))
                    }
                    label.opt data-for=(setting_for("types")) {
                        span { "Allowed file types (file), comma separated; empty: any" }
                        input id=(id("types")) name=(p("types")) value=(f.map(|f| f.types.join(", ")).unwrap_or_default()) placeholder="e.g. image/*, application/pdf" aria-invalid=[inv("types")] aria-describedby=[described("types")];
                        (message("types"))
                    }
                    label.opt.check data-for=(setting_for("multiple")) {
                        input id=(id("multiple")) type="checkbox" name=(p("multiple")) value="on" checked[f.is_some_and(|f| f.multiple)] aria-invalid=[inv("multiple")] aria-describedby=[described("multiple")];
                        " Several files (file)"
                        (message("multiple"))
                    }
                    label.opt data-for=(setting_for("retention")) {
                        span { "Delete the files this many days after a date (file); empty: keep them" }
                        input id=(id("retention_days")) name=(p("retention.days")) inputmode="numeric" pattern="[0-9]*" value=(f.and_then(|f| f.retention.as_ref()).map(|r| r.days.to_string()).unwrap_or_default()) placeholder="e.g. 30" aria-invalid=[inv("retention_days")] aria-describedby=[described("retention_days")];
                        (message("retention_days"))
                    }
                    label.opt data-for=(setting_for("retention")) {
                        span { "…after this date field (file), by name" }
                        input id=(id("retention_field")) name=(p("retention.field")) value=(f.and_then(|f| f.retention.as_ref()).map(|r| r.field.as_str()).unwrap_or_default()) placeholder="e.g. Check-out" aria-invalid=[inv("retention_field")] aria-describedby=[described("retention_field")];
                        (message("retention_field"))
                    }
                }
                @if let Some(target) = stored_target {
                    // Fixed once set: sent as it is, shown by name.
                    input type="hidden" name=(p("collection")) value=(target);
                    span.opt { "Related collection: " (relation_targets.iter().find(|(tid, _)| tid == target).map(|(_, n)| n.as_str()).unwrap_or(target)) }
                    (message("collection"))
                } @else if shows("collection") {
                    label.opt data-for=(setting_for("collection")) {
                        span { "Related collection (relation)" }
                        select id=(id("collection")) name=(p("collection")) aria-invalid=[inv("collection")] aria-describedby=[described("collection")] {
                            option value="" { "— choose —" }
                            @for (cid, name) in relation_targets {
                                option value=(cid) selected[f.and_then(|f| f.collection.as_deref()) == Some(cid.as_str())] { (name) }
                            }
                        }
                        (message("collection"))
                    }
                }
            }
        }
    }
}

/// Reads the schema editor's rows. Blank new rows are skipped.
pub(super) fn parse_fields(pairs: &[(String, String)]) -> Vec<FieldInput> {
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
            // A comma-separated list (`a, b,c`), blanks dropped.
            let list = |k: &str| -> Vec<String> {
                get(k)
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            // A value, or nothing for a blank one.
            let given = |k: &str| get(k).filter(|s| !s.is_empty());
            let id = given("id").map(str::to_owned);
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
                options: list("options"),
                currency: given("currency").map(str::to_uppercase),
                collection: given("collection").map(str::to_owned),
                // A size that is not a number is sent as 0, which the
                // schema refuses at this field ("at least 1 byte").
                max_size: given("max_size").map(|s| s.parse().unwrap_or(0)),
                types: list("types"),
                multiple: flag("multiple"),
                retention: super::schema_retention::parse(pairs, &format!("f{i}.retention.")),
            })
        })
        .collect()
}
