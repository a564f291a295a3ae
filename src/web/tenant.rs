//! The workspace as a request capability. A handler that touches workspace
//! data takes `Tenant<op::X>` (API) or `TenantPage<op::X>` (UI) and nothing
//! else opens a workspace for a request: the extractor reads the
//! `workspace` (API) or `ws` (UI) path parameter, the caller and the
//! request's metadata, and goes through the one door (`access::enter::enter`)
//! for the operation `X`. A handler then reads like
//! `async fn get(&self, ws: Tenant<op::RecordRead>, ..) { records::get(&ws, ..) }`.

use crate::access::permissions::{Action, Resource, allows};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::registry::{MetaParamIn, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use crate::access::enter::{Door, TenantHandle, enter};
use crate::access::op::Op;
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::error::Error;
use crate::web::csrf;
use crate::web::session::{SignedIn, app_state};

/// An API request's workspace, entered for the operation `O`, and the
/// appliance (`state()`) for what the domain needs beside the workspace. In
/// the OpenAPI document it is the `workspace` path parameter (a string).
pub struct Tenant<O> {
    handle: TenantHandle,
    state: Arc<AppState>,
    op: PhantomData<fn() -> O>,
}

impl<O> Deref for Tenant<O> {
    type Target = TenantHandle;

    fn deref(&self) -> &TenantHandle {
        &self.handle
    }
}

/// How API handlers write the extractor: `workspace: tenant::Path<op::X>`.
/// poem-openapi renames a route's path parameters to `param0`, `param1`, ..
/// and hands those names, in order, to the arguments whose type is written
/// `Path<..>`; the workspace is a path parameter too, so it must be written
/// that way to take its place (always the first: `/workspaces/:workspace/..`).
pub type Path<O> = Tenant<O>;

/// A UI page's workspace (the `:ws` path parameter), entered for `O`, and
/// what the page's frame needs: the signed-in caller it names, the appliance,
/// the workspace as the path spells it and the CSRF token its forms carry.
pub struct TenantPage<O> {
    handle: TenantHandle,
    who: SignedIn,
    state: Arc<AppState>,
    ws: String,
    /// The page's path: which section of the shell is current.
    path: String,
    /// The last action's flash (`ui::flash`), shown once.
    flash: Option<String>,
    csrf: String,
    op: PhantomData<fn() -> O>,
}

impl<O> Deref for TenantPage<O> {
    type Target = TenantHandle;

    fn deref(&self) -> &TenantHandle {
        &self.handle
    }
}

impl<O> TenantPage<O> {
    pub fn into_handle(self) -> TenantHandle {
        self.handle
    }

    pub fn who(&self) -> &SignedIn {
        &self.who
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The `:ws` path parameter, as the request spelled it.
    pub fn ws(&self) -> &str {
        &self.ws
    }

    /// The requested path (`/w/acme/audit`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The last action's flash label, if the request carries one.
    pub fn flash(&self) -> Option<&str> {
        self.flash.as_deref()
    }

    /// False while the workspace is read-only (being deleted or moved):
    /// pages hide their forms that change something instead of letting a
    /// person type into a form that cannot be saved.
    pub fn writable(&self) -> bool {
        self.db.frozen().is_none()
    }

    /// The role allows `action` on `resource`, and the workspace takes
    /// changes now (`writable`) unless the action only reads.
    pub fn may(&self, resource: Resource, action: Action) -> bool {
        let reads = matches!(action, Action::Read | Action::Export | Action::Verify);
        allows(self.role, resource, action) && (reads || self.writable())
    }

    /// The token the page's forms carry (`csrf::token_for`).
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl<O> Tenant<O> {
    pub fn into_handle(self) -> TenantHandle {
        self.handle
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }
}

/// Signs the caller in, then enters the workspace named by `param`.
async fn open<O: Op>(
    req: &Request,
    body: &mut RequestBody,
    param: &str,
) -> poem::Result<(TenantHandle, SignedIn)> {
    let who = <SignedIn as FromRequest>::from_request(req, body).await?;
    let workspace = req.raw_path_param(param).unwrap_or_default();
    let handle = open_for::<O>(req, &who, workspace).await?;
    Ok((handle, who))
}

/// Enters `workspace` for `O` on behalf of a caller the page already signed
/// in: for what a page shows beside its own content (the incident banner).
pub async fn open_for<O: Op>(
    req: &Request,
    who: &SignedIn,
    workspace: &str,
) -> poem::Result<TenantHandle> {
    let state = app_state(req)?;
    let meta = req
        .data::<RequestMeta>()
        .cloned()
        .ok_or_else(|| poem::Error::from(Error::internal("request meta missing")))?;
    open_with::<O>(&state, who, workspace, meta).await
}

/// `open_for`, with the appliance and the request's metadata at hand.
pub async fn open_with<O: Op>(
    state: &AppState,
    who: &SignedIn,
    workspace: &str,
    meta: RequestMeta,
) -> poem::Result<TenantHandle> {
    let door = Door {
        control: &state.control,
        tenants: &state.tenants,
        clock: &state.clock,
    };
    Ok(enter::<O>(door, &who.0, workspace, meta).await?)
}

impl<'a, O: Op> ApiExtractor<'a> for Tenant<O> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    const PARAM_IS_REQUIRED: bool = true;

    type ParamType = String;
    type ParamRawType = String;

    fn register(registry: &mut Registry) {
        <String as Type>::register(registry);
    }

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Path)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(<String as Type>::schema_ref())
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        opts: ExtractParamOptions<String>,
    ) -> poem::Result<Self> {
        let (handle, _) = open::<O>(req, body, opts.name).await?;
        Ok(Tenant {
            handle,
            state: app_state(req)?,
            op: PhantomData,
        })
    }
}

impl<'a, O: Op> FromRequest<'a> for TenantPage<O> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let (handle, who) = open::<O>(req, body, "ws").await?;
        let state = app_state(req)?;
        let (csrf, _) = csrf::token_for(req, &state);
        let ws = req.raw_path_param("ws").unwrap_or_default().to_owned();
        let flash = crate::web::ui::flash::take(req, state.config.secure_cookies());
        Ok(TenantPage {
            handle,
            who,
            state,
            ws,
            path: req.uri().path().to_owned(),
            flash,
            csrf,
            op: PhantomData,
        })
    }
}
