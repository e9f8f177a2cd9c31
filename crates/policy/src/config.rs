//! The policy file: TOML with the look of Traffic Server's `sni.yaml` (its key names where it
//! has them), and the per-line options of a HAProxy crt-list.
//!
//! ```toml
//! [[sni]]
//! fqdn = "www.example.com"            # exact, "*.example.com" (one label), or "*" (default)
//! local = "192.0.2.10:443"            # optional: "ip", "ip:port" or ":port"
//! alpn = ["h2", "http/1.1"]           # server preference order
//! alpn_mode = "strict"                # (default) or "fallback": no overlap → alert 120 / no ALPN
//! npn = ["http/1.1"]
//! valid_tls_version_min_in = "TLSv1_2"
//! valid_tls_version_max_in = "TLSv1_3"
//! ciphers = "ECDHE+AESGCM"            # TLS 1.2 (OpenSSL syntax)
//! ciphersuites = "TLS_AES_128_GCM_SHA256"
//! groups = "X25519:P-256"
//! sigalgs = "ECDSA+SHA256:RSA-PSS+SHA256"
//! verify_client = "STRICT"            # NONE, MODERATE (ask) or STRICT (require)
//! verify_client_ca_certs = "clients-ca.pem"   # relative to this file
//! # verify_client_ca_dir = "client-cas"        # a hashed CA directory (openssl rehash)
//! verify_depth = 2
//! tickets = false
//! tls13_tickets = 1
//! ticket_key_file = "example.keys"   # this rule's own ticket keys (relative to this file)
//! ticket_key_format = "nginx80"       # ats, nginx48, nginx80 or haproxy
//! certificate = "shared.example.com"  # serve this entry instead of the one for the SNI
//! tunnel_route = "10.0.0.5:443"       # do not terminate
//! ```

use crate::error::PolicyError;
use crate::rule::{ClientCert, LocalMatch, Rule, Settings, SniMatch};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    sni: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    fqdn: String,
    local: Option<String>,
    alpn: Option<Vec<String>>,
    alpn_mode: Option<String>,
    npn: Option<Vec<String>>,
    valid_tls_version_min_in: Option<String>,
    valid_tls_version_max_in: Option<String>,
    ciphers: Option<String>,
    ciphersuites: Option<String>,
    groups: Option<String>,
    sigalgs: Option<String>,
    verify_client: Option<String>,
    verify_client_ca_certs: Option<String>,
    verify_client_ca_dir: Option<String>,
    verify_depth: Option<u32>,
    tickets: Option<bool>,
    tls13_tickets: Option<usize>,
    ticket_key_file: Option<String>,
    ticket_key_format: Option<String>,
    certificate: Option<String>,
    tunnel_route: Option<String>,
}

/// Reads the rules of a policy file.
pub fn load(path: &Path) -> Result<Vec<Rule>, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses policy text (`path` names it in errors and anchors relative CA paths): Traffic
/// Server's `sni.yaml` when `path` ends in `.yaml` or `.yml`, else the TOML form.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Rule>, PolicyError> {
    let yaml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    if yaml {
        return parse_sni_yaml(path, text);
    }
    let file: File = toml::from_str(text).map_err(|e| PolicyError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    // Line of a byte offset: one pass over the text, then a binary search per rule.
    let newlines: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
    let line_of = |offset: usize| newlines.partition_point(|&n| n < offset) + 1;
    file.sni
        .into_iter()
        .map(|spanned| {
            let line = line_of(spanned.span().start);
            let raw = spanned.into_inner();
            rule(raw, dir)
                .map_err(|message| PolicyError::Rule {
                    path: path.to_path_buf(),
                    line,
                    message,
                })
                .map(|mut r| {
                    r.origin = (path.to_path_buf(), line);
                    r
                })
        })
        .collect()
}

fn parse_sni_yaml(path: &Path, text: &str) -> Result<Vec<Rule>, PolicyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |line: usize, message: String| PolicyError::Rule {
        path: path.to_path_buf(),
        line,
        message,
    };
    let raws = crate::sni_yaml::raw_rules(text).map_err(|(l, m)| err(l, m))?;
    raws.into_iter()
        .map(|(raw, line)| {
            let mut r = rule(raw, dir).map_err(|m| err(line, m))?;
            r.origin = (path.to_path_buf(), line);
            Ok(r)
        })
        .collect()
}

fn rule(raw: RawRule, dir: &Path) -> Result<Rule, String> {
    let sni = sni_pattern(&raw.fqdn)?;
    let settings = Settings {
        alpn: protocols("alpn", raw.alpn.unwrap_or_default())?,
        alpn_fallback: match raw.alpn_mode.as_deref() {
            None | Some("strict") => false,
            Some("fallback") => true,
            Some(o) => return Err(format!("alpn_mode {o:?}: \"strict\" or \"fallback\"")),
        },
        npn: protocols("npn", raw.npn.unwrap_or_default())?,
        min_version: raw
            .valid_tls_version_min_in
            .as_deref()
            .map(tls_version)
            .transpose()?,
        max_version: raw
            .valid_tls_version_max_in
            .as_deref()
            .map(tls_version)
            .transpose()?,
        ciphers: raw.ciphers,
        ciphersuites: raw.ciphersuites,
        groups: raw.groups,
        sigalgs: raw.sigalgs,
        client_cert: match raw.verify_client.as_deref() {
            None => ClientCert::None,
            Some(v) => client_cert(v)?,
        },
        client_ca: raw.verify_client_ca_certs.map(|p| dir.join(p)),
        client_ca_dir: raw.verify_client_ca_dir.map(|p| dir.join(p)),
        verify_depth: raw.verify_depth,
        tickets: raw.tickets,
        tls13_tickets: raw.tls13_tickets,
        ticket_keys: match (raw.ticket_key_file, raw.ticket_key_format) {
            (None, None) => None,
            (Some(f), Some(format)) => Some(crate::rule::TicketKeyFile {
                path: dir.join(f),
                format: format
                    .parse()
                    .map_err(|e| format!("ticket_key_format: {e}"))?,
            }),
            (Some(_), None) => {
                return Err(
                    "ticket_key_file needs ticket_key_format (ats, nginx48, nginx80 or \
                            haproxy): the files do not say"
                        .into(),
                );
            }
            (None, Some(_)) => return Err("ticket_key_format without ticket_key_file".into()),
        },
        ..Settings::default()
    };
    check(&settings)?;
    let mut r = Rule::new(sni, settings, (PathBuf::new(), 0));
    r.local = raw.local.as_deref().map(local).transpose()?;
    r.certificate = raw.certificate;
    r.tunnel = raw.tunnel_route;
    Ok(r)
}

/// Checks that settings hang together (OpenSSL checks the strings when the profile is built).
pub(crate) fn check(s: &Settings) -> Result<(), String> {
    if let (Some(a), Some(b)) = (s.min_version, s.max_version) {
        if a > b {
            return Err("the minimum TLS version is above the maximum".into());
        }
    }
    if s.client_cert != ClientCert::None
        && s.client_ca.is_none()
        && s.client_ca_verify.is_none()
        && s.client_ca_dir.is_none()
    {
        return Err(
            "client certificates need a CA bundle (verify_client_ca_certs / ca-file) or \
             directory (verify_client_ca_dir)"
                .into(),
        );
    }
    if s.tickets == Some(false) && s.ticket_keys.is_some() {
        return Err("tickets = false with a ticket_key_file".into());
    }
    if s.alpn_fallback && s.alpn.is_empty() {
        return Err("alpn_mode = \"fallback\" without alpn protocols".into());
    }
    Ok(())
}

pub(crate) fn sni_pattern(fqdn: &str) -> Result<SniMatch, String> {
    let name = fqdn.trim().to_ascii_lowercase();
    if name == "*" {
        return Ok(SniMatch::Any);
    }
    let (wild, host) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name.as_str()),
    };
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return Err(format!(
            "fqdn {fqdn:?}: a host name, \"*.domain\" (one label) or \"*\""
        ));
    }
    Ok(if wild {
        SniMatch::Wildcard(host.to_string())
    } else {
        SniMatch::Exact(host.to_string())
    })
}

pub(crate) fn protocols(what: &str, names: Vec<String>) -> Result<Vec<Vec<u8>>, String> {
    names
        .into_iter()
        .map(|n| {
            if n.is_empty() || n.len() > 255 {
                Err(format!("{what} protocol {n:?}: 1 to 255 bytes"))
            } else {
                Ok(n.into_bytes())
            }
        })
        .collect()
}

pub(crate) fn tls_version(v: &str) -> Result<u16, String> {
    Ok(match v.replace('_', ".").as_str() {
        "TLSv1" | "TLSv1.0" => 0x0301,
        "TLSv1.1" => 0x0302,
        "TLSv1.2" => 0x0303,
        "TLSv1.3" => 0x0304,
        _ => {
            return Err(format!(
                "TLS version {v:?}: TLSv1_2 or TLSv1_3 (or TLSv1, TLSv1_1)"
            ));
        }
    })
}

fn client_cert(v: &str) -> Result<ClientCert, String> {
    Ok(match v.to_ascii_lowercase().as_str() {
        "none" => ClientCert::None,
        "moderate" | "request" | "optional" => ClientCert::Request,
        "strict" | "require" | "required" => ClientCert::Require,
        _ => return Err(format!("verify_client {v:?}: NONE, MODERATE or STRICT")),
    })
}

fn local(v: &str) -> Result<LocalMatch, String> {
    let bad = || format!("local {v:?}: \"ip\", \"ip:port\" or \":port\"");
    if let Some(port) = v.strip_prefix(':') {
        return Ok(LocalMatch {
            ip: None,
            port: Some(port.parse().map_err(|_| bad())?),
        });
    }
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(LocalMatch {
            ip: Some(a.ip()),
            port: Some(a.port()),
        });
    }
    let ip: IpAddr = v.parse().map_err(|_| bad())?;
    Ok(LocalMatch {
        ip: Some(ip),
        port: None,
    })
}
