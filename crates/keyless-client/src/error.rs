//! The client's one error type.

use edgetls_keyless_proto::ErrorCode;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The key server answered with an error (final: not retried).
    #[error("key server {server} answered: {code}")]
    Server { server: String, code: ErrorCode },
    /// No answer before the request's deadline.
    #[error("no answer within {after:?} (last tried: {server})")]
    Timeout { after: Duration, server: String },
    /// No key server was reachable before the deadline.
    #[error("no key server available within {after:?}: {detail}")]
    NoServer { after: Duration, detail: String },
    /// Too many requests in flight: the caller should shed load.
    #[error("request queue full ({limit} requests in flight)")]
    QueueFull { limit: usize },
    /// The request could not be encoded (payload too large).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The client was shut down.
    #[error("client is shut down")]
    Shutdown,
    /// Invalid configuration.
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("client configuration: {0}")]
    Invalid(String),
}
