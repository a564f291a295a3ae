//! Bounded audit details (issue 27, finding 4): an entry's `before` and
//! `after` are kept whole up to `MAX_SIDE_BYTES` of JSON each. Beyond that,
//! every string longer than `LONG_STRING` becomes
//! `"[truncated: N bytes, sha256 HEX]"` (still a string, so readers keep
//! their types, and the hash still proves which value it was); if the side
//! is still too large, it becomes `{"truncated": true, "bytes": N,
//! "sha256": HEX}`. A member repeating huge record edits therefore grows the
//! log by a bounded amount per entry. docs/audit.md describes it.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One side's (before or after) JSON is kept whole up to this size.
pub const MAX_SIDE_BYTES: usize = 32 * 1024;
/// Strings longer than this are the first to be replaced by their digest.
pub const LONG_STRING: usize = 256;

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn shorten_strings(v: &mut Value) {
    match v {
        Value::String(s) if s.len() > LONG_STRING => {
            *s = format!(
                "[truncated: {} bytes, sha256 {}]",
                s.len(),
                digest(s.as_bytes())
            );
        }
        Value::Array(a) => a.iter_mut().for_each(shorten_strings),
        Value::Object(m) => m.values_mut().for_each(shorten_strings),
        _ => {}
    }
}

/// The side as it is stored: whole when small enough, else bounded.
pub fn bound(v: Value) -> Value {
    if json_len(&v) <= MAX_SIDE_BYTES {
        return v;
    }
    let whole = serde_json::to_vec(&v).unwrap_or_default();
    let mut short = v;
    shorten_strings(&mut short);
    if json_len(&short) <= MAX_SIDE_BYTES {
        return short;
    }
    json!({ "truncated": true, "bytes": whole.len(), "sha256": digest(&whole) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_details_stay_whole_and_large_ones_are_bounded() {
        let small = json!({"name": "Ada", "n": 3});
        assert_eq!(bound(small.clone()), small);
        let big = json!({"values": {"notes": "x".repeat(100_000), "name": "Ada"}});
        let b = bound(big);
        assert!(json_len(&b) <= MAX_SIDE_BYTES);
        assert_eq!(b["values"]["name"], "Ada");
        assert!(
            b["values"]["notes"]
                .as_str()
                .unwrap()
                .starts_with("[truncated: 100000 bytes, sha256 ")
        );
        let many: Vec<Value> = (0..2_000)
            .map(|i| json!(format!("value {i:040}")))
            .collect();
        let b = bound(json!({ "values": many }));
        assert_eq!(b["truncated"], true);
        assert!(json_len(&b) <= MAX_SIDE_BYTES);
    }
}
