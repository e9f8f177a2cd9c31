//! The crate's one error type, and the per-entry problems a load reports.

use std::fmt;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in this crate. Each variant names the file (and line) it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertStoreError {
    /// The files behind the store cannot be watched.
    #[error("watching the certificate files: {0}")]
    Watch(String),
    /// A source (directory, ssl_multicert.config, crt-list) could not be read at all.
    #[error("{}: cannot use this source: {source}", path.display())]
    SourceUnusable {
        /// The source.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A file named by a source could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A line of a configuration file is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// The line (1-based).
        line: u32,
        /// What is wrong with it.
        message: String,
    },
    /// A PEM file is malformed (truncated block, bad base64, no blocks at all).
    #[error("{}:{line}: {message}", path.display())]
    Pem {
        /// The PEM file.
        path: PathBuf,
        /// The line (1-based) where the problem starts.
        line: u32,
        /// What is wrong.
        message: String,
    },
    /// A certificate does not parse or is unusable.
    #[error("{}: certificate {index}: {message}", path.display())]
    Certificate {
        /// The file holding the certificate.
        path: PathBuf,
        /// Its position in the file's chain (0: the leaf).
        index: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A private key does not parse, is of an unsupported type, or needs a passphrase.
    #[error("{}: private key: {message}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with the key.
        message: String,
    },
    /// The private key is not the one of the leaf certificate.
    #[error("{}: private key does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A name is claimed for the same key type by an earlier entry, which keeps it (a name
    /// has at most one chain per key type).
    #[error("{}: name {name} ({types}) is already served by {}; the earlier entry keeps it", path.display(), winner.display())]
    NameConflict {
        /// The entry that lost the name.
        path: PathBuf,
        /// The name.
        name: String,
        /// The key types lost (`rsa`, `ecdsa`, `rsa+ecdsa`, `any`).
        types: String,
        /// The earlier entry, which serves the name.
        winner: PathBuf,
    },
    /// The entry's new files are broken; its previous version keeps serving.
    #[error("{}: kept the previous version: {reason}", path.display())]
    KeptPrevious {
        /// The entry.
        path: PathBuf,
        /// What is wrong with its new files.
        reason: Box<CertStoreError>,
    },
    /// An entry that loaded but deserves attention (expired, no usable name, odd chain order).
    #[error("{}: {message}", path.display())]
    Warning {
        /// The entry's file.
        path: PathBuf,
        /// What deserves attention.
        message: String,
    },
    /// OpenSSL refused an object when it was materialized for a handshake.
    #[error("{}: OpenSSL: {source}", path.display())]
    OpenSsl {
        /// The entry's file.
        path: PathBuf,
        /// OpenSSL's errors.
        source: openssl::error::ErrorStack,
    },
    /// The sources declared keyless do not fit the sources loaded.
    #[error("{}: {message}", path.display())]
    RemoteKeySource {
        /// The declared source.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A remote key could not be set up for a handshake.
    #[error("{}: remote key: {message}", path.display())]
    Remote {
        /// The entry's file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl CertStoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        CertStoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn key(path: &Path, message: impl Into<String>) -> Self {
        CertStoreError::Key {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn cert(path: &Path, index: usize, message: impl Into<String>) -> Self {
        CertStoreError::Certificate {
            path: path.to_path_buf(),
            index,
            message: message.into(),
        }
    }

    pub(crate) fn config(path: &Path, line: u32, message: impl Into<String>) -> Self {
        CertStoreError::Config {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The entry (or line) is not served.
    Error,
    /// The entry is served; something about it deserves attention.
    Warning,
}

/// One thing a load found wrong, located at the configuration line that asked for it.
#[derive(Debug)]
pub struct Problem {
    /// Whether the entry is served at all.
    pub severity: Severity,
    /// The source file and line that configured the entry (for a directory: the entry's file).
    pub origin: PathBuf,
    /// The line of `origin`, when the source has lines.
    pub line: Option<u32>,
    /// What was found wrong, naming the file it is about.
    pub error: CertStoreError,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.line {
            Some(line) => write!(
                f,
                "{level}: {}:{line}: {}",
                self.origin.display(),
                self.error
            ),
            None => write!(f, "{level}: {}", self.error),
        }
    }
}

impl serde::Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Problem", 4)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("origin", &self.origin)?;
        st.serialize_field("line", &self.line)?;
        st.serialize_field("message", &self.error.to_string())?;
        st.end()
    }
}
