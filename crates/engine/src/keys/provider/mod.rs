//! The `edgetls-keyless` OpenSSL provider: remote keys on OpenSSL 3.0 and later (4.0 has no
//! ENGINE API), loaded in-process with `OSSL_PROVIDER_add_builtin`.
//!
//! Two operations, each for RSA and EC keys: key management (`keymgmt.rs`: a key is the
//! certificate's public key, held as a default-provider key that answers every question libssl
//! asks — bits, security bits, maximum signature size, group, default digest — plus the
//! binding to its [`RemoteKey`](crate::RemoteKey)), and signatures (`signature.rs`: RSA
//! PKCS#1 v1.5, RSA-PSS with the salt as long as the digest, ECDSA; the digest is made here and
//! signed remotely, pausing the async job exactly as the ENGINE's hook does).
//!
//! Only keys made by [`remote_pkey`](crate::remote_pkey) use it: every algorithm it offers carries the property
//! `provider=edgetls-keyless`, and those keys name it when they are made. It is registered after
//! the default provider, which keeps answering every other fetch.

mod keymgmt;
mod params;
mod signature;

use crate::error::EngineError;
use crate::ffi::{self, OSSL_ALGORITHM, OSSL_CORE_HANDLE, OSSL_DISPATCH};
use crate::keys::key::Binding;
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

/// Registers and loads the provider (once per process), after making sure the default provider
/// is loaded: loading any provider explicitly would otherwise keep the default one from loading
/// by itself.
fn load() -> Result<(), EngineError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            openssl_sys::init();
            // SAFETY: registration and loading calls on the default library context with static
            // names; the returned provider objects are kept loaded for the life of the process.
            unsafe {
                if openssl_sys::OSSL_PROVIDER_try_load(std::ptr::null_mut(), c"default".as_ptr(), 1)
                    .is_null()
                {
                    return Err(format!(
                        "default provider: {}",
                        openssl::error::ErrorStack::get()
                    ));
                }
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
        .map_err(EngineError::UnsupportedKey)
}

/// A key of this provider for `binding`, whose public half is `spki` (DER).
pub(crate) fn key(binding: Binding, spki: &[u8]) -> Result<PKey<Private>, EngineError> {
    load()?;
    let name = if binding.rsa { c"RSA" } else { c"EC" };
    keymgmt::make(name, spki, &Arc::new(binding))
}
