//! Key-exchange groups on OpenSSL: whether the library has one, and the one a handshake
//! negotiated.

use openssl::ssl::{SslContext, SslMethod, SslRef};

/// Whether the library can negotiate the group `name` (asked of a scratch context).
pub fn has(name: &str) -> bool {
    if name.is_empty() || name.contains([':', '\0']) || name.starts_with('?') {
        return false;
    }
    SslContext::builder(SslMethod::tls())
        .and_then(|mut b| b.set_groups_list(name))
        .is_ok()
}

/// The key-exchange group `ssl`'s handshake negotiated, as a [`label`](crate::groups::label);
/// `none` when there was none (a resumption without one, TLS 1.2 with RSA key exchange).
pub fn negotiated(ssl: &SslRef) -> &'static str {
    #[cfg(awslc)]
    {
        use foreign_types::ForeignTypeRef;
        // SAFETY: reads a live SSL; 0 when no group was negotiated.
        let id = unsafe { openssl_sys::SSL_get_group_id(ssl.as_ptr()) };
        if id == 0 {
            return "none";
        }
        // SAFETY: a static string of the library's, or null for an unknown id.
        let name = unsafe { openssl_sys::SSL_get_group_name(id) };
        if name.is_null() {
            return "other";
        }
        // SAFETY: checked non-null; NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr(name) };
        crate::groups::label(&name.to_string_lossy())
    }
    #[cfg(ossl320)]
    {
        use foreign_types::ForeignTypeRef;
        // SAFETY: reads a live SSL; the name is a static string of the library's (or null).
        let name = unsafe { openssl_sys::SSL_get0_group_name(ssl.as_ptr()) };
        if name.is_null() {
            return "none";
        }
        // SAFETY: checked non-null; NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr(name) };
        crate::groups::label(&name.to_string_lossy())
    }
    #[cfg(not(any(ossl320, awslc)))]
    {
        use foreign_types::ForeignTypeRef;
        // SAFETY: SSL_get_negotiated_group (a control code on 3.0/3.1) reads a live SSL.
        let nid = unsafe {
            openssl_sys::SSL_ctrl(
                ssl.as_ptr(),
                super::ffi::SSL_CTRL_GET_NEGOTIATED_GROUP,
                0,
                std::ptr::null_mut(),
            )
        };
        if nid <= 0 {
            return "none";
        }
        match openssl::nid::Nid::from_raw(nid as i32).short_name() {
            Ok(name) => crate::groups::label(name),
            Err(_) => "other",
        }
    }
}
