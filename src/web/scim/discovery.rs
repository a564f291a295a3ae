//! SCIM's self-description (RFC 7644 §4): what this service provider
//! supports (`ServiceProviderConfig`), its resource types and the
//! attributes of their schemas that Aura keeps. Behind the SCIM token like
//! every other SCIM route.

use poem::http::StatusCode;
use poem::{Response, RouteMethod, get, handler};
use serde_json::{Value, json};

use super::groups::GROUP_SCHEMA;
use super::users::USER_SCHEMA;
use super::wire::LIST_SCHEMA;
use super::{Failure, ResourceId, ScimCall, finish, scim_json};

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RT_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

fn list(items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": items.len(),
        "startIndex": 1,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

#[handler]
pub async fn service_provider_config(call: ScimCall) -> Response {
    let body = json!({
        "schemas": [SPC_SCHEMA],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": super::wire::MAX_COUNT },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": false },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The workspace's SCIM token, issued on its Members page",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", call.base),
        },
    });
    scim_json(StatusCode::OK, &body)
}

fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RT_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A person of the workspace (an Aura account and its membership)",
            "schema": USER_SCHEMA,
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
        }),
        json!({
            "schemas": [RT_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A team of the workspace",
            "schema": GROUP_SCHEMA,
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
        }),
    ]
}

fn attribute(name: &str, kind: &str, required: bool, mutability: &str, uniqueness: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "required": required,
        "caseExact": false,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": uniqueness,
    })
}

fn schemas(base: &str) -> Vec<Value> {
    let members = json!({
        "name": "members",
        "type": "complex",
        "multiValued": true,
        "required": false,
        "mutability": "readWrite",
        "returned": "default",
        "subAttributes": [attribute("value", "string", true, "immutable", "none")],
    });
    vec![
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": USER_SCHEMA,
            "name": "User",
            "description": "An Aura account in this workspace; userName is its email",
            "attributes": [
                attribute("userName", "string", true, "immutable", "server"),
                attribute("externalId", "string", false, "readWrite", "none"),
                attribute("displayName", "string", false, "immutable", "none"),
                attribute("active", "boolean", false, "readWrite", "none"),
            ],
            "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{USER_SCHEMA}") },
        }),
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": GROUP_SCHEMA,
            "name": "Group",
            "description": "A team of this workspace",
            "attributes": [attribute("displayName", "string", true, "readWrite", "none"), members],
            "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{GROUP_SCHEMA}") },
        }),
    ]
}

fn one(items: Vec<Value>, id: &str) -> Response {
    finish(
        items
            .into_iter()
            .find(|v| v["id"].as_str() == Some(id))
            .map(|v| scim_json(StatusCode::OK, &v))
            .ok_or(Failure {
                status: StatusCode::NOT_FOUND,
                scim_type: None,
                detail: format!("no such resource: {id}"),
            }),
    )
}

/// One of SCIM's self-describing lists, each item found by its `id`.
pub trait Catalog: Send + Sync + 'static {
    fn items(base: &str) -> Vec<Value>;
}

pub struct ResourceTypes;

impl Catalog for ResourceTypes {
    fn items(base: &str) -> Vec<Value> {
        resource_types(base)
    }
}

pub struct Schemas;

impl Catalog for Schemas {
    fn items(base: &str) -> Vec<Value> {
        schemas(base)
    }
}

/// `C`'s own path (`/Schemas`): the whole list.
pub fn collection<C: Catalog>() -> RouteMethod {
    get(listing::<C>::default())
}

/// One item of `C` by its id (`/Schemas/:id`).
pub fn by_id<C: Catalog>() -> RouteMethod {
    get(entry::<C>::default())
}

#[handler]
async fn listing<C: Catalog>(call: ScimCall<C>) -> Response {
    scim_json(StatusCode::OK, &list(C::items(&call.base)))
}

#[handler]
async fn entry<C: Catalog>(call: ScimCall<C>, ResourceId(id): ResourceId) -> Response {
    one(C::items(&call.base), &id)
}
