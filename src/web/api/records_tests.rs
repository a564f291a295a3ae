//! Unit tests of `records.rs`.

use poem_openapi::types::ToJSON;
use serde_json::json;

use super::*;

/// Records are written by serde from `RecordOut`; the OpenAPI document
/// describes them as `Record` (`Object`). Both must give the same JSON.
#[test]
fn serde_output_matches_the_documented_shape() {
    use std::collections::HashSet;

    use crate::records::schema::{FieldInput, build_definition};
    let field = |name: &str, kind: &str| FieldInput {
        name: name.into(),
        kind: kind.into(),
        currency: (kind == "money").then(|| "EUR".into()),
        ..Default::default()
    };
    let mut def = build_definition(
        "Bench",
        &[
            field("Title", "text"),
            field("Amount", "money"),
            field("Old", "text"),
        ],
        None,
        &HashSet::new(),
    )
    .unwrap();
    let ids: Vec<String> = def.fields.iter().map(|f| f.id.clone()).collect();
    def.fields[2].retired = true;
    let values: records::values::Values = [
        (ids[0].clone(), json!("x \"quoted\" é")),
        (
            ids[1].clone(),
            json!({"amount_minor": 12345, "currency": "EUR"}),
        ),
        (ids[2].clone(), json!("retired, never shown")),
    ]
    .into_iter()
    .collect();
    let def = Arc::new(def);
    let out = RecordPageOut {
        items: vec![RecordOut {
            id: "r1".into(),
            collection_id: "c1".into(),
            values: ApiValues {
                def: def.clone(),
                values: values.clone(),
            },
            created_at: "2026-11-23T06:00:00Z".into(),
            updated_at: "2026-11-23T06:00:01.5Z".into(),
            version: 2,
        }],
        next_cursor: None,
    };
    let documented = RecordPage {
        items: vec![Record {
            id: "r1".into(),
            collection_id: "c1".into(),
            values: Value::Object(records::values::into_api(&def, values)),
            created_at: "2026-11-23T06:00:00Z".into(),
            updated_at: "2026-11-23T06:00:01.5Z".into(),
            version: 2,
        }],
        next_cursor: None,
    };
    let written = serde_json::to_value(&out).unwrap();
    assert_eq!(written, documented.to_json().unwrap());
    assert_eq!(written["items"][0]["values"]["Title"], "x \"quoted\" é");
    assert!(written["items"][0]["values"].get("Old").is_none());
    let last = RecordPageOut {
        items: vec![],
        next_cursor: Some("abc".into()),
    };
    let documented = RecordPage {
        items: vec![],
        next_cursor: Some("abc".into()),
    };
    assert_eq!(
        serde_json::to_value(&last).unwrap(),
        documented.to_json().unwrap()
    );
    assert_eq!(RecordOut::name(), Record::name());
}
