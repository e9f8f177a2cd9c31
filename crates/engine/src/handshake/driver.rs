//! Driving handshakes, with or without async mode, on a current-thread runtime.
//!
//! A handshake whose remote operation is pending returns `SSL_ERROR_WANT_ASYNC`: the job that
//! holds its state is paused, MUST be resumed on the same OS thread, and its SSL must not be
//! freed while it is paused. [`Handshake`] is polled by the caller's own task in every mode
//! (no task or wake-up of its own) and is `!Send`, so it cannot be moved to another thread.
//!
//! A ClientHello hook that needs slow work first (a certificate entry not yet built) leaves it
//! with `edgetls_tls::retry` and the step fails with a pause (`retry::is_retry`): the work runs here,
//! on the worker's own stack and never on an ASYNC job's, its output is handed back, and the
//! step is repeated (the hook runs again and takes what it needed).
//!
//! Dropping a [`Handshake`] cancels it, which is how a caller's timeout works: the TCP
//! connection and the SSL are released at once, unless a job is paused at that moment. Then
//! the SSL is handed to a local task that resumes the job when its remote answer (or the
//! remote key's own deadline) arrives, and frees everything as soon as the job has ended.
//! That task waits at most [`PAUSED_LIMIT`]: past it the job is woken and ends with a timeout
//! even if the remote key never answers. A client that stalls at any step therefore costs its
//! connection for no longer than the caller's timeout, and in the worst case (a remote key
//! that breaks its promise to answer) for [`PAUSED_LIMIT`].

use crate::error::EngineError;
use crate::handshake::failure::{Failure, classify};
use crate::stream::TlsStream;
use edgetls_tls::remote_key;
use openssl::ssl::Ssl;
use std::future::Future;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;

/// How long a job paused for a cancelled handshake may wait for its remote answer before it
/// is woken to end with a timeout (the same bound blocking mode has).
pub const PAUSED_LIMIT: std::time::Duration = remote_key::REMOTE_LIMIT;

/// A server handshake in progress; resolves to the established TLS stream. Dropping it cancels
/// the handshake (see the module documentation).
pub struct Handshake {
    /// Set while a job is paused: its wait descriptor, registered with the runtime. Declared
    /// (so dropped) before the stream whose wait context owns the descriptor.
    job: Option<AsyncFd<Borrowed>>,
    stream: Option<TlsStream>,
    /// Why the handshake could not even start (reported on first poll).
    failed: Option<EngineError>,
    /// The client's address and the one it connected to (for the key server's items).
    peers: Peers,
    /// Work a ClientHello hook left that waits (`Pending::later`): awaited here, on the
    /// connection's task, while the thread serves others.
    deferred: Option<Deferred>,
    _same_thread: PhantomData<Rc<()>>,
}

type Deferred = std::pin::Pin<Box<dyn Future<Output = edgetls_tls::retry::Output> + Send>>;

/// A connection's client and server addresses.
type Peers = (Option<std::net::SocketAddr>, Option<std::net::SocketAddr>);

/// One step of the handshake, with the connection marked for its remote operations. Addresses
/// the caller did not give ([`Handshake::with_peers`]) are asked of the socket at the first step
/// (two system calls a proxy that knows them saves per connection).
fn step(
    stream: &mut TlsStream,
    peers: &mut Peers,
    cx: &mut Context<'_>,
) -> Poll<Result<(), openssl::ssl::Error>> {
    if peers.0.is_none() {
        peers.0 = stream.tcp().peer_addr().ok();
    }
    if peers.1.is_none() {
        peers.1 = stream.tcp().local_addr().ok();
    }
    let marked = remote_key::during(stream.ssl(), peers.0, peers.1);
    let r = stream.poll_accept(cx);
    drop(marked);
    // A job that paused for a remote key queued its request: start it here, on the worker's
    // own stack, before waiting for the answer.
    remote_key::run_queued();
    r
}

impl Handshake {
    /// The client's address and the one it connected to, as the key server is told them
    /// (keyless client IP and server IP items), when they are not the socket's own: behind a
    /// load balancer, the addresses of its PROXY header.
    pub fn with_peers(
        mut self,
        client: Option<std::net::SocketAddr>,
        server: Option<std::net::SocketAddr>,
    ) -> Self {
        self.peers = (client.or(self.peers.0), server.or(self.peers.1));
        self
    }
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("job_paused", &self.job.is_some())
            .finish_non_exhaustive()
    }
}

/// Starts the server side of a TLS handshake on `tcp`, in async mode if `ssl` (or its context)
/// has it. Must be polled on a current-thread runtime inside a [`tokio::task::LocalSet`]: a
/// handshake dropped while its job is paused is finished by a local task of this thread.
pub fn accept(mut ssl: Ssl, tcp: TcpStream) -> Handshake {
    // Hooks may pause the ClientHello: this driver runs their work. (Should the slot not be
    // allocated, they do the work inline instead.)
    let _ = edgetls_tls::retry::enable(&mut ssl);
    let (stream, failed) = match TlsStream::new(ssl, tcp) {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(internal(e.to_string()))),
    };
    Handshake {
        stream,
        failed,
        job: None,
        peers: (None, None),
        deferred: None,
        _same_thread: PhantomData,
    }
}

impl Future for Handshake {
    type Output = Result<TlsStream, EngineError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            if let Some(work) = this.deferred.as_mut() {
                // User code (a hook's work): a panic ends this handshake only.
                let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    work.as_mut().poll(cx)
                }))
                .map_err(|_| internal("panic in the ClientHello's deferred work (caught)"))?;
                let output = ready!(polled);
                this.deferred = None;
                if let Some(stream) = this.stream.as_ref() {
                    edgetls_tls::retry::complete(stream.ssl(), output);
                }
            }
            if let Some(fd) = &this.job {
                let mut guard = ready!(fd.poll_read_ready(cx))
                    .map_err(|e| EngineError::Async(format!("waiting for the job: {e}")))?;
                guard.clear_ready();
                this.job = None;
            }
            let Some(stream) = this.stream.as_mut() else {
                return Poll::Ready(Err(internal("polled after the end")));
            };
            match ready!(step(stream, &mut this.peers, cx)) {
                Ok(()) => {
                    let stream = this.stream.take();
                    return Poll::Ready(stream.ok_or_else(|| internal("polled after the end")));
                }
                Err(e) if edgetls_tls::retry::is_retry(&e) => {
                    this.deferred = run_deferred(stream)?;
                }
                Err(e) if remote_key::is_paused(&e) => match register_job(stream) {
                    Ok(fd) => this.job = Some(fd),
                    Err(e) => {
                        // A paused job we cannot wait for: never free its SSL.
                        std::mem::forget(this.stream.take());
                        return Poll::Ready(Err(e));
                    }
                },
                Err(e) => {
                    let remote = remote_key::take_last_failure();
                    let (reason, detail) = classify(stream.ssl(), &e, remote);
                    this.stream = None;
                    return Poll::Ready(Err(EngineError::Handshake { reason, detail }));
                }
            }
        }
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        let (Some(stream), Some(job)) = (self.stream.take(), self.job.take()) else {
            return; // no job paused: the SSL and the socket are freed now
        };
        // The client is let go now; the descriptor waits for the job.
        // SAFETY: shutdown on the stream's open socket; it stays open (the stream owns it).
        unsafe { libc::shutdown(stream.tcp().as_raw_fd(), libc::SHUT_RDWR) };
        let finish = Finish {
            peers: self.peers,
            job: Some(job),
            stream: Some(stream),
            deadline: Box::pin(tokio::time::sleep(PAUSED_LIMIT)),
            woken: false,
        };
        // Outside a LocalSet spawn_local panics; the future is dropped in the unwind and
        // `Finish` leaks the SSL rather than free it under a paused job.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tokio::task::spawn_local(finish);
        }));
    }
}

/// Finishes the paused job of a cancelled handshake, then frees the SSL and the socket.
struct Finish {
    peers: Peers,
    /// The paused job's wait descriptor (dropped before the stream, as in [`Handshake`]).
    job: Option<AsyncFd<Borrowed>>,
    stream: Option<TlsStream>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The job was woken past the deadline (it then ends with a timeout).
    woken: bool,
}

impl Future for Finish {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            let Some(fd) = &this.job else {
                this.stream = None; // no job paused any more: free everything
                return Poll::Ready(());
            };
            match fd.poll_read_ready(cx) {
                Poll::Ready(Ok(mut guard)) => guard.clear_ready(),
                Poll::Ready(Err(_)) => {
                    // The runtime cannot wait for it (it is shutting down): keep the SSL.
                    std::mem::forget(this.stream.take());
                    return Poll::Ready(());
                }
                Poll::Pending => {
                    if this.woken || this.deadline.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // Past the limit: wake the job; it sees no answer and ends with a timeout.
                    remote_key::wake(fd.get_ref().0);
                    this.woken = true;
                    continue;
                }
            }
            this.job = None;
            let Some(stream) = this.stream.as_mut() else {
                return Poll::Ready(());
            };
            // The job resumes and runs to its next stop: done, failed, or waiting for the
            // client (which nobody waits for any more).
            if let Poll::Ready(Err(e)) = step(stream, &mut this.peers, cx) {
                if remote_key::is_paused(&e) {
                    match register_job(stream) {
                        Ok(fd) => this.job = Some(fd),
                        Err(_) => {
                            std::mem::forget(this.stream.take());
                            return Poll::Ready(());
                        }
                    }
                }
            }
            let _ = remote_key::take_last_failure();
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        if self.job.is_some() {
            // Dropped with its job still paused (the runtime is going away): leak the SSL
            // rather than free it under a paused job.
            std::mem::forget(self.stream.take());
        }
    }
}

/// Runs the work a ClientHello hook left (on this stack, outside any ASYNC job) and hands its
/// output back to the hook; work that waits is returned, for the handshake to await.
fn run_deferred(stream: &mut TlsStream) -> Result<Option<Deferred>, EngineError> {
    let Some(work) = edgetls_tls::retry::take(stream.ssl()) else {
        return Err(internal(
            "the ClientHello paused and left no work to resume it",
        ));
    };
    if work.waits() {
        return Ok(Some(work.into_future()));
    }
    // The work may be user code (a certificate source): a panic ends this handshake only.
    let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.run()))
        .map_err(|_| internal("panic in the ClientHello's deferred work (caught)"))?;
    edgetls_tls::retry::complete(stream.ssl(), output);
    Ok(None)
}

fn internal(detail: impl Into<String>) -> EngineError {
    EngineError::Handshake {
        reason: Failure::Internal,
        detail: detail.into(),
    }
}

/// A descriptor owned by the SSL's wait context, borrowed while its job is paused.
struct Borrowed(RawFd);

impl AsRawFd for Borrowed {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Registers the paused job's wait descriptor with the runtime.
fn register_job(stream: &TlsStream) -> Result<AsyncFd<Borrowed>, EngineError> {
    let fd = remote_key::wait_fd(stream.ssl())?;
    // SAFETY: the descriptor belongs to the SSL's wait context and stays open, referring to the
    // same eventfd, until the SSL is freed; every AsyncFd made here is dropped (deregistered)
    // before the SSL it came from: the owner keeps both and clears `job` before the stream.
    unsafe { AsyncFd::register_with_interest(Borrowed(fd), tokio::io::Interest::READABLE) }
        .map_err(|e| EngineError::Async(format!("registering the wait descriptor: {e}")))
}
