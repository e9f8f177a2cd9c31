//! What a remote operation knows of the connection it signs for: the server name the client
//! asked for and both addresses, sent to the key server as the keyless SNI, client IP and
//! server IP items (gokeyless-based key servers select and authorise keys by them).
//!
//! The handshake driver ([`crate::accept`]) marks the connection it is driving on its thread
//! while OpenSSL runs; the sign step — on that thread, inside that call, on the async job's
//! stack or not — reads it. Outside the driver (a blocking `SSL_accept` of your own) nothing
//! is marked and the items are not sent.

use openssl_sys::SSL;
use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};

/// The connection a sign request is made for, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The server name the client asked for (SNI).
    pub sni: Option<String>,
    /// The client's address.
    pub client_ip: Option<IpAddr>,
    /// The address the client connected to.
    pub server_ip: Option<IpAddr>,
}

#[derive(Clone, Copy)]
struct Current {
    ssl: *const SSL,
    client: Option<SocketAddr>,
    server: Option<SocketAddr>,
}

thread_local! {
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
}

/// Runs `f` (a step of OpenSSL's handshake on `ssl`) with the connection marked on this thread.
pub(crate) fn during<R>(
    ssl: *const SSL,
    client: Option<SocketAddr>,
    server: Option<SocketAddr>,
    f: impl FnOnce() -> R,
) -> R {
    let previous = CURRENT.with(|c| {
        c.replace(Some(Current {
            ssl,
            client,
            server,
        }))
    });
    // Restored even if `f` unwinds.
    struct Restore(Option<Current>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(previous);
    f()
}

/// Whether edgetls's driver is running a handshake step on this thread now.
pub(crate) fn driven() -> bool {
    CURRENT.with(Cell::get).is_some()
}

/// The connection being driven on this thread now, if any.
pub(crate) fn current() -> ConnectionInfo {
    let Some(c) = CURRENT.with(Cell::get) else {
        return ConnectionInfo::default();
    };
    // SAFETY: the SSL is live: `during` marks it only for the duration of a call that holds
    // it; SSL_get_servername returns NULL or a string the SSL owns, copied at once.
    let sni = unsafe {
        let name = openssl_sys::SSL_get_servername(c.ssl, openssl_sys::TLSEXT_NAMETYPE_host_name);
        (!name.is_null()).then(|| {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        })
    };
    ConnectionInfo {
        sni,
        client_ip: c.client.map(|a| a.ip()),
        server_ip: c.server.map(|a| a.ip()),
    }
}
