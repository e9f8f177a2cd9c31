//! # edgetls-tickets
//!
//! Session-ticket keys for a fleet of TLS servers, and session resumption towards origins.
//!
//! - [`TicketKey`]: name, HMAC secret, AES key (AES-128 for 48-byte keys, AES-256 for 80-byte
//!   ones); zeroized on drop, never printed.
//! - [`format`](mod@format): the key files of Traffic Server, nginx (48 and 80 bytes) and HAProxy, read and
//!   written, the format always named.
//! - [`TicketKeys`]: the key ring (one encrypting key, decrypt-only ones with a grace window),
//!   lock-free lookups, refreshed from a [`TicketKeySource`]: a file ([`FileSource`], re-read on
//!   change), a shared secret every server derives the same keys from ([`DerivedSource`]), a
//!   local random schedule ([`RandomSchedule`]), a fixed set ([`StaticSource`]) or your own.
//! - [`install`]: the OpenSSL ticket callback (RFC 5077 layout, AES-CBC + HMAC-SHA256, TLS 1.2
//!   and 1.3), renewal of tickets under old keys, full handshakes for unknown ones, global
//!   on/off, a per-name override, the TLS 1.3 ticket count and [`Counters`].
//! - [`OriginSessions`]: outgoing connections resume, per (host, port, SNI).
//!
//! ```
//! use edgetls_tickets::format::{self, Format};
//! use edgetls_tickets::{KeySet, KeySize, RingOptions, StaticSource, TicketKey, TicketKeys};
//! use std::path::Path;
//!
//! // Three keys in HAProxy's order (previous, current, next): the penultimate encrypts.
//! let keys = (0..3)
//!     .map(|_| TicketKey::generate(KeySize::Aes256))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let set = KeySet::new(keys, Format::Haproxy.encrypting_index(3))?;
//! let file = format::write(&set, Format::Haproxy)?;
//! // What another server of the fleet reads back from that file: the same keys.
//! let read = format::parse(Path::new("tickets.keys"), &file, Format::Haproxy)?;
//! assert_eq!(read.encrypting().name(), set.encrypting().name());
//! // The ring a server installs on its contexts with `install`.
//! let ring = TicketKeys::new(StaticSource(read), RingOptions::default())?;
//! assert_eq!(ring.encrypting().name(), set.encrypting().name());
//! # Ok::<(), edgetls_tickets::TicketError>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod clock;
mod error;
mod ffi;
pub mod format;
mod key;
mod origin;
mod ring;
mod seal;
mod source;
mod ssl;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::TicketError;
pub use format::Format;
pub use key::{KeySet, KeySize, TicketKey};
pub use origin::{OriginCounters, OriginKey, OriginSessions};
pub use ring::{Counters, Found, RingOptions, TicketKeys};
pub use seal::{Opened, open, seal, ticket_of};
pub use source::{DerivedSource, FileSource, RandomSchedule, StaticSource, TicketKeySource};
pub use ssl::{NameOverride, TicketConfig, disable_for, install};

// The README is the crate's front page on crates.io: its examples are tested too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
