//! The engine crate's one error type.

use std::time::Duration;

/// What went wrong building a remote key, running a remote operation, or a handshake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// OpenSSL refused a setup step (engine, method, key or context).
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    /// The certificate's key type cannot be used remotely.
    #[error("unsupported key type for a remote key: {0}")]
    UnsupportedKey(String),
    /// The signature OpenSSL asked for has no keyless opcode.
    #[error("no keyless operation for {0}")]
    UnsupportedScheme(String),
    /// A remote key operation failed in this process (a misuse of the signing API, another
    /// remote signer's own failure).
    #[error("remote key operation failed: {0}")]
    Remote(String),
    /// The key server, or the way to it, failed the operation: the server's error code (key not
    /// found, bad opcode, …), no answer before the deadline, no server available. Kept as the
    /// client said it, so each reaches the metrics as its own reason.
    #[error("key server: {0}")]
    KeyServer(#[from] edgetls_keyless_client::ClientError),
    /// No answer in time (the engine's own limit, past the remote key's deadline).
    #[error("remote key operation gave no answer within {0:?}")]
    Timeout(Duration),
    /// The answer does not fit where OpenSSL wants it.
    #[error("remote answer of {got} bytes does not fit the {room}-byte signature buffer")]
    BadAnswer {
        /// Bytes in the answer.
        got: usize,
        /// Bytes OpenSSL has room for.
        room: usize,
    },
    /// Setting up the wait for an asynchronous job failed.
    #[error("async job: {0}")]
    Async(String),
    /// The TLS handshake failed (including a failed remote operation, which ends it with an
    /// alert): why, as a fixed label, and what exactly happened.
    #[error("TLS handshake failed ({reason}): {detail}")]
    Handshake {
        /// Why, as a fixed label for metrics.
        reason: crate::Failure,
        /// What exactly happened (OpenSSL's errors, the remote error).
        detail: String,
    },
    /// A panic inside a callback, caught before it could reach OpenSSL.
    #[error("internal error in a key callback (caught panic)")]
    Panic,
}
