//! Certificate-store entries without a private key, served with the key server's key.

use crate::common::{Mode, handshake, remote, serve};
use edgetls_certstore::{CertStore, LoadOptions, Source, servername_callback};
use edgetls_engine::{StoreKeys, enable_async};
use edgetls_keyless_proto::Opcode;
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, site_cert, start};
use openssl::ssl::{SslAcceptor, SslMethod, SslVersion};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn certificates_without_keys_are_served_with_the_key_servers_keys() {
    let _g = crate::serial();
    let (pki, keys) = setup();
    let ks = start(&pki, Authz::open(), ServerOptions::default());
    let remote = remote(&pki, ks.addr, Duration::from_secs(2));
    // Two certificates alone (their keys are on the key server) and one with a local key.
    let dir = tempfile::tempdir().unwrap();
    for (key, name) in [(&keys.rsa, "rsa.test"), (&keys.p256, "p256.test")] {
        let cert = site_cert(&pki, key, &[name]);
        std::fs::write(
            dir.path().join(format!("{name}.pem")),
            cert.to_pem().unwrap(),
        )
        .unwrap();
    }
    let local = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let mut bundle = site_cert(&pki, &local, &["local.test"]).to_pem().unwrap();
    bundle.extend(local.private_key_to_pem_pkcs8().unwrap());
    std::fs::write(dir.path().join("local.test.pem"), bundle).unwrap();

    // Without remote keys the two are errors that say why; the local one loads.
    let (_, report) =
        CertStore::load(vec![Source::Dir(dir.path().into())], LoadOptions::default()).unwrap();
    assert_eq!((report.loaded, report.failed), (1, 2), "{report:?}");
    let text = format!("{:?}", report.problems);
    assert!(text.contains("no key server configured"), "{text}");

    // With a key source, but the directory not declared keyless: still errors, that say so.
    let mut opts = LoadOptions::default();
    opts.remote_keys = Some(Arc::new(StoreKeys::new(remote)));
    let (_, report) = CertStore::load(vec![Source::Dir(dir.path().into())], opts.clone()).unwrap();
    assert_eq!((report.loaded, report.failed), (1, 2), "{report:?}");
    let text = format!("{:?}", report.problems);
    assert!(text.contains("sources declared keyless"), "{text}");

    opts.remote_key_sources = vec![dir.path().into()];
    let (store, report) = CertStore::load(vec![Source::Dir(dir.path().into())], opts).unwrap();
    assert_eq!((report.loaded, report.failed), (3, 0), "{report:?}");
    let store = Arc::new(store);
    for mode in [Mode::Blocking, Mode::Async] {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        b.set_servername_callback(servername_callback(Arc::clone(&store)));
        if mode == Mode::Async {
            enable_async(&mut b);
        }
        let tls = serve(b.build().into_context(), mode);
        for (name, version, sigalgs, opcode) in [
            (
                "rsa.test",
                SslVersion::TLS1_3,
                "rsa_pss_rsae_sha256",
                Some(Opcode::RSA_PSS_SIGN_SHA256),
            ),
            (
                "rsa.test",
                SslVersion::TLS1_2,
                "RSA+SHA256",
                Some(Opcode::RSA_SIGN_SHA256),
            ),
            (
                "p256.test",
                SslVersion::TLS1_3,
                "ECDSA+SHA256",
                Some(Opcode::ECDSA_SIGN_SHA256),
            ),
            (
                "p256.test",
                SslVersion::TLS1_2,
                "ECDSA+SHA256",
                Some(Opcode::ECDSA_SIGN_SHA256),
            ),
            ("local.test", SslVersion::TLS1_3, "ECDSA+SHA256", None),
        ] {
            let watched = opcode.unwrap_or(Opcode::ECDSA_SIGN_SHA256);
            let before = ks.metrics.requests(watched);
            let got = handshake(&pki, tls.addr, name, version, sigalgs)
                .unwrap_or_else(|e| panic!("{mode:?} {name} {version:?}: {e}"));
            assert_eq!(got, "ok\n");
            let expected = before + u64::from(opcode.is_some());
            assert_eq!(
                ks.metrics.requests(watched),
                expected,
                "{mode:?} {name} {version:?}"
            );
        }
        // A static-RSA-only client gets no suite for the remote RSA name.
        let mut c = openssl::ssl::SslConnector::builder(SslMethod::tls_client()).unwrap();
        c.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        c.set_cipher_list("AES128-GCM-SHA256").unwrap();
        c.set_verify(openssl::ssl::SslVerifyMode::NONE);
        let tcp = std::net::TcpStream::connect(tls.addr).unwrap();
        assert!(c.build().connect("rsa.test", tcp).is_err(), "{mode:?}");
    }
}
