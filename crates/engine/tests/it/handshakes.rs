//! Every protocol and algorithm combination, both modes, with the opcode the key server saw.

use crate::common::{Mode, context, handshake, remote, serve};
use edgetls_engine::{LocalSigner, RemoteKey};
use edgetls_keyless_proto::Opcode;
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, site_cert, start};
use openssl::ssl::SslVersion;
use std::sync::Arc;
use std::time::Duration;

/// (TLS version, the only signature algorithms the client offers, the opcode that must go out)
type Case = (SslVersion, &'static str, Opcode);

const RSA_CASES: &[Case] = &[
    (SslVersion::TLS1_2, "RSA+SHA256", Opcode::RSA_SIGN_SHA256),
    (SslVersion::TLS1_2, "RSA+SHA384", Opcode::RSA_SIGN_SHA384),
    (
        SslVersion::TLS1_2,
        "rsa_pss_rsae_sha256",
        Opcode::RSA_PSS_SIGN_SHA256,
    ),
    (
        SslVersion::TLS1_3,
        "rsa_pss_rsae_sha256",
        Opcode::RSA_PSS_SIGN_SHA256,
    ),
    (
        SslVersion::TLS1_3,
        "rsa_pss_rsae_sha384",
        Opcode::RSA_PSS_SIGN_SHA384,
    ),
    (
        SslVersion::TLS1_3,
        "rsa_pss_rsae_sha512",
        Opcode::RSA_PSS_SIGN_SHA512,
    ),
];
const P256_CASES: &[Case] = &[
    (
        SslVersion::TLS1_2,
        "ECDSA+SHA256",
        Opcode::ECDSA_SIGN_SHA256,
    ),
    (
        SslVersion::TLS1_3,
        "ecdsa_secp256r1_sha256",
        Opcode::ECDSA_SIGN_SHA256,
    ),
];
const P384_CASES: &[Case] = &[
    (
        SslVersion::TLS1_2,
        "ECDSA+SHA384",
        Opcode::ECDSA_SIGN_SHA384,
    ),
    (
        SslVersion::TLS1_3,
        "ecdsa_secp384r1_sha384",
        Opcode::ECDSA_SIGN_SHA384,
    ),
];

fn every_combination(mode: Mode) {
    let _g = crate::serial();
    let (pki, keys) = setup();
    let ks = start(&pki, Authz::open(), ServerOptions::default());
    let remote = remote(&pki, ks.addr, Duration::from_secs(2));
    for (key, name, cases) in [
        (&keys.rsa, "rsa.test", RSA_CASES),
        (&keys.p256, "p256.test", P256_CASES),
        (&keys.p384, "p384.test", P384_CASES),
    ] {
        let cert = site_cert(&pki, key, &[name]);
        let tls = serve(context(&cert, Arc::clone(&remote), mode), mode);
        for &(version, sigalgs, opcode) in cases {
            let before = ks.metrics.requests(opcode);
            let got = handshake(&pki, tls.addr, name, version, sigalgs)
                .unwrap_or_else(|e| panic!("{mode:?} {name} {version:?} {sigalgs}: {e}"));
            assert_eq!(got, "ok\n");
            assert_eq!(
                ks.metrics.requests(opcode),
                before + 1,
                "{mode:?} {name} {version:?} {sigalgs}: one {opcode:?} at the key server"
            );
        }
    }
}

#[test]
fn blocking_mode_every_protocol_and_algorithm() {
    every_combination(Mode::Blocking);
}

#[test]
fn async_mode_every_protocol_and_algorithm() {
    let before = edgetls_engine::stats()
        .paused
        .load(std::sync::atomic::Ordering::Relaxed);
    every_combination(Mode::Async);
    let after = edgetls_engine::stats()
        .paused
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        after - before >= 10,
        "async mode must pause jobs, not block"
    );
}

#[test]
fn in_process_signer_every_combination() {
    let (pki, keys) = setup();
    for mode in [Mode::Blocking, Mode::Async] {
        for (key, name, cases) in [
            (&keys.rsa, "rsa.test", RSA_CASES),
            (&keys.p256, "p256.test", P256_CASES),
            (&keys.p384, "p384.test", P384_CASES),
        ] {
            let cert = site_cert(&pki, key, &[name]);
            let signer: Arc<dyn RemoteKey> = Arc::new(LocalSigner::new(key.clone()));
            let tls = serve(context(&cert, signer, mode), mode);
            for &(version, sigalgs, _) in cases {
                let got = handshake(&pki, tls.addr, name, version, sigalgs)
                    .unwrap_or_else(|e| panic!("{mode:?} {name} {version:?} {sigalgs}: {e}"));
                assert_eq!(got, "ok\n");
            }
        }
    }
}

#[test]
fn static_rsa_key_exchange_is_not_offered() {
    let (pki, keys) = setup();
    let cert = site_cert(&pki, &keys.rsa, &["rsa.test"]);
    let signer: Arc<dyn RemoteKey> = Arc::new(LocalSigner::new(keys.rsa.clone()));
    let tls = serve(context(&cert, signer, Mode::Async), Mode::Async);
    // A client that only speaks static RSA key exchange finds no shared cipher...
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    b.set_cipher_list("AES128-GCM-SHA256:AES256-GCM-SHA384")
        .unwrap();
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let tcp = std::net::TcpStream::connect(tls.addr).unwrap();
    let err = b.build().connect("rsa.test", tcp).unwrap_err().to_string();
    assert!(
        err.contains("handshake failure") || err.contains("alert"),
        "{err}"
    );
    // ...and the server goes on serving ECDHE clients.
    let got = handshake(&pki, tls.addr, "rsa.test", SslVersion::TLS1_2, "RSA+SHA256").unwrap();
    assert_eq!(got, "ok\n");
}

#[test]
fn a_key_the_server_does_not_hold_fails_that_handshake_only() {
    let _g = crate::serial();
    let (pki, keys) = setup();
    let ks = start(&pki, Authz::open(), ServerOptions::default());
    let remote = remote(&pki, ks.addr, Duration::from_secs(2));
    // A key the key server does not have: KEY_NOT_FOUND, an alert, the server lives on.
    let stranger = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    for mode in [Mode::Blocking, Mode::Async] {
        let cert = site_cert(&pki, &stranger, &["stranger.test"]);
        let tls = serve(context(&cert, Arc::clone(&remote), mode), mode);
        // Twice on the same server: each failure is that handshake's alone, and the server
        // answers the next client the same way (no reset, no hang).
        for attempt in 0..2 {
            let e = handshake(
                &pki,
                tls.addr,
                "stranger.test",
                SslVersion::TLS1_3,
                "ECDSA+SHA256",
            )
            .unwrap_err();
            assert!(
                e.contains("SSL alert number 80"),
                "{mode:?}, attempt {attempt}: {e}"
            );
        }
        // The same server still completes handshakes for a key the key server holds.
        let good = site_cert(&pki, &keys.p256, &["p256.test"]);
        let tls = serve(context(&good, Arc::clone(&remote), mode), mode);
        let got = handshake(
            &pki,
            tls.addr,
            "p256.test",
            SslVersion::TLS1_3,
            "ECDSA+SHA256",
        )
        .unwrap();
        assert_eq!(got, "ok\n");
    }
}
