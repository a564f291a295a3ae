//! Hostile input for CSV imports: any bytes, and any rows under a header of
//! real and unknown columns, are parsed into rows or refused with errors
//! naming a line or a column, never a panic.

use proptest::prelude::*;

use super::parse;
use crate::error::Error;
use crate::records::values::proptests::{KINDS, definition};

fn csv_body() -> impl Strategy<Value = String> {
    let header = proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(KINDS).prop_map(str::to_owned),
            Just("id".to_owned()),
            ".{0,10}",
        ],
        0..6,
    );
    let cell = prop_oneof![
        ".{0,20}",
        "\"[^\"]{0,20}\"",
        "-?[0-9]{0,12}(\\.[0-9]{0,6})?",
        "=[A-Z]{1,4}\\(.{0,8}\\)",
    ];
    let rows = proptest::collection::vec(proptest::collection::vec(cell, 0..7), 0..8);
    (header, rows).prop_map(|(h, rows)| {
        let mut out = h.join(",");
        for r in rows {
            out.push('\n');
            out.push_str(&r.join(","));
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_parsed_or_refused(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        match parse(&definition(), body.as_slice()) {
            Ok(_) | Err(Error::Validation(_)) => {}
            Err(e) => prop_assert!(false, "not a validation error: {e:?}"),
        }
    }

    #[test]
    fn any_rows_are_parsed_or_refused(body in csv_body()) {
        match parse(&definition(), body.as_bytes()) {
            Ok(_) => {}
            Err(Error::Validation(errors)) => {
                prop_assert!(!errors.is_empty());
                prop_assert!(errors.iter().all(|e| !e.field.is_empty() && !e.message.is_empty()));
            }
            Err(e) => prop_assert!(false, "not a validation error: {e:?}"),
        }
    }
}
