//! OpenSSL functions this crate needs that `openssl-sys` does not declare.

use libc::{c_int, c_long, c_uchar, c_uint};
use openssl_sys::{SSL, SSL_CTX, X509_CRL, X509_STORE};

/// `SSL_CTRL_SET_CLIENT_SIGALGS_LIST` (`SSL_CTX_set1_client_sigalgs_list`).
pub(crate) const SSL_CTRL_SET_CLIENT_SIGALGS_LIST: c_int = 102;

/// `SSL_CTX_ctrl` session-cache queries (`SSL_CTX_sess_number`, `_hits`, …).
pub(crate) const SSL_CTRL_SESS_NUMBER: c_int = 20;
pub(crate) const SSL_CTRL_SESS_HIT: c_int = 27;
pub(crate) const SSL_CTRL_SESS_MISSES: c_int = 29;
pub(crate) const SSL_CTRL_SESS_TIMEOUTS: c_int = 30;
pub(crate) const SSL_CTRL_SESS_CACHE_FULL: c_int = 31;

unsafe extern "C" {
    pub(crate) fn SSL_set_verify_depth(s: *mut SSL, depth: c_int);
    pub(crate) fn SSL_CTX_set_timeout(ctx: *mut SSL_CTX, t: c_long) -> c_long;
    pub(crate) fn X509_STORE_add_crl(store: *mut X509_STORE, crl: *mut X509_CRL) -> c_int;
    pub(crate) fn SSL_set_session_id_context(
        s: *mut SSL,
        sid_ctx: *const c_uchar,
        len: c_uint,
    ) -> c_int;
}
