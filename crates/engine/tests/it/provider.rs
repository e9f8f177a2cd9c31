//! The `edgetls-keyless` provider through OpenSSL's own signing APIs, checked with the public
//! key: one-shot and streamed digests, RSA PKCS#1 and PSS, ECDSA on P-256 and P-384; a key
//! duplicated with `EVP_PKEY_dup` signs after the original is gone; the provider's algorithms
//! never serve ordinary keys.

use edgetls_engine::{LocalSigner, remote_pkey};
use foreign_types::ForeignType;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use openssl::x509::X509;
use std::sync::Arc;

fn cert_for(key: &PKey<Private>) -> X509 {
    let mut b = X509::builder().unwrap();
    let mut name = openssl::x509::X509Name::builder().unwrap();
    name.append_entry_by_text("CN", "provider.test").unwrap();
    let name = name.build();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build()
}

fn keys() -> Vec<(&'static str, PKey<Private>)> {
    vec![
        (
            "rsa2048",
            PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
        ),
        (
            "p256",
            PKey::from_ec_key(
                EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
            )
            .unwrap(),
        ),
        (
            "p384",
            PKey::from_ec_key(
                EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap(),
            )
            .unwrap(),
        ),
    ]
}

/// Signs `data` with `key` (one-shot, or streamed in two parts), PSS when asked.
fn sign(key: &PKey<Private>, md: MessageDigest, pss: bool, streamed: bool, data: &[u8]) -> Vec<u8> {
    let mut s = Signer::new(md, key).unwrap();
    if pss {
        s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
    }
    if streamed {
        let (a, b) = data.split_at(data.len() / 2);
        s.update(a).unwrap();
        s.update(b).unwrap();
        s.sign_to_vec().unwrap()
    } else {
        s.sign_oneshot_to_vec(data).unwrap()
    }
}

fn verify(cert: &X509, md: MessageDigest, pss: bool, data: &[u8], sig: &[u8]) -> bool {
    let public = cert.public_key().unwrap();
    let mut v = Verifier::new(md, &public).unwrap();
    if pss {
        v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
    }
    v.verify_oneshot(sig, data).unwrap()
}

#[test]
fn every_scheme_signs_through_the_provider_and_verifies() {
    let data = b"the handshake transcript, or anything else";
    for (name, key) in keys() {
        let cert = cert_for(&key);
        let remote = remote_pkey(&cert, Arc::new(LocalSigner::new(key))).unwrap();
        assert_eq!(remote.bits(), cert.public_key().unwrap().bits(), "{name}");
        let rsa = name.starts_with("rsa");
        for md in [
            MessageDigest::sha256(),
            MessageDigest::sha384(),
            MessageDigest::sha512(),
        ] {
            for pss in [false, true] {
                if pss && !rsa {
                    continue;
                }
                for streamed in [false, true] {
                    let sig = sign(&remote, md, pss, streamed, data);
                    assert!(
                        verify(&cert, md, pss, data, &sig),
                        "{name} {:?} pss={pss} streamed={streamed}",
                        md.type_()
                    );
                }
            }
        }
        // The key is the certificate's: OpenSSL's own check agrees.
        let mut b =
            openssl::ssl::SslContext::builder(openssl::ssl::SslMethod::tls_server()).unwrap();
        b.set_certificate(&cert).unwrap();
        b.set_private_key(&remote).unwrap();
        b.check_private_key().unwrap();
    }
}

unsafe extern "C" {
    fn EVP_PKEY_dup(key: *mut openssl_sys::EVP_PKEY) -> *mut openssl_sys::EVP_PKEY;
}

#[test]
fn a_duplicated_remote_key_signs_after_the_original_is_freed() {
    for (name, key) in keys() {
        let cert = cert_for(&key);
        let original = remote_pkey(&cert, Arc::new(LocalSigner::new(key))).unwrap();
        // SAFETY: dup of a live key; the copy is owned by the PKey made from it.
        let copy = unsafe {
            let p = EVP_PKEY_dup(original.as_ptr());
            assert!(
                !p.is_null(),
                "{name}: {}",
                openssl::error::ErrorStack::get()
            );
            PKey::<Private>::from_ptr(p)
        };
        drop(original);
        let sig = sign(
            &copy,
            MessageDigest::sha256(),
            false,
            false,
            b"after the original",
        );
        assert!(
            verify(
                &cert,
                MessageDigest::sha256(),
                false,
                b"after the original",
                &sig
            ),
            "{name}"
        );
    }
}

#[test]
fn ordinary_keys_are_untouched_by_the_provider() {
    // Loaded, the provider must not take over keys it did not make.
    for (name, key) in keys() {
        let cert = cert_for(&key);
        let _remote = remote_pkey(&cert, Arc::new(LocalSigner::new(key.clone()))).unwrap();
        let sig = sign(&key, MessageDigest::sha256(), false, false, b"local");
        assert!(
            verify(&cert, MessageDigest::sha256(), false, b"local", &sig),
            "{name}"
        );
        let reread = PKey::private_key_from_pem(&key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let sig = sign(&reread, MessageDigest::sha384(), false, true, b"local");
        assert!(
            verify(&cert, MessageDigest::sha384(), false, b"local", &sig),
            "{name}"
        );
    }
}

/// The ENGINE shim (feature `engine`, OpenSSL 3.x): its key's binding is duplicated with the
/// key, so the copy signs after the original is freed (and the binding is freed once each).
#[cfg(feature = "engine")]
#[test]
fn a_duplicated_engine_key_signs_after_the_original_is_freed() {
    for (name, key) in keys() {
        let cert = cert_for(&key);
        let original =
            edgetls_engine::engine_remote_pkey(&cert, Arc::new(LocalSigner::new(key))).unwrap();
        let sig = sign(&original, MessageDigest::sha256(), false, false, b"engine");
        assert!(
            verify(&cert, MessageDigest::sha256(), false, b"engine", &sig),
            "{name}"
        );
        // SAFETY: dup of a live key; the copy is owned by the PKey made from it.
        let copy = unsafe {
            let p = EVP_PKEY_dup(original.as_ptr());
            assert!(
                !p.is_null(),
                "{name}: {}",
                openssl::error::ErrorStack::get()
            );
            PKey::<Private>::from_ptr(p)
        };
        drop(original);
        let sig = sign(
            &copy,
            MessageDigest::sha256(),
            false,
            false,
            b"after the original",
        );
        assert!(
            verify(
                &cert,
                MessageDigest::sha256(),
                false,
                b"after the original",
                &sig
            ),
            "{name}"
        );
    }
}

/// `EVP_PKEY_sign` on a digest, with the padding, salt and digest set as libssl sets them
/// (OpenSSL turns them into parameters: names on some versions, integers on others); the
/// signature verifies and nothing is left on OpenSSL's error queue, which libssl would take
/// for a failure of the handshake (OpenSSL 3.5 did, before the parameter readers looked at
/// the type first).
#[test]
fn signing_a_digest_with_pss_leaves_no_error_behind() {
    use openssl::pkey_ctx::PkeyCtx;
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let cert = cert_for(&key);
    let remote = remote_pkey(&cert, Arc::new(LocalSigner::new(key))).unwrap();
    let digest = openssl::hash::hash(MessageDigest::sha256(), b"transcript").unwrap();
    let _ = openssl::error::ErrorStack::get();
    let mut ctx = PkeyCtx::new(&remote).unwrap();
    ctx.sign_init().unwrap();
    ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
        .unwrap();
    ctx.set_signature_md(openssl::md::Md::sha256()).unwrap();
    let mut sig = Vec::new();
    ctx.sign_to_vec(&digest, &mut sig).unwrap();
    let left = openssl::error::ErrorStack::get();
    assert!(left.errors().is_empty(), "{left}");
    assert!(verify(
        &cert,
        MessageDigest::sha256(),
        true,
        b"transcript",
        &sig
    ));
}
