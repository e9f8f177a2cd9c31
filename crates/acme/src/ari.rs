//! ACME Renewal Information (RFC 9773): where the CA's directory offers `renewalInfo`, each
//! stored certificate's suggested renewal window is fetched (at most [`FETCHES`] at a time,
//! again when the CA's `Retry-After` hint says, between [`MIN_REFETCH`] and [`MAX_REFETCH`]),
//! and the set is renewed at a moment drawn within that window — at once when the window has
//! begun. A CA without ARI, or one that fails to answer, leaves the 2/3-of-lifetime schedule.

use openssl::x509::X509Ref;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Windows fetched at once.
pub(crate) const FETCHES: usize = 4;
/// The soonest a window is fetched again.
const MIN_REFETCH: Duration = Duration::from_secs(60);
/// The latest (RFC 9773 §4.3.3 suggests clients re-check at least daily).
const MAX_REFETCH: Duration = Duration::from_secs(86_400);
/// After a failed fetch.
const AFTER_FAILURE: Duration = Duration::from_secs(3600);

fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The certificate's ARI identifier (RFC 9773 §4.1): base64url of its Authority Key
/// Identifier's keyIdentifier, a dot, base64url of its serial's DER content octets. `None`
/// without an AKI key identifier (such a certificate cannot be named to the CA).
pub(crate) fn identifier(cert: &X509Ref) -> Option<String> {
    let aki = cert.authority_key_id()?;
    let serial = cert.serial_number().to_bn().ok()?;
    if serial.is_negative() {
        return None;
    }
    let mut octets = serial.to_vec();
    // DER integers are two's complement: a leading 1 bit needs a zero octet before it.
    if octets.first().is_none_or(|b| b & 0x80 != 0) {
        octets.insert(0, 0);
    }
    Some(format!("{}.{}", b64url(aki.as_slice()), b64url(&octets)))
}

/// `identifier()`'s string as the ACME client's type.
pub(crate) fn certificate_id(id: &str) -> Option<instant_acme::CertificateIdentifier<'static>> {
    let (aki, serial) = id.split_once('.')?;
    Some(instant_acme::CertificateIdentifier {
        authority_key_identifier: Cow::Owned(aki.to_owned()),
        serial: Cow::Owned(serial.to_owned()),
    })
}

#[derive(Debug, Clone)]
struct Window {
    /// The certificate it is for.
    id: String,
    /// The moment drawn within the window (`None`: the fetch failed; use the fallback).
    at: Option<SystemTime>,
    /// When to fetch again.
    refetch: Instant,
}

/// The windows known, by set.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    by_set: Mutex<HashMap<String, Window>>,
    fetching: Mutex<std::collections::HashSet<String>>,
    /// Cleared when the CA's directory turns out to offer no `renewalInfo`.
    offered: AtomicBool,
}

/// What a fetch found.
pub(crate) enum Fetched {
    /// The window `[start, end]`, the CA's hint when to ask again, and its explanation.
    Window {
        start: SystemTime,
        end: SystemTime,
        again: Duration,
        explanation: Option<String>,
    },
    /// The directory has no `renewalInfo`.
    Unsupported,
    /// Anything else (logged by the caller).
    Failed,
}

impl Windows {
    pub(crate) fn new() -> Windows {
        Windows {
            offered: AtomicBool::new(true),
            ..Windows::default()
        }
    }

    /// Whether the CA is (still) believed to offer ARI.
    pub(crate) fn offered(&self) -> bool {
        self.offered.load(Ordering::Relaxed)
    }

    /// The renewal moment for set `label` whose certificate is `id`, if a window is known.
    pub(crate) fn renew_at(&self, label: &str, id: &str) -> Option<SystemTime> {
        let by_set = self.by_set.lock().unwrap_or_else(|p| p.into_inner());
        by_set.get(label).filter(|w| w.id == id).and_then(|w| w.at)
    }

    /// Whether set `label`'s window for `id` is missing or stale and no fetch is running; if
    /// so the caller fetches it (and must call [`record`](Self::record)).
    pub(crate) fn claim_fetch(&self, label: &str, id: &str) -> bool {
        if !self.offered() {
            return false;
        }
        let fresh = {
            let by_set = self.by_set.lock().unwrap_or_else(|p| p.into_inner());
            by_set
                .get(label)
                .is_some_and(|w| w.id == id && w.refetch > Instant::now())
        };
        if fresh {
            return false;
        }
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        fetching.insert(label.to_owned())
    }

    /// Records a fetch's outcome; `draw` in [0, 1) places the renewal within the window.
    /// Returns the renewal moment it set, if any.
    pub(crate) fn record(
        &self,
        label: &str,
        id: &str,
        fetched: Fetched,
        draw: f64,
    ) -> Option<SystemTime> {
        self.fetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(label);
        let now = Instant::now();
        let window = match fetched {
            Fetched::Unsupported => {
                if self.offered.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        "the ACME CA offers no renewal information (RFC 9773); renewing at the configured share of each lifetime"
                    );
                }
                return None;
            }
            Fetched::Failed => Window {
                id: id.to_owned(),
                at: None,
                refetch: now + AFTER_FAILURE,
            },
            Fetched::Window {
                start,
                end,
                again,
                explanation,
            } => {
                let span = end.duration_since(start).unwrap_or_default();
                let at = start + span.mul_f64(draw.clamp(0.0, 1.0));
                if let Some(url) = explanation {
                    tracing::warn!(names = %label, explanation = %url, "the CA moved this certificate's renewal window");
                }
                Window {
                    id: id.to_owned(),
                    at: Some(at),
                    refetch: now + again.clamp(MIN_REFETCH, MAX_REFETCH),
                }
            }
        };
        let at = window.at;
        self.by_set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(label.to_owned(), window);
        at
    }
}

/// Fetches the window for certificate `id` from the CA.
pub(crate) async fn fetch(account: &instant_acme::Account, id: &str) -> Fetched {
    let Some(cert) = certificate_id(id) else {
        return Fetched::Failed;
    };
    match account.renewal_info(&cert).await {
        Ok((info, again)) => {
            let t = |secs: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
            Fetched::Window {
                start: t(info.suggested_window.start.unix_timestamp()),
                end: t(info.suggested_window.end.unix_timestamp()),
                again,
                explanation: info.explanation_url,
            }
        }
        Err(instant_acme::Error::Unsupported(_)) => Fetched::Unsupported,
        Err(e) => {
            tracing::warn!(certificate = %id, "fetching ACME renewal information: {e}");
            Fetched::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_without_padding() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }

    /// RFC 9773 §4.1's example: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
    /// serial 00:87:65:43:21 → `aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE`.
    #[test]
    fn the_identifier_of_rfc_9773s_example() {
        use openssl::asn1::Asn1Integer;
        use openssl::bn::BigNum;
        use openssl::x509::extension::AuthorityKeyIdentifier;
        let (issuer, issuer_key) = ca_with_ski(&hex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4"));
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = BigNum::from_hex_str("0087654321").unwrap();
        b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
            .unwrap();
        b.set_issuer_name(issuer.subject_name()).unwrap();
        b.set_subject_name(issuer.subject_name()).unwrap();
        b.set_pubkey(&issuer_key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&issuer), None))
            .unwrap();
        b.append_extension(aki).unwrap();
        b.sign(&issuer_key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let leaf = b.build();
        assert_eq!(
            identifier(&leaf).as_deref(),
            Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
        );
        let id = certificate_id("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A self-signed CA whose subjectKeyIdentifier is `ski`.
    fn ca_with_ski(
        ski: &[u8],
    ) -> (
        openssl::x509::X509,
        openssl::pkey::PKey<openssl::pkey::Private>,
    ) {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "ARI test CA").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        // The extension's value: the DER of an OCTET STRING holding the identifier.
        let mut value = vec![0x04, ski.len() as u8];
        value.extend_from_slice(ski);
        let ext = openssl::x509::X509Extension::new_from_der(
            &openssl::asn1::Asn1Object::from_str("2.5.29.14").unwrap(),
            false,
            &openssl::asn1::Asn1OctetString::new_from_bytes(&value).unwrap(),
        )
        .unwrap();
        b.append_extension(ext).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        (b.build(), key)
    }

    #[test]
    fn a_window_is_drawn_within_and_refetched_per_the_hint() {
        let w = Windows::new();
        let start = SystemTime::now() + Duration::from_secs(1000);
        let end = start + Duration::from_secs(1000);
        assert!(w.claim_fetch("a.test", "X.Y"));
        assert!(!w.claim_fetch("a.test", "X.Y"), "one fetch at a time");
        w.record(
            "a.test",
            "X.Y",
            Fetched::Window {
                start,
                end,
                again: Duration::from_secs(5),
                explanation: None,
            },
            0.25,
        );
        assert_eq!(
            w.renew_at("a.test", "X.Y"),
            Some(start + Duration::from_secs(250))
        );
        assert_eq!(w.renew_at("a.test", "other"), None, "another certificate");
        assert!(
            !w.claim_fetch("a.test", "X.Y"),
            "fresh for at least a minute"
        );
        assert!(w.claim_fetch("a.test", "new.cert"), "a new certificate");
        w.record("a.test", "new.cert", Fetched::Unsupported, 0.0);
        assert!(!w.offered());
        assert!(!w.claim_fetch("b.test", "X.Y"));
    }
}
