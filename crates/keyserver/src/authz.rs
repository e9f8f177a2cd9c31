//! Which authenticated clients may use which keys.
//!
//! File format, one rule per line, `#` comments:
//!
//! ```text
//! # client                                  keys
//! cn:edge-1.example.net                     *
//! cn:edge-2.example.net                     5f3a…(40 hex)  8c1b…(40 hex)
//! cn:edge-3.example.net                     *  sni:shop.example.com  sni:*.example.net
//! spki:<64 hex: SHA-256 of the client certificate's SubjectPublicKeyInfo>   *
//! ```
//!
//! Without a file every client the CA vouches for may use every key. With one, a client matching
//! no line may use nothing. `sni:NAME` (exact, or `*.domain` for one label) limits a client to
//! requests whose server-name item (the name the edge's client asked for) matches one of them;
//! a request without that item is then refused too. A refused request is answered `key not
//! found`, which does not tell the client whether the key exists.

use crate::error::KeyServerError;
use edgetls_keyless_proto::Ski;
use openssl::nid::Nid;
use openssl::x509::X509Ref;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Who a TLS client is, as rules name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId {
    /// The certificate subject's common name.
    pub cn: Option<String>,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
}

impl ClientId {
    /// The identity of a client certificate.
    pub fn of(cert: &X509Ref) -> ClientId {
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok());
        let spki = cert
            .public_key()
            .and_then(|k| k.public_key_to_der())
            .unwrap_or_default();
        ClientId {
            cn,
            spki_sha256: openssl::sha::sha256(&spki),
        }
    }
}

/// Which keys one client may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keys {
    /// Every key the server has.
    All,
    /// Only the keys with these SKIs.
    Only(HashSet<Ski>),
}

/// What one client may use: keys, and (when listed) only for these server names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The keys it may use.
    pub keys: Keys,
    /// Server-name patterns (exact or `*.domain`); empty: any name, or none.
    pub names: Vec<String>,
}

impl Allowed {
    /// Every key, for any request.
    pub fn all() -> Allowed {
        Allowed {
            keys: Keys::All,
            names: Vec::new(),
        }
    }

    /// Nothing.
    pub fn nothing() -> Allowed {
        Allowed {
            keys: Keys::Only(HashSet::new()),
            names: Vec::new(),
        }
    }

    /// Whether a request for the key `ski`, made for the server name `sni` (the request's
    /// item, if it has one), is this client's to make.
    pub fn permits(&self, ski: &Ski, sni: Option<&str>) -> bool {
        let key = match &self.keys {
            Keys::All => true,
            Keys::Only(set) => set.contains(ski),
        };
        key && (self.names.is_empty()
            || sni.is_some_and(|n| self.names.iter().any(|p| name_matches(p, n))))
    }
}

/// `pattern` (exact, or `*.domain` for exactly one more label) matches `name`, ignoring case.
fn name_matches(pattern: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == domain),
        None => name == pattern,
    }
}

/// The rules. `None` (no file): everyone may use everything.
#[derive(Debug, Clone, Default)]
pub struct Authz {
    rules: Option<Rules>,
}

#[derive(Debug, Clone, Default)]
struct Rules {
    by_cn: HashMap<String, Allowed>,
    by_spki: HashMap<[u8; 32], Allowed>,
}

impl Authz {
    /// Everyone may use every key.
    pub fn open() -> Authz {
        Authz::default()
    }

    /// Reads and parses the rules file at `path`.
    pub fn load(path: &Path) -> Result<Authz, KeyServerError> {
        let text = std::fs::read_to_string(path).map_err(KeyServerError::io(path))?;
        Authz::parse(path, &text)
    }

    /// Parses rules; errors name `path` and the line.
    pub fn parse(path: &Path, text: &str) -> Result<Authz, KeyServerError> {
        let mut rules = Rules::default();
        for (i, raw) in text.lines().enumerate() {
            let err = |message: String| KeyServerError::Config {
                path: path.to_path_buf(),
                line: i + 1,
                message,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let who = words.next().unwrap_or_default();
            let (names, keys): (Vec<&str>, Vec<&str>) = words
                .flat_map(|w| w.split(','))
                .filter(|w| !w.is_empty())
                .partition(|w| w.starts_with("sni:"));
            if keys.is_empty() {
                return Err(err(format!("{who}: no keys listed (use * for all)")));
            }
            let keys = if keys == ["*"] {
                Keys::All
            } else {
                let set = keys.iter().map(|k| {
                    parse_hex::<20>(k)
                        .map(Ski)
                        .ok_or_else(|| err(format!("not a 40-hex-digit SKI: {k}")))
                });
                Keys::Only(set.collect::<Result<_, _>>()?)
            };
            let names = names
                .iter()
                .map(|n| {
                    let p = n.trim_start_matches("sni:").to_ascii_lowercase();
                    let host = p.strip_prefix("*.").unwrap_or(&p);
                    if host.is_empty() || host.contains('*') {
                        Err(err(format!("{n}: a server name, or *.domain")))
                    } else {
                        Ok(p)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let allowed = Allowed { keys, names };
            if let Some(cn) = who.strip_prefix("cn:") {
                rules.by_cn.insert(cn.to_string(), allowed);
            } else if let Some(hex) = who.strip_prefix("spki:") {
                let digest = parse_hex::<32>(hex)
                    .ok_or_else(|| err(format!("spki: needs 64 hex digits: {hex}")))?;
                rules.by_spki.insert(digest, allowed);
            } else {
                return Err(err(format!(
                    "client must be cn:NAME or spki:SHA256HEX, not {who:?}"
                )));
            }
        }
        Ok(Authz { rules: Some(rules) })
    }

    /// What this client may use (an SPKI rule is more specific and wins over a CN rule).
    pub fn allowed(&self, client: &ClientId) -> Allowed {
        let Some(rules) = &self.rules else {
            return Allowed::all();
        };
        rules
            .by_spki
            .get(&client.spki_sha256)
            .or_else(|| client.cn.as_ref().and_then(|cn| rules.by_cn.get(cn)))
            .cloned()
            .unwrap_or_else(Allowed::nothing)
    }
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_by_cn_and_spki_and_errors_by_line() {
        let ski = Ski([0xab; 20]);
        let text = format!(
            "# c\ncn:edge-1 *\ncn:edge-2 {ski}\nspki:{} {ski},{ski}\n",
            "11".repeat(32)
        );
        let a = Authz::parse(Path::new("authz"), &text).unwrap();
        let id = |cn: &str, spki: u8| ClientId {
            cn: Some(cn.into()),
            spki_sha256: [spki; 32],
        };
        assert_eq!(a.allowed(&id("edge-1", 0)), Allowed::all());
        assert!(a.allowed(&id("edge-2", 0)).permits(&ski, None));
        assert!(!a.allowed(&id("edge-2", 0)).permits(&Ski([0; 20]), None));
        assert!(!a.allowed(&id("stranger", 0)).permits(&ski, None));
        // The SPKI rule wins over edge-1's CN rule.
        assert!(!a.allowed(&id("edge-1", 0x11)).permits(&Ski([0; 20]), None));
        assert_eq!(Authz::open().allowed(&id("anyone", 0)), Allowed::all());
        let e = Authz::parse(Path::new("authz"), "cn:a *\nhost:x *\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("authz:2:"), "{e}");
        let e = Authz::parse(Path::new("authz"), "cn:a abc\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("authz:1:") && e.contains("SKI"), "{e}");
        assert!(Authz::parse(Path::new("authz"), "cn:a\n").is_err());
    }

    #[test]
    fn server_name_limits() {
        let a = Authz::parse(
            Path::new("authz"),
            "cn:shop * sni:shop.example.com sni:*.example.net\ncn:bad sni:x.example\n",
        );
        assert!(
            a.unwrap_err().to_string().contains("authz:2:"),
            "no keys on line 2"
        );
        let a = Authz::parse(
            Path::new("authz"),
            "cn:shop * sni:Shop.example.com,sni:*.example.net\n",
        )
        .unwrap();
        let shop = a.allowed(&ClientId {
            cn: Some("shop".into()),
            spki_sha256: [0; 32],
        });
        let k = Ski([1; 20]);
        assert!(shop.permits(&k, Some("shop.example.com")));
        assert!(shop.permits(&k, Some("SHOP.example.com")));
        assert!(shop.permits(&k, Some("a.example.net")));
        assert!(!shop.permits(&k, Some("a.b.example.net")));
        assert!(!shop.permits(&k, Some("example.net")));
        assert!(!shop.permits(&k, Some("other.example.com")));
        assert!(!shop.permits(&k, None), "no server name item");
        let e = Authz::parse(Path::new("authz"), "cn:a * sni:\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("authz:1:"), "{e}");
    }
}
