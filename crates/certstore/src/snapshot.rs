//! An immutable, complete view of the store: entries plus their index.

use crate::entry::Entry;
use crate::index::{Index, MatchKind};
use std::net::SocketAddr;
use std::sync::Arc;

/// What one load produced. Readers hold an `Arc<Snapshot>`; reloads publish a new one.
pub struct Snapshot {
    entries: Vec<Arc<Entry>>,
    pub(crate) index: Index,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// The entry a lookup chose and how.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    pub entry: &'a Arc<Entry>,
    pub how: MatchKind,
}

impl Snapshot {
    pub(crate) fn new(entries: Vec<Arc<Entry>>, index: Index) -> Self {
        Snapshot { entries, index }
    }

    /// An empty snapshot: every lookup misses.
    pub fn empty() -> Self {
        Snapshot {
            entries: Vec::new(),
            index: Index::default(),
        }
    }

    /// Chooses the entry for a connection: exact name, wildcard, local address and port, local
    /// address, then the default. `sni` is normalized (case, one trailing dot) without allocating.
    pub fn lookup(&self, sni: Option<&str>, local: Option<SocketAddr>) -> Option<Selected<'_>> {
        let (idx, how) = self.index.lookup(sni, local)?;
        Some(Selected {
            entry: &self.entries[idx as usize],
            how,
        })
    }

    /// Every served entry, in source order.
    pub fn entries(&self) -> &[Arc<Entry>] {
        &self.entries
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.iter().map(|e| e.heap_bytes()).sum::<usize>() + self.index.heap_bytes()
    }
}
