//! OpenSSL glue: one ClientHello callback that picks the rule and the certificate and applies
//! both to the connection; reload that never replaces a valid policy with an invalid one.

use crate::acme_alpn::Answering;
use crate::error::PolicyError;
use crate::on_demand::AcmeHooks;
use crate::policy::Policy;
use crate::profile::Env;
use crate::rule::Rule;
use crate::session::bind_to_name;
use arc_swap::ArcSwap;
use edgetls_certstore::{CertStore, Selection, Snapshot, select_certificate, tunnel_name};
use edgetls_tls::retry::{self, Pending};
use edgetls_tls::{ClientHello, Next, Reason, local_addr, refuse};
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslAlert, SslContextBuilder, SslRef};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// Where a policy comes from, for reloads.
#[derive(Debug, Clone, Default)]
pub struct PolicySources {
    /// A policy file (TOML, `[[sni]]` rules).
    pub file: Option<PathBuf>,
    /// Also take rules from the crt-list options kept by this certificate store (after the
    /// file's rules).
    pub crt_list: Option<Arc<CertStore>>,
    /// End with a `*` rule with default settings, so every name the certificates serve gets
    /// a decision.
    pub default_rule: bool,
}

/// The policy in force, swapped atomically on reload.
pub struct PolicyStore {
    current: ArcSwap<Policy>,
    sources: PolicySources,
    env: Env,
    reloading: Mutex<()>,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("sources", &self.sources.file)
            .field("rules", &self.current.load().rules().len())
            .finish_non_exhaustive()
    }
}

fn build(sources: &PolicySources, env: &Env) -> Result<Policy, PolicyError> {
    let mut rules = match &sources.file {
        Some(f) => crate::config::load(f)?,
        None => Vec::new(),
    };
    if let Some(store) = &sources.crt_list {
        let snapshot: Arc<Snapshot> = store.snapshot();
        rules.extend(crate::crtlist::rules(&snapshot)?);
    }
    if sources.default_rule {
        rules.push(Rule::new(
            crate::rule::SniMatch::Any,
            crate::rule::Settings::default(),
            (PathBuf::from("<default>"), 0),
        ));
    }
    Policy::build(rules, env)
}

impl PolicyStore {
    /// Loads the policy from `sources`. Without listener-wide ticket keys, the listener gets
    /// random ones of its own (a new key every 12 hours, as OpenSSL's built-in key is random
    /// per process): the ticket callback must be on the listener's context for a rule's own
    /// keys (`ticket_key_file`) to be used, now or after a reload.
    pub fn load(sources: PolicySources, mut env: Env) -> Result<Arc<PolicyStore>, PolicyError> {
        if env.tickets.is_none() {
            let own =
                edgetls_tickets::RandomSchedule::new(12 * 3600, edgetls_tickets::KeySize::Aes256)
                    .and_then(|s| {
                    edgetls_tickets::TicketKeys::new(s, edgetls_tickets::RingOptions::default())
                })?;
            env.tickets = Some((Arc::new(own), edgetls_tickets::TicketConfig::default()));
        }
        let policy = build(&sources, &env)?;
        Ok(Arc::new(PolicyStore {
            current: ArcSwap::from_pointee(policy),
            sources,
            env,
            reloading: Mutex::new(()),
        }))
    }

    /// A store holding `policy` (built by the caller; reloads rebuild from no sources).
    pub fn fixed(policy: Policy, env: Env) -> Arc<PolicyStore> {
        Arc::new(PolicyStore {
            current: ArcSwap::from_pointee(policy),
            sources: PolicySources::default(),
            env,
            reloading: Mutex::new(()),
        })
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Reads the sources again. An invalid policy is reported and the one in force stays.
    pub fn reload(&self) -> Result<(), PolicyError> {
        let _one = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let policy = build(&self.sources, &self.env)?;
        self.current.store(Arc::new(policy));
        Ok(())
    }
}

/// The rule that decided a connection.
#[derive(Debug)]
struct Chosen {
    policy: Arc<Policy>,
    index: usize,
}

fn chosen_index() -> Result<Index<Ssl, Chosen>, openssl::error::ErrorStack> {
    static I: OnceLock<Result<Index<Ssl, Chosen>, openssl::error::ErrorStack>> = OnceLock::new();
    I.get_or_init(Ssl::new_ex_index).clone()
}

/// The rule the ClientHello callback chose for this connection (after it ran), with the
/// policy it belongs to kept alive.
pub fn chosen_rule(ssl: &SslRef) -> Option<(Arc<Policy>, usize)> {
    let c = ssl.ex_data(chosen_index().ok()?)?;
    Some((Arc::clone(&c.policy), c.index))
}

impl Policy {
    /// The rule at `index` (as returned by [`chosen_rule`]).
    pub fn rule(&self, index: usize) -> Option<&Rule> {
        self.rules().get(index)
    }
}

/// Makes `base` (the listener's context, which connections start on) decide each connection by
/// `policy` at its ClientHello: the rule for its server name and local address (stored by the
/// server with `edgetls_tls::set_local_addr`), that rule's context (ciphers, suites,
/// signature algorithms, client CA, ALPN/NPN, tickets) and per-connection settings (versions,
/// verify mode and depth, groups, tickets), and — with `certs` — the certificate entry for the
/// rule's `certificate` name or the server name. No rule, or a tunnel rule, ends the handshake
/// with `unrecognized_name`. Do not also set a server-name callback or a ticket name override.
pub fn install(
    base: &mut SslContextBuilder,
    policy: Arc<PolicyStore>,
    certs: Option<Arc<CertStore>>,
) -> Result<(), PolicyError> {
    install_with_acme(base, policy, certs, AcmeHooks::default())
}

/// [`install`], and TLS-ALPN-01 validations answered ahead of the rules: a ClientHello that
/// offers `acme-tls/1` for a name `answers` has a validation pending for gets that
/// validation's certificate and `acme-tls/1` (RFC 8737); the server closes such a connection
/// after the handshake.
///
/// With `hooks.on_demand`, a connection for a name no certificate names waits (once) for the
/// certificate it obtains, then is decided as usual.
pub fn install_with_acme(
    base: &mut SslContextBuilder,
    policy: Arc<PolicyStore>,
    certs: Option<Arc<CertStore>>,
    hooks: AcmeHooks,
) -> Result<(), PolicyError> {
    let answering = hooks.answers.map(Answering::new).transpose()?;
    let on_demand = hooks.on_demand;
    // Ticket callbacks run on the context a connection started on: give it the keys too.
    if let Some((keys, config)) = &policy.env.tickets {
        let mut config = config.clone();
        config.name_override = None;
        edgetls_tickets::install(base, Arc::clone(keys), &config)?;
    }
    // After the tickets: the session cache is the listener's own setting.
    crate::session::configure(base, &policy.env.session_cache);
    let index = chosen_index()?;
    edgetls_tls::on_client_hello(base, move |ssl| {
        let sni = ClientHello::of(ssl).server_name();
        if let Some(answered) = answering
            .as_ref()
            .and_then(|a| a.answer(ssl, sni.as_deref()))
        {
            return match answered {
                Ok(()) => Ok(Next::Continue),
                Err(e) => {
                    let detail = format!("answering a TLS-ALPN-01 validation: {e}");
                    Err(refuse(
                        ssl,
                        SslAlert::INTERNAL_ERROR,
                        Reason::Internal,
                        detail,
                    ))
                }
            };
        }
        let local = local_addr(ssl);
        if let (Some(od), Some(c)) = (&on_demand, &certs) {
            if crate::on_demand::maybe_wait(od.as_ref(), c, ssl, sni.as_deref(), local).is_some() {
                return Ok(Next::Retry);
            }
        }
        let policy = policy.current();
        match decide(&policy, certs.as_ref(), ssl, sni.as_deref(), local)? {
            Decision::Decided(i) => {
                ssl.set_ex_data(index, Chosen { policy, index: i });
                Ok(Next::Continue)
            }
            // The driver builds what is missing off this stack and calls the handshake
            // again, which runs this hook again.
            Decision::Wait(work) => retry::defer(ssl, work).map_err(|_| {
                let detail = "the certificate must be built but the driver cannot wait";
                refuse(ssl, SslAlert::INTERNAL_ERROR, Reason::Internal, detail)
            }),
        }
    });
    Ok(())
}

/// What [`decide`] concluded.
#[derive(Debug)]
#[must_use]
pub enum Decision {
    /// The connection has its rule's settings and certificates; the rule's index.
    Decided(usize),
    /// The certificates must be built first (only when the connection's driver runs deferred
    /// work, `edgetls_tls::retry`): hand this to `edgetls_tls::retry::defer` and return its
    /// answer; the decision is made again when the handshake resumes.
    Wait(Pending),
}

/// The ClientHello decision for a connection asking for `sni` on `local`: the rule, its
/// context and per-connection settings, and (with `certs`) the certificate. Returns the
/// [`Decision`]. For servers that run their own ClientHello callback ([`install`] does this for you)
/// and for measuring the decision on its own.
///
/// The connection is switched to the rule's context (one per distinct settings, built at load:
/// ≈ 0.3 µs), then given the entry's certificates and keys from the store's shared cache
/// (≈ 1.2 µs per chain). Nothing here reads a file or builds a context, whatever the name: a
/// handshake for any of 100,000 names costs what one for a hot name costs, once the entry's
/// OpenSSL objects are in the cache (built on first use, or at load with
/// `CertStore::prepare_all`).
pub fn decide(
    policy: &Policy,
    certs: Option<&Arc<CertStore>>,
    ssl: &mut SslRef,
    sni: Option<&str>,
    local: Option<std::net::SocketAddr>,
) -> Result<Decision, SslAlert> {
    let Some(i) = policy.find_index(sni, local) else {
        return Err(refuse(
            ssl,
            SslAlert::UNRECOGNIZED_NAME,
            Reason::UnrecognizedName,
            format!("no policy rule for {}", sni.unwrap_or("<no server name>")),
        ));
    };
    let rule = &policy.rules()[i];
    if rule.tunnel.is_some() {
        return Err(tunnel_name(ssl, sni));
    }
    let where_ = || format!("rule at {}", rule.describe());
    let Some(profile) = &rule.profile else {
        let detail = format!("{} has no settings profile", where_());
        return Err(refuse(
            ssl,
            SslAlert::INTERNAL_ERROR,
            Reason::Internal,
            detail,
        ));
    };
    // The certificates are chosen first: if they must be built, the handshake waits with the
    // connection untouched. (OpenSSL runs the ClientHello callback of the connection's context
    // again on resumption, so the switch to the rule's context must not have happened yet.)
    let certificate = match certs {
        Some(certs) => {
            let name = rule.certificate.as_deref().or(sni);
            match select_certificate(certs, ssl, name, local)? {
                Selection::Ready(ready) => Some(ready),
                Selection::Wait(work) => return Ok(Decision::Wait(work)),
            }
        }
        None => None,
    };
    // The session is bound to the name asked for, after the switch (which copies the
    // context's session-ID context).
    if let Err(e) = profile.apply(ssl).and_then(|()| bind_to_name(ssl, sni)) {
        let detail = format!("{}: applying its settings: {e}", where_());
        return Err(refuse(
            ssl,
            SslAlert::INTERNAL_ERROR,
            Reason::SettingsUnusable,
            detail,
        ));
    }
    // After the switch, which replaces the connection's certificates with the context's.
    if let Some(ready) = certificate {
        ready.apply(ssl)?;
    }
    Ok(Decision::Decided(i))
}
