//! edgetls-keyserver: a keyless key server. Private keys stay on this machine; TLS terminators
//! send it signing and decryption requests in Cloudflare's keyless protocol (see
//! `edgetls-keyless-proto`) over TLS with a mandatory client certificate.
//!
//! ```no_run
//! use edgetls_keyserver::{tls_acceptor, Authz, DirStore, KeyServer, ServerOptions};
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), edgetls_keyserver::KeyServerError> {
//! let (keys, problems) = DirStore::load_dir(Path::new("/etc/keyless/keys"))?;
//! problems.iter().for_each(|p| eprintln!("skipped: {p}"));
//! let tls = tls_acceptor(Path::new("server.pem"), Path::new("server.key"), Path::new("edge-ca.pem"))?;
//! let server = Arc::new(KeyServer::new(keys.into(), Authz::open(), tls, ServerOptions::default())?);
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:2407").await.map_err(|source| {
//!     edgetls_keyserver::KeyServerError::Listen { addr: "0.0.0.0:2407".into(), source }
//! })?;
//! let (_stop, stopped) = tokio::sync::watch::channel(false);
//! server.serve(listener, stopped).await;
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]

mod authz;
mod error;
mod keys;
mod metrics;
pub mod ops;
mod server;

pub use authz::{Allowed, Authz, ClientId, Keys};
pub use error::KeyServerError;
pub use keys::{
    Cost, Decryption, DeviceJob, DirStore, FileKey, KeyIndex, KeyKind, KeySet, KeyStore,
    Pkcs11Options, Pkcs11Store, Pkcs11Uri, PrivateKey, load_key,
};
pub use metrics::{Metrics, serve_metrics};
pub use server::{KeyServer, ServerOptions, tls_acceptor};

// The README is the crate's front page on crates.io: its examples are tested too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
