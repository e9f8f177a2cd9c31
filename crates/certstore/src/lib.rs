//! edgetls-certstore: load, validate and index 10k–100k+ TLS certificates.
//!
//! ```no_run
//! use edgetls_certstore::{CertStore, LoadOptions, Source};
//!
//! let (store, report) = CertStore::load(vec![Source::detect("/etc/ssl/edge")?], LoadOptions::default())?;
//! for problem in &report.problems {
//!     eprintln!("{problem}");
//! }
//! let snapshot = store.snapshot();
//! if let Some(hit) = snapshot.lookup(Some("www.example.com"), None) {
//!     println!("{} ({})", hit.entry.path().display(), hit.how.as_str());
//! }
//! # Ok::<(), edgetls_certstore::CertStoreError>(())
//! ```
//!
//! * Sources: a directory, an Apache Traffic Server `ssl_multicert.config`, a HAProxy crt-list
//!   ([`Source`]).
//! * Each entry is validated when loaded — the chain parses (strict DER), the key decodes through
//!   OpenSSL's typed decoder and matches the leaf — and kept as compact DER. OpenSSL objects are
//!   made only when a handshake needs them, through a bounded per-thread cache ([`SslCache`]).
//! * One bad entry never stops the others: [`Report`] lists every problem with its file and line.
//! * Lookups (exact, one-label wildcard, local addr:port, addr, default) search sorted arrays by
//!   binary search; the arrays are sorted by this crate's [`sort::introsort`].
//! * [`CertStore::reload`] reuses unchanged entries, keeps the previous version of broken ones and
//!   swaps the snapshot atomically; [`CertStore::watch`] reloads by itself when files change.

mod cert;
mod der;
mod entry;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod key;
mod load;
mod name;
mod pem;
mod remote;
mod report;
mod snapshot;
pub mod sort;
pub mod source;
mod ssl;
mod store;
mod validate;

pub use cert::KeyType;
pub use entry::{Chain, Entry};
pub use error::{CertStoreError, Problem, Severity};
pub use index::MatchKind;
pub use load::{LoadOptions, Progress};
pub use remote::RemoteKeys;
pub use report::Report;
pub use snapshot::{Selected, Snapshot};
pub use source::{EntrySpec, Source, SourceOptions};
pub use ssl::{
    Materialized, SslCache, apply_certificate, client_hello_server_name, local_addr_index,
    materialize, server_name_extension, servername_callback,
};
pub use store::{CertStore, Watcher};
