//! One rule: which connections it matches and what it decides for them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::profile::Profile;

/// Which server names a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SniMatch {
    /// One name (lowercase).
    Exact(String),
    /// `*.domain`: exactly one label before `domain` (stored without `*.`).
    Wildcard(String),
    /// `*`: every connection, with or without a server name (the default).
    Any,
}

/// An optional constraint on the local (listening) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMatch {
    /// The local address, if it matters.
    pub ip: Option<IpAddr>,
    /// The local port, if it matters.
    pub port: Option<u16>,
}

impl LocalMatch {
    /// Whether a connection on `local` matches (no local address: never).
    pub fn matches(&self, local: Option<SocketAddr>) -> bool {
        match local {
            None => false,
            Some(a) => {
                self.ip.is_none_or(|ip| ip == a.ip()) && self.port.is_none_or(|p| p == a.port())
            }
        }
    }
}

/// Client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientCert {
    /// Do not ask.
    #[default]
    None,
    /// Ask; a client without one continues; one that does not verify fails.
    Request,
    /// A verified client certificate is required.
    Require,
}

/// What a rule negotiates; rules with equal settings share one OpenSSL context.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Settings {
    /// ALPN protocols in server preference order (empty: no ALPN).
    pub alpn: Vec<Vec<u8>>,
    /// No overlap with the client's offer goes on without ALPN instead of ending the handshake
    /// with `no_application_protocol` (alert 120, RFC 7301 §3.2: the default, as in Traffic
    /// Server, HAProxy and nginx).
    pub alpn_fallback: bool,
    /// NPN protocols advertised to TLS 1.2 clients that ask.
    pub npn: Vec<Vec<u8>>,
    /// TLS versions as OpenSSL numbers (0x0303 = TLS 1.2, 0x0304 = TLS 1.3).
    pub min_version: Option<u16>,
    /// The highest TLS version (OpenSSL number).
    pub max_version: Option<u16>,
    /// TLS 1.2 cipher list (OpenSSL syntax).
    pub ciphers: Option<String>,
    /// TLS 1.3 suites.
    pub ciphersuites: Option<String>,
    /// Key exchange groups, e.g. `X25519:P-256`.
    pub groups: Option<String>,
    /// Signature algorithms, e.g. `ECDSA+SHA256:RSA-PSS+SHA256`.
    pub sigalgs: Option<String>,
    /// Whether client certificates are asked for or required.
    pub client_cert: ClientCert,
    /// CA bundle client certificates must chain to; its subjects are sent to the client as
    /// the acceptable CA names.
    pub client_ca: Option<PathBuf>,
    /// More CAs to verify client certificates with, never sent as names (crt-list
    /// `ca-verify-file`).
    pub client_ca_verify: Option<PathBuf>,
    /// A hashed directory of CAs (`openssl rehash`) to verify client certificates with, never
    /// sent as names (Traffic Server's `verify_client_ca_certs: {dir: …}`).
    pub client_ca_dir: Option<PathBuf>,
    /// Revocation lists client certificates are checked against, the whole chain (crt-list
    /// `crl-file`).
    pub client_crl: Option<PathBuf>,
    /// Send no CA names in the certificate request (crt-list `no-ca-names`).
    pub no_ca_names: bool,
    /// Signature algorithms asked of client certificates (crt-list `client-sigalgs`).
    pub client_sigalgs: Option<String>,
    /// How many intermediate certificates a client chain may have.
    pub verify_depth: Option<u32>,
    /// Session tickets for this rule (None: the listener's setting).
    pub tickets: Option<bool>,
    /// TLS 1.3 tickets after a full handshake.
    pub tls13_tickets: Option<usize>,
    /// This rule's own ticket keys (nginx's per-`server` `ssl_session_ticket_key`), instead of
    /// the listener's: tickets of its names are sealed and opened with these only.
    pub ticket_keys: Option<TicketKeyFile>,
}

/// A ticket key file and its format (see `edgetls_tickets::format`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TicketKeyFile {
    /// The key file.
    pub path: PathBuf,
    /// Its format.
    pub format: edgetls_tickets::Format,
}

/// A rule of a policy.
#[derive(Debug)]
pub struct Rule {
    /// The server names the rule is for.
    pub sni: SniMatch,
    /// The local address the rule is for, if any.
    pub local: Option<LocalMatch>,
    /// Serve this certificate entry (looked up by this name) instead of the one for the
    /// connection's server name.
    pub certificate: Option<String>,
    /// Do not terminate: pass the connection through to this address.
    pub tunnel: Option<String>,
    /// What it negotiates.
    pub settings: Settings,
    /// Where the rule was written: file and line.
    pub origin: (PathBuf, usize),
    pub(crate) profile: Option<Arc<Profile>>,
}

impl Rule {
    /// A rule for `sni` with `settings`, written at `origin` (file, line).
    pub fn new(sni: SniMatch, settings: Settings, origin: (PathBuf, usize)) -> Rule {
        Rule {
            sni,
            local: None,
            certificate: None,
            tunnel: None,
            settings,
            origin,
            profile: None,
        }
    }

    /// `file:line` of the rule.
    pub fn describe(&self) -> String {
        format!("{}:{}", self.origin.0.display(), self.origin.1)
    }
}
