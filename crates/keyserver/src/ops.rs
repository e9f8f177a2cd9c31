//! The private-key operations, one per opcode.
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

use crate::keys::{Key, KeyKind};
use edgetls_keyless_proto::{ErrorCode, Hash, Opcode, SignScheme};
use openssl::ecdsa::EcdsaSig;
use openssl::md::{Md, MdRef};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use openssl::sign::Signer;

/// Performs `opcode` with `key` on `payload`.
pub fn perform(
    key: &Key,
    opcode: Opcode,
    payload: &[u8],
    strip_rsa_padding: bool,
) -> Result<Vec<u8>, ErrorCode> {
    let crypto = |_| ErrorCode::CRYPTO;
    match (opcode, key.kind) {
        (Opcode::RSA_DECRYPT | Opcode::RSA_DECRYPT_RAW, KeyKind::Rsa { bits }) => {
            let rsa = key.rsa.as_ref().ok_or(ErrorCode::CRYPTO)?;
            if payload.len() != (bits as usize).div_ceil(8) {
                return Err(ErrorCode::FORMAT);
            }
            let padding = if opcode == Opcode::RSA_DECRYPT && strip_rsa_padding {
                Padding::PKCS1
            } else {
                Padding::NONE
            };
            let mut out = vec![0; rsa.size() as usize];
            let n = rsa
                .private_decrypt(payload, &mut out, padding)
                .map_err(crypto)?;
            out.truncate(n);
            Ok(out)
        }
        (Opcode::ED25519_SIGN, KeyKind::Ed25519) => {
            let mut signer = Signer::new_without_digest(&key.pkey).map_err(crypto)?;
            signer.sign_oneshot_to_vec(payload).map_err(crypto)
        }
        _ => {
            let scheme = opcode.sign_scheme().ok_or(ErrorCode::BAD_OPCODE)?;
            let hash = scheme.hash().ok_or(ErrorCode::CRYPTO)?;
            if payload.len() != hash.digest_len() {
                return Err(ErrorCode::FORMAT);
            }
            sign_digest(key, scheme, hash, payload)
        }
    }
}

fn sign_digest(
    key: &Key,
    scheme: SignScheme,
    hash: Hash,
    digest: &[u8],
) -> Result<Vec<u8>, ErrorCode> {
    let crypto = |_| ErrorCode::CRYPTO;
    let rsa_pkcs1 = matches!(scheme, SignScheme::RsaPkcs1(_));
    let rsa_pss = matches!(scheme, SignScheme::RsaPss(_));
    let ecdsa = matches!(scheme, SignScheme::Ecdsa(_));
    match key.kind {
        KeyKind::Rsa { .. } if rsa_pkcs1 || rsa_pss => {}
        KeyKind::Ecdsa { .. } if ecdsa => {
            // ECDSA_do_sign on the cached EC_KEY: no per-request EVP context.
            let ec = key.ec.as_ref().ok_or(ErrorCode::CRYPTO)?;
            return EcdsaSig::sign(digest, ec)
                .and_then(|s| s.to_der())
                .map_err(crypto);
        }
        // An operation the key cannot do: what gokeyless answers when its signer fails.
        _ => return Err(ErrorCode::CRYPTO),
    }
    let mut ctx = PkeyCtx::new(&key.pkey).map_err(crypto)?;
    ctx.sign_init().map_err(crypto)?;
    if rsa_pkcs1 || rsa_pss {
        ctx.set_rsa_padding(if rsa_pss {
            Padding::PKCS1_PSS
        } else {
            Padding::PKCS1
        })
        .map_err(crypto)?;
        // MD5SHA1 is signed without a DigestInfo, as TLS 1.0/1.1 do: no signature digest set.
        if let Some(md) = message_digest(hash) {
            ctx.set_signature_md(md).map_err(crypto)?;
        }
        if rsa_pss {
            ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                .map_err(crypto)?;
        }
    }
    let mut sig = Vec::new();
    ctx.sign_to_vec(digest, &mut sig).map_err(crypto)?;
    Ok(sig)
}

fn message_digest(hash: Hash) -> Option<&'static MdRef> {
    Some(match hash {
        Hash::Md5Sha1 => return None,
        Hash::Sha1 => Md::sha1(),
        Hash::Sha224 => Md::sha224(),
        Hash::Sha256 => Md::sha256(),
        Hash::Sha384 => Md::sha384(),
        Hash::Sha512 => Md::sha512(),
    })
}
