//! The client's one error type.

use edgetls_keyless_proto::ErrorCode;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
/// Why a request or the client's setup failed.
pub enum ClientError {
    /// The key server answered with an error (final: not retried).
    #[error("key server {server} answered: {code}")]
    Server {
        /// The server that answered.
        server: String,
        /// Its error code.
        code: ErrorCode,
    },
    /// No answer before the request's deadline.
    #[error("no answer within {after:?} (last tried: {server})")]
    Timeout {
        /// The deadline.
        after: Duration,
        /// The key server tried last.
        server: String,
    },
    /// No key server was reachable before the deadline.
    #[error("no key server available within {after:?}: {detail}")]
    NoServer {
        /// The deadline.
        after: Duration,
        /// Why each server was unavailable.
        detail: String,
    },
    /// Too many requests in flight: the caller should shed load.
    #[error("request queue full ({limit} requests in flight)")]
    QueueFull {
        /// The configured limit.
        limit: usize,
    },
    /// The request could not be encoded (payload too large).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The client was shut down.
    #[error("client is shut down")]
    Shutdown,
    /// Invalid configuration.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    #[error("client configuration: {0}")]
    /// Invalid settings (no server, a zero limit, …).
    Invalid(String),
}
