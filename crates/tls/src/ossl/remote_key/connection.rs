//! What a remote operation knows of the connection it signs for: the server name the client
//! asked for and both addresses, sent to the key server as the keyless SNI, client IP and
//! server IP items (gokeyless-based key servers select and authorise keys by them).
//!
//! A handshake driver marks the connection it is driving on its thread while OpenSSL runs
//! ([`during`]); the sign step — on that thread, inside that call, on the async job's stack or
//! not — reads it. Outside a driver (a blocking `SSL_accept` of your own) nothing is marked and
//! the items are not sent.

use crate::remote_key::ConnectionInfo;
#[cfg(not(awslc))]
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::ssl::SslRef;
#[cfg(not(awslc))]
use openssl::ssl::{NameType, Ssl};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::net::SocketAddr;

/// The marked connection: a reference of its own to the SSL, so the mark can never outlive it.
struct Current {
    /// AWS-LC does not count references to connections: its sign step has the connection.
    #[cfg(not(awslc))]
    ssl: Ssl,
    client: Option<SocketAddr>,
    server: Option<SocketAddr>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// The mark [`during`] sets; dropping it puts back what was marked before. It stays on its
/// thread.
#[must_use = "the connection is marked only while this lives"]
pub struct Marked {
    previous: Option<Current>,
    _same_thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for Marked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Marked").finish_non_exhaustive()
    }
}

impl Drop for Marked {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let ours = CURRENT.with(|c| c.replace(previous));
        #[cfg(not(awslc))]
        drop(ours); // outside the borrow: releasing the reference may free nothing else of ours
        #[cfg(awslc)]
        let _ = ours;
    }
}

/// Marks `ssl` as the connection this thread is driving until the returned guard is dropped:
/// remote operations started meanwhile carry its server name, the client's address and the
/// address it connected to (`client`, `server`), and are started by the driver's
/// [`run_queued`](crate::remote_key::run_queued) instead of a thread of their own.
pub fn during(ssl: &SslRef, client: Option<SocketAddr>, server: Option<SocketAddr>) -> Marked {
    #[cfg(not(awslc))]
    // SAFETY: SSL_up_ref on a live SSL adds a reference; the Ssl made here owns exactly that
    // reference and releases it when dropped.
    let ssl = unsafe {
        super::ffi::SSL_up_ref(ssl.as_ptr());
        Ssl::from_ptr(ssl.as_ptr())
    };
    #[cfg(awslc)]
    let _ = ssl;
    let previous = CURRENT.with(|c| {
        c.replace(Some(Current {
            #[cfg(not(awslc))]
            ssl,
            client,
            server,
        }))
    });
    Marked {
        previous,
        _same_thread: PhantomData,
    }
}

/// Whether a driver is running a handshake step on this thread now.
pub(crate) fn driven() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// The connection being driven on this thread now, if any.
pub(crate) fn current() -> ConnectionInfo {
    CURRENT.with(|c| {
        let c = c.borrow();
        let Some(c) = c.as_ref() else {
            return ConnectionInfo::default();
        };
        ConnectionInfo {
            #[cfg(not(awslc))]
            sni: c.ssl.servername(NameType::HOST_NAME).map(str::to_owned),
            #[cfg(awslc)]
            sni: None,
            client_ip: c.client.map(|a| a.ip()),
            server_ip: c.server.map(|a| a.ip()),
        }
    })
}
