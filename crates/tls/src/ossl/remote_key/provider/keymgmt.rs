//! Key management for remote keys: the public half (a key of whichever other provider serves
//! the process — default or FIPS — which answers what libssl asks: bits, security bits, maximum
//! size, group, default digest) and the binding to the signer. A key made by [`make`] holds both; a public key imported from another provider
//! (when OpenSSL compares a certificate's key with ours) holds only the public half, and cannot
//! sign.

use super::params::{self, List};
use crate::TlsError;
use crate::ossl::remote_key::Binding;
use crate::ossl::remote_key::ffi::{self, OSSL_DISPATCH};
use foreign_types::ForeignType;
use libc::{c_char, c_int, c_void};
use openssl::pkey::{PKey, Private, Public};
use openssl_sys::OSSL_PARAM;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

/// A provider-side key.
#[derive(Clone, Default)]
pub(super) struct KeyData {
    pub(super) public: Option<PKey<Public>>,
    pub(super) binding: Option<Arc<Binding>>,
}

/// Bindings on their way into a key being made (by a number passed as a parameter: no pointer
/// crosses OpenSSL).
fn pending() -> &'static Mutex<HashMap<u64, Arc<Binding>>> {
    static P: OnceLock<Mutex<HashMap<u64, Arc<Binding>>>> = OnceLock::new();
    P.get_or_init(Default::default)
}

const BINDING: &std::ffi::CStr = c"edgetls-binding";
const SPKI: &std::ffi::CStr = c"edgetls-spki";

/// A key of type `name` ("RSA" or "EC") from this provider: the public key `spki` (DER) bound
/// to `binding`.
pub(super) fn make(
    name: &std::ffi::CStr,
    spki: &[u8],
    binding: &Arc<Binding>,
) -> Result<PKey<Private>, TlsError> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Relaxed);
    pending()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, Arc::clone(binding));
    let mut id_bytes = id.to_ne_bytes();
    let mut spki = spki.to_vec();
    let made = (|| {
        // SAFETY: a context from this provider's keymgmt, freed below; the parameters point at
        // locals that outlive the call; the key returned is owned by the PKey.
        unsafe {
            let ctx = openssl_sys::EVP_PKEY_CTX_new_from_name(
                std::ptr::null_mut(),
                name.as_ptr(),
                super::PROPERTY.as_ptr(),
            );
            if ctx.is_null() {
                return Err(openssl::error::ErrorStack::get().into());
            }
            let mut params = [
                openssl_sys::OSSL_PARAM_construct_octet_string(
                    BINDING.as_ptr(),
                    id_bytes.as_mut_ptr().cast(),
                    id_bytes.len(),
                ),
                openssl_sys::OSSL_PARAM_construct_octet_string(
                    SPKI.as_ptr(),
                    spki.as_mut_ptr().cast(),
                    spki.len(),
                ),
                openssl_sys::OSSL_PARAM_construct_end(),
            ];
            let mut pkey = std::ptr::null_mut();
            let ok = openssl_sys::EVP_PKEY_fromdata_init(ctx) == 1
                && openssl_sys::EVP_PKEY_fromdata(
                    ctx,
                    &mut pkey,
                    openssl_sys::EVP_PKEY_KEYPAIR,
                    params.as_mut_ptr(),
                ) == 1;
            openssl_sys::EVP_PKEY_CTX_free(ctx);
            if !ok || pkey.is_null() {
                return Err(openssl::error::ErrorStack::get().into());
            }
            Ok(PKey::<Private>::from_ptr(pkey))
        }
    })();
    // Taken by the import on success; not left behind on failure.
    pending()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    made
}

/// Runs `f`, turning a panic into `fallback` (nothing may unwind into OpenSSL).
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// # Safety
/// `keydata` is NULL or a `KeyData` made by `new` or `dup`.
unsafe fn key<'a>(keydata: *const c_void) -> Option<&'a KeyData> {
    // SAFETY: the caller's contract.
    unsafe { keydata.cast::<KeyData>().as_ref() }
}

unsafe extern "C" fn new(_provctx: *mut c_void) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        Box::into_raw(Box::<KeyData>::default()).cast()
    })
}

unsafe extern "C" fn free(keydata: *mut c_void) {
    if !keydata.is_null() {
        // SAFETY: OpenSSL frees each key it got from `new` or `dup` once.
        let k = unsafe { Box::from_raw(keydata.cast::<KeyData>()) };
        guard((), move || drop(k));
    }
}

unsafe extern "C" fn dup(keydata: *const c_void, _selection: c_int) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        // SAFETY: OpenSSL passes one of our keys.
        match unsafe { key(keydata) } {
            // The copy holds its own reference to the binding: each is freed once.
            Some(k) => Box::into_raw(Box::new(k.clone())).cast(),
            None => std::ptr::null_mut(),
        }
    })
}

unsafe extern "C" fn has(keydata: *const c_void, selection: c_int) -> c_int {
    guard(0, || {
        // SAFETY: OpenSSL passes one of our keys (or NULL).
        let Some(k) = (unsafe { key(keydata) }) else {
            return c_int::from(selection == 0);
        };
        let private_ok =
            selection & openssl_sys::OSSL_KEYMGMT_SELECT_PRIVATE_KEY == 0 || k.binding.is_some();
        let rest_ok =
            selection & !openssl_sys::OSSL_KEYMGMT_SELECT_PRIVATE_KEY == 0 || k.public.is_some();
        c_int::from(private_ok && rest_ok)
    })
}

unsafe extern "C" fn matches(k1: *const c_void, k2: *const c_void, _selection: c_int) -> c_int {
    guard(0, || {
        // SAFETY: OpenSSL passes two of our keys.
        match unsafe { (key(k1), key(k2)) } {
            (
                Some(KeyData {
                    public: Some(a), ..
                }),
                Some(KeyData {
                    public: Some(b), ..
                }),
            ) => c_int::from(a.public_eq(b)),
            _ => 0,
        }
    })
}

/// Takes a key made by [`make`] (binding + public key), or a public key exported by another
/// provider (its standard parameters), which can be compared but not sign.
unsafe extern "C" fn import(
    keydata: *mut c_void,
    _selection: c_int,
    params: *const OSSL_PARAM,
    rsa: bool,
) -> c_int {
    guard(0, || {
        // SAFETY: OpenSSL passes one of our keys and a parameter array alive for the call.
        let (k, binding, spki) = unsafe {
            let Some(k) = keydata.cast::<KeyData>().as_mut() else {
                return 0;
            };
            (
                k,
                params::find(params, BINDING).and_then(params::octets),
                params::find(params, SPKI).and_then(params::octets),
            )
        };
        match (binding, spki) {
            (Some(id), Some(spki)) => {
                let Ok(id) = <[u8; 8]>::try_from(id).map(u64::from_ne_bytes) else {
                    return 0;
                };
                let Some(b) = pending()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id)
                else {
                    return 0;
                };
                match PKey::public_key_from_der(spki) {
                    Ok(public) => {
                        k.public = Some(public);
                        k.binding = Some(b);
                        1
                    }
                    Err(_) => 0,
                }
            }
            _ => match public_from_params(params, rsa) {
                Some(public) => {
                    k.public = Some(public);
                    1
                }
                None => 0,
            },
        }
    })
}

/// Any provider but this one: the default provider, or FIPS where only it is loaded.
const ELSEWHERE: &std::ffi::CStr = c"provider!=edgetls-keyless";

/// A public key of another provider from standard parameters (n, e; or group and point).
fn public_from_params(params: *const OSSL_PARAM, rsa: bool) -> Option<PKey<Public>> {
    let name = if rsa { c"RSA" } else { c"EC" };
    // SAFETY: a context from another provider, freed below; `params` is alive for the call
    // (fromdata does not keep it); the key made is owned by the PKey.
    unsafe {
        let ctx = openssl_sys::EVP_PKEY_CTX_new_from_name(
            std::ptr::null_mut(),
            name.as_ptr(),
            ELSEWHERE.as_ptr(),
        );
        if ctx.is_null() {
            return None;
        }
        let mut pkey = std::ptr::null_mut();
        let ok = openssl_sys::EVP_PKEY_fromdata_init(ctx) == 1
            && openssl_sys::EVP_PKEY_fromdata(
                ctx,
                &mut pkey,
                openssl_sys::EVP_PKEY_PUBLIC_KEY,
                params.cast_mut(),
            ) == 1;
        openssl_sys::EVP_PKEY_CTX_free(ctx);
        (ok && !pkey.is_null()).then(|| PKey::<Public>::from_ptr(pkey))
    }
}

unsafe extern "C" fn import_rsa(kd: *mut c_void, sel: c_int, p: *const OSSL_PARAM) -> c_int {
    // SAFETY: forwarded as OpenSSL passed them.
    unsafe { import(kd, sel, p, true) }
}

unsafe extern "C" fn import_ec(kd: *mut c_void, sel: c_int, p: *const OSSL_PARAM) -> c_int {
    // SAFETY: forwarded as OpenSSL passed them.
    unsafe { import(kd, sel, p, false) }
}

/// Gives the public half to another provider; never the private half (there is none here): an
/// operation that needs it must come to this provider.
unsafe extern "C" fn export(
    keydata: *mut c_void,
    selection: c_int,
    cb: Option<ffi::ParamCallback>,
    cbarg: *mut c_void,
) -> c_int {
    guard(0, || {
        if selection & openssl_sys::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0 {
            return 0;
        }
        // SAFETY: OpenSSL passes one of our keys.
        let (
            Some(KeyData {
                public: Some(public),
                ..
            }),
            Some(cb),
        ) = (unsafe { key(keydata) }, cb)
        else {
            return 0;
        };
        let mut out: *mut OSSL_PARAM = std::ptr::null_mut();
        // SAFETY: todata allocates `out`, handed to the callback and freed here.
        unsafe {
            if openssl_sys::EVP_PKEY_todata(
                public.as_ptr(),
                openssl_sys::EVP_PKEY_PUBLIC_KEY,
                &mut out,
            ) != 1
            {
                return 0;
            }
            let r = cb(out, cbarg);
            openssl_sys::OSSL_PARAM_free(out);
            r
        }
    })
}

unsafe extern "C" fn get_params(keydata: *mut c_void, params: *mut OSSL_PARAM) -> c_int {
    guard(0, || {
        // SAFETY: OpenSSL passes one of our keys and a parameter array to fill.
        match unsafe { key(keydata) } {
            Some(KeyData {
                public: Some(public),
                ..
            }) => {
                // SAFETY: the public key answers the same questions (sizes, group, digest).
                unsafe { openssl_sys::EVP_PKEY_get_params(public.as_ptr(), params) }
            }
            _ => 0,
        }
    })
}

fn rsa_params() -> &'static List {
    static L: OnceLock<List> = OnceLock::new();
    L.get_or_init(|| {
        List::new(&[
            (c"bits", ffi::OSSL_PARAM_INTEGER),
            (c"security-bits", ffi::OSSL_PARAM_INTEGER),
            (c"max-size", ffi::OSSL_PARAM_INTEGER),
            (c"default-digest", ffi::OSSL_PARAM_UTF8_STRING),
            (c"n", 2),
            (c"e", 2),
        ])
    })
}

fn ec_params() -> &'static List {
    static L: OnceLock<List> = OnceLock::new();
    L.get_or_init(|| {
        List::new(&[
            (c"bits", ffi::OSSL_PARAM_INTEGER),
            (c"security-bits", ffi::OSSL_PARAM_INTEGER),
            (c"max-size", ffi::OSSL_PARAM_INTEGER),
            (c"default-digest", ffi::OSSL_PARAM_UTF8_STRING),
            (c"group", ffi::OSSL_PARAM_UTF8_STRING),
            (c"encoding", ffi::OSSL_PARAM_UTF8_STRING),
            (c"point-format", ffi::OSSL_PARAM_UTF8_STRING),
            (c"encoded-pub-key", ffi::OSSL_PARAM_OCTET_STRING),
            (c"pub", ffi::OSSL_PARAM_OCTET_STRING),
        ])
    })
}

unsafe extern "C" fn gettable_rsa(_provctx: *mut c_void) -> *const OSSL_PARAM {
    rsa_params().as_ptr()
}

unsafe extern "C" fn gettable_ec(_provctx: *mut c_void) -> *const OSSL_PARAM {
    ec_params().as_ptr()
}

unsafe extern "C" fn types_rsa(_selection: c_int) -> *const OSSL_PARAM {
    rsa_params().as_ptr()
}

unsafe extern "C" fn types_ec(_selection: c_int) -> *const OSSL_PARAM {
    ec_params().as_ptr()
}

unsafe extern "C" fn operation_rsa(operation: c_int) -> *const c_char {
    match operation {
        ffi::OSSL_OP_SIGNATURE => c"RSA".as_ptr(),
        _ => std::ptr::null(),
    }
}

unsafe extern "C" fn operation_ec(operation: c_int) -> *const c_char {
    match operation {
        ffi::OSSL_OP_SIGNATURE => c"ECDSA".as_ptr(),
        _ => std::ptr::null(),
    }
}

fn table(rsa: bool) -> &'static [OSSL_DISPATCH] {
    super::dispatch(&[
        (ffi::OSSL_FUNC_KEYMGMT_NEW, new as *const ()),
        (ffi::OSSL_FUNC_KEYMGMT_FREE, free as *const ()),
        (ffi::OSSL_FUNC_KEYMGMT_DUP, dup as *const ()),
        (ffi::OSSL_FUNC_KEYMGMT_HAS, has as *const ()),
        (ffi::OSSL_FUNC_KEYMGMT_MATCH, matches as *const ()),
        (
            ffi::OSSL_FUNC_KEYMGMT_IMPORT,
            if rsa {
                import_rsa as *const ()
            } else {
                import_ec as *const ()
            },
        ),
        (
            ffi::OSSL_FUNC_KEYMGMT_IMPORT_TYPES,
            if rsa {
                types_rsa as *const ()
            } else {
                types_ec as *const ()
            },
        ),
        (ffi::OSSL_FUNC_KEYMGMT_EXPORT, export as *const ()),
        (
            ffi::OSSL_FUNC_KEYMGMT_EXPORT_TYPES,
            if rsa {
                types_rsa as *const ()
            } else {
                types_ec as *const ()
            },
        ),
        (ffi::OSSL_FUNC_KEYMGMT_GET_PARAMS, get_params as *const ()),
        (
            ffi::OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,
            if rsa {
                gettable_rsa as *const ()
            } else {
                gettable_ec as *const ()
            },
        ),
        (
            ffi::OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
            if rsa {
                operation_rsa as *const ()
            } else {
                operation_ec as *const ()
            },
        ),
    ])
}

pub(super) fn rsa() -> &'static [OSSL_DISPATCH] {
    static T: OnceLock<super::Static<OSSL_DISPATCH>> = OnceLock::new();
    T.get_or_init(|| super::Static(table(true))).0
}

pub(super) fn ec() -> &'static [OSSL_DISPATCH] {
    static T: OnceLock<super::Static<OSSL_DISPATCH>> = OnceLock::new();
    T.get_or_init(|| super::Static(table(false))).0
}
