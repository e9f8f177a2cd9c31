//! The OpenSSL functions this crate needs that `openssl-sys` does not declare (OpenSSL 3.0
//! and later export them; signatures follow the 3.0 headers).

unsafe extern "C" {
    /// As `SSL_use_cert_and_key`, for a context.
    pub(crate) fn SSL_CTX_use_cert_and_key(
        ctx: *mut openssl_sys::SSL_CTX,
        x509: *mut openssl_sys::X509,
        pkey: *mut openssl_sys::EVP_PKEY,
        chain: *mut openssl_sys::stack_st_X509,
        replace: libc::c_int,
    ) -> libc::c_int;
    /// OpenSSL 3.0 (`openssl-sys` does not declare it): sets certificate, key and chain in one
    /// call with one key check.
    pub(crate) fn SSL_use_cert_and_key(
        ssl: *mut openssl_sys::SSL,
        x509: *mut openssl_sys::X509,
        pkey: *mut openssl_sys::EVP_PKEY,
        chain: *mut openssl_sys::stack_st_X509,
        replace: libc::c_int,
    ) -> libc::c_int;
}
