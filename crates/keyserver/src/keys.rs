//! The private keys this server holds, found by SKI (or by the legacy RSA digest), and — when
//! the key directory also holds their certificates — by the server name or server address a
//! request carries (the keyless SNI and server IP items), as gokeyless selects keys.

use crate::error::KeyServerError;
use edgetls_keyless_proto::{Digest, Operation, Ski};
use openssl::ec::EcKey;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What kind of key, for choosing and checking operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { bits: u32 },
    Ecdsa { curve: Nid },
    Ed25519,
}

/// One private key.
pub struct Key {
    pub ski: Ski,
    pub kind: KeyKind,
    pub path: PathBuf,
    pub(crate) pkey: PKey<Private>,
    /// Typed handles made once at load: OpenSSL 3.0 builds a legacy key object (and looks up
    /// providers) every time one is asked of a `PKey`, which cost more than the signature.
    pub(crate) ec: Option<EcKey<Private>>,
    pub(crate) rsa: Option<Rsa<Private>>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("ski", &self.ski)
            .field("kind", &self.kind)
            .field("path", &self.path)
            .finish()
    }
}

/// Every key, by SKI and (for RSA) by the legacy digest.
#[derive(Debug, Default)]
pub struct KeyStore {
    by_ski: HashMap<Ski, Arc<Key>>,
    by_digest: HashMap<Digest, Arc<Key>>,
    /// DNS names (lower case; `*.domain` as written) of certificates whose key is here.
    by_name: HashMap<String, Arc<Key>>,
    /// IP addresses of those certificates.
    by_ip: HashMap<IpAddr, Arc<Key>>,
}

/// A certificate found in the key directory: its public key's SKI and the names it covers.
struct CertNames {
    ski: Ski,
    names: Vec<String>,
    ips: Vec<IpAddr>,
}

/// The certificates (leaf first per file) in `bytes`, if any, with their names.
fn certificates(bytes: &[u8]) -> Vec<CertNames> {
    if !bytes
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Vec::new();
    }
    let Ok(certs) = openssl::x509::X509::stack_from_pem(bytes) else {
        return Vec::new();
    };
    certs
        .iter()
        .take(1)
        .filter_map(|c| {
            let spki = c.public_key().ok()?.public_key_to_der().ok()?;
            let ski = Ski::from_spki_der(&spki).ok()?;
            let (mut names, mut ips) = (Vec::new(), Vec::new());
            for n in c.subject_alt_names().iter().flatten() {
                if let Some(d) = n.dnsname() {
                    names.push(d.to_ascii_lowercase());
                } else if let Some(ip) = n.ipaddress() {
                    match ip.len() {
                        4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(ip).ok()?)),
                        16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(ip).ok()?)),
                        _ => {}
                    }
                }
            }
            Some(CertNames { ski, names, ips })
        })
        .collect()
}

impl KeyStore {
    /// Loads every `.key`, `.pem` and `.der` file of `dir` (PEM or DER; PKCS#1, PKCS#8, SEC1;
    /// RSA 2048–4096, ECDSA P-256/P-384, Ed25519). A file that is not such a key is reported
    /// and skipped; the others are served. Certificates there (`.crt`, or `.pem` files holding
    /// a certificate, with or without its key) index their key by the certificate's DNS names
    /// and IP addresses. Fails only if the directory cannot be read.
    pub fn load_dir(dir: &Path) -> Result<(KeyStore, Vec<KeyServerError>), KeyServerError> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(KeyServerError::io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                !name.starts_with('.')
                    && ["key", "pem", "der", "crt"]
                        .iter()
                        .any(|ext| name.ends_with(&format!(".{ext}")))
            })
            .collect();
        paths.sort();
        let mut store = KeyStore::default();
        let mut problems = Vec::new();
        let mut certs = Vec::new();
        for path in paths {
            let found = std::fs::read(&path)
                .map(|b| certificates(&b))
                .unwrap_or_default();
            let has_cert = !found.is_empty();
            certs.extend(found);
            if path.extension().is_some_and(|e| e == "crt") {
                continue;
            }
            match load_key(&path) {
                Ok(key) => store.insert(key),
                // A certificate file without a key is not a problem: it names a key.
                Err(_) if has_cert => {}
                Err(e) => problems.push(e),
            }
        }
        for c in certs {
            let Some(key) = store.by_ski.get(&c.ski).cloned() else {
                continue;
            };
            for n in c.names {
                store.by_name.entry(n).or_insert_with(|| Arc::clone(&key));
            }
            for ip in c.ips {
                store.by_ip.entry(ip).or_insert_with(|| Arc::clone(&key));
            }
        }
        Ok((store, problems))
    }

    /// Adds a key (a later key with the same SKI replaces the earlier one).
    pub fn insert(&mut self, key: Key) {
        let key = Arc::new(key);
        if let Some(rsa) = &key.rsa {
            self.by_digest
                .insert(Digest::of_rsa_modulus(&rsa.n().to_vec()), Arc::clone(&key));
        }
        self.by_ski.insert(key.ski, key);
    }

    /// The key a request names: by SKI, else by digest; a request with neither, by the
    /// server name it carries (exact, then the `*.domain` wildcard), else by its server IP.
    pub fn find(&self, op: &Operation) -> Option<&Arc<Key>> {
        if op.ski.is_some() || op.digest.is_some() {
            return op
                .ski
                .and_then(|ski| self.by_ski.get(&ski))
                .or_else(|| op.digest.and_then(|d| self.by_digest.get(&d)));
        }
        let by_name = op.sni.as_deref().and_then(|sni| {
            let sni = sni.to_ascii_lowercase();
            self.by_name.get(&sni).or_else(|| {
                let (_, domain) = sni.split_once('.')?;
                self.by_name.get(&format!("*.{domain}"))
            })
        });
        by_name.or_else(|| op.server_ip.and_then(|ip| self.by_ip.get(&ip)))
    }

    pub fn len(&self) -> usize {
        self.by_ski.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ski.is_empty()
    }
}

/// Reads one key file.
pub fn load_key(path: &Path) -> Result<Key, KeyServerError> {
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
        bad(format!(
            "not a private key (PEM or DER: PKCS#1, PKCS#8, SEC1): {e}"
        ))
    })?;
    let kind = match pkey.id() {
        Id::RSA => {
            let bits = pkey.bits();
            if !(2048..=4096).contains(&bits) {
                return Err(bad(format!(
                    "RSA-{bits} is not supported (2048 to 4096 bits are)"
                )));
            }
            KeyKind::Rsa { bits }
        }
        Id::EC => {
            let curve = pkey.ec_key().ok().and_then(|ec| ec.group().curve_name());
            match curve {
                Some(c @ (Nid::X9_62_PRIME256V1 | Nid::SECP384R1)) => KeyKind::Ecdsa { curve: c },
                _ => return Err(bad("unsupported curve (P-256 and P-384 are)".into())),
            }
        }
        Id::ED25519 => KeyKind::Ed25519,
        other => return Err(bad(format!("unsupported key type {other:?}"))),
    };
    let spki = pkey.public_key_to_der().map_err(|e| bad(e.to_string()))?;
    let ski = Ski::from_spki_der(&spki).map_err(|e| bad(e.to_string()))?;
    let ec = pkey.ec_key().ok();
    let rsa = pkey.rsa().ok();
    Ok(Key {
        ski,
        kind,
        path: path.to_path_buf(),
        pkey,
        ec,
        rsa,
    })
}
