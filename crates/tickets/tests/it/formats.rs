//! Key files of every layout: read back to the same keys, exact byte layouts, clear errors.

use edgetls_tickets::format::{self, Format};
use edgetls_tickets::{KeySet, KeySize, TicketError, TicketKey};
use std::path::Path;

fn fresh(n: usize, size: KeySize, encrypt: usize) -> KeySet {
    KeySet::new(
        (0..n).map(|_| TicketKey::generate(size).unwrap()).collect(),
        encrypt,
    )
    .unwrap()
}

fn names(set: &KeySet) -> Vec<String> {
    set.keys.iter().map(|k| k.name_hex()).collect()
}

#[test]
fn every_format_reads_back_the_keys_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    for (format, n, size) in [
        (Format::Ats, 3, KeySize::Aes128),
        (Format::Nginx48, 1, KeySize::Aes128),
        (Format::Nginx80, 1, KeySize::Aes256),
        (Format::Haproxy, 3, KeySize::Aes256),
        (Format::Haproxy, 3, KeySize::Aes128),
        (Format::Haproxy, 1, KeySize::Aes256),
    ] {
        let set = fresh(n, size, 0);
        let path = dir.path().join(format.as_str());
        std::fs::write(&path, &*format::write(&set, format).unwrap()).unwrap();
        let back = format::read(&path, format).unwrap();
        // Same keys, same encrypting key, wherever the format puts it.
        let mut a = names(&set);
        let mut b = names(&back);
        a.sort();
        b.sort();
        assert_eq!(a, b, "{format:?}");
        assert_eq!(back.encrypting(), set.encrypting(), "{format:?}");
        for k in &set.keys {
            let same = back.keys.iter().find(|x| x.name() == k.name()).unwrap();
            assert_eq!(same, k, "{format:?}: secrets survive the round trip");
        }
    }
}

#[test]
fn byte_layouts_are_the_ones_each_server_uses() {
    let bytes: Vec<u8> = (0u8..80).collect();
    let p = Path::new("layout");
    // nginx 48: name16 · aes16 · hmac16
    let k = &format::parse(p, &bytes[..48], Format::Nginx48)
        .unwrap()
        .keys[0];
    assert_eq!(k.name()[..], bytes[..16]);
    assert_eq!(k.aes_key(), &bytes[16..32]);
    assert_eq!(k.hmac_secret(), &bytes[32..48]);
    // nginx 80: name16 · hmac32 · aes32
    let k = &format::parse(p, &bytes, Format::Nginx80).unwrap().keys[0];
    assert_eq!(k.hmac_secret(), &bytes[16..48]);
    assert_eq!(k.aes_key(), &bytes[48..80]);
    // ATS: name16 · hmac16 · aes16 per record, record 0 encrypts
    let mut two = bytes[..48].to_vec();
    two.extend_from_slice(&bytes[16..64]);
    let set = format::parse(p, &two, Format::Ats).unwrap();
    assert_eq!(set.keys.len(), 2);
    assert_eq!(set.encrypt, 0);
    assert_eq!(set.keys[0].hmac_secret(), &bytes[16..32]);
    assert_eq!(set.keys[0].aes_key(), &bytes[32..48]);
    // ATS reads ⌊n/48⌋ records and ignores the rest: an 834-byte file (the size of Traffic
    // Server's own test file) is 17 keys.
    let odd: Vec<u8> = (0..834u32).map(|i| (i * 7 % 251) as u8).collect();
    let set = format::parse(p, &odd, Format::Ats).unwrap();
    assert_eq!(set.keys.len(), 17);
    assert_eq!(set.keys[16].name()[..], odd[16 * 48..16 * 48 + 16]);
    // HAProxy: base64 of name16 · aes · hmac, the penultimate line encrypts
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let text = format!(
        "# ticket keys\n{}\n\n{}\n{}\n",
        b64(&bytes[..80]),
        b64(&bytes[..80].iter().rev().copied().collect::<Vec<_>>()),
        b64(&[7u8; 80])
    );
    let set = format::parse(p, text.as_bytes(), Format::Haproxy).unwrap();
    assert_eq!(set.keys.len(), 3);
    assert_eq!(set.encrypt, 1, "HAProxy encrypts with the penultimate key");
    assert_eq!(set.keys[0].aes_key(), &bytes[16..48]);
    assert_eq!(set.keys[0].hmac_secret(), &bytes[48..80]);
}

fn err(bytes: &[u8], format: Format) -> String {
    match format::parse(Path::new("/etc/edge/ticket.key"), bytes, format) {
        Err(e @ (TicketError::Format { .. } | TicketError::Line { .. })) => e.to_string(),
        other => panic!("{format:?}: expected a format error, got {other:?}"),
    }
}

#[test]
fn wrong_sizes_and_bad_base64_are_errors_naming_the_file() {
    let e = err(&[0u8; 47], Format::Ats);
    assert!(
        e.contains("/etc/edge/ticket.key") && e.contains("48-byte records, at least one"),
        "{e}"
    );
    let e = err(&[0u8; 80], Format::Nginx48);
    assert!(
        e.contains("/etc/edge/ticket.key") && e.contains("exactly 48"),
        "{e}"
    );
    let e = err(&[0u8; 48], Format::Nginx80);
    assert!(e.contains("exactly 80"), "{e}");
    let e = err(b"AAAA\nnot*base64!\n", Format::Haproxy);
    assert!(e.contains("/etc/edge/ticket.key:1"), "{e}");
    let e = err(b"# c\n!!!!\n", Format::Haproxy);
    assert!(
        e.contains("/etc/edge/ticket.key:2") && e.contains("base64"),
        "{e}"
    );
    use base64::Engine as _;
    let mixed = format!(
        "{}\n{}\n",
        base64::engine::general_purpose::STANDARD.encode([1u8; 48]),
        base64::engine::general_purpose::STANDARD.encode([2u8; 80])
    );
    let e = err(mixed.as_bytes(), Format::Haproxy);
    assert!(e.contains(":2") && e.contains("different sizes"), "{e}");
    let e = err(b"# only a comment\n", Format::Haproxy);
    assert!(e.contains("no keys"), "{e}");
    assert!("nginx".parse::<Format>().is_err());
    let missing = format::read(Path::new("/nonexistent/ticket.key"), Format::Ats).unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/ticket.key"));
}

#[test]
fn nginx_files_hold_one_key_and_ats_only_aes128() {
    let e = format::write(&fresh(2, KeySize::Aes128, 0), Format::Nginx48).unwrap_err();
    assert!(e.to_string().contains("one key per file"), "{e}");
    let e = format::write(&fresh(1, KeySize::Aes256, 0), Format::Ats).unwrap_err();
    assert!(e.to_string().contains("AES-128"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    // nginx with several files: the first file's key encrypts.
    let (a, b) = (fresh(1, KeySize::Aes256, 0), fresh(1, KeySize::Aes256, 0));
    let (pa, pb) = (dir.path().join("a.key"), dir.path().join("b.key"));
    std::fs::write(&pa, &*format::write(&a, Format::Nginx80).unwrap()).unwrap();
    std::fs::write(&pb, &*format::write(&b, Format::Nginx80).unwrap()).unwrap();
    let set = format::read_files(&[&pa, &pb], Format::Nginx80).unwrap();
    assert_eq!(set.encrypting(), a.encrypting());
    assert_eq!(set.keys.len(), 2);
}

#[test]
fn debug_never_shows_secrets() {
    let k = TicketKey::new([0xab; 16], &[0x11; 32], &[0x22; 32]).unwrap();
    let shown = format!("{k:?} {:?}", KeySet::new(vec![k.clone()], 0).unwrap());
    assert!(shown.contains(&"ab".repeat(16)), "{shown}");
    assert!(
        !shown.contains("1111") && !shown.contains("17, 17") && !shown.contains("2222"),
        "{shown}"
    );
    assert!(!shown.contains("34, 34"), "{shown}");
}
