//! Collection definitions: a name, typed fields with flags, and which roles may
//! read, create, update and delete records. The whole definition is sealed in
//! the workspace database (field names are typed by people too); fields carry
//! random ids so a rename never touches a record.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

pub use super::rights::{Permissions, RecordAction};
use crate::error::{Error, FieldError, Result};

pub const MAX_FIELDS: usize = 100;
const MAX_NAME: usize = 64;
const MAX_OPTIONS: usize = 200;

pub use super::field_type::FieldType;
pub use super::retention::Retention;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, poem_openapi::Object)]
pub struct Field {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    #[oai(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    #[oai(default)]
    pub required: bool,
    #[serde(default)]
    #[oai(default)]
    pub unique: bool,
    #[serde(default)]
    #[oai(default)]
    pub pii: bool,
    #[serde(default)]
    #[oai(default)]
    pub searchable: bool,
    #[serde(default)]
    #[oai(default)]
    pub retired: bool,
    /// Choices of `select` and `multi_select`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[oai(default, skip_serializing_if_is_empty)]
    pub options: Vec<String>,
    /// The currency of a `money` field (ISO 4217); required when the field
    /// is made (fields made before that rule may have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub currency: Option<String>,
    /// The collection a `relation` points into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub collection: Option<String>,
    /// A `file` field's largest file in bytes (never above the operator's
    /// `files.max_file_bytes`, which applies when this is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub max_size: Option<u64>,
    /// A `file` field's allowed media types (`image/png`, `image/*`), checked
    /// against the content's sniffed type; empty allows any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[oai(default, skip_serializing_if_is_empty)]
    pub types: Vec<String>,
    /// A `file` field holding several files (else one; a new upload
    /// replaces it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[oai(default, skip_serializing_if = "is_false")]
    pub multiple: bool,
    /// A `file` field's retention window (`model::retention`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub retention: Option<Retention>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What is sealed in `collections.def_ct`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Definition {
    pub name: String,
    pub fields: Vec<Field>,
    #[serde(default)]
    pub permissions: Permissions,
    /// The whole collection's retention window (`model::retention`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

impl Definition {
    pub fn field_by_id(&self, id: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.id == id)
    }

    /// A live (not retired) field by name (case-insensitive) or id.
    pub fn live_field(&self, key: &str) -> Option<&Field> {
        self.fields
            .iter()
            .filter(|f| !f.retired)
            .find(|f| f.name.eq_ignore_ascii_case(key) || f.id == key)
    }

    pub fn live_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.retired)
    }

    /// What names a record for people: its first text-like field with a
    /// value (text, email, phone, URL or select), at most 80 characters.
    pub fn title(&self, values: &super::values::Values) -> Option<String> {
        self.live_fields()
            .filter(|f| {
                matches!(
                    f.kind,
                    FieldType::Text
                        | FieldType::Email
                        | FieldType::Phone
                        | FieldType::Url
                        | FieldType::Select
                )
            })
            .find_map(|f| values.get(&f.id)?.as_str().filter(|s| !s.trim().is_empty()))
            .map(|s| {
                let t: String = s.trim().chars().take(80).collect();
                if s.trim().chars().count() > 80 {
                    format!("{t}…")
                } else {
                    t
                }
            })
    }
}

/// A field as a client describes it (create, or schema change).
#[derive(Clone, Debug, Deserialize, Default, poem_openapi::Object)]
#[serde(deny_unknown_fields)]
pub struct FieldInput {
    /// Present when changing an existing field.
    #[serde(default)]
    pub id: Option<String>,
    #[oai(validator(
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// text, long_text, integer, decimal, money, boolean, date, datetime,
    /// email, phone, url, select, multi_select, relation, member or file.
    #[serde(rename = "type")]
    #[oai(rename = "type")]
    #[oai(validator(
        pattern = r"^(text|long_text|integer|decimal|money|boolean|date|datetime|email|phone|url|select|multi_select|relation|member|file)$"
    ))]
    pub kind: String,
    #[serde(default)]
    #[oai(default)]
    pub required: bool,
    #[serde(default)]
    #[oai(default)]
    pub unique: bool,
    #[serde(default)]
    #[oai(default)]
    pub pii: bool,
    #[serde(default)]
    #[oai(default)]
    pub searchable: bool,
    #[serde(default)]
    #[oai(default)]
    pub retired: bool,
    #[serde(default)]
    #[oai(default)]
    pub options: Vec<String>,
    /// Required for `money` (an ISO 4217 code such as EUR).
    #[serde(default)]
    #[oai(default)]
    pub currency: Option<String>,
    #[serde(default)]
    #[oai(default)]
    pub collection: Option<String>,
    /// `file` only: the largest file in bytes (at most the operator's
    /// `files.max_file_bytes`, the default).
    #[serde(default)]
    #[oai(default, validator(minimum(value = "1")))]
    pub max_size: Option<u64>,
    /// `file` only: allowed media types such as `image/png` or `image/*`,
    /// checked against the content, not the name; empty allows any.
    #[serde(default)]
    #[oai(default)]
    pub types: Vec<String>,
    /// `file` only: several files in the field.
    #[serde(default)]
    #[oai(default)]
    pub multiple: bool,
    /// `file` only: delete the field's files `days` after the date in
    /// `field` (a date or datetime field of this collection).
    #[serde(default)]
    #[oai(default)]
    pub retention: Option<Retention>,
}

pub fn new_field_id() -> String {
    let b: [u8; 6] = rand::random();
    format!("f_{}", hex::encode(b))
}

pub fn validate_collection_name(field: &str, name: &str) -> Result<String> {
    validate_label(field, name)
}

fn validate_label(field: &str, name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() {
        return Err(Error::field(field, "must not be empty"));
    }
    if n.chars().count() > MAX_NAME {
        return Err(Error::field(
            field,
            format!("must be at most {MAX_NAME} characters"),
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(Error::field(field, "must not contain control characters"));
    }
    Ok(n.to_owned())
}

/// Checks one field description; `existing` is the field it changes, if any.
/// `collections` are the ids a relation may point to.
fn build_field(
    path: &str,
    input: &FieldInput,
    existing: Option<&Field>,
    collections: &HashSet<String>,
    errors: &mut Vec<FieldError>,
) -> Option<Field> {
    let mut push = |f: &str, m: &str| {
        errors.push(FieldError {
            field: format!("{path}.{f}"),
            message: m.to_owned(),
        })
    };
    let name = match validate_label("name", &input.name) {
        Ok(n) => Some(n),
        Err(_) => {
            push(
                "name",
                "must be 1 to 64 characters without control characters",
            );
            None
        }
    };
    if matches!(name.as_deref(), Some("id" | "created_at" | "updated_at")) {
        push("name", "is reserved (id, created_at, updated_at)");
    }
    let kind = match FieldType::parse("type", &input.kind) {
        Ok(k) => Some(k),
        Err(_) => {
            push(
                "type",
                &format!("must be one of {}", super::field_type::TYPE_NAMES),
            );
            None
        }
    };
    let (name, kind) = (name?, kind?);
    if let Some(old) = existing {
        if old.kind != kind {
            push(
                "type",
                "cannot change; add a new field and retire this one instead",
            );
        }
    }
    if input.unique && !kind.can_be_unique() {
        push("unique", "is not available for this type");
    }
    let mut options = Vec::new();
    if matches!(kind, FieldType::Select | FieldType::MultiSelect) {
        let mut seen = HashSet::new();
        for (i, o) in input.options.iter().enumerate() {
            match validate_label("option", o) {
                Ok(o) if o.contains(';') => push(&format!("options[{i}]"), "must not contain ';'"),
                Ok(o) => {
                    if seen.insert(o.to_lowercase()) {
                        options.push(o);
                    } else {
                        push(&format!("options[{i}]"), "is listed twice");
                    }
                }
                Err(_) => push(
                    &format!("options[{i}]"),
                    "must be 1 to 64 characters without control characters",
                ),
            }
        }
        if options.is_empty() {
            push("options", "must list at least one choice");
        }
        if options.len() > MAX_OPTIONS {
            push("options", "must list at most 200 choices");
        }
        // Existing choices stay valid for the records that hold them.
        if let Some(old) = existing {
            for o in &old.options {
                if !options.iter().any(|n| n == o) {
                    options.push(o.clone());
                }
            }
        }
    } else if !input.options.is_empty() {
        push("options", "applies only to select and multi_select");
    }
    let currency = match (kind, input.currency.as_deref()) {
        (FieldType::Money, Some(c)) => match super::values::currency(c) {
            Some(_) => Some(c.to_owned()),
            None => {
                push("currency", "must be an ISO 4217 code such as EUR");
                None
            }
        },
        // A new money field names its currency, so every amount in it is in
        // one currency (fields made before this rule keep working without).
        (FieldType::Money, None) if existing.is_none() => {
            push(
                "currency",
                "is required for money: an ISO 4217 code such as EUR",
            );
            None
        }
        (_, Some(_)) => {
            push("currency", "applies only to money");
            None
        }
        (_, None) => None,
    };
    let collection = match (kind, input.collection.as_deref()) {
        (FieldType::Relation, Some(c)) if collections.contains(c) => Some(c.to_owned()),
        (FieldType::Relation, Some(_)) => {
            push("collection", "is not a collection of this workspace");
            None
        }
        (FieldType::Relation, None) => {
            push("collection", "is required for a relation");
            None
        }
        (_, Some(_)) => {
            push("collection", "applies only to relation");
            None
        }
        (_, None) => None,
    };
    if let Some(old) = existing {
        if old.kind == FieldType::Money && old.currency.is_some() && currency != old.currency {
            push("currency", "cannot change once set");
        }
        if old.kind == FieldType::Relation && collection != old.collection {
            push("collection", "cannot change once set");
        }
    }
    let (max_size, types, multiple) = file_settings(kind, input, &mut push);
    Some(Field {
        id: existing.map(|f| f.id.clone()).unwrap_or_else(new_field_id),
        name,
        kind,
        required: input.required,
        unique: input.unique,
        pii: input.pii,
        searchable: input.searchable,
        retired: input.retired,
        options,
        currency,
        collection,
        max_size,
        types,
        multiple,
        retention: input.retention.clone(),
    })
}

/// A `file` field's `max_size`, `types` and `multiple`; any of them on
/// another type is a problem.
fn file_settings(
    kind: FieldType,
    input: &FieldInput,
    push: &mut impl FnMut(&str, &str),
) -> (Option<u64>, Vec<String>, bool) {
    use super::file_ref::{MAX_TYPES, valid_media_pattern};
    if kind != FieldType::File {
        if input.max_size.is_some() {
            push("max_size", "applies only to file");
        }
        if !input.types.is_empty() {
            push("types", "applies only to file");
        }
        if input.multiple {
            push("multiple", "applies only to file");
        }
        if input.retention.is_some() {
            push("retention", "applies only to file fields");
        }
        return (None, Vec::new(), false);
    }
    if input.required {
        push(
            "required",
            "is not available for file fields (files are added after the record is made)",
        );
    }
    if input.max_size == Some(0) {
        push("max_size", "must be at least 1 byte");
    }
    let mut types: Vec<String> = Vec::new();
    for (i, t) in input.types.iter().enumerate() {
        let t = t.trim().to_ascii_lowercase();
        if !valid_media_pattern(&t) {
            push(
                &format!("types[{i}]"),
                "must be a media type such as image/png or image/*",
            );
        } else if !types.contains(&t) {
            types.push(t);
        }
    }
    if types.len() > MAX_TYPES {
        push("types", "must list at most 50 media types");
    }
    (input.max_size, types, input.multiple)
}

/// Two live fields may not share a name. `origin` maps a field id to its
/// index in the request, so the error names a field the caller sent.
fn check_names(
    fields: &[Field],
    origin: &std::collections::HashMap<String, usize>,
    errors: &mut Vec<FieldError>,
) {
    let mut first: std::collections::HashMap<String, &Field> = Default::default();
    for f in fields.iter().filter(|f| !f.retired) {
        match first.get(&f.name.to_lowercase()) {
            None => {
                first.insert(f.name.to_lowercase(), f);
            }
            Some(prev) => errors.push(FieldError {
                field: match origin.get(&f.id).or_else(|| origin.get(&prev.id)) {
                    Some(i) => format!("fields[{i}].name"),
                    None => "fields".into(),
                },
                message: "is used by another field".into(),
            }),
        }
    }
}

/// A new collection's definition, or every problem with it.
pub fn build_definition(
    name: &str,
    fields: &[FieldInput],
    permissions: Option<Permissions>,
    collections: &HashSet<String>,
) -> Result<Definition> {
    build_definition_with(name, fields, permissions, None, collections)
}

/// `build_definition` with the collection's retention window.
pub fn build_definition_with(
    name: &str,
    fields: &[FieldInput],
    permissions: Option<Permissions>,
    retention: Option<Retention>,
    collections: &HashSet<String>,
) -> Result<Definition> {
    let mut errors = Vec::new();
    let name = match validate_collection_name("name", name) {
        Ok(n) => n,
        Err(Error::Validation(mut e)) => {
            errors.append(&mut e);
            String::new()
        }
        Err(e) => return Err(e),
    };
    if fields.len() > MAX_FIELDS {
        errors.push(FieldError {
            field: "fields".into(),
            message: format!("must have at most {MAX_FIELDS} fields"),
        });
    }
    let mut out = Vec::new();
    let mut origin = std::collections::HashMap::new();
    for (i, f) in fields.iter().enumerate() {
        let path = format!("fields[{i}]");
        if f.id.is_some() {
            errors.push(FieldError {
                field: format!("{path}.id"),
                message: "is assigned by the server".into(),
            });
        }
        if let Some(field) = build_field(&path, f, None, collections, &mut errors) {
            origin.insert(field.id.clone(), i);
            out.push(field);
        }
    }
    check_names(&out, &origin, &mut errors);
    let mut def = Definition {
        name,
        fields: out,
        permissions: permissions.unwrap_or_default().normalize(),
        retention,
    };
    super::retention::check(&mut def, &origin, &mut errors);
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(def)
}

/// A schema change: `fields` entries with an id change that field, the others
/// are added; fields not listed stay as they are. Types never change, so
/// every stored record stays readable.
pub fn apply_change(
    def: &Definition,
    name: Option<&str>,
    fields: Option<&[FieldInput]>,
    permissions: Option<Permissions>,
    collections: &HashSet<String>,
) -> Result<Definition> {
    apply_change_with(def, name, fields, permissions, None, collections)
}

/// `apply_change`, also setting or (`Some(None)`) removing the collection's retention window.
pub fn apply_change_with(
    def: &Definition,
    name: Option<&str>,
    fields: Option<&[FieldInput]>,
    permissions: Option<Permissions>,
    retention: Option<Option<Retention>>,
    collections: &HashSet<String>,
) -> Result<Definition> {
    let mut errors = Vec::new();
    let mut next = def.clone();
    if let Some(r) = retention {
        next.retention = r;
    }
    if let Some(n) = name {
        match validate_collection_name("name", n) {
            Ok(n) => next.name = n,
            Err(Error::Validation(mut e)) => errors.append(&mut e),
            Err(e) => return Err(e),
        }
    }
    if let Some(p) = permissions {
        next.permissions = p.normalize();
    }
    let mut origin = std::collections::HashMap::new();
    for (i, f) in fields.unwrap_or_default().iter().enumerate() {
        let path = format!("fields[{i}]");
        if let Some(id) = &f.id {
            origin.insert(id.clone(), i);
        }
        match &f.id {
            Some(id) => match next.fields.iter().position(|x| &x.id == id) {
                Some(pos) => {
                    let old = next.fields[pos].clone();
                    if let Some(nf) = build_field(&path, f, Some(&old), collections, &mut errors) {
                        next.fields[pos] = nf;
                    }
                }
                None => errors.push(FieldError {
                    field: format!("{path}.id"),
                    message: "is not a field of this collection".into(),
                }),
            },
            None => {
                if let Some(nf) = build_field(&path, f, None, collections, &mut errors) {
                    origin.insert(nf.id.clone(), i);
                    next.fields.push(nf);
                }
            }
        }
    }
    if next.fields.len() > MAX_FIELDS {
        errors.push(FieldError {
            field: "fields".into(),
            message: format!("must have at most {MAX_FIELDS} fields"),
        });
    }
    check_names(&next.fields, &origin, &mut errors);
    super::retention::check(&mut next, &origin, &mut errors);
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(next)
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
