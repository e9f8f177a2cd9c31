//! The engine crate's one error type.

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
    /// The seam to the TLS library failed: the remote-key provider could not load, a remote
    /// operation could not be paused or resumed, a signature OpenSSL asked for has no remote
    /// form.
    #[error(transparent)]
    Tls(#[from] edgetls_tls::TlsError),
    /// The key server, or the way to it, failed the operation: the server's error code (key not
    /// found, bad opcode, …), no answer before the deadline, no server available. Kept as the
    /// client said it, so each reaches the metrics as its own reason.
    #[error("key server: {0}")]
    KeyServer(#[from] edgetls_keyless_client::ClientError),
    /// Waiting for a paused handshake failed (the runtime could not watch its descriptor).
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
}
