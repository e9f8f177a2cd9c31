//! OCSP stapling from response files: `ssl_ocsp_name`, the crt-list `ocsp` option, or HAProxy's
//! `CERT.ocsp` beside the certificate file (`site.pem.ecdsa.ocsp` for `site.pem.ecdsa`), with
//! the issuer from the chain or `CERT.issuer`.
//!
//! The file is read with the entry (and read again when it changes); it is checked when the
//! entry's OpenSSL objects are built (the first handshake that needs them, or at load with
//! `prepare = "all"`): a response that is not a successful one, is not for this certificate,
//! does not verify against the issuer (signed by it, or by a responder it delegated to), says
//! unknown, or is past its nextUpdate is never stapled, and its state says why.
//! A good or a revoked response is stapled to every handshake that asks (`status_request`,
//! TLS 1.2 and 1.3) with the chain it belongs to: a copy of a few hundred bytes, nothing else.
//! A revocation is stapled as the responder said it, as HAProxy and Apache do: hiding it would
//! let a soft-fail client accept a revoked certificate. It is reported loudly (`certs check`,
//! the OCSP updater's log, `edgetls_ocsp_responses{state="revoked"}`).

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus};
use openssl::ssl::SslContextBuilder;
use openssl::stack::Stack;
use openssl::x509::X509Ref;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;

/// What a chain's OCSP response was found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspState {
    /// Verified, status good, within its validity: stapled.
    Good,
    /// The responder says the certificate is revoked: stapled as it is (the client decides).
    Revoked,
    /// The responder does not know the certificate.
    Unknown,
    /// Past its nextUpdate (or its thisUpdate is in the future).
    Expired,
    /// Not a usable response for this certificate: why.
    Invalid(String),
}

impl OcspState {
    /// Whether a response in this state is stapled: verified and current, good or revoked.
    pub fn is_stapled(&self) -> bool {
        matches!(self, OcspState::Good | OcspState::Revoked)
    }

    /// A fixed label (metrics, `certs check`).
    pub fn as_str(&self) -> &'static str {
        match self {
            OcspState::Good => "good",
            OcspState::Revoked => "revoked",
            OcspState::Unknown => "unknown",
            OcspState::Expired => "expired",
            OcspState::Invalid(_) => "invalid",
        }
    }
}

impl std::fmt::Display for OcspState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OcspState::Invalid(why) => write!(f, "invalid: {why}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// A checked response: its state and its nextUpdate (Unix time), if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspCheck {
    /// Whether the response can be stapled.
    pub state: OcspState,
    /// Its nextUpdate, Unix time; `None` when the responder gave none.
    pub next_update: Option<i64>,
}

/// Seconds a response's times may be off (clock skew between responder and edge).
const LEEWAY: i64 = 300;

/// Checks the DER OCSP response `der` for `leaf`, issued by `issuer`, at Unix time `now`.
pub fn check(der: &[u8], leaf: &X509Ref, issuer: &X509Ref, now: i64) -> OcspCheck {
    let invalid = |why: String| OcspCheck {
        state: OcspState::Invalid(why),
        next_update: None,
    };
    let resp = match OcspResponse::from_der(der) {
        Ok(r) => r,
        Err(e) => return invalid(format!("not an OCSP response: {e}")),
    };
    if resp.status() != OcspResponseStatus::SUCCESSFUL {
        return invalid(format!("responder status {}", resp.status().as_raw()));
    }
    let basic = match resp.basic() {
        Ok(b) => b,
        Err(e) => return invalid(format!("no basic response: {e}")),
    };
    let id = match OcspCertId::from_cert(MessageDigest::sha1(), leaf, issuer) {
        Ok(id) => id,
        Err(e) => return invalid(format!("certificate ID: {e}")),
    };
    let Some(status) = basic.find_status(&id) else {
        return invalid("the response is not for this certificate (or not from its issuer)".into());
    };
    if let Err(e) = verify(&basic, issuer) {
        return invalid(format!("does not verify against the issuer: {e}"));
    }
    let this_update = generalized_time(status.this_update);
    let next_update = status.next_update().and_then(generalized_time);
    let state = if this_update.is_none_or(|t| t > now + LEEWAY)
        || next_update.is_some_and(|t| t < now - LEEWAY)
    {
        OcspState::Expired
    } else if status.status == OcspCertStatus::GOOD {
        OcspState::Good
    } else if status.status == OcspCertStatus::REVOKED {
        OcspState::Revoked
    } else {
        OcspState::Unknown
    };
    OcspCheck { state, next_update }
}

/// The response is signed by the issuer, or by a responder certificate the issuer signed for
/// OCSP. Signed by the issuer itself (the usual case), only the signature is checked (OpenSSL's
/// `OCSP_TRUSTOTHER` for the one certificate given); signed by another certificate carried in
/// the response, that certificate's chain to the issuer and its OCSP-signing purpose are
/// checked too, with the issuer as the trust anchor.
fn verify(basic: &openssl::ocsp::OcspBasicResponseRef, issuer: &X509Ref) -> Result<(), ErrorStack> {
    let mut store = X509StoreBuilder::new()?;
    store.add_cert(issuer.to_owned())?;
    store.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
    let store = store.build();
    let mut certs = Stack::new()?;
    certs.push(issuer.to_owned())?;
    basic.verify(&certs, &store, OcspFlag::TRUST_OTHER)
}

/// A GeneralizedTime (`YYYYMMDDHHMMSSZ`, optional fraction) as Unix time.
fn generalized_time(t: &openssl::asn1::Asn1GeneralizedTimeRef) -> Option<i64> {
    // SAFETY: an ASN1_GENERALIZEDTIME is an ASN1_STRING; its data and length are read while
    // `t` is borrowed.
    let bytes = unsafe {
        let s = t.as_ptr() as *const openssl_sys::ASN1_STRING;
        let p = openssl_sys::ASN1_STRING_get0_data(s);
        let n = openssl_sys::ASN1_STRING_length(s);
        if p.is_null() || n < 15 {
            return None;
        }
        std::slice::from_raw_parts(p, n as usize)
    };
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(bytes.get(r)?).ok()?.parse().ok()
    };
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Makes contexts built with `b` staple the responses of the chains the store sets (call it on
/// every context a handshake may be switched to).
pub fn enable_stapling(b: &mut SslContextBuilder) -> Result<(), ErrorStack> {
    edgetls_tls::staple::enable(b).map_err(crate::ssl::stack)
}

#[cfg(test)]
mod tests {
    use foreign_types::{ForeignType, ForeignTypeRef};
    use openssl::asn1::{Asn1GeneralizedTimeRef, Asn1Time};

    fn unix(s: &str) -> Option<i64> {
        let t = Asn1Time::from_str(s).unwrap();
        // SAFETY: years from 2050 are encoded as GeneralizedTime; both types are ASN1_STRINGs,
        // and `t` outlives the borrow.
        let g = unsafe { Asn1GeneralizedTimeRef::from_ptr(t.as_ptr().cast()) };
        super::generalized_time(g)
    }

    #[test]
    fn generalized_times_become_unix_times() {
        assert_eq!(unix("20500101000000Z"), Some(2_524_608_000));
        assert_eq!(unix("21000301123015Z"), Some(4_107_587_415));
    }
}
