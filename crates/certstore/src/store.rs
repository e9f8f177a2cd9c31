//! The store: the current snapshot behind an atomic pointer, reload and watch.

use crate::entry::Entry;
use crate::error::CertStoreError;
use crate::load::{LoadOptions, load, load_changed};
use crate::prepared::{CacheStats, DEFAULT_CACHE_BYTES, PreparedCache};
use crate::report::Report;
use crate::snapshot::Snapshot;
use crate::source::Source;
use crate::ssl::Materialized;
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The OCSP responses of a store (see [`CertStore::ocsp_summary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspSummary {
    /// (state, chains): good, revoked, unknown, expired, invalid, unchecked.
    pub by_state: Vec<(&'static str, usize)>,
    /// The earliest nextUpdate (Unix time) of the good responses.
    pub earliest_next_update: Option<i64>,
}

/// Certificates from one or more sources, served through atomically swapped snapshots.
///
/// Readers call [`snapshot`](Self::snapshot) (a lock-free atomic load) and never wait for a
/// reload; [`reload`](Self::reload) builds a complete new snapshot aside and publishes it in
/// one pointer swap.
pub struct CertStore {
    sources: Vec<Source>,
    options: LoadOptions,
    current: ArcSwap<Snapshot>,
    /// The entries' OpenSSL objects, shared by every thread.
    prepared: PreparedCache,
    /// Serializes reloads (a watch and a SIGHUP may race); readers never take it.
    reloading: Mutex<()>,
    /// Snapshots replaced while readers held them: freed by a later reload, so that a
    /// handshake letting go of the last reference never pays for freeing 100,000 entries.
    retired: Arc<Mutex<Vec<Arc<Snapshot>>>>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Loads every source. Fails only when a source is unusable (missing directory or config
    /// file); bad entries are in the report and the good ones are served.
    pub fn load(
        sources: Vec<Source>,
        options: LoadOptions,
    ) -> Result<(CertStore, Report), CertStoreError> {
        let (snapshot, report) = load(&sources, &options, None)?;
        let prepared = PreparedCache::new(options.cache_bytes.unwrap_or(DEFAULT_CACHE_BYTES))
            .judging_at(options.now);
        let store = CertStore {
            sources,
            options,
            current: {
                let snapshot = Arc::new(snapshot);
                warm(&snapshot);
                ArcSwap::new(snapshot)
            },
            prepared,
            reloading: Mutex::new(()),
            retired: Arc::default(),
        };
        Ok((store, report))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Re-reads the sources. Entries whose files and configuration are unchanged are reused as
    /// they are; an entry whose new files are broken keeps its previous version (the report
    /// says so); then the new snapshot replaces the old in one atomic swap. If a source is
    /// unusable, nothing changes and the error is returned.
    pub fn reload(&self) -> Result<Report, CertStoreError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.current.load_full();
        let (snapshot, report) = load(&self.sources, &self.options, Some(&old))?;
        drop(old);
        self.publish(snapshot);
        Ok(report)
    }

    /// Reloads after the files in `changed` were written in place or replaced (not removed):
    /// when each is a file of a loaded entry, only those entries are read again — no source is
    /// listed and no other file looked at, so one changed certificate among 100,000 is in effect
    /// in tens of milliseconds. Otherwise (a new file, a file of an entry that failed to load) it
    /// is a full [`reload`](Self::reload). File watchers call this with the paths they saw.
    pub fn reload_changed(&self, changed: &[PathBuf]) -> Result<Report, CertStoreError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.current.load_full();
        let (snapshot, report) = match load_changed(&self.sources, &self.options, &old, changed) {
            Some((Some(snapshot), report)) => (snapshot, report),
            // Nothing changed: the snapshot in force stays.
            Some((None, report)) => return Ok(report),
            None => load(&self.sources, &self.options, Some(&old))?,
        };
        drop(old);
        if report.partial {
            // Only the replaced versions went away: no walk over every entry.
            self.retire(self.current.swap(Arc::new(snapshot)));
            self.prepared.forget(&report.replaced_ids);
        } else {
            self.publish(snapshot);
        }
        Ok(report)
    }

    /// Keeps `old` (a snapshot just replaced) until no reader holds it, then frees it here, on
    /// the reloading thread; frees those retired before that nobody holds any more.
    /// A thread sweeps the retired ones every 100 ms while there are any.
    fn retire(&self, old: Arc<Snapshot>) {
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        // (The swap paid arc-swap's debts: readers' guards are counted references now.)
        retired.retain(|s| Arc::strong_count(s) > 1);
        if Arc::strong_count(&old) == 1 {
            return; // freed here
        }
        let sweeping = !retired.is_empty();
        retired.push(old);
        drop(retired);
        if sweeping {
            return;
        }
        let list = Arc::clone(&self.retired);
        let sweep = move || loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut retired = list.lock().unwrap_or_else(|p| p.into_inner());
            retired.retain(|s| Arc::strong_count(s) > 1);
            if retired.is_empty() {
                return;
            }
        };
        // Without a thread, the next reload frees them.
        let _ = std::thread::Builder::new()
            .name("certstore-retire".into())
            .spawn(sweep);
    }

    /// Makes `snapshot` the current one and frees the cached objects of entries it no longer has.
    fn publish(&self, snapshot: Snapshot) {
        let live: std::collections::HashSet<u64> =
            snapshot.entries().iter().map(|e| e.id()).collect();
        let snapshot = Arc::new(snapshot);
        warm(&snapshot);
        self.retire(self.current.swap(snapshot));
        // Entries that changed or went away are not served any more: free their objects.
        self.prepared.retain(|id| live.contains(&id));
    }

    /// The OpenSSL objects of `entry` (one of this store's), from the shared cache: built on
    /// the first call, then shared by every thread until the budget evicts them.
    pub fn prepared(&self, entry: &Entry) -> Result<Arc<Materialized>, CertStoreError> {
        self.prepared.get(entry, self.options.remote_keys.as_ref())
    }

    /// The entry's OpenSSL objects if the shared cache holds them; nothing is built.
    pub fn prepared_if_cached(&self, entry: &Entry) -> Option<Arc<Materialized>> {
        self.prepared.get_cached(entry)
    }

    /// Builds the OpenSSL objects of every entry now (in parallel), as far as the cache budget
    /// holds them, so that no first handshake of a name pays for them. Returns the entries that
    /// could not be built, with why.
    pub fn prepare_all(&self) -> Vec<(std::path::PathBuf, CertStoreError)> {
        use rayon::prelude::*;
        let snapshot = self.snapshot();
        snapshot
            .entries()
            .par_iter()
            .filter(|e| !e.is_tunnel())
            .filter_map(|e| {
                self.prepared(e)
                    .err()
                    .map(|err| (e.path().to_path_buf(), err))
            })
            .collect()
    }

    /// The OCSP responses of the served chains: how many are in each state (`unchecked`: the
    /// entry has not been prepared yet, so its response has not been checked) and the earliest
    /// nextUpdate of the good ones.
    pub fn ocsp_summary(&self) -> OcspSummary {
        let with_file: usize = self
            .snapshot()
            .entries()
            .iter()
            .map(|e| {
                e.chains()
                    .iter()
                    .filter(|c| c.has_ocsp() || self.prepared.fetched(c.leaf_der()).is_some())
                    .count()
            })
            .sum();
        let (states, earliest) = self.prepared.ocsp_states();
        let mut by_state: Vec<(&'static str, usize)> =
            ["good", "revoked", "unknown", "expired", "invalid"]
                .iter()
                .map(|s| (*s, states.iter().filter(|x| x.as_str() == *s).count()))
                .collect();
        by_state.push(("unchecked", with_file.saturating_sub(states.len())));
        OcspSummary {
            by_state,
            earliest_next_update: earliest,
        }
    }

    /// Checks every chain's OCSP response file now, as a handshake would (without the keys):
    /// (certificate file, check), in source order. For `edgetls certs check`.
    pub fn check_ocsp_files(&self) -> Vec<(PathBuf, crate::ocsp::OcspCheck)> {
        use rayon::prelude::*;
        let snapshot = self.snapshot();
        let chains: Vec<(&crate::Chain, &Arc<[u8]>)> = snapshot
            .entries()
            .iter()
            .flat_map(|e| e.chains())
            .filter_map(|c| c.ocsp.as_ref().map(|der| (c, der)))
            .collect();
        chains
            .par_iter()
            .map(|&(chain, der)| {
                let check = match self.prepared.leaf_and_chain(chain) {
                    Ok((leaf, rest)) => self.prepared.check_ocsp(chain, der, &leaf, &rest),
                    Err(e) => crate::ocsp::OcspCheck {
                        state: crate::ocsp::OcspState::Invalid(format!("certificate: {e}")),
                        next_update: None,
                    },
                };
                (chain.path().to_path_buf(), check)
            })
            .collect()
    }

    /// Staples `der`, fetched from the responder, for the chain whose leaf is `leaf` instead of
    /// its response file (`None`: back to the file), and rebuilds the cached objects of
    /// `entries` (the entries with that chain) so that the next handshake has it.
    pub(crate) fn set_fetched_ocsp(
        &self,
        leaf: &Arc<[u8]>,
        der: Option<Arc<[u8]>>,
        entries: &[u64],
    ) {
        self.prepared.set_fetched(leaf, der);
        let snapshot = self.snapshot();
        for e in snapshot
            .entries()
            .iter()
            .filter(|e| entries.contains(&e.id()))
        {
            if let Err(err) = self
                .prepared
                .rebuild_if_cached(e, self.options.remote_keys.as_ref())
            {
                tracing::warn!("{}: {err}", e.path().display());
            }
        }
    }

    /// Forgets the fetched responses of leaves `keep` refuses (chains no longer served).
    pub(crate) fn retain_fetched_ocsp(&self, keep: impl Fn(&[u8]) -> bool) {
        self.prepared.retain_fetched(keep);
    }

    /// What the shared cache of OpenSSL objects holds and did.
    pub fn cache_stats(&self) -> CacheStats {
        self.prepared.stats()
    }

    /// The options the store loads with.
    pub fn options(&self) -> &LoadOptions {
        &self.options
    }

    /// The sources this store reads.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }
}

/// Builds, off the caller's thread, what a partial reload of `snapshot` looks entries up by
/// (a file → entries map: ≈ 0.2 s and ≈ 13 MB at 100,000 entries), so that the first changed
/// file after a full load is in effect as fast as the next.
fn warm(snapshot: &Arc<Snapshot>) {
    if snapshot.entries().len() < 1_000 {
        return; // built on first use in well under a millisecond
    }
    let snapshot = Arc::clone(snapshot);
    let _ = std::thread::Builder::new()
        .name("certstore-warm".into())
        .spawn(move || {
            let _ = snapshot.by_path();
        });
}
