//! The established TLS stream, and the transport under it that coalesces small writes.
//!
//! OpenSSL flushes its output after every message it considers complete: after each of the
//! session tickets it sends when a TLS 1.3 handshake ends, and an application write followed by
//! a `close_notify` is two writes. On a plain socket each of those is its own `send`, and on a
//! busy terminator every `send` is a trip through the kernel's TCP stack and a wake-up of the
//! peer. [`Transport`] holds OpenSSL's output instead and sends it as one write:
//!
//! - before it would wait for the peer (a read that finds nothing), because the peer may be
//!   waiting for those bytes: a handshake flight always goes out before the next one is awaited;
//! - when the owner of the [`TlsStream`] flushes or shuts it down (OpenSSL's own flushes,
//!   from inside its state machine, are held);
//! - when the held bytes would pass [`HOLD`];
//! - when the stream is dropped (as far as the socket takes them without waiting): an alert
//!   OpenSSL wrote before a handshake failed still reaches the peer.
//!
//! A write of [`DIRECT`] bytes or more with nothing held (bulk data: a record per write) goes
//! straight to the socket, without a copy.

use openssl::ssl::{Ssl, SslRef};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// At most this many bytes are held: a little more than one full-size TLS record.
pub const HOLD: usize = 16 * 1024 + 512;

/// A write this large with nothing held is not held.
pub const DIRECT: usize = 4096;

/// A TCP stream whose writes are held until a read would wait, a flush, or [`HOLD`] bytes.
#[derive(Debug)]
pub struct Transport {
    tcp: TcpStream,
    out: Vec<u8>,
    /// How much of `out` has been sent.
    sent: usize,
}

impl Transport {
    fn new(tcp: TcpStream) -> Self {
        Transport {
            tcp,
            out: Vec::new(),
            sent: 0,
        }
    }

    /// Bytes held, not yet sent.
    pub fn held(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Sends everything held.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        // Small writes reuse the buffer; one grown by a burst is given back, so a connection
        // that goes idle after bulk data holds no more than one that never had any.
        if self.out.capacity() > DIRECT {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl Drop for Transport {
    /// An alert OpenSSL wrote just before failing is held like anything else: it goes out now,
    /// as far as the socket takes it without waiting.
    fn drop(&mut self) {
        while self.sent < self.out.len() {
            match self.tcp.try_write(&self.out[self.sent..]) {
                Ok(n) if n > 0 => self.sent += n,
                _ => break,
            }
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let read = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if read.is_pending() && this.held() > 0 {
            // About to wait for the peer: it may be waiting for what is held. If the socket
            // is full, this task is woken when it is writable as well as when it is readable.
            if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
        }
        read
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held() > 0 && this.held() + buf.len() > HOLD {
            ready!(this.poll_send(cx))?;
        }
        if this.held() == 0 && buf.len() >= DIRECT {
            return Pin::new(&mut this.tcp).poll_write(cx, buf);
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    /// OpenSSL's own flushes: held (see the module documentation).
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

/// An established (or establishing) server-side TLS stream over TCP.
///
/// Reads and writes are TLS application data. Writes are held by the [`Transport`] and sent
/// together: call `flush` (or `shutdown`) when the peer should have what was written, as with
/// any buffered writer. A read that has to wait for the peer sends what is held first.
#[derive(Debug)]
pub struct TlsStream {
    inner: tokio_openssl::SslStream<Transport>,
}

impl TlsStream {
    pub(crate) fn new(ssl: Ssl, tcp: TcpStream) -> Result<Self, openssl::error::ErrorStack> {
        tokio_openssl::SslStream::new(ssl, Transport::new(tcp)).map(|inner| TlsStream { inner })
    }

    pub(crate) fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), openssl::ssl::Error>> {
        Pin::new(&mut self.inner).poll_accept(cx)
    }

    /// The connection's SSL.
    pub fn ssl(&self) -> &SslRef {
        self.inner.ssl()
    }

    /// The TCP stream under the TLS.
    pub fn tcp(&self) -> &TcpStream {
        &self.inner.get_ref().tcp
    }

    /// The transport, with the bytes it holds.
    pub fn transport(&self) -> &Transport {
        self.inner.get_ref()
    }
}

impl Drop for TlsStream {
    /// A connection that completed its handshake ends without a `close_notify` of ours more
    /// often than not (the client closed first, a timeout, an origin that failed). OpenSSL
    /// would then drop its session from the session cache as if it had failed; sessions that
    /// did fail were removed when the alert was sent or received. Mark the shutdown done so
    /// the session stays resumable (what a quiet shutdown does).
    fn drop(&mut self) {
        let ssl = self.inner.ssl();
        if edgetls_tls::library::handshake_finished(ssl) {
            // SAFETY: the SSL is live and owned by this stream, which nothing else uses while
            // it is dropped; SSL_set_shutdown only sets flag bits.
            unsafe {
                openssl_sys::SSL_set_shutdown(
                    foreign_types::ForeignTypeRef::as_ptr(ssl),
                    openssl_sys::SSL_SENT_SHUTDOWN | openssl_sys::SSL_RECEIVED_SHUTDOWN,
                );
            }
        }
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// Sends what is held. (OpenSSL buffers nothing of its own once the handshake is done.)
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.get_mut().poll_send(cx)
    }

    /// Sends `close_notify` and what is held, then shuts down the TCP write side.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
