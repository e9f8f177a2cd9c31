//! The few DER structures OpenSSL's fast typed decoders need unwrapped: PKCS#8 PrivateKeyInfo
//! and SEC1 ECPrivateKey. (`d2i_AutoPrivateKey` and the PEM key readers go through OpenSSL
//! 3.0's generic decoders at ~350 µs a key; the typed `d2i_ECPrivateKey`/`d2i_RSAPrivateKey`
//! take 12 µs / 2 µs.)

/// A DER element: tag and contents.
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) value: &'a [u8],
}

/// Reads one element from the front of `input`; returns it and the rest.
pub(crate) fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((Tlv { tag, value }, rest))
}

/// Reads an element with the expected tag.
pub(crate) fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (tlv, rest) = read(input)?;
    (tlv.tag == tag).then_some((tlv.value, rest))
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const BIT_STRING: u8 = 0x03;

/// DER contents of the OIDs this crate recognizes.
pub(crate) mod oid {
    pub(crate) const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub(crate) const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub(crate) const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    pub(crate) const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub(crate) const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    pub(crate) const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
}

/// PKCS#8 PrivateKeyInfo: (algorithm OID, algorithm parameters element or empty, private key).
pub(crate) fn pkcs8(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (seq, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(seq, INTEGER)?;
    let (alg, rest) = expect(rest, SEQUENCE)?;
    let (alg_oid, params) = expect(alg, OID)?;
    let (private, _) = expect(rest, OCTET_STRING)?;
    Some((alg_oid, params, private))
}

/// The parts of a SEC1 ECPrivateKey.
pub(crate) struct Sec1<'a> {
    pub(crate) scalar: &'a [u8],
    /// The named curve's OID, when the key carries its parameters.
    pub(crate) curve: Option<&'a [u8]>,
    /// The encoded public point, when present.
    pub(crate) public: Option<&'a [u8]>,
}

/// Reads a SEC1 ECPrivateKey.
pub(crate) fn sec1(der: &[u8]) -> Option<Sec1<'_>> {
    let (seq, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(seq, INTEGER)?;
    let (scalar, mut rest) = expect(rest, OCTET_STRING)?;
    let (mut curve, mut public) = (None, None);
    while !rest.is_empty() {
        let (tlv, r) = read(rest)?;
        match tlv.tag {
            0xa0 => curve = Some(expect(tlv.value, OID)?.0),
            0xa1 => {
                let (bits, _) = expect(tlv.value, BIT_STRING)?;
                public = Some(bits.split_first()?.1); // skip the unused-bits byte
            }
            _ => {}
        }
        rest = r;
    }
    Some(Sec1 {
        scalar,
        curve,
        public,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths_and_rejects_overruns() {
        let (t, rest) = read(&[0x04, 0x02, 0xaa, 0xbb, 0xcc]).unwrap();
        assert_eq!(
            (t.tag, t.value, rest),
            (0x04, &[0xaa, 0xbb][..], &[0xcc][..])
        );
        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend(std::iter::repeat_n(7, 256));
        assert_eq!(read(&long).unwrap().0.value.len(), 256);
        assert!(read(&[0x04, 0x05, 1, 2]).is_none());
        assert!(read(&[0x04, 0x80]).is_none());
        assert!(read(&[0x04, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(read(&[]).is_none());
    }
}
