//! The OpenSSL functions this crate needs that `openssl-sys` does not declare (libssl and
//! libcrypto 3.0 and later export them; `ASYNC_set_mem_functions` from 3.2). The remote-key
//! hook's own (async jobs, providers, the ENGINE API) are in `remote_key/ffi.rs`.

#[cfg(not(awslc))]
use std::ffi::c_uchar;
use std::ffi::{c_char, c_int, c_void};

/// OpenSSL's malloc hook (`CRYPTO_malloc_fn`): size, file, line.
pub type MallocFn = unsafe extern "C" fn(usize, *const c_char, c_int) -> *mut c_void;
/// OpenSSL's realloc hook (`CRYPTO_realloc_fn`).
pub type ReallocFn = unsafe extern "C" fn(*mut c_void, usize, *const c_char, c_int) -> *mut c_void;
/// OpenSSL's free hook (`CRYPTO_free_fn`).
pub type FreeFn = unsafe extern "C" fn(*mut c_void, *const c_char, c_int);

/// `SSL_get_negotiated_group` is this control code on OpenSSL 3.0 and 3.1 (a macro over
/// `SSL_ctrl`): the group's NID.
#[cfg(not(any(ossl320, awslc)))]
pub(crate) const SSL_CTRL_GET_NEGOTIATED_GROUP: c_int = 134;

#[cfg(not(awslc))]
unsafe extern "C" {
    /// The ASYNC job running on this thread, or NULL outside any job.
    pub(crate) fn ASYNC_get_current_job() -> *mut c_void;
    /// OpenSSL's allocator hooks (crypto/mem.c); 0 once OpenSSL has allocated.
    pub(crate) fn CRYPTO_set_mem_functions(
        m: Option<MallocFn>,
        r: Option<ReallocFn>,
        f: Option<FreeFn>,
    ) -> c_int;
    /// The job stack allocator (OpenSSL 3.2+); 0 once a job exists.
    #[cfg(ossl320)]
    pub(crate) fn ASYNC_set_mem_functions(
        alloc: Option<unsafe extern "C" fn(*mut usize) -> *mut c_void>,
        free: Option<unsafe extern "C" fn(*mut c_void)>,
    ) -> c_int;
}

// AWS-LC declares these itself (openssl-sys re-exports its bindings).
#[cfg(awslc)]
pub(crate) use openssl_sys::{
    CRYPTO_set_mem_functions, SSL_CTX_use_cert_and_key, SSL_use_cert_and_key,
};

// --- Session tickets (libssl 3.0) ---
#[cfg(not(awslc))]
/// `SSL_CTX_set_tlsext_ticket_key_evp_cb`'s callback.
pub(crate) type TicketKeyEvpCb = unsafe extern "C" fn(
    ssl: *mut openssl_sys::SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    cctx: *mut openssl_sys::EVP_CIPHER_CTX,
    hctx: *mut openssl_sys::EVP_MAC_CTX,
    enc: c_int,
) -> c_int;

#[cfg(not(awslc))]
/// `SSL_CTX_set_session_ticket_cb`'s decryption callback.
pub(crate) type DecryptSessionTicketCb = unsafe extern "C" fn(
    ssl: *mut openssl_sys::SSL,
    ss: *mut openssl_sys::SSL_SESSION,
    keyname: *const c_uchar,
    keyname_len: usize,
    status: c_int,
    arg: *mut c_void,
) -> c_int;

#[cfg(not(awslc))]
/// `SSL_CTX_set_session_ticket_cb`'s generation callback.
pub(crate) type GenerateSessionTicketCb =
    unsafe extern "C" fn(ssl: *mut openssl_sys::SSL, arg: *mut c_void) -> c_int;

// SSL_TICKET_STATUS and SSL_TICKET_RETURN values.
#[cfg(not(awslc))]
pub(crate) const SSL_TICKET_EMPTY: c_int = 3;
#[cfg(not(awslc))]
pub(crate) const SSL_TICKET_NO_DECRYPT: c_int = 4;
#[cfg(not(awslc))]
pub(crate) const SSL_TICKET_SUCCESS: c_int = 5;
#[cfg(not(awslc))]
pub(crate) const SSL_TICKET_SUCCESS_RENEW: c_int = 6;
#[cfg(not(awslc))]
pub(crate) const SSL_TICKET_RETURN_ABORT: c_int = 0;
#[cfg(not(awslc))]
pub(crate) const SSL_TICKET_RETURN_IGNORE_RENEW: c_int = 2;
#[cfg(not(awslc))]
pub(crate) const SSL_TICKET_RETURN_USE: c_int = 3;
#[cfg(not(awslc))]
pub(crate) const SSL_TICKET_RETURN_USE_RENEW: c_int = 4;

#[cfg(not(awslc))]
unsafe extern "C" {
    pub(crate) fn SSL_CTX_set_tlsext_ticket_key_evp_cb(
        ctx: *mut openssl_sys::SSL_CTX,
        cb: Option<TicketKeyEvpCb>,
    ) -> c_int;
    pub(crate) fn SSL_CTX_set_session_ticket_cb(
        ctx: *mut openssl_sys::SSL_CTX,
        gen_cb: Option<GenerateSessionTicketCb>,
        dec_cb: Option<DecryptSessionTicketCb>,
        arg: *mut c_void,
    ) -> c_int;
    pub(crate) fn OSSL_PARAM_construct_utf8_string(
        key: *const c_char,
        buf: *mut c_char,
        bsize: usize,
    ) -> openssl_sys::OSSL_PARAM;
    pub(crate) fn SSL_set_options(s: *mut openssl_sys::SSL, op: u64) -> u64;
    /// The connection's options (a function since OpenSSL 3.0).
    pub(crate) fn SSL_get_options(s: *const openssl_sys::SSL) -> u64;
}

// --- Certificates (libssl 3.0) ---

#[cfg(not(awslc))]
unsafe extern "C" {
    /// Sets certificate, key and chain on a connection in one call with one key check.
    pub(crate) fn SSL_use_cert_and_key(
        ssl: *mut openssl_sys::SSL,
        x509: *mut openssl_sys::X509,
        pkey: *mut openssl_sys::EVP_PKEY,
        chain: *mut openssl_sys::stack_st_X509,
        replace: c_int,
    ) -> c_int;
    /// As `SSL_use_cert_and_key`, for a context.
    pub(crate) fn SSL_CTX_use_cert_and_key(
        ctx: *mut openssl_sys::SSL_CTX,
        x509: *mut openssl_sys::X509,
        pkey: *mut openssl_sys::EVP_PKEY,
        chain: *mut openssl_sys::stack_st_X509,
        replace: c_int,
    ) -> c_int;
}

// --- Settings (libssl and libcrypto 3.0; `settings.rs`) ---

#[cfg(not(awslc))]
unsafe extern "C" {
    pub(crate) fn SSL_set_verify_depth(s: *mut openssl_sys::SSL, depth: c_int);
    pub(crate) fn SSL_CTX_set_timeout(
        ctx: *mut openssl_sys::SSL_CTX,
        t: libc::c_long,
    ) -> libc::c_long;
    pub(crate) fn X509_STORE_add_crl(
        store: *mut openssl_sys::X509_STORE,
        crl: *mut openssl_sys::X509_CRL,
    ) -> c_int;
    pub(crate) fn SSL_set_session_id_context(
        ssl: *mut openssl_sys::SSL,
        sid_ctx: *const c_uchar,
        sid_ctx_len: std::ffi::c_uint,
    ) -> c_int;
}
