//! Static files (CSS, JS) embedded in the binary; no CDN, no build toolchain.

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{Response, handler};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

#[handler]
pub fn serve(Path(path): Path<String>) -> Response {
    match Assets::get(&path) {
        Some(file) => {
            let mime = mime_guess::from_path(&path).first_or_octet_stream();
            Response::builder()
                .header(header::CONTENT_TYPE, mime.as_ref())
                .header(header::CACHE_CONTROL, "public, max-age=3600")
                .body(file.data.into_owned())
        }
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/plain")
            .body("not found"),
    }
}
