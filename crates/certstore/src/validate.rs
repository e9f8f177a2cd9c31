//! Validating one entry: its certificates (strict DER), its key (OpenSSL's typed decoders, the
//! passphrase when it is encrypted), the key against the leaf, its names and validity.

use crate::cert::{self, KeyTypes};
use crate::entry::{Chain, Entry, Name};
use crate::error::{CertStoreError, Problem, Severity};
use crate::key::{self, KeyError, KeyMaterial};
use crate::load::{Ctx, Files, NEXT_ID, problem};
use crate::name::{NamePattern, parse_pattern};
use crate::pem;
use crate::source::{EntrySpec, KeyDialog};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use zeroize::Zeroizing;

impl Ctx<'_> {
    pub(crate) fn build_entry(
        &self,
        spec: EntrySpec,
        files: &Files,
        content_hash: [u8; 32],
        stamp: [u8; 32],
    ) -> Result<(Entry, Vec<Problem>), CertStoreError> {
        let mut warnings = Vec::new();
        let mut warn = |path: &Path, message: String| {
            warnings.push(problem(
                &spec,
                Severity::Warning,
                CertStoreError::Warning {
                    path: path.to_path_buf(),
                    message,
                },
            ));
        };
        let mut extra = Vec::new();
        for ca in &spec.ca {
            let blocks = parse_pem(ca, files.get(ca))?;
            extra.extend(
                blocks
                    .into_iter()
                    .filter(|b| b.label == "CERTIFICATE")
                    .map(|b| b.der),
            );
        }
        let mut chains = Vec::with_capacity(spec.certs.len());
        let mut dns = Vec::new();
        let mut san_ips = Vec::new();
        for (i, (cert_path, key_path)) in spec.certs.iter().zip(&spec.keys).enumerate() {
            let blocks = parse_pem(cert_path, files.get(cert_path))?;
            let mut ders: Vec<Vec<u8>> = Vec::new();
            let mut key_blocks = Vec::new();
            for b in blocks {
                if b.label == "CERTIFICATE" {
                    ders.push(b.der);
                } else if key::is_key_label(b.label) {
                    key_blocks.push(b);
                }
            }
            let own_certs = ders.len();
            ders.extend(extra.iter().cloned());
            // Parse every certificate once: the leaf's facts, and each link of the chain.
            let mut leaf = None;
            let mut prev_issuer: Option<Vec<u8>> = None;
            for (i, der) in ders.iter().enumerate() {
                let (facts, subject, issuer) =
                    cert::parse(der).map_err(|m| CertStoreError::cert(cert_path, i + 1, m))?;
                if self.opts.openssl_verify {
                    openssl::x509::X509::from_der(der).map_err(|e| {
                        CertStoreError::cert(cert_path, i + 1, format!("OpenSSL rejects it: {e}"))
                    })?;
                }
                if prev_issuer.take().is_some_and(|want| want != subject) {
                    warn(
                        cert_path,
                        format!(
                            "chain out of order: certificate {} did not issue certificate {i}",
                            i + 1
                        ),
                    );
                }
                prev_issuer = Some(issuer);
                leaf.get_or_insert(facts);
            }
            let Some(leaf) = leaf.filter(|_| own_certs > 0) else {
                return Err(CertStoreError::cert(
                    cert_path,
                    0,
                    "no CERTIFICATE block in this file",
                ));
            };
            // The key: from its own file, or from the certificate file, or held remotely.
            let material =
                match self.local_key(&spec, cert_path, key_path.as_deref(), &key_blocks, files)? {
                    Some((material, key_file, key_public)) => {
                        let matched = key::matches(&key_public, &leaf.public)
                            .map_err(|e| CertStoreError::key(key_file, e.to_string()))?;
                        if !matched {
                            return Err(CertStoreError::KeyMismatch {
                                cert: cert_path.clone(),
                                key: key_file.to_path_buf(),
                            });
                        }
                        material
                    }
                    None => KeyMaterial::Remote,
                };
            let key_type = leaf.public.key_type();
            if chains.iter().any(|c: &Chain| c.key_type == key_type) {
                return Err(CertStoreError::cert(
                    cert_path,
                    1,
                    format!("a second {} chain for the same entry", key_type.as_str()),
                ));
            }
            if leaf.not_after < self.now {
                warn(
                    cert_path,
                    format!("expired {} days ago", (self.now - leaf.not_after) / 86_400),
                );
            } else if leaf.not_before > self.now {
                warn(cert_path, "not valid yet".to_string());
            }
            dns.extend(leaf.dns.into_iter().map(|n| (n, KeyTypes::of(key_type))));
            san_ips.extend(leaf.ips);
            let (ocsp, issuer, problem) = ocsp_files(&spec, i, files);
            if let Some(message) = problem {
                warn(cert_path, message);
            }
            chains.push(Chain {
                key_type,
                path: cert_path.clone(),
                certs: ders.into_iter().map(Arc::from).collect(),
                key: material,
                not_after: leaf.not_after,
                ocsp,
                issuer,
            });
        }
        // Names from crt-list filters serve every chain; a certificate's names serve its own
        // chain (an RSA and an ECDSA certificate of one entry may name different hosts).
        let configured = spec.filtered || !spec.sni_filters.is_empty();
        let every_chain = chains
            .iter()
            .fold(KeyTypes::NONE, |all, c| all.union(KeyTypes::of(c.key_type)));
        let raw_names: Vec<(String, KeyTypes)> = if configured {
            spec.sni_filters
                .iter()
                .map(|f| (f.clone(), every_chain))
                .collect()
        } else {
            dns
        };
        let mut names: Vec<Name> = Vec::new();
        let mut wildcards: Vec<Name> = Vec::new();
        for (raw, types) in &raw_names {
            let (list, text) = match parse_pattern(raw) {
                Some(NamePattern::Exact(n)) => (&mut names, n),
                Some(NamePattern::Wildcard(w)) => (&mut wildcards, w),
                None => {
                    warn(
                        spec.display_path(),
                        format!("name {raw:?} can never match a server name; ignored"),
                    );
                    continue;
                }
            };
            match list.iter_mut().find(|x| *x.text == *text) {
                Some(seen) => seen.types = seen.types.union(*types),
                None => list.push(Name {
                    text: text.into_boxed_str(),
                    types: *types,
                }),
            }
        }
        let exclusions = spec
            .exclusions
            .iter()
            .filter_map(|x| match parse_pattern(x) {
                Some(NamePattern::Exact(n)) => Some(n.into_boxed_str()),
                _ => None,
            });
        let exclusions = exclusions.collect();
        let reachable = !names.is_empty()
            || !wildcards.is_empty()
            || !san_ips.is_empty()
            || spec.dest_ip.is_some()
            || spec.default;
        if !reachable && !spec.tunnel && !self.implicit_default {
            return Err(CertStoreError::cert(
                spec.display_path(),
                1,
                "no usable name: the subjectAltName has no DNS name or IP (and there is no CN), and the entry has no dest_ip or default",
            ));
        }
        if !reachable && !spec.tunnel {
            // HAProxy serves such a certificate when it is the first of its crt-list or
            // directory (its default); so does the store then.
            let why = if configured {
                "its filters name no host (only the filters name a crt-list line that has any)"
            } else {
                "no usable name (no DNS name or IP in the subjectAltName, no host-name CN)"
            };
            warn(
                spec.display_path(),
                format!("{why}: served only as the default, i.e. when it is the first entry"),
            );
        } else if names.is_empty() && wildcards.is_empty() && !configured && !spec.tunnel {
            warn(
                spec.display_path(),
                "no DNS name in the certificate: selected only by address or as the default".into(),
            );
        }
        let entry = Entry {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            spec,
            chains,
            names,
            wildcards,
            exclusions,
            san_ips,
            content_hash,
            stamp,
        };
        Ok((entry, warnings))
    }

    /// The passphrase for an entry's key, if the key is encrypted.
    fn passphrase(
        &self,
        spec: &EntrySpec,
        encrypted: bool,
        key_file: &Path,
    ) -> Result<Option<Zeroizing<String>>, CertStoreError> {
        if !encrypted {
            return Ok(None);
        }
        match &spec.key_dialog {
            Some(KeyDialog::Exec(cmd)) => {
                let mut cache = self.passphrases.lock().unwrap_or_else(|p| p.into_inner());
                let result = cache.entry(cmd.clone()).or_insert_with(|| run_dialog(cmd));
                result
                    .clone()
                    .map(Some)
                    .map_err(|m| CertStoreError::key(key_file, m))
            }
            Some(KeyDialog::Builtin) | None => match &self.opts.passphrase {
                Some(p) => Ok(Some(p.clone())),
                None => Err(CertStoreError::key(
                    key_file,
                    if spec.key_dialog.is_some() {
                        "encrypted (ssl_key_dialog=builtin), and no passphrase was given"
                    } else {
                        "encrypted, and no passphrase was given"
                    },
                )),
            },
        }
    }
}

/// Bytes shared by reference.
type Der = Arc<[u8]>;

/// Chain `i`'s OCSP response and `.issuer` certificate (DER), when their files exist (they
/// are checked when the chain's OpenSSL objects are built: see `ocsp.rs`).
fn ocsp_files(
    spec: &EntrySpec,
    i: usize,
    files: &Files,
) -> (Option<Der>, Option<Der>, Option<String>) {
    let read = |p: Option<std::path::PathBuf>| p.map(|p| files.get(&p)).filter(|b| !b.is_empty());
    let ocsp = read(spec.ocsp_file(i)).map(Arc::from);
    let Some(path) = spec.issuer_file(i).filter(|p| !files.get(p).is_empty()) else {
        return (ocsp, None, None);
    };
    let issuer = parse_pem(&path, files.get(&path))
        .map_err(|e| e.to_string())
        .and_then(|blocks| {
            blocks
                .into_iter()
                .find(|b| b.label == "CERTIFICATE")
                .map(|b| Arc::from(b.der))
                .ok_or_else(|| format!("{}: no CERTIFICATE block", path.display()))
        });
    match issuer {
        Ok(issuer) => (ocsp, Some(issuer), None),
        // A broken issuer file costs the staple, never the certificate.
        Err(why) => (
            None,
            None,
            Some(format!("{why}; its OCSP response is not stapled")),
        ),
    }
}

/// Runs an `ssl_key_dialog=exec:` command through the shell, as Traffic Server does (`popen`):
/// quotes and arguments work as an operator expects (`exec:/bin/bash -c 'echo -n pass'`). The
/// first line of its output is the passphrase.
fn run_dialog(cmd: &str) -> Result<Zeroizing<String>, String> {
    if cmd.trim().is_empty() {
        return Err("ssl_key_dialog exec: empty command".into());
    }
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("ssl_key_dialog exec:{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ssl_key_dialog exec:{cmd}: exited with {}",
            out.status
        ));
    }
    let text = Zeroizing::new(
        String::from_utf8(out.stdout)
            .map_err(|_| format!("ssl_key_dialog exec:{cmd}: output is not UTF-8"))?,
    );
    Ok(Zeroizing::new(
        text.lines().next().unwrap_or("").to_string(),
    ))
}

pub(crate) fn parse_pem<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<Vec<pem::Block<'a>>, CertStoreError> {
    let blocks = pem::parse(bytes).map_err(|e| CertStoreError::Pem {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    if blocks.is_empty() {
        return Err(CertStoreError::Pem {
            path: path.to_path_buf(),
            line: 1,
            message: "no PEM blocks (is it DER, or empty?)".into(),
        });
    }
    Ok(blocks)
}

impl Ctx<'_> {
    /// The entry's private key and the file it came from, or `None` when the certificate has
    /// no key of its own and remote keys are configured.
    fn local_key<'f>(
        &self,
        spec: &EntrySpec,
        cert_path: &'f Path,
        key_path: Option<&'f Path>,
        key_blocks: &[crate::pem::Block<'_>],
        files: &Files,
    ) -> Result<Option<(KeyMaterial, &'f Path, key::KeyPublic)>, CertStoreError> {
        let key_blocks_owned;
        let (key_file, key_block) = match key_path {
            Some(kp) => {
                key_blocks_owned = parse_pem(kp, files.get(kp))?;
                let mut keys = key_blocks_owned
                    .iter()
                    .filter(|b| key::is_key_label(b.label));
                let first = keys
                    .next()
                    .ok_or_else(|| CertStoreError::key(kp, "no private key block in this file"))?;
                if keys.next().is_some() {
                    return Err(CertStoreError::key(
                        kp,
                        "more than one private key in this file",
                    ));
                }
                (kp, first)
            }
            None => match key_blocks {
                [one] => (cert_path, one),
                [] if spec.remote_key && self.opts.remote_keys.is_some() => return Ok(None),
                [] if self.opts.remote_keys.is_some() => {
                    return Err(CertStoreError::key(
                        cert_path,
                        "no private key in the certificate file and no key file (remote keys serve only the certificates of the sources declared keyless, and this one's is not)",
                    ));
                }
                [] => {
                    return Err(CertStoreError::key(
                        cert_path,
                        "no private key in the certificate file and no key file (and no key server configured)",
                    ));
                }
                _ => {
                    return Err(CertStoreError::key(
                        cert_path,
                        "more than one private key in this file",
                    ));
                }
            },
        };
        let passphrase = self.passphrase(
            spec,
            key_block.has_headers || key_block.label == "ENCRYPTED PRIVATE KEY",
            key_file,
        )?;
        let (material, key_public) =
            key::decode(key_block, passphrase.as_ref().map(|p| p.as_bytes())).map_err(
                |e| match e {
                    KeyError::NeedsPassphrase => {
                        CertStoreError::key(key_file, "encrypted, and no passphrase was given")
                    }
                    KeyError::Other(m) => CertStoreError::key(key_file, m),
                },
            )?;
        Ok(Some((material, key_file, key_public)))
    }
}
