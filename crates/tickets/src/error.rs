//! The tickets crate's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
/// Why ticket keys could not be read, written or used.
#[non_exhaustive]
pub enum TicketError {
    /// A key file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file's content does not fit its format.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
    /// A key file's line does not fit its format.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What does not fit.
        message: String,
    },
    /// An unknown format name.
    #[error("unknown ticket key format {0:?} (ats, nginx48, nginx80, haproxy)")]
    UnknownFormat(String),
    /// A key set or setting that cannot work.
    #[error("{0}")]
    Invalid(String),
    /// OpenSSL refused an operation.
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    /// The ticket-key hook could not be set on a context or a connection.
    #[error("ticket hook: {0}")]
    Hook(#[from] edgetls_tls::TlsError),
}

impl TicketError {
    pub(crate) fn format(path: &std::path::Path, message: impl Into<String>) -> TicketError {
        TicketError::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
