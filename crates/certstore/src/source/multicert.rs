//! Apache Traffic Server `ssl_multicert.config`.
//!
//! Each line is `key=value` pairs separated by blanks; values may be double-quoted. Fields:
//! `ssl_cert_name` (comma-separated chains, e.g. an RSA and an ECDSA one), `ssl_key_name` (same
//! order; omitted: the key is in the certificate file), `ssl_ca_name`, `dest_ip` (`*`, IPv4,
//! IPv6 in brackets, optional `:port`), `ssl_ticket_enabled`, `ssl_ticket_number`,
//! `ssl_key_dialog` (`builtin` or `"exec:/path args"`), `action=tunnel`, `ssl_ocsp_name`.
//! `#` starts a comment.

use super::{
    EntrySpec, KeyDialog, SourceOptions, line_problem, parse_dest_ip, read_config, resolve,
};
use crate::error::{CertStoreError, Problem, Severity};
use std::path::Path;

pub(super) fn specs(
    path: &Path,
    opts: &SourceOptions,
) -> Result<(Vec<EntrySpec>, Vec<Problem>), CertStoreError> {
    Ok(parse(path, &read_config(path)?, opts))
}

/// Parses the text of `path`.
pub(crate) fn parse(
    path: &Path,
    text: &str,
    opts: &SourceOptions,
) -> (Vec<EntrySpec>, Vec<Problem>) {
    let (cert_dir, key_dir) = opts.dirs(path);
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u32 + 1;
        match parse_line(raw) {
            Ok(None) => {}
            Ok(Some(fields)) => {
                match build(path, line, &fields, cert_dir, key_dir, &mut problems) {
                    Ok(spec) => specs.push(spec),
                    Err(msg) => problems.push(line_problem(path, line, msg)),
                }
            }
            Err(msg) => problems.push(line_problem(path, line, msg)),
        }
    }
    (specs, problems)
}

/// Splits a line into `(key, value)` pairs; `None` for blank and comment lines.
fn parse_line(raw: &str) -> Result<Option<Vec<(String, String)>>, String> {
    let mut fields = Vec::new();
    let mut chars = raw.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => break,
            _ => {}
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|&c| c != '=' && !c.is_whitespace())).collect();
        if chars.next() != Some('=') {
            return Err(format!("expected key=value, found {key:?}"));
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let v: String = std::iter::from_fn(|| chars.next_if(|&c| c != '"')).collect();
            if chars.next() != Some('"') {
                return Err(format!("{key}: unterminated quoted value"));
            }
            v
        } else {
            std::iter::from_fn(|| chars.next_if(|&c| !c.is_whitespace())).collect()
        };
        fields.push((key.to_ascii_lowercase(), value));
    }
    Ok((!fields.is_empty()).then_some(fields))
}

fn list(v: &str) -> Vec<&str> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// One entry from its fields (shared with `ssl_multicert.yaml`, whose items have the same).
pub(super) fn build(
    path: &Path,
    line: u32,
    fields: &[(String, String)],
    cert_dir: &Path,
    key_dir: &Path,
    problems: &mut Vec<Problem>,
) -> Result<EntrySpec, String> {
    let mut spec = EntrySpec {
        origin: path.to_path_buf(),
        line: Some(line),
        ..Default::default()
    };
    let mut key_names = Vec::new();
    for (key, value) in fields {
        match key.as_str() {
            "ssl_cert_name" => {
                spec.certs = list(value)
                    .into_iter()
                    .map(|c| resolve(cert_dir, c))
                    .collect()
            }
            "ssl_key_name" => key_names = list(value),
            "ssl_ca_name" => {
                spec.ca = list(value)
                    .into_iter()
                    .map(|c| resolve(cert_dir, c))
                    .collect()
            }
            "dest_ip" if value == "*" => spec.default = true,
            "dest_ip" => {
                spec.dest_ip = Some(
                    parse_dest_ip(value)
                        .ok_or_else(|| format!("dest_ip: not an IP address: {value:?}"))?,
                )
            }
            "ssl_ticket_enabled" => {
                spec.ticket_enabled = Some(match value.as_str() {
                    "1" => true,
                    "0" => false,
                    _ => return Err(format!("ssl_ticket_enabled must be 0 or 1, not {value:?}")),
                })
            }
            "ssl_ticket_number" => {
                spec.ticket_number = Some(
                    value
                        .parse()
                        .map_err(|_| format!("ssl_ticket_number: not a number: {value:?}"))?,
                )
            }
            "ssl_key_dialog" => {
                spec.key_dialog = Some(if value == "builtin" {
                    KeyDialog::Builtin
                } else if let Some(cmd) = value.strip_prefix("exec:") {
                    if cmd.trim().is_empty() {
                        return Err("ssl_key_dialog: exec: needs a program".into());
                    }
                    KeyDialog::Exec(cmd.trim().to_string())
                } else {
                    return Err(format!(
                        "ssl_key_dialog must be builtin or \"exec:/path args\", not {value:?}"
                    ));
                })
            }
            "action" if value == "tunnel" => spec.tunnel = true,
            "action" => return Err(format!("action: only tunnel is known, not {value:?}")),
            "ssl_ocsp_name" => spec.ocsp = Some(resolve(cert_dir, value)),
            other => problems.push(Problem {
                severity: Severity::Warning,
                origin: path.to_path_buf(),
                line: Some(line),
                error: CertStoreError::config(path, line, format!("unknown field {other} ignored")),
            }),
        }
    }
    if spec.certs.is_empty() && !spec.tunnel {
        return Err("no ssl_cert_name (and not action=tunnel)".into());
    }
    if !key_names.is_empty() && key_names.len() != spec.certs.len() {
        return Err(format!(
            "ssl_key_name lists {} keys for {} certificates in ssl_cert_name",
            key_names.len(),
            spec.certs.len()
        ));
    }
    spec.keys = if key_names.is_empty() {
        vec![None; spec.certs.len()]
    } else {
        key_names
            .into_iter()
            .map(|k| Some(resolve(key_dir, k)))
            .collect()
    };
    Ok(spec)
}
