//! OpenSSL functions this crate needs that `openssl-sys` does not declare.

use libc::c_int;
use openssl_sys::SSL;

/// `SSL_CTRL_SET_GROUPS_LIST`.
pub const SSL_CTRL_SET_GROUPS_LIST: c_int = 92;
/// `SSL_TLSEXT_ERR_OK` and `SSL_TLSEXT_ERR_NOACK`.
pub const SSL_TLSEXT_ERR_OK: c_int = 0;
pub const SSL_TLSEXT_ERR_NOACK: c_int = 3;

unsafe extern "C" {
    pub fn SSL_set_verify_depth(s: *mut SSL, depth: c_int);
}
