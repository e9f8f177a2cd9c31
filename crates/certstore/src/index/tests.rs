use super::*;
use std::net::Ipv4Addr;

const EC: KeyTypes = KeyTypes::of(crate::KeyType::Ecdsa);
const RSA: KeyTypes = KeyTypes::of(crate::KeyType::Rsa);

fn input<'a>(exact: &[(&'a str, u32)], wild: &[(&'a str, u32)]) -> IndexInput<'a> {
    let ec = |v: &[(&'a str, u32)]| v.iter().map(|&(n, e)| (n, e, EC)).collect();
    IndexInput {
        exact: ec(exact),
        wildcard: ec(wild),
        excluded: vec![],
        ips: vec![],
        defaults: vec![],
    }
}

impl Index {
    /// The first entry chosen and how (tests of single-key-type stores).
    fn first(&self, sni: Option<&str>, local: Option<SocketAddr>) -> Option<(u32, MatchKind)> {
        self.lookup(sni, local).first().map(|p| (p.entry, p.how))
    }

    /// Every (entry, types, how) chosen.
    fn all(&self, sni: &str) -> Vec<(u32, KeyTypes, MatchKind)> {
        self.lookup(Some(sni), None)
            .iter()
            .map(|p| (p.entry, p.types, p.how))
            .collect()
    }
}

#[test]
fn exact_beats_wildcard_and_wildcards_cover_one_label() {
    let (ix, conflicts) = Index::build(input(&[("www.example.com", 0)], &[("example.com", 1)]));
    assert!(conflicts.is_empty());
    assert_eq!(
        ix.first(Some("WWW.example.com."), None),
        Some((0, MatchKind::Exact))
    );
    assert_eq!(
        ix.first(Some("api.example.com"), None),
        Some((1, MatchKind::Wildcard))
    );
    assert_eq!(ix.first(Some("example.com"), None), None);
    assert_eq!(ix.first(Some("a.b.example.com"), None), None);
}

#[test]
fn first_entry_in_source_order_keeps_a_conflicting_name() {
    let (ix, conflicts) = Index::build(input(&[("a.com", 5), ("a.com", 2), ("a.com", 9)], &[]));
    assert_eq!(ix.first(Some("a.com"), None), Some((2, MatchKind::Exact)));
    assert_eq!(conflicts.len(), 2);
    assert!(conflicts.iter().all(|c| c.winner == 2 && c.name == "a.com"));
}

#[test]
fn address_keys_then_default() {
    let mut inp = input(&[("a.com", 0)], &[]);
    inp.ips = vec![
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 443, false, 1),
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 0, false, 2),
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 0, true, 3),
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 0, false, 4),
    ];
    inp.defaults = vec![(7, EC)];
    let (ix, _) = Index::build(inp);
    let at = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
    assert_eq!(
        ix.first(Some("a.com"), at("10.0.0.1:443")),
        Some((0, MatchKind::Exact))
    );
    assert_eq!(
        ix.first(Some("b.com"), at("10.0.0.1:443")),
        Some((1, MatchKind::IpPort))
    );
    assert_eq!(
        ix.first(None, at("10.0.0.1:8443")),
        Some((2, MatchKind::Ip))
    );
    assert_eq!(
        ix.first(None, at("[::ffff:10.0.0.1]:8443")),
        Some((2, MatchKind::Ip))
    );
    // An explicit dest_ip beats an address a certificate SAN names, whatever the order.
    assert_eq!(ix.first(None, at("10.0.0.2:1")), Some((4, MatchKind::Ip)));
    assert_eq!(
        ix.first(None, at("10.9.9.9:443")),
        Some((7, MatchKind::Default))
    );
    assert_eq!(ix.first(Some(""), None), Some((7, MatchKind::Default)));
}

#[test]
fn exclusions_remove_a_name_from_that_entrys_wildcard_only() {
    let mut inp = input(&[], &[("example.com", 3)]);
    inp.excluded = vec![("secret.example.com", 3), ("other.example.com", 8)];
    let (ix, _) = Index::build(inp);
    assert_eq!(ix.first(Some("secret.example.com"), None), None);
    assert_eq!(
        ix.first(Some("other.example.com"), None),
        Some((3, MatchKind::Wildcard))
    );
}

#[test]
fn many_names_all_found_and_misses_miss() {
    let names: Vec<String> = (0..50_000)
        .map(|i| format!("host{i}.example.net"))
        .collect();
    let pairs: Vec<(&str, u32)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let (ix, conflicts) = Index::build(input(&pairs, &[]));
    assert!(conflicts.is_empty());
    for (i, n) in names.iter().enumerate() {
        assert_eq!(ix.first(Some(n), None), Some((i as u32, MatchKind::Exact)));
    }
    assert_eq!(ix.first(Some("host50000.example.net"), None), None);
}

#[test]
fn equal_hashes_of_different_names_are_told_apart() {
    // Give b.com the hash of a.com, and put it first in the run: a lookup of a.com must step
    // over it by comparing the name bytes, and b.com must no longer be found under its own hash.
    let (mut t, _) = NameTable::build([("a.com", 1, EC), ("b.com", 2, EC)], true, false);
    let ha = hash(b"a.com");
    let b_key = *t.keys.iter().find(|k| k.entry == 2).unwrap();
    let a_key = *t.keys.iter().find(|k| k.entry == 1).unwrap();
    t.keys = vec![Key { hash: ha, ..b_key }, a_key];
    t.shift = 64;
    t.starts = vec![0, 2];
    assert!(t.holds(b"a.com", 1));
    assert_eq!(t.find(b"a.com").count(), 1);
    assert_eq!(t.find(b"b.com").count(), 0);
}

#[test]
fn empty_and_tiny_tables() {
    let (t, _) = NameTable::build(std::iter::empty(), true, false);
    assert_eq!(t.find(b"a.com").count(), 0);
    for n in 1..40 {
        let names: Vec<String> = (0..n).map(|i| format!("n{i}.com")).collect();
        let (t, _) = NameTable::build(
            names
                .iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), i as u32, EC)),
            true,
            false,
        );
        for (i, s) in names.iter().enumerate() {
            assert_eq!(
                t.find(s.as_bytes()).map(|k| k.entry).collect::<Vec<_>>(),
                [i as u32]
            );
        }
        assert_eq!(t.find(b"zz.com").count(), 0);
    }
}

#[test]
fn one_chain_per_key_type_per_name() {
    // An RSA line and an ECDSA line for the same name both serve it; a second RSA claim loses.
    let inp = IndexInput {
        exact: vec![
            ("a.com", 0, RSA),
            ("a.com", 1, EC),
            ("a.com", 2, RSA.union(EC)),
        ],
        wildcard: vec![],
        excluded: vec![],
        ips: vec![],
        defaults: vec![],
    };
    let (ix, conflicts) = Index::build(inp);
    assert_eq!(
        ix.all("a.com"),
        [(0, RSA, MatchKind::Exact), (1, EC, MatchKind::Exact)]
    );
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    assert!(conflicts.iter().all(|c| c.loser == 2));
}

#[test]
fn a_missing_key_type_comes_from_a_wildcard_never_from_an_excluding_entry() {
    // HAProxy's filters case: an ECDSA line names host.d.tld exactly; an RSA line covers
    // *.d.tld; an RSA-only client gets the RSA wildcard, an ECDSA one the exact line.
    let inp = IndexInput {
        exact: vec![("host.d.tld", 1, EC)],
        wildcard: vec![("d.tld", 0, RSA), ("e.tld", 0, RSA), ("e.tld", 1, EC)],
        excluded: vec![("no.e.tld", 0)],
        ips: vec![],
        defaults: vec![(0, RSA), (1, EC)],
    };
    let (ix, conflicts) = Index::build(inp);
    assert!(conflicts.is_empty());
    assert_eq!(
        ix.all("host.d.tld"),
        [(1, EC, MatchKind::Exact), (0, RSA, MatchKind::Wildcard)]
    );
    // Excluded from entry 0's wildcard: only the ECDSA entry serves it.
    assert_eq!(ix.all("no.e.tld"), [(1, EC, MatchKind::Wildcard)]);
    // No match at all: both defaults, one per key type.
    assert_eq!(
        ix.all("other.tld"),
        [(0, RSA, MatchKind::Default), (1, EC, MatchKind::Default)]
    );
}

#[test]
fn an_excluded_name_is_still_served_by_the_default_as_in_haproxy() {
    // `w.pem *.a.test !www.a.test` alone: HAProxy serves w.pem to www.a.test as its default.
    let inp = IndexInput {
        exact: vec![],
        wildcard: vec![("a.test", 0, EC)],
        excluded: vec![("www.a.test", 0)],
        ips: vec![],
        defaults: vec![(0, EC)],
    };
    let (ix, _) = Index::build(inp);
    assert_eq!(ix.all("www.a.test"), [(0, EC, MatchKind::Default)]);
    assert_eq!(ix.all("api.a.test"), [(0, EC, MatchKind::Wildcard)]);
}

#[test]
fn a_later_identical_wildcard_serves_what_an_earlier_line_excludes() {
    // `w1.pem *.a.test !www.a.test` then `w2.pem *.a.test`: HAProxy serves w2.pem to
    // www.a.test and w1.pem to every other name under a.test.
    let inp = IndexInput {
        exact: vec![],
        wildcard: vec![("a.test", 0, EC), ("a.test", 1, EC)],
        excluded: vec![("www.a.test", 0)],
        ips: vec![],
        defaults: vec![(2, EC)],
    };
    let (ix, conflicts) = Index::build(inp);
    // The second line still loses *.a.test in general: reported, as before.
    assert_eq!(conflicts.len(), 1);
    assert_eq!((conflicts[0].winner, conflicts[0].loser), (0, 1));
    assert_eq!(ix.all("www.a.test"), [(1, EC, MatchKind::Wildcard)]);
    assert_eq!(ix.all("api.a.test"), [(0, EC, MatchKind::Wildcard)]);
    assert_eq!(ix.all("other.test"), [(2, EC, MatchKind::Default)]);
}
