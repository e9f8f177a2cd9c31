//! How requests name keys: the SKI (SHA-1 of the SubjectPublicKeyInfo's public key bits) and
//! the legacy digest (SHA-256 of an RSA modulus in uppercase hex).

use crate::error::ProtoError;
use std::fmt;

/// Subject Key Identifier as keyless uses it: SHA-1 of the subjectPublicKey BIT STRING's
/// contents (not the certificate's SKI extension, which a CA may compute differently).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ski(pub [u8; 20]);

impl Ski {
    /// The SKI of a DER SubjectPublicKeyInfo (as in a certificate, or `i2d_PUBKEY`).
    pub fn from_spki_der(spki: &[u8]) -> Result<Ski, ProtoError> {
        Ok(Ski::from_public_key_bits(public_key_bits(spki)?))
    }

    /// The SKI of the subjectPublicKey bits themselves.
    pub fn from_public_key_bits(bits: &[u8]) -> Ski {
        Ski(openssl::sha::sha1(bits))
    }
}

impl fmt::Display for Ski {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Ski {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ski({self})")
    }
}

/// The legacy key id of RSA keys: SHA-256 of the modulus as uppercase hexadecimal text without
/// leading zeros (what the original C key server and gokeyless compute).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// From the modulus as big-endian bytes (leading zero bytes are ignored).
    pub fn of_rsa_modulus(modulus: &[u8]) -> Digest {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let first = modulus
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(modulus.len());
        let mut text = Vec::with_capacity(2 * modulus.len());
        for &b in &modulus[first..] {
            text.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        // Hex of a number has no leading zero digit (the first byte may be < 0x10).
        if text.first() == Some(&b'0') {
            text.remove(0);
        }
        if text.is_empty() {
            text.push(b'0');
        }
        Digest(openssl::sha::sha256(&text))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str(")")
    }
}

/// The contents of the subjectPublicKey BIT STRING of a DER SubjectPublicKeyInfo.
fn public_key_bits(spki: &[u8]) -> Result<&[u8], ProtoError> {
    let bad = || ProtoError::Spki;
    let (seq, _) = der(spki, 0x30).ok_or_else(bad)?;
    let (_alg, rest) = der(seq, 0x30).ok_or_else(bad)?;
    let (bits, _) = der(rest, 0x03).ok_or_else(bad)?;
    match bits.split_first() {
        Some((0, key)) => Ok(key),
        _ => Err(bad()),
    }
}

/// One DER element with the expected tag: (contents, rest).
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x83 => {
            let n = usize::from(first & 0x7f);
            let len = rest
                .get(..n)?
                .iter()
                .fold(0usize, |a, &b| (a << 8) | usize::from(b));
            (len, &rest[n..])
        }
        _ => return None,
    };
    (t == tag && rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;

    #[test]
    fn ski_is_sha1_of_the_public_key_bits() {
        let ec =
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        let point = ec
            .public_key()
            .to_bytes(
                ec.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut ctx,
            )
            .unwrap();
        let spki = PKey::from_ec_key(ec).unwrap().public_key_to_der().unwrap();
        let ski = Ski::from_spki_der(&spki).unwrap();
        assert_eq!(ski.0, openssl::sha::sha1(&point));
        assert_eq!(ski.to_string().len(), 40);
        assert!(Ski::from_spki_der(&spki[..spki.len() - 1]).is_err());
        assert!(Ski::from_spki_der(b"garbage").is_err());
    }

    #[test]
    fn digest_hashes_uppercase_hex_without_leading_zeros() {
        // 0x0ABC: "ABC", not "0ABC"; leading zero bytes are not digits either.
        assert_eq!(
            Digest::of_rsa_modulus(&[0x00, 0x0a, 0xbc]).0,
            openssl::sha::sha256(b"ABC")
        );
        assert_eq!(
            Digest::of_rsa_modulus(&[0xff, 0x01]).0,
            openssl::sha::sha256(b"FF01")
        );
        // Against OpenSSL's own hex rendering of a real modulus.
        let rsa = Rsa::generate(1024).unwrap();
        let hex = rsa.n().to_hex_str().unwrap().to_string();
        assert_eq!(
            Digest::of_rsa_modulus(&rsa.n().to_vec()).0,
            openssl::sha::sha256(hex.as_bytes())
        );
        let n = BigNum::from_hex_str("0F00").unwrap();
        assert_eq!(
            Digest::of_rsa_modulus(&n.to_vec()).0,
            openssl::sha::sha256(b"F00")
        );
    }
}
