//! The crate's one error type.

use crate::types::ErrorCode;

/// A frame or item that does not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The header's major version is not 1. The frame's length was still read, so a stream
    /// can skip it and answer `version mismatch` for `id`.
    #[error("frame {id}: unsupported protocol version {major}.{minor}")]
    Version {
        /// The frame's id.
        id: u32,
        /// Its major version.
        major: u8,
        /// Its minor version.
        minor: u8,
    },
    /// The body is malformed. The frame was consumed; `id` is the request to answer.
    #[error("frame {id}: {reason}")]
    Format {
        /// The frame's id.
        id: u32,
        /// What is malformed.
        reason: String,
    },
    /// A message too large for the 16-bit length field.
    #[error("message body of {0} bytes exceeds the 65535-byte limit")]
    TooLong(usize),
    /// Not a DER SubjectPublicKeyInfo.
    #[error("not a DER SubjectPublicKeyInfo")]
    Spki,
}

impl ProtoError {
    /// The error code a server answers this with, and the request id, when there is one.
    pub fn reply(&self) -> Option<(u32, ErrorCode)> {
        match self {
            ProtoError::Version { id, .. } => Some((*id, ErrorCode::VERSION_MISMATCH)),
            ProtoError::Format { id, .. } => Some((*id, ErrorCode::FORMAT)),
            _ => None,
        }
    }
}
