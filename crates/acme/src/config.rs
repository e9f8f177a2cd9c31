//! What the crate is told: the CA, the challenge, the names, where certificates go.

use crate::error::AcmeError;
use std::path::PathBuf;
use std::time::Duration;

/// How names are proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// TLS-ALPN-01 (RFC 8737), answered by the TLS server on port 443 through the
    /// [`Challenges`](crate::Challenges) registry.
    TlsAlpn01,
    /// HTTP-01, answered on port 80 by a plain listener that consults the registry.
    Http01,
    /// DNS-01: `hook set NAME VALUE` before the CA is told to validate, `hook clear NAME
    /// VALUE` after. `NAME` is the `_acme-challenge.` record's owner name.
    Dns01 {
        /// The command run.
        hook: PathBuf,
    },
}

impl Challenge {
    /// `tls-alpn-01`, `http-01`, `dns-01` (with a hook).
    pub fn parse(name: &str, hook: Option<PathBuf>) -> Result<Challenge, AcmeError> {
        match (name, hook) {
            ("tls-alpn-01", _) => Ok(Challenge::TlsAlpn01),
            ("http-01", _) => Ok(Challenge::Http01),
            ("dns-01", Some(hook)) => Ok(Challenge::Dns01 { hook }),
            ("dns-01", None) => Err(AcmeError::Config(
                "challenge = \"dns-01\" needs dns_hook (a command run as `hook set|clear NAME VALUE`)".into(),
            )),
            (other, _) => Err(AcmeError::Config(format!(
                "challenge = {other:?}: expected \"tls-alpn-01\", \"http-01\" or \"dns-01\""
            ))),
        }
    }
}

/// The key type of issued certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    /// ECDSA P-256 (the default).
    #[default]
    EcdsaP256,
    /// RSA, 2048 bits.
    Rsa2048,
}

/// ACME settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeConfig {
    /// The CA's directory URL.
    pub directory: String,
    /// Trust for a private CA's API (PEM, one root), e.g. pebble's.
    pub ca_bundle: Option<PathBuf>,
    /// Account contacts (`mailto:`).
    pub contact: Vec<String>,
    /// How names are proven.
    pub challenge: Challenge,
    /// Sets of names, one certificate each (the first name names the file).
    pub names: Vec<Vec<String>>,
    /// Where certificates, keys, the account and pending orders are kept.
    pub storage: PathBuf,
    /// The key type of issued certificates.
    pub key_type: KeyType,
    /// External account binding: key id and the decoded HMAC key.
    pub eab: Option<(String, Vec<u8>)>,
    /// Orders in flight at most.
    pub concurrency: usize,
    /// New orders started per hour at most (a CA's rate limit: Let's Encrypt allows 300 new
    /// orders per account per 3 hours by default).
    pub orders_per_hour: f64,
    /// Renew this far through a certificate's lifetime (without ARI).
    pub renew_fraction: f64,
    /// The longest wait between retries of a failing order.
    pub max_backoff: Duration,
    /// How long one order may take, challenges included.
    pub order_timeout: Duration,
    /// Revoke a certificate (reason: superseded) once its successor is stored.
    pub revoke_replaced: bool,
}

impl AcmeConfig {
    /// Defaults for everything but the CA, the names and the storage.
    pub fn new(directory: impl Into<String>, storage: impl Into<PathBuf>) -> AcmeConfig {
        AcmeConfig {
            directory: directory.into(),
            ca_bundle: None,
            contact: Vec::new(),
            challenge: Challenge::TlsAlpn01,
            names: Vec::new(),
            storage: storage.into(),
            key_type: KeyType::EcdsaP256,
            eab: None,
            concurrency: 4,
            orders_per_hour: 100.0,
            renew_fraction: 2.0 / 3.0,
            max_backoff: Duration::from_secs(3600),
            order_timeout: Duration::from_secs(120),
            revoke_replaced: false,
        }
    }

    /// Checks what can be checked before talking to the CA: names are host names (a wildcard
    /// only with DNS-01), no name twice.
    pub fn validate(&self) -> Result<(), AcmeError> {
        let mut seen = std::collections::HashSet::new();
        for set in &self.names {
            if set.is_empty() {
                return Err(AcmeError::Config("an empty set of names".into()));
            }
            for name in set {
                let bare = name.strip_prefix("*.").unwrap_or(name);
                let ok = !bare.is_empty()
                    && bare.len() <= 253
                    && bare.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if !ok {
                    return Err(AcmeError::Config(format!("{name:?} is not a host name")));
                }
                if name.starts_with("*.") && !matches!(self.challenge, Challenge::Dns01 { .. }) {
                    return Err(AcmeError::Config(format!(
                        "{name}: a wildcard can only be proven with dns-01"
                    )));
                }
                if !seen.insert(name.to_ascii_lowercase()) {
                    return Err(AcmeError::Config(format!("{name} is named twice")));
                }
            }
        }
        if self.orders_per_hour.is_nan() || self.orders_per_hour <= 0.0 {
            return Err(AcmeError::Config("orders_per_hour must be above 0".into()));
        }
        if self.concurrency == 0 {
            return Err(AcmeError::Config("concurrency must be at least 1".into()));
        }
        Ok(())
    }
}

/// Sets of names from a names file: one set per line (`a.test` or `a.test,www.a.test`), `#`
/// comments and blank lines skipped.
pub fn parse_names(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split(',')
                .map(|n| n.trim().to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_files_are_sets_per_line() {
        let sets = parse_names("# sites\nA.test, www.a.test\n\nb.test # one\n");
        assert_eq!(sets, [vec!["a.test", "www.a.test"], vec!["b.test"]]);
    }

    #[test]
    fn bad_names_and_wildcards_without_dns_are_refused() {
        let mut c = AcmeConfig::new("https://ca.test/dir", "/tmp/x");
        c.names = vec![vec!["bad name.test".into()]];
        assert!(c.validate().is_err());
        c.names = vec![vec!["*.a.test".into()]];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("dns-01"), "{e}");
        c.challenge = Challenge::Dns01 {
            hook: "/bin/true".into(),
        };
        c.validate().unwrap();
        c.names = vec![vec!["a.test".into()], vec!["A.test".into()]];
        assert!(c.validate().unwrap_err().to_string().contains("twice"));
    }
}
