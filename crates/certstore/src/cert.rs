//! Certificates: strict DER parsing (x509-parser, ~1.6 µs) for what the index needs — names,
//! validity, public key — instead of OpenSSL 3.0's `d2i_X509` (~97 µs here, most of it the
//! provider decoder for the public key). OpenSSL parses the same DER bytes lazily, when a
//! handshake first needs the entry (see `ssl.rs`).

use crate::der::{self, oid};
use std::net::IpAddr;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

/// The public key algorithm of a certificate or key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// An RSA key.
    Rsa,
    /// An ECDSA key (P-256, P-384, P-521).
    Ecdsa,
    /// An Ed25519 key.
    Ed25519,
}

impl KeyType {
    /// The lowercase name used in reports and metrics: `rsa`, `ecdsa` or `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ecdsa => "ecdsa",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

/// A set of key types: which chains of an entry serve a name, or which a client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct KeyTypes(u8);

impl KeyTypes {
    /// No key type.
    pub const NONE: KeyTypes = KeyTypes(0);
    /// Every key type (what an entry without chains, a tunnel, claims).
    pub const ALL: KeyTypes = KeyTypes(0b111);

    /// The set holding only `kt`.
    pub const fn of(kt: KeyType) -> KeyTypes {
        KeyTypes(1 << kt as u8)
    }

    /// Whether `kt` is in the set.
    pub const fn contains(self, kt: KeyType) -> bool {
        self.0 & (1 << kt as u8) != 0
    }

    /// Whether the set holds no key type.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    pub const fn union(self, other: KeyTypes) -> KeyTypes {
        KeyTypes(self.0 | other.0)
    }

    /// The types of `self` that are not in `other`.
    pub const fn minus(self, other: KeyTypes) -> KeyTypes {
        KeyTypes(self.0 & !other.0)
    }

    /// The types of both.
    pub const fn intersect(self, other: KeyTypes) -> KeyTypes {
        KeyTypes(self.0 & other.0)
    }

    /// The types in the set, RSA first.
    pub fn iter(self) -> impl Iterator<Item = KeyType> {
        [KeyType::Rsa, KeyType::Ecdsa, KeyType::Ed25519]
            .into_iter()
            .filter(move |kt| self.contains(*kt))
    }
}

impl std::fmt::Display for KeyTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == KeyTypes::ALL {
            return f.write_str("any");
        }
        let words: Vec<&str> = self.iter().map(KeyType::as_str).collect();
        f.write_str(&words.join("+"))
    }
}

/// A certificate's SubjectPublicKeyInfo, reduced to what key matching needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Curve OID (DER contents) and the encoded point.
    Ec {
        curve: Vec<u8>,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

impl PublicKey {
    pub(crate) fn key_type(&self) -> KeyType {
        match self {
            PublicKey::Rsa { .. } => KeyType::Rsa,
            PublicKey::Ec { .. } => KeyType::Ecdsa,
            PublicKey::Ed25519(_) => KeyType::Ed25519,
        }
    }
}

/// What the store keeps from a leaf certificate.
#[derive(Debug)]
pub(crate) struct Leaf {
    /// DNS names from the SAN extension; the subject CN only when there is no SAN extension.
    pub(crate) dns: Vec<String>,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) public: PublicKey,
}

/// Parses one certificate strictly: no trailing bytes, a supported public key.
/// Returns the leaf facts plus the raw subject and issuer names, for chain-order checks.
pub(crate) fn parse(der_bytes: &[u8]) -> Result<(Leaf, Vec<u8>, Vec<u8>), String> {
    let (rest, cert) = parse_x509_certificate(der_bytes)
        .map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes of garbage after the certificate",
            rest.len()
        ));
    }
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?;
    match san {
        Some(san) => {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) => dns.push((*n).to_string()),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_from_bytes(b) {
                            ips.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        None => {
            for cn in cert.subject().iter_common_name() {
                if let Ok(cn) = cn.as_str() {
                    dns.push(cn.to_string());
                }
            }
        }
    }
    let public = public_key(cert.public_key().raw)?;
    let leaf = Leaf {
        dns,
        ips,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        public,
    };
    Ok((
        leaf,
        cert.subject().as_raw().to_vec(),
        cert.issuer().as_raw().to_vec(),
    ))
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

fn public_key(spki: &[u8]) -> Result<PublicKey, String> {
    let bad = || "malformed SubjectPublicKeyInfo".to_string();
    let (seq, _) = der::expect(spki, der::SEQUENCE).ok_or_else(bad)?;
    let (alg, rest) = der::expect(seq, der::SEQUENCE).ok_or_else(bad)?;
    let (alg_oid, params) = der::expect(alg, der::OID).ok_or_else(bad)?;
    let (bits, _) = der::expect(rest, der::BIT_STRING).ok_or_else(bad)?;
    let key = bits.split_first().ok_or_else(bad)?.1;
    match alg_oid {
        oid::RSA => {
            let (rsa, _) = der::expect(key, der::SEQUENCE).ok_or_else(bad)?;
            let (n, rest) = der::expect(rsa, der::INTEGER).ok_or_else(bad)?;
            let (e, _) = der::expect(rest, der::INTEGER).ok_or_else(bad)?;
            Ok(PublicKey::Rsa {
                n: strip_zeros(n).to_vec(),
                e: strip_zeros(e).to_vec(),
            })
        }
        oid::EC_PUBLIC_KEY => {
            let (curve, _) = der::expect(params, der::OID).ok_or("EC key without a named curve")?;
            if ![oid::P256, oid::P384, oid::P521].contains(&curve) {
                return Err("unsupported elliptic curve (P-256, P-384 and P-521 are)".into());
            }
            Ok(PublicKey::Ec {
                curve: curve.to_vec(),
                point: key.to_vec(),
            })
        }
        oid::ED25519 => Ok(PublicKey::Ed25519(key.to_vec())),
        _ => Err("unsupported public key algorithm (RSA, ECDSA and Ed25519 are)".into()),
    }
}

pub(crate) fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}
