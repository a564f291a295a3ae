//! What a `file` field holds: a list of references to sealed files
//! (`{id, name, type, size, sha256}`), kept inside the record's sealed
//! values, so a file's name and media type are sealed like every other
//! value. The bytes live apart (`store::file_blobs`), sealed under a key of
//! their own. Also the checks on a file field's settings (`max_size`,
//! `types`, `multiple`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest file name kept (characters).
pub const MAX_NAME: usize = 255;
/// Most media types one field may allow.
pub const MAX_TYPES: usize = 50;
/// Most files one `multiple` field may hold.
pub const MAX_FILES: usize = 100;

/// One file in a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub id: String,
    pub name: String,
    /// The media type found by sniffing the content's first bytes
    /// (`application/octet-stream` when nothing matched).
    #[serde(rename = "type")]
    pub media_type: String,
    pub size: u64,
    /// Hex SHA-256 of the plaintext.
    pub sha256: String,
}

/// The files a field's value lists (none for an absent or malformed value).
pub fn refs(value: Option<&Value>) -> Vec<FileRef> {
    value
        .and_then(|v| serde_json::from_value::<Vec<FileRef>>(v.clone()).ok())
        .unwrap_or_default()
}

/// The value that lists `refs` (absent when empty).
pub fn value_of(refs: &[FileRef]) -> Option<Value> {
    if refs.is_empty() {
        None
    } else {
        serde_json::to_value(refs).ok()
    }
}

/// A new file id: `fl_` and 24 hex digits (random).
pub fn new_file_id() -> String {
    let b: [u8; 12] = rand::random();
    format!("fl_{}", hex::encode(b))
}

/// Is `id` shaped like a file id (so it can name a path)?
pub fn is_file_id(id: &str) -> bool {
    id.len() == 27
        && id.starts_with("fl_")
        && id[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A file name as kept: the last path segment, without control characters,
/// at most `MAX_NAME` characters; `None` when nothing is left.
pub fn clean_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    let cleaned = cleaned.trim().to_owned();
    (!cleaned.is_empty() && cleaned != "." && cleaned != "..").then_some(cleaned)
}

/// A media type as a field lists it: `type/subtype` or `type/*`, lowercase.
pub fn valid_media_pattern(t: &str) -> bool {
    let Some((a, b)) = t.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"!#$&^_.+-".contains(&c))
    };
    token(a) && (b == "*" || token(b))
}

/// Does `media_type` match one of `allowed` (empty: any type)?
pub fn type_allowed(allowed: &[String], media_type: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|a| match a.strip_suffix("/*") {
            Some(top) => media_type.split_once('/').is_some_and(|(t, _)| t == top),
            None => a == media_type,
        })
}

/// Types a browser may show inline from a download (never active content:
/// no SVG, no HTML, no XML).
pub fn safe_inline(media_type: &str) -> bool {
    matches!(
        media_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/avif" | "application/pdf"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_types() {
        assert_eq!(clean_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean_name("C:\\x\\a b.pdf").as_deref(), Some("a b.pdf"));
        assert_eq!(clean_name("a\u{0}b\n.txt").as_deref(), Some("ab.txt"));
        assert_eq!(clean_name(".."), None);
        assert_eq!(clean_name(" "), None);
        let id = new_file_id();
        assert!(is_file_id(&id), "{id}");
        assert!(!is_file_id("fl_../../x"));
        assert!(valid_media_pattern("image/*"));
        assert!(valid_media_pattern("application/pdf"));
        assert!(!valid_media_pattern("Image/PNG"));
        assert!(!valid_media_pattern("image"));
        let allowed = vec!["image/*".to_owned(), "application/pdf".to_owned()];
        assert!(type_allowed(&allowed, "image/png"));
        assert!(type_allowed(&allowed, "application/pdf"));
        assert!(!type_allowed(&allowed, "text/html"));
        assert!(type_allowed(&[], "text/html"));
        assert!(!safe_inline("image/svg+xml"));
        assert!(safe_inline("image/png"));
    }

    #[test]
    fn refs_round_trip() {
        let r = FileRef {
            id: new_file_id(),
            name: "a.png".into(),
            media_type: "image/png".into(),
            size: 3,
            sha256: "00".into(),
        };
        let v = value_of(std::slice::from_ref(&r));
        assert_eq!(refs(v.as_ref()), vec![r]);
        assert_eq!(value_of(&[]), None);
    }
}
