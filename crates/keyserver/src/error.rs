//! The key server's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
/// Why the key server could not start or load something.
pub enum KeyServerError {
    #[error("{}: {source}", path.display())]
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    /// A key file could not be used.
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with the key.
        message: String,
    },
    #[error("{}:{line}: {message}", path.display())]
    /// A configuration file's line is wrong.
    Config {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    #[error("{uri}: {message}")]
    /// A PKCS#11 token or key could not be used.
    Pkcs11 {
        /// The URI, its PIN hidden.
        uri: String,
        /// What failed.
        message: String,
    },
    #[error("{0}")]
    /// Invalid options.
    Invalid(String),
    #[error("TLS setup: {0}")]
    /// The TLS context could not be built.
    Tls(#[from] openssl::error::ErrorStack),
    #[error("listening on {addr}: {source}")]
    /// The listening socket could not be opened.
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

impl KeyServerError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> KeyServerError {
        let path = path.into();
        move |source| KeyServerError::Io { path, source }
    }
}
