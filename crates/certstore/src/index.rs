//! The lookup index: sorted arrays searched by binary search.
//!
//! Names are stored by a 64-bit hash in one sorted `Vec<u64>` (800 KB for 100k names, searched
//! with ~17 probes on contiguous memory), with a parallel array of slots that point into one
//! byte arena holding every name; a hit is confirmed by comparing the name bytes. Equal hashes
//! of different names are kept side by side and told apart by that comparison.
//! Sorting uses this crate's [`introsort`](crate::sort) with (hash, name, entry) as the key, so
//! among entries claiming the same name the first in source order wins.

use crate::cert::KeyTypes;
use crate::name::{MAX_NAME_LEN, normalize_lookup, parent};
use crate::sort::introsort_by;
use std::net::{IpAddr, SocketAddr};

/// Index of an entry in its snapshot (source order).
pub(crate) type EntryIdx = u32;

/// How a lookup matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    /// The server name equals one of the entry's names.
    Exact,
    /// One of the entry's `*.domain` names covers the server name.
    Wildcard,
    /// The local address and port the connection arrived on.
    IpPort,
    /// The local address the connection arrived on, any port.
    Ip,
    /// The default entry: nothing more specific matched.
    Default,
}

impl MatchKind {
    /// The word `edgetls certs lookup` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Wildcard => "wildcard",
            MatchKind::IpPort | MatchKind::Ip => "ip",
            MatchKind::Default => "default",
        }
    }
}

/// One name of a table: its hash, where its bytes are in the arena, its entry, and which of
/// the entry's chains (by key type) serve the name.
#[derive(Clone, Copy)]
struct Key {
    hash: u64,
    off: u32,
    len: u16,
    types: KeyTypes,
    entry: EntryIdx,
}

/// One sorted name table (exact names, wildcard suffixes, or exclusions).
///
/// `keys` is sorted by hash. `starts` cuts it into buckets by the hash's top bits (about two
/// keys per bucket): `starts[b]..starts[b + 1]` holds every key whose hash starts with `b`.
/// A lookup reads one bucket bound and binary-searches that short range, instead of ~17 probes
/// across the whole array, most of them cache misses (155 ns → see docs/benchmarks.md).
#[derive(Default)]
pub(crate) struct NameTable {
    keys: Vec<Key>,
    starts: Vec<u32>,
    /// 64 minus the number of bucket bits (64: a single bucket).
    shift: u32,
    arena: Vec<u8>,
}

/// A name two entries claimed for the same key type: `winner` keeps it for `types`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub(crate) name: String,
    pub(crate) winner: EntryIdx,
    pub(crate) loser: EntryIdx,
    pub(crate) types: KeyTypes,
}

impl NameTable {
    /// Builds a table from `(name, entry, key types)` triples. With `dedup`, each key type of a
    /// name is kept by the lowest entry claiming it (one chain per key type per name), and every
    /// claim that loses a key type is returned as a conflict; with `keep_losers` as well, the
    /// losing claims stay in the table after the winners (a lookup reaches them only where a
    /// winner excludes the name: HAProxy's crt-list `!name` undoes only its own line's match).
    pub(crate) fn build<'a>(
        names: impl IntoIterator<Item = (&'a str, EntryIdx, KeyTypes)>,
        dedup: bool,
        keep_losers: bool,
    ) -> (NameTable, Vec<Conflict>) {
        let mut arena = Vec::new();
        let mut recs: Vec<Key> = names
            .into_iter()
            .map(|(name, entry, types)| {
                let off = arena.len() as u32;
                arena.extend_from_slice(name.as_bytes());
                Key {
                    hash: hash(name.as_bytes()),
                    off,
                    len: name.len() as u16,
                    types,
                    entry,
                }
            })
            .collect();
        let text = |k: &Key| &arena[k.off as usize..k.off as usize + k.len as usize];
        introsort_by(&mut recs, |a, b| {
            (a.hash, text(a), a.entry) < (b.hash, text(b), b.entry)
        });
        let mut conflicts = Vec::new();
        let mut keys: Vec<Key> = Vec::with_capacity(recs.len());
        // The first key of the current name's run, in `keys`, and who won which key types.
        let mut run = 0;
        let mut winners: Vec<(EntryIdx, KeyTypes)> = Vec::new();
        for mut rec in recs {
            let same_name = keys
                .get(run)
                .is_some_and(|first| first.hash == rec.hash && text(first) == text(&rec));
            if !same_name {
                run = keys.len();
                winners.clear();
            }
            if dedup {
                let claimed = rec.types;
                for &(entry, won) in &winners {
                    let lost = rec.types.intersect(won);
                    if lost.is_empty() {
                        continue;
                    }
                    if entry != rec.entry {
                        conflicts.push(Conflict {
                            name: String::from_utf8_lossy(text(&rec)).into_owned(),
                            winner: entry,
                            loser: rec.entry,
                            types: lost,
                        });
                    }
                    rec.types = rec.types.minus(lost);
                }
                if !rec.types.is_empty() {
                    winners.push((rec.entry, rec.types));
                }
                if keep_losers {
                    rec.types = claimed;
                } else if rec.types.is_empty() {
                    continue;
                }
            }
            keys.push(rec);
        }
        // Bucket bits: about two keys per bucket.
        let bits = (keys.len() / 2).max(1).ilog2();
        let shift = 64 - bits;
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut i = 0;
        for b in 0..=(1u64 << bits) {
            while i < keys.len() && bucket(keys[i].hash, shift) < b {
                i += 1;
            }
            starts.push(i as u32);
        }
        (
            NameTable {
                keys,
                starts,
                shift,
                arena,
            },
            conflicts,
        )
    }

    /// The keys stored under `name`, in source order (with dedup: at most one per key type).
    fn find<'s>(&'s self, name: &'s [u8]) -> impl Iterator<Item = &'s Key> + 's {
        let h = hash(name);
        let (lo, hi) = match self.starts.get(bucket(h, self.shift) as usize..) {
            Some([lo, hi, ..]) => (*lo as usize, *hi as usize),
            _ => (0, 0),
        };
        let range = &self.keys[lo..hi];
        let start = range.partition_point(|k| k.hash < h);
        range[start..]
            .iter()
            .take_while(move |k| k.hash == h)
            .filter(move |k| &self.arena[k.off as usize..k.off as usize + k.len as usize] == name)
    }

    /// Whether `entry` is stored under `name`.
    fn holds(&self, name: &[u8], entry: EntryIdx) -> bool {
        self.len() > 0 && self.find(name).any(|k| k.entry == entry)
    }

    /// The key types any key of the table serves.
    fn types(&self) -> KeyTypes {
        self.keys
            .iter()
            .fold(KeyTypes::NONE, |all, k| all.union(k.types))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Bytes of heap this table holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.keys.capacity() * size_of::<Key>() + self.starts.capacity() * 4 + self.arena.capacity()
    }
}

/// The bucket of a hash: its top `64 - shift` bits.
fn bucket(hash: u64, shift: u32) -> u64 {
    hash.checked_shr(shift).unwrap_or(0)
}

/// Key of the address table: explicit `dest_ip` keys sort before addresses from certificate
/// SANs, so configuration beats what certificates happen to name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct IpKey {
    addr: IpAddr,
    /// 0 when any port matches.
    port: u16,
    from_san: bool,
    entry: EntryIdx,
}

/// Everything a lookup searches, built once per snapshot and never changed.
#[derive(Default)]
pub(crate) struct Index {
    pub(crate) exact: NameTable,
    pub(crate) wildcard: NameTable,
    /// (name, entry): this entry's wildcards do not serve this name (crt-list `!name`); another
    /// line's wildcard, or the default, still may (as in HAProxy).
    pub(crate) excluded: NameTable,
    ips: Vec<IpKey>,
    /// The defaults, one per key type: the first default entry holding each type.
    defaults: Vec<(EntryIdx, KeyTypes)>,
    /// The key types the name tables serve: once an exact match covers them all, no wildcard
    /// can add one.
    named_types: KeyTypes,
}

/// What the index is built from, per entry.
pub(crate) struct IndexInput<'a> {
    /// (name, entry, the entry's key types serving it)
    pub(crate) exact: Vec<(&'a str, EntryIdx, KeyTypes)>,
    pub(crate) wildcard: Vec<(&'a str, EntryIdx, KeyTypes)>,
    pub(crate) excluded: Vec<(&'a str, EntryIdx)>,
    /// (address, port or 0, from a certificate SAN?, entry)
    pub(crate) ips: Vec<(IpAddr, u16, bool, EntryIdx)>,
    /// Default entries in source order, with their key types.
    pub(crate) defaults: Vec<(EntryIdx, KeyTypes)>,
}

/// One entry a lookup chose, and which of its chains (by key type) serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pick {
    pub(crate) entry: EntryIdx,
    pub(crate) types: KeyTypes,
    pub(crate) how: MatchKind,
}

/// What a lookup chose: at most one entry per key type (three), without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Picks {
    items: [Option<Pick>; 3],
}

impl Picks {
    const NONE: Picks = Picks { items: [None; 3] };

    fn one(entry: EntryIdx, how: MatchKind) -> Picks {
        let mut p = Picks::NONE;
        p.items[0] = Some(Pick {
            entry,
            types: KeyTypes::ALL,
            how,
        });
        p
    }

    /// Adds `types` of `entry`, minus the types already chosen.
    fn add(&mut self, entry: EntryIdx, types: KeyTypes, how: MatchKind) {
        let types = types.minus(self.types());
        if types.is_empty() {
            return;
        }
        if let Some(slot) = self.items.iter_mut().find(|s| s.is_none()) {
            *slot = Some(Pick { entry, types, how });
        }
    }

    fn types(&self) -> KeyTypes {
        self.iter()
            .fold(KeyTypes::NONE, |all, p| all.union(p.types))
    }

    pub(crate) fn first(&self) -> Option<Pick> {
        self.items[0]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Pick> + '_ {
        self.items.iter().map_while(|p| *p)
    }
}

impl Index {
    pub(crate) fn build(input: IndexInput<'_>) -> (Index, Vec<Conflict>) {
        let (exact, mut conflicts) = NameTable::build(input.exact, true, false);
        // A later line's identical wildcard stays: it serves the names an earlier line's
        // `!name` excludes (as HAProxy does).
        let (wildcard, more) = NameTable::build(input.wildcard, true, true);
        conflicts.extend(more.into_iter().map(|c| Conflict {
            name: format!("*.{}", c.name),
            ..c
        }));
        let (excluded, _) = NameTable::build(
            input
                .excluded
                .into_iter()
                .map(|(n, e)| (n, e, KeyTypes::ALL)),
            false,
            false,
        );
        let mut ips: Vec<IpKey> = input
            .ips
            .into_iter()
            .map(|(addr, port, from_san, entry)| IpKey {
                addr,
                port,
                from_san,
                entry,
            })
            .collect();
        introsort_by(&mut ips, |a, b| a < b);
        ips.dedup_by(|later, first| later.addr == first.addr && later.port == first.port);
        // One default per key type: each default entry keeps the types no earlier one holds.
        let mut defaults = Vec::new();
        let mut held = KeyTypes::NONE;
        for (entry, types) in input.defaults {
            let types = types.minus(held);
            if !types.is_empty() {
                held = held.union(types);
                defaults.push((entry, types));
            }
        }
        let named_types = exact.types().union(wildcard.types());
        (
            Index {
                exact,
                wildcard,
                excluded,
                ips,
                defaults,
                named_types,
            },
            conflicts,
        )
    }

    /// The first default entry (what reports name as "the default").
    pub(crate) fn first_default(&self) -> Option<EntryIdx> {
        self.defaults.first().map(|d| d.0)
    }

    /// Finds the entries for a connection: per key type, the first entry with the exact name,
    /// else with a wildcard covering it; when the name matches nothing, the local addr:port,
    /// the local address, then the defaults (one per key type). An entry's wildcard never serves
    /// a name that entry excludes (`!name`); a default does, as in HAProxy (`strict_sni`, with no
    /// default, is how a name is refused).
    pub(crate) fn lookup(&self, sni: Option<&str>, local: Option<SocketAddr>) -> Picks {
        let mut buf = [0u8; MAX_NAME_LEN];
        let name = sni.and_then(|s| normalize_lookup(s, &mut buf));
        if let Some(name) = name {
            let picks = self.lookup_name(name);
            if picks.first().is_some() {
                return picks;
            }
        }
        if let Some(local) = local {
            let ip = canonical_ip(local.ip());
            if local.port() != 0 {
                if let Some(e) = self.find_ip(ip, local.port()) {
                    return Picks::one(e, MatchKind::IpPort);
                }
            }
            if let Some(e) = self.find_ip(ip, 0) {
                return Picks::one(e, MatchKind::Ip);
            }
        }
        let mut picks = Picks::NONE;
        for &(entry, types) in &self.defaults {
            picks.add(entry, types, MatchKind::Default);
        }
        picks
    }

    fn lookup_name(&self, name: &[u8]) -> Picks {
        let mut picks = Picks::NONE;
        for k in self.exact.find(name) {
            picks.add(k.entry, k.types, MatchKind::Exact);
        }
        if picks.types().intersect(self.named_types) == self.named_types {
            return picks;
        }
        let Some(suffix) = parent(name) else {
            return picks;
        };
        for k in self.wildcard.find(suffix) {
            if k.types.minus(picks.types()).is_empty() || self.excluded.holds(name, k.entry) {
                continue;
            }
            picks.add(k.entry, k.types, MatchKind::Wildcard);
        }
        picks
    }

    fn find_ip(&self, addr: IpAddr, port: u16) -> Option<EntryIdx> {
        let i = self
            .ips
            .partition_point(|k| (k.addr, k.port) < (addr, port));
        self.ips
            .get(i)
            .filter(|k| k.addr == addr && k.port == port)
            .map(|k| k.entry)
    }

    pub(crate) fn ip_keys(&self) -> usize {
        self.ips.len()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.exact.heap_bytes()
            + self.wildcard.heap_bytes()
            + self.excluded.heap_bytes()
            + self.ips.capacity() * size_of::<IpKey>()
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view of IPv4 clients) as plain IPv4.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A fixed (unseeded) 64-bit hash: 8 bytes per step, then a full avalanche. Lookups hash the
/// client's name with it; index names come from the operator, so there is nothing for a client
/// to collide against but slower scans of equal-hash runs, which stay correct.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(23) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    }
    // murmur3 fmix64
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests;
