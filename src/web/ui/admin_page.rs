//! What every page and form of the platform area shares: the platform
//! admin, the request the page is drawn for (its CSRF token, its flash and
//! banner), the posted fields (none on a GET), and where a form goes next.

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::{FromRequest, Request, RequestBody, Response};

use super::forms::{Posted, page, validation_errors};
use crate::error::{Error, FieldError};
use crate::web::session::{Admin, SignedIn};

/// A page of the platform area, or a form posted to one.
pub struct AdminPage<'a> {
    pub req: &'a Request,
    pub admin: Admin,
    pub form: Posted,
}

impl<'a> FromRequest<'a> for AdminPage<'a> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let admin = Admin::from_request(req, body).await?;
        let form = Posted::from_request(req, body).await?;
        Ok(AdminPage { req, admin, form })
    }
}

impl AdminPage<'_> {
    /// The page, framed for the admin, with the CSRF token its forms carry.
    pub async fn page(
        &self,
        status: StatusCode,
        title: &str,
        body: impl FnOnce(&str) -> Markup,
    ) -> poem::Result<Response> {
        let who = SignedIn(self.admin.who.clone());
        page(self.req, &self.admin.state, &who, status, title, body).await
    }
}

/// A platform page's heading: the way back to the platform area, then the
/// page's title.
pub fn heading(title: &str) -> Markup {
    html! {
        p.crumbs { a href="/platform" { "Platform" } }
        h1 { (title) }
    }
}

/// Where a form goes next: `next` (a redirect) when the change was done,
/// else `again` with the validation errors (the page again, a 422); any
/// other error is the error page.
pub async fn next_or_again<T>(
    r: Result<T, Error>,
    next: impl FnOnce(T) -> Response,
    again: impl AsyncFnOnce(&[FieldError]) -> poem::Result<Response>,
) -> poem::Result<Response> {
    match r {
        Ok(t) => Ok(next(t)),
        Err(e) => again(&validation_errors(e)?).await,
    }
}
