//! Retention windows: "delete this N days after that date". A window sits on
//! a `file` field (its files go once due; the record stays) or on a whole
//! collection (the record goes, its files with it). It counts from a live
//! `date` or `datetime` field of the same collection, kept by id so a
//! rename changes nothing. A record whose date is empty is never due.
//!
//! Due means: the date's start (00:00 UTC for a `date`) or the instant (a
//! `datetime`) plus `days` × 24 h is at or before now.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::field_type::FieldType;
use super::schema::Definition;
use crate::error::FieldError;

pub const MAX_DAYS: i64 = 36_500;

/// `{"field": "check_out", "days": 30}`: on input `field` is the date
/// field's name or id; stored and answered, its id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, poem_openapi::Object)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// The `date` or `datetime` field the window counts from (name or id).
    #[oai(validator(min_length = 1, max_length = 64))]
    pub field: String,
    /// Days after that date (1 to 36500).
    #[oai(validator(minimum(value = "1"), maximum(value = "36500")))]
    pub days: i64,
}

/// Resolves every window of `def` (field names to ids) and checks it: the
/// date field is live and a `date` or `datetime`, `days` is 1 to 36500.
/// `origin` maps a field id to its index in the request, so a problem names
/// what the caller sent.
pub fn check(def: &mut Definition, origin: &HashMap<String, usize>, errors: &mut Vec<FieldError>) {
    let lookup = def.clone();
    if let Some(r) = def.retention.as_mut() {
        resolve(&lookup, r, "retention", origin, errors);
    }
    for f in def.fields.iter_mut() {
        let Some(r) = f.retention.as_mut() else {
            continue;
        };
        let path = match origin.get(&f.id) {
            Some(i) => format!("fields[{i}].retention"),
            // A window the request did not touch, broken by a change to its
            // date field: the date field's own entry names it when it can.
            None => "retention".to_owned(),
        };
        if f.retired {
            continue;
        }
        resolve(&lookup, r, &path, origin, errors);
    }
}

fn resolve(
    def: &Definition,
    r: &mut Retention,
    path: &str,
    origin: &HashMap<String, usize>,
    errors: &mut Vec<FieldError>,
) {
    let mut push = |field: String, message: String| errors.push(FieldError { field, message });
    if !(1..=MAX_DAYS).contains(&r.days) {
        push(
            format!("{path}.days"),
            format!("must be a whole number of days from 1 to {MAX_DAYS}"),
        );
    }
    let key = r.field.trim();
    let found = def
        .live_field(key)
        .or_else(|| def.fields.iter().find(|f| f.id == key));
    match found {
        None => push(
            format!("{path}.field"),
            format!("names no field of this collection (\"{key}\")"),
        ),
        Some(f) if f.retired => match origin.get(&f.id) {
            Some(i) => push(
                format!("fields[{i}].retired"),
                "is the date a retention window counts from; remove or change that window first"
                    .into(),
            ),
            None => push(
                format!("{path}.field"),
                format!("names the retired field \"{}\"", f.name),
            ),
        },
        Some(f) if !matches!(f.kind, FieldType::Date | FieldType::Datetime) => push(
            format!("{path}.field"),
            format!(
                "must name a date or datetime field; \"{}\" is a {}",
                f.name,
                f.kind.as_str()
            ),
        ),
        Some(f) => r.field = f.id.clone(),
    }
}

/// When a value of a `date` or `datetime` field plus `days` falls due, in
/// Unix seconds; `None` for an empty or unreadable value (never due).
pub fn due_at(value: Option<&Value>, days: i64) -> Option<i64> {
    let s = value?.as_str()?.trim();
    let start = if s.len() == 10 {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(s, &fmt)
            .ok()?
            .midnight()
            .assume_utc()
            .unix_timestamp()
    } else {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .ok()?
            .unix_timestamp()
    };
    start.checked_add(days.checked_mul(86_400)?)
}

/// Whether `values` are past `r`'s window at `now` (Unix seconds).
pub fn is_due(r: &Retention, values: &super::values::Values, now: i64) -> bool {
    due_at(values.get(&r.field), r.days).is_some_and(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_date_is_due_from_its_midnight_plus_the_days() {
        let at = due_at(Some(&json!("2020-01-01")), 30).unwrap();
        assert_eq!(crate::clock::rfc3339(at), "2020-01-31T00:00:00Z");
        let at = due_at(Some(&json!("2020-01-01T12:00:00Z")), 1).unwrap();
        assert_eq!(crate::clock::rfc3339(at), "2020-01-02T12:00:00Z");
        assert_eq!(due_at(None, 30), None);
        assert_eq!(due_at(Some(&json!("")), 30), None);
        assert_eq!(due_at(Some(&json!(12)), 30), None);
    }
}
