//! Traffic Server's `sni.yaml` (9 and 10): a top-level `sni:` list of items, each a rule for the
//! server names its `fqdn` matches, read into the same rules as the TOML policy file. Every key
//! is either honoured or refused with the file, its line and why.
//!
//! Honoured: `fqdn`, `verify_client`, `verify_client_ca_certs` (a path, or a mapping with `file:`
//! and/or `dir:`), `valid_tls_version_min_in`,
//! `valid_tls_version_max_in`, `server_cipher_suite`, `server_TLSv1_3_cipher_suites`,
//! `server_groups_list`, `http2` (`on`: ALPN h2 and http/1.1; `off`: http/1.1),
//! `ssl_ticket_enabled`, `ssl_ticket_number`, `tunnel_route`.
//! Refused, with the reason: what concerns the connection to the origin (`client_cert`,
//! `client_key`, `verify_server_policy`, `verify_server_properties`, `forward_route`,
//! `partial_blind_route`: set on the proxy's `[[routes]]`), `host_sni_policy` (edgetls does not
//! read HTTP), `ip_allow`, and anything else.

use crate::config::RawRule;
use edgetls_certstore::yaml::{self, Node};

/// The rules of `text`, each with its line, or the first problem as (line, message).
pub(crate) fn raw_rules(text: &str) -> Result<Vec<(RawRule, usize)>, (usize, String)> {
    let at = |(line, msg): (u32, String)| (line as usize, msg);
    let Some(doc) = yaml::document(text).map_err(at)? else {
        return Ok(Vec::new());
    };
    let (items, others) = yaml::top_list(&doc, "sni").map_err(at)?;
    if let Some(other) = others.into_iter().next() {
        return Err(at(other));
    }
    items
        .into_iter()
        .map(|item| {
            let line = yaml::line_of(item) as usize;
            raw_rule(item).map(|r| (r, line))
        })
        .collect()
}

fn raw_rule(item: &Node) -> Result<RawRule, (usize, String)> {
    let Some(map) = item.as_mapping() else {
        return Err((
            yaml::line_of(item) as usize,
            "an sni item must be a mapping (fqdn: …)".into(),
        ));
    };
    let mut table = toml::Table::new();
    for (key, value) in map.iter() {
        let line = yaml::key_line(key) as usize;
        let fail = |why: String| (line, format!("{}: {why}", key.as_str()));
        if key.as_str() == "verify_client_ca_certs" && value.as_mapping().is_some() {
            ca_mapping(value, &mut table)?;
            continue;
        }
        let Node::Scalar(v) = value else {
            return Err(fail("one value, not a list or a mapping".into()));
        };
        let v = v.as_str();
        let text = || toml::Value::String(v.to_string());
        let (name, value) = match key.as_str() {
            "fqdn" => ("fqdn", text()),
            "verify_client" => ("verify_client", text()),
            "verify_client_ca_certs" => ("verify_client_ca_certs", text()),
            "valid_tls_version_min_in" => ("valid_tls_version_min_in", text()),
            "valid_tls_version_max_in" => ("valid_tls_version_max_in", text()),
            "server_cipher_suite" => ("ciphers", text()),
            "server_TLSv1_3_cipher_suites" => ("ciphersuites", text()),
            "server_groups_list" => ("groups", text()),
            "tunnel_route" => ("tunnel_route", text()),
            "http2" => {
                let on = switch(v).ok_or_else(|| fail(format!("{v:?}: on or off")))?;
                let protocols: &[&str] = if on {
                    &["h2", "http/1.1"]
                } else {
                    &["http/1.1"]
                };
                let list = protocols.iter().map(|p| toml::Value::String(p.to_string()));
                ("alpn", toml::Value::Array(list.collect()))
            }
            "ssl_ticket_enabled" => {
                let on = switch(v).ok_or_else(|| fail(format!("{v:?}: 0 or 1")))?;
                ("tickets", toml::Value::Boolean(on))
            }
            "ssl_ticket_number" => {
                let n: i64 = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| fail(format!("{v:?}: a number of tickets")))?;
                ("tls13_tickets", toml::Value::Integer(n))
            }
            "client_cert"
            | "client_key"
            | "verify_server_policy"
            | "verify_server_properties"
            | "forward_route"
            | "partial_blind_route" => {
                return Err(fail(
                    "concerns the connection to the origin, which edgetls sets per route \
                     ([[routes]] in the proxy configuration: origin, tls, client_cert, verify)"
                        .into(),
                ));
            }
            "host_sni_policy" => {
                return Err(fail(
                    "edgetls does not read HTTP, so it cannot compare the Host header with the \
                     server name"
                        .into(),
                ));
            }
            "ip_allow" => {
                return Err(fail(
                    "not supported: filter client addresses in front of edgetls (firewall, \
                     load balancer)"
                        .into(),
                ));
            }
            other => return Err(fail(format!("unknown sni.yaml key {other:?}"))),
        };
        table.insert(name.into(), value);
    }
    if !table.contains_key("fqdn") {
        return Err((
            yaml::line_of(item) as usize,
            "an sni item needs an fqdn".into(),
        ));
    }
    let de = toml::Value::Table(table);
    serde::Deserialize::deserialize(de)
        .map_err(|e: toml::de::Error| (yaml::line_of(item) as usize, e.to_string()))
}

/// Traffic Server's mapping form of `verify_client_ca_certs`: `file:` (a CA bundle: client
/// certificates verify with it and its subjects are sent as the acceptable CA names) and/or
/// `dir:` (a hashed CA directory, as `openssl rehash` makes: for verification only).
fn ca_mapping(node: &Node, table: &mut toml::Table) -> Result<(), (usize, String)> {
    let Some(map) = node.as_mapping().filter(|m| !m.is_empty()) else {
        return Err((
            yaml::line_of(node) as usize,
            "verify_client_ca_certs: give file:, dir: or both".into(),
        ));
    };
    for (key, value) in map.iter() {
        let line = yaml::key_line(key) as usize;
        let fail = |why: &str| {
            (
                line,
                format!("verify_client_ca_certs: {}: {why}", key.as_str()),
            )
        };
        let Node::Scalar(v) = value else {
            return Err(fail("one path, not a list or a mapping"));
        };
        let name = match key.as_str() {
            "file" => "verify_client_ca_certs",
            "dir" => "verify_client_ca_dir",
            _ => return Err(fail("unknown key (file or dir)")),
        };
        table.insert(name.into(), toml::Value::String(v.as_str().to_string()));
    }
    Ok(())
}

/// `on`/`off`, `1`/`0`, `true`/`false`.
fn switch(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "1" | "true" => Some(true),
        "off" | "0" | "false" => Some(false),
        _ => None,
    }
}
