//! What every records and teams page shares: reading a posted form (repeated
//! keys kept), entering the workspace, the page frame with its CSRF token,
//! and showing validation errors.

use std::str::FromStr;
use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Redirect};
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};

use super::{html_response, layout};
use crate::access::op::Op;
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::error::{Error, FieldError};
use crate::ids::{CollectionId, ExportId, RecordId, TeamId};
use crate::records::Visible;
use crate::web::csrf;
use crate::web::session::{AccountHolder, PublicCall, SignedIn};
use crate::web::tenant::TenantPage;

/// The form fields of a posted form, in order, repeated keys kept.
pub fn form_pairs(req: &Request) -> Vec<(String, String)> {
    let body = req
        .data::<csrf::FormBody>()
        .map(|b| b.0.as_slice())
        .unwrap_or_default();
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The fields of a posted form, as an extractor: a handler that reads its
/// form names this instead of parsing `form_pairs` itself.
pub struct Posted(pub Vec<(String, String)>);

impl<'a> FromRequest<'a> for Posted {
    async fn from_request(req: &'a Request, _: &mut RequestBody) -> poem::Result<Self> {
        Ok(Posted(form_pairs(req)))
    }
}

impl Posted {
    /// The first value of `key`, if it was sent.
    pub fn get(&self, key: &str) -> Option<&str> {
        one(&self.0, key)
    }

    /// The first value of `key`, empty when it was not sent.
    pub fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or_default()
    }

    /// `text`, owned (passwords and names handed to the domain).
    pub fn owned(&self, key: &str) -> String {
        self.text(key).to_owned()
    }
}

/// A page anyone may open, or a form they post (sign-in, links by mail):
/// the request (its CSRF token, browser binding, the page to go back to),
/// the appliance, the request's metadata and the posted fields (none on a
/// GET).
pub struct PublicPage<'a> {
    pub req: &'a Request,
    pub state: Arc<AppState>,
    pub meta: RequestMeta,
    pub form: Posted,
}

impl<'a> FromRequest<'a> for PublicPage<'a> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let PublicCall { state, meta } = PublicCall::from_request(req, body).await?;
        Ok(PublicPage {
            req,
            state,
            meta,
            form: Posted::from_request(req, body).await?,
        })
    }
}

/// What a form on the person's own account posts to: the appliance, the
/// request's metadata, the account holder (no workspace API token) and the
/// form's fields.
pub struct AccountPost {
    pub state: Arc<AppState>,
    pub meta: RequestMeta,
    pub who: SignedIn,
    pub form: Posted,
}

impl<'a> FromRequest<'a> for AccountPost {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let who = SignedIn::from(AccountHolder::from_request(req, body).await?);
        let PublicPage {
            state, meta, form, ..
        } = PublicPage::from_request(req, body).await?;
        Ok(AccountPost {
            state,
            meta,
            who,
            form,
        })
    }
}

/// An id in a workspace page's path (`:coll`, `:rec`, `:team`, `:id`),
/// parsed: a malformed one is the thing not found (its `FromStr`).
pub struct Id<T>(pub T);

/// An id type with the name of the path parameter that carries it.
pub trait PathId: FromStr<Err = Error> {
    const PARAM: &'static str;
}

impl PathId for CollectionId {
    const PARAM: &'static str = "coll";
}

impl PathId for RecordId {
    const PARAM: &'static str = "rec";
}

impl PathId for TeamId {
    const PARAM: &'static str = "team";
}

impl PathId for ExportId {
    const PARAM: &'static str = "id";
}

impl<'a, T: PathId> FromRequest<'a> for Id<T> {
    async fn from_request(req: &'a Request, _: &mut RequestBody) -> poem::Result<Self> {
        let raw = req.raw_path_param(T::PARAM).unwrap_or_default();
        Ok(Id(raw.parse()?))
    }
}

/// The record a page's path names: its collection (`{coll}`) and its id
/// (`{rec}`).
pub struct RecordAt(pub CollectionId, pub RecordId);

impl<'a> FromRequest<'a> for RecordAt {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let Id(cid) = Id::from_request(req, body).await?;
        let Id(rid) = Id::from_request(req, body).await?;
        Ok(RecordAt(cid, rid))
    }
}

/// A form posted to a workspace's page: the appliance, the workspace
/// entered for `O` (through `TenantPage`, the UI's door) and the fields.
pub struct WsPost<O> {
    pub state: Arc<AppState>,
    pub ctx: TenantPage<O>,
    pub form: Posted,
}

impl<'a, O: Op> FromRequest<'a> for WsPost<O> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let state = Data::<&Arc<AppState>>::from_request(req, body).await?;
        let state = Arc::clone(&state);
        let ctx = TenantPage::<O>::from_request(req, body).await?;
        let form = Posted::from_request(req, body).await?;
        Ok(WsPost { state, ctx, form })
    }
}

impl<O: Op> WsPost<O> {
    /// A form's change is done: on to `to`, where a line says so.
    pub fn done(&self, to: String) -> Response {
        let mut resp = see_other(to);
        super::flash::set::<O>(&mut resp, self.state.config.secure_cookies());
        resp
    }

    /// Like `done`, with an "Undo" button on the next page posting to `undo`.
    pub fn done_undoably(&self, to: String, undo: &str) -> Response {
        let mut resp = see_other(to);
        super::flash::set_with_undo::<O>(&mut resp, self.state.config.secure_cookies(), undo);
        resp
    }

    /// Where a workspace form goes next: to `to` (303) when the change was
    /// done, else the page again (`again`) with the validation errors or the
    /// conflict; any other error is the error page.
    pub async fn then<T>(
        &self,
        r: Result<T, Error>,
        to: impl FnOnce(T) -> String,
        again: impl AsyncFnOnce(&TenantPage<O>, &[FieldError]) -> poem::Result<Response>,
    ) -> poem::Result<Response> {
        let next = |t| self.done(to(t));
        super::admin_page::next_or_again(r, next, async |errors| again(&self.ctx, errors).await)
            .await
    }
}

/// One input's errors: its `aria-invalid` and `aria-describedby`, and the
/// messages shown beside it (`err-<id>`).
pub struct At {
    pub invalid: Option<&'static str>,
    pub described: Option<String>,
    pub note: Markup,
}

/// An error's field names `key` (or a part of it: `key[0]`, `key.x`).
fn names(field: &str, key: &str) -> bool {
    field
        .strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['[', '.']))
}

/// The errors of `key` for the input `id`.
pub fn at(errors: &[FieldError], key: &str, id: &str) -> At {
    let messages: Vec<&str> = errors
        .iter()
        .filter(|e| names(&e.field, key))
        .map(|e| e.message.as_str())
        .collect();
    at_messages(id, &messages)
}

/// `messages` for the input `id`.
pub fn at_messages(id: &str, messages: &[&str]) -> At {
    if messages.is_empty() {
        return At {
            invalid: None,
            described: None,
            note: html! {},
        };
    }
    let err = format!("err-{id}");
    At {
        invalid: Some("true"),
        described: Some(err.clone()),
        note: html! { span.field-error id=(err) { @for m in messages { (m) " " } } },
    }
}

/// `summary_by` with the fields listed: (key, label, input id).
pub fn summary(errors: &[FieldError], fields: &[(&str, &str, &str)]) -> Markup {
    summary_by(errors, |field| {
        fields
            .iter()
            .find(|(k, ..)| names(field, k))
            .map(|(_, label, id)| ((*label).to_owned(), (*id).to_owned()))
    })
}

pub fn one<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub fn every<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A signed-in page with the header and the page's CSRF token.
pub async fn page(
    req: &Request,
    state: &AppState,
    who: &SignedIn,
    status: StatusCode,
    title: &str,
    body: impl FnOnce(&str) -> Markup,
) -> poem::Result<Response> {
    let (token, _) = csrf::token_for(req, state);
    let banner = super::notices::banner(req, state, who, &token).await;
    let frame = Frame {
        state,
        who,
        token: &token,
        workspace: None,
        flash: super::flash::take(req, state.config.secure_cookies()),
    };
    framed(frame, banner, status, title, body).await
}

impl<O> TenantPage<O> {
    /// A page of this workspace: the header, the incident banner (entered
    /// for reading incidents) and the page's CSRF token.
    pub async fn page(
        &self,
        status: StatusCode,
        title: &str,
        body: impl FnOnce(&str) -> Markup,
    ) -> poem::Result<Response> {
        let banner = super::notices::banner_for(self).await;
        self.page_with(banner, status, title, body).await
    }

    /// `page` with the given banner (`notices::banner_in` reads it through
    /// this page's own entry).
    pub async fn page_with(
        &self,
        banner: Markup,
        status: StatusCode,
        title: &str,
        body: impl FnOnce(&str) -> Markup,
    ) -> poem::Result<Response> {
        let frame = Frame {
            state: self.state(),
            who: self.who(),
            token: self.csrf(),
            flash: self.flash().map(str::to_owned),
            workspace: Some(WsRef {
                ws: self.ws(),
                path: self.path(),
                id: self.db.id(),
                role: self.role,
                frozen: self.db.frozen(),
            }),
        };
        framed(frame, banner, status, title, body).await
    }
}

/// Who a page is for, and the workspace it belongs to (if any).
struct Frame<'a> {
    state: &'a AppState,
    who: &'a SignedIn,
    token: &'a str,
    workspace: Option<WsRef<'a>>,
    /// The last action's flash label.
    flash: Option<String>,
}

/// The workspace a page belongs to, as its shell needs it.
struct WsRef<'a> {
    ws: &'a str,
    path: &'a str,
    id: crate::ids::WorkspaceId,
    role: crate::access::Role,
    frozen: Option<crate::access::Frozen>,
}

/// The frame of a signed-in page: the header naming the person, then the
/// banner, then the body; a workspace's page in the workspace shell.
async fn framed(
    frame: Frame<'_>,
    banner: Markup,
    status: StatusCode,
    title: &str,
    body: impl FnOnce(&str) -> Markup,
) -> poem::Result<Response> {
    let state = frame.state;
    let user = frame.who.0.user_id;
    let control = Arc::clone(&state.control);
    let me = state
        .control
        .db
        .read_async(move |c| crate::store::control::get_user(c, &control.keys, user))
        .await?;
    let (email, platform_admin) = me.map(|u| (u.email, u.platform_admin)).unwrap_or_default();
    let page_ws = frame.workspace.as_ref().map(|w| w.ws);
    let nav = match frame.workspace {
        Some(w) => Some(workspace_nav(state, user, w).await?),
        None => None,
    };
    let impersonated = match &frame.who.0.impersonating {
        Some(i) => Some(crate::workspace::name_of(&state.control, i.workspace_id).await?),
        None => None,
    };
    let markup = html! { (super::flash::render(frame.flash.as_deref(), frame.token, page_ws)) (banner) (body(frame.token)) };
    let mut resp = html_response(
        status,
        layout(
            title,
            &super::Chrome {
                email: Some(&email),
                csrf: frame.token,
                impersonating: frame.who.0.impersonating.as_ref(),
                impersonated_name: impersonated.as_deref(),
                workspace: nav.as_ref(),
                platform_admin,
            },
            markup,
        ),
    );
    if frame.flash.is_some() {
        super::flash::clear(&mut resp, state.config.secure_cookies());
    }
    Ok(resp)
}

/// The shell of a workspace page: its name and the person's other
/// workspaces (staff impersonating see the one they are in).
async fn workspace_nav(
    state: &AppState,
    user: crate::ids::UserId,
    w: WsRef<'_>,
) -> poem::Result<super::shell::WorkspaceNav> {
    let mut name = None;
    let mut others = Vec::new();
    for (row, _) in crate::workspace::list_for_user(&state.control, user).await? {
        if row.id == w.id {
            name = Some(row.name);
        } else {
            others.push((row.id.to_string(), row.name));
        }
    }
    let name = match name {
        Some(n) => n,
        None => crate::workspace::name_of(&state.control, w.id).await?,
    };
    Ok(super::shell::WorkspaceNav {
        ws: w.ws.to_owned(),
        name,
        role: w.role,
        current: super::shell::Section::of(w.path, w.ws),
        others,
        frozen: w.frozen,
    })
}

/// A time for people: "3 minutes ago", "in 2 days", with the exact time
/// on hover and in `datetime` for machines.
pub fn when(unix: i64, now: i64) -> Markup {
    let exact = crate::clock::rfc3339(unix);
    html! { time datetime=(exact) title=(exact) { (relative(unix, now)) } }
}

/// "just now", "5 minutes ago", "yesterday", "in 3 days"; past a year,
/// the date.
pub fn relative(unix: i64, now: i64) -> String {
    let d = now.saturating_sub(unix);
    let (past, s) = (d >= 0, d.unsigned_abs());
    let unit = |n: u64, one: &str| -> String {
        let w = if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        };
        if past {
            format!("{w} ago")
        } else {
            format!("in {w}")
        }
    };
    match s {
        0..45 => "just now".into(),
        45..3_600 => unit(s.div_ceil(60).max(1), "minute"),
        3_600..86_400 => unit(s / 3_600, "hour"),
        86_400..172_800 => {
            if past {
                "yesterday".into()
            } else {
                "tomorrow".into()
            }
        }
        172_800..31_536_000 => unit(s / 86_400, "day"),
        _ => crate::clock::rfc3339(unix)
            .split('T')
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// A size for people, in binary units: "512 bytes", "3.4 KiB", "1.2 GiB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    // As f64 only for display: a rounding in the last digit is harmless.
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if v < 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

pub fn see_other(url: String) -> Response {
    Redirect::see_other(url).into_response()
}

pub fn errors_box(errors: &[FieldError]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.error role="alert" {
                p { "Nothing was saved. Please fix:" }
                ul { @for e in errors { li { strong { (e.field) } " " (e.message) } } }
            }
        }
    }
}

/// The summary of a refused form: "Nothing was saved", each error under
/// its input's label and linking to it (`#<id>`) where `anchor` knows the
/// field, else named as the server named it.
pub fn summary_by(
    errors: &[FieldError],
    anchor: impl Fn(&str) -> Option<(String, String)>,
) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.error role="alert" id="error-summary" {
                p { "Nothing was saved. Please fix:" }
                ul {
                    @for e in errors {
                        li {
                            @match anchor(&e.field) {
                                Some((label, id)) => { a href=(format!("#{id}")) { (label) } " " (e.message) }
                                None => { @if !e.field.is_empty() { strong { (e.field) } " " } (e.message) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn breadcrumbs(ws: &str, coll: Option<&Visible>) -> Markup {
    html! {
        p.crumbs {
            a href=(format!("/w/{ws}")) { "Collections" }
            @if let Some(c) = coll {
                " › " a href=(format!("/w/{ws}/c/{}", c.row.id)) { (c.row.def.name) }
            }
        }
    }
}

/// A form page's status: 200, or 422 when it shows what went wrong.
pub fn status_for(errors: &[FieldError]) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

pub fn validation_errors(e: Error) -> poem::Result<Vec<FieldError>> {
    match e {
        Error::Validation(v) => Ok(v),
        Error::Conflict(m) => Ok(vec![FieldError {
            field: "".into(),
            message: m,
        }]),
        other => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(20 * 1024 * 1024), "20 MiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(human_size(u64::MAX), "16384 PiB");
    }
}
