//! What a load reports.

use crate::error::{Problem, Severity};
use std::path::PathBuf;
use std::time::Duration;

/// What a load (or reload) did.
#[derive(Debug, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Report {
    /// Entries configured (lines that parsed, certificate files found).
    pub entries: usize,
    /// Entries served by the new snapshot, including reused and kept ones.
    pub loaded: usize,
    /// Entries and configuration lines that are not served.
    pub failed: usize,
    /// Entries a reload took unchanged from the previous snapshot.
    pub reused: usize,
    /// Entries whose new files are broken and whose previous version keeps serving.
    pub kept_previous: usize,
    /// Exact server names indexed.
    pub names: usize,
    /// `*.domain` names indexed.
    pub wildcards: usize,
    /// Local addresses (and address:port pairs) indexed.
    pub ip_keys: usize,
    /// The default entry's file.
    pub default: Option<PathBuf>,
    /// Unix time of the earliest expiry among served entries.
    pub nearest_expiry: Option<i64>,
    /// Heap bytes held by the entries and the index (certificates and keys as DER).
    pub heap_bytes: usize,
    #[serde(serialize_with = "secs")]
    /// How long the load took.
    pub elapsed: Duration,
    /// Every problem found, errors and warnings, in source order.
    pub problems: Vec<Problem>,
    /// A partial reload changed no entry's names, addresses or options: the index (and
    /// whatever follows the names, such as crt-list rules) is the previous one.
    pub same_claims: bool,
    /// A partial reload: only the entries naming the changed files were read (the set of
    /// files behind the store is the same).
    pub partial: bool,
    /// The ids of the entry versions a partial reload replaced.
    #[serde(skip)]
    pub(crate) replaced_ids: Vec<u64>,
    /// The ids of the kept entries, for the snapshot's count of troubled entries.
    #[serde(skip)]
    pub(crate) kept_ids: Vec<u64>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Report {
    /// The problems that left an entry or line unserved.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }
}
