//! The OpenAPI document as served at `/api/openapi.json`: poem-openapi's
//! document completed with what its derive macros cannot say, so that the
//! document is the whole contract (`scripts/contract` fuzzes the server
//! against it on every CI run):
//! - every operation answers its errors as RFC 9457 problem+json
//!   (`web::problem`, the one error mapping), documented once as the
//!   `default` response;
//! - an optional property the server sends as `null` is `nullable`;
//! - a JSON request body takes no property it does not list
//!   (`additionalProperties: false`): `JsonBody` parses with serde's
//!   `deny_unknown_fields`, which poem-openapi does not document;
//! - the bounds of query parameters that handlers check in the domain, so
//!   that one answer names every bad field (`QUERY_BOUNDS`);
//! - a path's methods, for the `Allow` header of a 405 answer.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use super::ApiService;
use crate::web::problem::PROBLEM_JSON;

/// The served document, as JSON text.
pub fn document(api: &ApiService) -> String {
    let mut doc: Value = match serde_json::from_str(&api.spec()) {
        Ok(v) => v,
        // poem-openapi writes the document itself; it is always JSON.
        Err(_) => return api.spec(),
    };
    complete(&mut doc);
    serde_json::to_string(&doc).unwrap_or_else(|_| api.spec())
}

fn complete(doc: &mut Value) {
    closed_request_bodies(doc);
    bound_queries(doc);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            nullable_optionals(schema);
        }
        schemas.insert("Problem".into(), problem_schema());
    } else if let Some(root) = doc.as_object_mut() {
        root.insert(
            "components".into(),
            json!({ "schemas": { "Problem": problem_schema() } }),
        );
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut().filter_map(Value::as_object_mut) {
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                for resp in responses.values_mut() {
                    for schema in response_schemas(resp) {
                        nullable_optionals(schema);
                    }
                }
                responses.insert("default".into(), problem_response());
            }
        }
    }
}

/// Query parameters checked by the handler or the domain rather than by
/// poem-openapi (which would stop at the first bad one, with a 400): the
/// operation's path, the parameter, and the schema keywords it obeys.
const QUERY_BOUNDS: &[(&str, &str, &str)] = &[
    ("/workspaces/{workspace}/audit", "limit", LIMIT_200),
    ("/workspaces/{workspace}/audit/export", "format", FORMAT),
    ("/platform/audit", "limit", LIMIT_200),
    ("/platform/audit/export", "format", FORMAT),
    (
        "/workspaces/{workspace}/collections",
        "limit",
        r#"{"minimum": 1, "maximum": 500}"#,
    ),
    (
        "/workspaces/{workspace}/collections/{collection}/records",
        "limit",
        LIMIT_200,
    ),
    (
        "/workspaces/{workspace}/collections/{collection}/records",
        "q",
        r#"{"maxLength": 200}"#,
    ),
    (
        "/workspaces/{workspace}/collections/{collection}/records",
        "sort",
        r#"{"pattern": "^-?(created_at|updated_at|f_[0-9a-f]{1,64})$", "maxLength": 80}"#,
    ),
];
const LIMIT_200: &str = r#"{"minimum": 1, "maximum": 200}"#;
/// Empty means the default, `ndjson` (`audit::export::Format::parse`).
const FORMAT: &str = r#"{"enum": ["ndjson", "csv", ""]}"#;

fn bound_queries(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, name, bounds) in QUERY_BOUNDS {
        let Ok(Value::Object(bounds)) = serde_json::from_str::<Value>(bounds) else {
            continue;
        };
        let params = paths
            .get_mut(*path)
            .and_then(|item| item.get_mut("get"))
            .and_then(|op| op.get_mut("parameters"))
            .and_then(Value::as_array_mut);
        for param in params.into_iter().flatten() {
            if param["name"] == *name
                && let Some(schema) = param.get_mut("schema").and_then(Value::as_object_mut)
            {
                schema.extend(bounds.clone());
            }
        }
    }
}

/// Marks every object schema a JSON request body reaches as closed.
fn closed_request_bodies(doc: &mut Value) {
    let mut named = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in item.values_mut() {
                if let Some(schema) =
                    op.pointer_mut("/requestBody/content/application~1json/schema")
                {
                    close(schema, &mut named);
                }
            }
        }
    }
    let mut done = Vec::new();
    while let Some(name) = named.pop() {
        if done.contains(&name) {
            continue;
        }
        let pointer = format!("/components/schemas/{name}");
        if let Some(schema) = doc.pointer_mut(&pointer) {
            close(schema, &mut named);
        }
        done.push(name);
    }
}

/// Closes an object schema and its inline parts; collects the named schemas
/// it refers to.
fn close(schema: &mut Value, named: &mut Vec<String>) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(name) = obj
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        named.push(name.to_owned());
    }
    if obj.contains_key("properties") && !obj.contains_key("additionalProperties") {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(|p| close(p, named));
    }
    if let Some(items) = obj.get_mut("items") {
        close(items, named);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = obj.get_mut(key).and_then(Value::as_array_mut) {
            list.iter_mut().for_each(|s| close(s, named));
        }
    }
}

/// The inline schemas of a response (named ones are completed under
/// `components`).
fn response_schemas(resp: &mut Value) -> Vec<&mut Value> {
    resp.get_mut("content")
        .and_then(Value::as_object_mut)
        .map(|c| c.values_mut().filter_map(|m| m.get_mut("schema")).collect())
        .unwrap_or_default()
}

/// poem-openapi leaves an `Option` field out of `required` but writes `None`
/// as `null`: say so. Required properties stay non-null.
fn nullable_optionals(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let required: Vec<String> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, prop) in props.iter_mut() {
            // An optional property with a default is not an `Option`.
            if !required.contains(name) && prop.get("default").is_none() {
                make_nullable(prop);
            }
            nullable_optionals(prop);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = obj.get_mut(key) {
            nullable_optionals(inner);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = obj.get_mut(key).and_then(Value::as_array_mut) {
            list.iter_mut().for_each(nullable_optionals);
        }
    }
}

fn make_nullable(prop: &mut Value) {
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    if obj.contains_key("$ref") {
        // OpenAPI 3.0 ignores siblings of `$ref`: wrap it.
        let reference = std::mem::take(obj);
        obj.insert("allOf".into(), Value::Array(vec![Value::Object(reference)]));
    }
    obj.insert("nullable".into(), Value::Bool(true));
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An RFC 9457 problem: every error of this API.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string", "description": "A URN naming the kind of problem." },
            "title": { "type": "string" },
            "status": { "type": "integer", "minimum": 400, "maximum": 599 },
            "detail": { "type": "string" },
            "errors": {
                "type": "array",
                "description": "For 422: each invalid field and what is wrong with it.",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {
                        "field": { "type": "string" },
                        "message": { "type": "string" }
                    }
                }
            }
        }
    })
}

fn problem_response() -> Value {
    let mut content = Map::new();
    content.insert(
        PROBLEM_JSON.into(),
        json!({ "schema": { "$ref": "#/components/schemas/Problem" } }),
    );
    json!({
        "description": "An error, as problem+json: 4xx names what was wrong (422: each field), 5xx was logged.",
        "content": content
    })
}

/// Each API path template (under `/api/v1`) split in segments, `None` for a
/// `{parameter}`, with its methods.
type MethodTable = Vec<(Vec<Option<String>>, String)>;

static METHODS: LazyLock<MethodTable> = LazyLock::new(|| {
    let doc: Value = serde_json::from_str(&super::service("").spec()).unwrap_or(Value::Null);
    let mut table = MethodTable::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            let segments = path
                .split('/')
                .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                .collect();
            let methods: Vec<String> = item
                .as_object()
                .map(|m| m.keys().map(|k| k.to_ascii_uppercase()).collect())
                .unwrap_or_default();
            table.push((segments, methods.join(", ")));
        }
    }
    table
});

/// The `Allow` header for a request path under `/api/v1` that exists with
/// other methods (RFC 9110: a 405 lists the methods the resource has).
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/v1")?;
    let parts: Vec<&str> = rest.split('/').collect();
    METHODS.iter().find_map(|(segments, methods)| {
        let fits = segments.len() == parts.len()
            && segments
                .iter()
                .zip(&parts)
                .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p));
        fits.then_some(methods.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_documents_its_problems_and_nulls() {
        let doc: Value = serde_json::from_str(&document(&super::super::service(""))).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    op["responses"]["default"]["content"][PROBLEM_JSON].is_object(),
                    "{method} {path}"
                );
            }
        }
        let token = &doc["components"]["schemas"]["ApiToken"]["properties"]["expires_at"];
        assert_eq!(token["nullable"], true, "{token}");
        let field = &doc["components"]["schemas"]["FieldInput"];
        assert_eq!(field["additionalProperties"], false, "{field}");
        // Every bounded query parameter exists (a renamed one fails here).
        for (path, name, bounds) in QUERY_BOUNDS {
            let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let p = params.iter().find(|p| p["name"] == *name).unwrap();
            let bounds: Value = serde_json::from_str(bounds).unwrap();
            for key in bounds.as_object().unwrap().keys() {
                assert!(p["schema"].get(key).is_some(), "{path} {name}: {p}");
            }
        }
    }

    #[test]
    fn a_405_names_the_methods_of_the_path() {
        assert_eq!(
            allowed_methods("/api/v1/workspaces/abc/teams"),
            Some("GET, POST")
        );
        assert_eq!(allowed_methods("/api/v1/nowhere"), None);
        assert_eq!(allowed_methods("/trust"), None);
    }
}
