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

/// Now, as Unix seconds (for [`leaf_for`]'s validity).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A certificate for `names` (the first is its CN; all are DNS subjectAltNames) over a new
/// P-256 key, valid from `not_before` to `not_after` (Unix seconds), signed by `issuer` (its
/// certificate and key) or by itself; and its key.
pub fn leaf_for(
    names: &[&str],
    not_before: i64,
    not_after: i64,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> (X509, PKey<Private>) {
    use openssl::x509::extension::SubjectAlternativeName;
    let (_, key) = self_signed(names[0]);
    let mut n = X509NameBuilder::new().expect("a name");
    n.append_entry_by_nid(Nid::COMMONNAME, names[0])
        .expect("a CN");
    let n = n.build();
    let mut b = X509::builder().expect("a certificate builder");
    b.set_version(2).expect("v3");
    let mut serial = openssl::bn::BigNum::new().expect("a number");
    serial
        .rand(63, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .expect("random");
    b.set_serial_number(&serial.to_asn1_integer().expect("serial"))
        .expect("serial");
    b.set_subject_name(&n).expect("subject");
    b.set_issuer_name(issuer.map_or(&*n, |(c, _)| c.subject_name()))
        .expect("issuer");
    b.set_pubkey(&key).expect("public key");
    b.set_not_before(&Asn1Time::from_unix(not_before).expect("time"))
        .expect("not before");
    b.set_not_after(&Asn1Time::from_unix(not_after).expect("time"))
        .expect("not after");
    let mut san = SubjectAlternativeName::new();
    for name in names {
        san.dns(name);
    }
    let san = san
        .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
        .expect("subjectAltName");
    b.append_extension(san).expect("subjectAltName");
    b.sign(issuer.map_or(&key, |(_, k)| k), MessageDigest::sha256())
        .expect("signed");
    (b.build(), key)
}
