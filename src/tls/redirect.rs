//! The plain-HTTP port with TLS on: ACME http-01 answers, and a permanent
//! redirect to HTTPS for everything else.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};

#[handler]
fn redirect(req: &Request, https_port: poem::web::Data<&u16>) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or(h).to_owned())
        .unwrap_or_default();
    let port = if **https_port == 443 {
        String::new()
    } else {
        format!(":{}", *https_port)
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    Response::builder()
        .status(StatusCode::PERMANENT_REDIRECT)
        .header(header::LOCATION, format!("https://{host}{port}{path}"))
        .finish()
}

#[handler]
fn challenge(
    Path(token): Path<String>,
    acme: poem::web::Data<&Option<Arc<rustls_acme::ResolvesServerCertAcme>>>,
) -> Response {
    match acme.as_ref().and_then(|r| r.get_http_01_key_auth(&token)) {
        Some(key_auth) => key_auth.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub fn app(
    acme: Option<Arc<rustls_acme::ResolvesServerCertAcme>>,
    https_port: u16,
) -> impl Endpoint {
    Route::new()
        .at("/.well-known/acme-challenge/:token", get(challenge))
        .at("/*path", redirect)
        .at("/", redirect)
        .data(acme)
        .data(https_port)
}
