//! A private key read from a file, and its operations in OpenSSL.

use super::{Cost, Decryption, KeyKind, PrivateKey};
use crate::error::KeyServerError;
use edgetls_keyless_proto::{ErrorCode, SignScheme, Ski};
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};
use std::path::{Path, PathBuf};

/// One private key from a file.
pub struct FileKey {
    ski: Ski,
    kind: KeyKind,
    path: PathBuf,
    pkey: PKey<Private>,
    /// Typed handles made once at load: OpenSSL 3.0 builds a legacy key object (and looks up
    /// providers) every time one is asked of a `PKey`, which cost more than the signature.
    ec: Option<EcKey<Private>>,
    rsa: Option<Rsa<Private>>,
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKey")
            .field("ski", &self.ski)
            .field("kind", &self.kind)
            .field("path", &self.path)
            .finish()
    }
}

impl FileKey {
    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads one key file (PEM or DER; PKCS#1, PKCS#8, SEC1; RSA 2048–4096, ECDSA P-256/P-384,
/// Ed25519).
pub fn load_key(path: &Path) -> Result<FileKey, KeyServerError> {
    let bad = |message: String| KeyServerError::Key {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(KeyServerError::io(path))?;
    let pkey = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        PKey::private_key_from_pem(&bytes)
    } else {
        PKey::private_key_from_der(&bytes)
    }
    .map_err(|e| {
        // OpenSSL lists every decoder it tried (a dozen lines); the first reason says enough.
        let why = e
            .errors()
            .first()
            .and_then(|x| x.reason())
            .unwrap_or("unreadable");
        bad(format!(
            "not a private key (PEM or DER: PKCS#1, PKCS#8, SEC1; OpenSSL: {why})"
        ))
    })?;
    let kind = match pkey.id() {
        Id::RSA => rsa_kind(pkey.bits()).map_err(bad)?,
        Id::EC => {
            ec_kind(pkey.ec_key().ok().and_then(|ec| ec.group().curve_name())).map_err(bad)?
        }
        Id::ED25519 => KeyKind::Ed25519,
        other => return Err(bad(format!("unsupported key type {other:?}"))),
    };
    let spki = pkey.public_key_to_der().map_err(|e| bad(e.to_string()))?;
    let ski = Ski::from_spki_der(&spki).map_err(|e| bad(e.to_string()))?;
    let ec = pkey.ec_key().ok();
    let rsa = pkey.rsa().ok();
    Ok(FileKey {
        ski,
        kind,
        path: path.to_path_buf(),
        pkey,
        ec,
        rsa,
    })
}

/// The kind of an RSA key of `bits`, if served.
pub(crate) fn rsa_kind(bits: u32) -> Result<KeyKind, String> {
    if (2048..=4096).contains(&bits) {
        Ok(KeyKind::Rsa { bits })
    } else {
        Err(format!(
            "RSA-{bits} is not supported (2048 to 4096 bits are)"
        ))
    }
}

/// The kind of an EC key on `curve`, if served.
pub(crate) fn ec_kind(curve: Option<Nid>) -> Result<KeyKind, String> {
    match curve {
        Some(c @ (Nid::X9_62_PRIME256V1 | Nid::SECP384R1)) => Ok(KeyKind::Ecdsa { curve: c }),
        _ => Err("unsupported curve (P-256 and P-384 are)".into()),
    }
}

impl PrivateKey for FileKey {
    fn ski(&self) -> Ski {
        self.ski
    }

    fn kind(&self) -> KeyKind {
        self.kind
    }

    fn origin(&self) -> String {
        self.path.display().to_string()
    }

    fn cost(&self) -> Cost {
        match self.kind {
            KeyKind::Rsa { .. } => Cost::Slow,
            _ => Cost::Cheap,
        }
    }

    fn sign(&self, scheme: SignScheme, input: &[u8]) -> Result<Vec<u8>, ErrorCode> {
        let crypto = |_| ErrorCode::CRYPTO;
        let hash = match (scheme, self.kind) {
            (SignScheme::Ed25519, KeyKind::Ed25519) => {
                let mut signer = Signer::new_without_digest(&self.pkey).map_err(crypto)?;
                return signer.sign_oneshot_to_vec(input).map_err(crypto);
            }
            (SignScheme::Ecdsa(_), KeyKind::Ecdsa { .. }) => {
                // ECDSA_do_sign on the cached EC_KEY: no per-request EVP context.
                let ec = self.ec.as_ref().ok_or(ErrorCode::CRYPTO)?;
                return EcdsaSig::sign(input, ec)
                    .and_then(|s| s.to_der())
                    .map_err(crypto);
            }
            (SignScheme::RsaPkcs1(h) | SignScheme::RsaPss(h), KeyKind::Rsa { .. }) => h,
            // An operation the key cannot do: what gokeyless answers when its signer fails.
            _ => return Err(ErrorCode::CRYPTO),
        };
        let pss = matches!(scheme, SignScheme::RsaPss(_));
        let mut ctx = PkeyCtx::new(&self.pkey).map_err(crypto)?;
        ctx.sign_init().map_err(crypto)?;
        ctx.set_rsa_padding(if pss {
            Padding::PKCS1_PSS
        } else {
            Padding::PKCS1
        })
        .map_err(crypto)?;
        // OpenSSL signs MD5-SHA1 without a DigestInfo, as TLS 1.0/1.1 do.
        let md = hash.md().ok_or(ErrorCode::CRYPTO)?;
        ctx.set_signature_md(md).map_err(crypto)?;
        if pss {
            ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                .map_err(crypto)?;
        }
        let mut sig = Vec::new();
        ctx.sign_to_vec(input, &mut sig).map_err(crypto)?;
        Ok(sig)
    }

    fn decrypt(&self, ciphertext: &[u8], how: Decryption) -> Result<Vec<u8>, ErrorCode> {
        let rsa = self.rsa.as_ref().ok_or(ErrorCode::CRYPTO)?;
        let padding = match how {
            Decryption::Pkcs1 => Padding::PKCS1,
            Decryption::Raw => Padding::NONE,
        };
        let mut out = vec![0; rsa.size() as usize];
        let n = rsa
            .private_decrypt(ciphertext, &mut out, padding)
            .map_err(|_| ErrorCode::CRYPTO)?;
        out.truncate(n);
        Ok(out)
    }

    fn rsa_modulus(&self) -> Option<Vec<u8>> {
        self.rsa.as_ref().map(|r| r.n().to_vec())
    }
}
