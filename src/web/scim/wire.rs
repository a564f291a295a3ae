//! SCIM's wire forms: request bodies (`application/scim+json` or
//! `application/json`), the list query (`filter`, `startIndex`, `count`,
//! RFC 7644 §3.4.2), the `eq` filters providers send, PATCH operations in
//! the forms Entra ID and Okta send (RFC 7644 §3.5.2), booleans that arrive
//! as `"True"`, and the `ListResponse`.

use poem::Request;
use serde_json::{Value, json};

use super::Failure;

pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The most resources one page holds, whatever `count` asks for.
pub const MAX_COUNT: usize = 200;

/// The request's JSON body, refused as a SCIM error when it is not JSON, is
/// not an object, or comes with another media type.
pub fn body(req: &Request, bytes: &[u8]) -> Result<Value, Failure> {
    let media = req
        .content_type()
        .and_then(|c| c.parse::<mime::Mime>().ok())
        .map(|m| m.essence_str().to_ascii_lowercase());
    if !matches!(
        media.as_deref(),
        Some("application/scim+json" | "application/json")
    ) {
        return Err(Failure {
            status: poem::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            scim_type: None,
            detail: "send Content-Type: application/scim+json".into(),
        });
    }
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Failure::bad("invalidSyntax", format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(Failure::bad(
            "invalidSyntax",
            "the body must be a JSON object",
        ));
    }
    Ok(v)
}

/// An attribute of a resource body, its name matched without regard to case
/// (RFC 7643 §2.1).
pub fn attr<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

pub fn string_attr(v: &Value, name: &str) -> Result<Option<String>, Failure> {
    match attr(v, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Failure::bad(
            "invalidValue",
            format!("{name}: must be a string"),
        )),
    }
}

/// A boolean as providers send it: `true`, or the strings `"True"` /
/// `"false"` (Entra ID sends strings).
pub fn boolean(name: &str, v: &Value) -> Result<bool, Failure> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(Failure::bad(
            "invalidValue",
            format!("{name}: must be true or false"),
        )),
    }
}

/// One `attribute eq "value"` filter: the only form providers need to find
/// a user or group before creating it.
#[derive(Debug, PartialEq, Eq)]
pub struct Filter {
    /// Lower-cased attribute name.
    pub attr: String,
    pub value: String,
}

/// The list query: the filter, and the page (1-based `startIndex`, `count`).
#[derive(Debug)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub start: usize,
    pub count: usize,
    pub exclude_members: bool,
}

pub fn list_query(req: &Request, filterable: &[&str]) -> Result<ListQuery, Failure> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.uri().query().unwrap_or(""))
        .map_err(|_| {
            Failure::bad(
                "invalidValue",
                "the query string is not valid form encoding",
            )
        })?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    let number = |k: &str| -> Result<Option<i64>, Failure> {
        get(k)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| Failure::bad("invalidValue", format!("{k}: must be an integer")))
            })
            .transpose()
    };
    // RFC 7644 §3.4.2.4: a startIndex below 1 is read as 1, a negative
    // count as 0.
    let start = number("startIndex")?.unwrap_or(1).max(1) as usize;
    let count = number("count")?.map_or(MAX_COUNT, |c| c.clamp(0, MAX_COUNT as i64) as usize);
    let filter = get("filter")
        .map(|f| parse_filter(f, filterable))
        .transpose()?;
    let exclude_members = get("excludedAttributes").is_some_and(|e| {
        e.split(',')
            .any(|a| a.trim().eq_ignore_ascii_case("members"))
    });
    Ok(ListQuery {
        filter,
        start,
        count,
        exclude_members,
    })
}

/// Parses `attr eq "value"`. Anything else (another operator, `and`/`or`,
/// an attribute the resource cannot be found by, unbalanced quotes) is
/// `invalidFilter`.
pub fn parse_filter(f: &str, filterable: &[&str]) -> Result<Filter, Failure> {
    let bad = |why: &str| Failure::bad("invalidFilter", format!("filter {f:?}: {why}"));
    let f = f.trim();
    let (attr, rest) = f
        .split_once(char::is_whitespace)
        .ok_or_else(|| bad("expected `attribute eq \"value\"`"))?;
    let (op, value) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .ok_or_else(|| bad("expected `attribute eq \"value\"`"))?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(bad("only the `eq` operator is supported"));
    }
    let attr = attr.to_ascii_lowercase();
    if !filterable.contains(&attr.as_str()) {
        return Err(bad(&format!(
            "can filter by {} only",
            filterable.join(", ")
        )));
    }
    let value = value.trim();
    let value: String = serde_json::from_str::<String>(value)
        .map_err(|_| bad("the value must be one quoted string"))?;
    Ok(Filter { attr, value })
}

/// The `ListResponse` of one page of `all`.
pub fn list_response(q: &ListQuery, all: Vec<Value>) -> Value {
    let total = all.len();
    let page: Vec<Value> = all.into_iter().skip(q.start - 1).take(q.count).collect();
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": q.start,
        "itemsPerPage": page.len(),
        "Resources": page,
    })
}

/// One PATCH operation: `op` lower-cased, its `path` if any, its `value`.
#[derive(Debug)]
pub struct Op {
    pub op: String,
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// A PATCH body's operations folded into one change by `fold(change, op,
/// path, value)`. An operation without a path applies each attribute of its
/// value (Okta, and Entra ID's `{"op":"replace","value":{"active":false}}`).
pub fn fold_patch<C: Default>(
    body: &Value,
    fold: impl Fn(&mut C, &str, &str, Option<&Value>) -> Result<(), Failure>,
) -> Result<C, Failure> {
    let mut change = C::default();
    for (i, op) in patch_ops(body)?.iter().enumerate() {
        match &op.path {
            Some(path) => fold(&mut change, &op.op, path, op.value.as_ref())?,
            None => {
                let obj = op
                    .value
                    .as_ref()
                    .and_then(Value::as_object)
                    .ok_or_else(|| {
                        Failure::bad(
                            "invalidValue",
                            format!(
                                "Operations[{i}].value: must be an object when there is no path"
                            ),
                        )
                    })?;
                for (k, val) in obj {
                    fold(&mut change, &op.op, k, Some(val))?;
                }
            }
        }
    }
    Ok(change)
}

pub fn patch_ops(body: &Value) -> Result<Vec<Op>, Failure> {
    let ops = attr(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::bad("invalidSyntax", "Operations: must be a list"))?;
    let mut out = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        let op = attr(o, "op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .filter(|op| matches!(op.as_str(), "add" | "remove" | "replace"))
            .ok_or_else(|| {
                Failure::bad(
                    "invalidSyntax",
                    format!("Operations[{i}].op: must be add, remove or replace"),
                )
            })?;
        let path = match attr(o, "path") {
            None => None,
            Some(Value::String(p)) => Some(p.trim().to_owned()),
            Some(_) => {
                return Err(Failure::bad(
                    "invalidPath",
                    format!("Operations[{i}].path: must be a string"),
                ));
            }
        };
        let value = attr(o, "value").cloned();
        if op != "remove" && value.is_none() {
            return Err(Failure::bad(
                "invalidValue",
                format!("Operations[{i}].value: is required for {op}"),
            ));
        }
        if op == "remove" && path.is_none() {
            return Err(Failure::bad(
                "noTarget",
                format!("Operations[{i}].path: is required for remove"),
            ));
        }
        out.push(Op { op, path, value });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_eq_and_nothing_else() {
        let f = parse_filter(r#"userName eq "ana@example.com""#, &["username"]).unwrap();
        assert_eq!(f.attr, "username");
        assert_eq!(f.value, "ana@example.com");
        let f = parse_filter(r#"USERNAME Eq "a \"q\" b""#, &["username"]).unwrap();
        assert_eq!(f.value, "a \"q\" b");
        for bad in [
            r#"userName co "ana""#,
            r#"userName eq ana"#,
            r#"userName eq "a" and active eq true"#,
            r#"title eq "x""#,
            "userName",
            "",
        ] {
            let e = parse_filter(bad, &["username"]).unwrap_err();
            assert_eq!(e.scim_type, Some("invalidFilter"), "{bad}");
        }
    }

    #[test]
    fn booleans_come_as_strings_too() {
        assert!(!boolean("active", &json!("False")).unwrap());
        assert!(boolean("active", &json!("true")).unwrap());
        assert!(!boolean("active", &json!(false)).unwrap());
        assert!(boolean("active", &json!("no")).is_err());
        assert!(boolean("active", &json!(0)).is_err());
    }

    #[test]
    fn pages_count_from_one() {
        let q = ListQuery {
            filter: None,
            start: 2,
            count: 2,
            exclude_members: false,
        };
        let page = list_response(&q, (1..=5).map(|i| json!(i)).collect());
        assert_eq!(page["totalResults"], 5);
        assert_eq!(page["itemsPerPage"], 2);
        assert_eq!(page["Resources"], json!([2, 3]));
    }
}
