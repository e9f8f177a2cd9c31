//! A profile: the OpenSSL context for one distinct set of rule settings (ciphers, suites,
//! signature algorithms, client-certificate CA, ALPN/NPN callbacks, tickets), plus what must be
//! set on each connection because switching contexts does not carry it (versions, verify mode
//! and depth, groups, ticket options).

use crate::alpn;
use crate::rule::{ClientCert, Settings, TicketKeyFile};
use crate::session::SessionCache;
use edgetls_tickets::{FileSource, RingOptions, TicketConfig, TicketKeys};

use openssl::ssl::{
    AlpnError, SslAcceptor, SslAcceptorBuilder, SslContext, SslMethod, SslOptions, SslRef,
    SslVerifyMode, SslVersion,
};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::X509Crl;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;

/// What every profile of a listener shares.
#[derive(Clone, Default)]
pub struct Env {
    /// Ticket keys and the listener-wide ticket settings (None: OpenSSL's defaults).
    pub tickets: Option<(Arc<TicketKeys>, TicketConfig)>,
    /// The listener's session-ID cache (on by default; `sessions: 0` turns it off).
    pub session_cache: SessionCache,
    /// The rings of rules' own ticket key files, kept across policy reloads.
    pub rule_tickets: RuleTickets,
}

/// The ticket key rings of rules that name their own key file (`ticket_key_file`), one per
/// file, kept across reloads so that a key that leaves the file still decrypts for the grace
/// window (as the listener's ring does).
#[derive(Clone, Default)]
pub struct RuleTickets(Arc<Mutex<HashMap<TicketKeyFile, Arc<TicketKeys>>>>);

impl std::fmt::Debug for RuleTickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_list().entries(map.keys().map(|k| &k.path)).finish()
    }
}

impl RuleTickets {
    /// The ring of `file`: made on first use; read again now on later ones (a reload), keeping
    /// the keys in force when the file is unusable — and then the error, for the reload.
    pub(crate) fn ring(&self, file: &TicketKeyFile) -> Result<Arc<TicketKeys>, String> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let describe = |e: edgetls_tickets::TicketError| {
            format!("ticket_key_file {}: {e}", file.path.display())
        };
        if let Some(ring) = map.get(file) {
            ring.refresh().map_err(describe)?;
            return Ok(Arc::clone(ring));
        }
        let ring = Arc::new(
            TicketKeys::new(
                FileSource::new(&file.path, file.format),
                RingOptions::default(),
            )
            .map_err(describe)?,
        );
        map.insert(file.clone(), Arc::clone(&ring));
        Ok(ring)
    }

    /// Every rule's ring, with its file (metrics).
    pub fn rings(&self) -> Vec<(PathBuf, Arc<TicketKeys>)> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(k, v)| (k.path.clone(), Arc::clone(v)))
            .collect()
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("tickets", &self.tickets.as_ref().map(|(_, c)| c))
            .field("session_cache", &self.session_cache)
            .finish()
    }
}

pub(crate) struct Profile {
    pub(crate) ctx: SslContext,
    conn: PerConnection,
}

/// What a context switch does not carry: set on each connection.
struct PerConnection {
    min: Option<SslVersion>,
    max: Option<SslVersion>,
    verify: SslVerifyMode,
    depth: Option<u32>,
    groups: Option<CString>,
    /// What the library may not take from the context on a switch (AWS-LC).
    switch: edgetls_tls::settings::ContextSwitch,
    tickets_off: bool,
    tls13_tickets: Option<usize>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("min", &self.conn.min)
            .field("max", &self.conn.max)
            .field("verify", &self.conn.verify)
            .finish_non_exhaustive()
    }
}

fn version(v: Option<u16>) -> Option<SslVersion> {
    v.map(|v| match v {
        0x0301 => SslVersion::TLS1,
        0x0302 => SslVersion::TLS1_1,
        0x0303 => SslVersion::TLS1_2,
        _ => SslVersion::TLS1_3,
    })
}

impl Profile {
    /// The context for `s`; errors are messages for the rule that asked for it.
    pub(crate) fn build(s: &Settings, env: &Env) -> Result<Profile, String> {
        let (ctx, conn) = Profile::context(s, env)?;
        Ok(Profile { ctx, conn })
    }

    fn context(s: &Settings, env: &Env) -> Result<(SslContext, PerConnection), String> {
        fn ossl(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> String {
            move |e| format!("{what}: {e}")
        }
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
            .map_err(ossl("context"))?;
        if let Some(c) = &s.ciphers {
            b.set_cipher_list(c).map_err(ossl("ciphers"))?;
        }
        if let Some(c) = &s.ciphersuites {
            edgetls_tls::settings::set_ciphersuites(&mut b, c)
                .map_err(|e| format!("ciphersuites: {e}"))?;
        }
        // Checked against the library first: a group it lacks is named (or, marked `?`, left
        // out with a warning), never a failed handshake later.
        let groups = match &s.groups {
            Some(g) => {
                let r = edgetls_tls::groups::resolve(g).map_err(|e| format!("groups: {e}"))?;
                if !r.skipped.is_empty() {
                    tracing::warn!(
                        groups = %g,
                        skipped = %r.skipped.join(":"),
                        "groups the TLS library lacks are left out"
                    );
                }
                b.set_groups_list(&r.list).map_err(ossl("groups"))?;
                Some(CString::new(r.list).map_err(|_| "groups: NUL byte".to_string())?)
            }
            None => None,
        };
        if let Some(a) = &s.sigalgs {
            edgetls_tls::settings::set_sigalgs(&mut b, a).map_err(|e| format!("sigalgs: {e}"))?;
        }
        let (min, max) = (version(s.min_version), version(s.max_version));
        b.set_min_proto_version(min)
            .map_err(ossl("minimum version"))?;
        b.set_max_proto_version(max)
            .map_err(ossl("maximum version"))?;
        let verify = match s.client_cert {
            ClientCert::None => SslVerifyMode::NONE,
            ClientCert::Request => SslVerifyMode::PEER,
            ClientCert::Require => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        };
        client_ca(&mut b, s)?;
        b.set_verify(verify);
        if let Some(d) = s.verify_depth {
            b.set_verify_depth(d);
        }
        if !s.alpn.is_empty() {
            let (server, strict) = (s.alpn.clone(), !s.alpn_fallback);
            b.set_alpn_select_callback(move |_ssl, client| {
                // Nothing may unwind into OpenSSL: a panic ends the handshake with an alert.
                let chosen = std::panic::catch_unwind(|| alpn::select(&server, client).ok());
                match chosen.unwrap_or(None) {
                    Some(Some(p)) => Ok(p),
                    // No common protocol: strict ends with no_application_protocol (alert 120).
                    Some(None) if strict => Err(AlpnError::ALERT_FATAL),
                    Some(None) => Err(AlpnError::NOACK),
                    // A malformed offer (or a panic).
                    None => Err(AlpnError::ALERT_FATAL),
                }
            });
        }
        if !s.npn.is_empty() {
            edgetls_tls::settings::advertise_npn(&mut b, alpn::to_wire(&s.npn))
                .map_err(|e| format!("npn: {e}"))?;
        }
        let tickets_off = s.tickets == Some(false);
        // The rule's own keys, else the listener's.
        let own = match &s.ticket_keys {
            Some(file) => Some(env.rule_tickets.ring(file)?),
            None => None,
        };
        let tickets = match (own, &env.tickets) {
            (Some(keys), Some((_, config))) => Some((keys, config.clone())),
            (Some(keys), None) => Some((keys, TicketConfig::default())),
            (None, Some((keys, config))) => Some((Arc::clone(keys), config.clone())),
            (None, None) => None,
        };
        match tickets {
            Some((keys, mut config)) => {
                config.enabled &= !tickets_off;
                if let Some(n) = s.tls13_tickets {
                    config.tls13_tickets = n;
                }
                // The per-name decision is this profile's; no separate override.
                config.name_override = None;
                edgetls_tickets::install(&mut b, keys, &config)
                    .map_err(|e| format!("tickets: {e}"))?;
            }
            None if tickets_off => {
                b.set_options(SslOptions::NO_TICKET);
            }
            None => {}
        }
        // Staple the OCSP response of the chain the handshake serves, if it has a good one.
        edgetls_certstore::ocsp::enable_stapling(&mut b).map_err(ossl("OCSP stapling"))?;
        Ok((
            b.build().into_context(),
            PerConnection {
                min,
                max,
                verify,
                depth: s.verify_depth,
                groups,
                switch: edgetls_tls::settings::ContextSwitch::new(
                    s.ciphers.as_deref(),
                    s.ciphersuites.as_deref(),
                    s.client_sigalgs.as_deref(),
                )
                .map_err(|e| e.to_string())?,
                tickets_off,
                tls13_tickets: match s.tls13_tickets {
                    Some(n) => {
                        edgetls_tls::settings::check_tls13_tickets_per_connection(n)
                            .map_err(|e| e.to_string())?;
                        Some(n)
                    }
                    None => None,
                },
            },
        ))
    }

    /// Switches `ssl` to this profile: the context, then what the context does not carry.
    pub(crate) fn apply(&self, ssl: &mut SslRef) -> Result<(), openssl::error::ErrorStack> {
        ssl.set_ssl_context(&self.ctx)?;
        self.conn
            .switch
            .apply(ssl)
            .map_err(|_| openssl::error::ErrorStack::get())?;
        ssl.set_min_proto_version(self.conn.min)?;
        ssl.set_max_proto_version(self.conn.max)?;
        ssl.set_verify(self.conn.verify);
        if let Some(d) = self.conn.depth {
            edgetls_tls::settings::set_verify_depth(ssl, d);
        }
        if let Some(g) = &self.conn.groups {
            edgetls_tls::settings::set_groups(ssl, g)
                .map_err(|_| openssl::error::ErrorStack::get())?;
        }
        if self.conn.tickets_off {
            edgetls_tickets::disable_for(ssl).map_err(|_| openssl::error::ErrorStack::get())?;
        } else if let Some(n) = self.conn.tls13_tickets {
            edgetls_tls::settings::set_tls13_tickets(ssl, n)
                .map_err(|_| openssl::error::ErrorStack::get())?;
        }
        Ok(())
    }
}

/// The CAs (and revocation lists) client certificates are verified with, the CA names sent
/// to clients, and the signature algorithms asked of them.
fn client_ca(b: &mut SslAcceptorBuilder, s: &Settings) -> Result<(), String> {
    let ossl = |what: &'static str| move |e: openssl::error::ErrorStack| format!("{what}: {e}");
    let read = |path: &Path| -> Result<Vec<u8>, String> {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
    };
    if let Some(list) = &s.client_sigalgs {
        edgetls_tls::settings::set_client_sigalgs(b, list)
            .map_err(|e| format!("client-sigalgs: {e}"))?;
    }
    if s.client_ca.is_none() && s.client_ca_verify.is_none() && s.client_ca_dir.is_none() {
        return Ok(());
    }
    let mut store = X509StoreBuilder::new().map_err(ossl("store"))?;
    if let Some(dir) = &s.client_ca_dir {
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()));
        }
        let text = dir
            .to_str()
            .ok_or_else(|| format!("{}: not a UTF-8 path", dir.display()))?;
        edgetls_tls::settings::add_hash_dir(&mut store, text)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut names = Stack::new().map_err(ossl("names"))?;
    for (path, named) in [(&s.client_ca, true), (&s.client_ca_verify, false)] {
        let Some(path) = path else { continue };
        let certs =
            X509::stack_from_pem(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no CA certificate in it", path.display()));
        }
        for c in certs {
            if named && !s.no_ca_names {
                names
                    .push(c.subject_name().to_owned().map_err(ossl("name"))?)
                    .map_err(ossl("names"))?;
            }
            store.add_cert(c).map_err(ossl("CA store"))?;
        }
    }
    if let Some(path) = &s.client_crl {
        let pem = read(path)?;
        let crls = crls_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
        if crls.is_empty() {
            return Err(format!("{}: no X509 CRL in it", path.display()));
        }
        for crl in &crls {
            edgetls_tls::settings::add_crl(&mut store, crl)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        // Every certificate of the client's chain, as HAProxy checks it.
        store
            .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
            .map_err(ossl("CRL flags"))?;
    }
    edgetls_tls::settings::set_verify_store(b, store.build())
        .map_err(|e| format!("CA store: {e}"))?;
    if !names.is_empty() {
        b.set_client_ca_list(names);
    }
    Ok(())
}

/// Every `X509 CRL` block of a PEM file.
fn crls_from_pem(pem: &[u8]) -> Result<Vec<X509Crl>, openssl::error::ErrorStack> {
    const END: &[u8] = b"-----END X509 CRL-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(end) = rest.windows(END.len()).position(|w| w == END) {
        let block = &rest[..end + END.len()];
        if let Some(start) = block.windows(10).position(|w| w == b"-----BEGIN") {
            out.push(X509Crl::from_pem(&block[start..])?);
        }
        rest = &rest[end + END.len()..];
    }
    Ok(out)
}
