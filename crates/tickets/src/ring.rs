//! The key ring: one encrypting key and the keys that may still decrypt, swapped atomically on
//! refresh; lookups by name take no lock.

use crate::clock::{Clock, SystemClock};
use crate::error::TicketError;
use crate::key::TicketKey;
use crate::source::TicketKeySource;
use arc_swap::ArcSwap;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// What the handshake path reads.
#[derive(Debug)]
struct Ring {
    encrypt: Arc<TicketKey>,
    /// Keys that decrypt, with the time (Unix seconds) until which they do.
    decrypt: Vec<(Arc<TicketKey>, u64)>,
    /// Where each name is in `decrypt`: a lookup costs the same with 3 keys or 100,000.
    by_name: HashMap<[u8; 16], usize>,
}

impl Ring {
    fn new(encrypt: Arc<TicketKey>, decrypt: Vec<(Arc<TicketKey>, u64)>) -> Ring {
        let mut by_name = HashMap::with_capacity(decrypt.len());
        for (i, (k, _)) in decrypt.iter().enumerate() {
            by_name.entry(*k.name()).or_insert(i); // the first of a name, as a scan finds
        }
        Ring {
            encrypt,
            decrypt,
            by_name,
        }
    }
}

/// Ticket counters (monotonic).
#[derive(Debug, Default)]
pub struct Counters {
    /// Tickets issued (encrypted).
    pub issued: AtomicU64,
    /// Sessions resumed from a ticket (any accepted key).
    pub resumed: AtomicU64,
    /// Of those, tickets decrypted with a key that no longer encrypts: a new ticket was issued.
    pub renewed: AtomicU64,
    /// Tickets whose key name is unknown or expired: full handshake.
    pub unknown_key: AtomicU64,
    /// Tickets that could not be decrypted (unknown key, or a bad MAC or format): full handshake.
    pub not_decrypted: AtomicU64,
    /// Refreshes that failed (the previous keys stay in force).
    pub refresh_failures: AtomicU64,
    /// Handshakes the ticket callback ended (a key the TLS library refused; the reason is
    /// recorded on the connection as `ticket_keys`).
    pub failed: AtomicU64,
}

impl Counters {
    /// Tickets with a known key that still failed to decrypt (bad MAC, corrupt).
    pub fn decrypt_failures(&self) -> u64 {
        self.not_decrypted
            .load(Relaxed)
            .saturating_sub(self.unknown_key.load(Relaxed))
    }
}

/// Settings of a [`TicketKeys`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RingOptions {
    /// Seconds a key that stopped encrypting (or left the source) still decrypts.
    pub grace: u64,
    /// Seconds between looks at the source (file changes, schedule steps).
    pub refresh_every: u64,
}

impl RingOptions {
    /// Keys decrypt `grace` seconds after they stop encrypting; the source is looked at every
    /// `refresh_every` seconds.
    pub fn new(grace: u64, refresh_every: u64) -> RingOptions {
        RingOptions {
            grace,
            refresh_every,
        }
    }
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            grace: 12 * 3600,
            refresh_every: 10,
        }
    }
}

/// Session-ticket keys in force, refreshed from a [`TicketKeySource`].
pub struct TicketKeys {
    source: Box<dyn TicketKeySource>,
    clock: Box<dyn Clock>,
    opts: RingOptions,
    ring: ArcSwap<Ring>,
    next_refresh: AtomicU64,
    refreshing: Mutex<Option<String>>,
    counters: Counters,
    refresher: AtomicBool,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeys")
            .field("source", &self.source.describe())
            .field("opts", &self.opts)
            .field("encrypting", &self.ring.load().encrypt.name_hex())
            .finish_non_exhaustive()
    }
}

/// A key found for a ticket.
#[derive(Debug, Clone)]
pub struct Found {
    /// The key.
    pub key: Arc<TicketKey>,
    /// False when the key no longer encrypts: the ticket should be renewed.
    pub current: bool,
}

impl TicketKeys {
    /// Keys from `source` on the system clock.
    pub fn new(source: impl TicketKeySource, opts: RingOptions) -> Result<TicketKeys, TicketError> {
        TicketKeys::with_clock(source, opts, SystemClock)
    }

    /// Keys from `source` on `clock`. Fails if the source has no keys now.
    pub fn with_clock(
        source: impl TicketKeySource,
        opts: RingOptions,
        clock: impl Clock,
    ) -> Result<TicketKeys, TicketError> {
        let now = clock.now();
        let set = source.keys(now)?;
        let ring = Ring::new(
            Arc::new(set.encrypting().clone()),
            set.keys
                .iter()
                .map(|k| (Arc::new(k.clone()), u64::MAX))
                .collect(),
        );
        Ok(TicketKeys {
            source: Box::new(source),
            clock: Box::new(clock),
            opts,
            ring: ArcSwap::from_pointee(ring),
            next_refresh: AtomicU64::new(now + opts.refresh_every),
            refreshing: Mutex::new(None),
            counters: Counters::default(),
            refresher: AtomicBool::new(false),
        })
    }

    /// What the ring and its ticket callbacks did so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The key that encrypts new tickets now.
    pub fn encrypting(&self) -> Arc<TicketKey> {
        self.maybe_refresh();
        Arc::clone(&self.ring.load().encrypt)
    }

    /// The key that encrypts new tickets, as the ring holds it now, without looking at the
    /// source even if a refresh is due (for the ticket callback: a source may read files).
    pub fn encrypting_in_force(&self) -> Arc<TicketKey> {
        Arc::clone(&self.ring.load().encrypt)
    }

    /// The key named `name`, if it may decrypt now.
    pub fn find(&self, name: &[u8]) -> Option<Found> {
        self.maybe_refresh();
        self.find_in_force(name)
    }

    /// As [`find`](Self::find), without looking at the source even if a refresh is due.
    pub fn find_in_force(&self, name: &[u8]) -> Option<Found> {
        let now = self.clock.now();
        let ring = self.ring.load();
        if ring.encrypt.name()[..] == *name {
            return Some(Found {
                key: Arc::clone(&ring.encrypt),
                current: true,
            });
        }
        let name: &[u8; 16] = name.try_into().ok()?;
        let (k, until) = &ring.decrypt[*ring.by_name.get(name)?];
        (*until > now).then(|| Found {
            key: Arc::clone(k),
            current: false,
        })
    }

    /// Names of the keys in force (encrypting first), with how long they decrypt.
    pub fn names(&self) -> Vec<(String, Option<u64>)> {
        let ring = self.ring.load();
        let mut out = vec![(ring.encrypt.name_hex(), None)];
        for (k, until) in &ring.decrypt {
            if k.name() != ring.encrypt.name() {
                out.push((k.name_hex(), (*until != u64::MAX).then_some(*until)));
            }
        }
        out
    }

    /// Why the last refresh failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.refreshing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Refreshes when the interval has passed; never blocks a handshake on another refresh.
    fn maybe_refresh(&self) {
        let now = self.clock.now();
        if now < self.next_refresh.load(Relaxed) {
            return;
        }
        if let Ok(mut last_error) = self.refreshing.try_lock() {
            self.next_refresh
                .store(now + self.opts.refresh_every, Relaxed);
            *last_error = self.refresh_at(now).err().map(|e| {
                self.counters.refresh_failures.fetch_add(1, Relaxed);
                e.to_string()
            });
        }
    }

    /// Looks at the source on a thread of the ring's own every `refresh_every` seconds (at
    /// least 1 s), for as long as the ring is in use; the ticket callback never does. Started
    /// once by `install`; calling it again does nothing. Without it, [`refresh`](Self::refresh)
    /// (or [`encrypting`](Self::encrypting) / [`find`](Self::find)) keeps the ring current.
    pub fn start_refresher(self: &Arc<Self>) {
        if self.refresher.swap(true, Relaxed) {
            return;
        }
        let ring = Arc::downgrade(self);
        let every = std::time::Duration::from_secs(self.opts.refresh_every.max(1));
        let spawned = std::thread::Builder::new()
            .name("edgetls-ticket-keys".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    // The ring is gone (every context that used it was freed): so is this thread.
                    let Some(ring) = ring.upgrade() else { return };
                    ring.maybe_refresh();
                }
            });
        if spawned.is_err() {
            // No thread to be had: handshakes still work with the keys in force, and the
            // failure shows as a refresh failure.
            self.counters.refresh_failures.fetch_add(1, Relaxed);
            self.refresher.store(false, Relaxed);
        }
    }

    /// Looks at the source now (e.g. after a signal). Keys that left it keep decrypting for the
    /// grace window; on error the keys in force stay.
    pub fn refresh(&self) -> Result<(), TicketError> {
        let _guard = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh_at(self.clock.now())
    }

    fn refresh_at(&self, now: u64) -> Result<(), TicketError> {
        let set = self.source.keys(now)?;
        let old = self.ring.load();
        let encrypt = Arc::new(set.encrypting().clone());
        let mut decrypt: Vec<(Arc<TicketKey>, u64)> = set
            .keys
            .iter()
            .map(|k| (Arc::new(k.clone()), u64::MAX))
            .collect();
        // Keys that were in force and are no longer: decrypt-only until the grace ends. One
        // pass with a set of names: O(keys), whatever the source's period and grace.
        let mut named: HashSet<[u8; 16]> = decrypt.iter().map(|(k, _)| *k.name()).collect();
        let retiring = std::iter::once((&old.encrypt, u64::MAX))
            .chain(old.decrypt.iter().map(|(k, u)| (k, *u)));
        for (k, until) in retiring {
            if until <= now || !named.insert(*k.name()) {
                continue;
            }
            let until = until.min(now.saturating_add(self.opts.grace));
            decrypt.push((Arc::clone(k), until));
        }
        self.ring.store(Arc::new(Ring::new(encrypt, decrypt)));
        Ok(())
    }
}
