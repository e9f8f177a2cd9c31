//! The crate's one error type.

/// What can go wrong at the seam itself (the hooks report handshake failures as
/// [`Refusal`](crate::Refusal)s on the connection, not as errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The TLS library failed (out of memory allocating a slot, a call refused).
    #[error("TLS library: {0}")]
    Library(#[from] openssl::error::ErrorStack),
}
