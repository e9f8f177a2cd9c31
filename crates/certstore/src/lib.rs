//! edgetls-certstore: load, validate and index 10k–100k+ TLS certificates.
//!
//! ```
//! use edgetls_certstore::{CertStore, LoadOptions, Source};
//! # use openssl::{asn1::Asn1Time, ec::{EcGroup, EcKey}, hash::MessageDigest, nid::Nid, pkey::PKey, x509::{X509, X509Name}};
//! # let dir = tempfile::tempdir().unwrap();
//! # let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
//! # let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
//! # let mut name = X509Name::builder()?;
//! # name.append_entry_by_text("CN", "www.example.com")?;
//! # let name = name.build();
//! # let mut b = X509::builder()?;
//! # b.set_version(2)?;
//! # b.set_subject_name(&name)?;
//! # b.set_issuer_name(&name)?;
//! # b.set_pubkey(&key)?;
//! # let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(30)?);
//! # b.set_not_before(&from)?;
//! # b.set_not_after(&until)?;
//! # b.sign(&key, MessageDigest::sha256())?;
//! # let mut pem = b.build().to_pem()?;
//! # pem.extend(key.private_key_to_pem_pkcs8()?);
//! # std::fs::write(dir.path().join("www.example.com.pem"), pem).unwrap();
//! # let dir = dir.path();
//! // A directory of certificate files (or an ssl_multicert.config, or a crt-list).
//! let (store, report) = CertStore::load(vec![Source::detect(dir)?], LoadOptions::default())?;
//! for problem in &report.problems {
//!     eprintln!("{problem}");
//! }
//! assert_eq!(report.loaded, 1);
//! let snapshot = store.snapshot();
//! let hit = snapshot.lookup(Some("WWW.example.com."), None).expect("an entry");
//! assert!(hit.entry.path().ends_with("www.example.com.pem"));
//! assert_eq!(hit.how.as_str(), "exact");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * Sources: a directory, an Apache Traffic Server `ssl_multicert.config`, a HAProxy crt-list
//!   ([`Source`]).
//! * Each entry is validated when loaded — the chain parses (strict DER), the key decodes through
//!   OpenSSL's typed decoder and matches the leaf — and kept as compact DER. OpenSSL objects are
//!   made when a handshake first needs them (or all at once, [`CertStore::prepare_all`]) and
//!   shared by every thread through a cache bounded in bytes ([`PreparedCache`]).
//! * One bad entry never stops the others: [`Report`] lists every problem with its file and line.
//! * Lookups (exact, one-label wildcard, local addr:port, addr, default) search sorted arrays by
//!   binary search; the arrays are sorted by this crate's [`sort::introsort`].
//! * [`CertStore::reload`] reuses unchanged entries, keeps the previous version of broken ones and
//!   swaps the snapshot atomically; [`CertStore::watch`] reloads by itself when files change.

#![warn(missing_docs, unreachable_pub)]

mod cert;
mod der;
mod entry;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod index;
mod key;
mod load;
mod name;
pub mod ocsp;
mod ocsp_update;
mod pem;
mod prepared;
mod remote;
mod report;
mod select;
mod snapshot;
pub mod sort;
pub mod source;
mod ssl;
mod store;
mod validate;
mod watch;
pub mod yaml;

pub use cert::{KeyType, KeyTypes};
pub use entry::{Chain, Entry};
pub use error::{CertStoreError, Problem, Severity};
pub use index::MatchKind;
pub use load::{LoadOptions, Progress};
pub use ocsp_update::{OcspUpdater, UpdateOptions, UpdateStats};
pub use prepared::{CacheStats, DEFAULT_CACHE_BYTES, PreparedCache};
pub use remote::KeySource;
pub use report::Report;
pub use select::{
    Ready, Selection, apply_certificate, materialize, no_certificate, select_certificate,
    servername_callback, tunnel_name,
};
pub use snapshot::{Selected, Served, Snapshot};
pub use source::{EntrySpec, Source, SourceOptions};
pub use ssl::Materialized;
pub use store::{CertStore, OcspSummary};
pub use watch::{Change, WatchSet, Watcher, is_gone, is_swapped_link};

// The README is the crate's front page on crates.io: its examples are tested too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
