//! The schema editor's retention settings: the whole collection's window
//! ("delete each record N days after a date field") and, in a file field's
//! row, that field's window; what the collection page says about them.

use maud::{Markup, html};

use super::forms::one;
use crate::error::FieldError;
use crate::records::schema::{Definition, FieldType, Retention};

/// A window as the editor shows it: the date field by name (a name or an
/// id is accepted back).
pub(super) fn for_editing(def: &Definition, r: &Retention) -> Retention {
    Retention {
        field: def
            .field_by_id(&r.field)
            .map(|f| f.name.clone())
            .unwrap_or_else(|| r.field.clone()),
        days: r.days,
    }
}

/// A window read from the inputs `<prefix>field` and `<prefix>days`; both
/// empty is none. Days that are not a number are sent as 0, which the
/// schema refuses at that input.
pub(super) fn parse(pairs: &[(String, String)], prefix: &str) -> Option<Retention> {
    let get = |k: &str| {
        one(pairs, &format!("{prefix}{k}"))
            .map(str::trim)
            .unwrap_or_default()
    };
    let (field, days) = (get("field"), get("days"));
    if field.is_empty() && days.is_empty() {
        return None;
    }
    Some(Retention {
        field: field.to_owned(),
        days: days.parse().unwrap_or(0),
    })
}

/// The collection's window in the schema form (`retention.field`,
/// `retention.days`).
pub(super) fn collection_inputs(r: Option<&Retention>, errors: &[FieldError]) -> Markup {
    let err = |k: &str| {
        errors
            .iter()
            .find(|e| e.field == format!("retention.{k}"))
            .map(|e| e.message.as_str())
    };
    let days = r.map(|r| r.days.to_string()).unwrap_or_default();
    html! {
        h2 { "Retention" }
        p.muted id="retention-hint" { "Delete each record, with its files, a number of days after a date in it (for example 30 days after Check-out). A record whose date is empty is kept. Leave both empty to keep records until someone deletes them." }
        input type="hidden" name="retention.present" value="1";
        label for="retention-days" { "Days after the date" }
        input id="retention-days" name="retention.days" inputmode="numeric" pattern="[0-9]*" value=(days) placeholder="e.g. 30" aria-invalid=[err("days").map(|_| "true")] aria-describedby=[err("days").map(|_| "err-retention-days")];
        @if let Some(m) = err("days") { span.field-error id="err-retention-days" { (m) } }
        label for="retention-field" { "Date field (its name)" }
        input id="retention-field" name="retention.field" value=(r.map(|r| r.field.as_str()).unwrap_or("")) placeholder="e.g. Check-out" aria-invalid=[err("field").map(|_| "true")] aria-describedby=[err("field").map(|_| "err-retention-field")];
        @if let Some(m) = err("field") { span.field-error id="err-retention-field" { (m) } }
    }
}

/// What the collection page says about its windows, one sentence each:
/// "Records are deleted 30 days after Check-out", "Files in ID photo are
/// deleted 30 days after Check-out".
pub fn sentences(def: &Definition) -> Vec<String> {
    let date = |r: &Retention| {
        def.field_by_id(&r.field)
            .map(|f| f.name.clone())
            .unwrap_or_else(|| r.field.clone())
    };
    let days = |n: i64| {
        if n == 1 {
            "1 day".to_owned()
        } else {
            format!("{n} days")
        }
    };
    let mut out = Vec::new();
    if let Some(r) = &def.retention {
        out.push(format!(
            "Records are deleted, with their files, {} after {}.",
            days(r.days),
            date(r)
        ));
    }
    for f in def.live_fields().filter(|f| f.kind == FieldType::File) {
        if let Some(r) = &f.retention {
            out.push(format!(
                "Files in {} are deleted {} after {}.",
                f.name,
                days(r.days),
                date(r)
            ));
        }
    }
    out
}

/// The sentences as the collection page shows them (nothing without a
/// window).
pub fn notice(def: &Definition) -> Markup {
    let s = sentences(def);
    html! {
        @if !s.is_empty() {
            p.muted id="retention" {
                @for line in &s { (line) " " }
                "A record whose date is empty is kept."
            }
        }
    }
}
