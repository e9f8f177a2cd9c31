//! Driving async-mode handshakes on a current-thread runtime.
//!
//! A handshake whose remote operation is pending returns `SSL_ERROR_WANT_ASYNC`; the job that
//! holds its state is paused and MUST be resumed on the same OS thread, and its SSL must not be
//! freed while it is paused. So each async-mode handshake runs in a task spawned on the current
//! thread's `LocalSet` ([`tokio::task::spawn_local`]) that owns the SSL until the job has
//! finished, whatever happens to the caller: dropping the [`Handshake`] only detaches it. A
//! handshake without async mode cannot pause and is driven by the caller's own task. [`Handshake`]
//! is `!Send`, so it cannot be moved to (and awaited on) another thread by mistake.

use crate::error::EngineError;
use crate::ffi;
use crate::stream::TlsStream;
use crate::wait;
use openssl::ssl::{ErrorCode, Ssl};
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A server handshake in progress; resolves to the established TLS stream.
pub struct Handshake {
    inner: Inner,
    _same_thread: PhantomData<Rc<()>>,
}

type Driven = Pin<Box<dyn Future<Output = Result<TlsStream, EngineError>>>>;

enum Inner {
    /// Async mode: a local task owns the SSL until any paused job has finished.
    Task(oneshot::Receiver<Result<TlsStream, EngineError>>),
    /// No async mode: nothing can pause, so the caller's task drives the handshake itself
    /// (no task and no wake-up of its own).
    Inline(Driven),
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.inner {
            Inner::Task(_) => "task",
            Inner::Inline(_) => "inline",
        };
        f.debug_struct("Handshake").field("driven", &how).finish()
    }
}

impl Future for Handshake {
    type Output = Result<TlsStream, EngineError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            Inner::Task(rx) => Pin::new(rx).poll(cx).map(|r| {
                r.unwrap_or_else(|_| Err(EngineError::Handshake("handshake task ended".into())))
            }),
            Inner::Inline(f) => f.as_mut().poll(cx),
        }
    }
}

/// Starts the server side of a TLS handshake on `tcp`, in async mode if `ssl` (or its context)
/// has it. Must be called from inside a [`tokio::task::LocalSet`] on a current-thread runtime:
/// in async mode the handshake runs as a local task of this thread; without it, in the task
/// that awaits the [`Handshake`].
pub fn accept(ssl: Ssl, tcp: TcpStream) -> Handshake {
    let inner = if async_mode(&ssl) {
        let (tx, rx) = oneshot::channel();
        tokio::task::spawn_local(async move {
            let r = drive(ssl, tcp).await;
            let _ = tx.send(r);
        });
        Inner::Task(rx)
    } else {
        Inner::Inline(Box::pin(drive(ssl, tcp)))
    };
    Handshake {
        inner,
        _same_thread: PhantomData,
    }
}

fn async_mode(ssl: &Ssl) -> bool {
    // SAFETY: SSL_ctrl(SSL_CTRL_MODE) with no bits to add only returns the live SSL's mode.
    let mode = unsafe {
        openssl_sys::SSL_ctrl(
            foreign_types::ForeignType::as_ptr(ssl),
            openssl_sys::SSL_CTRL_MODE,
            0,
            std::ptr::null_mut(),
        )
    };
    mode as u64 & ffi::SSL_MODE_ASYNC != 0
}

async fn drive(ssl: Ssl, tcp: TcpStream) -> Result<TlsStream, EngineError> {
    let mut stream = TlsStream::new(ssl, tcp).map_err(|e| EngineError::Handshake(e.to_string()))?;
    loop {
        match poll_fn(|cx| stream.poll_accept(cx)).await {
            Ok(()) => return Ok(stream),
            Err(e) if e.code() == ErrorCode::from_raw(ffi::SSL_ERROR_WANT_ASYNC) => {
                wait_for_job(&stream).await?;
            }
            Err(e) => {
                let why = match wait::take_last_error() {
                    Some(remote) => format!("{e} ({remote})"),
                    None => e.to_string(),
                };
                return Err(EngineError::Handshake(why));
            }
        }
    }
}

/// A descriptor owned by the SSL's wait context, borrowed for one wait.
struct Borrowed(RawFd);

impl AsRawFd for Borrowed {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Waits until the paused job's wait descriptor is readable.
async fn wait_for_job(stream: &TlsStream) -> Result<(), EngineError> {
    let mut fds = [0 as RawFd; 4];
    let mut n: libc::size_t = 0;
    // SAFETY: the SSL is live; first call asks for the count, the second fills our array
    // (checked to be large enough).
    unsafe {
        let ssl = foreign_types::ForeignTypeRef::as_ptr(stream.ssl());
        if ffi::SSL_get_all_async_fds(ssl, std::ptr::null_mut(), &mut n) != 1 || n == 0 {
            return Err(EngineError::Async(
                "paused job without a wait descriptor".into(),
            ));
        }
        if n > fds.len() {
            return Err(EngineError::Async(format!("{n} wait descriptors")));
        }
        ffi::SSL_get_all_async_fds(ssl, fds.as_mut_ptr(), &mut n);
    }
    // SAFETY: the descriptor belongs to the SSL's wait context and stays open, referring to the
    // same socket, until the SSL is freed; the SSL (in `stream`) outlives this AsyncFd, which is
    // dropped (deregistered) at the end of this function.
    let fd =
        unsafe { AsyncFd::register_with_interest(Borrowed(fds[0]), tokio::io::Interest::READABLE) }
            .map_err(|e| EngineError::Async(format!("registering the wait descriptor: {e}")))?;
    let mut guard = fd
        .readable()
        .await
        .map_err(|e| EngineError::Async(e.to_string()))?;
    guard.clear_ready();
    Ok(())
}
