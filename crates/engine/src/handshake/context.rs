//! Context settings that remote keys need: ECDHE-only TLS 1.2 suites and async mode.

use crate::error::EngineError;
use crate::ffi;
use crate::keys::key::remote_pkey;
use crate::keys::remote::RemoteKey;
use foreign_types::ForeignTypeRef;
use openssl::ssl::{SslContextBuilder, SslMode, SslRef};
use openssl::x509::X509Ref;
use std::ffi::CStr;
use std::sync::Arc;

/// Serves `cert` from this context with its key on `remote`: sets the certificate and the
/// remote key, checks that they match, and removes static-RSA suites (see
/// [`restrict_to_ecdhe`]). The one call a context with a remote key needs.
pub fn set_remote_key(
    ctx: &mut SslContextBuilder,
    cert: &X509Ref,
    remote: Arc<dyn RemoteKey>,
) -> Result<(), EngineError> {
    ctx.set_certificate(cert)?;
    let key = remote_pkey(cert, remote)?;
    ctx.set_private_key(&key)?;
    ctx.check_private_key()?;
    restrict_to_ecdhe(ctx)
}

/// Removes static-RSA key exchange (`kRSA`) from the context's TLS 1.2 cipher list.
///
/// With static RSA the client encrypts the premaster secret to the certificate's key and the
/// server decrypts it. OpenSSL 3.0 does that decryption outside the key methods a remote key can
/// hook, so such handshakes would fail; ECDHE suites only ever ask the key to sign. TLS 1.3
/// suites are unaffected (they never use RSA key exchange).
pub fn restrict_to_ecdhe(ctx: &mut SslContextBuilder) -> Result<(), EngineError> {
    // SAFETY: the context is live; the stack it returns belongs to the context and is read
    // before the context changes.
    let names = unsafe { ecdhe_names(ffi::SSL_CTX_get_ciphers(ctx.as_ptr())) };
    ctx.set_cipher_list(&cipher_list(&names))?;
    Ok(())
}

/// As [`restrict_to_ecdhe`], for one connection (its certificate chosen at the ClientHello,
/// before the cipher suite is).
pub fn restrict_ssl_to_ecdhe(ssl: &mut SslRef) -> Result<(), EngineError> {
    // SAFETY: the connection is live; the stack it returns belongs to it (or its context) and
    // is read before anything changes.
    let names = unsafe { ecdhe_names(ffi::SSL_get_ciphers(ssl.as_ptr())) };
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
            let kx = ffi::SSL_CIPHER_get_kx_nid(c);
            if kx == ffi::NID_KX_RSA || kx == ffi::NID_KX_ANY {
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

/// Turns on OpenSSL's async mode for handshakes made from this context: a remote operation
/// pauses the handshake (`SSL_ERROR_WANT_ASYNC`) instead of blocking the thread. Drive such
/// handshakes with [`crate::accept`].
pub fn enable_async(ctx: &mut SslContextBuilder) {
    ctx.set_mode(SslMode::from_bits_retain(ffi::SSL_MODE_ASYNC as _));
}

/// Turns on async mode for one connection (when its context does not have it).
pub fn enable_async_ssl(ssl: &mut SslRef) {
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
