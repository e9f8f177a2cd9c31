//! # edgetls-policy
//!
//! Negotiation policy per server name, decided once per connection at the ClientHello.
//!
//! - [`Rule`]s match by server name (exact, one-label `*.domain`, `*` default; first match in
//!   order wins) and optionally by local address/port; a connection without a server name gets
//!   the default rule.
//! - Each rule sets ALPN (server preference; no overlap fails with alert 120 unless `fallback`), NPN, TLS versions, TLS 1.2
//!   ciphers and TLS 1.3 suites, groups, signature algorithms, client certificates
//!   (none/request/require with a CA bundle and depth), tickets on/off and the TLS 1.3 ticket
//!   count, the certificate entry to serve, or a tunnel.
//! - Rules come from a TOML file with the look of Traffic Server's `sni.yaml` ([`config`]) and
//!   from HAProxy crt-list options ([`crtlist`]); every field is checked at load, with the file
//!   and line in errors; [`PolicyStore::reload`] never replaces a valid policy with an invalid one.
//! - [`install`] puts one ClientHello callback on a listener's context. Rules with equal
//!   settings share one OpenSSL context, prepared at load; a connection is switched to it and
//!   given the few settings a context switch does not carry.
//!
//! ```
//! use edgetls_policy::{alpn, config};
//! use std::path::Path;
//!
//! let rules = config::parse(
//!     Path::new("policy.toml"),
//!     r#"
//! [[sni]]
//! fqdn = "www.example.com"
//! alpn = ["h2", "http/1.1"]
//! valid_tls_version_min_in = "TLSv1_3"
//!
//! [[sni]]
//! fqdn = "*"
//! alpn = ["http/1.1"]
//! "#,
//! )?;
//! assert_eq!(rules.len(), 2);
//! // The server's preference wins among what the client offered (RFC 7301).
//! let offered = b"\x08http/1.1\x02h2";
//! let ours = [b"h2".to_vec(), b"http/1.1".to_vec()];
//! assert_eq!(alpn::select(&ours, offered), Ok(Some(&b"h2"[..])));
//! // A broken file is an error naming the file and the line.
//! let err = config::parse(Path::new("policy.toml"), "[[sni]]\nfqdn = \"a.test\"\nalpn = [\"\"]\n")
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("policy.toml:"), "{err}");
//! # Ok::<(), edgetls_policy::PolicyError>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

mod acme_alpn;
pub mod alpn;
pub mod config;
pub mod crtlist;
mod error;
mod on_demand;
mod policy;
mod profile;
mod rule;
mod session;
mod sni_yaml;
mod ssl;

pub use acme_alpn::{ACME_TLS_ALPN, TlsAlpnAnswers};
pub use error::PolicyError;
pub use on_demand::{AcmeHooks, OnDemand};
pub use policy::Policy;
pub use profile::Env;
pub use rule::{ClientCert, LocalMatch, Rule, Settings, SniMatch, TicketKeyFile};
pub use session::{SessionCache, SessionCacheStats, session_cache_stats};
pub use ssl::{
    Decision, PolicySources, PolicyStore, chosen_rule, decide, install, install_with_acme,
};

// The README is the crate's front page on crates.io: its examples are tested too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
