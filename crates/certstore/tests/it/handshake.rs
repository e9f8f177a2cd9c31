//! Real handshakes: an OpenSSL server selecting certificates through the store, and the
//! `openssl s_client` command-line client choosing names and signature algorithms.

use crate::common::Pki;
use edgetls_certstore::{CertStore, LoadOptions, Source, servername_callback};
use edgetls_testkit::s_client::SClient;
use edgetls_testkit::tls_server::{Answer, serve_with};
use openssl::ssl::{SslContext, SslMethod};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

/// Serves TLS on `bind` (port 0 picks one) until the test process ends; returns the address.
pub(crate) fn serve(store: Arc<CertStore>, bind: &str) -> SocketAddr {
    let mut ctx = SslContext::builder(SslMethod::tls_server()).unwrap();
    ctx.set_servername_callback(servername_callback(store));
    edgetls_certstore::ocsp::enable_stapling(&mut ctx).unwrap();
    let greet: Answer = Box::new(|tls| {
        let _ = tls.write_all(b"hello\n");
    });
    // Left running: the tests ask it until they end.
    Box::leak(Box::new(serve_with(ctx.build(), bind, greet))).addr
}

/// What `openssl s_client` saw: the leaf's subject CN and public key size, or None on failure.
pub(crate) fn s_client(
    addr: SocketAddr,
    sni: Option<&str>,
    extra: &[&str],
) -> Option<(String, u32)> {
    let out = SClient::connect(addr)
        .name(sni.unwrap_or(""))
        .args(["-ign_eof"])
        .args(extra)
        .run();
    if !out.ok || !out.stdout.contains("hello") {
        eprintln!("s_client {sni:?} {extra:?} failed: {}", out.text());
        return None;
    }
    let text = out.stdout;
    let cn = text
        .lines()
        .find_map(|l| l.strip_prefix("subject=CN = "))?
        .trim()
        .to_string();
    let bits = text
        .lines()
        .find_map(|l| l.strip_prefix("Server public key is "))?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some((cn, bits))
}

fn store(pki: &Pki, config: &str) -> Arc<CertStore> {
    let path = pki.write("ssl_multicert.config", config);
    let (store, report) =
        CertStore::load(vec![Source::Multicert(path)], LoadOptions::default()).unwrap();
    assert_eq!(report.failed, 0, "{:#?}", report.problems);
    Arc::new(store)
}

fn edge_pki() -> Pki {
    let pki = Pki::new();
    pki.bundle("www.pem", &pki.ecdsa(&["www.example.com"]));
    pki.bundle("wild.pem", &pki.ecdsa(&["*.wild.example.com"]));
    pki.bundle("default.pem", &pki.ecdsa(&["default.example.com"]));
    pki.bundle("dual.rsa.pem", &pki.rsa(&["dual.example.com"]));
    pki.bundle("dual.ec.pem", &pki.ecdsa(&["dual.example.com"]));
    pki.bundle("byip.pem", &pki.ecdsa(&["byip.example.com"]));
    pki
}

const EDGE: &str = "ssl_cert_name=www.pem\n\
                    ssl_cert_name=wild.pem\n\
                    ssl_cert_name=dual.rsa.pem,dual.ec.pem\n\
                    dest_ip=127.0.0.2 ssl_cert_name=byip.pem\n\
                    dest_ip=* ssl_cert_name=default.pem\n";

#[test]
fn sni_selects_exact_wildcard_and_default() {
    let pki = edge_pki();
    let addr = serve(store(&pki, EDGE), "127.0.0.1:0");
    let cn = |sni: Option<&str>| s_client(addr, sni, &[]).map(|(cn, _)| cn);
    assert_eq!(
        cn(Some("www.example.com")).as_deref(),
        Some("www.example.com")
    );
    assert_eq!(
        cn(Some("WWW.Example.COM")).as_deref(),
        Some("www.example.com")
    );
    assert_eq!(
        cn(Some("api.wild.example.com")).as_deref(),
        Some("*.wild.example.com")
    );
    // One label only: a.b.wild.example.com is not covered by *.wild.example.com.
    assert_eq!(
        cn(Some("a.b.wild.example.com")).as_deref(),
        Some("default.example.com")
    );
    assert_eq!(
        cn(Some("unknown.example.org")).as_deref(),
        Some("default.example.com")
    );
    assert_eq!(cn(None).as_deref(), Some("default.example.com"));
}

#[test]
fn the_local_address_selects_dest_ip_entries() {
    let pki = edge_pki();
    let addr = serve(store(&pki, EDGE), "127.0.0.2:0");
    assert_eq!(
        s_client(addr, None, &[]).map(|(cn, _)| cn).as_deref(),
        Some("byip.example.com")
    );
    // A name still beats the address.
    assert_eq!(
        s_client(addr, Some("www.example.com"), &[])
            .map(|(cn, _)| cn)
            .as_deref(),
        Some("www.example.com")
    );
}

#[test]
fn dual_chains_follow_the_clients_signature_algorithms() {
    let pki = edge_pki();
    let addr = serve(store(&pki, EDGE), "127.0.0.1:0");
    let bits = |extra: &[&str]| s_client(addr, Some("dual.example.com"), extra).map(|(_, b)| b);
    for version in ["-tls1_3", "-tls1_2"] {
        assert_eq!(
            bits(&[version, "-sigalgs", "ecdsa_secp256r1_sha256"]),
            Some(256),
            "{version} ECDSA"
        );
        assert_eq!(
            bits(&[version, "-sigalgs", "rsa_pss_rsae_sha256"]),
            Some(2048),
            "{version} RSA-PSS"
        );
    }
    assert_eq!(
        bits(&["-tls1_2", "-sigalgs", "RSA+SHA256"]),
        Some(2048),
        "TLS 1.2 PKCS#1"
    );
}

#[test]
fn no_match_and_no_default_ends_the_handshake() {
    let pki = edge_pki();
    // An ssl_multicert.config has a default only with dest_ip=* (as in Traffic Server).
    let path = pki.write("only.config", "ssl_cert_name=www.pem\n");
    let (store, report) =
        CertStore::load(vec![Source::Multicert(path)], LoadOptions::default()).unwrap();
    assert_eq!(report.default, None);
    let addr = serve(Arc::new(store), "127.0.0.1:0");
    assert!(s_client(addr, Some("www.example.com"), &[]).is_some());
    assert_eq!(s_client(addr, Some("other.example.com"), &[]), None);
}
