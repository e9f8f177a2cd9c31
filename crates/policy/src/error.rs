//! The policy crate's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
/// Why a policy could not be read or applied.
#[non_exhaustive]
pub enum PolicyError {
    #[error("{}: {source}", path.display())]
    /// A policy file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse (the message carries the line and column).
    #[error("{}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A rule is invalid.
    #[error("{}:{line}: {message}", path.display())]
    Rule {
        /// The file.
        path: PathBuf,
        /// The line of the rule (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The listener's session-ticket keys could not be made or installed.
    #[error("session tickets: {0}")]
    Tickets(#[from] edgetls_tickets::TicketError),
    #[error("OpenSSL: {0}")]
    /// OpenSSL refused a rule's settings.
    OpenSsl(#[from] openssl::error::ErrorStack),
}
