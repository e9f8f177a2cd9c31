//! The challenges an order has published, for the server to answer: a TLS-ALPN-01 certificate
//! per name (RFC 8737), an HTTP-01 key authorization per token (RFC 8555 §8.3). Lookups are a
//! read lock and a hash probe; a server that has no challenge pending pays one atomic load.

use crate::error::AcmeError;
use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509Extension, X509NameBuilder};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// The ALPN protocol a TLS-ALPN-01 validation offers, alone (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// The id-pe-acmeIdentifier extension (RFC 8737 §6.1).
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

/// The certificate and key that answer a TLS-ALPN-01 validation for one name.
#[derive(Debug)]
pub struct AlpnAnswer {
    /// The self-signed validation certificate.
    pub cert: X509,
    /// Its key.
    pub key: PKey<Private>,
}

impl AlpnAnswer {
    /// A self-signed certificate for `name` carrying the SHA-256 digest of the key
    /// authorization in a critical acmeIdentifier extension.
    pub fn new(name: &str, key_authorization_digest: &[u8]) -> Result<AlpnAnswer, AcmeError> {
        let c = AcmeError::crypto;
        // One key for every answer: RFC 8737 asks only for the acmeIdentifier, and a key per
        // challenge would cost a key generation per order.
        static KEY: std::sync::OnceLock<PKey<Private>> = std::sync::OnceLock::new();
        let key = match KEY.get() {
            Some(k) => k.clone(),
            None => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(c("P-256"))?;
                let k = PKey::from_ec_key(EcKey::generate(&group).map_err(c("P-256 key"))?)
                    .map_err(c("P-256 key"))?;
                KEY.get_or_init(|| k).clone()
            }
        };
        let mut b = X509::builder().map_err(c("certificate"))?;
        b.set_version(2).map_err(c("version"))?;
        let mut serial = BigNum::new().map_err(c("serial"))?;
        serial
            .rand(64, MsbOption::MAYBE_ZERO, false)
            .map_err(c("serial"))?;
        let serial = serial.to_asn1_integer().map_err(c("serial"))?;
        b.set_serial_number(&serial).map_err(c("serial"))?;
        let mut subject = X509NameBuilder::new().map_err(c("subject"))?;
        subject
            .append_entry_by_nid(Nid::COMMONNAME, "ACME TLS-ALPN-01")
            .map_err(c("subject"))?;
        let subject = subject.build();
        b.set_subject_name(&subject).map_err(c("subject"))?;
        b.set_issuer_name(&subject).map_err(c("issuer"))?;
        let (from, to) = (
            Asn1Time::days_from_now(0).map_err(c("time"))?,
            Asn1Time::days_from_now(7).map_err(c("time"))?,
        );
        b.set_not_before(&from).map_err(c("time"))?;
        b.set_not_after(&to).map_err(c("time"))?;
        b.set_pubkey(&key).map_err(c("public key"))?;
        let san = SubjectAlternativeName::new()
            .dns(name)
            .build(&b.x509v3_context(None, None))
            .map_err(c("subjectAltName"))?;
        b.append_extension(san).map_err(c("subjectAltName"))?;
        // extnValue holds the DER of an OCTET STRING of the 32-byte digest.
        let mut value = vec![0x04, 0x20];
        value.extend_from_slice(key_authorization_digest);
        let oid = Asn1Object::from_str(ACME_IDENTIFIER_OID).map_err(c("acmeIdentifier"))?;
        let contents = Asn1OctetString::new_from_bytes(&value).map_err(c("acmeIdentifier"))?;
        let ext =
            X509Extension::new_from_der(&oid, true, &contents).map_err(c("acmeIdentifier"))?;
        b.append_extension(ext).map_err(c("acmeIdentifier"))?;
        b.sign(&key, MessageDigest::sha256())
            .map_err(c("self-signing"))?;
        Ok(AlpnAnswer {
            cert: b.build(),
            key,
        })
    }
}

/// Challenges published for the server to answer.
#[derive(Debug, Default)]
pub struct Challenges {
    alpn_count: AtomicUsize,
    alpn: RwLock<HashMap<String, Arc<AlpnAnswer>>>,
    http: RwLock<HashMap<String, String>>,
}

impl Challenges {
    /// An empty registry.
    pub fn new() -> Arc<Challenges> {
        Arc::new(Challenges::default())
    }

    /// Whether any TLS-ALPN-01 answer is published (one atomic load: the check a ClientHello
    /// hook makes before it looks at ALPN at all).
    pub fn any_alpn(&self) -> bool {
        self.alpn_count.load(Ordering::Acquire) > 0
    }

    /// The TLS-ALPN-01 answer for `name` (lowercase), if one is published.
    pub fn alpn(&self, name: &str) -> Option<Arc<AlpnAnswer>> {
        if !self.any_alpn() {
            return None;
        }
        let map = self.alpn.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    /// The key authorization to answer `GET /.well-known/acme-challenge/{token}` with.
    pub fn http(&self, token: &str) -> Option<String> {
        let map = self.http.read().unwrap_or_else(|p| p.into_inner());
        map.get(token).cloned()
    }

    pub(crate) fn publish_alpn(&self, name: &str, answer: AlpnAnswer) {
        let mut map = self.alpn.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name.to_ascii_lowercase(), Arc::new(answer));
        self.alpn_count.store(map.len(), Ordering::Release);
    }

    pub(crate) fn withdraw_alpn(&self, name: &str) {
        let mut map = self.alpn.write().unwrap_or_else(|p| p.into_inner());
        map.remove(&name.to_ascii_lowercase());
        self.alpn_count.store(map.len(), Ordering::Release);
    }

    pub(crate) fn publish_http(&self, token: &str, key_authorization: &str) {
        let mut map = self.http.write().unwrap_or_else(|p| p.into_inner());
        map.insert(token.to_owned(), key_authorization.to_owned());
    }

    pub(crate) fn withdraw_http(&self, token: &str) {
        let mut map = self.http.write().unwrap_or_else(|p| p.into_inner());
        map.remove(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_carries_the_digest_in_a_critical_acme_identifier() {
        let digest = [7u8; 32];
        let a = AlpnAnswer::new("a.test", &digest).unwrap();
        let text = String::from_utf8(a.cert.to_text().unwrap()).unwrap();
        assert!(text.contains("1.3.6.1.5.5.7.1.31: critical"), "{text}");
        assert!(text.contains("DNS:a.test"), "{text}");
        let der = a.cert.to_der().unwrap();
        let mut want = vec![0x04, 0x20];
        want.extend_from_slice(&digest);
        assert!(der.windows(34).any(|w| w == want.as_slice()));
    }

    #[test]
    fn published_answers_are_found_by_lowercase_name_until_withdrawn() {
        let c = Challenges::new();
        assert!(!c.any_alpn());
        c.publish_alpn("A.test", AlpnAnswer::new("a.test", &[0; 32]).unwrap());
        assert!(c.alpn("a.test").is_some());
        c.withdraw_alpn("a.test");
        assert!(c.alpn("a.test").is_none() && !c.any_alpn());
        c.publish_http("tok", "tok.thumb");
        assert_eq!(c.http("tok").as_deref(), Some("tok.thumb"));
        c.withdraw_http("tok");
        assert_eq!(c.http("tok"), None);
    }
}
