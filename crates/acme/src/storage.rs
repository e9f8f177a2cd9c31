//! Where issued certificates live: one PEM bundle (chain, then key) per set of names in the
//! storage directory, named for the set's first name — a directory source the certificate
//! store reads like any other. Every file is written whole or not at all: a temporary file
//! (hidden, so a store reading the directory skips it), `fsync`, `rename`, `fsync` of the
//! directory. Keys and bundles are created 0600.

use crate::error::AcmeError;
use openssl::asn1::Asn1Time;
use openssl::x509::X509;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The bundle's file for a set of names: its first name, a wildcard's `*` spelled `_wildcard_`.
pub fn bundle_path(storage: &Path, names: &[String]) -> PathBuf {
    let first = names.first().map_or("unnamed", String::as_str);
    storage.join(format!("{}.pem", first.replace('*', "_wildcard_")))
}

/// Writes `body` to `path` atomically, mode 0600.
pub fn write_atomically(path: &Path, body: &[u8]) -> Result<(), AcmeError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        AcmeError::io(path)(e)
    })
}

/// Creates the storage directory (0700) if it is missing, and removes temporary files a crash
/// left behind.
pub fn prepare(storage: &Path) -> Result<(), AcmeError> {
    use std::os::unix::fs::DirBuilderExt;
    if !storage.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(storage)
            .map_err(AcmeError::io(storage))?;
    }
    for entry in std::fs::read_dir(storage).map_err(AcmeError::io(storage))? {
        let entry = entry.map_err(AcmeError::io(storage))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// The validity of the certificate a bundle holds (its first), if the file holds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: SystemTime,
    /// notAfter.
    pub not_after: SystemTime,
    /// Its DNS names (subjectAltName), lowercase.
    pub names: Vec<String>,
    /// Its ACME Renewal Information identifier (RFC 9773 §4.1), when it has an Authority
    /// Key Identifier.
    pub ari_id: Option<String>,
}

impl Validity {
    /// Whether the certificate names every one of `names`.
    pub fn covers(&self, names: &[String]) -> bool {
        names
            .iter()
            .all(|n| self.names.iter().any(|m| m.eq_ignore_ascii_case(n)))
    }

    /// When to renew: `fraction` of the way through the lifetime (2/3 by default, as
    /// Let's Encrypt advises without ARI), less `jitter` (a share of the lifetime, 0..1).
    pub fn renew_at(&self, fraction: f64, jitter: f64) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        let offset = life.mul_f64((fraction - jitter).clamp(0.0, 1.0));
        self.not_before + offset
    }
}

fn to_system_time(t: &openssl::asn1::Asn1TimeRef) -> Option<SystemTime> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The validity of the first certificate in the PEM file at `path`; `None` when there is no
/// file. A file that holds no readable certificate is an error (the caller renews it).
pub fn validity(path: &Path) -> Result<Option<Validity>, AcmeError> {
    let body = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AcmeError::io(path)(e)),
    };
    let stored = |what: &str| AcmeError::Stored {
        path: path.to_path_buf(),
        what: what.into(),
    };
    let cert = X509::from_pem(&body).map_err(|_| stored("holds no PEM certificate"))?;
    let not_before = to_system_time(cert.not_before()).ok_or_else(|| stored("bad notBefore"))?;
    let not_after = to_system_time(cert.not_after()).ok_or_else(|| stored("bad notAfter"))?;
    let names = cert
        .subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|g| g.dnsname().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Validity {
        not_before,
        not_after,
        names,
        ari_id: crate::ari::identifier(&cert),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_named_for_the_first_name() {
        let p = bundle_path(Path::new("/s"), &["*.a.test".into(), "a.test".into()]);
        assert_eq!(p, Path::new("/s/_wildcard_.a.test.pem"));
    }

    #[test]
    fn atomic_writes_replace_whole_files_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.pem");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Nothing else is left in the directory.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_crash_leftover_is_removed_and_real_files_are_kept() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".a.pem.tmp-123"), b"half").unwrap();
        std::fs::write(d.path().join("a.pem"), b"whole").unwrap();
        prepare(d.path()).unwrap();
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["a.pem"]);
    }

    #[test]
    fn renewal_falls_two_thirds_through_the_lifetime_less_jitter() {
        let v = Validity {
            not_before: SystemTime::UNIX_EPOCH,
            not_after: SystemTime::UNIX_EPOCH + Duration::from_secs(90 * 86_400),
            names: Vec::new(),
            ari_id: None,
        };
        let at = v.renew_at(2.0 / 3.0, 0.0);
        assert_eq!(
            at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(60 * 86_400)
        );
        let early = v.renew_at(2.0 / 3.0, 0.1);
        assert_eq!(
            early,
            SystemTime::UNIX_EPOCH + Duration::from_secs(51 * 86_400)
        );
    }
}
