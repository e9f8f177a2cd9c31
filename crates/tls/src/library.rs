//! Which TLS library this build runs on, and the few calls other crates need whose form
//! differs between libraries.

use foreign_types::ForeignTypeRef;
use openssl::cipher::{Cipher, CipherRef};
use openssl::ssl::{SslRef, SslSessionRef};
use std::sync::OnceLock;

/// The library's name: `OpenSSL` or `AWS-LC`.
pub const NAME: &str = if cfg!(awslc) { "AWS-LC" } else { "OpenSSL" };

/// Whether the library runs handshakes on ASYNC jobs (OpenSSL's remote keys): AWS-LC has none,
/// its remote keys pause through the private-key method on the caller's own stack.
pub const HAS_ASYNC_JOBS: bool = !cfg!(awslc);

/// The library's own version string (`OpenSSL 3.0.17 …`, or AWS-LC's
/// `OpenSSL 1.1.1 (compatible; AWS-LC 1.73.0)`).
pub fn version() -> &'static str {
    openssl::version::version()
}

/// AES-CBC for a key of `key_len` bytes (16 or 32), looked up once: OpenSSL 3 otherwise
/// fetches the algorithm again on every use (≈ 1 µs).
pub fn aes_cbc(key_len: usize) -> Option<&'static CipherRef> {
    static CIPHERS: OnceLock<Option<(Cipher, Cipher)>> = OnceLock::new();
    let (aes128, aes256): (&'static CipherRef, &'static CipherRef) = if cfg!(awslc) {
        (Cipher::aes_128_cbc(), Cipher::aes_256_cbc())
    } else {
        let pair = CIPHERS.get_or_init(fetch_cbc).as_ref()?;
        (&pair.0, &pair.1)
    };
    match key_len {
        16 => Some(aes128),
        32 => Some(aes256),
        _ => None,
    }
}

#[cfg(not(awslc))]
fn fetch_cbc() -> Option<(Cipher, Cipher)> {
    Some((
        Cipher::fetch(None, "AES-128-CBC", None).ok()?,
        Cipher::fetch(None, "AES-256-CBC", None).ok()?,
    ))
}

#[cfg(awslc)]
fn fetch_cbc() -> Option<(Cipher, Cipher)> {
    None
}

/// Whether `session` was made by a TLS 1.3 handshake (its tickets are single use).
pub fn session_is_tls13(session: &SslSessionRef) -> bool {
    // SAFETY: reads the version of a live session.
    #[cfg(awslc)]
    let v = i32::from(unsafe { openssl_sys::SSL_SESSION_get_protocol_version(session.as_ptr()) });
    // SAFETY: as above.
    #[cfg(not(awslc))]
    let v = unsafe { openssl_sys::SSL_SESSION_get_protocol_version(session.as_ptr()) };
    v == openssl_sys::TLS1_3_VERSION
}

/// Whether the handshake on `ssl` has finished.
pub fn handshake_finished(ssl: &SslRef) -> bool {
    // SAFETY: reads the state of a live connection.
    unsafe { openssl_sys::SSL_is_init_finished(ssl.as_ptr()) == 1 }
}

/// What a TLS library error on a handshake says, in the library's own reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LibraryError {
    /// No cipher suite, group or signature algorithm in common with the client.
    NoSharedCipher,
    /// ALPN: no protocol in common (with a strict policy).
    NoApplicationProtocol,
    /// No TLS version in common.
    Version,
    /// The client's certificate was missing or did not verify.
    ClientCertificate,
    /// Another TLS protocol error (malformed records, unexpected messages).
    Protocol,
    /// The client sent an alert.
    PeerAlert,
    /// Anything else (outside the TLS library's SSL part).
    Other,
}

/// Reason codes (`ERR_GET_REASON`) of the SSL library, per library.
mod reason {
    #[cfg(not(awslc))]
    pub(super) const NO_SHARED_CIPHER: &[i32] = &[193, 410, 376, 118];
    #[cfg(awslc)]
    pub(super) const NO_SHARED_CIPHER: &[i32] = &[
        openssl_sys::SSL_R_NO_SHARED_CIPHER,
        openssl_sys::SSL_R_NO_SHARED_GROUP,
        openssl_sys::SSL_R_NO_COMMON_SIGNATURE_ALGORITHMS,
        openssl_sys::SSL_R_NO_CIPHERS_AVAILABLE,
    ];
    #[cfg(not(awslc))]
    pub(super) const NO_APPLICATION_PROTOCOL: i32 = 235;
    #[cfg(awslc)]
    pub(super) const NO_APPLICATION_PROTOCOL: i32 = openssl_sys::SSL_R_NO_APPLICATION_PROTOCOL;
    #[cfg(not(awslc))]
    pub(super) const VERSION: &[i32] = &[258, 396, 166, 191];
    #[cfg(awslc)]
    pub(super) const VERSION: &[i32] = &[
        openssl_sys::SSL_R_UNSUPPORTED_PROTOCOL,
        openssl_sys::SSL_R_VERSION_TOO_LOW,
        openssl_sys::SSL_R_VERSION_TOO_HIGH,
        openssl_sys::SSL_R_NO_PROTOCOLS_AVAILABLE,
    ];
    #[cfg(not(awslc))]
    pub(super) const CLIENT_CERTIFICATE: &[i32] = &[199, 134];
    #[cfg(awslc)]
    pub(super) const CLIENT_CERTIFICATE: &[i32] = &[
        openssl_sys::SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE,
        openssl_sys::SSL_R_CERTIFICATE_VERIFY_FAILED,
    ];
    /// The SSL library's code (`ERR_GET_LIB`).
    #[cfg(not(awslc))]
    pub(super) const LIB_SSL: i32 = 20;
    #[cfg(awslc)]
    pub(super) const LIB_SSL: i32 = openssl_sys::ERR_LIB_SSL;
}

/// What the first error of a failed handshake step says.
pub fn classify(e: &openssl::error::Error) -> LibraryError {
    let r = e.reason_code();
    if e.library_code() != reason::LIB_SSL {
        LibraryError::Other
    } else if reason::NO_SHARED_CIPHER.contains(&r) {
        LibraryError::NoSharedCipher
    } else if r == reason::NO_APPLICATION_PROTOCOL {
        LibraryError::NoApplicationProtocol
    } else if reason::VERSION.contains(&r) {
        LibraryError::Version
    } else if reason::CLIENT_CERTIFICATE.contains(&r) {
        LibraryError::ClientCertificate
    } else if r > openssl_sys::SSL_AD_REASON_OFFSET {
        // Alerts received from the peer are reported as 1000 + the alert number.
        LibraryError::PeerAlert
    } else {
        LibraryError::Protocol
    }
}
