//! Keys whose private half is remote: an `EVP_PKEY` for a certificate's public key whose
//! signatures are made by a [`RemoteKey`], through the seam's remote-key hook
//! ([`edgetls_tls::remote_key`]: the `edgetls-keyless` provider, or with the `engine` feature
//! the ENGINE shim).

use crate::error::EngineError;
use crate::keys::remote::{RemoteKey, SignRequest};
use edgetls_keyless_proto::Ski;
use edgetls_tls::TlsError;
use edgetls_tls::remote_key::{self, Done, Signer};
use openssl::pkey::{PKey, Private};
use openssl::ssl::SslContextBuilder;
use openssl::x509::X509Ref;
use std::sync::Arc;

/// A remote key bound to one key: the seam's signer, which names the key by its SKI.
#[derive(Debug)]
struct Keyed {
    remote: Arc<dyn RemoteKey>,
    ski: Ski,
}

impl Signer for Keyed {
    fn start(&self, request: remote_key::SignRequest, done: Done) {
        let request = SignRequest {
            ski: self.ski,
            scheme: request.scheme,
            digest: request.digest,
            connection: request.connection,
        };
        // The remote key's error travels whole: the driver downcasts it for the reason.
        self.remote.start(
            request,
            Box::new(move |r| done(r.map_err(|e| TlsError::Signer(Box::new(e))))),
        );
    }
}

fn signer(cert: &X509Ref, remote: Arc<dyn RemoteKey>) -> Result<Arc<dyn Signer>, EngineError> {
    Ok(Arc::new(Keyed {
        remote,
        ski: ski_of(cert)?,
    }))
}

/// A private key for `cert` whose signatures are made by `remote`, identified by the SKI of the
/// certificate's public key. Usable wherever OpenSSL takes a private key
/// (`SslContextBuilder::set_private_key`, `SslRef::set_private_key`). Made by the
/// `edgetls-keyless` provider, loaded into the process on first use.
pub fn remote_pkey(
    cert: &X509Ref,
    remote: Arc<dyn RemoteKey>,
) -> Result<PKey<Private>, EngineError> {
    Ok(remote_key::private_key(cert, signer(cert, remote)?)?)
}

/// As [`remote_pkey`], through the `edgetls-keyless` ENGINE (OpenSSL 3.x; 4.0 has no ENGINE
/// API). For comparison and for builds that must not load a provider.
#[cfg(feature = "engine")]
pub fn engine_remote_pkey(
    cert: &X509Ref,
    remote: Arc<dyn RemoteKey>,
) -> Result<PKey<Private>, EngineError> {
    Ok(remote_key::engine_private_key(cert, signer(cert, remote)?)?)
}

/// The SKI a remote key for `cert` is looked up by on the key server.
pub fn ski_of(cert: &X509Ref) -> Result<Ski, EngineError> {
    let public = cert.public_key()?;
    Ski::from_spki_der(&public.public_key_to_der()?)
        .map_err(|e| EngineError::UnsupportedKey(e.to_string()))
}

/// Serves `cert` from this context with its key on `remote`: sets the certificate and the
/// remote key, checks that they match, and removes static-RSA suites (see
/// [`restrict_to_ecdhe`](crate::restrict_to_ecdhe)). The one call a context with a remote key
/// needs.
pub fn set_remote_key(
    ctx: &mut SslContextBuilder,
    cert: &X509Ref,
    remote: Arc<dyn RemoteKey>,
) -> Result<(), EngineError> {
    let key = remote_pkey(cert, remote)?;
    // Through the seam: on AWS-LC this is what routes signatures to the remote key.
    let no_intermediates = openssl::stack::Stack::new()?;
    // It checks that the key is the certificate's.
    edgetls_tls::use_chain_on_context(ctx, cert, &no_intermediates, &key)?;
    Ok(remote_key::restrict_to_ecdhe(ctx)?)
}
