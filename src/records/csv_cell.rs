//! Spreadsheet-safe CSV cells (OWASP "CSV injection"). A spreadsheet opening
//! a CSV runs a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
//! return as a formula, so a record value or a user agent such as
//! `=HYPERLINK(...)` would act in the reader's spreadsheet. Every CSV Aura
//! writes (records export, audit export, the records in a workspace export)
//! passes each cell through `neutralise`; the records import reads each cell
//! back through `restore`.
//!
//! The rule, reversible by construction:
//! - export: a cell that starts with one of those characters, or with a
//!   single quote, gets one more single quote in front (spreadsheets show a
//!   leading `'` as "this is text" and hide it);
//! - import: a cell that starts with a single quote followed by one of those
//!   characters or by another single quote loses exactly that first quote.
//!
//! So every value round-trips, including one that really begins with a quote
//! (`'abc` is written `''abc` and read back as `'abc`), and a hand-written
//! `'hello` imports as it is.

use std::borrow::Cow;

/// What a spreadsheet takes as the start of a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn needs_quote(s: &str) -> bool {
    s.starts_with(FORMULA_START) || s.starts_with('\'')
}

/// The cell as written to a CSV: with a leading `'` when it starts with a
/// formula character or a quote.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if needs_quote(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The value of a cell `neutralise` wrote: without the quote it added.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_quote(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_every_value_round_trips() {
        for v in [
            "=HYPERLINK(\"http://evil.example/\",\"x\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'",
            "''",
            "'abc",
            "'=1",
            "abc",
            "a=b",
            "",
            " =1",
        ] {
            let out = neutralise(v);
            assert!(!out.starts_with(FORMULA_START), "{v:?} -> {out:?}");
            assert_eq!(restore(&out), v, "{v:?} round-trips");
        }
        assert_eq!(neutralise("=1"), "'=1");
        assert_eq!(neutralise("'abc"), "''abc");
        assert_eq!(neutralise("abc"), "abc");
        assert_eq!(restore("'hello"), "'hello", "a hand-written quote stays");
        assert_eq!(restore("'-5"), "-5");
    }
}
