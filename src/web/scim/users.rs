//! `/Users`: the workspace's people as SCIM users (RFC 7643 §4.1). The
//! semantics (accounts, memberships, tokens, audit) live in
//! `identity::scim`; this file reads and writes the wire form.

use poem::Request;
use serde_json::{Value, json};

use super::resource::Resource;
use super::wire::{Filter, ListQuery, attr, boolean, string_attr};
use super::{Failure, ScimCall};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::scim::{self, NewScim, ScimUser, UserChange};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

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

/// The workspace's people.
pub struct Users;

impl Resource for Users {
    const FILTERABLE: &'static [&'static str] = &["username", "externalid", "id"];
    type Row = ScimUser;
    type Change = UserChange;

    async fn all(call: &ScimCall<Self>) -> Result<Vec<ScimUser>, Error> {
        scim::list(&call.state.control, &call.h).await
    }

    fn matches(u: &ScimUser, f: &Filter) -> bool {
        match f.attr.as_str() {
            "username" => u.user_name.eq_ignore_ascii_case(f.value.trim()),
            "externalid" => u.external_id.as_deref() == Some(f.value.as_str()),
            _ => u.id.to_string() == f.value,
        }
    }

    fn listed(base: &str, u: &ScimUser, _: &ListQuery) -> Value {
        user_json(base, u)
    }

    async fn read(_: &Request, call: &ScimCall<Self>, id: &str) -> Result<Value, Failure> {
        let u = scim::get(&call.state.control, &call.h, id).await?;
        Ok(user_json(&call.base, &u))
    }

    async fn create(call: &ScimCall<Self>, v: &Value) -> Result<Value, Failure> {
        let user_name = string_attr(v, "userName")?
            .ok_or_else(|| Failure::bad("invalidValue", "userName: is required"))?;
        let new = NewScim {
            user_name,
            display_name: display_name(v)?,
            external_id: string_attr(v, "externalId")?,
            active: attr(v, "active")
                .map(|a| boolean("active", a))
                .transpose()?
                .unwrap_or(true),
        };
        let u = scim::create(&call.state.control, &call.h, new).await?;
        Ok(user_json(&call.base, &u))
    }

    /// PUT replaces what Aura keeps of a user: `externalId` (absent clears it)
    /// and `active` (absent leaves it); `userName` must stay the account's.
    fn put(v: &Value) -> Result<UserChange, Failure> {
        Ok(UserChange {
            active: attr(v, "active")
                .map(|a| boolean("active", a))
                .transpose()?,
            external_id: Some(string_attr(v, "externalId")?),
            user_name: string_attr(v, "userName")?,
        })
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
                let v =
                    value.ok_or_else(|| Failure::bad("invalidValue", "active: needs a value"))?;
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

    async fn apply(call: &ScimCall<Self>, id: &str, change: UserChange) -> Result<Value, Error> {
        let u = scim::update(&call.state.control, &call.h, id, change).await?;
        Ok(user_json(&call.base, &u))
    }

    async fn delete(call: &ScimCall<Self>, id: &str) -> Result<(), Error> {
        scim::delete(&call.state.control, &call.h, id).await
    }
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
