//! Connection and context settings remote keys need: async mode and its wait descriptors,
//! and ECDHE-only TLS 1.2 suites.

#[cfg(not(awslc))]
use super::ffi;
#[cfg(not(awslc))]
use super::ffi::{
    NID_KX_ANY, NID_KX_RSA, SSL_CIPHER_get_kx_nid, SSL_CTX_get_ciphers, SSL_get_ciphers,
};
use crate::TlsError;
use foreign_types::ForeignTypeRef;
#[cfg(not(awslc))]
use openssl::ssl::{ErrorCode, SslMode};
use openssl::ssl::{SslContextBuilder, SslRef};
#[cfg(awslc)]
use openssl_sys::{
    NID_kx_any as NID_KX_ANY, NID_kx_rsa as NID_KX_RSA, SSL_CIPHER_get_kx_nid, SSL_CTX_get_ciphers,
    SSL_get_ciphers,
};
use std::ffi::CStr;
use std::os::fd::RawFd;

/// Removes static-RSA key exchange (`kRSA`) from the context's TLS 1.2 cipher list.
///
/// With static RSA the client encrypts the premaster secret to the certificate's key and the
/// server decrypts it. OpenSSL 3.0 does that decryption outside the key methods a remote key can
/// hook, so such handshakes would fail; ECDHE suites only ever ask the key to sign. TLS 1.3
/// suites are unaffected (they never use RSA key exchange).
pub fn restrict_to_ecdhe(ctx: &mut SslContextBuilder) -> Result<(), TlsError> {
    // SAFETY: the context is live; the stack it returns belongs to the context and is read
    // before the context changes.
    let names = unsafe { ecdhe_names(SSL_CTX_get_ciphers(ctx.as_ptr())) };
    ctx.set_cipher_list(&cipher_list(&names))?;
    Ok(())
}

/// As [`restrict_to_ecdhe`], for one connection (its certificate chosen at the ClientHello,
/// before the cipher suite is).
pub fn restrict_ssl_to_ecdhe(ssl: &mut SslRef) -> Result<(), TlsError> {
    // SAFETY: the connection is live; the stack it returns belongs to it (or its context) and
    // is read before anything changes.
    let names = unsafe { ecdhe_names(SSL_get_ciphers(ssl.as_ptr())) };
    ssl.set_cipher_list(&cipher_list(&names))?;
    Ok(())
}

fn cipher_list(names: &[String]) -> String {
    if names.is_empty() {
        // Only TLS 1.3 suites (or only static RSA) were configured: keep TLS 1.2 ECDHE at least.
        "ECDHE:!aNULL".to_string()
    } else {
        names.join(":")
    }
}

/// The TLS 1.2 suites in `stack` that do not use static RSA key exchange, in order.
///
/// # Safety
/// `stack` must be NULL or a live `STACK_OF(SSL_CIPHER)`.
unsafe fn ecdhe_names(stack: *mut openssl_sys::stack_st_SSL_CIPHER) -> Vec<String> {
    let mut names = Vec::new();
    if stack.is_null() {
        return names;
    }
    let stack = stack.cast::<openssl_sys::OPENSSL_STACK>();
    // SAFETY: the caller guarantees a live stack; its elements are SSL_CIPHER pointers owned
    // by OpenSSL, and the names are static strings.
    unsafe {
        for i in 0..openssl_sys::OPENSSL_sk_num(stack) {
            let c = openssl_sys::OPENSSL_sk_value(stack, i) as *const openssl_sys::SSL_CIPHER;
            if c.is_null() {
                continue;
            }
            let kx = SSL_CIPHER_get_kx_nid(c);
            if kx == NID_KX_RSA || kx == NID_KX_ANY {
                continue;
            }
            let name = openssl_sys::SSL_CIPHER_get_name(c);
            if !name.is_null() {
                names.push(CStr::from_ptr(name).to_string_lossy().into_owned());
            }
        }
    }
    names
}

/// Turns on async mode for handshakes made from this context: a remote operation pauses the
/// handshake (OpenSSL: `SSL_ERROR_WANT_ASYNC`, an ASYNC job; AWS-LC:
/// `SSL_ERROR_WANT_PRIVATE_KEY_OPERATION`, the private-key method's retry) instead of blocking
/// the thread. Drive such
/// handshakes with a driver that resumes them ([`is_paused`], [`wait_fd`]; `edgetls_engine::accept`).
pub fn enable_async(ctx: &mut SslContextBuilder) {
    #[cfg(awslc)]
    crate::awslc::key_method::enable_async(ctx);
    #[cfg(not(awslc))]
    ctx.set_mode(SslMode::from_bits_retain(ffi::SSL_MODE_ASYNC as _));
}

/// Turns on async mode for one connection (when its context does not have it).
pub fn enable_async_ssl(ssl: &mut SslRef) {
    #[cfg(awslc)]
    crate::awslc::key_method::enable_async_ssl(ssl);
    #[cfg(not(awslc))]
    // SAFETY: SSL_ctrl(SSL_CTRL_MODE) on a live SSL only sets flag bits.
    unsafe {
        openssl_sys::SSL_ctrl(
            ssl.as_ptr(),
            openssl_sys::SSL_CTRL_MODE,
            ffi::SSL_MODE_ASYNC as _,
            std::ptr::null_mut(),
        );
    }
}

/// Whether a handshake step's error means it paused for a remote answer (OpenSSL's
/// `SSL_ERROR_WANT_ASYNC`): call it again on this thread when [`wait_fd`] turns readable.
#[cfg(not(awslc))]
pub fn is_paused(e: &openssl::ssl::Error) -> bool {
    e.code() == ErrorCode::from_raw(ffi::SSL_ERROR_WANT_ASYNC)
}

/// Whether a handshake step's error means it paused for a remote answer (AWS-LC's
/// `SSL_ERROR_WANT_PRIVATE_KEY_OPERATION`): call it again when [`wait_fd`] turns readable.
#[cfg(awslc)]
pub fn is_paused(e: &openssl::ssl::Error) -> bool {
    crate::awslc::key_method::is_paused(e)
}

/// The descriptor that turns readable when the paused handshake on `ssl` can go on (the
/// answer arrived, or [`wake`](crate::remote_key::wake) was called). It belongs to the
/// connection: open, and the same, until the SSL is freed — never free an SSL whose handshake
/// is paused.
#[cfg(awslc)]
pub fn wait_fd(ssl: &SslRef) -> Result<RawFd, TlsError> {
    crate::awslc::key_method::wait_fd(ssl)
}

/// The descriptor that turns readable when the paused handshake on `ssl` can go on (the
/// answer arrived, or [`wake`](crate::remote_key::wake) was called). It belongs to the
/// connection: open, and the same, until the SSL is freed — never free an SSL whose handshake
/// is paused.
#[cfg(not(awslc))]
pub fn wait_fd(ssl: &SslRef) -> Result<RawFd, TlsError> {
    let mut fds = [0 as RawFd; 4];
    let mut n: libc::size_t = 0;
    // SAFETY: the SSL is live; the first call asks for the count, the second fills our array
    // (checked to be large enough).
    unsafe {
        if ffi::SSL_get_all_async_fds(ssl.as_ptr(), std::ptr::null_mut(), &mut n) != 1 || n == 0 {
            return Err(TlsError::Async(
                "a paused job without a wait descriptor".into(),
            ));
        }
        if n > fds.len() {
            return Err(TlsError::Async(format!("{n} wait descriptors")));
        }
        ffi::SSL_get_all_async_fds(ssl.as_ptr(), fds.as_mut_ptr(), &mut n);
    }
    Ok(fds[0])
}
