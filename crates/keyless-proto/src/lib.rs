//! The Keyless SSL wire protocol, version 1.0, byte for byte compatible with Cloudflare's
//! gokeyless: frames, items, opcodes and error codes, the key identifiers (SKI and the legacy
//! RSA digest), and a streaming decoder. No I/O, and no input makes it panic.
//!
//! ```
//! use edgetls_keyless_proto::{Decoder, Opcode, Operation, Packet, Ski};
//!
//! let ski = Ski([7; 20]);
//! let digest = vec![0u8; 32]; // SHA-256 of the handshake data
//! let request = Packet::new(42, Operation::request(Opcode::ECDSA_SIGN_SHA256, ski, digest));
//! let bytes = request.to_bytes()?;
//! assert_eq!(bytes.len(), 1024); // short messages are padded to 1024 bytes
//!
//! // A stream may deliver it in pieces.
//! let mut decoder = Decoder::new();
//! decoder.extend(&bytes[..100]);
//! assert!(decoder.next().is_none());
//! decoder.extend(&bytes[100..]);
//! assert_eq!(decoder.next().unwrap()?, request);
//! # Ok::<(), edgetls_keyless_proto::ProtoError>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

mod decoder;
mod error;
mod ids;
mod packet;
mod types;

pub use decoder::Decoder;
pub use error::ProtoError;
pub use ids::{Digest, Ski};
pub use packet::{HEADER_LEN, Header, MAX_BODY, Operation, PADDED_LEN, Packet, VERSION};
pub use types::{ErrorCode, HashAlgorithm, Opcode, SignScheme, Tag};

/// The default key server port.
pub const DEFAULT_PORT: u16 = 2407;

// The README is the crate's front page on crates.io: its examples are tested too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
