//! What the remote-key hook needs from OpenSSL that `openssl-sys` does not declare: async jobs,
//! the provider API, a few libssl getters, and (feature `engine`) the ENGINE API. Every OpenSSL
//! from 3.0 exports them (the ENGINE API: 3.x only); signatures follow the 3.0 headers.

#![allow(non_camel_case_types, clippy::upper_case_acronyms)]

use libc::{c_char, c_int, c_void, size_t};
use openssl_sys::{SSL, SSL_CIPHER, SSL_CTX, stack_st_SSL_CIPHER};

/// `ASYNC_JOB` (opaque).
#[repr(C)]
pub(crate) struct ASYNC_JOB {
    _private: [u8; 0],
}

/// `ASYNC_WAIT_CTX` (opaque).
#[repr(C)]
pub(crate) struct ASYNC_WAIT_CTX {
    _private: [u8; 0],
}

pub(crate) type WaitCleanup = unsafe extern "C" fn(
    ctx: *mut ASYNC_WAIT_CTX,
    key: *const c_void,
    fd: c_int,
    custom: *mut c_void,
);

/// `SSL_MODE_ASYNC`.
pub(crate) const SSL_MODE_ASYNC: u64 = 0x100;
/// `SSL_ERROR_WANT_ASYNC`.
pub(crate) const SSL_ERROR_WANT_ASYNC: c_int = 9;
/// `NID_kx_rsa` and `NID_kx_any` (the latter marks TLS 1.3 suites).
pub(crate) const NID_KX_RSA: c_int = 1037;
pub(crate) const NID_KX_ANY: c_int = 1063;
unsafe extern "C" {
    pub(crate) fn ASYNC_get_wait_ctx(job: *mut ASYNC_JOB) -> *mut ASYNC_WAIT_CTX;
    pub(crate) fn ASYNC_pause_job() -> c_int;
    pub(crate) fn ASYNC_WAIT_CTX_set_wait_fd(
        ctx: *mut ASYNC_WAIT_CTX,
        key: *const c_void,
        fd: c_int,
        custom: *mut c_void,
        cleanup: Option<WaitCleanup>,
    ) -> c_int;
    pub(crate) fn ASYNC_WAIT_CTX_get_fd(
        ctx: *mut ASYNC_WAIT_CTX,
        key: *const c_void,
        fd: *mut c_int,
        custom: *mut *mut c_void,
    ) -> c_int;

    /// Adds a reference to a connection (freed by one more `SSL_free`).
    pub(crate) fn SSL_up_ref(s: *mut SSL) -> c_int;
    pub(crate) fn SSL_get_all_async_fds(s: *mut SSL, fds: *mut c_int, numfds: *mut size_t)
    -> c_int;
    pub(crate) fn SSL_CTX_get_ciphers(ctx: *const SSL_CTX) -> *mut stack_st_SSL_CIPHER;
    pub(crate) fn SSL_get_ciphers(s: *const SSL) -> *mut stack_st_SSL_CIPHER;
    pub(crate) fn SSL_CIPHER_get_kx_nid(c: *const SSL_CIPHER) -> c_int;
}

// --- The provider API (OpenSSL 3.0+, `core.h`, `core_dispatch.h`, `provider.h`) ---

/// `OSSL_CORE_HANDLE` (opaque).
#[repr(C)]
pub(crate) struct OSSL_CORE_HANDLE {
    _private: [u8; 0],
}

/// `OSSL_DISPATCH`: a function number and the function.
#[repr(C)]
pub(crate) struct OSSL_DISPATCH {
    pub function_id: c_int,
    pub function: Option<unsafe extern "C" fn()>,
}

/// `OSSL_ALGORITHM`: names, property definition, implementation, description.
#[repr(C)]
pub(crate) struct OSSL_ALGORITHM {
    pub algorithm_names: *const c_char,
    pub property_definition: *const c_char,
    pub implementation: *const OSSL_DISPATCH,
    pub algorithm_description: *const c_char,
}

pub(crate) type ProviderInit = unsafe extern "C" fn(
    handle: *const OSSL_CORE_HANDLE,
    core: *const OSSL_DISPATCH,
    out: *mut *const OSSL_DISPATCH,
    provctx: *mut *mut c_void,
) -> c_int;

/// `OSSL_CALLBACK`: receives exported parameters.
pub(crate) type ParamCallback =
    unsafe extern "C" fn(params: *const openssl_sys::OSSL_PARAM, arg: *mut c_void) -> c_int;

pub(crate) const OSSL_OP_KEYMGMT: c_int = 10;
pub(crate) const OSSL_OP_SIGNATURE: c_int = 12;
pub(crate) const OSSL_FUNC_PROVIDER_QUERY_OPERATION: c_int = 1027;

pub(crate) const OSSL_FUNC_KEYMGMT_NEW: c_int = 1;
pub(crate) const OSSL_FUNC_KEYMGMT_FREE: c_int = 10;
pub(crate) const OSSL_FUNC_KEYMGMT_GET_PARAMS: c_int = 11;
pub(crate) const OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS: c_int = 12;
pub(crate) const OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME: c_int = 20;
pub(crate) const OSSL_FUNC_KEYMGMT_HAS: c_int = 21;
pub(crate) const OSSL_FUNC_KEYMGMT_MATCH: c_int = 23;
pub(crate) const OSSL_FUNC_KEYMGMT_IMPORT: c_int = 40;
pub(crate) const OSSL_FUNC_KEYMGMT_IMPORT_TYPES: c_int = 41;
pub(crate) const OSSL_FUNC_KEYMGMT_EXPORT: c_int = 42;
pub(crate) const OSSL_FUNC_KEYMGMT_EXPORT_TYPES: c_int = 43;
pub(crate) const OSSL_FUNC_KEYMGMT_DUP: c_int = 44;

pub(crate) const OSSL_FUNC_SIGNATURE_NEWCTX: c_int = 1;
pub(crate) const OSSL_FUNC_SIGNATURE_SIGN_INIT: c_int = 2;
pub(crate) const OSSL_FUNC_SIGNATURE_SIGN: c_int = 3;
pub(crate) const OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT: c_int = 8;
pub(crate) const OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE: c_int = 9;
pub(crate) const OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL: c_int = 10;
pub(crate) const OSSL_FUNC_SIGNATURE_DIGEST_SIGN: c_int = 11;
pub(crate) const OSSL_FUNC_SIGNATURE_FREECTX: c_int = 16;
pub(crate) const OSSL_FUNC_SIGNATURE_DUPCTX: c_int = 17;
pub(crate) const OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS: c_int = 18;
pub(crate) const OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS: c_int = 19;
pub(crate) const OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS: c_int = 20;
pub(crate) const OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS: c_int = 21;

/// `OSSL_PARAM` data types.
pub(crate) const OSSL_PARAM_INTEGER: libc::c_uint = 1;
pub(crate) const OSSL_PARAM_UTF8_STRING: libc::c_uint = 4;
pub(crate) const OSSL_PARAM_OCTET_STRING: libc::c_uint = 5;

unsafe extern "C" {
    pub(crate) fn OSSL_PROVIDER_add_builtin(
        libctx: *mut openssl_sys::OSSL_LIB_CTX,
        name: *const c_char,
        init: Option<ProviderInit>,
    ) -> c_int;
    pub(crate) fn OSSL_PARAM_get_int(p: *const openssl_sys::OSSL_PARAM, val: *mut c_int) -> c_int;
}

/// The ENGINE shim's declarations (feature `engine`; OpenSSL 3.x only).
#[cfg(feature = "engine")]
pub(crate) mod engine {
    use libc::{c_char, c_int, c_void, size_t};
    use openssl_sys::{EVP_MD, EVP_PKEY, EVP_PKEY_CTX};

    /// `ENGINE` (opaque).
    #[repr(C)]
    pub(crate) struct ENGINE {
        _private: [u8; 0],
    }

    /// `EVP_PKEY_METHOD` (opaque).
    #[repr(C)]
    pub(crate) struct EVP_PKEY_METHOD {
        _private: [u8; 0],
    }

    pub(crate) type SignInit = unsafe extern "C" fn(ctx: *mut EVP_PKEY_CTX) -> c_int;
    pub(crate) type Sign = unsafe extern "C" fn(
        ctx: *mut EVP_PKEY_CTX,
        sig: *mut u8,
        siglen: *mut size_t,
        tbs: *const u8,
        tbslen: size_t,
    ) -> c_int;
    pub(crate) type PkeyMeths = unsafe extern "C" fn(
        e: *mut ENGINE,
        pmeth: *mut *mut EVP_PKEY_METHOD,
        nids: *mut *const c_int,
        nid: c_int,
    ) -> c_int;
    /// `CRYPTO_EX_INDEX_EVP_PKEY`.
    pub(crate) const CRYPTO_EX_INDEX_EVP_PKEY: c_int = 17;
    /// `EVP_PKEY_FLAG_AUTOARGLEN`: OpenSSL answers "how long is the signature" itself.
    pub(crate) const EVP_PKEY_FLAG_AUTOARGLEN: c_int = 2;
    /// `RSA_PSS_SALTLEN_DIGEST`: salt as long as the hash (what TLS uses).
    pub(crate) const RSA_PSS_SALTLEN_DIGEST: c_int = -1;

    unsafe extern "C" {
        pub(crate) fn ENGINE_new() -> *mut ENGINE;
        pub(crate) fn ENGINE_free(e: *mut ENGINE) -> c_int;
        pub(crate) fn ENGINE_set_id(e: *mut ENGINE, id: *const c_char) -> c_int;
        pub(crate) fn ENGINE_set_name(e: *mut ENGINE, name: *const c_char) -> c_int;
        pub(crate) fn ENGINE_set_pkey_meths(e: *mut ENGINE, f: Option<PkeyMeths>) -> c_int;
        pub(crate) fn ENGINE_add(e: *mut ENGINE) -> c_int;
        pub(crate) fn ENGINE_init(e: *mut ENGINE) -> c_int;
        pub(crate) fn EVP_PKEY_set1_engine(pkey: *mut EVP_PKEY, e: *mut ENGINE) -> c_int;

        pub(crate) fn EVP_PKEY_meth_new(id: c_int, flags: c_int) -> *mut EVP_PKEY_METHOD;
        pub(crate) fn EVP_PKEY_meth_find(kind: c_int) -> *const EVP_PKEY_METHOD;
        pub(crate) fn EVP_PKEY_meth_copy(dst: *mut EVP_PKEY_METHOD, src: *const EVP_PKEY_METHOD);
        pub(crate) fn EVP_PKEY_meth_get_sign(
            pmeth: *const EVP_PKEY_METHOD,
            sign_init: *mut Option<SignInit>,
            sign: *mut Option<Sign>,
        );
        pub(crate) fn EVP_PKEY_meth_set_sign(
            pmeth: *mut EVP_PKEY_METHOD,
            sign_init: Option<SignInit>,
            sign: Option<Sign>,
        );

        pub(crate) fn EVP_PKEY_CTX_get0_pkey(ctx: *mut EVP_PKEY_CTX) -> *mut EVP_PKEY;
        pub(crate) fn EVP_PKEY_CTX_get_signature_md(
            ctx: *mut EVP_PKEY_CTX,
            md: *mut *const EVP_MD,
        ) -> c_int;
        pub(crate) fn EVP_PKEY_CTX_get_rsa_pss_saltlen(
            ctx: *mut EVP_PKEY_CTX,
            len: *mut c_int,
        ) -> c_int;
        pub(crate) fn EVP_PKEY_set_ex_data(
            key: *mut EVP_PKEY,
            idx: c_int,
            arg: *mut c_void,
        ) -> c_int;
        pub(crate) fn EVP_PKEY_get_ex_data(key: *const EVP_PKEY, idx: c_int) -> *mut c_void;
    }
}
