//! Opcodes, tags and error codes: newtypes over the wire byte, so unknown values survive a
//! round trip and are reported rather than lost.

use std::fmt;

macro_rules! wire_byte {
    ($(#[$doc:meta])* $name:ident { $($(#[$cdoc:meta])* $konst:ident = $val:expr, $text:expr;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub u8);

        impl $name {
            $($(#[$cdoc])*
            #[doc = concat!("\n\nOn the wire: `", stringify!($val), "` (", $text, ").")]
            pub const $konst: $name = $name($val);)*

            /// The protocol's name for this value, if it has one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($text),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({n})", stringify!($name)),
                    None => write!(f, "{}(0x{:02x})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "unknown 0x{:02x}", self.0),
                }
            }
        }
    };
}

wire_byte! {
    /// What a request asks for, or what a response is (item 0x11).
    Opcode {
        /// RSA decrypt (PKCS#1 v1.5 encrypted premaster secret).
        RSA_DECRYPT = 0x01, "RSA decrypt";
        RSA_SIGN_MD5SHA1 = 0x02, "RSA sign MD5SHA1";
        RSA_SIGN_SHA1 = 0x03, "RSA sign SHA1";
        RSA_SIGN_SHA224 = 0x04, "RSA sign SHA224";
        RSA_SIGN_SHA256 = 0x05, "RSA sign SHA256";
        RSA_SIGN_SHA384 = 0x06, "RSA sign SHA384";
        RSA_SIGN_SHA512 = 0x07, "RSA sign SHA512";
        /// Raw RSA decrypt: the block c^d mod n, no padding removed.
        RSA_DECRYPT_RAW = 0x08, "RSA raw decrypt";
        ECDSA_SIGN_MD5SHA1 = 0x12, "ECDSA sign MD5SHA1";
        ECDSA_SIGN_SHA1 = 0x13, "ECDSA sign SHA1";
        ECDSA_SIGN_SHA224 = 0x14, "ECDSA sign SHA224";
        ECDSA_SIGN_SHA256 = 0x15, "ECDSA sign SHA256";
        ECDSA_SIGN_SHA384 = 0x16, "ECDSA sign SHA384";
        ECDSA_SIGN_SHA512 = 0x17, "ECDSA sign SHA512";
        ED25519_SIGN = 0x18, "Ed25519 sign";
        /// RSASSA-PSS, salt length = hash length.
        RSA_PSS_SIGN_SHA256 = 0x35, "RSA-PSS sign SHA256";
        RSA_PSS_SIGN_SHA384 = 0x36, "RSA-PSS sign SHA384";
        RSA_PSS_SIGN_SHA512 = 0x37, "RSA-PSS sign SHA512";
        /// A successful response; the payload is the result.
        RESPONSE = 0xF0, "response";
        /// A test message the server echoes back as [`Opcode::PONG`].
        PING = 0xF1, "ping";
        PONG = 0xF2, "pong";
        /// An error response; the payload is one [`ErrorCode`] byte.
        ERROR = 0xFF, "error";
    }
}

impl Opcode {
    /// Whether only a server sends this opcode (a request carrying it is an "unexpected opcode").
    pub fn is_response(self) -> bool {
        matches!(self, Opcode::RESPONSE | Opcode::PONG | Opcode::ERROR)
    }

    /// The signature a sign opcode asks for.
    pub fn sign_scheme(self) -> Option<SignScheme> {
        SIGN_OPCODES
            .iter()
            .find(|(_, o)| *o == self)
            .map(|(s, _)| *s)
    }

    /// The hash a sign opcode's payload is a digest of, and its length in bytes (None for
    /// Ed25519, which signs the message itself).
    pub fn sign_hash(self) -> Option<(HashAlgorithm, usize)> {
        let hash = self.sign_scheme()?.hash()?;
        Some((hash, hash.digest_len()))
    }
}

/// A signature a key server makes, as the sign opcodes name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignScheme {
    /// RSA PKCS#1 v1.5 over a digest (`Md5Sha1`: TLS 1.0/1.1, no DigestInfo).
    RsaPkcs1(HashAlgorithm),
    /// RSASSA-PSS, MGF1 with the same hash, salt as long as the hash (SHA-256/384/512 only).
    RsaPss(HashAlgorithm),
    /// ECDSA over a digest; the answer is DER.
    Ecdsa(HashAlgorithm),
    /// Ed25519 signs the message itself, not a digest.
    Ed25519,
}

/// The one table of (signature, sign opcode) pairs: both directions are read from it.
const SIGN_OPCODES: [(SignScheme, Opcode); 16] = [
    (
        SignScheme::RsaPkcs1(HashAlgorithm::Md5Sha1),
        Opcode::RSA_SIGN_MD5SHA1,
    ),
    (
        SignScheme::RsaPkcs1(HashAlgorithm::Sha1),
        Opcode::RSA_SIGN_SHA1,
    ),
    (
        SignScheme::RsaPkcs1(HashAlgorithm::Sha224),
        Opcode::RSA_SIGN_SHA224,
    ),
    (
        SignScheme::RsaPkcs1(HashAlgorithm::Sha256),
        Opcode::RSA_SIGN_SHA256,
    ),
    (
        SignScheme::RsaPkcs1(HashAlgorithm::Sha384),
        Opcode::RSA_SIGN_SHA384,
    ),
    (
        SignScheme::RsaPkcs1(HashAlgorithm::Sha512),
        Opcode::RSA_SIGN_SHA512,
    ),
    (
        SignScheme::Ecdsa(HashAlgorithm::Md5Sha1),
        Opcode::ECDSA_SIGN_MD5SHA1,
    ),
    (
        SignScheme::Ecdsa(HashAlgorithm::Sha1),
        Opcode::ECDSA_SIGN_SHA1,
    ),
    (
        SignScheme::Ecdsa(HashAlgorithm::Sha224),
        Opcode::ECDSA_SIGN_SHA224,
    ),
    (
        SignScheme::Ecdsa(HashAlgorithm::Sha256),
        Opcode::ECDSA_SIGN_SHA256,
    ),
    (
        SignScheme::Ecdsa(HashAlgorithm::Sha384),
        Opcode::ECDSA_SIGN_SHA384,
    ),
    (
        SignScheme::Ecdsa(HashAlgorithm::Sha512),
        Opcode::ECDSA_SIGN_SHA512,
    ),
    (
        SignScheme::RsaPss(HashAlgorithm::Sha256),
        Opcode::RSA_PSS_SIGN_SHA256,
    ),
    (
        SignScheme::RsaPss(HashAlgorithm::Sha384),
        Opcode::RSA_PSS_SIGN_SHA384,
    ),
    (
        SignScheme::RsaPss(HashAlgorithm::Sha512),
        Opcode::RSA_PSS_SIGN_SHA512,
    ),
    (SignScheme::Ed25519, Opcode::ED25519_SIGN),
];

impl SignScheme {
    /// The keyless opcode for this signature (None: the protocol has none, e.g. RSA-PSS with
    /// SHA-1).
    pub fn opcode(self) -> Option<Opcode> {
        SIGN_OPCODES
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, o)| *o)
    }

    /// The hash the signed payload is a digest of (None for Ed25519).
    pub fn hash(self) -> Option<HashAlgorithm> {
        match self {
            SignScheme::RsaPkcs1(h) | SignScheme::RsaPss(h) | SignScheme::Ecdsa(h) => Some(h),
            SignScheme::Ed25519 => None,
        }
    }
}

/// The digest algorithms sign opcodes name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// TLS 1.0/1.1's MD5 ‖ SHA-1 concatenation (36 bytes).
    Md5Sha1,
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Md5Sha1 => 36,
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha224 => 28,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// OpenSSL's digest NID for this hash (MD5-SHA1 is OpenSSL's `MD5-SHA1`, which an RSA
    /// PKCS#1 signature uses without a DigestInfo, as TLS 1.0 and 1.1 sign).
    pub fn nid(self) -> openssl::nid::Nid {
        DIGESTS
            .iter()
            .find(|(h, _)| *h == self)
            .map_or(openssl::nid::Nid::UNDEF, |(_, n)| *n)
    }

    /// The hash of OpenSSL's digest NID `nid` (None for a digest no sign opcode names).
    pub fn from_nid(nid: openssl::nid::Nid) -> Option<HashAlgorithm> {
        DIGESTS.iter().find(|(_, n)| *n == nid).map(|(h, _)| *h)
    }

    /// OpenSSL's digest for this hash (None if the library lacks it).
    pub fn md(self) -> Option<&'static openssl::md::MdRef> {
        openssl::md::Md::from_nid(self.nid())
    }
}

/// The one table between keyless hashes and OpenSSL's digests (used by the edge's remote keys
/// and by the key server alike).
const DIGESTS: [(HashAlgorithm, openssl::nid::Nid); 6] = [
    (HashAlgorithm::Md5Sha1, openssl::nid::Nid::MD5_SHA1),
    (HashAlgorithm::Sha1, openssl::nid::Nid::SHA1),
    (HashAlgorithm::Sha224, openssl::nid::Nid::SHA224),
    (HashAlgorithm::Sha256, openssl::nid::Nid::SHA256),
    (HashAlgorithm::Sha384, openssl::nid::Nid::SHA384),
    (HashAlgorithm::Sha512, openssl::nid::Nid::SHA512),
];

#[cfg(test)]
mod digest_tests {
    use super::{DIGESTS, HashAlgorithm};

    #[test]
    fn every_hash_maps_to_its_openssl_digest_and_back() {
        for (hash, nid) in DIGESTS {
            assert_eq!(hash.nid(), nid);
            assert_eq!(HashAlgorithm::from_nid(nid), Some(hash));
            let md = hash
                .md()
                .unwrap_or_else(|| panic!("{hash:?}: no digest in this OpenSSL"));
            assert_eq!(md.size(), hash.digest_len(), "{hash:?}");
        }
        assert_eq!(HashAlgorithm::from_nid(openssl::nid::Nid::MD5), None);
    }
}

wire_byte! {
    /// The type of an item in a message body.
    Tag {
        /// SHA-256 of the RSA modulus in uppercase hex (the legacy key id), 32 bytes.
        CERTIFICATE_DIGEST = 0x01, "certificate digest";
        SERVER_NAME = 0x02, "server name";
        CLIENT_IP = 0x03, "client IP";
        /// SHA-1 of the key's subjectPublicKey bits, 20 bytes.
        SUBJECT_KEY_IDENTIFIER = 0x04, "subject key identifier";
        SERVER_IP = 0x05, "server IP";
        CERTIFICATE_ID = 0x06, "certificate id";
        OPCODE = 0x11, "opcode";
        PAYLOAD = 0x12, "payload";
        CUSTOM_FUNCTION_NAME = 0x13, "custom function name";
        EXTRA = 0x14, "extra";
        REQUEST_CONTEXT = 0x16, "request context";
        PADDING = 0x20, "padding";
    }
}

wire_byte! {
    /// The one-byte payload of an [`Opcode::ERROR`] response.
    ErrorCode {
        NONE = 0x00, "no error";
        CRYPTO = 0x01, "cryptography failure";
        KEY_NOT_FOUND = 0x02, "key not found";
        READ = 0x03, "read error";
        VERSION_MISMATCH = 0x04, "version mismatch";
        BAD_OPCODE = 0x05, "bad opcode";
        UNEXPECTED_OPCODE = 0x06, "unexpected opcode";
        FORMAT = 0x07, "format error";
        INTERNAL = 0x08, "internal error";
        CERT_NOT_FOUND = 0x09, "certificate not found";
        EXPIRED = 0x0A, "expired";
        REMOTE_CONFIGURATION = 0x0B, "remote configuration error";
    }
}
