//! Private keys held elsewhere — on a key server, like a crypto card on the network: the
//! remote-key hook.
//!
//! [`private_key`] makes a private key for a certificate whose signatures are made by a
//! [`Signer`]. The TLS library uses it like any key; when the handshake signs, the hook builds
//! a [`SignRequest`] (the scheme the library chose, the digest, the connection it is for) and
//! waits for the signer's answer in the way the connection allows:
//!
//! - no async mode: the handshake's thread blocks until the answer (at most [`REMOTE_LIMIT`]);
//! - async mode ([`enable_async`]): the handshake pauses ([`is_paused`] says so for its error),
//!   the signer's `start` runs on the driver's own stack right after ([`run_queued`]), and the
//!   driver resumes the handshake when [`wait_fd`] turns readable. No thread waits, and no user
//!   code runs on the library's small job stack.
//!
//! A driver marks the connection it drives ([`during`]) so that requests carry its server name
//! and addresses, and reads the reason of a failed signature with [`take_last_failure`].
//!
//! With OpenSSL the key belongs to the `edgetls-keyless` provider (3.0 to 4.0); with the
//! `engine` feature (OpenSSL 3.x), `engine_private_key` makes the same key through the ENGINE
//! API instead.

use crate::TlsError;
use std::net::IpAddr;

pub use edgetls_keyless_proto::{HashAlgorithm, SignScheme};

#[cfg(all(feature = "engine", not(awslc)))]
pub use crate::ossl::remote_key::engine_private_key;
pub use crate::ossl::remote_key::{
    Marked, REMOTE_LIMIT, Stats, during, enable_async, enable_async_ssl, is_paused, private_key,
    restrict_ssl_to_ecdhe, restrict_to_ecdhe, run_queued, stats, take_last_failure, wait_fd, wake,
};

/// The connection a signature is made for, as far as the driver knows it: sent to key servers
/// (gokeyless-based ones select and authorise keys by them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The server name the client asked for (SNI).
    pub sni: Option<String>,
    /// The client's address.
    pub client_ip: Option<IpAddr>,
    /// The address the client connected to.
    pub server_ip: Option<IpAddr>,
}

/// One signature a remote key is asked for.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The signature scheme: algorithm, hash and padding.
    pub scheme: SignScheme,
    /// The digest to sign (already hashed by the library).
    pub digest: Vec<u8>,
    /// The connection it is for (empty outside a driver's [`during`]).
    pub connection: ConnectionInfo,
}

/// Called exactly once with the signature or the reason there is none.
pub type Done = Box<dyn FnOnce(Result<Vec<u8>, TlsError>) + Send + 'static>;

/// A private key held elsewhere.
///
/// `start` must not block: it hands the request off and returns, and `done` is called exactly
/// once, from any thread, within a bounded time (the signer's own deadline). It runs on the
/// thread driving the handshake, never on an async job's stack: in blocking mode inside the
/// sign step; in async mode from the driver's [`run_queued`] (a job driven by code that never
/// calls it has `start` called on an `edgetls-remote` thread). A panic in `start` fails the
/// signature; it never reaches the library.
pub trait Signer: Send + Sync + std::fmt::Debug + 'static {
    /// Starts the operation; `done` receives the signature or the error.
    fn start(&self, request: SignRequest, done: Done);
}
