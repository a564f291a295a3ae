//! What `/Users` and `/Groups` share: their handlers, the list with its
//! filter and page, PUT and PATCH read into one change and applied, the 201
//! with its `Location`, DELETE. Each resource says how it is stored, matched,
//! read and changed (`Resource`); the handlers here are the same for both.

use std::future::Future;

use poem::http::{Method, StatusCode, header};
use poem::{Request, Response, RouteMethod, get, handler};
use serde_json::Value;

use super::wire::{self, Filter, ListQuery};
use super::{Failure, ResourceId, ScimCall, finish, scim_json};
use crate::error::Error;

/// A SCIM resource type as Aura keeps it.
pub trait Resource: Sized + Send + Sync + 'static {
    /// The attributes a list filter may name, lower-cased.
    const FILTERABLE: &'static [&'static str];
    /// One resource as the store gives it.
    type Row: Send + Sync;
    /// What a PUT or a PATCH asks to change.
    type Change: Default + Send;

    /// Every resource of the workspace.
    fn all(call: &ScimCall<Self>) -> impl Future<Output = Result<Vec<Self::Row>, Error>> + Send;
    /// Whether a row passes a list's filter.
    fn matches(row: &Self::Row, f: &Filter) -> bool;
    /// A row's wire form in a list.
    fn listed(base: &str, row: &Self::Row, q: &ListQuery) -> Value;
    /// One resource's wire form (GET by id).
    fn read(
        req: &Request,
        call: &ScimCall<Self>,
        id: &str,
    ) -> impl Future<Output = Result<Value, Failure>> + Send;
    /// Creates one from a POST body; its wire form.
    fn create(
        call: &ScimCall<Self>,
        v: &Value,
    ) -> impl Future<Output = Result<Value, Failure>> + Send;
    /// The change a PUT body asks for.
    fn put(v: &Value) -> Result<Self::Change, Failure>;
    /// Folds one PATCH operation into the change (`wire::fold_patch`).
    fn fold(
        change: &mut Self::Change,
        op: &str,
        path: &str,
        value: Option<&Value>,
    ) -> Result<(), Failure>;
    /// Applies a change; the wire form of the resource as it now is.
    fn apply(
        call: &ScimCall<Self>,
        id: &str,
        change: Self::Change,
    ) -> impl Future<Output = Result<Value, Error>> + Send;
    fn delete(call: &ScimCall<Self>, id: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// `R`'s own path (`/Users`): the list, and POST to create one.
pub fn collection<R: Resource>() -> RouteMethod {
    get(list::<R>::default()).post(create::<R>::default())
}

/// One `R` by id (`/Users/:id`): GET, PUT, PATCH and DELETE.
pub fn by_id<R: Resource>() -> RouteMethod {
    get(read::<R>::default())
        .put(change::<R>::default())
        .patch(change::<R>::default())
        .delete(delete::<R>::default())
}

#[handler]
async fn list<R: Resource>(req: &Request, call: ScimCall<R>) -> Response {
    finish(
        async {
            let q = wire::list_query(req, R::FILTERABLE)?;
            let items = R::all(&call)
                .await?
                .iter()
                .filter(|r| q.filter.as_ref().is_none_or(|f| R::matches(r, f)))
                .map(|r| R::listed(&call.base, r, &q))
                .collect();
            Ok(scim_json(StatusCode::OK, &wire::list_response(&q, items)))
        }
        .await,
    )
}

#[handler]
async fn read<R: Resource>(
    req: &Request,
    call: ScimCall<R>,
    ResourceId(id): ResourceId,
) -> Response {
    finish(
        R::read(req, &call, &id)
            .await
            .map(|v| scim_json(StatusCode::OK, &v)),
    )
}

/// POST: 201 with the resource, and its `meta.location` as `Location`.
#[handler]
async fn create<R: Resource>(req: &Request, call: ScimCall<R>, bytes: Vec<u8>) -> Response {
    finish(
        async {
            let v = R::create(&call, &wire::body(req, &bytes)?).await?;
            let mut r = scim_json(StatusCode::CREATED, &v);
            if let Some(Ok(loc)) = v["meta"]["location"].as_str().map(str::parse) {
                r.headers_mut().insert(header::LOCATION, loc);
            }
            Ok(r)
        }
        .await,
    )
}

/// PUT and PATCH: the body read as a change (PATCH's operations folded by
/// `R::fold`), then applied.
#[handler]
async fn change<R: Resource>(
    req: &Request,
    call: ScimCall<R>,
    ResourceId(id): ResourceId,
    bytes: Vec<u8>,
) -> Response {
    finish(
        async {
            let v = wire::body(req, &bytes)?;
            let change = match *req.method() {
                Method::PATCH => wire::fold_patch(&v, R::fold)?,
                _ => R::put(&v)?,
            };
            let now = R::apply(&call, &id, change).await?;
            Ok(scim_json(StatusCode::OK, &now))
        }
        .await,
    )
}

#[handler]
async fn delete<R: Resource>(call: ScimCall<R>, ResourceId(id): ResourceId) -> Response {
    finish(
        async {
            R::delete(&call, &id).await?;
            Ok(Response::builder().status(StatusCode::NO_CONTENT).finish())
        }
        .await,
    )
}
