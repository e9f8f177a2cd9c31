//! The key server's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyServerError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Key { path: PathBuf, message: String },
    #[error("{}:{line}: {message}", path.display())]
    Config {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{uri}: {message}")]
    Pkcs11 { uri: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("TLS setup: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

impl KeyServerError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> KeyServerError {
        let path = path.into();
        move |source| KeyServerError::Io { path, source }
    }
}
