//! The remote-key hook on OpenSSL: a key of the `edgetls-keyless` provider (`provider/`; or of
//! the ENGINE shim, `engine.rs`, feature `engine`) whose sign step asks a
//! [`Signer`](crate::remote_key::Signer) and waits for its answer (`wait.rs`: blocking, or
//! pausing the handshake's ASYNC job); the connection marking the driver does (`connection.rs`);
//! async mode, its wait descriptors and static-RSA removal (`context.rs`).

mod connection;
mod context;
#[cfg(all(feature = "engine", not(awslc)))]
mod engine;
#[cfg(not(awslc))]
mod ffi;
#[cfg(not(awslc))]
mod provider;
pub(crate) mod wait;

pub(crate) use connection::current;
#[cfg(awslc)]
pub(crate) use connection::driven;
pub use connection::{Marked, during};
pub use context::{
    enable_async, enable_async_ssl, is_paused, restrict_ssl_to_ecdhe, restrict_to_ecdhe, wait_fd,
};
pub use wait::{REMOTE_LIMIT, Stats, run_queued, stats, take_last_failure, wake};

use crate::TlsError;
use crate::remote_key::Signer;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509Ref;
use std::sync::Arc;

/// What a remote key carries: its signer and its type. Copies share the signer (`Arc`), so
/// duplicating a key duplicates the binding.
#[derive(Clone)]
pub(crate) struct Binding {
    pub(crate) signer: Arc<dyn Signer>,
    pub(crate) rsa: bool,
}

/// The binding of `cert`'s public key to `signer`, and the key's public half (DER).
fn bind(cert: &X509Ref, signer: Arc<dyn Signer>) -> Result<(Binding, Vec<u8>), TlsError> {
    let public = cert.public_key().map_err(|e| {
        TlsError::UnsupportedKey(format!(
            "the certificate's public key: no provider loaded in this process decodes it ({e})"
        ))
    })?;
    let spki = public.public_key_to_der()?;
    let rsa = match PKey::public_key_from_der(&spki)?.id() {
        Id::RSA => true,
        Id::EC => false,
        other => {
            return Err(TlsError::UnsupportedKey(format!(
                "{other:?} (RSA and ECDSA keys can be remote)"
            )));
        }
    };
    Ok((Binding { signer, rsa }, spki))
}

/// A private key for `cert` whose signatures are made by `signer`. Usable wherever OpenSSL takes
/// a private key (`SslContextBuilder::set_private_key`, `SslRef::set_private_key`, a chain set
/// with [`use_chain`](crate::use_chain)). Made by the `edgetls-keyless` provider, loaded into
/// the process on first use.
///
/// On AWS-LC (no providers) the key is the certificate's public key carrying the signer: set it
/// with [`use_chain`](crate::use_chain) or [`use_chain_on_context`](crate::use_chain_on_context),
/// which make the library sign through its private-key method.
pub fn private_key(cert: &X509Ref, signer: Arc<dyn Signer>) -> Result<PKey<Private>, TlsError> {
    #[cfg(not(awslc))]
    provider::load()?;
    let (binding, spki) = bind(cert, signer)?;
    #[cfg(not(awslc))]
    return provider::key(binding, &spki);
    #[cfg(awslc)]
    crate::awslc::remote_key::key(binding, &spki)
}

/// As [`private_key`], through the `edgetls-keyless` ENGINE (OpenSSL 3.x; 4.0 has no ENGINE
/// API). For comparison and for builds that must not load a provider.
#[cfg(all(feature = "engine", not(awslc)))]
pub fn engine_private_key(
    cert: &X509Ref,
    signer: Arc<dyn Signer>,
) -> Result<PKey<Private>, TlsError> {
    let (binding, _) = bind(cert, signer)?;
    engine::key(binding, cert)
}
