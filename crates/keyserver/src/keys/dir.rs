//! The key files of a directory, and the certificates beside them that name their keys.

use super::file::load_key;
use super::index::{CertNames, KeyIndex};
use super::{KeyStore, PrivateKey};
use crate::error::KeyServerError;
use edgetls_keyless_proto::Operation;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Every key file of a directory.
#[derive(Debug, Default)]
pub struct DirStore {
    dir: PathBuf,
    index: KeyIndex,
}

/// The leaf certificate (the first one) in `bytes`, if any, with its names.
fn certificate(bytes: &[u8]) -> Option<CertNames> {
    if !bytes
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return None;
    }
    let certs = openssl::x509::X509::stack_from_pem(bytes).ok()?;
    CertNames::of(certs.first()?)
}

impl DirStore {
    /// Loads every `.key`, `.pem` and `.der` file of `dir` (see [`load_key`]). A file that is
    /// not such a key is reported and skipped; the others are served. Certificates there
    /// (`.crt`, or `.pem` files holding a certificate, with or without its key) index their
    /// key by the certificate's DNS names and IP addresses. Fails only if the directory cannot
    /// be read.
    pub fn load_dir(dir: &Path) -> Result<(DirStore, Vec<KeyServerError>), KeyServerError> {
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
        let mut store = DirStore {
            dir: dir.to_path_buf(),
            index: KeyIndex::default(),
        };
        let mut problems = Vec::new();
        let mut certs = Vec::new();
        for path in paths {
            let found = std::fs::read(&path).ok().and_then(|b| certificate(&b));
            let has_cert = found.is_some();
            certs.extend(found);
            if path.extension().is_some_and(|e| e == "crt") {
                continue;
            }
            match load_key(&path) {
                Ok(key) => store.index.insert(Arc::new(key)),
                // A certificate file without a key is not a problem: it names a key.
                Err(_) if has_cert => {}
                Err(e) => problems.push(e),
            }
        }
        for c in certs {
            store.index.add_names(c);
        }
        Ok((store, problems))
    }

    /// Adds a key (a later key with the same SKI replaces the earlier one).
    pub fn insert(&mut self, key: Arc<dyn PrivateKey>) {
        self.index.insert(key);
    }
}

impl KeyStore for DirStore {
    fn find(&self, op: &Operation) -> Option<Arc<dyn PrivateKey>> {
        self.index.find(op).cloned()
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}
