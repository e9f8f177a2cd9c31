//! An immutable, complete view of the store: entries plus their index.

use crate::cert::KeyTypes;
use crate::entry::Entry;
use crate::index::{Index, MatchKind, Picks};
use std::net::SocketAddr;
use std::sync::Arc;

/// What one load produced. Readers hold an `Arc<Snapshot>`; reloads publish a new one.
pub struct Snapshot {
    entries: Vec<Arc<Entry>>,
    pub(crate) index: Index,
    pub(crate) trouble: Trouble,
}

/// The configured entries a snapshot does not serve as configured.
#[derive(Debug, Default, Clone)]
pub(crate) struct Trouble {
    /// Entries and configuration lines that failed to load (not served at all).
    pub(crate) failed: usize,
    /// Entries (by id) serving their previous version because their files are broken now.
    pub(crate) kept: std::collections::HashSet<u64>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// What a lookup chose: the entry and how it matched, and, when a name is served by
/// different entries per key type (an RSA and an ECDSA crt-list line), every such entry.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    /// The first entry chosen (by the most specific match, then source order).
    pub entry: &'a Arc<Entry>,
    /// How it matched.
    pub how: MatchKind,
    picks: Picks,
    snapshot: &'a Snapshot,
}

/// One entry serving a connection, and which of its chains do.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// The entry.
    pub entry: &'a Arc<Entry>,
    /// The key types of the entry's chains that serve (the client's signature algorithms
    /// choose among every served chain).
    pub types: KeyTypes,
    /// How it matched.
    pub how: MatchKind,
}

impl<'a> Selected<'a> {
    /// Every entry chosen, at most one per key type, most specific first.
    pub fn served(&self) -> impl Iterator<Item = Served<'a>> + '_ {
        self.picks.iter().map(|p| Served {
            entry: &self.snapshot.entries[p.entry as usize],
            types: p.types,
            how: p.how,
        })
    }
}

impl Snapshot {
    pub(crate) fn new(entries: Vec<Arc<Entry>>, index: Index) -> Self {
        Snapshot {
            entries,
            index,
            trouble: Trouble::default(),
        }
    }

    /// An empty snapshot: every lookup misses.
    pub fn empty() -> Self {
        Snapshot {
            entries: Vec::new(),
            index: Index::default(),
            trouble: Trouble::default(),
        }
    }

    /// Chooses the entries for a connection: per key type, the exact name, else a wildcard;
    /// when the name matches nothing, the local address and port, the local address, then the
    /// defaults (one per key type). `sni` is normalized (case, one trailing dot) without
    /// allocating.
    pub fn lookup(&self, sni: Option<&str>, local: Option<SocketAddr>) -> Option<Selected<'_>> {
        let picks = self.index.lookup(sni, local);
        let first = picks.first()?;
        Some(Selected {
            entry: &self.entries[first.entry as usize],
            how: first.how,
            picks,
            snapshot: self,
        })
    }

    /// Configured entries not served as configured: those that failed to load, and those
    /// serving their previous version because their files are broken now. Zero when every
    /// file is good; a partial reload (`CertStore::reload_changed`) keeps the count of the
    /// entries it did not read.
    pub fn troubled(&self) -> usize {
        self.trouble.failed + self.trouble.kept.len()
    }

    /// Every served entry, in source order.
    pub fn entries(&self) -> &[Arc<Entry>] {
        &self.entries
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.iter().map(|e| e.heap_bytes()).sum::<usize>() + self.index.heap_bytes()
    }
}
