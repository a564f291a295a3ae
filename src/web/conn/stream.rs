//! A connection's stream under the limits: it holds the connection's slot
//! (given back when dropped), follows each request head through the bytes
//! read, and fails the read when a head is not complete within the deadline
//! or when the limiter closed the connection to make room. Only HTTP/1.1 is
//! served: poem's server would take HTTP/2 by its connection preface even
//! without ALPN, and an HTTP/2 connection escapes the per-request head
//! deadline followed here, so a connection that opens with the preface is
//! closed before its first frame is read.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Slot;

/// Where a connection is in its current request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading a request head; `nl` is true right after a line feed (a
    /// second one, bare or after CR, ends the head).
    Head { nl: bool },
    /// The head is in: body and response, no head deadline.
    Body,
    /// The response has started; the next byte read begins a new head.
    Idle,
}

/// The HTTP/2 connection preface's request line (RFC 9113, 3.4); a
/// connection whose first bytes are these is refused. It ends before the
/// preface's blank line, so the head deadline covers it until then.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// A connection's stream with its slot and the head deadline.
pub struct Guarded<T> {
    io: T,
    slot: Slot,
    phase: Phase,
    /// Bytes of `H2_PREFACE` the connection's first bytes matched so far;
    /// `None` once they differ (or a whole preface was refused).
    preface: Option<usize>,
    h2: bool,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<T> Guarded<T> {
    pub fn new(io: T, slot: Slot) -> Self {
        let deadline = Box::pin(tokio::time::sleep(slot.limiter.head_timeout));
        *slot
            .shared
            .head_since
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Self {
            io,
            slot,
            phase: Phase::Head { nl: false },
            preface: Some(0),
            h2: false,
            deadline,
        }
    }

    fn set_head_since(&self, v: Option<Instant>) {
        *self
            .slot
            .shared
            .head_since
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = v;
    }

    /// Follows the connection's first bytes against the HTTP/2 preface.
    fn sniff(&mut self, bytes: &[u8]) {
        let Some(mut k) = self.preface else {
            return;
        };
        for b in bytes {
            if H2_PREFACE.get(k) != Some(b) {
                self.preface = None;
                return;
            }
            k += 1;
            if k == H2_PREFACE.len() {
                self.preface = None;
                self.h2 = true;
                return;
            }
        }
        self.preface = Some(k);
    }

    /// Follows the bytes just read through the head.
    fn saw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.sniff(bytes);
        if self.phase == Phase::Idle {
            self.phase = Phase::Head { nl: false };
            let at = tokio::time::Instant::now() + self.slot.limiter.head_timeout;
            self.deadline.as_mut().reset(at);
            self.set_head_since(Some(Instant::now()));
        }
        let Phase::Head { mut nl } = self.phase else {
            return;
        };
        for b in bytes {
            match b {
                b'\n' if nl => {
                    self.phase = Phase::Body;
                    self.set_head_since(None);
                    return;
                }
                b'\n' => nl = true,
                b'\r' => {}
                _ => nl = false,
            }
        }
        self.phase = Phase::Head { nl };
    }

    /// A response (not an interim 1xx) starting ends the request.
    fn wrote(&mut self, first: &[u8]) {
        if first.starts_with(b"HTTP/") && first.get(9).is_some_and(|c| *c != b'1') {
            self.phase = Phase::Idle;
            self.set_head_since(None);
        }
    }

    fn killed(&self) -> bool {
        self.slot.shared.kill.load(Ordering::Relaxed)
    }
}

fn closed(kind: std::io::ErrorKind, why: &str) -> std::io::Error {
    std::io::Error::new(kind, why.to_owned())
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.killed() {
            return Poll::Ready(Err(closed(
                std::io::ErrorKind::ConnectionAborted,
                "closed to make room",
            )));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.saw(&buf.filled()[before..]);
                if this.h2 {
                    return Poll::Ready(Err(closed(
                        std::io::ErrorKind::ConnectionRefused,
                        "HTTP/2 is not served",
                    )));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if matches!(this.phase, Phase::Head { .. }) {
                    *this
                        .slot
                        .shared
                        .waker
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        this.slot
                            .limiter
                            .head_timeouts
                            .fetch_add(1, Ordering::Relaxed);
                        return Poll::Ready(Err(closed(
                            std::io::ErrorKind::TimedOut,
                            "request head not complete in time",
                        )));
                    }
                    if this.killed() {
                        return Poll::Ready(Err(closed(
                            std::io::ErrorKind::ConnectionAborted,
                            "closed to make room",
                        )));
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.wrote(buf);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
                this.wrote(first);
            }
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
