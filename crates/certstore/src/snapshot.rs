//! An immutable, complete view of the store: entries plus their index.

use crate::cert::KeyTypes;
use crate::entry::Entry;
use crate::index::{Index, MatchKind, Picks};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// What one load produced. Readers hold an `Arc<Snapshot>`; reloads publish a new one.
pub struct Snapshot {
    entries: Vec<Arc<Entry>>,
    /// Shared with the next snapshot when a reload changes no entry's claims.
    pub(crate) index: Arc<Index>,
    pub(crate) trouble: Trouble,
    /// Heap bytes of the entries and the index (kept up to date by partial reloads).
    pub(crate) heap: usize,
    /// Entries by the absolute path of each of their files (built on first use; shared while
    /// the entries' files stay where they are).
    pub(crate) by_path: Arc<OnceLock<ByPath>>,
    /// The soonest notAfter of any chain (kept up to date by partial reloads, which walk the
    /// entries only when the soonest one was replaced).
    pub(crate) nearest_expiry: Option<i64>,
}

/// Entry positions by the bytes of a file's absolute path.
pub(crate) type ByPath = std::collections::HashMap<Box<[u8]>, Vec<u32>>;

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
        let heap = entries.iter().map(|e| e.heap_bytes()).sum::<usize>() + index.heap_bytes();
        let nearest_expiry = entries.iter().filter_map(|e| e.not_after()).min();
        Snapshot {
            entries,
            index: Arc::new(index),
            trouble: Trouble::default(),
            heap,
            by_path: Arc::default(),
            nearest_expiry,
        }
    }

    /// The snapshot after `replaced` entries (positions) of `previous` were loaded again as
    /// `entries[i]`, each claiming what its previous version claimed (`Entry::same_claims`)
    /// from the same files: the index and the path map are shared, the heap size adjusted.
    pub(crate) fn replacing(
        previous: &Snapshot,
        entries: Vec<Arc<Entry>>,
        replaced: &[usize],
    ) -> Self {
        let old: usize = replaced
            .iter()
            .map(|&i| previous.entries[i].heap_bytes())
            .sum();
        let new: usize = replaced.iter().map(|&i| entries[i].heap_bytes()).sum();
        let gone = replaced
            .iter()
            .filter_map(|&i| previous.entries[i].not_after())
            .min();
        let came = replaced
            .iter()
            .filter_map(|&i| entries[i].not_after())
            .min();
        let nearest_expiry = match (previous.nearest_expiry, gone) {
            // The soonest may have been replaced: look again.
            (Some(p), Some(g)) if g <= p => entries.iter().filter_map(|e| e.not_after()).min(),
            (p, _) => p.into_iter().chain(came).min(),
        };
        Snapshot {
            nearest_expiry,
            entries,
            index: Arc::clone(&previous.index),
            trouble: Trouble::default(),
            heap: (previous.heap + new).saturating_sub(old),
            by_path: Arc::clone(&previous.by_path),
        }
    }

    /// Entry positions by file (absolute path bytes), built once per set of files.
    pub(crate) fn by_path(&self) -> &ByPath {
        self.by_path.get_or_init(|| {
            let mut map = ByPath::new();
            for (i, e) in self.entries.iter().enumerate() {
                for f in crate::load::entry_paths(&e.spec) {
                    let abs = crate::watch::absolute(f);
                    let key: Box<[u8]> = abs.as_os_str().as_encoded_bytes().into();
                    map.entry(key).or_default().push(i as u32);
                }
            }
            map
        })
    }

    /// An empty snapshot: every lookup misses.
    pub fn empty() -> Self {
        Snapshot {
            entries: Vec::new(),
            index: Arc::default(),
            heap: 0,
            by_path: Arc::default(),
            trouble: Trouble::default(),
            nearest_expiry: None,
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
        self.heap
    }
}
