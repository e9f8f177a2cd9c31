//! The OpenSSL 3.0 functions this crate needs that `openssl-sys` does not declare. Debian's
//! libcrypto and libssl export all of them; the signatures follow the 3.0 headers.

#![allow(non_camel_case_types, clippy::upper_case_acronyms)]

use libc::{c_char, c_int, c_void, size_t};
use openssl_sys::{EVP_MD, EVP_PKEY, EVP_PKEY_CTX, SSL, SSL_CIPHER, SSL_CTX, stack_st_SSL_CIPHER};

/// `ENGINE` (opaque).
#[repr(C)]
pub struct ENGINE {
    _private: [u8; 0],
}

/// `EVP_PKEY_METHOD` (opaque).
#[repr(C)]
pub struct EVP_PKEY_METHOD {
    _private: [u8; 0],
}

/// `ASYNC_JOB` (opaque).
#[repr(C)]
pub struct ASYNC_JOB {
    _private: [u8; 0],
}

/// `ASYNC_WAIT_CTX` (opaque).
#[repr(C)]
pub struct ASYNC_WAIT_CTX {
    _private: [u8; 0],
}

pub type SignInit = unsafe extern "C" fn(ctx: *mut EVP_PKEY_CTX) -> c_int;
pub type Sign = unsafe extern "C" fn(
    ctx: *mut EVP_PKEY_CTX,
    sig: *mut u8,
    siglen: *mut size_t,
    tbs: *const u8,
    tbslen: size_t,
) -> c_int;
pub type PkeyMeths = unsafe extern "C" fn(
    e: *mut ENGINE,
    pmeth: *mut *mut EVP_PKEY_METHOD,
    nids: *mut *const c_int,
    nid: c_int,
) -> c_int;
pub type WaitCleanup = unsafe extern "C" fn(
    ctx: *mut ASYNC_WAIT_CTX,
    key: *const c_void,
    fd: c_int,
    custom: *mut c_void,
);

/// `SSL_MODE_ASYNC`.
pub const SSL_MODE_ASYNC: u64 = 0x100;
/// `SSL_ERROR_WANT_ASYNC`.
pub const SSL_ERROR_WANT_ASYNC: c_int = 9;
/// `CRYPTO_EX_INDEX_EVP_PKEY`.
pub const CRYPTO_EX_INDEX_EVP_PKEY: c_int = 17;
/// `EVP_PKEY_FLAG_AUTOARGLEN`: OpenSSL answers "how long is the signature" itself.
pub const EVP_PKEY_FLAG_AUTOARGLEN: c_int = 2;
/// `NID_kx_rsa` and `NID_kx_any` (the latter marks TLS 1.3 suites).
pub const NID_KX_RSA: c_int = 1037;
pub const NID_KX_ANY: c_int = 1063;
/// Padding modes as `EVP_PKEY_CTX_get_rsa_padding` reports them.
pub const RSA_PKCS1_PADDING: c_int = 1;
pub const RSA_NO_PADDING: c_int = 3;
pub const RSA_PKCS1_PSS_PADDING: c_int = 6;
/// `RSA_PSS_SALTLEN_DIGEST`: salt as long as the hash (what TLS uses).
pub const RSA_PSS_SALTLEN_DIGEST: c_int = -1;

unsafe extern "C" {
    pub fn ENGINE_new() -> *mut ENGINE;
    pub fn ENGINE_free(e: *mut ENGINE) -> c_int;
    pub fn ENGINE_set_id(e: *mut ENGINE, id: *const c_char) -> c_int;
    pub fn ENGINE_set_name(e: *mut ENGINE, name: *const c_char) -> c_int;
    pub fn ENGINE_set_pkey_meths(e: *mut ENGINE, f: Option<PkeyMeths>) -> c_int;
    pub fn ENGINE_add(e: *mut ENGINE) -> c_int;
    pub fn ENGINE_init(e: *mut ENGINE) -> c_int;
    pub fn EVP_PKEY_set1_engine(pkey: *mut EVP_PKEY, e: *mut ENGINE) -> c_int;

    pub fn EVP_PKEY_meth_new(id: c_int, flags: c_int) -> *mut EVP_PKEY_METHOD;
    pub fn EVP_PKEY_meth_find(kind: c_int) -> *const EVP_PKEY_METHOD;
    pub fn EVP_PKEY_meth_copy(dst: *mut EVP_PKEY_METHOD, src: *const EVP_PKEY_METHOD);
    pub fn EVP_PKEY_meth_get_sign(
        pmeth: *const EVP_PKEY_METHOD,
        sign_init: *mut Option<SignInit>,
        sign: *mut Option<Sign>,
    );
    pub fn EVP_PKEY_meth_set_sign(
        pmeth: *mut EVP_PKEY_METHOD,
        sign_init: Option<SignInit>,
        sign: Option<Sign>,
    );

    pub fn EVP_PKEY_CTX_get0_pkey(ctx: *mut EVP_PKEY_CTX) -> *mut EVP_PKEY;
    pub fn EVP_PKEY_CTX_get_signature_md(ctx: *mut EVP_PKEY_CTX, md: *mut *const EVP_MD) -> c_int;
    pub fn EVP_PKEY_CTX_get_rsa_padding(ctx: *mut EVP_PKEY_CTX, pad: *mut c_int) -> c_int;
    pub fn EVP_PKEY_CTX_get_rsa_pss_saltlen(ctx: *mut EVP_PKEY_CTX, len: *mut c_int) -> c_int;
    pub fn EVP_MD_get_type(md: *const EVP_MD) -> c_int;
    pub fn EVP_PKEY_set_ex_data(key: *mut EVP_PKEY, idx: c_int, arg: *mut c_void) -> c_int;
    pub fn EVP_PKEY_get_ex_data(key: *const EVP_PKEY, idx: c_int) -> *mut c_void;

    pub fn ASYNC_get_current_job() -> *mut ASYNC_JOB;
    pub fn ASYNC_get_wait_ctx(job: *mut ASYNC_JOB) -> *mut ASYNC_WAIT_CTX;
    pub fn ASYNC_pause_job() -> c_int;
    pub fn ASYNC_WAIT_CTX_set_wait_fd(
        ctx: *mut ASYNC_WAIT_CTX,
        key: *const c_void,
        fd: c_int,
        custom: *mut c_void,
        cleanup: Option<WaitCleanup>,
    ) -> c_int;
    pub fn ASYNC_WAIT_CTX_get_fd(
        ctx: *mut ASYNC_WAIT_CTX,
        key: *const c_void,
        fd: *mut c_int,
        custom: *mut *mut c_void,
    ) -> c_int;

    pub fn SSL_get_all_async_fds(s: *mut SSL, fds: *mut c_int, numfds: *mut size_t) -> c_int;
    pub fn SSL_CTX_get_ciphers(ctx: *const SSL_CTX) -> *mut stack_st_SSL_CIPHER;
    pub fn SSL_get_ciphers(s: *const SSL) -> *mut stack_st_SSL_CIPHER;
    pub fn SSL_CIPHER_get_kx_nid(c: *const SSL_CIPHER) -> c_int;
}
