//! Cold handshakes with large chains and remote keys (`[keyless]`, so every handshake step runs
//! on an OpenSSL ASYNC job): 8 RSA-4096 intermediates and 150 names per certificate (≈ 20 KiB of
//! chain), RSA-2048, P-256 and P-384 leaves whose keys are on a real key server (TCP, mutual
//! TLS), each name's first handshake a cache miss, TLS 1.2 and 1.3, verified by `openssl
//! s_client` against the root. Nothing may fail, no entry may be built on a job's stack, the job
//! stacks stay below half their size, and the proxy exits cleanly afterwards.
//!
//! With `EDGETLS_MEMCHECK_BIN` set (`cargo xtask memcheck`: the proxy built with the C
//! library's malloc, so valgrind sees every allocation), the same run goes through valgrind's
//! memcheck and must report 0 errors.

mod common;

use common::{metric, metrics, origin, start, start_command};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::s_client::SClient;
use edgetls_testkit::{setup, start as start_keyserver};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use std::path::Path;
use std::process::Command;

const INTERMEDIATES: usize = 8;
const NAMES_PER_CERT: usize = 150;
const CERTS_PER_KEY: usize = 6;

/// A certificate for `cn` with `public`'s key, issued by (`issuer`, `issuer_key`) or self-signed.
fn certificate<T: HasPublic>(
    cn: &str,
    public: &PKeyRef<T>,
    issuer: Option<(&X509, &PKey<Private>)>,
    own_key: Option<&PKey<Private>>,
    names: &[String],
    serial: u32,
) -> X509 {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    let n = n.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&n).unwrap();
    b.set_pubkey(public).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    if names.is_empty() {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        let mut san = SubjectAlternativeName::new();
        for name in names {
            san.dns(name);
        }
        let ctx = b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None);
        let san = san.build(&ctx).unwrap();
        b.append_extension(san).unwrap();
    }
    match issuer {
        Some((cert, key)) => {
            b.set_issuer_name(cert.subject_name()).unwrap();
            b.sign(key, MessageDigest::sha256()).unwrap();
        }
        None => {
            b.set_issuer_name(&n).unwrap();
            b.sign(own_key.unwrap(), MessageDigest::sha256()).unwrap();
        }
    }
    b.build()
}

/// root.pem, and in `certs/` one bundle (leaf + 8 intermediates, no key) per certificate; the
/// names each certificate serves.
fn chains(dir: &Path, keys: &[(&str, &PKey<Private>)]) -> Vec<String> {
    let root_key = PKey::from_rsa(Rsa::generate(4096).unwrap()).unwrap();
    let root = certificate("large chain root", &root_key, None, Some(&root_key), &[], 1);
    std::fs::write(dir.join("root.pem"), root.to_pem().unwrap()).unwrap();
    let mut issuer = (root, root_key);
    let mut intermediates = Vec::new();
    for i in 0..INTERMEDIATES {
        let key = PKey::from_rsa(Rsa::generate(4096).unwrap()).unwrap();
        let cert = certificate(
            &format!("large chain intermediate {i}"),
            &key,
            Some((&issuer.0, &issuer.1)),
            None,
            &[],
            10 + i as u32,
        );
        intermediates.insert(0, cert.to_pem().unwrap());
        issuer = (cert, key);
    }
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    let mut first_names = Vec::new();
    for (kind, key) in keys {
        for c in 0..CERTS_PER_KEY {
            let names: Vec<String> = (0..NAMES_PER_CERT)
                .map(|n| format!("n{n}.{kind}{c}.chain.test"))
                .collect();
            let leaf = certificate(
                &names[0],
                *key,
                Some((&issuer.0, &issuer.1)),
                None,
                &names,
                1000 + first_names.len() as u32,
            );
            let mut bundle = leaf.to_pem().unwrap();
            for pem in &intermediates {
                bundle.extend_from_slice(pem);
            }
            std::fs::write(certs.join(format!("{kind}{c}.pem")), bundle).unwrap();
            first_names.push(names[0].clone());
        }
    }
    first_names
}

#[test]
fn large_chains_cold_keyless_handshakes_tls12_and_tls13() {
    let dir = tempfile::tempdir().unwrap();
    let (kit, keys) = setup();
    let ks = start_keyserver(&kit, Authz::open(), ServerOptions::default());
    let names = chains(
        dir.path(),
        &[
            ("rsa", &keys.rsa),
            ("p256", &keys.p256),
            ("p384", &keys.p384),
        ],
    );
    let ok = origin("ok\n").0;
    let k = |f: &str| kit.path(f).display().to_string();
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\nmetrics = \"127.0.0.1:0\"\n\n\
             [certificates]\nsources = [\"{certs}\"]\n\n\
             [keyless]\nsources = [\"{certs}\"]\nservers = [\"{}\"]\nserver_name = \"localhost\"\n\
             cert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{ok}\"\n",
            ks.addr,
            k("edge-1.pem"),
            k("edge-1.key"),
            k("ca.pem"),
            certs = dir.path().join("certs").display(),
        ),
    )
    .unwrap();
    let memcheck = std::env::var_os("EDGETLS_MEMCHECK_BIN");
    let proxy = match &memcheck {
        None => start(&config),
        Some(bin) => {
            let mut cmd = Command::new("valgrind");
            // One suppression, explained in the file: the job-stack depth scan reads our own
            // stack mappings below the stack pointers memcheck tracks.
            let supp = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/valgrind.supp");
            cmd.args(["--tool=memcheck", "--error-exitcode=97", "--leak-check=no"])
                .arg(format!("--suppressions={supp}"))
                .arg(bin);
            start_command(cmd, &config)
        }
    };
    let root = dir.path().join("root.pem");
    // Each name once per version, its first handshake cold: the RSA names with both RSA-PSS and
    // PKCS#1 signatures.
    let mut handshakes = 0;
    for name in &names {
        for version in ["-tls1_2", "-tls1_3"] {
            let sigalgs = match (name.contains("rsa"), version) {
                (true, "-tls1_2") => "RSA+SHA256:RSA+SHA384",
                (true, _) => "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384",
                (false, _) => "ECDSA+SHA256:ECDSA+SHA384",
            };
            let out = SClient::connect(proxy.addr)
                .name(name)
                .ca(&root)
                .args([
                    version,
                    "-sigalgs",
                    sigalgs,
                    "-verify_return_error",
                    "-verify_depth",
                    "12",
                    "-showcerts",
                ])
                .input("GET / HTTP/1.0\r\n\r\n")
                .run();
            let text = out.text();
            assert!(out.ok, "{name} {version}:\n{text}");
            assert!(
                text.contains("Verify return code: 0 (ok)"),
                "{name} {version}:\n{text}"
            );
            assert_eq!(
                text.matches("-----BEGIN CERTIFICATE-----").count(),
                1 + INTERMEDIATES,
                "{name} {version}: the whole chain is sent"
            );
            handshakes += 1;
        }
    }
    let m = metrics(&proxy);
    let value = |series: &str| metric(&m, series).unwrap_or_else(|| panic!("{series}:\n{m}"));
    let sum = |prefix: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(
        sum("edgetls_handshakes_total{result=\"ok\""),
        handshakes as f64,
        "{m}"
    );
    assert_eq!(
        sum("edgetls_handshakes_total{result=\"failed\""),
        0.0,
        "{m}"
    );
    // Every certificate was built once, by a cold handshake (the store builds lazily), and
    // never on a job's stack.
    assert_eq!(
        value("edgetls_certificate_cache_lookups_total{result=\"miss\"}"),
        names.len() as f64,
        "{m}"
    );
    assert_eq!(
        value("edgetls_certificate_cache_built_in_async_job_total"),
        0.0
    );
    let deepest = value("edgetls_async_job_stack_deepest_bytes");
    assert!(
        (deepest > 0.0 && deepest < (edgetls_tls::job_stack::STACK_BYTES / 2) as f64)
            || (!edgetls_tls::library::HAS_ASYNC_JOBS && deepest == 0.0),
        "deepest job stack use {deepest} bytes"
    );
    println!(
        "{handshakes} handshakes ({} cold), {NAMES_PER_CERT} SANs per certificate, {INTERMEDIATES} \
         intermediates; deepest job stack use {deepest} bytes",
        names.len()
    );

    // The proxy stops cleanly (and, under valgrind, with no memory error).
    let mut proxy = proxy;
    let pid = proxy.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = proxy.child.wait().unwrap();
    let log = proxy.stderr.lock().unwrap().clone();
    assert!(status.success(), "{status}: {log}");
    assert!(!log.contains("panicked"), "{log}");
    if memcheck.is_some() {
        assert!(
            log.contains("ERROR SUMMARY: 0 errors from 0 contexts"),
            "memcheck:\n{log}"
        );
    }
}
