//! HAProxy's PROXY protocol (versions 1 and 2), as a load balancer in front of a TLS
//! terminator sends it and as an origin behind one reads it. No I/O: [`parse`] reads a header
//! from the first bytes of a connection (saying how many more it needs), [`encode_v2`] writes
//! one with the TLS facts of the connection as TLVs.
//!
//! ```
//! use edgetls_proxy_protocol::{parse, encode_v2, Parsed, TlsFacts};
//! let client = "192.0.2.7:50000".parse().unwrap();
//! let server = "198.51.100.1:443".parse().unwrap();
//! let mut header = Vec::new();
//! let mut tls = TlsFacts::default();
//! tls.sni = Some("www.example.com".into());
//! encode_v2(client, server, Some(&tls), &mut header);
//! match parse(&header).unwrap() {
//!     Parsed::Header(h, used) => {
//!         assert_eq!(used, header.len());
//!         assert_eq!(h.source, Some(client));
//!         assert_eq!(h.authority(), Some("www.example.com"));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

#![warn(missing_docs, unreachable_pub)]

mod encode;
mod networks;
mod parse;

pub use encode::{TlsFacts, encode_v2};
pub use networks::Networks;
pub use parse::{Command, Header, Parsed, Ssl, parse, starts_like_header};

/// The twelve bytes every version 2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version 1 header (RFC-style text line, CRLF included).
pub const V1_MAX: usize = 107;

/// The longest header [`parse`] accepts (a v2 header may announce up to 64 KiB; load balancers
/// send far less than this).
pub const MAX_HEADER: usize = 4096;

/// TLV types (section 2.2 of the specification).
pub mod tlv {
    /// `PP2_TYPE_ALPN`: the protocol the client negotiated.
    pub const ALPN: u8 = 0x01;
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for (its SNI).
    pub const AUTHORITY: u8 = 0x02;
    /// `PP2_TYPE_CRC32C`: a checksum of the header.
    pub const CRC32C: u8 = 0x03;
    /// `PP2_TYPE_NOOP`: padding, ignored.
    pub const NOOP: u8 = 0x04;
    /// `PP2_TYPE_UNIQUE_ID`: a connection id.
    pub const UNIQUE_ID: u8 = 0x05;
    /// `PP2_TYPE_SSL`: the TLS facts, with sub-TLVs.
    pub const SSL: u8 = 0x20;
    /// `PP2_SUBTYPE_SSL_VERSION`: e.g. `TLSv1.3`.
    pub const SSL_VERSION: u8 = 0x21;
    /// `PP2_SUBTYPE_SSL_CN`: the client certificate's common name.
    pub const SSL_CN: u8 = 0x22;
    /// `PP2_SUBTYPE_SSL_CIPHER`: the cipher's OpenSSL name.
    pub const SSL_CIPHER: u8 = 0x23;
    /// `PP2_SUBTYPE_SSL_SIG_ALG`: the certificate's signature algorithm.
    pub const SSL_SIG_ALG: u8 = 0x24;
    /// `PP2_SUBTYPE_SSL_KEY_ALG`: the certificate's key algorithm.
    pub const SSL_KEY_ALG: u8 = 0x25;
    /// `PP2_TYPE_NETNS`: a network namespace name.
    pub const NETNS: u8 = 0x30;
    /// `PP2_TYPE_SSL` client flags.
    pub const CLIENT_SSL: u8 = 0x01;
    /// `PP2_CLIENT_CERT_CONN`: the client sent a certificate on this connection.
    pub const CLIENT_CERT_CONN: u8 = 0x02;
    /// `PP2_CLIENT_CERT_SESS`: the client sent a certificate on this session.
    pub const CLIENT_CERT_SESS: u8 = 0x04;
}

/// A header that is not valid PROXY protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyProtocolError {
    #[error("PROXY v1: {0}")]
    /// A malformed v1 (text) header, and what is wrong.
    V1(&'static str),
    #[error("PROXY v2: {0}")]
    /// A malformed v2 (binary) header, and what is wrong.
    V2(&'static str),
    #[error("PROXY header longer than {MAX_HEADER} bytes ({0})")]
    /// A header longer than [`MAX_HEADER`], with its announced length.
    TooLong(usize),
}

// The README is the crate's front page on crates.io: its examples are tested too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
