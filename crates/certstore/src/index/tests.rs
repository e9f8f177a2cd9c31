use super::*;
use std::net::Ipv4Addr;

fn input<'a>(exact: &[(&'a str, u32)], wild: &[(&'a str, u32)]) -> IndexInput<'a> {
    IndexInput {
        exact: exact.to_vec(),
        wildcard: wild.to_vec(),
        excluded: vec![],
        ips: vec![],
        default: None,
    }
}

#[test]
fn exact_beats_wildcard_and_wildcards_cover_one_label() {
    let (ix, conflicts) = Index::build(input(&[("www.example.com", 0)], &[("example.com", 1)]));
    assert!(conflicts.is_empty());
    assert_eq!(
        ix.lookup(Some("WWW.example.com."), None),
        Some((0, MatchKind::Exact))
    );
    assert_eq!(
        ix.lookup(Some("api.example.com"), None),
        Some((1, MatchKind::Wildcard))
    );
    assert_eq!(ix.lookup(Some("example.com"), None), None);
    assert_eq!(ix.lookup(Some("a.b.example.com"), None), None);
}

#[test]
fn first_entry_in_source_order_keeps_a_conflicting_name() {
    let (ix, conflicts) = Index::build(input(&[("a.com", 5), ("a.com", 2), ("a.com", 9)], &[]));
    assert_eq!(ix.lookup(Some("a.com"), None), Some((2, MatchKind::Exact)));
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
    inp.default = Some(7);
    let (ix, _) = Index::build(inp);
    let at = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
    assert_eq!(
        ix.lookup(Some("a.com"), at("10.0.0.1:443")),
        Some((0, MatchKind::Exact))
    );
    assert_eq!(
        ix.lookup(Some("b.com"), at("10.0.0.1:443")),
        Some((1, MatchKind::IpPort))
    );
    assert_eq!(
        ix.lookup(None, at("10.0.0.1:8443")),
        Some((2, MatchKind::Ip))
    );
    assert_eq!(
        ix.lookup(None, at("[::ffff:10.0.0.1]:8443")),
        Some((2, MatchKind::Ip))
    );
    // An explicit dest_ip beats an address a certificate SAN names, whatever the order.
    assert_eq!(ix.lookup(None, at("10.0.0.2:1")), Some((4, MatchKind::Ip)));
    assert_eq!(
        ix.lookup(None, at("10.9.9.9:443")),
        Some((7, MatchKind::Default))
    );
    assert_eq!(ix.lookup(Some(""), None), Some((7, MatchKind::Default)));
}

#[test]
fn exclusions_remove_a_name_from_that_entrys_wildcard_only() {
    let mut inp = input(&[], &[("example.com", 3)]);
    inp.excluded = vec![("secret.example.com", 3), ("other.example.com", 8)];
    let (ix, _) = Index::build(inp);
    assert_eq!(ix.lookup(Some("secret.example.com"), None), None);
    assert_eq!(
        ix.lookup(Some("other.example.com"), None),
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
        assert_eq!(ix.lookup(Some(n), None), Some((i as u32, MatchKind::Exact)));
    }
    assert_eq!(ix.lookup(Some("host50000.example.net"), None), None);
}

#[test]
fn equal_hashes_of_different_names_are_told_apart() {
    // Give b.com the hash of a.com, and put it first in the run: a lookup of a.com must step
    // over it by comparing the name bytes, and b.com must no longer be found under its own hash.
    let (mut t, _) = NameTable::build([("a.com", 1), ("b.com", 2)], true);
    let ha = hash(b"a.com");
    let b_key = *t.keys.iter().find(|k| k.entry == 2).unwrap();
    let a_key = *t.keys.iter().find(|k| k.entry == 1).unwrap();
    t.keys = vec![Key { hash: ha, ..b_key }, a_key];
    t.shift = 64;
    t.starts = vec![0, 2];
    assert_eq!(t.first(b"a.com"), Some(1));
    assert_eq!(t.find(b"a.com").count(), 1);
    assert_eq!(t.first(b"b.com"), None);
}

#[test]
fn empty_and_tiny_tables() {
    let (t, _) = NameTable::build(std::iter::empty(), true);
    assert_eq!(t.first(b"a.com"), None);
    for n in 1..40 {
        let names: Vec<String> = (0..n).map(|i| format!("n{i}.com")).collect();
        let (t, _) = NameTable::build(
            names
                .iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), i as u32)),
            true,
        );
        for (i, s) in names.iter().enumerate() {
            assert_eq!(t.first(s.as_bytes()), Some(i as u32));
        }
        assert_eq!(t.first(b"zz.com"), None);
    }
}
