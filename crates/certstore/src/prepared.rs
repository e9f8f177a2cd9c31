//! The OpenSSL objects of entries (certificates, chains, keys), built once and shared by every
//! thread, within a memory budget in bytes.
//!
//! OpenSSL's `X509` and `EVP_PKEY` are reference-counted and safe to use from many threads, so
//! one [`Materialized`] serves every worker's handshakes: a name costs its parse once per
//! process, not once per thread or per settings profile. The cache is split into shards, each
//! an LRU behind its own mutex (a hit is one uncontended lock and an `Arc` clone); what a shard
//! holds is bounded by bytes (an estimate per entry, see [`Materialized::bytes`]), so the budget
//! holds whatever the key types and chain lengths. Entries are keyed by their load id, which a
//! reload keeps for unchanged entries: a reload costs the changed entries only.

use crate::entry::Entry;
use crate::error::CertStoreError;
use crate::ocsp::{self, OcspCheck, OcspState};
use crate::remote::KeySource;
use crate::ssl::{Materialized, ReadyChain};
use lru::LruCache;
use openssl::stack::Stack;
use openssl::x509::X509;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// At most this many shards; fewer for small budgets (one per MiB), so a budget bounds the
/// cache however the entries spread over the shards.
const SHARDS: usize = 16;

/// The default budget: 1 GiB, room for 100,000 ECDSA or RSA entries with their chains
/// (≈ 6–9 KiB each, measured) on a machine with tens of GiB.
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

/// What the cache did since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that built the entry's objects.
    pub misses: u64,
    /// Entries dropped to stay within the budget.
    pub evicted: u64,
    /// Entries held now.
    pub entries: u64,
    /// Their estimated size, bytes.
    pub bytes: u64,
    /// Entries built on an OpenSSL ASYNC job's stack (a hook that built inline in async mode).
    /// Zero when every hook defers its misses to the driver, as `edgetls-policy`'s does.
    pub built_in_async_job: u64,
}

struct Shard {
    lru: LruCache<u64, Arc<Materialized>>,
    bytes: usize,
}

/// Shared intermediates: one `X509` per distinct intermediate (entries share the DER).
struct SharedDer(Arc<[u8]>);

impl PartialEq for SharedDer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedDer {}

impl std::hash::Hash for SharedDer {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (Arc::as_ptr(&self.0) as *const u8 as usize).hash(h);
    }
}

/// DER OCSP responses by the DER of the leaf they are for.
type ByLeaf = HashMap<Arc<[u8]>, Arc<[u8]>>;

/// The process-wide cache of prepared entries.
pub struct PreparedCache {
    shards: Box<[Mutex<Shard>]>,
    /// Bytes each shard may hold.
    shard_budget: usize,
    intermediates: Mutex<LruCache<SharedDer, X509>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evicted: AtomicU64,
    built_in_async_job: AtomicU64,
    /// Unix time OCSP responses are judged by (None: the clock).
    now: Option<i64>,
    /// OCSP responses fetched from responders (see `ocsp_update.rs`), by the leaf's DER:
    /// stapled instead of the response file's.
    fetched: Mutex<ByLeaf>,
    /// Whether `fetched` may hold anything (a build looks only then).
    any_fetched: AtomicBool,
}

impl std::fmt::Debug for PreparedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedCache")
            .field("budget", &(self.shard_budget * self.shards.len()))
            .field("stats", &self.stats())
            .finish()
    }
}

impl PreparedCache {
    /// A cache holding at most `budget` bytes of prepared entries (and at least one entry per
    /// shard).
    pub fn new(budget: usize) -> PreparedCache {
        let shards = (budget >> 20).clamp(1, SHARDS);
        PreparedCache {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        lru: LruCache::unbounded(),
                        bytes: 0,
                    })
                })
                .collect(),
            shard_budget: budget / shards,
            intermediates: Mutex::new(LruCache::new(
                std::num::NonZeroUsize::new(4096).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            now: None,
            fetched: Mutex::new(HashMap::new()),
            any_fetched: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            built_in_async_job: AtomicU64::new(0),
        }
    }

    fn shard(&self, id: u64) -> std::sync::MutexGuard<'_, Shard> {
        // Load ids are sequential: the low bits spread them evenly.
        self.shards[(id as usize) % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The entry's OpenSSL objects, built now if they are not cached (outside any lock; two
    /// threads missing the same entry at once both build it, and the first one stored wins).
    pub fn get(
        &self,
        entry: &Entry,
        remote: Option<&Arc<dyn KeySource>>,
    ) -> Result<Arc<Materialized>, CertStoreError> {
        if let Some(hit) = self.shard(entry.id).lru.get(&entry.id) {
            self.hits.fetch_add(1, Relaxed);
            return Ok(Arc::clone(hit));
        }
        self.misses.fetch_add(1, Relaxed);
        let built = Arc::new(self.build(entry, remote)?);
        let mut shard = self.shard(entry.id);
        if let Some(raced) = shard.lru.get(&entry.id) {
            return Ok(Arc::clone(raced));
        }
        shard.bytes += built.bytes();
        shard.lru.put(entry.id, Arc::clone(&built));
        while shard.bytes > self.shard_budget && shard.lru.len() > 1 {
            match shard.lru.pop_lru() {
                Some((_, old)) => {
                    shard.bytes -= old.bytes();
                    self.evicted.fetch_add(1, Relaxed);
                }
                None => break,
            }
        }
        Ok(built)
    }

    /// The entry's OpenSSL objects if they are cached (counted as a hit), without building them.
    pub fn get_cached(&self, entry: &Entry) -> Option<Arc<Materialized>> {
        let hit = self.shard(entry.id).lru.get(&entry.id).map(Arc::clone)?;
        self.hits.fetch_add(1, Relaxed);
        Some(hit)
    }

    /// Builds `entry`'s objects again if they are cached (a fetched OCSP response changed), so
    /// that no handshake waits for the new ones.
    pub(crate) fn rebuild_if_cached(
        &self,
        entry: &Entry,
        remote: Option<&Arc<dyn KeySource>>,
    ) -> Result<(), CertStoreError> {
        if !self.shard(entry.id).lru.contains(&entry.id) {
            return Ok(());
        }
        let built = Arc::new(self.build(entry, remote)?);
        let mut shard = self.shard(entry.id);
        shard.bytes += built.bytes();
        if let Some(old) = shard.lru.put(entry.id, built) {
            shard.bytes -= old.bytes();
        }
        Ok(())
    }

    /// Sets (or, with `None`, removes) the fetched OCSP response of the chain whose leaf is
    /// `leaf` (DER). Entries already built keep the previous one until rebuilt.
    pub(crate) fn set_fetched(&self, leaf: &Arc<[u8]>, der: Option<Arc<[u8]>>) {
        let mut map = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        match der {
            Some(der) => {
                map.insert(Arc::clone(leaf), der);
            }
            None => {
                map.remove(&leaf[..]);
            }
        }
        self.any_fetched.store(!map.is_empty(), Relaxed);
    }

    /// Keeps only the fetched responses of leaves `keep` accepts.
    pub(crate) fn retain_fetched(&self, keep: impl Fn(&[u8]) -> bool) {
        let mut map = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|leaf, _| keep(leaf));
        self.any_fetched.store(!map.is_empty(), Relaxed);
    }

    /// The fetched OCSP response of the chain whose leaf is `leaf` (DER), if any.
    pub(crate) fn fetched(&self, leaf: &[u8]) -> Option<Arc<[u8]>> {
        if !self.any_fetched.load(Relaxed) {
            return None;
        }
        let map = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        map.get(leaf).cloned()
    }

    /// Drops every entry whose id `keep` refuses (after a reload: ids no snapshot uses).
    pub fn retain(&self, keep: impl Fn(u64) -> bool) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<u64> = shard
                .lru
                .iter()
                .filter(|(id, _)| !keep(**id))
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                if let Some(old) = shard.lru.pop(&id) {
                    shard.bytes -= old.bytes();
                }
            }
        }
    }

    /// Drops the entries with these ids (after a partial reload: the versions it replaced).
    pub(crate) fn forget(&self, ids: &[u64]) {
        for &id in ids {
            let mut shard = self.shard(id);
            if let Some(old) = shard.lru.pop(&id) {
                shard.bytes -= old.bytes();
            }
        }
    }

    /// Judges OCSP responses at Unix time `now` instead of the clock (tests, `certs check
    /// --at`).
    pub fn judging_at(mut self, now: Option<i64>) -> PreparedCache {
        self.now = now;
        self
    }

    /// The states of the OCSP responses of the entries prepared so far (one per chain with a
    /// response file), and the earliest nextUpdate among the good ones.
    pub fn ocsp_states(&self) -> (Vec<OcspState>, Option<i64>) {
        let mut states = Vec::new();
        let mut earliest: Option<i64> = None;
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for (_, m) in shard.lru.iter() {
                for check in m.ocsp_checks() {
                    if check.state == OcspState::Good {
                        if let Some(t) = check.next_update {
                            earliest = Some(earliest.map_or(t, |e| e.min(t)));
                        }
                    }
                    states.push(check.state.clone());
                }
            }
        }
        (states, earliest)
    }

    /// Counters and size.
    pub fn stats(&self) -> CacheStats {
        let (mut entries, mut bytes) = (0, 0);
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            entries += shard.lru.len() as u64;
            bytes += shard.bytes as u64;
        }
        CacheStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            evicted: self.evicted.load(Relaxed),
            built_in_async_job: self.built_in_async_job.load(Relaxed),
            entries,
            bytes,
        }
    }

    fn intermediate(&self, der: &Arc<[u8]>) -> Result<X509, openssl::error::ErrorStack> {
        let key = SharedDer(Arc::clone(der));
        let mut shared = self.intermediates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(x) = shared.get(&key) {
            return Ok(x.clone());
        }
        let x = X509::from_der(der)?;
        shared.put(key, x.clone());
        Ok(x)
    }

    /// Checks a chain's OCSP response against its leaf and issuer (`CERT.issuer`, else the
    /// first certificate after the leaf).
    /// A chain's leaf, parsed, and its other certificates (shared between entries).
    pub(crate) fn leaf_and_chain(
        &self,
        chain: &crate::entry::Chain,
    ) -> Result<(X509, Stack<X509>), openssl::error::ErrorStack> {
        let leaf = X509::from_der(&chain.certs[0])?;
        let mut rest = Stack::new()?;
        for der in &chain.certs[1..] {
            rest.push(self.intermediate(der)?)?;
        }
        Ok((leaf, rest))
    }

    pub(crate) fn check_ocsp(
        &self,
        chain: &crate::entry::Chain,
        der: &[u8],
        leaf: &X509,
        intermediates: &Stack<X509>,
    ) -> OcspCheck {
        let now = self.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        let from_file = chain.issuer.as_ref().map(|d| X509::from_der(d));
        let issuer = match from_file {
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                return OcspCheck {
                    state: OcspState::Invalid(format!("the .issuer file: {e}")),
                    next_update: None,
                };
            }
            None => match intermediates.iter().next() {
                Some(x) => x.to_owned(),
                None => {
                    return OcspCheck {
                        state: OcspState::Invalid(
                            "no issuer: the chain has only the leaf and there is no CERT.issuer file"
                                .into(),
                        ),
                        next_update: None,
                    };
                }
            },
        };
        ocsp::check(der, leaf, &issuer, now)
    }

    fn build(
        &self,
        entry: &Entry,
        remote: Option<&Arc<dyn KeySource>>,
    ) -> Result<Materialized, CertStoreError> {
        if edgetls_tls::in_async_job() {
            self.built_in_async_job.fetch_add(1, Relaxed);
        }
        let mut uses_remote = false;
        let mut chains = Vec::with_capacity(entry.chains.len());
        for chain in &entry.chains {
            let err = |source| CertStoreError::OpenSsl {
                path: chain.path.clone(),
                source,
            };
            let (leaf, intermediates) = self.leaf_and_chain(chain).map_err(err)?;
            let key = match chain.key.to_pkey() {
                Some(local) => local.map_err(err)?,
                None => {
                    uses_remote = true;
                    let remote = remote.ok_or_else(|| CertStoreError::Remote {
                        path: chain.path.clone(),
                        message: "the key is remote and no key server is configured".into(),
                    })?;
                    remote
                        .private_key(&leaf)
                        .map_err(|message| CertStoreError::Remote {
                            path: chain.path.clone(),
                            message,
                        })?
                }
            };
            // A response fetched from the responder is newer than the file's.
            let der = self.fetched(&chain.certs[0]).or_else(|| chain.ocsp.clone());
            let ocsp = der.map(|der| (self.check_ocsp(chain, &der, &leaf, &intermediates), der));
            chains.push(ReadyChain::new(
                chain.key_type,
                leaf,
                intermediates,
                key,
                chain.certs[0].len(),
                ocsp,
            ));
        }
        Ok(Materialized::new(
            chains,
            remote.filter(|_| uses_remote).cloned(),
        ))
    }
}
