//! The policy crate's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file does not parse (the message carries the line and column).
    #[error("{}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    /// A rule is invalid.
    #[error("{}:{line}: {message}", path.display())]
    Rule {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}
