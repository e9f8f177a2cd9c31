//! The one seam between edgetls and the TLS library.
//!
//! Every hook edgetls puts into libssl is reached through this crate: the view of the
//! ClientHello the decision is made on ([`ClientHello`]), the per-connection slots the hooks
//! share (the local address, the refusal), the typed reasons a hook ends a handshake with
//! ([`Reason`], [`refuse`]) and the ClientHello retry ([`retry`]) that lets slow work run off
//! the library's stack. The certificate store, the ticket keys, the policy and the remote-key
//! engine use it; none of them reaches into another for these.
//!
//! The library specifics sit in one module per library (`ossl`, for OpenSSL 3.0, 3.5 and 4.0);
//! the parsing of ClientHello extensions ([`hello`]) and the refusal reasons are library-neutral.
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

mod error;
pub mod hello;
mod ossl;
mod refusal;

pub use error::TlsError;
pub use ossl::{
    ClientHello, in_async_job, job_stack, local_addr, refusal, refuse, retry, set_local_addr,
};
pub use refusal::{Reason, Refusal};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
