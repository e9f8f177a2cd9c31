//! Waiting for a remote answer inside OpenSSL's sign step: blocking the thread (no async job),
//! or pausing the async job until the answer's file descriptor turns readable.
//!
//! In async mode this code runs on the job's stack: its frames hold a few pointers, everything
//! else lives on the heap, and no user code runs there. The signer's `start` is queued on this
//! thread and the job pauses; the handshake driver, back on the worker's own stack as soon as
//! the handshake call returns, runs it ([`run_queued`]). Only a job driven by code that never
//! marks its connection ([`during`](super::during)) hands `start` to the `edgetls-remote`
//! thread instead, made on first such use.

#[cfg(not(awslc))]
use super::ffi;
use crate::TlsError;
use crate::remote_key::{Done, SignRequest, Signer};
#[cfg(not(awslc))]
use libc::{c_int, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
#[cfg(not(awslc))]
use std::time::Instant;

/// How long a remote operation waits at most, should a remote key break its promise to answer:
/// blocking mode stops waiting; a paused job whose handshake was cancelled is woken by the
/// driver and ends.
pub const REMOTE_LIMIT: Duration = Duration::from_secs(60);

/// Counters of what the sign hook did (process-wide).
#[derive(Debug, Default)]
pub struct Stats {
    /// Operations that waited by blocking their thread.
    pub blocking: AtomicU64,
    /// Operations that paused their async job.
    pub paused: AtomicU64,
    /// Operations that failed (remote error, timeout, unsupported scheme, caught panic).
    pub failed: AtomicU64,
    /// Jobs waiting for an answer right now.
    pub waiting: AtomicU64,
    /// Connections holding a wake-up descriptor right now (one per SSL that ran a remote operation
    /// in async mode, released when the SSL is freed): a leak check.
    pub live_wakers: AtomicU64,
}

static STATS: Stats = Stats {
    blocking: AtomicU64::new(0),
    paused: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    waiting: AtomicU64::new(0),
    live_wakers: AtomicU64::new(0),
};

/// The process-wide counters.
pub fn stats() -> &'static Stats {
    &STATS
}

thread_local! {
    static LAST_ERROR: std::cell::RefCell<Option<TlsError>> =
        const { std::cell::RefCell::new(None) };
}

pub(crate) fn record_failure(e: TlsError) {
    STATS.failed.fetch_add(1, Relaxed);
    LAST_ERROR.with(|l| *l.borrow_mut() = Some(e));
}

/// The last remote-key failure seen on this thread, taken: why the handshake step that just
/// failed on this thread could not sign (a signer's own error is [`TlsError::Signer`]).
pub fn take_last_failure() -> Option<TlsError> {
    LAST_ERROR.with(|l| l.borrow_mut().take())
}

#[cfg(not(awslc))]
/// Signs `request` with `remote` (see [`perform`]) into OpenSSL's buffer `sig`, which has room
/// for `room` bytes; the signature's length.
pub(crate) fn sign_into(
    remote: &Arc<dyn Signer>,
    request: SignRequest,
    sig: *mut u8,
    room: usize,
) -> Result<usize, TlsError> {
    let answer = perform(remote, request)?;
    if answer.len() > room || answer.is_empty() {
        return Err(TlsError::BadAnswer {
            got: answer.len(),
            room,
        });
    }
    // SAFETY: `sig` has room for `room` bytes (the caller's, OpenSSL's, contract) and the
    // answer fits (checked).
    unsafe { std::ptr::copy_nonoverlapping(answer.as_ptr(), sig, answer.len()) };
    Ok(answer.len())
}

#[cfg(not(awslc))]
/// OpenSSL's answer for an operation that ran under `catch_unwind`: 1, or 0 with the error (or
/// the panic) recorded for [`take_last_failure`].
pub(crate) fn outcome(r: std::thread::Result<Result<(), TlsError>>) -> c_int {
    match r {
        Ok(Ok(())) => 1,
        Ok(Err(e)) => {
            record_failure(e);
            0
        }
        Err(_) => {
            record_failure(TlsError::Panic);
            0
        }
    }
}

/// The answer slot shared between the waiting side and the completion.
pub(crate) type Slot = Mutex<Option<Result<Vec<u8>, TlsError>>>;

#[cfg(not(awslc))]
/// Runs `request` on `remote` and waits for the answer in the way the current context allows.
pub(crate) fn perform(remote: &Arc<dyn Signer>, request: SignRequest) -> Result<Vec<u8>, TlsError> {
    // SAFETY: no preconditions; returns NULL outside an async job.
    let job = unsafe { crate::ossl::ffi::ASYNC_get_current_job() }.cast::<ffi::ASYNC_JOB>();
    if job.is_null() {
        blocking(remote, request)
    } else {
        paused(job, remote, request)
    }
}

pub(crate) fn blocking(
    remote: &Arc<dyn Signer>,
    request: SignRequest,
) -> Result<Vec<u8>, TlsError> {
    STATS.blocking.fetch_add(1, Relaxed);
    let shared = Arc::new((Mutex::new(None), Condvar::new()));
    let theirs = Arc::clone(&shared);
    remote.start(
        request,
        Box::new(move |r| {
            let (slot, ready) = &*theirs;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            ready.notify_one();
        }),
    );
    let (slot, ready) = &*shared;
    let guard = slot.lock().unwrap_or_else(|p| p.into_inner());
    let (mut guard, _) = ready
        .wait_timeout_while(guard, REMOTE_LIMIT, |r| r.is_none())
        .unwrap_or_else(|p| p.into_inner());
    guard.take().unwrap_or(Err(TlsError::Timeout(REMOTE_LIMIT)))
}

/// Makes a paused handshake's wait descriptor ([`wait_fd`](super::wait_fd)) readable, so the
/// driver resumes it: past its own deadline, the job then ends with a timeout.
pub fn wake(fd: std::os::fd::RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a local to a descriptor the caller holds open.
    unsafe { libc::write(fd, (&raw const one).cast(), 8) };
}

/// The per-connection wake-up descriptor (an eventfd): the job's wait fd; completions add 1 to
/// it. Owned by the connection's ASYNC_WAIT_CTX (freed with the SSL), shared with pending
/// completions through the Arc.
pub(crate) struct Waker {
    pub(crate) fd: OwnedFd,
}

impl Waker {
    pub(crate) fn new() -> std::io::Result<Waker> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Waker { fd })
    }

    /// Makes the descriptor readable (from any thread).
    pub(crate) fn wake(&self) {
        wake(self.fd.as_raw_fd());
    }

    /// Makes it unreadable again (non-blocking).
    pub(crate) fn drain(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads at most 8 bytes into a local from a live, non-blocking eventfd.
        unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut n).cast(), 8) };
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        STATS.live_wakers.fetch_sub(1, Relaxed);
    }
}

/// Counts a job as waiting until dropped.
pub(crate) struct Waiting;

impl Waiting {
    pub(crate) fn start() -> Waiting {
        STATS.waiting.fetch_add(1, Relaxed);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        STATS.waiting.fetch_sub(1, Relaxed);
    }
}

#[cfg(not(awslc))]
/// The key our fd is registered under in the wait context (any unique address).
static WAIT_KEY: u8 = 0;

/// A remote operation to start, handed from a job's stack to the starter thread.
pub(crate) struct Start {
    pub(crate) remote: Arc<dyn Signer>,
    pub(crate) request: SignRequest,
    pub(crate) done: Done,
}

impl Start {
    /// Calls `start`; should it panic, the operation fails with that instead of never
    /// answering.
    pub(crate) fn run(self) {
        let Start {
            remote,
            request,
            done,
        } = self;
        let once = Arc::new(Mutex::new(Some(done)));
        let theirs = Arc::clone(&once);
        let forward: Done = Box::new(move |r| {
            if let Some(d) = theirs.lock().unwrap_or_else(|p| p.into_inner()).take() {
                d(r);
            }
        });
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            remote.start(request, forward)
        }));
        if started.is_err() {
            if let Some(d) = once.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    d(Err(TlsError::Panic))
                }));
            }
        }
    }
}

thread_local! {
    /// Remote operations queued by paused jobs of this thread, for the driver to start.
    pub(crate) static QUEUED: std::cell::RefCell<Vec<Start>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Starts the remote operations that jobs paused on this thread queued: a driver calls it after
/// each handshake step it ran under [`during`](super::during), on its own stack.
pub fn run_queued() {
    loop {
        let Some(start) = QUEUED.with(|q| q.borrow_mut().pop()) else {
            return;
        };
        start.run();
    }
}

#[cfg(not(awslc))]
/// The thread that calls `Signer::start` for jobs paused outside a driver: user code
/// never runs on a job's small stack. A `start` must not block (its contract), so one thread
/// keeps up.
pub(crate) fn starter() -> Result<&'static std::sync::mpsc::Sender<Start>, TlsError> {
    static S: std::sync::OnceLock<Result<std::sync::mpsc::Sender<Start>, String>> =
        std::sync::OnceLock::new();
    S.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Start>();
        std::thread::Builder::new()
            .name("edgetls-remote".into())
            .spawn(move || {
                for start in rx {
                    start.run();
                }
            })
            .map(|_| tx)
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| TlsError::Async(format!("starting the remote-key thread: {e}")))
}

#[cfg(not(awslc))]
fn paused(
    job: *mut ffi::ASYNC_JOB,
    remote: &Arc<dyn Signer>,
    request: SignRequest,
) -> Result<Vec<u8>, TlsError> {
    STATS.paused.fetch_add(1, Relaxed);
    let _waiting = Waiting::start();
    let waker = waker_for(job)?;
    let slot: Arc<Slot> = Arc::new(Mutex::new(None));
    let (theirs, their_waker) = (Arc::clone(&slot), Arc::clone(&waker));
    let done: Done = Box::new(move |r| {
        // Publish the answer first, then signal: whoever wakes finds it.
        *theirs.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        their_waker.wake();
    });
    let start = Start {
        remote: Arc::clone(remote),
        request,
        done,
    };
    if super::connection::driven() {
        // Started by the driver on this thread right after the job pauses.
        QUEUED.with(|q| q.borrow_mut().push(start));
    } else {
        starter()?
            .send(start)
            .map_err(|_| TlsError::Async("the remote-key thread is gone".into()))?;
    }
    let started = Instant::now();
    loop {
        if let Some(r) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
            waker.drain();
            return r;
        }
        if started.elapsed() >= REMOTE_LIMIT {
            // Woken with no answer past the limit (by the driver of a cancelled handshake).
            return Err(TlsError::Timeout(REMOTE_LIMIT));
        }
        // SAFETY: we are inside an async job (checked by the caller); pausing returns here
        // when the driver resumes the job on this same thread.
        if unsafe { ffi::ASYNC_pause_job() } == 0 {
            return Err(TlsError::Async("ASYNC_pause_job failed".into()));
        }
        waker.drain();
    }
}

#[cfg(not(awslc))]
/// The connection's wake-up descriptor, made and registered on its first remote operation.
fn waker_for(job: *mut ffi::ASYNC_JOB) -> Result<Arc<Waker>, TlsError> {
    let key = (&raw const WAIT_KEY).cast::<c_void>();
    // SAFETY: job is the current job; its wait ctx lives as long as the SSL.
    let ctx = unsafe { ffi::ASYNC_get_wait_ctx(job) };
    if ctx.is_null() {
        return Err(TlsError::Async("the job has no wait context".into()));
    }
    let mut fd: c_int = -1;
    let mut custom: *mut c_void = std::ptr::null_mut();
    // SAFETY: ctx is live; the out-pointers are locals. A stored custom pointer at our key is
    // always a Box<Arc<Waker>> we stored below, alive until the wait ctx is freed.
    unsafe {
        if ffi::ASYNC_WAIT_CTX_get_fd(ctx, key, &mut fd, &mut custom) == 1 && !custom.is_null() {
            return Ok(Arc::clone(&*custom.cast::<Arc<Waker>>()));
        }
    }
    let waker = Waker::new().map_err(|e| TlsError::Async(format!("eventfd: {e}")))?;
    STATS.live_wakers.fetch_add(1, Relaxed);
    let waker = Arc::new(waker);
    let fd = waker.fd.as_raw_fd();
    let boxed = Box::into_raw(Box::new(Arc::clone(&waker)));
    // SAFETY: ctx is live; on success it owns `boxed` and calls `release_waker` once when the
    // wait ctx is freed; on failure we take it back.
    unsafe {
        if ffi::ASYNC_WAIT_CTX_set_wait_fd(ctx, key, fd, boxed.cast(), Some(release_waker)) != 1 {
            drop(Box::from_raw(boxed));
            return Err(TlsError::Async("ASYNC_WAIT_CTX_set_wait_fd failed".into()));
        }
    }
    Ok(waker)
}

#[cfg(not(awslc))]
/// Wait-ctx cleanup: drops the connection's reference to its wake-up descriptor.
unsafe extern "C" fn release_waker(
    _ctx: *mut ffi::ASYNC_WAIT_CTX,
    _key: *const c_void,
    _fd: c_int,
    custom: *mut c_void,
) {
    if !custom.is_null() {
        // SAFETY: `custom` is the Box<Arc<Waker>> stored by `waker_for`; called once.
        drop(unsafe { Box::from_raw(custom.cast::<Arc<Waker>>()) });
    }
}
