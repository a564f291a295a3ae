//! `JsonBody<T>`: a JSON request payload that keeps poem-openapi's schema for the
//! OpenAPI document but parses with serde, so a bad body gets a problem that
//! names the exact field (`fields[2].type`) instead of a generic parse error.

use poem::{Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

use crate::error::FieldError;
use crate::web::problem::Problem;

pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m)
            if m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        // Bounded here too, whatever the middleware decided for the path: a
        // JSON body never needs more than the default limit.
        let limit = crate::web::middleware::DEFAULT_BODY_LIMIT;
        let data = body
            .take()?
            .into_bytes_limit(limit)
            .await
            .map_err(|_| too_large(limit))?;
        parse_json(&data).map(JsonBody).map_err(poem::Error::from)
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned + Send);

pub fn parse_json<T: DeserializeOwned>(data: &[u8]) -> Result<T, Problem> {
    if data.is_empty() {
        return Err(Problem::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    // Every JSON body is an object (its schema says so), but serde also
    // reads a struct from an array of its fields in order: refuse that here.
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b == b'[') {
        return Err(Problem::validation(vec![FieldError {
            field: "body".into(),
            message: "must be a JSON object".into(),
        }]));
    }
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if !matches!(inner.classify(), serde_json::error::Category::Data) {
            return Problem::bad_request("the request body is not valid JSON");
        }
        let message = strip_position(&inner.to_string());
        let (field, message) = match missing_field(&message) {
            Some(name) if path == "." => (name.to_owned(), "is required".to_owned()),
            Some(name) => (format!("{path}.{name}"), "is required".to_owned()),
            None => match unknown_field(&message) {
                Some(name) if path == "." => (name.to_owned(), "is not a known field".to_owned()),
                // serde_path_to_error's path already ends at the unknown key.
                Some(_) => (path, "is not a known field".to_owned()),
                None => (if path == "." { "body".to_owned() } else { path }, message),
            },
        };
        Problem::validation(vec![FieldError { field, message }])
    })
}

/// A `text/csv` request body (CSV import), left unread until the handler
/// has authorised the caller (`stream`), then read incrementally, within the
/// route's body limit, by the blocking code that parses it.
pub type CsvBody = super::body_stream::Streamed<Csv>;

/// `text/csv` bodies.
pub struct Csv;

impl super::body_stream::BodyKind for Csv {
    const CONTENT_TYPE: &'static str = "text/csv";

    fn accepts(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m)
            if m.type_() == "text" && m.subtype() == "csv")
    }
}

/// The 413 a body past its limit gets.
pub fn too_large(limit: usize) -> poem::Error {
    Problem::new(
        poem::http::StatusCode::PAYLOAD_TOO_LARGE,
        "urn:aura:problem:too-large",
        "Request body too large",
    )
    .detail(format!("the limit is {limit} bytes"))
    .into()
}

impl CsvBody {
    /// The body as a blocking reader. Its rows, once parsed, are held until
    /// the import commits, so it still reserves its size (or the limit)
    /// from the global budget for as long as the returned guard lives; the
    /// reader holds one of the places for streamed bodies.
    pub async fn stream(
        self,
        state: &crate::app::AppState,
    ) -> poem::Result<(
        super::body_stream::BodyReader,
        super::body_stream::Overflow,
        crate::web::budget::Reserved,
    )> {
        let limit = crate::web::middleware::IMPORT_BODY_LIMIT;
        let reserved = state
            .bodies
            .reserve(
                self.declared
                    .and_then(|d| usize::try_from(d).ok())
                    .unwrap_or(limit)
                    .min(limit),
            )
            .await?;
        let slot = super::body_stream::slot().await?;
        let until = tokio::time::Instant::now() + crate::web::middleware::REQUEST_DEADLINE;
        let (reader, over) = super::body_stream::BodyReader::new(self.body, limit, until);
        let reader = reader.awaiting_continue(self.expects_continue);
        Ok((reader.holding(slot), over, reserved))
    }
}

/// serde_json appends " at line 1 column 7"; the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn backticked<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = msg.strip_prefix(prefix)?;
    let rest = rest.strip_prefix('`')?;
    rest.split('`').next()
}

fn missing_field(msg: &str) -> Option<&str> {
    backticked(msg, "missing field ")
}

fn unknown_field(msg: &str) -> Option<&str> {
    backticked(msg, "unknown field ")
}

/// `JsonOut<T>`: a JSON response with `T`'s schema in the OpenAPI document,
/// written straight from `T` with serde. poem-openapi's `Json<T>` first
/// copies the whole value into a `serde_json::Value` tree; for records and
/// pages of records that copy was a measurable share of the response time.
/// `T`'s serde names must match its `Object` names (plain field names, as
/// everywhere in this API).
pub struct JsonOut<T>(pub T);

impl<T: Type> Payload for JsonOut<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        JsonBody::<T>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: serde::Serialize + Send> poem::IntoResponse for JsonOut<T> {
    fn into_response(self) -> poem::Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => poem::Response::builder()
                .content_type("application/json; charset=utf-8")
                .body(body),
            Err(e) => Problem::from(crate::error::Error::internal(format!("response: {e}")))
                .into_response(),
        }
    }
}

impl<T: Type + serde::Serialize + Send> poem_openapi::ApiResponse for JsonOut<T> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses};
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// The media types a `Download` can have, for the OpenAPI document.
pub trait MediaTypes: Send {
    const TYPES: &'static [&'static str];
}

/// A streamed file (an export, a CSV), documented with the media types it is
/// really sent as: poem-openapi's `Binary` documents only
/// `application/octet-stream`.
pub struct Download<M>(poem::Response, std::marker::PhantomData<M>);

impl<M: MediaTypes> Download<M> {
    /// `content_type` must be one of `M::TYPES` (parameters aside).
    pub fn new(content_type: &str, disposition: String, body: poem::Body) -> Self {
        let resp = poem::Response::builder()
            .content_type(content_type)
            .header(poem::http::header::CONTENT_DISPOSITION, disposition)
            .body(body);
        Self(resp, std::marker::PhantomData)
    }

    pub fn header(mut self, name: &'static str, value: String) -> Self {
        if let Ok(v) = poem::http::HeaderValue::from_str(&value) {
            self.0.headers_mut().insert(name, v);
        }
        self
    }
}

impl<M: MediaTypes> poem::IntoResponse for Download<M> {
    fn into_response(self) -> poem::Response {
        self.0
    }
}

impl<M: MediaTypes> poem_openapi::ApiResponse for Download<M> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses};
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The file, streamed.",
                status: Some(200),
                status_range: None,
                content: M::TYPES
                    .iter()
                    .map(|t| MetaMediaType {
                        content_type: t,
                        schema: <poem_openapi::types::Binary<Vec<u8>> as Type>::schema_ref(),
                    })
                    .collect(),
                headers: vec![],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    #[test]
    fn names_the_field() {
        let p = parse_json::<Login>(br#"{"email":"a@b.c"}"#).unwrap_err();
        assert_eq!(p.errors[0].field, "password");
        let p = parse_json::<Login>(br#"{"email":5,"password":"x"}"#).unwrap_err();
        assert_eq!(p.errors[0].field, "email");
        let p = parse_json::<Login>(br#"{"email":"a","password":"x","admin":true}"#).unwrap_err();
        assert_eq!(p.errors[0].field, "admin");
        let p = parse_json::<Login>(br#" ["a@b.c", "x"]"#).unwrap_err();
        assert_eq!(p.errors[0].field, "body");
        let p = parse_json::<Login>(b"{not json").unwrap_err();
        assert_eq!(p.status, 400);
    }
}
