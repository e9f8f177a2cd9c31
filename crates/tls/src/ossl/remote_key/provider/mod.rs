//! The `edgetls-keyless` OpenSSL provider: remote keys on OpenSSL 3.0 and later (4.0 has no
//! ENGINE API), loaded in-process with `OSSL_PROVIDER_add_builtin`.
//!
//! Two operations, each for RSA and EC keys: key management (`keymgmt.rs`: a key is the
//! certificate's public key, held as a key of whichever provider serves the process — default
//! or FIPS — that answers every question libssl asks: bits, security bits, maximum signature
//! size, group, default digest; plus the binding to its signer), and signatures
//! (`signature.rs`: RSA PKCS#1 v1.5, RSA-PSS with the salt as long as the digest, ECDSA; the
//! digest is made here and signed remotely, pausing the async job exactly as the ENGINE's hook
//! does).
//!
//! Only keys made by [`private_key`](crate::remote_key::private_key) use it: every algorithm it
//! offers carries the property `provider=edgetls-keyless`, and those keys name it when they are
//! made. It never loads another provider: the process's configuration decides which ones serve
//! every other fetch (the default provider, by OpenSSL's fallback, or FIPS and base).

mod keymgmt;
mod params;
mod signature;

use super::Binding;
use super::ffi::{self, OSSL_ALGORITHM, OSSL_CORE_HANDLE, OSSL_DISPATCH};
use crate::TlsError;
use libc::{c_int, c_void};
use openssl::pkey::{PKey, Private};
use std::sync::{Arc, OnceLock};

/// The provider's name, and the property query that selects it.
const NAME: &std::ffi::CStr = c"edgetls-keyless";
const PROPERTY: &std::ffi::CStr = c"provider=edgetls-keyless";

/// A table OpenSSL reads from any thread; made once, never freed.
struct Static<T: 'static>(&'static [T]);
// SAFETY: the tables hold pointers to static strings and functions only, and are never written
// after they are made.
unsafe impl<T> Send for Static<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Static<T> {}

/// A dispatch table from (function number, function) pairs, ended as OpenSSL expects.
fn dispatch(entries: &[(c_int, *const ())]) -> &'static [OSSL_DISPATCH] {
    let mut table: Vec<OSSL_DISPATCH> = entries
        .iter()
        .map(|&(function_id, f)| OSSL_DISPATCH {
            function_id,
            // SAFETY: every pointer given is an `extern "C"` function of the signature OpenSSL
            // expects for `function_id` (core_dispatch.h); OpenSSL casts it back before calling.
            function: Some(unsafe { std::mem::transmute::<*const (), unsafe extern "C" fn()>(f) }),
        })
        .collect();
    table.push(OSSL_DISPATCH {
        function_id: 0,
        function: None,
    });
    Box::leak(table.into_boxed_slice())
}

fn algorithms(
    list: &[(&'static std::ffi::CStr, &'static [OSSL_DISPATCH])],
) -> Static<OSSL_ALGORITHM> {
    let mut table: Vec<OSSL_ALGORITHM> = list
        .iter()
        .map(|(names, imp)| OSSL_ALGORITHM {
            algorithm_names: names.as_ptr(),
            property_definition: PROPERTY.as_ptr(),
            implementation: imp.as_ptr(),
            algorithm_description: c"edgetls: the private key is on a key server".as_ptr(),
        })
        .collect();
    table.push(OSSL_ALGORITHM {
        algorithm_names: std::ptr::null(),
        property_definition: std::ptr::null(),
        implementation: std::ptr::null(),
        algorithm_description: std::ptr::null(),
    });
    Static(Box::leak(table.into_boxed_slice()))
}

struct Tables {
    keymgmt: Static<OSSL_ALGORITHM>,
    signature: Static<OSSL_ALGORITHM>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| Tables {
        keymgmt: algorithms(&[
            (c"RSA:rsaEncryption:1.2.840.113549.1.1.1", keymgmt::rsa()),
            (c"EC:id-ecPublicKey:1.2.840.10045.2.1", keymgmt::ec()),
        ]),
        signature: algorithms(&[
            (
                c"RSA:rsaEncryption:1.2.840.113549.1.1.1",
                signature::table(),
            ),
            (c"ECDSA", signature::table()),
        ]),
    })
}

unsafe extern "C" fn query_operation(
    _provctx: *mut c_void,
    operation: c_int,
    no_cache: *mut c_int,
) -> *const OSSL_ALGORITHM {
    if !no_cache.is_null() {
        // SAFETY: OpenSSL passes a valid out-pointer.
        unsafe { *no_cache = 0 };
    }
    let t = tables();
    match operation {
        ffi::OSSL_OP_KEYMGMT => t.keymgmt.0.as_ptr(),
        ffi::OSSL_OP_SIGNATURE => t.signature.0.as_ptr(),
        _ => std::ptr::null(),
    }
}

unsafe extern "C" fn init(
    _handle: *const OSSL_CORE_HANDLE,
    _core: *const OSSL_DISPATCH,
    out: *mut *const OSSL_DISPATCH,
    provctx: *mut *mut c_void,
) -> c_int {
    static OUT: OnceLock<Static<OSSL_DISPATCH>> = OnceLock::new();
    let table = OUT.get_or_init(|| {
        Static(dispatch(&[(
            ffi::OSSL_FUNC_PROVIDER_QUERY_OPERATION,
            query_operation as *const (),
        )]))
    });
    if out.is_null() || provctx.is_null() {
        return 0;
    }
    // SAFETY: OpenSSL passes valid out-pointers; the table is static. The provider context is
    // not used by any function, but must not be NULL.
    unsafe {
        *out = table.0.as_ptr();
        *provctx = NAME.as_ptr() as *mut c_void;
    }
    1
}

/// Registers and loads the provider (once per process). It is loaded with its fallbacks kept
/// (`OSSL_PROVIDER_try_load(.., 1)`): a process whose configuration loads no provider still
/// gets the default one when it first needs it, and one configured for FIPS keeps exactly what
/// it configured — nothing here loads `default` behind its back.
pub(crate) fn load() -> Result<(), TlsError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            openssl_sys::init();
            // SAFETY: registration and loading calls on the default library context with a
            // static name; the provider object is kept loaded for the life of the process.
            unsafe {
                if ffi::OSSL_PROVIDER_add_builtin(std::ptr::null_mut(), NAME.as_ptr(), Some(init))
                    != 1
                    || openssl_sys::OSSL_PROVIDER_try_load(std::ptr::null_mut(), NAME.as_ptr(), 1)
                        .is_null()
                {
                    return Err(format!("{NAME:?}: {}", openssl::error::ErrorStack::get()));
                }
            }
            Ok(())
        })
        .clone()
        .map_err(TlsError::Provider)
}

/// A key of this provider (loaded: [`load`]) for `binding`, whose public half is `spki` (DER).
pub(crate) fn key(binding: Binding, spki: &[u8]) -> Result<PKey<Private>, TlsError> {
    let name = if binding.rsa { c"RSA" } else { c"EC" };
    keymgmt::make(name, spki, &Arc::new(binding))
}
