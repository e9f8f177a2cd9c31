//! The private-key operations, one per opcode, checked here and done by the key's store.
//!
//! | opcodes | operation | payload | result |
//! |---|---|---|---|
//! | 0x02 | RSA PKCS#1 v1.5 sign, no DigestInfo (TLS 1.0/1.1) | 36-byte MD5‖SHA-1 | signature |
//! | 0x03–0x07 | RSA PKCS#1 v1.5 sign with DigestInfo | digest | signature |
//! | 0x35–0x37 | RSA-PSS sign, MGF1 with the same hash, salt = hash length | digest | signature |
//! | 0x12–0x17 | ECDSA sign | digest | DER `ECDSA-Sig-Value` |
//! | 0x18 | Ed25519 sign | the message itself | 64-byte signature |
//! | 0x01 | RSA decrypt | ciphertext | c^d mod n, padding left for the client (gokeyless), or the PKCS#1-unpadded message with `strip_rsa_padding` (the older C server) |
//! | 0x08 | raw RSA decrypt | ciphertext | c^d mod n |

use crate::keys::{Decryption, KeyKind, PrivateKey};
use edgetls_keyless_proto::{ErrorCode, Opcode, SignScheme};

/// Performs `opcode` with `key` on `payload`.
pub fn perform(
    key: &dyn PrivateKey,
    opcode: Opcode,
    payload: &[u8],
    strip_rsa_padding: bool,
) -> Result<Vec<u8>, ErrorCode> {
    match (opcode, key.kind()) {
        (Opcode::RSA_DECRYPT | Opcode::RSA_DECRYPT_RAW, KeyKind::Rsa { bits }) => {
            if payload.len() != (bits as usize).div_ceil(8) {
                return Err(ErrorCode::FORMAT);
            }
            let how = if opcode == Opcode::RSA_DECRYPT && strip_rsa_padding {
                Decryption::Pkcs1
            } else {
                Decryption::Raw
            };
            key.decrypt(payload, how)
        }
        (Opcode::RSA_DECRYPT | Opcode::RSA_DECRYPT_RAW, _) => Err(ErrorCode::CRYPTO),
        _ => {
            let scheme = opcode.sign_scheme().ok_or(ErrorCode::BAD_OPCODE)?;
            if let SignScheme::Ed25519 = scheme {
                return key.sign(scheme, payload);
            }
            let hash = scheme.hash().ok_or(ErrorCode::CRYPTO)?;
            if payload.len() != hash.digest_len() {
                return Err(ErrorCode::FORMAT);
            }
            key.sign(scheme, payload)
        }
    }
}
