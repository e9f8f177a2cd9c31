//! Keyless operations as PKCS#11 mechanisms. The token gets what TLS already hashed:
//! `CKM_RSA_PKCS` over DigestInfo ‖ digest (the bare 36 bytes for MD5‖SHA-1),
//! `CKM_RSA_PKCS_PSS` over the digest (MGF1 with the same hash, salt = hash length),
//! `CKM_ECDSA` over the digest (its r ‖ s answer re-encoded as DER, as keyless clients expect),
//! `CKM_RSA_X_509` (raw) or `CKM_RSA_PKCS` (unpadded) to decrypt.

use crate::keys::{Decryption, KeyKind};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use edgetls_keyless_proto::{ErrorCode, HashAlgorithm, SignScheme};
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;

/// The DER DigestInfo header that precedes a digest of `hash` in a PKCS#1 v1.5 signature
/// (RFC 8017, section 9.2, note 1).
fn digest_info(hash: HashAlgorithm) -> &'static [u8] {
    match hash {
        HashAlgorithm::Md5Sha1 => &[],
        HashAlgorithm::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        HashAlgorithm::Sha224 => &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x04, 0x05, 0x00, 0x04, 0x1c,
        ],
        HashAlgorithm::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlgorithm::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlgorithm::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

fn pss_params(hash: HashAlgorithm) -> Option<PkcsPssParams> {
    let (hash_alg, mgf) = match hash {
        HashAlgorithm::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        HashAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        _ => return None,
    };
    Some(PkcsPssParams {
        hash_alg,
        mgf,
        s_len: (hash.digest_len() as u64).into(),
    })
}

/// The mechanism and the input the token signs for `scheme` over `digest`; a scheme the key
/// cannot do is a crypto error, as for a key file.
pub(crate) fn sign(
    kind: KeyKind,
    scheme: SignScheme,
    digest: &[u8],
) -> Result<(Mechanism<'static>, Vec<u8>), ErrorCode> {
    match (scheme, kind) {
        (SignScheme::RsaPkcs1(h), KeyKind::Rsa { .. }) => {
            Ok((Mechanism::RsaPkcs, [digest_info(h), digest].concat()))
        }
        (SignScheme::RsaPss(h), KeyKind::Rsa { .. }) => {
            let params = pss_params(h).ok_or(ErrorCode::CRYPTO)?;
            Ok((Mechanism::RsaPkcsPss(params), digest.to_vec()))
        }
        (SignScheme::Ecdsa(_), KeyKind::Ecdsa { .. }) => Ok((Mechanism::Ecdsa, digest.to_vec())),
        _ => Err(ErrorCode::CRYPTO),
    }
}

/// The signature as keyless clients expect it: ECDSA's r ‖ s as a DER `ECDSA-Sig-Value`.
pub(crate) fn signature(scheme: SignScheme, raw: Vec<u8>) -> Result<Vec<u8>, ErrorCode> {
    if !matches!(scheme, SignScheme::Ecdsa(_)) {
        return Ok(raw);
    }
    if raw.is_empty() || raw.len() % 2 != 0 {
        return Err(ErrorCode::CRYPTO);
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let num = |b: &[u8]| BigNum::from_slice(b).map_err(|_| ErrorCode::CRYPTO);
    EcdsaSig::from_private_components(num(r)?, num(s)?)
        .and_then(|sig| sig.to_der())
        .map_err(|_| ErrorCode::CRYPTO)
}

pub(crate) fn decrypt(how: Decryption) -> Mechanism<'static> {
    match how {
        Decryption::Raw => Mechanism::RsaX509,
        Decryption::Pkcs1 => Mechanism::RsaPkcs,
    }
}
