//! The OCSP-staple hook: the status callback staples the response offered for the chain the
//! library chose (the RSA or the ECDSA one of an entry). AWS-LC has the same callback
//! (`SSL_CTX_set_tlsext_status_cb`), run once the chain is chosen; it hands out its own copy
//! of the leaf, so chains are told apart by content there.

use crate::TlsError;
use foreign_types::ForeignTypeRef;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslContextBuilder, SslRef};
use openssl::x509::{X509, X509Ref};
use std::sync::{Arc, OnceLock};

/// The responses of the chains set on a connection, by their leaf.
#[derive(Default)]
struct Staples(Vec<(X509, Arc<[u8]>)>);

/// Whether `a` and `b` are the same certificate (the same object, or equal).
fn same(a: &X509Ref, b: &X509Ref) -> bool {
    a.as_ptr() == b.as_ptr() || {
        // SAFETY: both are live certificates; X509_cmp only reads them.
        unsafe { openssl_sys::X509_cmp(a.as_ptr(), b.as_ptr()) == 0 }
    }
}

fn staples_index() -> Result<Index<Ssl, Staples>, TlsError> {
    static I: OnceLock<Result<Index<Ssl, Staples>, openssl::error::ErrorStack>> = OnceLock::new();
    Ok(I.get_or_init(Ssl::new_ex_index).clone()?)
}

/// Offers `der` (a DER OCSP response) as the staple of the chain whose leaf is `leaf`, set on
/// `ssl`: stapled if the client asks for a status and that chain is the one served.
pub fn offer(ssl: &mut SslRef, leaf: &X509Ref, der: &Arc<[u8]>) -> Result<(), TlsError> {
    let index = staples_index()?;
    match ssl.ex_data_mut(index) {
        Some(s) => {
            s.0.retain(|(k, _)| !same(k, leaf));
            s.0.push((leaf.to_owned(), Arc::clone(der)));
        }
        None => ssl.set_ex_data(index, Staples(vec![(leaf.to_owned(), Arc::clone(der))])),
    }
    Ok(())
}

/// Makes contexts built with `b` staple what [`offer`] offered (call it on every context a
/// handshake may be switched to).
pub fn enable(b: &mut SslContextBuilder) -> Result<(), TlsError> {
    #[cfg(not(awslc))]
    b.set_status_callback(|ssl| {
        // Nothing may unwind into OpenSSL: a panic means no staple.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| staple(ssl))).unwrap_or(Ok(false))
    })?;
    // SAFETY: a plain function that never unwinds; no argument.
    #[cfg(awslc)]
    unsafe {
        openssl_sys::SSL_CTX_set_tlsext_status_cb(b.as_ptr(), Some(status_cb));
    }
    Ok(())
}

/// AWS-LC's status callback: `SSL_TLSEXT_ERR_OK` with a staple set, `NOACK` without.
#[cfg(awslc)]
unsafe extern "C" fn status_cb(ssl: *mut openssl_sys::SSL, _arg: *mut libc::c_void) -> libc::c_int {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: AWS-LC passes the live connection.
        let ssl = unsafe { SslRef::from_ptr_mut(ssl) };
        match staple(ssl) {
            Ok(true) => openssl_sys::SSL_TLSEXT_ERR_OK,
            _ => openssl_sys::SSL_TLSEXT_ERR_NOACK,
        }
    }))
    .unwrap_or(openssl_sys::SSL_TLSEXT_ERR_NOACK)
}

/// The status callback: staples the response of the chain OpenSSL chose, if it has one.
fn staple(ssl: &mut SslRef) -> Result<bool, openssl::error::ErrorStack> {
    let Some(chosen) = ssl.certificate() else {
        return Ok(false);
    };
    let der = staples_index()
        .ok()
        .and_then(|i| ssl.ex_data(i))
        .and_then(|s| s.0.iter().find(|(k, _)| same(k, chosen)))
        .map(|(_, der)| Arc::clone(der));
    let Some(der) = der else { return Ok(false) };
    #[cfg(not(awslc))]
    return ssl.set_ocsp_status(&der).map(|()| true);
    // SAFETY: AWS-LC copies the response.
    #[cfg(awslc)]
    unsafe {
        if openssl_sys::SSL_set_ocsp_response(ssl.as_ptr(), der.as_ptr(), der.len()) == 1 {
            Ok(true)
        } else {
            Err(openssl::error::ErrorStack::get())
        }
    }
}
