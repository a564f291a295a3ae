//! A record's files on its page: per file field, the files with download
//! links, an image preview (served with the download's safe headers) and a
//! remove button, and an upload form. The upload is a plain multipart form
//! post (its CSRF token in the query string, since the body is streamed and
//! not parsed before the handler); with JavaScript, assets/app.js sends the
//! same form with a progress bar.

use maud::{Markup, html};
use poem::web::{Data, Multipart, Path as PoemPath};
use poem::{Response, handler};

use super::forms::{RecordAt, WsPost, see_other};
use crate::access::op;
use crate::app::AppState;
use crate::error::{Error, FieldError};
use crate::model::file_ref::{self, safe_inline};
use crate::records::files::{self as rfiles, NewFile};
use crate::records::schema::{FieldType, RecordAction};
use crate::records::{self, Visible};
use crate::store::records::RecordRow;
use crate::web::tenant::TenantPage;
use std::sync::Arc;

/// A size for people: 1.2 MB, 340 kB, 12 bytes.
fn human_size(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} bytes"),
        1_000..1_000_000 => format!("{:.0} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// The files section of a record's page; `errors` may name a file field.
pub fn files_section(
    ws: &str,
    v: &Visible,
    rec: &RecordRow,
    token: &str,
    writable: bool,
    errors: &[FieldError],
) -> Markup {
    let fields: Vec<_> = v
        .row
        .def
        .live_fields()
        .filter(|f| f.kind == FieldType::File)
        .collect();
    let base = format!("/w/{ws}/c/{}/r/{}/files", v.row.id, rec.id);
    let editable = writable && v.can(RecordAction::Update);
    html! {
        @if !fields.is_empty() {
            section.card id="files" {
                h2 { "Files" }
                @for f in fields {
                    @let files = file_ref::refs(rec.values.get(&f.id));
                    @let input_id = format!("file-{}", f.id);
                    @let errs: Vec<&FieldError> = errors.iter().filter(|e| e.field == f.name || e.field == format!("values.{}", f.name)).collect();
                    h3 { (f.name) }
                    @if files.is_empty() { p.muted { "No files yet." } }
                    ul.files {
                        @for file in &files {
                            @let url = format!("{base}/{}/{}", f.id, file.id);
                            li {
                                @if safe_inline(&file.media_type) && file.media_type.starts_with("image/") {
                                    img.file-preview src=(url) alt=(file.name) loading="lazy";
                                }
                                a href=(url) download=(file.name) { (file.name) }
                                " "
                                span.muted { (human_size(file.size)) " · " (file.media_type) }
                                @if editable {
                                    form method="post" action=(format!("{base}/remove"))
                                        data-confirm=(format!("Remove {}? The file is deleted.", file.name)) data-confirm-label="Remove file" {
                                        (super::csrf_field(token))
                                        input type="hidden" name="field" value=(f.id);
                                        input type="hidden" name="file" value=(file.id);
                                        button.secondary type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                    @if editable {
                        form.upload method="post" enctype="multipart/form-data"
                            action=(format!("{base}/{}?csrf={token}", f.id)) data-upload {
                            label for=(input_id) {
                                @if f.multiple || files.is_empty() { "Add a file" } @else { "Replace the file" }
                            }
                            input id=(input_id) type="file" name="file" required
                                accept=[(!f.types.is_empty()).then(|| f.types.join(","))]
                                aria-invalid=[(!errs.is_empty()).then_some("true")]
                                aria-describedby=[(!errs.is_empty()).then(|| format!("err-{input_id}"))];
                            @if !errs.is_empty() {
                                p.field-error id=(format!("err-{input_id}")) {
                                    @for e in &errs { (f.name) " " (e.message) ". " }
                                }
                            }
                            progress hidden max="100" value="0" {}
                            button type="submit" { "Upload" }
                        }
                    }
                }
            }
        }
    }
}

/// The multipart form post: the first part named `file` is streamed into
/// the field. Errors (type, size, quota) come back on the record's page,
/// at the field.
#[handler]
pub async fn upload(
    ctx: TenantPage<op::RecordUpdate>,
    state: Data<&Arc<AppState>>,
    RecordAt(cid, rid): RecordAt,
    PoemPath((_, _, _, field)): PoemPath<(String, String, String, String)>,
    mut form: Multipart,
) -> poem::Result<Response> {
    let part = loop {
        match form.next_field().await {
            Ok(Some(p)) if p.name() == Some("file") => break Some(p),
            Ok(Some(_)) => continue,
            Ok(None) => break None,
            Err(_) => return Err(Error::field("file", "the form did not arrive whole").into()),
        }
    };
    let outcome = match part {
        None => Err(Error::field("file", "choose a file to upload")),
        Some(p) => {
            let name = p.file_name().unwrap_or("file").to_owned();
            // The place first: a refused one leaves the body unread.
            let slot = crate::web::api::body_stream::slot().await?;
            let reader = crate::web::api::body_stream::BodyReader::new(
                poem::Body::from_async_read(p.into_async_read()),
                rfiles::body_backstop(&state.config.file.files),
                tokio::time::Instant::now() + crate::web::middleware::REQUEST_DEADLINE,
            )
            .0
            .holding(slot);
            rfiles::upload_file(
                &ctx,
                &state.config.file.files,
                &cid,
                &rid,
                NewFile {
                    field: field.clone(),
                    name,
                    declared: None,
                    body: reader,
                },
            )
            .await
            .map(|_| ())
        }
    };
    let to = format!("/w/{}/c/{cid}/r/{rid}", ctx.ws());
    match outcome {
        Ok(()) => {
            let mut resp = see_other(format!("{to}#files"));
            super::flash::set::<op::RecordUpdate>(&mut resp, state.config.secure_cookies());
            Ok(resp)
        }
        Err(e) => {
            let label = records::load(&ctx, &cid, records::Need::See)
                .await?
                .row
                .def
                .live_field(&field)
                .map(|f| f.name.clone())
                .unwrap_or_else(|| "file".into());
            let errors = match e {
                Error::TooLarge(m) => vec![FieldError {
                    field: label,
                    message: m,
                }],
                Error::Validation(v) => v
                    .into_iter()
                    .map(|e| FieldError {
                        field: if e.field == "field" || e.field == "file" || e.field == "name" {
                            label.clone()
                        } else {
                            e.field
                        },
                        message: e.message,
                    })
                    .collect(),
                other => return Err(other.into()),
            };
            super::record_form::record_page_with_errors(&ctx, &cid, &rid, &errors).await
        }
    }
}

/// Removes one file (the form names its field and id).
#[handler]
pub async fn remove(
    p: WsPost<op::RecordUpdate>,
    RecordAt(cid, rid): RecordAt,
) -> poem::Result<Response> {
    let field = p.form.get("field").unwrap_or_default().to_owned();
    let file = p.form.get("file").unwrap_or_default().to_owned();
    rfiles::delete_file(&p.ctx, &cid, &rid, &field, &file).await?;
    Ok(p.done(format!("/w/{}/c/{cid}/r/{rid}#files", p.ctx.ws())))
}

/// A file, for a person signed in: the API's download, same headers.
#[handler]
pub async fn download(
    ctx: TenantPage<op::RecordRead>,
    RecordAt(cid, rid): RecordAt,
    PoemPath((_, _, _, field, file)): PoemPath<(String, String, String, String, String)>,
) -> poem::Result<Response> {
    let d = rfiles::download_file(&ctx, &cid, &rid, &field, &file).await?;
    Ok(poem::IntoResponse::into_response(
        crate::web::api::files::download_response(d),
    ))
}
