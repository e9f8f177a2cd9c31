//! Connection and context settings whose call differs between libraries (rust-openssl leaves
//! several out on AWS-LC), so that the policy and the session cache set them the same way on
//! every library. A setting a library cannot make is a clear error
//! ([`TlsError::Unsupported`]), never silently dropped.

use crate::TlsError;
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_void};
use openssl::error::ErrorStack;
use openssl::ssl::{SslContextBuilder, SslContextRef, SslRef};
use openssl::x509::X509CrlRef;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilderRef};
use std::ffi::CString;

#[cfg(not(awslc))]
use crate::ossl::ffi as lib;
#[cfg(awslc)]
use openssl_sys as lib;

fn check(ok: c_int) -> Result<(), TlsError> {
    if ok == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get().into())
    }
}

fn c_string(what: &str, s: &str) -> Result<CString, TlsError> {
    CString::new(s).map_err(|_| TlsError::Unsupported(format!("{what}: a NUL byte in {s:?}")))
}

/// The TLS 1.3 cipher suites (`TLS_AES_128_GCM_SHA256:…`).
pub fn set_ciphersuites(ctx: &mut SslContextBuilder, list: &str) -> Result<(), TlsError> {
    let list = c_string("ciphersuites", list)?;
    // SAFETY: the context is live; the library copies the NUL-terminated list.
    check(unsafe { openssl_sys::SSL_CTX_set_ciphersuites(ctx.as_ptr(), list.as_ptr()) })
}

/// What a connection switched to another context (`SslRef::set_ssl_context`) does not take
/// from it on every library: the TLS 1.2 ciphers, TLS 1.3 suites and the signature algorithms
/// asked of client certificates that context was built with. OpenSSL reads them from the
/// context the connection has now; AWS-LC copies them into the connection when it is made and
/// keeps them across a switch, so [`apply`](Self::apply) sets them on the connection there.
#[derive(Debug, Default)]
pub struct ContextSwitch {
    #[cfg_attr(not(awslc), allow(dead_code))]
    ciphers: Option<CString>,
    #[cfg_attr(not(awslc), allow(dead_code))]
    suites: Option<CString>,
    #[cfg_attr(not(awslc), allow(dead_code))]
    client_sigalgs: Vec<u16>,
}

impl ContextSwitch {
    /// The settings a context was built with (as given to [`set_ciphersuites`],
    /// [`set_client_sigalgs`] and `set_cipher_list`).
    pub fn new(
        ciphers: Option<&str>,
        suites: Option<&str>,
        client_sigalgs: Option<&str>,
    ) -> Result<ContextSwitch, TlsError> {
        let client_sigalgs = match client_sigalgs {
            Some(list) => sigalg_codes(list)?,
            None => Vec::new(),
        };
        Ok(ContextSwitch {
            ciphers: ciphers.map(|c| c_string("ciphers", c)).transpose()?,
            suites: suites.map(|c| c_string("ciphersuites", c)).transpose()?,
            client_sigalgs,
        })
    }

    /// Sets them on `ssl`, just switched to the context they were built with.
    pub fn apply(&self, ssl: &mut SslRef) -> Result<(), TlsError> {
        #[cfg(awslc)]
        // SAFETY: the SSL is live; the library copies the lists.
        unsafe {
            if let Some(c) = &self.ciphers {
                check(openssl_sys::SSL_set_cipher_list(ssl.as_ptr(), c.as_ptr()))?;
            }
            if let Some(c) = &self.suites {
                check(openssl_sys::SSL_set_ciphersuites(ssl.as_ptr(), c.as_ptr()))?;
            }
            if !self.client_sigalgs.is_empty() {
                let a = &self.client_sigalgs;
                check(openssl_sys::SSL_set_verify_algorithm_prefs(
                    ssl.as_ptr(),
                    a.as_ptr(),
                    a.len(),
                ))?;
            }
        }
        #[cfg(not(awslc))]
        let _ = ssl;
        Ok(())
    }
}

/// The code points of a list of signature algorithms.
fn sigalg_codes(list: &str) -> Result<Vec<u16>, TlsError> {
    list.split(':')
        .map(|name| {
            sigalg_code(name).ok_or_else(|| {
                TlsError::Unsupported(format!("unknown signature algorithm {name:?}"))
            })
        })
        .collect()
}

/// The signature algorithms the server signs with (`ECDSA+SHA256:RSA-PSS+SHA256`).
pub fn set_sigalgs(ctx: &mut SslContextBuilder, list: &str) -> Result<(), TlsError> {
    let list = c_string("sigalgs", list)?;
    // SAFETY: as above.
    #[cfg(awslc)]
    let ok = unsafe { openssl_sys::SSL_CTX_set1_sigalgs_list(ctx.as_ptr(), list.as_ptr()) };
    // SAFETY: SSL_CTX_set1_sigalgs_list is this control code on OpenSSL; as above.
    #[cfg(not(awslc))]
    let ok = unsafe {
        openssl_sys::SSL_CTX_ctrl(ctx.as_ptr(), 98, 0, list.as_ptr() as *mut c_void) as c_int
    };
    check(ok)
}

/// The signature algorithms asked of client certificates, as OpenSSL writes them: IANA names
/// (`ecdsa_secp256r1_sha256`) or `ALG+HASH` (`ECDSA+SHA256`, `RSA-PSS+SHA256`).
pub fn set_client_sigalgs(ctx: &mut SslContextBuilder, list: &str) -> Result<(), TlsError> {
    #[cfg(awslc)]
    {
        // AWS-LC's own list parser sets the signing list too: this one sets only what is
        // asked of clients (the verify preferences).
        let codes = sigalg_codes(list)?;
        // SAFETY: the context is live; the library copies the array.
        check(unsafe {
            openssl_sys::SSL_CTX_set_verify_algorithm_prefs(
                ctx.as_ptr(),
                codes.as_ptr(),
                codes.len(),
            )
        })
    }
    #[cfg(not(awslc))]
    {
        let list = c_string("client-sigalgs", list)?;
        // SAFETY: SSL_CTX_set1_client_sigalgs_list (this control code) copies the NUL-terminated
        // list; the context is live and being built.
        check(unsafe {
            openssl_sys::SSL_CTX_ctrl(ctx.as_ptr(), 102, 0, list.as_ptr() as *mut c_void) as c_int
        })
    }
}

/// The TLS code point of a signature algorithm as OpenSSL's lists name it.
fn sigalg_code(name: &str) -> Option<u16> {
    const IANA: [(&str, u16); 14] = [
        ("rsa_pkcs1_sha1", 0x0201),
        ("rsa_pkcs1_sha256", 0x0401),
        ("rsa_pkcs1_sha384", 0x0501),
        ("rsa_pkcs1_sha512", 0x0601),
        ("ecdsa_sha1", 0x0203),
        ("ecdsa_secp256r1_sha256", 0x0403),
        ("ecdsa_secp384r1_sha384", 0x0503),
        ("ecdsa_secp521r1_sha512", 0x0603),
        ("rsa_pss_rsae_sha256", 0x0804),
        ("rsa_pss_rsae_sha384", 0x0805),
        ("rsa_pss_rsae_sha512", 0x0806),
        ("ed25519", 0x0807),
        ("rsa_pss_pss_sha256", 0x0809),
        ("rsa_pss_pss_sha384", 0x080a),
    ];
    let lower = name.trim().to_ascii_lowercase();
    if let Some((_, c)) = IANA.iter().find(|(n, _)| *n == lower) {
        return Some(*c);
    }
    let (alg, hash) = lower.split_once('+')?;
    let h = match hash {
        "sha1" => 0x02,
        "sha256" => 0x04,
        "sha384" => 0x05,
        "sha512" => 0x06,
        _ => return None,
    };
    match alg {
        "rsa" => Some(h << 8 | 0x01),
        "ecdsa" => Some(h << 8 | 0x03),
        "rsa-pss" | "pss" if h >= 0x04 => Some(0x0800 | h),
        _ => None,
    }
}

/// The key-exchange groups of one connection (a list [`groups::resolve`](crate::groups::resolve)
/// made ready).
pub fn set_groups(ssl: &mut SslRef, list: &std::ffi::CStr) -> Result<(), TlsError> {
    // SAFETY: the library copies the NUL-terminated list; the SSL is live.
    #[cfg(awslc)]
    let ok = unsafe { openssl_sys::SSL_set1_groups_list(ssl.as_ptr(), list.as_ptr()) };
    // SAFETY: SSL_set1_groups_list is this control code on OpenSSL; as above.
    #[cfg(not(awslc))]
    let ok = unsafe {
        openssl_sys::SSL_ctrl(
            ssl.as_ptr(),
            openssl_sys::SSL_CTRL_SET_GROUPS_LIST,
            0,
            list.as_ptr() as *mut c_void,
        ) as c_int
    };
    check(ok)
}

/// The deepest client-certificate chain verified on one connection.
pub fn set_verify_depth(ssl: &mut SslRef, depth: u32) {
    // SAFETY: sets an integer on a live SSL.
    unsafe {
        lib::SSL_set_verify_depth(ssl.as_ptr(), c_int::try_from(depth).unwrap_or(c_int::MAX))
    };
}

/// How many TLS 1.3 tickets one connection is sent. AWS-LC sets the count per context only:
/// there a count other than 0 (no tickets) on one connection is an error.
pub fn set_tls13_tickets(ssl: &mut SslRef, n: usize) -> Result<(), TlsError> {
    check_tls13_tickets_per_connection(n)?;
    #[cfg(awslc)]
    return crate::tickets::disable_for(ssl);
    #[cfg(not(awslc))]
    Ok(ssl.set_num_tickets(n)?)
}

/// Whether one connection can be given `n` TLS 1.3 tickets ([`set_tls13_tickets`]): check it
/// when the configuration is read.
pub fn check_tls13_tickets_per_connection(n: usize) -> Result<(), TlsError> {
    if cfg!(awslc) && n != 0 {
        return Err(TlsError::Unsupported(format!(
            "tls13_tickets = {n} on a rule: AWS-LC sets the ticket count per listener only \
             (0, no tickets, works on a rule)"
        )));
    }
    Ok(())
}

/// The store client certificates are verified with.
pub fn set_verify_store(ctx: &mut SslContextBuilder, store: X509Store) -> Result<(), TlsError> {
    #[cfg(not(awslc))]
    return Ok(ctx.set_verify_cert_store(store)?);
    // SAFETY: the context is live; AWS-LC takes its own reference to the store, ours is
    // released when `store` drops.
    #[cfg(awslc)]
    check(unsafe { openssl_sys::SSL_CTX_set1_verify_cert_store(ctx.as_ptr(), store.as_ptr()) })
}

/// Adds a CRL to a store being built.
pub fn add_crl(store: &mut X509StoreBuilderRef, crl: &X509CrlRef) -> Result<(), TlsError> {
    // SAFETY: both live; the store takes its own reference to the CRL.
    check(unsafe { lib::X509_STORE_add_crl(store.as_ptr(), crl.as_ptr()) })
}

/// Adds a hashed directory of PEM CA certificates and CRLs (`c_rehash` names) to a store.
pub fn add_hash_dir(store: &mut X509StoreBuilderRef, dir: &str) -> Result<(), TlsError> {
    let lookup = store.add_lookup(X509Lookup::hash_dir())?;
    #[cfg(not(awslc))]
    return Ok(lookup.add_dir(dir, openssl::ssl::SslFiletype::PEM)?);
    #[cfg(awslc)]
    {
        let dir = c_string("a CA directory", dir)?;
        // SAFETY: the lookup belongs to the live store; AWS-LC copies the path.
        check(unsafe {
            openssl_sys::X509_LOOKUP_add_dir(
                lookup.as_ptr(),
                dir.as_ptr(),
                openssl_sys::X509_FILETYPE_PEM,
            )
        })
    }
}

/// How long sessions in the context's cache stay resumable, seconds.
pub fn set_session_timeout(ctx: &mut SslContextBuilder, seconds: u32) {
    // SAFETY: sets an integer on a live context.
    unsafe { lib::SSL_CTX_set_timeout(ctx.as_ptr(), seconds as _) };
}

/// The session-ID context of one connection (sessions resume only where it matches).
pub fn set_session_id_context(ssl: &mut SslRef, sid: &[u8]) -> Result<(), TlsError> {
    // SAFETY: the SSL is live; the library copies at most 32 bytes (it refuses more).
    check(unsafe { lib::SSL_set_session_id_context(ssl.as_ptr(), sid.as_ptr(), sid.len() as _) })
}

/// The counters of a context's session cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCacheCounts {
    /// Sessions in the cache now.
    pub sessions: u64,
    /// Resumptions from the cache.
    pub hits: u64,
    /// Session IDs offered and not found.
    pub misses: u64,
    /// Sessions found but expired.
    pub timeouts: u64,
    /// Sessions evicted because the cache was full.
    pub evicted: u64,
}

/// The counters of `ctx`'s session cache.
pub fn session_cache_counts(ctx: &SslContextRef) -> SessionCacheCounts {
    let c = ctx.as_ptr();
    // SAFETY: read-only queries on a live context.
    #[cfg(awslc)]
    unsafe {
        let n = |v: c_int| u64::try_from(v).unwrap_or(0);
        SessionCacheCounts {
            sessions: openssl_sys::SSL_CTX_sess_number(c) as u64,
            hits: n(openssl_sys::SSL_CTX_sess_hits(c)),
            misses: n(openssl_sys::SSL_CTX_sess_misses(c)),
            timeouts: n(openssl_sys::SSL_CTX_sess_timeouts(c)),
            evicted: n(openssl_sys::SSL_CTX_sess_cache_full(c)),
        }
    }
    #[cfg(not(awslc))]
    {
        // SSL_CTX_sess_* are these control codes on OpenSSL.
        let get = |cmd| {
            // SAFETY: a read-only SSL_CTX_ctrl query on a live context.
            let v = unsafe { openssl_sys::SSL_CTX_ctrl(c, cmd, 0, std::ptr::null_mut()) };
            u64::try_from(v).unwrap_or(0)
        };
        SessionCacheCounts {
            sessions: get(20),
            hits: get(27),
            misses: get(29),
            timeouts: get(30),
            evicted: get(31),
        }
    }
}

/// NPN (TLS 1.2): advertise `wire` (length-prefixed protocol names) to clients that ask.
pub fn advertise_npn(ctx: &mut SslContextBuilder, wire: Vec<u8>) -> Result<(), TlsError> {
    type Wire = std::sync::Arc<Vec<u8>>;
    static INDEX: std::sync::OnceLock<
        Result<openssl::ex_data::Index<openssl::ssl::SslContext, Wire>, ErrorStack>,
    > = std::sync::OnceLock::new();
    let index = INDEX
        .get_or_init(openssl::ssl::SslContext::new_ex_index)
        .clone()?;
    let wire = Wire::new(wire);
    let arg = std::sync::Arc::as_ptr(&wire) as *mut c_void;
    ctx.set_ex_data(index, wire);
    // SAFETY: `arg` points at the wire list the context owns through its ex_data, so it lives
    // as long as the context; the callback only reads it.
    unsafe {
        #[cfg(awslc)]
        openssl_sys::SSL_CTX_set_next_protos_advertised_cb(ctx.as_ptr(), Some(npn_advertise), arg);
        #[cfg(not(awslc))]
        openssl_sys::SSL_CTX_set_next_protos_advertised_cb(ctx.as_ptr(), npn_advertise, arg);
    }
    Ok(())
}

/// NPN: hands the advertised list to the library.
extern "C" fn npn_advertise(
    _ssl: *mut openssl_sys::SSL,
    out: *mut *const libc::c_uchar,
    outlen: *mut libc::c_uint,
    arg: *mut c_void,
) -> c_int {
    if arg.is_null() || out.is_null() || outlen.is_null() {
        return openssl_sys::SSL_TLSEXT_ERR_NOACK;
    }
    // SAFETY: `arg` is the context's wire list (see `advertise_npn`), alive with the context;
    // out/outlen are the library's out-pointers.
    unsafe {
        let wire = &*(arg as *const Vec<u8>);
        *out = wire.as_ptr();
        *outlen = wire.len() as libc::c_uint;
    }
    openssl_sys::SSL_TLSEXT_ERR_OK
}

#[cfg(test)]
mod tests {
    use super::sigalg_code;

    #[test]
    fn signature_algorithms_are_read_in_both_of_openssls_spellings() {
        assert_eq!(sigalg_code("ecdsa_secp256r1_sha256"), Some(0x0403));
        assert_eq!(sigalg_code("ECDSA+SHA256"), Some(0x0403));
        assert_eq!(sigalg_code("RSA-PSS+SHA384"), Some(0x0805));
        assert_eq!(sigalg_code("rsa_pss_rsae_sha384"), Some(0x0805));
        assert_eq!(sigalg_code("RSA+SHA512"), Some(0x0601));
        assert_eq!(sigalg_code("ed25519"), Some(0x0807));
        assert_eq!(sigalg_code("RSA-PSS+SHA1"), None);
        assert_eq!(sigalg_code("DSA+SHA256"), None);
        assert_eq!(sigalg_code("nonsense"), None);
    }
}
