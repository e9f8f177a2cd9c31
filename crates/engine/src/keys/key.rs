//! Keys whose private half is remote: an `EVP_PKEY` for a certificate's public key whose
//! signatures are made by a [`RemoteKey`] — through the `edgetls-keyless` provider (OpenSSL 3.0
//! and later), or, with the `engine` feature, the ENGINE shim (OpenSSL 3.x only).

use crate::error::EngineError;
use crate::keys::remote::RemoteKey;
use edgetls_keyless_proto::Ski;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509Ref;
use std::sync::Arc;

/// What a remote key carries: its signer, the SKI the key server knows it by, and its type.
/// Copies share the signer (`Arc`), so duplicating a key duplicates the binding.
#[derive(Clone)]
pub(crate) struct Binding {
    pub(crate) remote: Arc<dyn RemoteKey>,
    pub(crate) ski: Ski,
    pub(crate) rsa: bool,
}

/// The binding of `cert`'s public key to `remote`, and the key's public half (DER).
fn bind(cert: &X509Ref, remote: Arc<dyn RemoteKey>) -> Result<(Binding, Vec<u8>), EngineError> {
    let spki = cert.public_key()?.public_key_to_der()?;
    let public = PKey::public_key_from_der(&spki)?;
    let rsa = match public.id() {
        Id::RSA => true,
        Id::EC => false,
        other => {
            return Err(EngineError::UnsupportedKey(format!(
                "{other:?} (RSA and ECDSA keys can be remote)"
            )));
        }
    };
    let ski = Ski::from_spki_der(&spki).map_err(|e| EngineError::UnsupportedKey(e.to_string()))?;
    Ok((Binding { remote, ski, rsa }, spki))
}

/// A private key for `cert` whose signatures are made by `remote`, identified by the SKI of the
/// certificate's public key. Usable wherever OpenSSL takes a private key
/// (`SslContextBuilder::set_private_key`, `SslRef::set_private_key`). Made by the
/// `edgetls-keyless` provider, loaded into the process on first use.
pub fn remote_pkey(
    cert: &X509Ref,
    remote: Arc<dyn RemoteKey>,
) -> Result<PKey<Private>, EngineError> {
    let (binding, spki) = bind(cert, remote)?;
    crate::keys::provider::key(binding, &spki)
}

/// As [`remote_pkey`], through the `edgetls-keyless` ENGINE (OpenSSL 3.x; 4.0 has no ENGINE
/// API). For comparison and for builds that must not load a provider.
#[cfg(feature = "engine")]
pub fn engine_remote_pkey(
    cert: &X509Ref,
    remote: Arc<dyn RemoteKey>,
) -> Result<PKey<Private>, EngineError> {
    let (binding, _) = bind(cert, remote)?;
    crate::keys::engine::key(binding, cert)
}

/// The SKI a remote key for `cert` is looked up by on the key server.
pub fn ski_of(cert: &X509Ref) -> Result<Ski, EngineError> {
    let public = cert.public_key()?;
    Ski::from_spki_der(&public.public_key_to_der()?)
        .map_err(|e| EngineError::UnsupportedKey(e.to_string()))
}
