//! Session tickets sealed with keys the caller manages: the ticket-key hook.
//!
//! [`install`] makes a context seal new tickets with the key its [`TicketKeyLookup`] says
//! encrypts, and open tickets under any key it still finds (RFC 5077's layout: a 16-byte key
//! name, a 16-byte IV, AES-CBC — AES-128 for a 16-byte AES key, AES-256 for a 32-byte one — and
//! HMAC-SHA256). A ticket under a key that no longer encrypts resumes and is renewed; an unknown
//! key gives a full handshake, never an error. TLS 1.3 resumptions always get a fresh ticket
//! (clients use each once). The hook never reads files or runs the caller's refresh: it asks
//! the lookup for what is in force, which must answer from memory.

use std::sync::Arc;

pub use crate::ossl::tickets::{configure, disable_for, install};

/// A session-ticket key as the hook uses it.
pub trait SealingKey: Send + Sync {
    /// The key name written at the start of every ticket it seals.
    fn name(&self) -> &[u8; 16];
    /// The AES-CBC key: 16 bytes (AES-128) or 32 (AES-256).
    fn aes_key(&self) -> &[u8];
    /// The HMAC-SHA256 secret.
    fn hmac_secret(&self) -> &[u8];
}

/// What the hook did with a ticket, for the caller's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TicketEvent {
    /// A ticket was sealed.
    Issued,
    /// A ticket was opened and its session resumed.
    Resumed,
    /// A resumed ticket's key no longer encrypts: a new ticket was sent.
    Renewed,
    /// A ticket named a key the lookup does not have (a full handshake follows).
    UnknownKey,
    /// A ticket under a known key did not open (bad MAC, bad padding, truncated).
    NotDecrypted,
    /// The library could not seal or open with a key: the handshake ended (its refusal says
    /// why, with [`Reason::TicketKeys`](crate::Reason::TicketKeys)).
    Failed,
}

/// Where the hook finds its keys. Answers from memory, on the handshake's thread (possibly on
/// an OpenSSL ASYNC job's stack): no I/O, no blocking.
pub trait TicketKeyLookup: Send + Sync + 'static {
    /// The key new tickets are sealed with.
    fn sealing_key(&self) -> Arc<dyn SealingKey>;
    /// The key named `name`, and whether it is the one that seals now (a ticket under any
    /// other is renewed).
    fn find(&self, name: &[u8; 16]) -> Option<(Arc<dyn SealingKey>, bool)>;
    /// Counts what happened.
    fn count(&self, event: TicketEvent);
}
