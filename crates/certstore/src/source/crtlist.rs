//! HAProxy crt-list: `<certfile> [<options>] [[!]<sni filter> ...]` per line.
//!
//! The certificate file may hold the key; otherwise `<certfile>.key` is read (HAProxy's
//! `ssl-load-extra-files` default). A path with no file but `.rsa`/`.ecdsa` siblings is a
//! multi-certificate bundle: one entry, one chain each. Options in brackets are kept word by
//! word for the policy crate. SNI filters replace the certificate's names; `!name` excludes a
//! name from the entry's wildcards; a `*` filter makes the entry the default.

use super::{EntrySpec, line_problem, read_config, resolve};
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
            Ok(mut spec) => {
                spec.origin = path.to_path_buf();
                spec.line = Some(line);
                specs.push(spec);
            }
            Err(msg) => problems.push(line_problem(path, line, msg)),
        }
    }
    (specs, problems)
}

fn parse_line(content: &str, base: &Path) -> Result<EntrySpec, String> {
    let mut spec = EntrySpec::default();
    let (file, mut rest) = content
        .split_once(char::is_whitespace)
        .unwrap_or((content, ""));
    rest = rest.trim_start();
    if let Some(after) = rest.strip_prefix('[') {
        let (opts, after) = after.split_once(']').ok_or("unterminated [ options")?;
        spec.options = opts.split_whitespace().map(str::to_string).collect();
        rest = after;
    }
    for filter in rest.split_whitespace() {
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
            for member in members {
                spec.keys.push(key_beside(&member));
                spec.certs.push(member);
            }
            return Ok(spec);
        }
    }
    spec.keys.push(key_beside(&cert));
    spec.certs.push(cert);
    Ok(spec)
}

/// `<cert>.key` when it exists.
fn key_beside(cert: &Path) -> Option<PathBuf> {
    let key = PathBuf::from(format!("{}.key", cert.display()));
    key.is_file().then_some(key)
}
