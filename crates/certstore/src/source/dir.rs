//! A directory of certificate files, in file-name order.

use super::EntrySpec;
use crate::error::{CertStoreError, Problem, Severity};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const CERT_EXTS: [&str; 3] = ["crt", "cer", "pem"];
/// HAProxy multi-certificate bundle suffixes: `site.pem.rsa` + `site.pem.ecdsa` = one entry.
const BUNDLE_EXTS: [&str; 3] = ["rsa", "ecdsa", "dsa"];

#[derive(Default)]
struct Group {
    cert: Option<PathBuf>,
    bundle: Vec<PathBuf>,
    key: Option<PathBuf>,
    extra_certs: Vec<PathBuf>,
}

pub(super) fn specs(dir: &Path) -> Result<(Vec<EntrySpec>, Vec<Problem>), CertStoreError> {
    let unusable = |source| CertStoreError::SourceUnusable {
        path: dir.to_path_buf(),
        source,
    };
    let mut names: Vec<String> = Vec::new();
    for item in std::fs::read_dir(dir).map_err(unusable)? {
        let item = item.map_err(unusable)?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        let file_type = item.file_type().map_err(unusable)?;
        // Follow symlinks (certbot's live/ directories are made of them).
        let is_file = file_type.is_file() || (file_type.is_symlink() && item.path().is_file());
        if !name.starts_with('.') && is_file {
            names.push(name);
        }
    }
    names.sort_unstable();
    // Group files by stem: `a.crt` + `a.key`; `a.pem`; `a.pem.rsa` + `a.pem.ecdsa` (+ `.key`s).
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for name in &names {
        let path = dir.join(name);
        let Some((stem, ext)) = name.rsplit_once('.') else {
            continue;
        };
        if BUNDLE_EXTS.contains(&ext) {
            groups
                .entry(stem.to_string())
                .or_default()
                .bundle
                .push(path);
        } else if ext == "key" {
            // `site.key` pairs with `site.crt`; `site.pem.rsa.key` with `site.pem.rsa` (skipped
            // here: read as that bundle member's key below).
            if BUNDLE_EXTS.iter().any(|b| stem.ends_with(&format!(".{b}"))) {
                continue;
            }
            groups.entry(stem.to_string()).or_default().key = Some(path);
        } else if CERT_EXTS.contains(&ext) {
            let g = groups.entry(stem.to_string()).or_default();
            if g.cert.is_none() {
                g.cert = Some(path)
            } else {
                g.extra_certs.push(path)
            }
        }
    }
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for (stem, g) in groups {
        for extra in g.extra_certs {
            problems.push(Problem {
                severity: Severity::Warning,
                origin: extra.clone(),
                line: None,
                error: CertStoreError::Warning {
                    path: extra,
                    message: format!(
                        "ignored: another certificate file already has the name {stem}"
                    ),
                },
            });
        }
        let mut spec = EntrySpec::default();
        if !g.bundle.is_empty() {
            for member in g.bundle {
                let key = PathBuf::from(format!("{}.key", member.display()));
                spec.keys.push(key.is_file().then_some(key));
                spec.certs.push(member);
            }
        } else if let Some(cert) = g.cert {
            spec.certs.push(cert);
            spec.keys.push(g.key);
        } else if let Some(key) = g.key {
            problems.push(Problem {
                severity: Severity::Error,
                origin: key.clone(),
                line: None,
                error: CertStoreError::key(&key, format!("no certificate file for this key (looked for {stem}.crt, {stem}.cer, {stem}.pem)")),
            });
            continue;
        } else {
            continue;
        }
        spec.origin = spec.certs[0].clone();
        specs.push(spec);
    }
    // Keep file-name order of each entry's first certificate (BTreeMap order is by stem, which
    // can differ from the full file name order only in ties we do not care about). All are in
    // one directory: their byte order is their name order (Path's own order walks components).
    specs.sort_by(|a, b| a.certs[0].as_os_str().cmp(b.certs[0].as_os_str()));
    Ok((specs, problems))
}

/// [`Source::lone_file_spec`](super::Source::lone_file_spec) for `dir` (as configured): the spec
/// [`specs`] would make for `file` (absolute, in `dir`), if its group is that file alone.
pub(super) fn lone_file(dir: &Path, file: &Path) -> Option<EntrySpec> {
    let name = file.file_name()?.to_str()?;
    let (stem, ext) = name.rsplit_once('.')?;
    if name.starts_with('.') || !CERT_EXTS.contains(&ext) || !file.is_file() {
        return None;
    }
    let parent = file.parent()?;
    let alone = ["key", "crt", "cer", "pem"]
        .iter()
        .filter(|e| **e != ext)
        .all(|e| !parent.join(format!("{stem}.{e}")).exists());
    if !alone {
        return None;
    }
    let path = dir.join(name);
    Some(EntrySpec {
        origin: path.clone(),
        certs: vec![path],
        keys: vec![None],
        ..EntrySpec::default()
    })
}
