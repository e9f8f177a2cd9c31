//! The lookup index: sorted arrays searched by binary search.
//!
//! Names are stored by a 64-bit hash in one sorted `Vec<u64>` (800 KB for 100k names, searched
//! with ~17 probes on contiguous memory), with a parallel array of slots that point into one
//! byte arena holding every name; a hit is confirmed by comparing the name bytes. Equal hashes
//! of different names are kept side by side and told apart by that comparison.
//! Sorting uses this crate's [`introsort`](crate::sort) with (hash, name, entry) as the key, so
//! among entries claiming the same name the first in source order wins.

use crate::name::{MAX_NAME_LEN, normalize_lookup, parent};
use crate::sort::introsort_by;
use std::net::{IpAddr, SocketAddr};

/// Index of an entry in its snapshot (source order).
pub(crate) type EntryIdx = u32;

/// How a lookup matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    Exact,
    Wildcard,
    /// The local address and port the connection arrived on.
    IpPort,
    /// The local address the connection arrived on, any port.
    Ip,
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

/// One name of a table: its hash, where its bytes are in the arena, and its entry.
#[derive(Clone, Copy)]
struct Key {
    hash: u64,
    off: u32,
    len: u16,
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

/// A name two entries claimed: `winner` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub(crate) name: String,
    pub(crate) winner: EntryIdx,
    pub(crate) loser: EntryIdx,
}

impl NameTable {
    /// Builds a table from `(name, entry)` pairs. With `dedup`, a name keeps only the lowest
    /// entry and every other claim is returned as a conflict.
    pub(crate) fn build<'a>(
        names: impl IntoIterator<Item = (&'a str, EntryIdx)>,
        dedup: bool,
    ) -> (NameTable, Vec<Conflict>) {
        let mut arena = Vec::new();
        let mut recs: Vec<Key> = names
            .into_iter()
            .map(|(name, entry)| {
                let off = arena.len() as u32;
                arena.extend_from_slice(name.as_bytes());
                Key {
                    hash: hash(name.as_bytes()),
                    off,
                    len: name.len() as u16,
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
        for rec in recs {
            if let Some(prev) = keys.last() {
                if dedup && prev.hash == rec.hash && text(prev) == text(&rec) {
                    if prev.entry != rec.entry {
                        conflicts.push(Conflict {
                            name: String::from_utf8_lossy(text(&rec)).into_owned(),
                            winner: prev.entry,
                            loser: rec.entry,
                        });
                    }
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

    /// The entries stored under `name` (exactly one when built with dedup).
    fn find<'s>(&'s self, name: &'s [u8]) -> impl Iterator<Item = EntryIdx> + 's {
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
            .map(|k| k.entry)
    }

    fn first(&self, name: &[u8]) -> Option<EntryIdx> {
        self.find(name).next()
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
    /// (name, entry): this entry's wildcards do not cover this name (crt-list `!name`).
    pub(crate) excluded: NameTable,
    ips: Vec<IpKey>,
    pub(crate) default: Option<EntryIdx>,
}

/// What the index is built from, per entry.
pub(crate) struct IndexInput<'a> {
    pub(crate) exact: Vec<(&'a str, EntryIdx)>,
    pub(crate) wildcard: Vec<(&'a str, EntryIdx)>,
    pub(crate) excluded: Vec<(&'a str, EntryIdx)>,
    /// (address, port or 0, from a certificate SAN?, entry)
    pub(crate) ips: Vec<(IpAddr, u16, bool, EntryIdx)>,
    pub(crate) default: Option<EntryIdx>,
}

impl Index {
    pub(crate) fn build(input: IndexInput<'_>) -> (Index, Vec<Conflict>) {
        let (exact, mut conflicts) = NameTable::build(input.exact, true);
        let (wildcard, more) = NameTable::build(input.wildcard, true);
        conflicts.extend(more.into_iter().map(|c| Conflict {
            name: format!("*.{}", c.name),
            ..c
        }));
        let (excluded, _) = NameTable::build(input.excluded, false);
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
        (
            Index {
                exact,
                wildcard,
                excluded,
                ips,
                default: input.default,
            },
            conflicts,
        )
    }

    /// Finds the entry for a connection: exact name, wildcard, local addr:port, local addr,
    /// then the default.
    pub(crate) fn lookup(
        &self,
        sni: Option<&str>,
        local: Option<SocketAddr>,
    ) -> Option<(EntryIdx, MatchKind)> {
        if let Some(found) = sni.and_then(|s| self.lookup_name(s)) {
            return Some(found);
        }
        if let Some(local) = local {
            let ip = canonical_ip(local.ip());
            if local.port() != 0 {
                if let Some(e) = self.find_ip(ip, local.port()) {
                    return Some((e, MatchKind::IpPort));
                }
            }
            if let Some(e) = self.find_ip(ip, 0) {
                return Some((e, MatchKind::Ip));
            }
        }
        self.default.map(|e| (e, MatchKind::Default))
    }

    fn lookup_name(&self, sni: &str) -> Option<(EntryIdx, MatchKind)> {
        let mut buf = [0u8; MAX_NAME_LEN];
        let name = normalize_lookup(sni, &mut buf)?;
        if let Some(e) = self.exact.first(name) {
            return Some((e, MatchKind::Exact));
        }
        let e = self.wildcard.first(parent(name)?)?;
        if self.excluded.len() > 0 && self.excluded.find(name).any(|x| x == e) {
            return None;
        }
        Some((e, MatchKind::Wildcard))
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
