//! Policy: finding the rule for a server name among 10 and 10,000 rules, and the whole
//! ClientHello decision (rule, context switch, per-connection settings, certificate).
//!
//! `cargo bench -p edgetls-benches --bench policy`

use criterion::{Criterion, criterion_group, criterion_main};
use edgetls_certstore::{CertStore, LoadOptions, Source};
use edgetls_policy::{Env, Policy, config, decide};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

/// `n` rules: exact names, every tenth a one-label wildcard, four kinds of settings, a default.
fn policy(n: usize) -> Policy {
    let mut text = String::new();
    for i in 0..n {
        let fqdn = if i % 10 == 9 {
            format!("*.zone{i}.example.com")
        } else {
            format!("site{i}.example.com")
        };
        let extra = match i % 4 {
            0 => "alpn = [\"h2\", \"http/1.1\"]",
            1 => "alpn = [\"http/1.1\"]",
            2 => "valid_tls_version_min_in = \"TLSv1_3\"",
            _ => "tickets = false",
        };
        let _ = writeln!(text, "[[sni]]\nfqdn = \"{fqdn}\"\n{extra}\n");
    }
    text.push_str("[[sni]]\nfqdn = \"*\"\n");
    Policy::build(
        config::parse(Path::new("bench.toml"), &text).unwrap(),
        &Env::default(),
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    for n in [10, 10_000] {
        let p = policy(n);
        let exact = format!("site{}.example.com", n / 2);
        let wild = format!("www.zone{}.example.com", n - 1);
        c.bench_function(&format!("policy match exact, {n} rules"), |b| {
            b.iter(|| p.find_index(black_box(Some(exact.as_str())), None))
        });
        c.bench_function(&format!("policy match wildcard, {n} rules"), |b| {
            b.iter(|| p.find_index(black_box(Some(wild.as_str())), None))
        });
        c.bench_function(
            &format!("policy match no rule but the default, {n} rules"),
            |b| b.iter(|| p.find_index(black_box(Some("unknown.example.org")), None)),
        );
    }

    // The whole decision on a real connection object, with a certificate from the store.
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![
        "site5000.example.com".to_string(),
        "site5001.example.com".to_string(),
    ])
    .unwrap()
    .self_signed(&key)
    .unwrap();
    std::fs::write(
        dir.path().join("site.pem"),
        format!("{}{}", cert.pem(), key.serialize_pem()),
    )
    .unwrap();
    let (certs, _) =
        CertStore::load(vec![Source::Dir(dir.path().into())], LoadOptions::default()).unwrap();
    let certs = std::sync::Arc::new(certs);
    let p = policy(10_000);
    let base = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .unwrap()
        .build();
    // Two names with different settings, alternately: every decision switches contexts (a
    // switch to the context a connection already has costs nothing and would flatter).
    let names = ["site5000.example.com", "site5001.example.com"];
    let mut i = 0;
    c.bench_function(
        "ClientHello decision: rule + context + settings + certificate, 10,000 rules",
        |b| {
            b.iter(|| {
                i ^= 1;
                let mut ssl = Ssl::new(base.context()).unwrap();
                decide(&p, Some(&certs), &mut ssl, black_box(Some(names[i])), None).unwrap()
            })
        },
    );
    c.bench_function(
        "a new connection object alone (SSL_new + SSL_free), for subtraction",
        |b| b.iter(|| Ssl::new(base.context()).unwrap()),
    );
    c.bench_function(
        "ClientHello decision without a certificate store, 10,000 rules",
        |b| {
            b.iter(|| {
                i ^= 1;
                let mut ssl = Ssl::new(base.context()).unwrap();
                decide(&p, None, &mut ssl, black_box(Some(names[i])), None).unwrap()
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
