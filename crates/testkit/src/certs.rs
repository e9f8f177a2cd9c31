//! Throwaway certificates for tests that need one quickly.

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509NameBuilder};

/// A self-signed P-256 certificate for `name` (its CN), valid from now for two days, and its key.
pub fn self_signed(name: &str) -> (X509, PKey<Private>) {
    let key = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("P-256"),
    )
    .and_then(PKey::from_ec_key)
    .expect("a P-256 key");
    let mut n = X509NameBuilder::new().expect("a name");
    n.append_entry_by_nid(Nid::COMMONNAME, name).expect("a CN");
    let n = n.build();
    let mut b = X509::builder().expect("a certificate builder");
    b.set_version(2).expect("v3");
    b.set_subject_name(&n).expect("subject");
    b.set_issuer_name(&n).expect("issuer");
    b.set_pubkey(&key).expect("public key");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(2).expect("later"))
        .expect("not after");
    b.sign(&key, MessageDigest::sha256()).expect("signed");
    (b.build(), key)
}
