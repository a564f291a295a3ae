//! A request body read incrementally by blocking code (issue 27, finding 2):
//! the CSV import parses rows on a blocking thread as the chunks arrive, so
//! the server holds one network chunk at a time, never the whole body. The
//! reader enforces the route's byte limit as it goes (flagging an overflow
//! so the handler answers 413) and gives up at the request deadline, so a
//! trickling client cannot keep the blocking thread past its request.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Buf, Bytes};
use poem_openapi::payload::{ParsePayload, Payload};
use tokio::time::Instant;
use tokio_stream::{Stream, StreamExt};

type Chunks = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Streamed bodies being read at once, each on a blocking thread for at
/// most the request deadline: however small the bodies declared (and so
/// their reservations in the byte budget), trickling uploads cannot take
/// more than these of the blocking pool's threads.
pub const AT_ONCE: usize = 16;
static READING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(AT_ONCE);

/// A place among the `AT_ONCE` streamed bodies, waited for up to 2 s, else
/// 503 with `Retry-After`.
pub async fn slot() -> Result<tokio::sync::SemaphorePermit<'static>, crate::web::problem::Problem> {
    match tokio::time::timeout(std::time::Duration::from_secs(2), READING.acquire()).await {
        Ok(Ok(p)) => Ok(p),
        _ => {
            tracing::warn!("streamed request bodies at their cap; refused");
            Err(crate::web::problem::Problem {
                retry_after: Some(2),
                ..crate::web::problem::Problem::new(
                    poem::http::StatusCode::SERVICE_UNAVAILABLE,
                    "urn:aura:problem:busy",
                    "Server busy",
                )
                .detail("too many imports at once; try again shortly")
            })
        }
    }
}

/// A `std::io::Read` over a request body; use it only off the async
/// workers (inside `spawn_blocking`), as each refill blocks on the network.
pub struct BodyReader {
    chunks: Chunks,
    handle: tokio::runtime::Handle,
    chunk: Bytes,
    seen: usize,
    limit: usize,
    until: Instant,
    over: Arc<AtomicBool>,
    /// The body's end was read.
    ended: bool,
    /// A chunk was asked for: past that, hyper has answered a client that
    /// sent `Expect: 100-continue` with `100 Continue`.
    polled: bool,
    /// The client waits for `100 Continue` before it sends the body.
    awaits_continue: bool,
    /// Its place among the `AT_ONCE`, given back when the blocking reader
    /// is done with it (not when the handler is).
    _slot: Option<tokio::sync::SemaphorePermit<'static>>,
}

/// Set once the body passed its limit: the handler answers 413.
#[derive(Clone, Default)]
pub struct Overflow(Arc<AtomicBool>);

impl Overflow {
    pub fn happened(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl BodyReader {
    /// Must be called on the runtime (it keeps its handle for the refills).
    pub fn new(body: poem::Body, limit: usize, until: Instant) -> (Self, Overflow) {
        let over = Overflow::default();
        let reader = Self {
            chunks: Box::pin(body.into_bytes_stream()),
            handle: tokio::runtime::Handle::current(),
            chunk: Bytes::new(),
            seen: 0,
            limit,
            until,
            over: Arc::clone(&over.0),
            ended: false,
            polled: false,
            awaits_continue: false,
            _slot: None,
        };
        (reader, over)
    }

    /// The request said `Expect: 100-continue`: refused before a byte was
    /// asked for, its body was never sent, and nothing is drained (asking
    /// for it would send `100 Continue` and invite the bytes in).
    pub fn awaiting_continue(mut self, awaits: bool) -> Self {
        self.awaits_continue = awaits;
        self
    }

    /// Keeps `slot` (from `slot()`) until the reader is dropped.
    pub fn holding(mut self, slot: tokio::sync::SemaphorePermit<'static>) -> Self {
        self._slot = Some(slot);
        self
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            self.polled = true;
            let next = self
                .handle
                .block_on(tokio::time::timeout_at(self.until, self.chunks.next()));
            match next {
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request body too slow",
                    ));
                }
                Ok(None) => {
                    self.ended = true;
                    return Ok(0);
                }
                Ok(Some(Err(e))) => return Err(e),
                Ok(Some(Ok(b))) => {
                    self.seen = self.seen.saturating_add(b.len());
                    if self.seen > self.limit {
                        self.over.store(true, Ordering::Relaxed);
                        return Err(io::Error::other("request body over its limit"));
                    }
                    self.chunk = b;
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

/// What a refused body may still send after its answer: read and thrown
/// away (`BodyReader`'s drop), at most this much and for at most `DRAIN_FOR`.
const DRAIN_BYTES: usize = 4 << 20;
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(5);
/// Drains running at once; past them a refused body's connection closes as
/// before (its client may then see a reset instead of the answer).
static DRAINING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);

impl Drop for BodyReader {
    /// A body left unread (refused by its declared length, or past its
    /// limit): the rest, up to `DRAIN_BYTES`, is read and thrown away in the
    /// background. Closing the connection with the client's bytes unread
    /// in the kernel's buffer sends a reset, which can reach the client
    /// before the 413 and lose it; a client sending a body no larger than
    /// that gets its answer.
    fn drop(&mut self) {
        if self.ended || (self.awaits_continue && !self.polled) {
            return;
        }
        let Ok(permit) = DRAINING.try_acquire() else {
            return;
        };
        let mut chunks: Chunks =
            std::mem::replace(&mut self.chunks, Box::pin(tokio_stream::empty()));
        // Within the request's own deadline too.
        let until = self.until.min(Instant::now() + DRAIN_FOR);
        self.handle.spawn(async move {
            let _permit = permit;
            let mut read = 0usize;
            while read < DRAIN_BYTES {
                match tokio::time::timeout_at(until, chunks.next()).await {
                    Ok(Some(Ok(b))) => read = read.saturating_add(b.len()),
                    _ => break,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> poem::Body {
        let parts: Vec<_> = parts
            .iter()
            .map(|p| Ok::<_, io::Error>(Bytes::from_static(p)))
            .collect();
        let s = tokio_stream::iter(parts);
        poem::Body::from_bytes_stream(s)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn reads_chunks_and_stops_past_the_limit() {
        let until = Instant::now() + std::time::Duration::from_secs(5);
        let (mut r, over) = BodyReader::new(body(&[b"a,b\n", b"1,2\n"]), 8, until);
        let all = tokio::task::spawn_blocking(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).map(|_| s)
        });
        assert_eq!(all.await.unwrap().unwrap(), "a,b\n1,2\n");
        assert!(!over.happened());

        let (mut r, over) = BodyReader::new(body(&[b"a,b\n", b"1,2\n", b"3"]), 8, until);
        let res = tokio::task::spawn_blocking(move || r.read_to_end(&mut Vec::new()));
        assert!(res.await.unwrap().is_err());
        assert!(over.happened());
    }
}

/// Which request bodies a `Streamed` payload takes: the content type the
/// OpenAPI document names, and which `Content-Type` headers pass.
pub trait BodyKind: Send + Sync + 'static {
    const CONTENT_TYPE: &'static str;
    fn accepts(content_type: &str) -> bool;
}

/// A raw request body, left unread until the handler has authorised the
/// caller, then read incrementally (`BodyReader`) by blocking code. `K`
/// says which content types it takes; the declared `Content-Length`, if
/// any, sizes reservations.
pub struct Streamed<K> {
    pub body: poem::Body,
    pub declared: Option<u64>,
    /// `Expect: 100-continue`: the client sends the body only once asked.
    pub expects_continue: bool,
    kind: std::marker::PhantomData<K>,
}

impl<K: BodyKind> Payload for Streamed<K> {
    const CONTENT_TYPE: &'static str = K::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        K::accepts(content_type)
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        <poem_openapi::types::Binary<Vec<u8>> as poem_openapi::types::Type>::schema_ref()
    }
}

impl<K: BodyKind> ParsePayload for Streamed<K> {
    const IS_REQUIRED: bool = true;

    async fn from_request(
        request: &poem::Request,
        body: &mut poem::RequestBody,
    ) -> poem::Result<Self> {
        let declared = request
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let expects_continue = request
            .headers()
            .get(poem::http::header::EXPECT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        Ok(Self {
            body: body.take()?,
            declared,
            expects_continue,
            kind: std::marker::PhantomData,
        })
    }
}

poem_openapi::impl_apirequest_for_payload!(Streamed<K>, K: BodyKind);
