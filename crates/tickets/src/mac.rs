//! HMAC-SHA256 keyed through OpenSSL 3.0's EVP_MAC parameters, as the ticket callback and the
//! reference seal/open need it.

use crate::ffi;
use openssl_sys::EVP_MAC_CTX;

/// Sets `key` and SHA-256 on a MAC context (OpenSSL's `EVP_MAC_CTX_set_params`).
///
/// # Safety
/// `hctx` must be a live HMAC `EVP_MAC_CTX`.
pub(crate) unsafe fn set_hmac_key(hctx: *mut EVP_MAC_CTX, key: &[u8]) -> bool {
    // SAFETY: the params point at `key` and at a static C string for the duration of the call;
    // OpenSSL copies them and only reads through the pointers.
    unsafe {
        let params = [
            openssl_sys::OSSL_PARAM_construct_octet_string(
                c"key".as_ptr(),
                key.as_ptr() as *mut libc::c_void,
                key.len(),
            ),
            ffi::OSSL_PARAM_construct_utf8_string(
                c"digest".as_ptr(),
                c"SHA256".as_ptr() as *mut libc::c_char,
                0,
            ),
            openssl_sys::OSSL_PARAM_construct_end(),
        ];
        openssl_sys::EVP_MAC_CTX_set_params(hctx, params.as_ptr()) == 1
    }
}
