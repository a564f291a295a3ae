//! Files in records' file fields over HTTP: upload (the raw body, streamed
//! to disk sealed), download (streamed, every chunk authenticated first)
//! and removal. A download is never active content from the app's origin:
//! only images other than SVG and PDFs are shown inline; everything else is
//! an attachment, and every download carries `nosniff` and a sandboxing
//! `Content-Security-Policy`.

use poem::Body;
use poem_openapi::param::{Path, Query};
use poem_openapi::{ApiResponse, Object, OpenApi};
use tokio_stream::wrappers::ReceiverStream;

use super::ApiTags;
use super::body::{Download, JsonOut, MediaTypes};
use super::routes::api;
use crate::access::op;
use crate::app::AppState;
use crate::model::file_ref::{FileRef, safe_inline};
use crate::records::files::{self, NewFile};
use crate::web::tenant;

/// One file in a record's file field.
#[derive(Object, serde::Serialize)]
pub struct FileInfo {
    /// `fl_` and 24 hex digits.
    pub id: String,
    pub name: String,
    /// The media type found in the content's first bytes (not the name).
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub media_type: String,
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

impl From<FileRef> for FileInfo {
    fn from(f: FileRef) -> Self {
        Self {
            id: f.id,
            name: f.name,
            media_type: f.media_type,
            size: f.size,
            sha256: f.sha256,
        }
    }
}

#[derive(ApiResponse)]
pub enum FileAdded {
    /// Stored, sealed; the record has a new version listing it.
    #[oai(status = 201)]
    Created(JsonOut<FileInfo>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum FileDeleted {
    #[oai(status = 204)]
    Deleted,
}

/// A raw request body of any type, left unread until the caller is
/// authorised, then streamed to disk.
pub type FileBody = super::body_stream::Streamed<AnyBody>;

/// Bodies of any type (a file's type is sniffed, never taken from the
/// request).
pub struct AnyBody;

impl super::body_stream::BodyKind for AnyBody {
    const CONTENT_TYPE: &'static str = "application/octet-stream";

    fn accepts(_content_type: &str) -> bool {
        true
    }
}

impl FileBody {
    /// The body as a blocking reader, holding one of the places for
    /// streamed bodies. Its own limit is only a backstop: the records
    /// module stops at the field's limit.
    pub async fn reader(
        self,
        state: &AppState,
    ) -> poem::Result<(super::body_stream::BodyReader, Option<u64>)> {
        let slot = super::body_stream::slot().await?;
        let until = tokio::time::Instant::now() + crate::web::middleware::REQUEST_DEADLINE;
        let limit = files::body_backstop(&state.config.file.files);
        let (reader, _over) = super::body_stream::BodyReader::new(self.body, limit, until);
        let reader = reader.awaiting_continue(self.expects_continue);
        Ok((reader.holding(slot), self.declared))
    }
}

/// Whatever the file's type is.
pub struct AnyType;

impl MediaTypes for AnyType {
    const TYPES: &'static [&'static str] = &["*/*"];
}

/// `attachment` (or `inline` for a safe type) with the name as ASCII and as
/// UTF-8 (RFC 6266).
pub fn disposition(name: &str, inline: bool) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The download response for `d`: streamed, with the safe headers.
pub fn download_response(d: files::Download) -> Download<AnyType> {
    let inline = safe_inline(&d.file.media_type);
    let content_type = if inline {
        d.file.media_type.clone()
    } else {
        // Never a type a browser might run or render from this origin.
        "application/octet-stream".to_owned()
    };
    Download::new(
        &content_type,
        disposition(&d.file.name, inline),
        Body::from_bytes_stream(ReceiverStream::new(d.chunks)),
    )
    .header("content-length", d.file.size.to_string())
    .header("x-content-type-options", "nosniff".into())
    .header(
        "content-security-policy",
        "sandbox; default-src 'none'".into(),
    )
    .header("cache-control", "private, no-store".into())
}

#[derive(Default)]
pub struct FilesApi;

api! {
    #[OpenApi(tag = "ApiTags::Records")]
    impl FilesApi {
        /// Uploads a file into a record's file field: the raw bytes as the
        /// body, the file's name in `name`. The media type is found from the
        /// content (not the name) and must be one the field allows (else 422
        /// naming the field); a file above the field's `max_size` or the
        /// operator's `files.max_file_bytes`, or past the workspace's quota,
        /// gets 413 and nothing is kept. A single-file field's earlier file is
        /// replaced. The file is sealed on disk, bound to its workspace,
        /// record, field and id. Audited (`record.file_added`).
        POST "/workspaces/:workspace/collections/:collection/records/:record/files/:field"
        async fn upload(
            workspace: tenant::Path<op::RecordUpdate>,
            collection: Path<String>,
            record: Path<String>,
            field: Path<String>,
            #[oai(validator(min_length = 1, max_length = 1024))] name: Query<String>,
            body: FileBody,
        ) -> FileAdded {
            let (reader, declared) = body.reader(workspace.state()).await?;
            let (coll, rec, file) = files::upload_file(
                &workspace,
                &workspace.state().config.file.files,
                &collection.parse()?,
                &record.parse()?,
                NewFile {
                    field: field.0,
                    name: name.0,
                    declared,
                    body: reader,
                },
            )
            .await?;
            let field_id = coll
                .row
                .def
                .fields
                .iter()
                .find(|f| {
                    crate::model::file_ref::refs(rec.values.get(&f.id))
                        .iter()
                        .any(|r| r.id == file.id)
                })
                .map(|f| f.id.clone())
                .unwrap_or_default();
            let location = format!(
                "/api/v1/workspaces/{}/collections/{}/records/{}/files/{}/{}",
                workspace.db.id(),
                coll.row.id,
                rec.id,
                field_id,
                file.id
            );
            Ok(FileAdded::Created(JsonOut(file.into()), location))
        }

        /// Downloads a file, streamed. PNG, JPEG, GIF, WebP, AVIF and PDF come
        /// with their type and `inline`; anything else as
        /// `application/octet-stream` and `attachment`. A file that fails its
        /// integrity check answers 500 `integrity` (or, past its first 64 KiB,
        /// the transfer is cut short): never altered content.
        GET "/workspaces/:workspace/collections/:collection/records/:record/files/:field/:file"
        async fn download(
            workspace: tenant::Path<op::RecordRead>,
            collection: Path<String>,
            record: Path<String>,
            field: Path<String>,
            file: Path<String>,
        ) -> Download<AnyType> {
            let d = files::download_file(
                &workspace,
                &collection.parse()?,
                &record.parse()?,
                &field.0,
                &file.0,
            )
            .await?;
            Ok(download_response(d))
        }

        /// Removes a file from a record's file field (the record gets a new
        /// version). Audited (`record.file_removed`).
        DELETE "/workspaces/:workspace/collections/:collection/records/:record/files/:field/:file"
        async fn delete(
            workspace: tenant::Path<op::RecordUpdate>,
            collection: Path<String>,
            record: Path<String>,
            field: Path<String>,
            file: Path<String>,
        ) -> FileDeleted {
            files::delete_file(
                &workspace,
                &collection.parse()?,
                &record.parse()?,
                &field.0,
                &file.0,
            )
            .await?;
            Ok(FileDeleted::Deleted)
        }
    }
}
