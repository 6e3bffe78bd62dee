//! The wait for a request's headers, split into the idle wait and the header read.
//!
//! hyper arms its header-read timer as soon as a connection is ready for a request: on a
//! kept-alive connection that is right after the previous response, so its one timeout bounds
//! the idle wait and the header read together. We want a long idle wait (for proxies that pool
//! connections) but a short header read (against clients that send headers a byte at a time), so
//! hyper is given this clock: until the next request's first byte arrives the deadline is the
//! idle timeout, from then on the header timeout. The first request of a connection gets the
//! header timeout from the start, since a client connects in order to send one.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// hyper's timer for one connection.
pub struct HeaderClock {
    bytes_read: Arc<AtomicU64>,
    has_armed: AtomicBool,
    header_read_timeout: Duration,
    idle_timeout: Duration,
}

impl HeaderClock {
    /// A clock for the connection whose reads `stream` counts.
    pub fn new<T>(
        stream: &CountingStream<T>,
        header_read_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            bytes_read: Arc::clone(&stream.bytes_read),
            has_armed: AtomicBool::new(false),
            header_read_timeout,
            idle_timeout,
        }
    }
}

impl hyper::rt::Timer for HeaderClock {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    /// hyper only sleeps for the header-read timeout, so the deadline it asks for is replaced.
    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let is_first_request = !self.has_armed.swap(true, Ordering::Relaxed);
        let (waiting_for_first_byte, timeout) = if is_first_request {
            (None, self.header_read_timeout)
        } else {
            (
                Some(self.bytes_read.load(Ordering::Relaxed)),
                self.idle_timeout,
            )
        };
        Box::pin(HeaderDeadline {
            sleep: Box::pin(tokio::time::sleep(timeout)),
            bytes_read: Arc::clone(&self.bytes_read),
            waiting_for_first_byte,
            header_read_timeout: self.header_read_timeout,
        })
    }
}

/// Ends at the idle deadline, or once bytes arrived, at the header deadline counted from them.
struct HeaderDeadline {
    sleep: Pin<Box<tokio::time::Sleep>>,
    bytes_read: Arc<AtomicU64>,
    /// The byte count when the wait began, while no byte of the request has arrived.
    waiting_for_first_byte: Option<u64>,
    header_read_timeout: Duration,
}

impl Future for HeaderDeadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // hyper polls this after every read that left the headers incomplete, so the switch
        // happens as the first byte arrives.
        if let Some(before) = self.waiting_for_first_byte
            && self.bytes_read.load(Ordering::Relaxed) != before
        {
            self.waiting_for_first_byte = None;
            let deadline = tokio::time::Instant::now() + self.header_read_timeout;
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeaderDeadline {}

/// A connection's stream, counting the bytes read from it for its [`HeaderClock`].
pub struct CountingStream<T> {
    inner: T,
    bytes_read: Arc<AtomicU64>,
}

impl<T> CountingStream<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            bytes_read: Arc::default(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CountingStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.bytes_read.fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountingStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
