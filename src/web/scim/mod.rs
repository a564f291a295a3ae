//! SCIM 2.0 (RFC 7643/7644) under `/scim/v2/workspaces/{workspace}`: the
//! workspace's identity provider creates, deactivates and deletes its
//! members (`Users`) and manages its teams (`Groups`), with the workspace's
//! SCIM bearer token and nothing else (no cookie, no API token, no access
//! JWT, no other workspace's SCIM token: each answers 401 like a made-up
//! token). Bodies are `application/scim+json` (`application/json` is taken
//! too); every refusal is a SCIM error (`urn:ietf:params:scim:api:messages:
//! 2.0:Error`, `status` a string, `scimType` where RFC 7644 §3.12 names
//! one), including those the envelope raises before a handler runs
//! (`error_response`). These routes are outside the OpenAPI document: SCIM
//! describes itself (`ServiceProviderConfig`, `ResourceTypes`, `Schemas`).

mod discovery;
mod groups;
mod resource;
mod users;
mod wire;

use std::marker::PhantomData;
use std::sync::Arc;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::web::Path;
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response, Route, get};

use crate::access::enter::Door;
use crate::access::scim::ScimHandle;
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::error::Error;
use crate::web::problem::Problem;
use crate::web::session::{app_state, bearer_from_request};

pub const SCIM_JSON: &str = "application/scim+json";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The SCIM routes, nested under `/scim/v2`. Each path is written out here
/// (the isolation matrix reads them from this file).
pub fn routes() -> Route {
    use discovery::{ResourceTypes, Schemas};
    use groups::Groups;
    use users::Users;
    let ws = "/workspaces/:workspace";
    Route::new()
        .at(format!("{ws}/Users"), resource::collection::<Users>())
        .at(format!("{ws}/Users/:id"), resource::by_id::<Users>())
        .at(format!("{ws}/Groups"), resource::collection::<Groups>())
        .at(format!("{ws}/Groups/:id"), resource::by_id::<Groups>())
        .at(
            format!("{ws}/ServiceProviderConfig"),
            get(discovery::service_provider_config),
        )
        .at(
            format!("{ws}/ResourceTypes"),
            discovery::collection::<ResourceTypes>(),
        )
        .at(
            format!("{ws}/ResourceTypes/:id"),
            discovery::by_id::<ResourceTypes>(),
        )
        .at(format!("{ws}/Schemas"), discovery::collection::<Schemas>())
        .at(format!("{ws}/Schemas/:id"), discovery::by_id::<Schemas>())
}

/// A SCIM request, its token checked against the workspace of the path; on
/// the routes of `R` (`resource::Resource`, `discovery::Catalog`) when the
/// handler serves more than one.
pub struct ScimCall<R = ()> {
    pub h: ScimHandle,
    pub state: Arc<AppState>,
    /// `<public_url>/scim/v2/workspaces/<id>`, for `meta.location`.
    pub base: String,
    on: PhantomData<fn() -> R>,
}

impl<'a, R> FromRequest<'a> for ScimCall<R> {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = app_state(req)?;
        let meta = req
            .data::<RequestMeta>()
            .cloned()
            .ok_or_else(|| poem::Error::from(Error::internal("request meta missing")))?;
        // Only the bearer header: a session cookie is no credential here.
        let secret = match bearer_from_request(req) {
            Some(Ok(s)) => s,
            _ => return Err(Error::Unauthenticated.into()),
        };
        let workspace = req.raw_path_param("workspace").unwrap_or_default();
        let door = Door {
            control: &state.control,
            tenants: &state.tenants,
            clock: &state.clock,
        };
        let h = crate::access::scim::authorise(door, workspace, &secret, meta).await?;
        // A workspace being deleted or moved is read-only: the provider's
        // changes are refused before anything is written (its reads go on).
        let reads = matches!(*req.method(), Method::GET | Method::HEAD);
        if let Some(kind) = h.db.frozen().filter(|_| !reads) {
            return Err(Error::WorkspaceReadOnly(kind).into());
        }
        // A verified credential spends only its own request budget.
        if let Some(v) = req.data::<crate::web::rate::Verified>() {
            v.set();
        }
        let base = base_url(&state.config.public_url, &h.workspace().to_string());
        Ok(ScimCall {
            h,
            state,
            base,
            on: PhantomData,
        })
    }
}

/// The id that ends a path by id (`/Users/:id`, `/Schemas/:id`), after the
/// workspace's.
pub struct ResourceId(pub String);

impl<'a> FromRequest<'a> for ResourceId {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let Path((_, id)) = Path::<(String, String)>::from_request(req, body).await?;
        Ok(ResourceId(id))
    }
}

/// The SCIM base URL of a workspace, as an identity provider is given it.
pub fn base_url(public_url: &str, workspace: &str) -> String {
    format!(
        "{}/scim/v2/workspaces/{workspace}",
        public_url.trim_end_matches('/')
    )
}

/// A SCIM refusal: the status, the `scimType` if RFC 7644 names one, and a
/// sentence for the person reading the provider's log.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl Failure {
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let scim_type = match &e {
            Error::Validation(_) => Some("invalidValue"),
            Error::Conflict(d) if d.starts_with("userName") => Some("uniqueness"),
            _ => None,
        };
        let mut f = Failure::from(&Problem::from(e));
        if scim_type.is_some() {
            f.scim_type = scim_type;
        }
        // A validation error is a 400 in SCIM, not a 422.
        if f.status == StatusCode::UNPROCESSABLE_ENTITY {
            f.status = StatusCode::BAD_REQUEST;
        }
        f
    }
}

impl From<&Problem> for Failure {
    fn from(p: &Problem) -> Self {
        let status = p.status_code();
        let detail = match status {
            StatusCode::UNAUTHORIZED => {
                "a valid SCIM bearer token for this workspace is required".to_owned()
            }
            StatusCode::NOT_FOUND if p.detail.is_none() => "no such resource".to_owned(),
            _ => p.detail.clone().unwrap_or_else(|| p.title.to_owned()),
        };
        Self {
            status,
            scim_type: None,
            detail,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = t.into();
        }
        let mut resp = scim_json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        resp
    }
}

/// What the envelope answers on a SCIM path when the request failed before
/// (or outside) a handler: no route, a wrong method, a body too large, no
/// or a bad token.
pub fn error_response(p: &Problem) -> Response {
    let mut resp = Failure::from(p).into_response();
    if let Some(secs) = p.retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The request budget's 429 (`web::rate`) on a SCIM path, as a SCIM error
/// with the budget's headers (`Retry-After`, `RateLimit`).
pub fn rate_refused(refused: Response) -> Response {
    let retry_after_secs = refused
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut out = error_response(&Problem::from(Error::RateLimited { retry_after_secs }));
    for (k, v) in refused.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// A SCIM JSON answer.
pub fn scim_json(status: StatusCode, body: &serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .content_type(SCIM_JSON)
        .body(serde_json::to_vec(body).unwrap_or_default())
}

/// The answer of a handler: the resource, or the SCIM error.
pub type Reply = Result<Response, Failure>;

pub fn finish(r: Reply) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}
