//! The crate's one error type.

use std::path::PathBuf;

/// What went wrong obtaining or storing a certificate.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA answered with a problem document, or could not be reached.
    #[error("ACME CA {directory}: {source}")]
    Ca {
        /// The CA's directory URL.
        directory: String,
        /// What the ACME client said.
        #[source]
        source: instant_acme::Error,
    },
    /// An order for these names did not end with a certificate.
    #[error("order for {names}: {what}")]
    Order {
        /// The order's names, comma-separated.
        names: String,
        /// What happened (a problem document's type and detail when the CA gave one).
        what: String,
    },
    /// The CA refused the order for its rate limits (`urn:ietf:params:acme:error:rateLimited`).
    #[error("order for {names}: rate-limited by the CA: {detail}")]
    RateLimited {
        /// The order's names, comma-separated.
        names: String,
        /// The CA's problem detail.
        detail: String,
        /// When the CA said to try again, when its detail says (Let's Encrypt's
        /// "retry after YYYY-MM-DD HH:MM:SS UTC").
        until: Option<std::time::SystemTime>,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A stored file is not what it should be.
    #[error("{}: {what}", path.display())]
    Stored {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// Key or certificate handling in OpenSSL failed.
    #[error("{what}: {source}")]
    Crypto {
        /// What was being made.
        what: &'static str,
        /// OpenSSL's errors.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// The configuration cannot work.
    #[error("[acme] {0}")]
    Config(String),
    /// The DNS-01 hook failed.
    #[error("dns-01 hook {hook}: {what}")]
    Hook {
        /// The hook command.
        hook: String,
        /// How it failed.
        what: String,
    },
}

impl AcmeError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AcmeError {
        let path = path.into();
        move |source| AcmeError::Io { path, source }
    }

    pub(crate) fn crypto(
        what: &'static str,
    ) -> impl FnOnce(openssl::error::ErrorStack) -> AcmeError {
        move |source| AcmeError::Crypto { what, source }
    }
}
