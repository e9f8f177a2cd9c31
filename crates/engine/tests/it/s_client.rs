//! `openssl s_client` against remote-key servers, both modes.

use crate::common::{Mode, context, remote, serve};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::s_client::SClient;
use edgetls_testkit::{setup, site_cert, start};
use std::sync::Arc;
use std::time::Duration;

fn s_client(addr: std::net::SocketAddr, ca: &std::path::Path, name: &str, args: &[&str]) -> String {
    SClient::connect(addr)
        .name(name)
        .ca(ca)
        .args(["-verify_hostname", name, "-verify_return_error", "-brief"])
        .args(args)
        .run_ok()
}

#[test]
fn s_client_verifies_remote_key_handshakes() {
    let _g = crate::serial();
    let (pki, keys) = setup();
    let ks = start(&pki, Authz::open(), ServerOptions::default());
    let remote = remote(&pki, ks.addr, Duration::from_secs(2));
    let ca = pki.path("ca.pem");
    for mode in [Mode::Blocking, Mode::Async] {
        let rsa = serve(
            context(
                &site_cert(&pki, &keys.rsa, &["rsa.test"]),
                Arc::clone(&remote),
                mode,
            ),
            mode,
        );
        let p256 = serve(
            context(
                &site_cert(&pki, &keys.p256, &["p256.test"]),
                Arc::clone(&remote),
                mode,
            ),
            mode,
        );
        let p384 = serve(
            context(
                &site_cert(&pki, &keys.p384, &["p384.test"]),
                Arc::clone(&remote),
                mode,
            ),
            mode,
        );
        for (tls, name, args, expect) in [
            (
                &rsa,
                "rsa.test",
                ["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"],
                "RSA-PSS",
            ),
            (
                &rsa,
                "rsa.test",
                ["-tls1_2", "-sigalgs", "RSA+SHA256"],
                "RSA",
            ),
            (
                &p256,
                "p256.test",
                ["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"],
                "ECDSA",
            ),
            (
                &p256,
                "p256.test",
                ["-tls1_2", "-sigalgs", "ECDSA+SHA256"],
                "ECDSA",
            ),
            (
                &rsa,
                "rsa.test",
                ["-tls1_2", "-sigalgs", "rsa_pss_rsae_sha256"],
                "RSA-PSS",
            ),
            (
                &p384,
                "p384.test",
                ["-tls1_3", "-sigalgs", "ecdsa_secp384r1_sha384"],
                "ECDSA",
            ),
            (
                &p384,
                "p384.test",
                ["-tls1_2", "-sigalgs", "ECDSA+SHA384"],
                "ECDSA",
            ),
        ] {
            let text = s_client(tls.addr, &ca, name, &args);
            assert!(
                text.contains("Verification: OK"),
                "{mode:?} {args:?}:\n{text}"
            );
            assert!(
                text.contains(&format!("Signature type: {expect}\n")),
                "{mode:?} {args:?}:\n{text}"
            );
        }
    }
}
