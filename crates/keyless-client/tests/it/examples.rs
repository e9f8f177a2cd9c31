//! The crate's example against a real key server over mutual TLS.

use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::examples::{example, run_example};
use edgetls_testkit::{setup, site_cert, start};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use std::ffi::OsString;

#[test]
fn sign_gets_signatures_that_verify_and_a_clear_error_for_an_unknown_key() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    // The ECDSA key named by a certificate, the RSA key by its public key alone.
    let cert = pki.path("p256-site.pem");
    let pem = site_cert(&pki, &keys.p256, &["p256.test"])
        .to_pem()
        .unwrap();
    std::fs::write(&cert, pem).unwrap();
    let rsa_public = pki.path("rsa-public.pem");
    std::fs::write(&rsa_public, keys.rsa.public_key_to_pem().unwrap()).unwrap();
    let unknown = pki.path("unknown-public.pem");
    let other = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
    std::fs::write(&unknown, other.public_key_to_pem().unwrap()).unwrap();

    let args = |public: &std::path::Path| -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![server.addr.to_string().into(), "localhost".into()];
        a.extend(["edge-1.pem", "edge-1.key", "ca.pem"].map(|f| pki.path(f).into()));
        a.push(public.into());
        a
    };
    for (public, scheme) in [(&cert, "Ecdsa(Sha256)"), (&rsa_public, "RsaPss(Sha256)")] {
        let a = args(public);
        let out = run_example("sign", &a.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with(scheme) && text.trim_end().ends_with(": verified"),
            "{text}"
        );
    }
    let out = std::process::Command::new(example("sign"))
        .args(args(&unknown))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("key server {} answered", server.addr)),
        "{err}"
    );
}
