//! Errors answered with the right code; clients refused at the TLS layer; authorization.

use crate::common::{connect, setup, ski, start};
use edgetls_keyless_proto::{ErrorCode, Opcode, Operation, Ski};
use edgetls_keyserver::{Authz, ServerOptions};
use std::path::Path;

#[test]
fn errors_carry_the_right_codes() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let mut c = connect(&pki, server.addr, Some("edge-1")).unwrap();
    let code = |c: &mut crate::common::Client, id, op| c.call(id, op).error_code();
    let digest = vec![0u8; 32];
    assert_eq!(
        code(
            &mut c,
            1,
            Operation::request(Opcode::ECDSA_SIGN_SHA256, Ski([9; 20]), digest.clone())
        ),
        Some(ErrorCode::KEY_NOT_FOUND)
    );
    assert_eq!(
        code(
            &mut c,
            2,
            Operation::request(Opcode(0x99), ski(&keys.p256), digest.clone())
        ),
        Some(ErrorCode::BAD_OPCODE)
    );
    assert_eq!(
        code(
            &mut c,
            3,
            Operation::request(Opcode::RESPONSE, ski(&keys.p256), digest.clone())
        ),
        Some(ErrorCode::UNEXPECTED_OPCODE)
    );
    assert_eq!(
        code(
            &mut c,
            4,
            Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), vec![0; 31])
        ),
        Some(ErrorCode::FORMAT)
    );
    // An ECDSA operation on an RSA key, an RSA one on an EC key.
    assert_eq!(
        code(
            &mut c,
            5,
            Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.rsa), digest.clone())
        ),
        Some(ErrorCode::CRYPTO)
    );
    assert_eq!(
        code(
            &mut c,
            6,
            Operation::request(Opcode::RSA_PSS_SIGN_SHA256, ski(&keys.p256), digest.clone())
        ),
        Some(ErrorCode::CRYPTO)
    );
    assert_eq!(
        code(
            &mut c,
            7,
            Operation::request(Opcode::RSA_DECRYPT, ski(&keys.rsa), vec![1; 10])
        ),
        Some(ErrorCode::FORMAT)
    );
    // After all that, the connection still works.
    assert_eq!(
        c.call(
            8,
            Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), digest)
        )
        .opcode,
        Opcode::RESPONSE
    );
    assert_eq!(server.metrics.errors(ErrorCode::KEY_NOT_FOUND), 1);
    assert_eq!(server.metrics.requests(Opcode::ECDSA_SIGN_SHA256), 4);
}

#[test]
fn clients_without_a_certificate_from_the_ca_are_refused_by_tls() {
    let (pki, _) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    assert!(connect(&pki, server.addr, Some("edge-1")).is_ok());
    let none = connect(&pki, server.addr, None)
        .err()
        .expect("refused without a certificate");
    let rogue = connect(&pki, server.addr, Some("rogue"))
        .err()
        .expect("refused with another CA's certificate");
    assert!(!none.is_empty() && !rogue.is_empty());
    // The server counts a refused handshake after the client has seen the refusal: give it
    // a moment (bounded) to record the second one.
    let started = std::time::Instant::now();
    while !server
        .metrics
        .render()
        .contains("keyless_tls_failures_total 2")
        && started.elapsed() < std::time::Duration::from_secs(2)
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        server
            .metrics
            .render()
            .contains("keyless_tls_failures_total 2"),
        "{}",
        server.metrics.render()
    );
}

#[test]
fn a_client_may_use_only_the_keys_authorized_for_it() {
    let (pki, keys) = setup();
    let rules = format!("cn:edge-1 *\ncn:edge-2 {}\n", ski(&keys.p256));
    let authz = Authz::parse(Path::new("authz"), &rules).unwrap();
    let server = start(&pki, authz, ServerOptions::default());
    let digest = vec![7u8; 32];
    let mut edge2 = connect(&pki, server.addr, Some("edge-2")).unwrap();
    assert_eq!(
        edge2
            .call(
                1,
                Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), digest.clone())
            )
            .opcode,
        Opcode::RESPONSE
    );
    // Not authorized: answered like an unknown key.
    let r = edge2.call(
        2,
        Operation::request(Opcode::ECDSA_SIGN_SHA384, ski(&keys.p384), vec![7; 48]),
    );
    assert_eq!(r.error_code(), Some(ErrorCode::KEY_NOT_FOUND));
    let mut edge1 = connect(&pki, server.addr, Some("edge-1")).unwrap();
    assert_eq!(
        edge1
            .call(
                3,
                Operation::request(Opcode::ECDSA_SIGN_SHA384, ski(&keys.p384), vec![7; 48])
            )
            .opcode,
        Opcode::RESPONSE
    );
}

/// A certificate for `key` naming `dns` and `ips`, written as `name` into the key directory.
fn cert_into_keys(
    pki: &edgetls_testkit::Pki,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    name: &str,
    dns: &[&str],
    ips: &[&str],
) {
    use openssl::x509::extension::SubjectAlternativeName;
    let mut b = openssl::x509::X509::builder().unwrap();
    // X.509 v3 (extensions follow): AWS-LC refuses a v1 certificate that has them.
    b.set_version(2).unwrap();
    let mut n = openssl::x509::X509Name::builder().unwrap();
    n.append_entry_by_text("CN", dns.first().copied().unwrap_or("ip"))
        .unwrap();
    let n = n.build();
    b.set_subject_name(&n).unwrap();
    b.set_issuer_name(&n).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    let mut san = SubjectAlternativeName::new();
    for d in dns {
        san.dns(d);
    }
    for ip in ips {
        san.ip(ip);
    }
    let san = san.build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(san).unwrap();
    b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
    std::fs::write(pki.path("keys").join(name), b.build().to_pem().unwrap()).unwrap();
}

#[test]
fn a_request_without_a_key_id_finds_its_key_by_server_name_or_address() {
    let (pki, keys) = setup();
    cert_into_keys(
        &pki,
        &keys.p256,
        "p256.crt",
        &["shop.example", "*.shop.example"],
        &[],
    );
    cert_into_keys(&pki, &keys.p384, "p384-ip.pem", &[], &["192.0.2.7"]);
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let mut c = connect(&pki, server.addr, Some("edge-1")).unwrap();
    let by = |sni: Option<&str>, ip: Option<&str>, opcode, len| {
        let mut op = Operation::request(opcode, Ski([0; 20]), vec![7; len]);
        op.ski = None;
        op.sni = sni.map(str::to_string);
        op.server_ip = ip.map(|i| i.parse().unwrap());
        op
    };
    let verify = |key: &openssl::pkey::PKey<openssl::pkey::Private>, sig: &[u8], len: usize| {
        let ec = key.ec_key().unwrap();
        let sig = openssl::ecdsa::EcdsaSig::from_der(sig).unwrap();
        sig.verify(&vec![7u8; len], &ec).unwrap()
    };
    for (i, sni) in ["shop.example", "WWW.shop.example"].iter().enumerate() {
        let r = c.call(
            10 + i as u32,
            by(Some(sni), None, Opcode::ECDSA_SIGN_SHA256, 32),
        );
        assert_eq!(r.opcode, Opcode::RESPONSE, "{sni}");
        assert!(
            verify(&keys.p256, &r.payload, 32),
            "{sni}: signed with the p256 key"
        );
    }
    let r = c.call(
        20,
        by(None, Some("192.0.2.7"), Opcode::ECDSA_SIGN_SHA384, 48),
    );
    assert_eq!(r.opcode, Opcode::RESPONSE);
    assert!(
        verify(&keys.p384, &r.payload, 48),
        "signed with the p384 key"
    );
    for (i, (sni, ip)) in [
        (Some("a.b.shop.example"), None),
        (Some("other.example"), Some("192.0.2.8")),
    ]
    .into_iter()
    .enumerate()
    {
        let r = c.call(30 + i as u32, by(sni, ip, Opcode::ECDSA_SIGN_SHA256, 32));
        assert_eq!(
            r.error_code(),
            Some(ErrorCode::KEY_NOT_FOUND),
            "{sni:?} {ip:?}"
        );
    }
}
