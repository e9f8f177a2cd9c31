//! OpenSSL 3.0 functions this crate needs that `openssl-sys` does not declare (Debian's libssl
//! and libcrypto export them; signatures from the 3.0 headers).

use libc::{c_char, c_int, c_uchar, c_void, size_t};
use openssl_sys::{EVP_CIPHER_CTX, EVP_MAC_CTX, OSSL_PARAM, SSL, SSL_CTX, SSL_SESSION};

pub(crate) type TicketKeyEvpCb = unsafe extern "C" fn(
    ssl: *mut SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    cctx: *mut EVP_CIPHER_CTX,
    hctx: *mut EVP_MAC_CTX,
    enc: c_int,
) -> c_int;

pub(crate) type DecryptSessionTicketCb = unsafe extern "C" fn(
    ssl: *mut SSL,
    ss: *mut SSL_SESSION,
    keyname: *const c_uchar,
    keyname_len: size_t,
    status: c_int,
    arg: *mut c_void,
) -> c_int;

pub(crate) type GenerateSessionTicketCb =
    unsafe extern "C" fn(ssl: *mut SSL, arg: *mut c_void) -> c_int;

// SSL_TICKET_STATUS and SSL_TICKET_RETURN values.
pub(crate) const SSL_TICKET_EMPTY: c_int = 3;
pub(crate) const SSL_TICKET_NO_DECRYPT: c_int = 4;
pub(crate) const SSL_TICKET_SUCCESS: c_int = 5;
pub(crate) const SSL_TICKET_SUCCESS_RENEW: c_int = 6;
pub(crate) const SSL_TICKET_RETURN_ABORT: c_int = 0;
pub(crate) const SSL_TICKET_RETURN_IGNORE_RENEW: c_int = 2;
pub(crate) const SSL_TICKET_RETURN_USE: c_int = 3;
pub(crate) const SSL_TICKET_RETURN_USE_RENEW: c_int = 4;

unsafe extern "C" {
    pub(crate) fn SSL_CTX_set_tlsext_ticket_key_evp_cb(
        ctx: *mut SSL_CTX,
        cb: Option<TicketKeyEvpCb>,
    ) -> c_int;
    pub(crate) fn SSL_CTX_set_session_ticket_cb(
        ctx: *mut SSL_CTX,
        gen_cb: Option<GenerateSessionTicketCb>,
        dec_cb: Option<DecryptSessionTicketCb>,
        arg: *mut c_void,
    ) -> c_int;
    pub(crate) fn OSSL_PARAM_construct_utf8_string(
        key: *const c_char,
        buf: *mut c_char,
        bsize: size_t,
    ) -> OSSL_PARAM;
    pub(crate) fn SSL_set_options(s: *mut SSL, op: u64) -> u64;
    /// The connection's options (a function since OpenSSL 3.0).
    pub(crate) fn SSL_get_options(s: *const SSL) -> u64;
    pub(crate) fn SSL_SESSION_get0_ticket(
        s: *const SSL_SESSION,
        tick: *mut *const c_uchar,
        len: *mut size_t,
    );
}
