//! Unit tests of `middleware.rs`.

use super::*;

#[test]
fn only_the_collection_import_route_gets_the_import_limit() {
    let ws = "0190a0a0-0000-7000-8000-000000000001";
    let import = format!("/api/v1/workspaces/{ws}/collections/c1/import");
    assert_eq!(body_limit_for(&Method::POST, &import), IMPORT_BODY_LIMIT);
    for (method, path) in [
        (Method::PUT, import.clone()),
        (Method::PATCH, import.clone()),
        (
            Method::PUT,
            format!("/api/v1/workspaces/{ws}/members/import"),
        ),
        (
            Method::PATCH,
            format!("/api/v1/workspaces/{ws}/collections/c1/records/import"),
        ),
        (Method::POST, format!("/api/v1/workspaces/{ws}/import")),
        (Method::POST, format!("{import}/")),
        (
            Method::POST,
            "/api/v1/workspaces//collections/c1/import".into(),
        ),
    ] {
        assert_eq!(
            body_limit_for(&method, &path),
            DEFAULT_BODY_LIMIT,
            "{method} {path}"
        );
    }
}

#[test]
fn unknown_path_segments_are_not_logged() {
    assert_eq!(loggable_path("/api/v1/me"), "/api/v1/me");
    assert_eq!(loggable_path("/"), "/");
    assert_eq!(loggable_path(""), "");
    assert_eq!(loggable_path("/healthz"), "/healthz");
    assert_eq!(loggable_path("/api//me/"), "/api//me/");
    assert_eq!(loggable_path("/workspaces/Jane%20Doe"), "/workspaces/_");
    let id = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        loggable_path(&format!("/api/v1/workspaces/{id}")),
        format!("/api/v1/workspaces/{id}")
    );
}

#[test]
fn metrics_labels_hide_ids_and_unknown_segments() {
    let id = uuid::Uuid::now_v7().to_string();
    let (logged, label) = path_forms(&format!("/api/v1/workspaces/{id}/records/42/x"));
    assert_eq!(logged, format!("/api/v1/workspaces/{id}/records/_/_"));
    assert_eq!(label, "/api/v1/workspaces/:id/records/_/_");
}
