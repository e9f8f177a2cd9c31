//! HAProxy crt-list: `<certfile> [<options>] [[!]<sni filter> ...]` per line.
//!
//! The certificate file may hold the key; otherwise `<certfile>.key` is read (HAProxy's
//! `ssl-load-extra-files` default). A path with no file but `.rsa`/`.ecdsa` siblings is a
//! multi-certificate bundle: one entry, one chain each. Options in brackets are kept word by
//! word for the policy crate. Once a line has any filter, only its filters name the entry (the
//! certificate's names are not used); `!name` keeps the entry from serving that name, by
//! wildcard or as the default; a `*` filter makes the entry a default (the first of each key
//! type is the default for that type).

use super::{EntrySpec, line_problem, line_warning, read_config, resolve};
use crate::error::{CertStoreError, Problem};
use std::path::{Path, PathBuf};

pub(super) fn specs(path: &Path) -> Result<(Vec<EntrySpec>, Vec<Problem>), CertStoreError> {
    Ok(parse(path, &read_config(path)?))
}

/// Parses the text of `path`.
pub(crate) fn parse(path: &Path, text: &str) -> (Vec<EntrySpec>, Vec<Problem>) {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u32 + 1;
        let content = raw.split_once('#').map_or(raw, |(c, _)| c).trim();
        if content.is_empty() {
            continue;
        }
        match parse_line(content, base) {
            Ok((mut spec, warnings)) => {
                spec.origin = path.to_path_buf();
                spec.line = Some(line);
                problems.extend(warnings.into_iter().map(|w| line_warning(path, line, w)));
                specs.push(spec);
            }
            Err(msg) => problems.push(line_problem(path, line, msg)),
        }
    }
    (specs, problems)
}

fn parse_line(content: &str, base: &Path) -> Result<(EntrySpec, Vec<String>), String> {
    let mut spec = EntrySpec::default();
    let mut warnings = Vec::new();
    let (file, mut rest) = content
        .split_once(char::is_whitespace)
        .unwrap_or((content, ""));
    rest = rest.trim_start();
    let mut key = None;
    if let Some(after) = rest.strip_prefix('[') {
        let (opts, after) = after.split_once(']').ok_or("unterminated [ options")?;
        let words: Vec<&str> = opts.split_whitespace().collect();
        key = certificate_options(&words, base, &mut spec, &mut warnings)?;
        rest = after;
    }
    for filter in rest.split_whitespace() {
        spec.filtered = true;
        if filter == "*" {
            spec.default = true;
        } else if let Some(name) = filter.strip_prefix('!') {
            if name.is_empty() {
                return Err("empty !exclusion".into());
            }
            spec.exclusions.push(name.to_string());
        } else {
            spec.sni_filters.push(filter.to_string());
        }
    }
    let cert = resolve(base, file);
    if !cert.exists() {
        let members: Vec<PathBuf> = ["rsa", "ecdsa", "dsa"]
            .iter()
            .map(|ext| PathBuf::from(format!("{}.{ext}", cert.display())))
            .filter(|p| p.is_file())
            .collect();
        if !members.is_empty() {
            if key.is_some() {
                return Err(format!(
                    "option key: {} is a bundle of several certificates, each with its own key",
                    cert.display()
                ));
            }
            for member in members {
                spec.keys.push(key_beside(&member));
                spec.certs.push(member);
            }
            return Ok((spec, warnings));
        }
    }
    spec.keys.push(key.or_else(|| key_beside(&cert)));
    spec.certs.push(cert);
    Ok((spec, warnings))
}

/// Takes the options that concern the certificate itself (`key`, `ocsp`, `ocsp-update`) and
/// keeps the others, word by word, for the policy crate; clamps `ssl-min-ver SSLv3` (OpenSSL
/// here has no SSLv3) and says what `allow-0rtt` does here. Returns the `key` file.
fn certificate_options(
    words: &[&str],
    base: &Path,
    spec: &mut EntrySpec,
    warnings: &mut Vec<String>,
) -> Result<Option<PathBuf>, String> {
    let mut key = None;
    let mut it = words.iter();
    while let Some(&word) = it.next() {
        let mut value = || {
            it.next()
                .copied()
                .ok_or_else(|| format!("crt-list option {word:?} needs a value"))
        };
        match word {
            "key" => key = Some(resolve(base, value()?)),
            "ocsp" => spec.ocsp = Some(resolve(base, value()?)),
            "ocsp-update" => {
                spec.ocsp_update = Some(match value()? {
                    "on" => true,
                    "off" => false,
                    v => return Err(format!("ocsp-update {v:?}: on or off")),
                })
            }
            "ssl-min-ver" | "ssl-max-ver" => {
                let v = value()?;
                let v = if v.eq_ignore_ascii_case("SSLv3") {
                    warnings.push(format!(
                        "{word} SSLv3: SSLv3 is not available (RFC 7568); TLSv1.0 is used instead"
                    ));
                    "TLSv1.0"
                } else {
                    v
                };
                spec.options.extend([word.to_string(), v.to_string()]);
            }
            "allow-0rtt" => warnings.push(
                "allow-0rtt: early data is not accepted here; clients send it again after the \
                 handshake (TLS 1.3 allows either)"
                    .into(),
            ),
            other => spec.options.push(other.to_string()),
        }
    }
    Ok(key)
}

/// `<cert>.key` when it exists.
fn key_beside(cert: &Path) -> Option<PathBuf> {
    let key = PathBuf::from(format!("{}.key", cert.display()));
    key.is_file().then_some(key)
}
