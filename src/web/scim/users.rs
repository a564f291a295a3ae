//! `/Users`: the workspace's people as SCIM users (RFC 7643 §4.1). The
//! semantics (accounts, memberships, tokens, audit) live in
//! `identity::scim`; this file reads and writes the wire form.

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{Request, Response, handler};
use serde_json::{Value, json};

use super::wire::{self, attr, boolean, string_attr};
use super::{Failure, Reply, ScimCall, finish, scim_json};
use crate::clock::rfc3339;
use crate::identity::scim::{self, NewScim, ScimUser, UserChange};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const FILTERABLE: &[&str] = &["username", "externalid", "id"];

fn user_json(base: &str, u: &ScimUser) -> Value {
    let mut v = json!({
        "schemas": [USER_SCHEMA],
        "id": u.id.to_string(),
        "userName": u.user_name,
        "active": u.active,
        "emails": [{ "value": u.user_name, "type": "work", "primary": true }],
        "meta": {
            "resourceType": "User",
            "created": rfc3339(u.created_at),
            "lastModified": rfc3339(u.updated_at),
            "location": format!("{base}/Users/{}", u.id),
        },
    });
    if let Some(e) = &u.external_id {
        v["externalId"] = json!(e);
    }
    if let Some(n) = &u.name {
        v["displayName"] = json!(n);
        v["name"] = json!({ "formatted": n });
    }
    v
}

fn created(base: &str, u: &ScimUser) -> Response {
    let mut r = scim_json(StatusCode::CREATED, &user_json(base, u));
    if let Ok(loc) = format!("{base}/Users/{}", u.id).parse() {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}

#[handler]
pub async fn list(req: &Request, call: ScimCall) -> Response {
    finish(
        async {
            let q = wire::list_query(req, FILTERABLE)?;
            let all = scim::list(&call.state.control, &call.h).await?;
            let keep = |u: &ScimUser| match &q.filter {
                None => true,
                Some(f) => match f.attr.as_str() {
                    "username" => u.user_name.eq_ignore_ascii_case(f.value.trim()),
                    "externalid" => u.external_id.as_deref() == Some(f.value.as_str()),
                    _ => u.id.to_string() == f.value,
                },
            };
            let items = all
                .iter()
                .filter(|u| keep(u))
                .map(|u| user_json(&call.base, u))
                .collect();
            Ok(scim_json(StatusCode::OK, &wire::list_response(&q, items)))
        }
        .await,
    )
}

#[handler]
pub async fn get(call: ScimCall, Path((_, id)): Path<(String, String)>) -> Response {
    finish(
        async {
            let u = scim::get(&call.state.control, &call.h, &id).await?;
            Ok(scim_json(StatusCode::OK, &user_json(&call.base, &u)))
        }
        .await,
    )
}

/// The display name a provider sends: `displayName`, else `name.formatted`,
/// else given and family names.
fn display_name(v: &Value) -> Result<Option<String>, Failure> {
    if let Some(n) = string_attr(v, "displayName")? {
        return Ok(Some(n));
    }
    let Some(name) = attr(v, "name") else {
        return Ok(None);
    };
    if let Some(f) = string_attr(name, "formatted")? {
        return Ok(Some(f));
    }
    let parts: Vec<String> = [
        string_attr(name, "givenName")?,
        string_attr(name, "familyName")?,
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok((!parts.is_empty()).then(|| parts.join(" ")))
}

#[handler]
pub async fn create(req: &Request, call: ScimCall, bytes: Vec<u8>) -> Response {
    finish(
        async {
            let v = wire::body(req, &bytes)?;
            let user_name = string_attr(&v, "userName")?
                .ok_or_else(|| Failure::bad("invalidValue", "userName: is required"))?;
            let new = NewScim {
                user_name,
                display_name: display_name(&v)?,
                external_id: string_attr(&v, "externalId")?,
                active: attr(&v, "active")
                    .map(|a| boolean("active", a))
                    .transpose()?
                    .unwrap_or(true),
            };
            let u = scim::create(&call.state.control, &call.h, new).await?;
            Ok(created(&call.base, &u))
        }
        .await,
    )
}

async fn apply(call: &ScimCall, id: &str, change: UserChange) -> Reply {
    let u = scim::update(&call.state.control, &call.h, id, change).await?;
    Ok(scim_json(StatusCode::OK, &user_json(&call.base, &u)))
}

/// PUT replaces what Aura keeps of a user: `externalId` (absent clears it)
/// and `active` (absent leaves it); `userName` must stay the account's.
#[handler]
pub async fn replace(
    req: &Request,
    call: ScimCall,
    Path((_, id)): Path<(String, String)>,
    bytes: Vec<u8>,
) -> Response {
    finish(
        async {
            let v = wire::body(req, &bytes)?;
            let change = UserChange {
                active: attr(&v, "active")
                    .map(|a| boolean("active", a))
                    .transpose()?,
                external_id: Some(string_attr(&v, "externalId")?),
                user_name: string_attr(&v, "userName")?,
            };
            apply(&call, &id, change).await
        }
        .await,
    )
}

/// Folds one attribute of a PATCH into the change. Attributes Aura does not
/// keep (names, titles, phone numbers, extensions) are accepted and left.
fn fold(
    change: &mut UserChange,
    op: &str,
    name: &str,
    value: Option<&Value>,
) -> Result<(), Failure> {
    let string = |v: Option<&Value>| -> Result<String, Failure> {
        v.and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Failure::bad("invalidValue", format!("{name}: must be a string")))
    };
    let bare = name
        .strip_prefix(USER_SCHEMA)
        .and_then(|n| n.strip_prefix(':'))
        .unwrap_or(name);
    match (bare.to_ascii_lowercase().as_str(), op) {
        ("active", "remove") => {
            return Err(Failure::bad("mutability", "active: cannot be removed"));
        }
        ("active", _) => {
            let v = value.ok_or_else(|| Failure::bad("invalidValue", "active: needs a value"))?;
            change.active = Some(boolean("active", v)?);
        }
        ("externalid", "remove") => change.external_id = Some(None),
        ("externalid", _) => change.external_id = Some(Some(string(value)?)),
        ("username", "remove") => {
            return Err(Failure::bad("mutability", "userName: cannot be removed"));
        }
        ("username", _) => change.user_name = Some(string(value)?),
        _ => {}
    }
    Ok(())
}

#[handler]
pub async fn patch(
    req: &Request,
    call: ScimCall,
    Path((_, id)): Path<(String, String)>,
    bytes: Vec<u8>,
) -> Response {
    finish(
        async {
            let change = wire::fold_patch(&wire::body(req, &bytes)?, fold)?;
            apply(&call, &id, change).await
        }
        .await,
    )
}

#[handler]
pub async fn delete(call: ScimCall, Path((_, id)): Path<(String, String)>) -> Response {
    finish(
        async {
            scim::delete(&call.state.control, &call.h, &id).await?;
            Ok(Response::builder().status(StatusCode::NO_CONTENT).finish())
        }
        .await,
    )
}
