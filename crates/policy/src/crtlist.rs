//! Rules from the per-line options of a HAProxy crt-list, as the certificate store kept them:
//! `cert.pem [alpn h2,http/1.1 ssl-min-ver TLSv1.2 verify required ca-file ca.pem] names…`.

use crate::config::{check, protocols, sni_pattern, tls_version};
use crate::error::PolicyError;
use crate::rule::{ClientCert, Rule, Settings};
use edgetls_certstore::Snapshot;

/// One rule per name of every crt-list entry that has options, in the list's order.
pub fn rules(snapshot: &Snapshot) -> Result<Vec<Rule>, PolicyError> {
    let mut out = Vec::new();
    for entry in snapshot.entries() {
        let spec = entry.spec();
        if spec.options.is_empty() {
            continue;
        }
        let line = spec.line.unwrap_or(0) as usize;
        let err = |message: String| PolicyError::Rule {
            path: spec.origin.clone(),
            line,
            message,
        };
        let dir = spec.origin.parent().unwrap_or(std::path::Path::new("."));
        let settings = options(&spec.options, dir).map_err(err)?;
        let names = entry.names().map(str::to_string).chain(entry.wildcards());
        for name in names {
            let sni = sni_pattern(&name).map_err(err)?;
            out.push(Rule::new(
                sni,
                settings.clone(),
                (spec.origin.clone(), line),
            ));
        }
    }
    Ok(out)
}

/// The TLS options of a crt-list line (the certificate store took `key`, `ocsp`,
/// `ocsp-update` and `allow-0rtt`, and clamped SSLv3, warning where needed).
fn options(words: &[String], dir: &std::path::Path) -> Result<Settings, String> {
    let mut s = Settings::default();
    let mut ecdhe = None;
    let mut it = words.iter();
    while let Some(key) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("crt-list option {key:?} needs a value"))
        };
        match key.as_str() {
            "alpn" => s.alpn = protocols("alpn", split(&value()?))?,
            "no-alpn" => s.alpn = Vec::new(),
            "npn" => s.npn = protocols("npn", split(&value()?))?,
            "ciphers" => s.ciphers = Some(value()?),
            "ciphersuites" => s.ciphersuites = Some(value()?),
            "curves" => s.groups = Some(value()?),
            // One curve; `curves` wins when both are given (as in HAProxy).
            "ecdhe" => ecdhe = Some(value()?),
            "sigalgs" => s.sigalgs = Some(value()?),
            "client-sigalgs" => s.client_sigalgs = Some(value()?),
            "ssl-min-ver" => s.min_version = Some(tls_version(&value()?)?),
            "ssl-max-ver" => s.max_version = Some(tls_version(&value()?)?),
            "ca-file" => s.client_ca = Some(dir.join(value()?)),
            "ca-verify-file" => s.client_ca_verify = Some(dir.join(value()?)),
            "crl-file" => s.client_crl = Some(dir.join(value()?)),
            "no-ca-names" => s.no_ca_names = true,
            "verify" => {
                s.client_cert = match value()?.as_str() {
                    "none" => ClientCert::None,
                    "optional" => ClientCert::Request,
                    "required" => ClientCert::Require,
                    o => return Err(format!("verify {o:?}: none, optional or required")),
                }
            }
            // Taken by the certificate store; a list read without it still parses.
            "key" | "ocsp" | "ocsp-update" => {
                value()?;
            }
            "allow-0rtt" => {}
            other => {
                return Err(format!(
                    "crt-list option {other:?} is not supported here (alpn, no-alpn, npn, \
                     ciphers, ciphersuites, curves, ecdhe, sigalgs, client-sigalgs, ssl-min-ver, \
                     ssl-max-ver, verify, ca-file, ca-verify-file, crl-file, no-ca-names, key, \
                     ocsp, ocsp-update, allow-0rtt)"
                ));
            }
        }
    }
    if s.groups.is_none() {
        s.groups = ecdhe;
    }
    check(&s)?;
    Ok(s)
}

fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::to_string).collect()
}
