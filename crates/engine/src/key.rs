//! Keys whose private half is remote: an `EVP_PKEY` made from a certificate's public key, bound
//! to a [`RemoteKey`] and to the `edgetls-keyless` engine.

use crate::engine::{self, Binding};
use crate::error::EngineError;
use crate::ffi;
use crate::remote::RemoteKey;
use edgetls_keyless_proto::Ski;
use foreign_types::ForeignType;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509Ref;
use std::sync::Arc;

/// A private key for `cert` whose signatures are made by `remote`, identified by the SKI of the
/// certificate's public key. Usable wherever OpenSSL takes a private key
/// (`SslContextBuilder::set_private_key`, `SslRef::set_private_key`).
pub fn remote_pkey(
    cert: &X509Ref,
    remote: Arc<dyn RemoteKey>,
) -> Result<PKey<Private>, EngineError> {
    let public = cert.public_key()?;
    let ski = Ski::from_spki_der(&public.public_key_to_der()?)
        .map_err(|e| EngineError::UnsupportedKey(e.to_string()))?;
    // A legacy key object holding only the public parts: the engine's methods apply to it.
    let (legacy, rsa) = match public.id() {
        Id::RSA => (PKey::from_rsa(public.rsa()?)?, true),
        Id::EC => (PKey::from_ec_key(public.ec_key()?)?, false),
        other => {
            return Err(EngineError::UnsupportedKey(format!(
                "{other:?} (RSA and ECDSA keys can be remote)"
            )));
        }
    };
    let engine = engine::get()?;
    let raw = legacy.as_ptr();
    std::mem::forget(legacy); // ownership moves to the PKey<Private> below
    // SAFETY: `raw` is a valid EVP_PKEY we own; wrapping it as PKey<Private> is sound because
    // every private operation on it goes through the engine's methods, which never read private
    // parts. The binding box is owned by the key's ex_data from here on (freed with the key).
    unsafe {
        let key = PKey::<Private>::from_ptr(raw);
        let binding = Box::into_raw(Box::new(Binding { remote, ski, rsa }));
        if ffi::EVP_PKEY_set_ex_data(raw, engine.ex_index, binding.cast()) != 1 {
            drop(Box::from_raw(binding));
            return Err(openssl::error::ErrorStack::get().into());
        }
        if ffi::EVP_PKEY_set1_engine(raw, engine.engine) != 1 {
            return Err(openssl::error::ErrorStack::get().into());
        }
        Ok(key)
    }
}

/// The SKI a remote key for `cert` is looked up by on the key server.
pub fn ski_of(cert: &X509Ref) -> Result<Ski, EngineError> {
    let public = cert.public_key()?;
    Ski::from_spki_der(&public.public_key_to_der()?)
        .map_err(|e| EngineError::UnsupportedKey(e.to_string()))
}
