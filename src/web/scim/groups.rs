//! `/Groups`: the workspace's teams as SCIM groups (RFC 7643 §4.2). The
//! semantics live in `identity::scim_groups`; this file reads and writes the
//! wire form, PATCH in the forms Entra ID and Okta send.

use poem::Request;
use serde_json::{Value, json};

use super::resource::Resource;
use super::wire::{self, Filter, ListQuery, attr, string_attr};
use super::{Failure, ScimCall};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::scim_groups::{self, GroupChange};
use crate::store::teams::TeamRow;

pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

fn group_json(base: &str, t: &TeamRow, with_members: bool) -> Value {
    let mut v = json!({
        "schemas": [GROUP_SCHEMA],
        "id": t.id,
        "displayName": t.name,
        "meta": {
            "resourceType": "Group",
            "created": rfc3339(t.created_at),
            "lastModified": rfc3339(t.created_at),
            "location": format!("{base}/Groups/{}", t.id),
        },
    });
    if with_members {
        v["members"] = t
            .members
            .iter()
            .map(
                |(u, _)| json!({ "value": u, "$ref": format!("{base}/Users/{u}"), "type": "User" }),
            )
            .collect();
    }
    v
}

/// The workspace's teams.
pub struct Groups;

impl Resource for Groups {
    const FILTERABLE: &'static [&'static str] = &["displayname", "id"];
    type Row = TeamRow;
    type Change = GroupChange;

    async fn all(call: &ScimCall<Self>) -> Result<Vec<TeamRow>, Error> {
        scim_groups::list(&call.h).await
    }

    fn matches(t: &TeamRow, f: &Filter) -> bool {
        match f.attr.as_str() {
            "displayname" => t.name == f.value,
            _ => t.id == f.value,
        }
    }

    fn listed(base: &str, t: &TeamRow, q: &ListQuery) -> Value {
        group_json(base, t, !q.exclude_members)
    }

    async fn read(req: &Request, call: &ScimCall<Self>, id: &str) -> Result<Value, Failure> {
        let q = wire::list_query(req, Self::FILTERABLE)?;
        let t = scim_groups::get(&call.h, id).await?;
        Ok(group_json(&call.base, &t, !q.exclude_members))
    }

    async fn create(call: &ScimCall<Self>, v: &Value) -> Result<Value, Failure> {
        let name = string_attr(v, "displayName")?
            .ok_or_else(|| Failure::bad("invalidValue", "displayName: is required"))?;
        let members = attr(v, "members")
            .map(member_ids)
            .transpose()?
            .unwrap_or_default();
        let t = scim_groups::create(&call.state.control, &call.h, &name, members).await?;
        Ok(group_json(&call.base, &t, true))
    }

    /// PUT: the name, and the members when the body lists them.
    fn put(v: &Value) -> Result<GroupChange, Failure> {
        Ok(GroupChange {
            rename: string_attr(v, "displayName")?,
            replace: attr(v, "members").map(member_ids).transpose()?,
            ..GroupChange::default()
        })
    }

    fn fold(
        change: &mut GroupChange,
        op: &str,
        path: &str,
        value: Option<&Value>,
    ) -> Result<(), Failure> {
        if let Some(id) = member_in_path(path)? {
            if op != "remove" {
                return Err(Failure::bad(
                    "invalidPath",
                    format!("{path}: only remove takes a member filter"),
                ));
            }
            change.remove.push(id);
            return Ok(());
        }
        match (path.to_ascii_lowercase().as_str(), op) {
            ("members", "remove") => match value {
                Some(v) => change.remove.extend(member_ids(v)?),
                None => change.remove_all = true,
            },
            ("members", "add") => change
                .add
                .extend(member_ids(value.unwrap_or(&Value::Null))?),
            ("members", _) => change.replace = Some(member_ids(value.unwrap_or(&Value::Null))?),
            ("displayname", "remove") => {
                return Err(Failure::bad("mutability", "displayName: cannot be removed"));
            }
            ("displayname", _) => {
                let n = value
                    .and_then(Value::as_str)
                    .ok_or_else(|| Failure::bad("invalidValue", "displayName: must be a string"))?;
                change.rename = Some(n.to_owned());
            }
            // The group's own id, its externalId, schemas: nothing Aura keeps.
            _ => {}
        }
        Ok(())
    }

    async fn apply(call: &ScimCall<Self>, id: &str, change: GroupChange) -> Result<Value, Error> {
        let t = scim_groups::change(&call.state.control, &call.h, id, change).await?;
        Ok(group_json(&call.base, &t, true))
    }

    async fn delete(call: &ScimCall<Self>, id: &str) -> Result<(), Error> {
        scim_groups::delete(&call.h, id).await
    }
}

/// The user ids of a `members` value: a list of `{"value": "<id>"}`.
fn member_ids(v: &Value) -> Result<Vec<String>, Failure> {
    let items = v
        .as_array()
        .ok_or_else(|| Failure::bad("invalidValue", "members: must be a list"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            string_attr(m, "value")?.ok_or_else(|| {
                Failure::bad(
                    "invalidValue",
                    format!("members[{i}].value: must be a user id"),
                )
            })
        })
        .collect()
}

/// The user id in a `members[value eq "<id>"]` path.
fn member_in_path(path: &str) -> Result<Option<String>, Failure> {
    let lower = path.to_ascii_lowercase();
    let Some(inner) = lower
        .strip_prefix("members[")
        .and_then(|r| r.strip_suffix(']'))
    else {
        return Ok(None);
    };
    // The id is a UUID, so the lower-cased path holds it as sent.
    let f = wire::parse_filter(inner, &["value"]).map_err(|_| {
        Failure::bad(
            "invalidPath",
            format!("{path}: expected members[value eq \"<id>\"]"),
        )
    })?;
    Ok(Some(f.value))
}
