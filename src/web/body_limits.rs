//! How much of a request body the envelope reads before the handler, by
//! route: a small default, more for CSV imports, and file uploads left
//! unread for their handler to stream (it enforces their limits itself).

use poem::http::Method;

/// Bodies beyond the limit are refused with 413 before any parsing. Small by
/// default; a route that needs more (imports) gets an entry in
/// `body_limit_for`.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// A request's handler must finish within this (bodies included), so a
/// trickling client cannot hold a worker (slowloris).
pub const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// CSV imports may carry up to this much.
pub const IMPORT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// File uploads are streamed to disk by their handler, which enforces the
/// field's and the operator's limits (`[files]`) itself, after it has
/// authorised the caller; here they are only left unread.
pub const FILE_BODY_LIMIT: usize = usize::MAX;

pub fn body_limit_for(method: &Method, path: &str) -> usize {
    if is_import_route(method, path) {
        IMPORT_BODY_LIMIT
    } else if is_file_upload_route(method, path) {
        FILE_BODY_LIMIT
    } else {
        DEFAULT_BODY_LIMIT
    }
}

/// Exactly `POST /api/v1/workspaces/{ws}/collections/{c}/records/{r}/files/{field}`
/// or the UI's `POST /w/{ws}/c/{c}/r/{r}/files/{field}`.
fn is_file_upload_route(method: &Method, path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let filled = |idx: &[usize]| {
        idx.iter()
            .all(|i| parts.get(*i).is_some_and(|p| !p.is_empty()))
    };
    *method == Method::POST
        && match parts.as_slice() {
            [
                "",
                "api",
                "v1",
                "workspaces",
                _,
                "collections",
                _,
                "records",
                _,
                "files",
                _,
            ] => filled(&[4, 6, 8, 10]),
            // `files/remove` is a small form, read as usual.
            ["", "w", _, "c", _, "r", _, "files", field] if *field != "remove" => {
                filled(&[2, 4, 6, 8])
            }
            _ => false,
        }
}

/// Exactly `POST /api/v1/workspaces/{ws}/collections/{collection}/import`:
/// the one route whose body is read late and streamed (after the caller was
/// authorised). Any other path merely ending in `/import` (a member or
/// record id of that name, say) keeps the small limit.
fn is_import_route(method: &Method, path: &str) -> bool {
    let mut parts = path.split('/');
    *method == Method::POST
        && matches!(
            (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next()
            ),
            (
                Some(""),
                Some("api"),
                Some("v1"),
                Some("workspaces"),
                Some(ws),
                Some("collections"),
                Some(c),
                Some("import"),
                None
            ) if !ws.is_empty() && !c.is_empty()
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_file_uploads_are_left_unread() {
        let base = "/api/v1/workspaces/w1/collections/c1/records/r1/files";
        for path in [format!("{base}/f_1"), "/w/w1/c/c1/r/r1/files/f_1".into()] {
            assert_eq!(
                body_limit_for(&Method::POST, &path),
                FILE_BODY_LIMIT,
                "{path}"
            );
            assert_eq!(
                body_limit_for(&Method::PUT, &path),
                DEFAULT_BODY_LIMIT,
                "{path}"
            );
        }
        for path in [
            "/w/w1/c/c1/r/r1/files/remove".to_owned(),
            format!("{base}/f_1/fl_1"),
            format!("{base}/"),
            "/api/v1/workspaces//collections/c1/records/r1/files/f_1".into(),
            "/w/w1/c/c1/r/r1/files/f_1/x".into(),
        ] {
            assert_eq!(
                body_limit_for(&Method::POST, &path),
                DEFAULT_BODY_LIMIT,
                "{path}"
            );
        }
    }
}
