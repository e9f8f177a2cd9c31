//! Private keys: decoded through OpenSSL's typed DER paths, kept as compact DER, matched
//! against the leaf's public key the way `SSL_CTX_use_PrivateKey` checks it (public parts equal).

use crate::cert::{PublicKey, strip_zeros};
use crate::der::{self, oid};
use crate::pem::Block;
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use zeroize::Zeroizing;

/// A private key in the form the handshake path decodes fastest.
pub(crate) enum KeyMaterial {
    /// SEC1 ECPrivateKey with the curve parameters (`d2i_ECPrivateKey`, ~12 µs).
    Ec(Zeroizing<Vec<u8>>),
    /// PKCS#1 RSAPrivateKey (`d2i_RSAPrivateKey`, ~2 µs).
    Rsa(Zeroizing<Vec<u8>>),
    /// The 32-byte Ed25519 seed.
    Ed25519(Zeroizing<Vec<u8>>),
    /// Held elsewhere (a key server); the leaf's public key identifies it.
    Remote,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            KeyMaterial::Ec(_) => "Ec",
            KeyMaterial::Rsa(_) => "Rsa",
            KeyMaterial::Ed25519(_) => "Ed25519",
            KeyMaterial::Remote => "Remote",
        };
        write!(f, "KeyMaterial::{kind}(..)")
    }
}

impl KeyMaterial {
    /// Builds the OpenSSL key; `None` for a remote key (made by [`crate::RemoteKeys`]).
    pub(crate) fn to_pkey(&self) -> Option<Result<PKey<Private>, openssl::error::ErrorStack>> {
        Some(match self {
            KeyMaterial::Ec(der) => EcKey::private_key_from_der(der).and_then(PKey::from_ec_key),
            KeyMaterial::Rsa(der) => Rsa::private_key_from_der(der).and_then(PKey::from_rsa),
            KeyMaterial::Ed25519(seed) => PKey::private_key_from_raw_bytes(seed, Id::ED25519),
            KeyMaterial::Remote => return None,
        })
    }

    pub(crate) fn is_remote(&self) -> bool {
        matches!(self, KeyMaterial::Remote)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            KeyMaterial::Ec(b) | KeyMaterial::Rsa(b) | KeyMaterial::Ed25519(b) => b.capacity(),
            KeyMaterial::Remote => 0,
        }
    }
}

/// Whether a PEM block is a private key this module reads.
pub(crate) fn is_key_label(label: &str) -> bool {
    matches!(
        label,
        "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" | "ENCRYPTED PRIVATE KEY"
    )
}

/// What went wrong with a key, before the caller adds the file name.
pub(crate) enum KeyError {
    NeedsPassphrase,
    Other(String),
}

/// The public half of a decoded private key, as the certificate must show it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeyPublic(PublicKey);

/// Decodes a key block (one OpenSSL typed decode) and derives its public half.
/// `passphrase` is used only for encrypted keys.
pub(crate) fn decode(
    block: &Block<'_>,
    passphrase: Option<&[u8]>,
) -> Result<(KeyMaterial, KeyPublic), KeyError> {
    let other =
        |m: &str| KeyError::Other(format!("{} block at line {}: {m}", block.label, block.line));
    let encrypted = block.label == "ENCRYPTED PRIVATE KEY" || block.has_headers;
    if encrypted {
        let pass = passphrase.ok_or(KeyError::NeedsPassphrase)?;
        let pkey = if block.label == "ENCRYPTED PRIVATE KEY" {
            PKey::private_key_from_pkcs8_passphrase(&block.der, pass)
        } else {
            PKey::private_key_from_pem_passphrase(block.text, pass)
        }
        .map_err(|e| other(&format!("wrong passphrase or corrupt encrypted key ({e})")))?;
        let material = from_pkey(&pkey).map_err(|m| other(&m))?;
        let public = match &material {
            KeyMaterial::Ec(der) => check_ec(der.to_vec()).map_err(|m| other(&m))?.1,
            KeyMaterial::Rsa(der) => check_rsa(der).map_err(|m| other(&m))?.1,
            KeyMaterial::Ed25519(seed) => ed25519(seed).map_err(|m| other(&m))?.1,
            KeyMaterial::Remote => return Err(other("not a local key")),
        };
        return Ok((material, public));
    }
    match block.label {
        "RSA PRIVATE KEY" => check_rsa(&block.der).map_err(|m| other(&m)),
        "EC PRIVATE KEY" => check_ec(block.der.clone()).map_err(|m| other(&m)),
        "PRIVATE KEY" => {
            let (alg, params, inner) =
                der::pkcs8(&block.der).ok_or_else(|| other("malformed PKCS#8"))?;
            match alg {
                oid::RSA => check_rsa(inner).map_err(|m| other(&m)),
                oid::EC_PUBLIC_KEY => {
                    let (curve, _) = der::expect(params, der::OID)
                        .ok_or_else(|| other("EC key without a named curve"))?;
                    let sec1 = with_curve(inner, curve)
                        .ok_or_else(|| other("malformed SEC1 key inside PKCS#8"))?;
                    check_ec(sec1).map_err(|m| other(&m))
                }
                oid::ED25519 => {
                    let (seed, _) = der::expect(inner, der::OCTET_STRING)
                        .ok_or_else(|| other("malformed Ed25519 key"))?;
                    ed25519(seed).map_err(|m| other(&m))
                }
                _ => Err(other(
                    "unsupported key algorithm (RSA, ECDSA and Ed25519 are)",
                )),
            }
        }
        _ => Err(other("not a private key")),
    }
}

fn check_rsa(pkcs1: &[u8]) -> Result<(KeyMaterial, KeyPublic), String> {
    let rsa = Rsa::private_key_from_der(pkcs1).map_err(|e| format!("bad RSA key: {e}"))?;
    let public = PublicKey::Rsa {
        n: strip_zeros(&rsa.n().to_vec()).to_vec(),
        e: strip_zeros(&rsa.e().to_vec()).to_vec(),
    };
    Ok((
        KeyMaterial::Rsa(Zeroizing::new(pkcs1.to_vec())),
        KeyPublic(public),
    ))
}

fn check_ec(sec1: Vec<u8>) -> Result<(KeyMaterial, KeyPublic), String> {
    let sec1 = Zeroizing::new(sec1);
    let ec = EcKey::private_key_from_der(&sec1).map_err(|e| format!("bad EC key: {e}"))?;
    let curve = match ec.group().curve_name() {
        Some(Nid::X9_62_PRIME256V1) => oid::P256,
        Some(Nid::SECP384R1) => oid::P384,
        Some(Nid::SECP521R1) => oid::P521,
        _ => return Err("unsupported elliptic curve (P-256, P-384 and P-521 are)".into()),
    };
    let point = uncompressed(ec.group(), ec.public_key()).map_err(|e| e.to_string())?;
    Ok((
        KeyMaterial::Ec(sec1),
        KeyPublic(PublicKey::Ec {
            curve: curve.to_vec(),
            point,
        }),
    ))
}

fn ed25519(seed: &[u8]) -> Result<(KeyMaterial, KeyPublic), String> {
    let pkey = PKey::private_key_from_raw_bytes(seed, Id::ED25519)
        .map_err(|e| format!("bad Ed25519 key: {e}"))?;
    let public = pkey.raw_public_key().map_err(|e| e.to_string())?;
    Ok((
        KeyMaterial::Ed25519(Zeroizing::new(seed.to_vec())),
        KeyPublic(PublicKey::Ed25519(public)),
    ))
}

fn uncompressed(
    group: &openssl::ec::EcGroupRef,
    point: &openssl::ec::EcPointRef,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    point.to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx)
}

/// Re-encodes a SEC1 key (PKCS#8 usually omits its curve) with the curve from the PKCS#8 header.
fn with_curve(sec1: &[u8], curve: &[u8]) -> Option<Vec<u8>> {
    let der::Sec1 {
        scalar,
        curve: own_curve,
        public,
    } = der::sec1(sec1)?;
    if own_curve.is_some_and(|c| c != curve) {
        return None;
    }
    let mut body = vec![der::INTEGER, 1, 1];
    push_tlv(&mut body, der::OCTET_STRING, scalar);
    let mut oid_tlv = Vec::new();
    push_tlv(&mut oid_tlv, der::OID, curve);
    push_tlv(&mut body, 0xa0, &oid_tlv);
    if let Some(point) = public {
        let mut bits = vec![0u8];
        bits.extend_from_slice(point);
        let mut bit_tlv = Vec::new();
        push_tlv(&mut bit_tlv, der::BIT_STRING, &bits);
        push_tlv(&mut body, 0xa1, &bit_tlv);
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    push_tlv(&mut out, der::SEQUENCE, &body);
    Some(out)
}

fn push_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
}

fn from_pkey(pkey: &PKey<Private>) -> Result<KeyMaterial, String> {
    let err = |e: openssl::error::ErrorStack| e.to_string();
    match pkey.id() {
        Id::EC => Ok(KeyMaterial::Ec(Zeroizing::new(
            pkey.ec_key()
                .map_err(err)?
                .private_key_to_der()
                .map_err(err)?,
        ))),
        Id::RSA => Ok(KeyMaterial::Rsa(Zeroizing::new(
            pkey.rsa().map_err(err)?.private_key_to_der().map_err(err)?,
        ))),
        Id::ED25519 => Ok(KeyMaterial::Ed25519(Zeroizing::new(
            pkey.raw_private_key().map_err(err)?,
        ))),
        _ => Err("unsupported key algorithm (RSA, ECDSA and Ed25519 are)".into()),
    }
}

/// Whether the key is the private half of the certificate's public key: the same check
/// `SSL_CTX_use_PrivateKey` makes (`EVP_PKEY_eq` on the public parts).
pub(crate) fn matches(
    key: &KeyPublic,
    cert: &PublicKey,
) -> Result<bool, openssl::error::ErrorStack> {
    match (&key.0, cert) {
        (
            PublicKey::Ec {
                curve: kc,
                point: kp,
            },
            PublicKey::Ec {
                curve: cc,
                point: cp,
            },
        ) => {
            if kc != cc {
                return Ok(false);
            }
            if cp.first() == Some(&4) {
                return Ok(kp == cp);
            }
            // A compressed point in the certificate: decode it to compare.
            let nid = match cc.as_slice() {
                oid::P256 => Nid::X9_62_PRIME256V1,
                oid::P384 => Nid::SECP384R1,
                _ => Nid::SECP521R1,
            };
            let group = EcGroup::from_curve_name(nid)?;
            let mut ctx = BigNumContext::new()?;
            let point = EcPoint::from_bytes(&group, cp, &mut ctx)?;
            Ok(uncompressed(&group, &point)? == *kp)
        }
        (k, c) => Ok(k == c),
    }
}
