//! A loaded entry: its chains (RSA and/or ECDSA) as compact DER, its names and its metadata.

use crate::cert::{KeyType, KeyTypes};
use crate::key::KeyMaterial;
use crate::source::EntrySpec;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One certificate chain with its key.
#[derive(Debug)]
pub struct Chain {
    pub(crate) key_type: KeyType,
    pub(crate) path: PathBuf,
    /// DER, leaf first. Identical intermediates are shared between entries.
    pub(crate) certs: Vec<Arc<[u8]>>,
    pub(crate) key: KeyMaterial,
    pub(crate) not_after: i64,
    /// The OCSP response file's bytes (DER), checked when the chain is prepared.
    pub(crate) ocsp: Option<Arc<[u8]>>,
    /// The issuer from `CERT.issuer`, when the chain does not hold it (DER).
    pub(crate) issuer: Option<Arc<[u8]>>,
}

impl Chain {
    /// The type of the chain's key (the leaf's public key).
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Whether the key is held elsewhere (see [`crate::KeySource`]).
    pub fn is_remote(&self) -> bool {
        self.key.is_remote()
    }

    /// The certificate file this chain was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The leaf certificate, DER.
    pub fn leaf_der(&self) -> &[u8] {
        &self.certs[0]
    }

    /// Unix time after which the leaf is expired.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Whether an OCSP response file was read for this chain.
    pub fn has_ocsp(&self) -> bool {
        self.ocsp.is_some()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.path.capacity()
            + self.ocsp.as_ref().map_or(0, |o| o.len())
            + self.issuer.as_ref().map_or(0, |o| o.len())
            + self.certs[0].len()
            + self.certs.capacity() * 16
            + self.key.heap_bytes()
    }
}

/// A name an entry serves, and which of its chains (by key type) serve it: all of them for
/// names from crt-list filters; the chains whose certificates name it otherwise (Traffic
/// Server's `ssl_cert_name=rsa.pem,ecdsa.pem` with certificates naming different hosts).
#[derive(Debug)]
pub(crate) struct Name {
    pub(crate) text: Box<str>,
    pub(crate) types: KeyTypes,
}

/// A configured entry as loaded: what a lookup returns.
#[derive(Debug)]
pub struct Entry {
    /// Unique per loaded version; a reload that reuses the entry keeps it.
    pub(crate) id: u64,
    pub(crate) spec: EntrySpec,
    pub(crate) chains: Vec<Chain>,
    /// Normalized exact names and wildcard suffixes (`*.` stripped), each with the chains
    /// (by key type) whose certificates name it.
    pub(crate) names: Vec<Name>,
    pub(crate) wildcards: Vec<Name>,
    pub(crate) exclusions: Vec<Box<str>>,
    pub(crate) san_ips: Vec<IpAddr>,
    pub(crate) content_hash: [u8; 32],
    /// The metadata of its files (size, modification and change times, inode) when loaded: a
    /// reload reads the files again only when it differs.
    pub(crate) stamp: [u8; 32],
}

impl Entry {
    /// Whether `other` claims exactly what this entry claims in a snapshot's index — names and
    /// wildcards with their key types, exclusions, addresses, default, key types, tunnel — so
    /// that one index serves a snapshot holding either (a replaced certificate for the same
    /// names needs no new index).
    pub(crate) fn same_claims(&self, other: &Entry) -> bool {
        fn same(a: &[Name], b: &[Name]) -> bool {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x.text == y.text && x.types == y.types)
        }
        same(&self.names, &other.names)
            && same(&self.wildcards, &other.wildcards)
            && self.exclusions == other.exclusions
            && self.san_ips == other.san_ips
            && self.spec.dest_ip == other.spec.dest_ip
            && self.spec.default == other.spec.default
            && self.key_types() == other.key_types()
            && self.chains.is_empty() == other.chains.is_empty()
    }

    /// How the entry was configured (files, line, options, dest_ip, ticket settings, …).
    /// Identity of this entry's content: kept by a reload when the entry did not change, new
    /// when it did (for caches keyed by entry).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The configuration the entry was loaded from.
    pub fn spec(&self) -> &EntrySpec {
        &self.spec
    }

    /// The chains: one, or an RSA and an ECDSA one. Empty for `action=tunnel`.
    pub fn chains(&self) -> &[Chain] {
        &self.chains
    }

    /// The first certificate file: how reports and `certs lookup` name the entry.
    pub fn path(&self) -> &Path {
        self.spec.display_path()
    }

    /// Exact names this entry serves.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &*n.text)
    }

    /// Wildcard names this entry serves, as `*.suffix`.
    pub fn wildcards(&self) -> impl Iterator<Item = String> + '_ {
        self.wildcards.iter().map(|w| format!("*.{}", w.text))
    }

    /// The key types of its chains; every type for an entry without chains (a tunnel).
    pub fn key_types(&self) -> KeyTypes {
        if self.chains.is_empty() {
            return KeyTypes::ALL;
        }
        self.chains
            .iter()
            .fold(KeyTypes::NONE, |all, c| all.union(KeyTypes::of(c.key_type)))
    }

    /// Whether TLS is passed through untouched for this entry (ATS `action=tunnel`).
    pub fn is_tunnel(&self) -> bool {
        self.spec.tunnel
    }

    /// The earliest expiry of its chains (Unix time).
    pub fn not_after(&self) -> Option<i64> {
        self.chains.iter().map(|c| c.not_after).min()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let names: usize = self
            .names
            .iter()
            .chain(&self.wildcards)
            .map(|n| n.text.len() + size_of::<Name>())
            .sum();
        self.chains.iter().map(Chain::heap_bytes).sum::<usize>() + names + size_of::<Self>()
    }
}
