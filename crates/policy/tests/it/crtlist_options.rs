//! The crt-list options operators use (HAProxy's `[ … ]` per line), each checked with a real
//! handshake: `openssl s_client` shows what the server sent and asked.

use crate::common::{Pki, pki, s_client, serve_crt_list};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, RevocationReason, RevokedCertParams, SerialNumber, date_time_ymd,
};

/// A client CA of the test's own (`crl-ca.pem`), two clients it issued (`good`, serial 1, and
/// `revoked`, serial 2) and its CRL revoking the second (`crl.pem`).
fn revocation_pki(pki: &Pki) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "crl test CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let k = KeyPair::generate().unwrap();
    std::fs::write(pki.path("crl-ca.pem"), p.self_signed(&k).unwrap().pem()).unwrap();
    let ca = Issuer::new(p, k);
    for (name, serial) in [("good", 1u64), ("revoked", 2)] {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.serial_number = Some(SerialNumber::from(serial));
        let k = KeyPair::generate().unwrap();
        let cert = p.signed_by(&k, &ca).unwrap().pem();
        std::fs::write(pki.path(&format!("{name}.pem")), cert).unwrap();
        std::fs::write(pki.path(&format!("{name}.key")), k.serialize_pem()).unwrap();
    }
    let crl = CertificateRevocationListParams {
        this_update: date_time_ymd(2025, 1, 1),
        next_update: date_time_ymd(2049, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(2u64),
            revocation_time: date_time_ymd(2025, 1, 1),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = crl.signed_by(&ca).unwrap();
    std::fs::write(pki.path("crl.pem"), crl.pem().unwrap()).unwrap();
}

/// `openssl s_client` to `sni` with TLS version flag `v`, the client certificate `name`
/// (`name.pem`, `name.key`) and `extra` arguments.
fn with_cert(
    srv: &crate::common::Server,
    pki: &Pki,
    sni: &str,
    name: &str,
    v: &str,
    extra: &[&str],
) -> (bool, String) {
    let cert = pki.path(&format!("{name}.pem")).display().to_string();
    let key = pki.path(&format!("{name}.key")).display().to_string();
    let mut args = vec![v, "-cert", &cert, "-key", &key];
    args.extend(extra);
    s_client(srv, pki, sni, &args)
}

#[test]
fn every_crt_list_option_operators_use_is_honoured() {
    let pki = pki();
    revocation_pki(&pki);
    let list = pki.path("options.crt-list");
    std::fs::write(
        &list,
        "certs/site.pem [verify required ca-file crl-ca.pem crl-file crl.pem no-ca-names \
         client-sigalgs ECDSA+SHA256 ssl-min-ver SSLv3 allow-0rtt no-alpn ocsp-update off] \
         mtls.test\n\
         certs/site.pem [verify required ca-file client-ca.pem ca-verify-file crl-ca.pem \
         alpn h2,http/1.1 curves X25519:P-256 ecdhe secp384r1] a.test\n\
         certs/site.pem [ecdhe secp384r1] npn.test\n\
         certs/site.pem [key certs/site.pem] h1.test\n",
    )
    .unwrap();
    let (srv, report) = serve_crt_list(&list);
    assert_eq!(report.failed, 0, "{:#?}", report.problems);
    // SSLv3 is clamped and 0-RTT explained, each with the line.
    let warnings: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("options.crt-list:1") && w.contains("SSLv3")),
        "{warnings:#?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("allow-0rtt")),
        "{warnings:#?}"
    );

    for v in ["-tls1_2", "-tls1_3"] {
        // crl-file: the revoked client is refused, the good one served.
        let (ok, out) = with_cert(&srv, &pki, "mtls.test", "good", v, &[]);
        assert!(ok && !out.contains("alert"), "{v} good client:\n{out}");
        // no-ca-names: no CA name is sent; client-sigalgs: only ECDSA+SHA256 is asked for.
        assert!(
            out.contains("No client certificate CA names sent"),
            "{v}:\n{out}"
        );
        assert!(
            out.contains("Requested Signature Algorithms: ECDSA+SHA256\n"),
            "{v}:\n{out}"
        );
        // ecdhe: the one curve (on a name without client certificates: in TLS 1.2 OpenSSL
        // also refuses a client key on a curve outside the list).
        let (ok, out) = s_client(&srv, &pki, "npn.test", &[v]);
        assert!(
            ok && out.contains("Server Temp Key: ECDH, secp384r1"),
            "{v}:\n{out}"
        );
        // no-alpn: none negotiated although the client offers h2.
        let (_, out) = with_cert(&srv, &pki, "mtls.test", "good", v, &["-alpn", "h2"]);
        assert!(out.contains("No ALPN negotiated"), "{v}:\n{out}");

        let (_, out) = with_cert(&srv, &pki, "mtls.test", "revoked", v, &["-ign_eof"]);
        assert!(
            out.contains("alert certificate revoked"),
            "{v} revoked client:\n{out}"
        );

        // ca-verify-file: its clients verify, but only ca-file's names are sent; curves wins
        // over ecdhe.
        let (ok, out) = with_cert(&srv, &pki, "a.test", "good", v, &[]);
        assert!(ok && !out.contains("alert"), "{v} a.test:\n{out}");
        assert!(
            out.contains("policy test client CA") && !out.contains("crl test CA"),
            "{v}: only ca-file's names:\n{out}"
        );
        assert!(out.contains("Server Temp Key: X25519"), "{v}:\n{out}");
    }
    // SSLv3 (clamped to TLS 1.0) as the minimum: TLS 1.2 still works there, and the `key`
    // option loaded h1.test's key from the file it names.
    let (ok, out) = s_client(&srv, &pki, "h1.test", &["-tls1_2"]);
    assert!(ok, "{out}");
}
