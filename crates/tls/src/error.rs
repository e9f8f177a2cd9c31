//! The crate's one error type.

use std::time::Duration;

/// What can go wrong at the seam itself: setting a hook up, or a remote key's operation (the
/// hooks report handshake failures as [`Refusal`](crate::Refusal)s on the connection).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The TLS library failed (out of memory allocating a slot, a call refused).
    #[error("TLS library: {0}")]
    Library(#[from] openssl::error::ErrorStack),
    /// The remote-key provider could not be registered or loaded into the library.
    #[error("the edgetls-keyless provider could not be loaded: {0}")]
    Provider(String),
    /// The key's type cannot be used remotely (RSA and EC keys can).
    #[error("unsupported key type for a remote key: {0}")]
    UnsupportedKey(String),
    /// The signature the library asked for has no remote form (no keyless opcode, a digest or
    /// padding a key server cannot be asked for).
    #[error("no remote operation for {0}")]
    UnsupportedScheme(String),
    /// The library called the remote-key hook in a way it does not support (no key, no buffer,
    /// no data to sign).
    #[error("remote key hook called without {0}")]
    Call(&'static str),
    /// The remote key's own failure (a key server's error code, no server, its deadline), as
    /// the signer gave it: a driver downcasts it to tell the reasons apart.
    #[error("{0}")]
    Signer(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// No answer in time (the seam's own limit, past the signer's deadline).
    #[error("remote key operation gave no answer within {0:?}")]
    Timeout(Duration),
    /// The answer does not fit where the library wants it.
    #[error("remote answer of {got} bytes does not fit the {room}-byte signature buffer")]
    BadAnswer {
        /// Bytes in the answer.
        got: usize,
        /// Bytes the library has room for.
        room: usize,
    },
    /// Pausing or resuming the handshake for a remote answer failed.
    #[error("waiting for a remote answer: {0}")]
    Async(String),
    /// A configured key-exchange group the library does not have.
    #[error(
        "{library} has no key-exchange group {group:?} (write ?{group} to skip it where the library lacks it)"
    )]
    UnknownGroup {
        /// The group as configured.
        group: String,
        /// The TLS library and its version.
        library: String,
    },
    /// A setting the TLS library this build runs on cannot make.
    #[error("{0}")]
    Unsupported(String),
    /// A panic inside a hook or a signer, caught before it could reach the library.
    #[error("internal error in a remote-key hook (caught panic)")]
    Panic,
}
