//! One chain per key type per name, chosen by the client's signature algorithms: Traffic
//! Server's dual certificates whose names differ, HAProxy crt-lists with an RSA and an ECDSA
//! line for overlapping names, exclusions, and a default per key type. Checked with real
//! handshakes from `openssl s_client` offering only RSA or only ECDSA signature algorithms.

use crate::common::Pki;
use crate::handshake::{s_client, serve};
use edgetls_certstore::{CertStore, LoadOptions, Source};
use std::net::SocketAddr;
use std::sync::Arc;

/// Only RSA (PSS, as TLS 1.3 signs) or only ECDSA.
const RSA: &[&str] = &["-sigalgs", "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384"];
const EC: &[&str] = &["-sigalgs", "ecdsa_secp256r1_sha256"];

/// What a client offering `algs` is served for `sni`: (leaf CN, key bits), None on failure.
fn served(addr: SocketAddr, sni: &str, algs: &[&str]) -> Option<(String, u32)> {
    s_client(addr, Some(sni), algs)
}

fn load(source: Source) -> (Arc<CertStore>, edgetls_certstore::Report) {
    let (store, report) = CertStore::load(vec![source], LoadOptions::default()).unwrap();
    (Arc::new(store), report)
}

#[test]
fn dual_certificates_naming_different_hosts_serve_each_its_own_names() {
    // Traffic Server's dual-certificate case: one line, two certificates; only the RSA one
    // names rsa.example, only the ECDSA one ecdsa.example, both name both.example.
    let pki = Pki::new();
    pki.bundle("rsa.pem", &pki.rsa(&["rsa.example", "both.example"]));
    pki.bundle("ecdsa.pem", &pki.ecdsa(&["ecdsa.example", "both.example"]));
    let config = pki.write(
        "ssl_multicert.config",
        "dest_ip=* ssl_cert_name=rsa.pem,ecdsa.pem\n",
    );
    let (store, report) = load(Source::Multicert(config));
    assert_eq!(report.failed, 0, "{:#?}", report.problems);
    let addr = serve(store, "127.0.0.1:0");
    // A client that can take either is given the certificate that names the host.
    assert_eq!(
        served(addr, "rsa.example", &[]),
        Some(("rsa.example".into(), 2048))
    );
    assert_eq!(
        served(addr, "ecdsa.example", &[]),
        Some(("ecdsa.example".into(), 256))
    );
    // Both name both.example: the client's signature algorithms choose.
    assert_eq!(served(addr, "both.example", RSA).map(|s| s.1), Some(2048));
    assert_eq!(served(addr, "both.example", EC).map(|s| s.1), Some(256));
    // An ECDSA-only client asking for rsa.example gets no ECDSA certificate that does not
    // name it: the only chain for that name is RSA, and the handshake fails.
    assert_eq!(served(addr, "rsa.example", EC), None);
}

/// A crt-list shaped like HAProxy's filters test: an RSA and an ECDSA line serving overlapping
/// names, a wildcard on each, an exclusion on the RSA line.
fn filters_pki() -> (Pki, std::path::PathBuf) {
    let pki = Pki::new();
    pki.bundle("shop-rsa.pem", &pki.rsa(&["rsa.cert.test"]));
    pki.bundle("shop-ecdsa.pem", &pki.ecdsa(&["ecdsa.cert.test"]));
    let list = pki.write(
        "filters.crt-list",
        "shop-rsa.pem *.shop.test record.shop.test *.blog.test !private.blog.test\n\
         shop-ecdsa.pem record.shop.test another.shop.test *.blog.test\n",
    );
    (pki, list)
}

#[test]
fn crt_list_lines_for_overlapping_names_serve_each_key_type() {
    let (_pki, list) = filters_pki();
    let (store, report) = load(Source::CrtList(list));
    // Overlapping names of different key types are no conflict.
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    let addr = serve(store, "127.0.0.1:0");
    let bits = |sni: &str, algs: &[&str]| served(addr, sni, algs).map(|s| s.1);
    for sni in ["record.shop.test", "a.blog.test"] {
        assert_eq!(bits(sni, RSA), Some(2048), "{sni} RSA");
        assert_eq!(bits(sni, EC), Some(256), "{sni} ECDSA");
    }
    // another.shop.test is ECDSA by exact name; RSA clients get the RSA line's wildcard.
    assert_eq!(bits("another.shop.test", EC), Some(256));
    assert_eq!(bits("another.shop.test", RSA), Some(2048));
    // Only the RSA wildcard covers x.shop.test.
    assert_eq!(bits("x.shop.test", RSA), Some(2048));
    // private.blog.test is excluded from the RSA line, by wildcard and as the default (the RSA
    // line is the first, so the implicit default): an RSA-only client is refused, an ECDSA one
    // served by the ECDSA wildcard.
    assert_eq!(bits("private.blog.test", RSA), None);
    assert_eq!(bits("private.blog.test", EC), Some(256));
    // Filters replace the certificates' own names: rsa.cert.test is served only as the default.
    assert_eq!(
        served(addr, "ecdsa.cert.test", RSA).map(|s| s.0),
        Some("rsa.cert.test".into()),
        "the default, not a name of the ECDSA line"
    );
}

#[test]
fn a_default_per_key_type_and_filters_replace_the_certificates_names() {
    let pki = Pki::new();
    pki.bundle("fallback-rsa.pem", &pki.rsa(&["fallback-rsa.test"]));
    pki.bundle("fallback-ecdsa.pem", &pki.ecdsa(&["fallback-ecdsa.test"]));
    pki.bundle("site.pem", &pki.ecdsa(&["site.test"]));
    // A line whose only filter is an exclusion still uses only its filters: site.test is not
    // a name it serves.
    pki.bundle("hidden.pem", &pki.ecdsa(&["hidden.test"]));
    let list = pki.write(
        "defaults.crt-list",
        "fallback-rsa.pem *\n\
         fallback-ecdsa.pem *\n\
         site.pem site.test\n\
         hidden.pem !nothing.test\n",
    );
    let (store, report) = load(Source::CrtList(list));
    assert_eq!(report.failed, 0, "{:#?}", report.problems);
    let addr = serve(store, "127.0.0.1:0");
    let cn = |sni: &str, algs: &[&str]| served(addr, sni, algs).map(|s| s.0);
    assert_eq!(
        cn("unknown.test", RSA).as_deref(),
        Some("fallback-rsa.test")
    );
    assert_eq!(
        cn("unknown.test", EC).as_deref(),
        Some("fallback-ecdsa.test")
    );
    assert_eq!(cn("site.test", EC).as_deref(), Some("site.test"));
    assert_eq!(
        cn("hidden.test", EC).as_deref(),
        Some("fallback-ecdsa.test"),
        "a line with filters is not named by its certificate"
    );
    // A `*` line's own certificate names are not names either: only the default serves them.
    assert_eq!(
        cn("fallback-rsa.test", EC).as_deref(),
        Some("fallback-ecdsa.test")
    );
}
