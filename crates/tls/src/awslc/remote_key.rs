//! Remote keys on AWS-LC: the key object and where a connection's remote keys are found.
//!
//! AWS-LC has no providers: a remote key is the certificate's public key with its binding (the
//! signer) attached to the key's RSA or EC_KEY ex_data. It does not sign by itself: set it with
//! [`use_chain`](crate::use_chain) or [`use_chain_on_context`](crate::use_chain_on_context),
//! which hand the signatures to the private-key method (`key_method.rs`).

use crate::TlsError;
use crate::ossl::remote_key::Binding;
use foreign_types::{ForeignType, ForeignTypeRef};
use libc::{c_int, c_long, c_void};
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use std::sync::OnceLock;

/// The ex_data index of the binding on RSA keys and on EC keys (each type has its own indexes).
fn indexes() -> Option<(c_int, c_int)> {
    static I: OnceLock<Option<(c_int, c_int)>> = OnceLock::new();
    *I.get_or_init(|| {
        // SAFETY: registers an index with a free function for our boxed bindings; the other
        // arguments are unused by AWS-LC.
        let (rsa, ec) = unsafe {
            (
                openssl_sys::RSA_get_ex_new_index(
                    0,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    None,
                    Some(free_binding),
                ),
                openssl_sys::EC_KEY_get_ex_new_index(
                    0,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    None,
                    Some(free_binding),
                ),
            )
        };
        (rsa >= 0 && ec >= 0).then_some((rsa, ec))
    })
}

unsafe extern "C" fn free_binding(
    _parent: *mut c_void,
    ptr: *mut c_void,
    _ad: *mut openssl_sys::CRYPTO_EX_DATA,
    _index: c_int,
    _argl: c_long,
    _argp: *mut c_void,
) {
    if !ptr.is_null() {
        // SAFETY: the only values stored at our indexes are Box<Binding>s from `key`.
        drop(unsafe { Box::from_raw(ptr.cast::<Binding>()) });
    }
}

/// A remote key: the public key `spki` carrying `binding`.
pub(crate) fn key(binding: Binding, spki: &[u8]) -> Result<PKey<Private>, TlsError> {
    let (rsa_index, ec_index) =
        indexes().ok_or_else(|| TlsError::Library(openssl::error::ErrorStack::get()))?;
    let public = PKey::public_key_from_der(spki)?;
    let boxed = Box::into_raw(Box::new(binding)).cast::<c_void>();
    // SAFETY: `public` is a live key we own; the RSA/EC_KEY it holds lives as long as it, and
    // owns `boxed` once set (freed by `free_binding`); on failure we take the box back.
    let ok = unsafe {
        match public.id() {
            Id::RSA => {
                let rsa = openssl_sys::EVP_PKEY_get0_RSA(public.as_ptr());
                !rsa.is_null() && openssl_sys::RSA_set_ex_data(rsa, rsa_index, boxed) == 1
            }
            Id::EC => {
                let ec = openssl_sys::EVP_PKEY_get0_EC_KEY(public.as_ptr());
                !ec.is_null() && openssl_sys::EC_KEY_set_ex_data(ec, ec_index, boxed) == 1
            }
            _ => false,
        }
    };
    if !ok {
        // SAFETY: not stored: still ours.
        drop(unsafe { Box::from_raw(boxed.cast::<Binding>()) });
        return Err(TlsError::UnsupportedKey(format!(
            "{:?} (RSA and ECDSA keys can be remote)",
            public.id()
        )));
    }
    // SAFETY: the same EVP_PKEY under the Private marker: edgetls never reads private material
    // from it (the library signs through the private-key method, see `use_chain`).
    Ok(unsafe {
        let p = public.as_ptr();
        std::mem::forget(public);
        PKey::from_ptr(p)
    })
}

/// The binding `key` carries, if it is a remote key.
pub(crate) fn binding_of<T>(key: &PKeyRef<T>) -> Option<Binding> {
    let (rsa_index, ec_index) = indexes()?;
    // SAFETY: reads the ex_data of the live key's RSA/EC_KEY; a non-null value at our index is
    // a Binding stored by `key`, alive as long as the key.
    unsafe {
        let p = match key.id() {
            Id::RSA => {
                let rsa = openssl_sys::EVP_PKEY_get0_RSA(key.as_ptr());
                if rsa.is_null() {
                    return None;
                }
                openssl_sys::RSA_get_ex_data(rsa, rsa_index)
            }
            Id::EC => {
                let ec = openssl_sys::EVP_PKEY_get0_EC_KEY(key.as_ptr());
                if ec.is_null() {
                    return None;
                }
                openssl_sys::EC_KEY_get_ex_data(ec, ec_index)
            }
            _ => return None,
        };
        (!p.is_null()).then(|| (*p.cast::<Binding>()).clone())
    }
}
