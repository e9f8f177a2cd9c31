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
use std::sync::OnceLock;
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
    /// Builds the OpenSSL key; `None` for a remote key (made by [`crate::KeySource`]).
    pub(crate) fn to_pkey(&self) -> Option<Result<PKey<Private>, openssl::error::ErrorStack>> {
        Some(match self {
            KeyMaterial::Ec(der) => ec_pkey(der),
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

/// The OpenSSL key of a SEC1 key, built on the curve's shared group: `d2i_ECPrivateKey` would
/// build a group of its own, ≈ 12 µs of Montgomery set-up, at each cold handshake.
fn ec_pkey(sec1: &[u8]) -> Result<PKey<Private>, openssl::error::ErrorStack> {
    let Some((key, curve)) = der::sec1(sec1)
        .and_then(|k| Some((Curve::of(k.curve?)?, k)))
        .map(|(c, k)| (k, c))
    else {
        return EcKey::private_key_from_der(sec1).and_then(PKey::from_ec_key);
    };
    let mut ctx = BigNumContext::new()?;
    let mut d = openssl::bn::BigNum::from_slice(key.scalar)?;
    let public = match key.public {
        Some(p) => EcPoint::from_bytes(curve.group, p, &mut ctx),
        None => EcPoint::new(curve.group).and_then(|mut p| {
            p.mul_generator2(curve.group, &d, &mut ctx)?;
            Ok(p)
        }),
    };
    let ec = public.and_then(|p| EcKey::from_private_components(curve.group, &d, &p));
    // The EC_KEY holds its own copy of the scalar; wipe ours.
    d.clear();
    PKey::from_ec_key(ec?)
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

/// Reads a SEC1 key without OpenSSL: its curve and public point are in the DER (OpenSSL writes
/// both; `with_curve` adds the curve to a PKCS#8 key's). Decoding it with `d2i_ECPrivateKey`
/// builds a new curve group per key, its Montgomery set-up included (≈ 12 µs; a third of a
/// 100,000-name start-up). A point that is compressed or missing is made with the curve's shared
/// group. Like `d2i_ECPrivateKey`, this trusts the stored public point to be the scalar's;
/// the certificate's public key must equal it.
fn check_ec(sec1: Vec<u8>) -> Result<(KeyMaterial, KeyPublic), String> {
    let sec1 = Zeroizing::new(sec1);
    let public = ec_public(&sec1)?;
    Ok((KeyMaterial::Ec(sec1), KeyPublic(public)))
}

fn ec_public(sec1: &[u8]) -> Result<PublicKey, String> {
    let key = der::sec1(sec1).ok_or("bad EC key: not a SEC1 ECPrivateKey")?;
    let curve = key.curve.ok_or("bad EC key: no named curve")?;
    let c = Curve::of(curve).ok_or("unsupported elliptic curve (P-256, P-384 and P-521 are)")?;
    let scalar = strip_zeros(key.scalar);
    if scalar.is_empty() || scalar.len() > c.field_bytes {
        return Err("bad EC key: the private scalar is out of range".into());
    }
    let point = match key.public {
        Some(p) if p.first() == Some(&4) && p.len() == 1 + 2 * c.field_bytes => p.to_vec(),
        Some(p) => c
            .uncompress(p)
            .map_err(|e| format!("bad EC key: public point: {e}"))?,
        None => c
            .public_of(scalar)
            .map_err(|e| format!("bad EC key: {e}"))?,
    };
    Ok(PublicKey::Ec {
        curve: curve.to_vec(),
        point,
    })
}

/// A named curve this module reads, with its OpenSSL group built once per process.
struct Curve {
    field_bytes: usize,
    group: &'static EcGroup,
}

impl Curve {
    fn of(oid: &[u8]) -> Option<Curve> {
        static GROUPS: [OnceLock<Option<EcGroup>>; 3] = [const { OnceLock::new() }; 3];
        let (i, nid, field_bytes) = match oid {
            oid::P256 => (0, Nid::X9_62_PRIME256V1, 32),
            oid::P384 => (1, Nid::SECP384R1, 48),
            oid::P521 => (2, Nid::SECP521R1, 66),
            _ => return None,
        };
        let group = GROUPS[i]
            .get_or_init(|| EcGroup::from_curve_name(nid).ok())
            .as_ref()?;
        Some(Curve { field_bytes, group })
    }

    /// A compressed (or hybrid) point in uncompressed form; an error when it is not on the curve.
    fn uncompress(&self, point: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut ctx = BigNumContext::new()?;
        let p = EcPoint::from_bytes(self.group, point, &mut ctx)?;
        uncompressed(self.group, &p)
    }

    /// The public point of a scalar (for keys stored without theirs).
    fn public_of(&self, scalar: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut ctx = BigNumContext::new()?;
        let d = openssl::bn::BigNum::from_slice(scalar)?;
        let mut p = EcPoint::new(self.group)?;
        p.mul_generator2(self.group, &d, &mut ctx)?;
        uncompressed(self.group, &p)
    }
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
            let Some(curve) = Curve::of(cc) else {
                return Ok(false);
            };
            Ok(curve.uncompress(cp)? == *kp)
        }
        (k, c) => Ok(k == c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::sign::{Signer, Verifier};

    /// DER of a SEC1 key built by hand (lengths < 256): version 1, the scalar, the curve, and
    /// the public point when given.
    fn sec1(scalar: &[u8], curve: &[u8], public: Option<&[u8]>) -> Vec<u8> {
        let tlv = |tag: u8, v: &[u8]| match v.len() {
            n @ 0..128 => [&[tag, n as u8][..], v].concat(),
            n => [&[tag, 0x81, n as u8][..], v].concat(),
        };
        let mut body = [
            tlv(0x02, &[1]),
            tlv(0x04, scalar),
            tlv(0xa0, &tlv(0x06, curve)),
        ]
        .concat();
        if let Some(p) = public {
            body.extend(tlv(0xa1, &tlv(0x03, &[&[0u8][..], p].concat())));
        }
        tlv(0x30, &body)
    }

    fn signs_for(pkey: &PKey<Private>, original: &EcKey<Private>) {
        let mut s = Signer::new(openssl::hash::MessageDigest::sha256(), pkey).unwrap();
        s.update(b"ClientHello").unwrap();
        let sig = s.sign_to_vec().unwrap();
        let public = PKey::from_ec_key(
            EcKey::from_public_key(original.group(), original.public_key()).unwrap(),
        )
        .unwrap();
        let mut v = Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap();
        v.update(b"ClientHello").unwrap();
        assert!(v.verify(&sig).unwrap());
    }

    #[test]
    fn ec_keys_with_full_compressed_or_no_public_point_read_as_openssl_reads_them() {
        for (nid, oid) in [
            (Nid::X9_62_PRIME256V1, oid::P256),
            (Nid::SECP384R1, oid::P384),
        ] {
            let group = EcGroup::from_curve_name(nid).unwrap();
            let key = EcKey::generate(&group).unwrap();
            let mut ctx = BigNumContext::new().unwrap();
            let full = key
                .public_key()
                .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
                .unwrap();
            let short = key
                .public_key()
                .to_bytes(&group, PointConversionForm::COMPRESSED, &mut ctx)
                .unwrap();
            let d = key.private_key().to_vec();
            for der in [
                key.private_key_to_der().unwrap(),
                sec1(&d, oid, Some(&full)),
                sec1(&d, oid, Some(&short)),
                sec1(&d, oid, None),
            ] {
                let (material, public) = check_ec(der.clone()).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    public,
                    KeyPublic(PublicKey::Ec {
                        curve: oid.to_vec(),
                        point: full.clone()
                    })
                );
                signs_for(&material.to_pkey().unwrap().unwrap(), &key);
            }
        }
    }

    #[test]
    fn ec_keys_with_a_zero_scalar_an_unknown_curve_or_a_point_off_the_curve_are_refused() {
        let p256 = oid::P256;
        assert!(check_ec(sec1(&[0, 0], p256, None)).is_err());
        assert!(check_ec(sec1(&[1; 33], p256, None)).is_err());
        // secp256k1
        assert!(check_ec(sec1(&[1; 32], &[0x2b, 0x81, 0x04, 0x00, 0x0a], None)).is_err());
        let mut off = vec![2u8];
        off.extend([0xffu8; 32]);
        assert!(check_ec(sec1(&[1; 32], p256, Some(&off))).is_err());
        assert!(check_ec(b"\x30\x03\x02\x01\x01".to_vec()).is_err());
    }
}
