//! Record values: checked and normalised against a collection's fields on the
//! server, whatever the client did. Values are stored by field id; clients see
//! them by field name. Money is integer minor units plus an ISO 4217 code, and
//! decimals travel as strings, so no value ever passes through a float.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::schema::{Definition, Field, FieldType};
use crate::error::{Error, FieldError, Result};

/// Field id → normalised value. Absent means empty.
pub type Values = BTreeMap<String, Value>;

const MAX_TEXT: usize = 1_000;
const MAX_LONG_TEXT: usize = 20_000;
const MAX_URL: usize = 2_048;

/// What validation needs to know outside the record itself.
pub trait Lookup {
    /// Is this user an active member of the workspace?
    fn is_member(&self, user_id: &str) -> bool;
    /// Does a live record with this id exist in that collection?
    fn record_exists(&self, collection: &str, record_id: &str) -> Result<bool>;
}

pub fn currency(code: &str) -> Option<iso_currency::Currency> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    iso_currency::Currency::from_code(code)
}

/// Digits after the decimal point for a currency (2 for EUR, 0 for JPY).
pub fn minor_digits(code: &str) -> u32 {
    currency(code)
        .and_then(|c| c.exponent())
        .map(u32::from)
        .unwrap_or(0)
}

/// Checks `input` (field name or id → JSON value) and merges it over `base`
/// (the record's current values, for an update). Every problem is reported,
/// each named `values.<field>`.
pub fn validate(
    def: &Definition,
    input: &Map<String, Value>,
    base: Option<&Values>,
    lookup: &dyn Lookup,
) -> Result<Values> {
    let mut out = base.cloned().unwrap_or_default();
    let mut errors = Vec::new();
    for (key, value) in input {
        let Some(field) = def.live_field(key) else {
            errors.push(FieldError {
                field: format!("values.{key}"),
                message: "is not a field of this collection".into(),
            });
            continue;
        };
        if field.kind == FieldType::File {
            errors.push(FieldError {
                field: format!("values.{}", field.name),
                message: "is a file field: upload to or delete from its files route \
                          (.../records/{id}/files/{field})"
                    .into(),
            });
            continue;
        }
        if value.is_null() {
            out.remove(&field.id);
            continue;
        }
        match normalize(field, value, lookup) {
            Ok(v) => {
                out.insert(field.id.clone(), v);
            }
            Err(message) => errors.push(FieldError {
                field: format!("values.{}", field.name),
                message,
            }),
        }
    }
    for f in def.live_fields() {
        if f.required
            && !out.contains_key(&f.id)
            && !errors.iter().any(|e| e.field.ends_with(&f.name))
        {
            errors.push(FieldError {
                field: format!("values.{}", f.name),
                message: "is required".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::Validation(errors))
    }
}

fn as_str(v: &Value) -> std::result::Result<&str, String> {
    v.as_str().ok_or_else(|| "must be a string".to_owned())
}

fn bounded(v: &Value, max: usize) -> std::result::Result<String, String> {
    let s = as_str(v)?;
    if s.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_owned())
}

fn normalize(field: &Field, v: &Value, lookup: &dyn Lookup) -> std::result::Result<Value, String> {
    Ok(match field.kind {
        FieldType::Text => {
            let s = bounded(v, MAX_TEXT)?;
            if s.contains('\n') {
                return Err("must be a single line; use a long_text field for more".into());
            }
            json!(s)
        }
        FieldType::LongText => json!(bounded(v, MAX_LONG_TEXT)?),
        FieldType::Integer => match v.as_i64() {
            Some(n) => json!(n),
            None => return Err("must be a whole number between -2^63 and 2^63-1".into()),
        },
        FieldType::Decimal => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err("must be a decimal number such as \"12.50\"".into()),
            };
            json!(decimal(&s).ok_or("must be a decimal number such as \"12.50\"")?)
        }
        FieldType::Money => money(field, v)?,
        FieldType::Boolean => match v.as_bool() {
            Some(b) => json!(b),
            None => return Err("must be true or false".into()),
        },
        FieldType::Date => {
            let s = as_str(v)?;
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(s, &fmt).map_err(|_| "must be a date like 2026-01-31")?;
            json!(s)
        }
        FieldType::Datetime => {
            let s = as_str(v)?;
            let rfc = time::format_description::well_known::Rfc3339;
            let t = time::OffsetDateTime::parse(s, &rfc)
                .map_err(|_| "must be an RFC 3339 date-time like 2026-01-31T09:30:00Z")?;
            let utc = t.to_offset(time::UtcOffset::UTC);
            json!(utc.format(&rfc).map_err(|_| "is out of range")?)
        }
        FieldType::Email => {
            let s = as_str(v)?;
            json!(
                super::email::validate_email("email", s)
                    .map_err(|_| "must be an email address like name@example.com")?
            )
        }
        FieldType::Phone => json!(
            phone(as_str(v)?)
                .ok_or("must be a phone number of 7 to 15 digits, optionally starting with +")?
        ),
        FieldType::Url => {
            let s = as_str(v)?.trim();
            let ok = s.len() <= MAX_URL
                && url::Url::parse(s)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                return Err("must be an http or https URL".into());
            }
            json!(s)
        }
        FieldType::Select => json!(option(field, as_str(v)?)?),
        FieldType::MultiSelect => {
            let items = v.as_array().ok_or("must be a list of choices")?;
            let mut out: Vec<String> = Vec::new();
            for item in items {
                let o = option(field, as_str(item)?)?;
                if !out.contains(&o) {
                    out.push(o);
                }
            }
            json!(out)
        }
        FieldType::Relation => {
            let id = as_str(v)?;
            let target = field.collection.as_deref().unwrap_or_default();
            let exists = uuid::Uuid::parse_str(id).is_ok()
                && lookup
                    .record_exists(target, id)
                    .map_err(|_| "could not be checked".to_owned())?;
            if !exists {
                return Err("must be the id of a record in the related collection".into());
            }
            json!(id)
        }
        // Never set from values (`validate` refuses them before this).
        FieldType::File => return Err("is set by uploading a file".into()),
        FieldType::Member => {
            let id = as_str(v)?;
            if !lookup.is_member(id) {
                return Err("must be the user id of a member of this workspace".into());
            }
            json!(id)
        }
    })
}

fn option(field: &Field, s: &str) -> std::result::Result<String, String> {
    field
        .options
        .iter()
        .find(|o| o.eq_ignore_ascii_case(s.trim()))
        .cloned()
        .ok_or_else(|| format!("must be one of: {}", field.options.join(", ")))
}

/// Canonical decimal text: optional `-`, digits, optional fraction; leading
/// zeros dropped, the fraction kept as written (its scale may matter).
pub fn decimal(s: &str) -> Option<String> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || int.len() > 30 || frac.is_some_and(|f| !digits(f) || f.len() > 12) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut out = String::new();
    let zero = int == "0" && frac.is_none_or(|f| f.bytes().all(|b| b == b'0'));
    if neg && !zero {
        out.push('-');
    }
    out.push_str(int);
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

fn money(field: &Field, v: &Value) -> std::result::Result<Value, String> {
    const SHAPE: &str = "must be {\"amount_minor\": integer, \"currency\": \"EUR\"}";
    let obj = v.as_object().ok_or(SHAPE)?;
    if obj.keys().any(|k| k != "amount_minor" && k != "currency") {
        return Err(SHAPE.into());
    }
    let amount = obj
        .get("amount_minor")
        .and_then(Value::as_i64)
        .ok_or("amount_minor must be a whole number of minor units (cents)")?;
    let code = obj
        .get("currency")
        .and_then(Value::as_str)
        .ok_or("currency must be an ISO 4217 code such as EUR")?;
    if currency(code).is_none() {
        return Err("currency must be an ISO 4217 code such as EUR".into());
    }
    if let Some(fixed) = &field.currency {
        if fixed != code {
            return Err(format!("currency must be {fixed}"));
        }
    }
    Ok(json!({ "amount_minor": amount, "currency": code }))
}

/// Digits with an optional leading `+`; spaces, dots, dashes and brackets are
/// dropped.
pub fn phone(s: &str) -> Option<String> {
    let s = s.trim();
    let plus = s.starts_with('+');
    let mut digits = String::new();
    for (i, c) in s.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    if !(7..=15).contains(&digits.len()) {
        return None;
    }
    Some(if plus { format!("+{digits}") } else { digits })
}

/// The values as clients see them: live fields, by name.
pub fn into_api(def: &Definition, mut values: Values) -> Map<String, Value> {
    def.live_fields()
        .filter_map(|f| values.remove(&f.id).map(|v| (f.name.clone(), v)))
        .collect()
}

/// A record's values as clients see them (what `into_api` gives: live
/// fields, by name), written by serde straight from the stored map, without
/// building that map first. Fields come in schema order.
pub struct ApiValues {
    pub def: std::sync::Arc<Definition>,
    pub values: Values,
}

impl serde::Serialize for ApiValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for f in self.def.live_fields() {
            if let Some(v) = self.values.get(&f.id) {
                m.serialize_entry(&f.name, v)?;
            }
        }
        m.end()
    }
}

/// `into_api` of a copy.
pub fn to_api(def: &Definition, values: &Values) -> Map<String, Value> {
    into_api(def, values.clone())
}

/// Money as people write it: `123.45 EUR`.
pub fn money_text(v: &Value) -> String {
    let amount = v.get("amount_minor").and_then(Value::as_i64).unwrap_or(0);
    let code = v.get("currency").and_then(Value::as_str).unwrap_or("");
    let digits = minor_digits(code);
    if digits == 0 {
        return format!("{amount} {code}");
    }
    let scale = 10i128.pow(digits);
    let a = i128::from(amount);
    let sign = if a < 0 { "-" } else { "" };
    let a = a.abs();
    format!(
        "{sign}{}.{:0width$} {code}",
        a / scale,
        a % scale,
        width = digits as usize
    )
}

/// One value as text (CSV cells, search text, the UI table).
pub fn to_text(field: &Field, v: &Value) -> String {
    match field.kind {
        FieldType::Money => money_text(v),
        FieldType::MultiSelect => v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default(),
        FieldType::File => super::file_ref::refs(Some(v))
            .into_iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join("; "),
        _ => match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

/// Turns text (a CSV cell, a form input) into the JSON a client would send,
/// for `validate` to check. Empty text means "no value".
pub fn from_text(field: &Field, s: &str) -> std::result::Result<Option<Value>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    Ok(Some(match field.kind {
        FieldType::Integer => json!(
            t.parse::<i64>()
                .map_err(|_| "must be a whole number".to_owned())?
        ),
        FieldType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => json!(true),
            "false" | "no" | "0" | "off" => json!(false),
            _ => return Err("must be true or false".into()),
        },
        FieldType::Money => parse_money(field, t)?,
        FieldType::MultiSelect => json!(
            t.split(';')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
        ),
        FieldType::LongText => json!(s),
        _ => json!(t),
    }))
}

/// `123.45 EUR`, `EUR 123.45`, or `123.45` when the field fixes its currency.
fn parse_money(field: &Field, t: &str) -> std::result::Result<Value, String> {
    let parts: Vec<&str> = t.split_whitespace().collect();
    let (amount, code) = match parts.as_slice() {
        [a, c] if currency(c).is_some() => (*a, c.to_string()),
        [c, a] if currency(c).is_some() => (*a, c.to_string()),
        [a] => match &field.currency {
            Some(c) => (*a, c.clone()),
            None => return Err("must be an amount and a currency, like 123.45 EUR".into()),
        },
        _ => return Err("must be an amount and a currency, like 123.45 EUR".into()),
    };
    let digits = minor_digits(&code);
    let minor = to_minor(amount, digits).ok_or_else(|| {
        format!("must be an amount with at most {digits} decimal places, like 123.45 {code}")
    })?;
    Ok(json!({ "amount_minor": minor, "currency": code }))
}

/// `12.3` with 2 digits → 1230, exactly, by string arithmetic.
pub fn to_minor(amount: &str, digits: u32) -> Option<i64> {
    let canon = decimal(amount)?;
    let (neg, body) = match canon.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, canon.as_str()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if frac.len() > digits as usize {
        return None;
    }
    let frac = format!("{frac:0<width$}", width = digits as usize);
    let n: i64 = format!("{int}{frac}").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// The text a searchable field contributes to the index.
pub fn search_text(def: &Definition, values: &Values) -> String {
    let mut out = String::new();
    for f in def.live_fields().filter(|f| f.searchable) {
        if let Some(v) = values.get(&f.id) {
            if f.kind == FieldType::Boolean {
                continue;
            }
            out.push_str(&to_text(f, v));
            out.push('\n');
        }
    }
    out
}

/// The normalised text a unique or pii blind index is computed over.
pub fn index_text(field: &Field, v: &Value) -> String {
    match field.kind {
        FieldType::Text | FieldType::Email | FieldType::Select => {
            to_text(field, v).trim().to_lowercase()
        }
        FieldType::Phone => to_text(field, v).trim_start_matches('+').to_owned(),
        _ => to_text(field, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::FieldInput;
    use std::collections::HashSet;

    struct NoRefs;
    impl Lookup for NoRefs {
        fn is_member(&self, u: &str) -> bool {
            u == "u1"
        }
        fn record_exists(&self, _: &str, _: &str) -> Result<bool> {
            Ok(false)
        }
    }

    fn def(kinds: &[(&str, &str)]) -> Definition {
        let inputs: Vec<FieldInput> = kinds
            .iter()
            .map(|(n, k)| FieldInput {
                name: n.to_string(),
                kind: k.to_string(),
                options: if k.contains("select") {
                    vec!["Red".into(), "Blue".into()]
                } else {
                    vec![]
                },
                currency: (*k == "money").then(|| "EUR".into()),
                ..Default::default()
            })
            .collect();
        super::super::schema::build_definition("T", &inputs, None, &HashSet::new()).unwrap()
    }

    #[test]
    fn money_and_decimals_are_exact() {
        assert_eq!(decimal("0012.50").as_deref(), Some("12.50"));
        assert_eq!(decimal("-0.0").as_deref(), Some("0.0"));
        assert_eq!(decimal("1e5"), None);
        assert_eq!(to_minor("123.45", 2), Some(12345));
        assert_eq!(to_minor("0.1", 2), Some(10));
        assert_eq!(to_minor("1.005", 2), None);
        assert_eq!(to_minor("-7", 0), Some(-7));
        assert_eq!(
            money_text(&json!({"amount_minor": -5, "currency": "EUR"})),
            "-0.05 EUR"
        );
        assert_eq!(
            money_text(&json!({"amount_minor": 1200, "currency": "JPY"})),
            "1200 JPY"
        );
        let d = def(&[("m", "money")]);
        let f = &d.fields[0];
        assert_eq!(
            from_text(f, "123.45 EUR").unwrap().unwrap(),
            json!({"amount_minor": 12345, "currency": "EUR"})
        );
        assert!(from_text(f, "12.345 EUR").is_err());
        assert!(from_text(f, "12 EURO").is_err());
    }

    #[test]
    fn names_each_bad_field() {
        let d = def(&[
            ("n", "integer"),
            ("e", "email"),
            ("s", "select"),
            ("m", "member"),
            ("p", "phone"),
        ]);
        let input = json!({"n": 1.5, "e": "nope", "s": "Green", "m": "u2", "p": "12", "x": 1});
        let Err(Error::Validation(errs)) = validate(&d, input.as_object().unwrap(), None, &NoRefs)
        else {
            panic!("expected errors")
        };
        let mut names: Vec<_> = errs.iter().map(|e| e.field.clone()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "values.e", "values.m", "values.n", "values.p", "values.s", "values.x"
            ]
        );
        let ok = json!({"n": 3, "e": "a@b.co", "s": "red", "m": "u1", "p": "+49 (30) 123-4567"});
        let v = validate(&d, ok.as_object().unwrap(), None, &NoRefs).unwrap();
        let api = to_api(&d, &v);
        assert_eq!(api["s"], json!("Red"));
        assert_eq!(api["p"], json!("+49301234567"));
    }
}

#[cfg(test)]
#[path = "values_proptests.rs"]
pub(crate) mod proptests;
