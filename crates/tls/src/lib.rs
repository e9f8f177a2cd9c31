//! The one seam between edgetls and the TLS library.
//!
//! Every hook edgetls puts into libssl is reached through this crate:
//!
//! - the view of the ClientHello the decision is made on ([`ClientHello`]) and the ClientHello
//!   retry ([`retry`]) that lets slow work run off the library's stack;
//! - the per-connection slots the hooks share (the local address, the refusal) and the typed
//!   reasons a hook ends a handshake with ([`Reason`], [`refuse`]);
//! - the remote-key hook ([`remote_key`]): private keys whose signatures a [`Signer`] makes,
//!   with the wait for the answer (blocking, or a paused handshake a driver resumes);
//! - the ticket-key hook ([`tickets`]), the OCSP-staple hook ([`staple`]) and setting a chain
//!   and its key ([`use_chain`]);
//! - guarded stacks for the library's ASYNC jobs ([`job_stack`]);
//! - which key-exchange groups the library has, and the one a handshake negotiated ([`groups`]).
//!
//! The certificate store, the ticket keys, the policy and the remote-key engine use it; none of
//! them reaches into another for these, and none declares a libssl function of its own.
//!
//! The library specifics sit in `ossl` (OpenSSL's API: OpenSSL 3.0, 3.5 and 4.0, and what AWS-LC
//! shares of it) and `awslc` (where AWS-LC differs: the certificate-selection pause, remote keys
//! through `SSL_PRIVATE_KEY_METHOD`, the ticket callback), chosen by `cfg(awslc)` — set when
//! openssl-sys links AWS-LC (the `aws-lc` feature of this crate or any other). The parsing of
//! ClientHello extensions ([`hello`]), the refusal reasons, the traits the hooks call
//! ([`Signer`], [`tickets::TicketKeyLookup`]), [`library`] and [`settings`] are the same API on
//! both.
//!
//! [`Signer`]: remote_key::Signer
//!
//! ```
//! use edgetls_tls::{Reason, refuse, refusal};
//! use openssl::ssl::{Ssl, SslAlert, SslContext, SslMethod};
//!
//! let ctx = SslContext::builder(SslMethod::tls()).unwrap().build();
//! let mut ssl = Ssl::new(&ctx).unwrap();
//! let alert = refuse(&mut ssl, SslAlert::UNRECOGNIZED_NAME, Reason::UnrecognizedName, "no certificate for a.test");
//! assert_eq!(alert, SslAlert::UNRECOGNIZED_NAME);
//! assert_eq!(refusal(&ssl).unwrap().reason.as_str(), "unrecognized_name");
//! ```

#[cfg(awslc)]
mod awslc;
mod error;
pub mod groups;
pub mod hello;
pub mod library;
mod ossl;
mod refusal;
pub mod remote_key;
pub mod settings;
pub mod tickets;

pub use error::TlsError;
pub use hello::Next;
pub use ossl::{
    ClientHello, in_async_job, job_stack, local_addr, on_client_hello, refusal, refuse, retry,
    set_local_addr, use_chain, use_chain_on_context,
};
pub use refusal::{Reason, Refusal};

/// The OCSP-staple hook: a response offered for a chain set on a connection is stapled when
/// that chain is the one served and the client asked for a status.
pub mod staple {
    pub use crate::ossl::staple::{enable, offer};
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
