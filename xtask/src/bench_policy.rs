//! `cargo xtask bench --suite policy`: the cost of the policy layer in a handshake. The same
//! TLS 1.3 ECDSA P-256 full handshake, per second of server CPU, with a fixed SSL_CTX holding
//! the certificate and through the policy's ClientHello callback (10,000 rules, the
//! certificate from the store), alternating, one run.

use crate::bench_keyless::median;
use crate::bench_tickets::{run_one, self_signed};
use anyhow::Result;
use edgetls_certstore::{CertStore, LoadOptions, Source};
use edgetls_policy::{Env, Policy, PolicyStore, config, install};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

const RULES: usize = 10_000;

pub(crate) fn run(report: &mut String) -> Result<()> {
    let group = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    let cert = self_signed(&key)?; // CN and SAN-less "site.test": the store indexes the CN
    let dir = tempfile::tempdir()?;
    let mut pem = cert.to_pem()?;
    pem.extend(key.private_key_to_pem_pkcs8()?);
    std::fs::write(dir.path().join("site.pem"), pem)?;
    let (certs, _) = CertStore::load(vec![Source::Dir(dir.path().into())], LoadOptions::default())?;
    let certs = Arc::new(certs);
    let mut text = String::new();
    for i in 0..RULES - 1 {
        let _ = writeln!(
            text,
            "[[sni]]\nfqdn = \"site{i}.example.com\"\nalpn = [\"h2\", \"http/1.1\"]\n"
        );
    }
    text.push_str("[[sni]]\nfqdn = \"site.test\"\nalpn = [\"h2\", \"http/1.1\"]\n");
    let policy = Policy::build(
        config::parse(Path::new("bench.toml"), &text)?,
        &Env::default(),
    )?;
    let store = PolicyStore::fixed(policy, Env::default());

    let fixed = || -> Result<SslAcceptor> {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        b.set_certificate(&cert)?;
        b.set_private_key(&key)?;
        Ok(b.build())
    };
    let with_policy = || -> Result<SslAcceptor> {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        install(&mut b, Arc::clone(&store), Some(Arc::clone(&certs)))?;
        Ok(b.build())
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        a.push(run_one(fixed()?, false)?.0);
        b.push(run_one(with_policy()?, false)?.0);
    }
    let (a, b) = (median(a), median(b));
    let _ = writeln!(
        report,
        "## Policy: a handshake through the ClientHello decision (`cargo xtask bench --suite policy`)\n\n\
         | TLS 1.3 ECDSA P-256 full handshakes, 1 server thread, 1,500 per round | per second of server CPU (median of 5) |\n|---|---:|\n\
         | fixed SSL_CTX with the certificate | {a:.0} |\n\
         | policy: {RULES} rules, ClientHello callback, certificate from the store | {b:.0} |\n\
         | **cost of the policy layer** | **{:+.1}%** (target ≤ +3%) |",
        100.0 * (a / b - 1.0)
    );
    Ok(())
}
