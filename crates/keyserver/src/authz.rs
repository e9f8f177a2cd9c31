//! Which authenticated clients may use which keys.
//!
//! File format, one rule per line, `#` comments:
//!
//! ```text
//! # client                                  keys
//! cn:edge-1.example.net                     *
//! cn:edge-2.example.net                     5f3a…(40 hex)  8c1b…(40 hex)
//! spki:<64 hex: SHA-256 of the client certificate's SubjectPublicKeyInfo>   *
//! ```
//!
//! Without a file every client the CA vouches for may use every key. With one, a client matching
//! no line may use nothing. A refused request is answered `key not found`, which does not tell
//! the client whether the key exists.

use crate::error::KeyServerError;
use edgetls_keyless_proto::Ski;
use openssl::nid::Nid;
use openssl::x509::X509Ref;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Who a TLS client is, as rules name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId {
    pub cn: Option<String>,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
}

impl ClientId {
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

/// What one client may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    All,
    Keys(HashSet<Ski>),
}

impl Allowed {
    pub fn permits(&self, ski: &Ski) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Keys(set) => set.contains(ski),
        }
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

    pub fn load(path: &Path) -> Result<Authz, KeyServerError> {
        let text = std::fs::read_to_string(path).map_err(KeyServerError::io(path))?;
        Authz::parse(path, &text)
    }

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
            let keys: Vec<&str> = words
                .flat_map(|w| w.split(','))
                .filter(|w| !w.is_empty())
                .collect();
            if keys.is_empty() {
                return Err(err(format!("{who}: no keys listed (use * for all)")));
            }
            let allowed = if keys == ["*"] {
                Allowed::All
            } else {
                let set = keys.iter().map(|k| {
                    parse_hex::<20>(k)
                        .map(Ski)
                        .ok_or_else(|| err(format!("not a 40-hex-digit SKI: {k}")))
                });
                Allowed::Keys(set.collect::<Result<_, _>>()?)
            };
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
            return Allowed::All;
        };
        rules
            .by_spki
            .get(&client.spki_sha256)
            .or_else(|| client.cn.as_ref().and_then(|cn| rules.by_cn.get(cn)))
            .cloned()
            .unwrap_or_else(|| Allowed::Keys(HashSet::new()))
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
        assert_eq!(a.allowed(&id("edge-1", 0)), Allowed::All);
        assert!(a.allowed(&id("edge-2", 0)).permits(&ski));
        assert!(!a.allowed(&id("edge-2", 0)).permits(&Ski([0; 20])));
        assert!(!a.allowed(&id("stranger", 0)).permits(&ski));
        // The SPKI rule wins over edge-1's CN rule.
        assert!(!a.allowed(&id("edge-1", 0x11)).permits(&Ski([0; 20])));
        assert_eq!(Authz::open().allowed(&id("anyone", 0)), Allowed::All);
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
}
