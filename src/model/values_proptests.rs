//! Hostile input for record values and CSV imports: a value of any JSON
//! shape for a field of every type, any cell text, and any CSV body are
//! answered with a value or an error naming the field (or line), never a
//! panic. Shared by `csv_io`'s import tests (`definition`, `json`).

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{Lookup, decimal, from_text, phone, to_minor, validate};
use crate::error::{Error, Result};
use crate::model::schema::{Definition, FieldInput, build_definition};

pub const KINDS: &[&str] = &[
    "text",
    "long_text",
    "integer",
    "decimal",
    "money",
    "boolean",
    "date",
    "datetime",
    "email",
    "phone",
    "url",
    "select",
    "multi_select",
    "relation",
    "member",
];

/// A collection with one field of every type, named after its type.
pub fn definition() -> Definition {
    let other = "01a24416-bbb1-77f1-be08-66f5a1a94aff".to_owned();
    let fields: Vec<FieldInput> = KINDS
        .iter()
        .map(|k| FieldInput {
            name: (*k).into(),
            kind: (*k).into(),
            options: if k.ends_with("select") {
                vec!["A".into(), "B".into()]
            } else {
                Vec::new()
            },
            currency: (*k == "money").then(|| "EUR".into()),
            collection: (*k == "relation").then(|| other.clone()),
            ..Default::default()
        })
        .collect();
    build_definition("Every type", &fields, None, &HashSet::from([other])).unwrap()
}

pub struct NoOne;

impl Lookup for NoOne {
    fn is_member(&self, _: &str) -> bool {
        false
    }
    fn record_exists(&self, _: &str, _: &str) -> Result<bool> {
        Ok(false)
    }
}

/// Any JSON, with strings shaped like numbers, money, dates and lists.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        "-?[0-9]{0,30}([.,][0-9]{0,30})?(e-?[0-9]{1,4})?".prop_map(Value::from),
        "[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}(T[0-9:.]{0,20}(Z|[+-][0-9:]{0,6})?)?"
            .prop_map(Value::from),
        "\\+?[0-9 ()-]{0,30}".prop_map(Value::from),
        "[a-z]{0,8}(:|://)[^ ]{0,30}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_value_for_any_field_is_checked(kind in 0..KINDS.len(), value in json()) {
        let def = definition();
        let mut input = Map::new();
        input.insert(KINDS[kind].into(), value);
        match validate(&def, &input, None, &NoOne) {
            Ok(_) => {}
            Err(Error::Validation(errors)) => {
                prop_assert!(errors.iter().all(|e| e.field.starts_with("values.")), "{errors:?}");
            }
            Err(e) => prop_assert!(false, "not a validation error: {e:?}"),
        }
    }

    #[test]
    fn any_cell_text_for_any_field_is_parsed(kind in 0..KINDS.len(), text in prop_oneof![".{0,60}", "[0-9.,+ -]{0,40}"]) {
        let def = definition();
        let field = def.live_field(KINDS[kind]).unwrap();
        let _ = from_text(field, &text);
        let _ = decimal(&text);
        let _ = phone(&text);
        let _ = to_minor(&text, 2);
        let _ = to_minor(&text, 0);
    }
}
