//! Slow readers of streamed bodies (issue 27, finding 6). Two mechanisms:
//! - `WriteDeadline` wraps every accepted connection: a write that makes no
//!   progress for the stall window fails, so hyper drops the connection and
//!   everything it buffered, however the body is produced.
//! - `PacedSender` feeds a streamed export's body through a small bounded
//!   channel from an async producer (no blocking thread waits on a slow
//!   client), and cuts the export when the reader stalls or averages below
//!   the minimum rate.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use super::ExportSlot;

/// Chunks a streamed body may have queued between its producer and the
/// connection; with ~64 KiB chunks this bounds a stalled export's memory.
pub const BODY_CHANNEL: usize = 2;

pub type BodyStream = mpsc::Receiver<std::result::Result<Bytes, std::io::Error>>;

/// Why a paced body stopped early.
#[derive(Debug, PartialEq, Eq)]
pub enum Cut {
    /// The reader went away.
    Gone,
    /// The reader took nothing for the stall window.
    Stalled,
    /// The reader averaged below the minimum rate.
    TooSlow,
}

pub struct PacedSender {
    tx: mpsc::Sender<std::result::Result<Bytes, std::io::Error>>,
    started: Instant,
    sent: u64,
    stall: Duration,
    min_rate: u64,
    _slot: Option<ExportSlot>,
}

impl PacedSender {
    /// A body channel paced by `stall` and `min_rate`; `slot` is held until
    /// the sender is dropped (the export ends).
    pub fn channel(stall: Duration, min_rate: u64, slot: Option<ExportSlot>) -> (Self, BodyStream) {
        let (tx, rx) = mpsc::channel(BODY_CHANNEL);
        (
            Self {
                tx,
                started: Instant::now(),
                sent: 0,
                stall,
                min_rate,
                _slot: slot,
            },
            rx,
        )
    }

    pub async fn send(&mut self, chunk: Bytes) -> Result<(), Cut> {
        let n = chunk.len() as u64;
        match tokio::time::timeout(self.stall, self.tx.send(Ok(chunk))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Cut::Gone),
            Err(_) => return Err(self.cut(Cut::Stalled)),
        }
        self.sent += n;
        let elapsed = self.started.elapsed();
        if elapsed > self.stall && self.sent < self.min_rate.saturating_mul(elapsed.as_secs()) {
            return Err(self.cut(Cut::TooSlow));
        }
        Ok(())
    }

    /// Ends the body with an error, so the connection is dropped rather than
    /// the body looking complete.
    pub fn fail(&self, why: &str) {
        let _ = self.tx.try_send(Err(std::io::Error::other(why.to_owned())));
    }

    fn cut(&self, why: Cut) -> Cut {
        tracing::info!(
            ?why,
            bytes = self.sent,
            "streamed export cut off: slow reader"
        );
        self.fail("slow reader");
        why
    }
}

/// An acceptor whose connections fail a write that makes no progress for
/// `stall` (the write deadline of response bodies).
pub struct DeadlineAcceptor<A> {
    inner: A,
    stall: Duration,
}

impl<A> DeadlineAcceptor<A> {
    pub fn new(inner: A, stall: Duration) -> Self {
        Self { inner, stall }
    }
}

impl<A: Acceptor> Acceptor for DeadlineAcceptor<A> {
    type Io = WriteDeadline<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((
            WriteDeadline {
                inner: io,
                stall: self.stall,
                timer: None,
            },
            local,
            remote,
            scheme,
        ))
    }
}

pub struct WriteDeadline<T> {
    inner: T,
    stall: Duration,
    /// Armed while writes are pending; reset by any progress.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    /// Called when a write or flush is pending: arms the timer (its wake-up
    /// re-polls the connection) and fails once it has run out.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<R>> {
        let stall = self.stall;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "write made no progress within the deadline",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<R>(
        &mut self,
        r: Poll<std::io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<R>> {
        match r {
            Poll::Pending => self.pending(cx),
            ready => {
                self.timer = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progressed(r, cx)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.progressed(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progressed(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progressed(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
