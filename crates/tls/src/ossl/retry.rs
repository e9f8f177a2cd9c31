//! The asynchronous ClientHello: a hook that cannot decide cheaply leaves the slow part for the
//! driver and pauses the handshake (`SSL_CLIENT_HELLO_RETRY`); the driver runs that part on its
//! own stack (or a blocking pool), hands back its output, and calls the handshake again, which
//! runs the hook again: the hook takes the output ([`take_output`]) and decides.
//!
//! With OpenSSL's async mode (remote keys) the whole handshake step, ClientHello callback
//! included, runs on an ASYNC job's 32 KiB stack: returning "retry" ends that step and the slow
//! work (decoding certificates and keys, checking OCSP, user code) never runs there.
//!
//! A connection can pause only if its driver said it will run the work ([`enable`]); a hook
//! on a connection driven by code that does not know about this (a plain `SslStream::accept`)
//! must do the work inline, which [`can_defer`] tells it.

use crate::error::TlsError;
use crate::hello::Next;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslRef};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};

/// What the slow part produced, handed back to the hook on its next run ([`take_output`]).
pub type Output = Box<dyn Any + Send>;

/// The slow part of a ClientHello decision. It does not borrow the connection, so the driver
/// may run it wherever it likes: on its own stack, or on a blocking pool for CPU-heavy work —
/// or, for work that waits on something else (a CA issuing a certificate, an allow-list asked
/// over the network), await it as a future ([`Pending::later`], [`Pending::into_future`])
/// while the thread serves other connections.
pub struct Pending(Work);

enum Work {
    Now(Box<dyn FnOnce() -> Output + Send>),
    Later(Pin<Box<dyn Future<Output = Output> + Send>>),
}

impl Pending {
    /// Wraps the slow part; its result reaches the hook's next run through [`take_output`].
    pub fn new<T: Any + Send>(work: impl FnOnce() -> T + Send + 'static) -> Self {
        Pending(Work::Now(Box::new(move || Box::new(work()) as Output)))
    }

    /// Wraps a slow part that waits: a driver awaits it ([`into_future`](Self::into_future))
    /// on the connection's own task. It runs in the driver's async context (a tokio runtime
    /// for this workspace's driver).
    pub fn later<T: Any + Send>(work: impl Future<Output = T> + Send + 'static) -> Self {
        Pending(Work::Later(Box::pin(async move {
            Box::new(work.await) as Output
        })))
    }

    /// Whether the work waits (made with [`later`](Self::later)).
    pub fn waits(&self) -> bool {
        matches!(self.0, Work::Later(_))
    }

    /// Runs the slow part on this thread; hand the result to [`complete`], then resume the
    /// handshake. Work that waits is driven here until it ends (this thread does nothing else
    /// meanwhile: drivers that can wait use [`into_future`](Self::into_future)).
    pub fn run(self) -> Output {
        match self.0 {
            Work::Now(f) => f(),
            Work::Later(fut) => block_on(fut),
        }
    }

    /// The slow part as a future, whichever kind it is.
    pub fn into_future(self) -> Pin<Box<dyn Future<Output = Output> + Send>> {
        match self.0 {
            Work::Now(f) => Box::pin(async move { f() }),
            Work::Later(fut) => fut,
        }
    }
}

/// Drives `fut` to its end on this thread, parking between wake-ups.
fn block_on(mut fut: Pin<Box<dyn Future<Output = Output> + Send>>) -> Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.waits() {
            "Pending(waits)"
        } else {
            "Pending"
        })
    }
}

/// The connection's slot: present once a driver enabled retries; holds the work left by the
/// hook that paused, then its output, until each is taken.
#[derive(Default)]
struct Slot(Mutex<(Option<Pending>, Option<Output>)>);

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Pending>, Option<Output>)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn slot_index() -> Result<Index<Ssl, Slot>, TlsError> {
    static I: OnceLock<Result<Index<Ssl, Slot>, openssl::error::ErrorStack>> = OnceLock::new();
    Ok(I.get_or_init(Ssl::new_ex_index).clone()?)
}

fn slot(ssl: &SslRef) -> Option<&Slot> {
    ssl.ex_data(slot_index().ok()?)
}

/// Says that the driver of `ssl` runs the work a ClientHello hook leaves: when a handshake step
/// fails with a pause ([`is_retry`]), it calls [`take`], runs the work, gives its
/// output to [`complete`], and steps again.
pub fn enable(ssl: &mut SslRef) -> Result<(), TlsError> {
    ssl.set_ex_data(slot_index()?, Slot::default());
    Ok(())
}

/// Whether a hook on `ssl` may pause the handshake (its driver called [`enable`]).
pub fn can_defer(ssl: &SslRef) -> bool {
    slot(ssl).is_some()
}

/// Leaves `work` for the driver and returns the callback's answer that pauses the handshake.
/// Fails (giving the work back) if the driver did not [`enable`] retries on `ssl`.
pub fn defer(ssl: &SslRef, work: Pending) -> Result<Next, Pending> {
    let Some(slot) = slot(ssl) else {
        return Err(work);
    };
    slot.lock().0 = Some(work);
    Ok(Next::Retry)
}

/// Whether a handshake step's error is a ClientHello hook's pause (the driver then runs the
/// work left with [`defer`] and steps again).
pub fn is_retry(e: &openssl::ssl::Error) -> bool {
    #[cfg(not(awslc))]
    let code = openssl::ssl::ErrorCode::WANT_CLIENT_HELLO_CB;
    #[cfg(awslc)]
    let code = openssl::ssl::ErrorCode::from_raw(openssl_sys::SSL_ERROR_PENDING_CERTIFICATE);
    e.code() == code
}

/// The work the paused hook left, for the driver to run.
pub fn take(ssl: &SslRef) -> Option<Pending> {
    slot(ssl)?.lock().0.take()
}

/// Hands the work's output to the hook, which takes it on its next run.
pub fn complete(ssl: &SslRef, output: Output) {
    if let Some(slot) = slot(ssl) {
        slot.lock().1 = Some(output);
    }
}

/// The output of the work this hook left before, if the driver ran it and it is a `T`.
pub fn take_output<T: Any>(ssl: &SslRef) -> Option<T> {
    let output = slot(ssl)?.lock().1.take()?;
    output.downcast::<T>().ok().map(|b| *b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ssl::{SslContext, SslMethod};

    fn ssl() -> Ssl {
        Ssl::new(&SslContext::builder(SslMethod::tls()).unwrap().build()).unwrap()
    }

    #[test]
    fn work_is_left_only_where_the_driver_runs_it() {
        let plain = ssl();
        assert!(!can_defer(&plain));
        assert!(defer(&plain, Pending::new(|| 1u8)).is_err());

        let mut driven = ssl();
        enable(&mut driven).unwrap();
        assert!(can_defer(&driven));
        assert_eq!(
            defer(&driven, Pending::new(|| 41u32 + 1)).unwrap(),
            Next::Retry
        );
        let work = take(&driven).expect("the work is there for the driver");
        assert!(take(&driven).is_none(), "taken once");
        complete(&driven, work.run());
        assert_eq!(
            take_output::<String>(&driven),
            None,
            "another type is not handed out"
        );
        assert_eq!(
            take_output::<u32>(&driven),
            None,
            "a mismatched take drops the output"
        );

        assert!(defer(&driven, Pending::new(|| 7u32)).is_ok());
        complete(&driven, take(&driven).unwrap().run());
        assert_eq!(take_output::<u32>(&driven), Some(7));
        assert_eq!(take_output::<u32>(&driven), None);
    }

    #[test]
    fn work_that_waits_is_driven_by_run_or_awaited() {
        // Woken from another thread, as a CA's answer would be.
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        let waiting = Pending::later(Recv(std::sync::Arc::new(Mutex::new((rx, None)))));
        assert!(waiting.waits());
        let sender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            tx.send(9).unwrap();
        });
        let out = waiting.run();
        sender.join().unwrap();
        assert_eq!(*out.downcast::<u32>().unwrap(), 9);
        assert!(!Pending::new(|| 1u8).waits());
    }

    /// A future ready once a value arrives on a channel (polled: registers its waker).
    struct Recv(std::sync::Arc<Mutex<(std::sync::mpsc::Receiver<u32>, Option<std::task::Waker>)>>);

    impl Future for Recv {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<u32> {
            let mut g = self.0.lock().unwrap();
            match g.0.try_recv() {
                Ok(v) => std::task::Poll::Ready(v),
                Err(_) => {
                    // Wake again shortly: the channel has no waker of its own.
                    let w = cx.waker().clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        w.wake();
                    });
                    g.1 = None;
                    std::task::Poll::Pending
                }
            }
        }
    }
}
