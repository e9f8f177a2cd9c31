//! Reading `OSSL_PARAM` arrays, and the static descriptor lists the provider answers with.

use crate::ossl::remote_key::ffi;
use libc::{c_int, c_uint};
use openssl_sys::OSSL_PARAM;
use std::ffi::CStr;

/// The parameter named `key` in the array at `params` (ended by a NULL key), if present.
///
/// # Safety
/// `params` is NULL or a valid parameter array that outlives the returned reference.
pub(super) unsafe fn find<'a>(params: *const OSSL_PARAM, key: &CStr) -> Option<&'a OSSL_PARAM> {
    if params.is_null() {
        return None;
    }
    // SAFETY: the caller's contract; OSSL_PARAM_locate_const returns NULL or an element.
    unsafe { openssl_sys::OSSL_PARAM_locate_const(params, key.as_ptr()).as_ref() }
}

/// `OSSL_PARAM_UTF8_PTR` and `OSSL_PARAM_OCTET_PTR`.
const UTF8_PTR: c_uint = 6;
const OCTET_PTR: c_uint = 7;

// Each reader looks at the type first: OpenSSL's getters put an error on the thread's queue for
// a parameter of another type, and libssl takes a non-empty queue for a failure later on.

/// An octet string's bytes.
pub(super) fn octets(p: &OSSL_PARAM) -> Option<&[u8]> {
    if p.data_type != ffi::OSSL_PARAM_OCTET_STRING && p.data_type != OCTET_PTR {
        return None;
    }
    let mut data = std::ptr::null();
    let mut len = 0;
    // SAFETY: p is a valid parameter; the out-pointers are locals. The bytes belong to the
    // parameter's owner, which outlives `p`'s borrow.
    unsafe {
        if openssl_sys::OSSL_PARAM_get_octet_string_ptr(p, &mut data, &mut len) != 1
            || data.is_null()
        {
            return None;
        }
        Some(std::slice::from_raw_parts(data.cast::<u8>(), len))
    }
}

/// A UTF-8 string's text.
pub(super) fn utf8(p: &OSSL_PARAM) -> Option<&str> {
    if p.data_type != ffi::OSSL_PARAM_UTF8_STRING && p.data_type != UTF8_PTR {
        return None;
    }
    let mut s = std::ptr::null();
    // SAFETY: p is a valid parameter; the string belongs to the parameter's owner.
    unsafe {
        if openssl_sys::OSSL_PARAM_get_utf8_string_ptr(p, &mut s) != 1 || s.is_null() {
            return None;
        }
        CStr::from_ptr(s).to_str().ok()
    }
}

/// An integer, or None when the parameter is not one.
pub(super) fn int(p: &OSSL_PARAM) -> Option<c_int> {
    if p.data_type != ffi::OSSL_PARAM_INTEGER && p.data_type != 2 {
        return None;
    }
    let mut v = 0;
    // SAFETY: p is a valid parameter; the out-pointer is a local.
    (unsafe { ffi::OSSL_PARAM_get_int(p, &mut v) } == 1).then_some(v)
}

/// A descriptor list (names and types, no data), made once and never freed.
pub(super) struct List(&'static [OSSL_PARAM]);
// SAFETY: the list holds pointers to static strings only and is never written after it is made.
unsafe impl Send for List {}
// SAFETY: as above.
unsafe impl Sync for List {}

impl List {
    pub(super) fn new(entries: &[(&'static CStr, c_uint)]) -> List {
        let param = |key: *const libc::c_char, data_type| OSSL_PARAM {
            key,
            data_type,
            data: std::ptr::null_mut(),
            data_size: 0,
            return_size: 0,
        };
        let mut v: Vec<OSSL_PARAM> = entries.iter().map(|(k, t)| param(k.as_ptr(), *t)).collect();
        v.push(param(std::ptr::null(), 0));
        List(Box::leak(v.into_boxed_slice()))
    }

    pub(super) fn as_ptr(&self) -> *const OSSL_PARAM {
        self.0.as_ptr()
    }
}
