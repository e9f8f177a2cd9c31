//! Fetching OCSP responses from the responder each certificate names (its Authority Information
//! Access) and fetching them again before they expire: HAProxy's `ocsp-update on`, nginx's
//! `ssl_stapling on`.
//!
//! One background thread does it for the whole store, one request at a time, never on a
//! handshake's path. A response is kept only when it verifies against the issuer and is for the
//! certificate (the same check as a response file, `ocsp.rs`); it is then stapled instead of the
//! response file's, and the entries holding the chain are rebuilt in the shared cache, so the
//! next handshake staples it. The next fetch is due half-way to the response's nextUpdate,
//! within [`UpdateOptions::min_delay`, `max_delay`] (HAProxy's defaults: 5 minutes and 1 hour);
//! after a failure, `min_delay` later, while the last good response goes on being stapled until
//! it expires. Plain HTTP POST (RFC 6960 appendix A), as responders serve.

use crate::ocsp::{self, OcspState};
use crate::snapshot::Snapshot;
use crate::store::CertStore;
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspRequest};
use openssl::x509::X509;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// When and how the responses are fetched.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpdateOptions {
    /// Fetch for chains whose source does not say (a crt-list line's `ocsp-update on|off`
    /// decides for its chains).
    pub default_on: bool,
    /// The shortest time between two fetches for a chain, and the wait after a failure.
    pub min_delay: Duration,
    /// The longest time between two fetches for a chain.
    pub max_delay: Duration,
    /// A fetch (connect, send, answer) that takes longer fails.
    pub timeout: Duration,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            default_on: false,
            min_delay: Duration::from_secs(300),
            max_delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What the updater did since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpdateStats {
    /// Chains it fetches for.
    pub chains: u64,
    /// Fetches that gave a response for the certificate that verified.
    pub fetched: u64,
    /// Fetches that failed (no answer, an error status, a response that did not verify).
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    chains: AtomicU64,
    fetched: AtomicU64,
    failed: AtomicU64,
}

/// The background thread fetching a store's OCSP responses; it stops when this is dropped (or
/// when the store is gone).
#[derive(Debug)]
pub struct OcspUpdater {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl Drop for OcspUpdater {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

impl OcspUpdater {
    /// Starts fetching for the chains of `store`'s current and future snapshots that
    /// `options` (and their sources) enable.
    pub fn spawn(store: &Arc<CertStore>, options: UpdateOptions) -> std::io::Result<OcspUpdater> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut run = Run {
            store: Arc::downgrade(store),
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(options.timeout))
                .http_status_as_error(false)
                .max_redirects(3)
                .build()
                .into(),
            options,
            stop: Arc::clone(&stop),
            counters: Arc::clone(&counters),
            targets: HashMap::new(),
        };
        std::thread::Builder::new()
            .name("edgetls-ocsp".into())
            .spawn(move || run.run())?;
        Ok(OcspUpdater { stop, counters })
    }

    /// What it did so far.
    pub fn stats(&self) -> UpdateStats {
        UpdateStats {
            chains: self.counters.chains.load(Relaxed),
            fetched: self.counters.fetched.load(Relaxed),
            failed: self.counters.failed.load(Relaxed),
        }
    }
}

/// A chain to fetch for.
struct Target {
    path: PathBuf,
    leaf: X509,
    issuer: X509,
    url: String,
    /// The request, DER (the same every time: the certificate's ID, no nonce).
    request: Vec<u8>,
    /// The entries holding the chain (rebuilt when a new response arrives).
    entries: Vec<u64>,
    due: Instant,
}

struct Run {
    store: Weak<CertStore>,
    agent: ureq::Agent,
    options: UpdateOptions,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    /// By the leaf's DER.
    targets: HashMap<Arc<[u8]>, Target>,
}

impl Run {
    fn run(&mut self) {
        let mut seen: Option<Arc<Snapshot>> = None;
        while !self.stop.load(Relaxed) {
            let Some(store) = self.store.upgrade() else {
                return;
            };
            let snapshot = store.snapshot();
            if seen.as_ref().is_none_or(|s| !Arc::ptr_eq(s, &snapshot)) {
                self.retarget(&store, &snapshot);
                seen = Some(snapshot);
            }
            let now = Instant::now();
            let next = self
                .targets
                .iter()
                .min_by_key(|(_, t)| t.due)
                .map(|(k, t)| (Arc::clone(k), t.due));
            match next {
                Some((leaf, due)) if due <= now => self.update(&store, &leaf),
                other => {
                    drop(store);
                    // Wake at least every second to see a reload or a stop.
                    let wait = other.map_or(Duration::from_secs(1), |(_, due)| due - now);
                    std::thread::sleep(wait.min(Duration::from_secs(1)));
                }
            }
        }
    }

    /// Follows a new snapshot: chains it no longer has are dropped (with their fetched
    /// responses), new ones are due now, known ones keep their schedule.
    fn retarget(&mut self, store: &CertStore, snapshot: &Snapshot) {
        let mut old = std::mem::take(&mut self.targets);
        let now = Instant::now();
        for e in snapshot.entries() {
            if !e.spec().ocsp_update.unwrap_or(self.options.default_on) {
                continue;
            }
            for chain in e.chains() {
                let leaf = &chain.certs[0];
                if let Some(t) = self.targets.get_mut(&leaf[..]) {
                    t.entries.push(e.id());
                    continue;
                }
                let target = match old.remove(&leaf[..]) {
                    Some(mut t) => {
                        t.entries = vec![e.id()];
                        t
                    }
                    None => match target(chain) {
                        Ok((leaf, issuer, url, request)) => Target {
                            path: chain.path().to_path_buf(),
                            leaf,
                            issuer,
                            url,
                            request,
                            entries: vec![e.id()],
                            due: now,
                        },
                        Err(why) => {
                            tracing::warn!("{}: OCSP update: {why}", chain.path().display());
                            continue;
                        }
                    },
                };
                self.targets.insert(Arc::clone(leaf), target);
            }
        }
        let targets = &self.targets;
        store.retain_fetched_ocsp(|leaf| targets.contains_key(leaf));
        self.counters.chains.store(targets.len() as u64, Relaxed);
    }

    fn update(&mut self, store: &CertStore, key: &Arc<[u8]>) {
        let Some(t) = self.targets.get_mut(key) else {
            return;
        };
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let checked = fetch(&self.agent, &t.url, &t.request).and_then(|der| {
            let check = ocsp::check(&der, &t.leaf, &t.issuer, unix);
            match &check.state {
                OcspState::Invalid(why) => Err(why.clone()),
                _ => Ok((der, check)),
            }
        });
        let min = self.options.min_delay;
        let max = self.options.max_delay.max(min);
        match checked {
            Ok((der, check)) => {
                self.counters.fetched.fetch_add(1, Relaxed);
                if check.state == OcspState::Revoked {
                    tracing::error!(
                        "{}: the OCSP responder {} says the certificate is REVOKED; the \
                         revocation is stapled as it is: replace this certificate",
                        t.path.display(),
                        t.url
                    );
                } else if check.state != OcspState::Good {
                    tracing::warn!(
                        "{}: the OCSP responder {} says {} (not stapled)",
                        t.path.display(),
                        t.url,
                        check.state
                    );
                }
                let half = check
                    .next_update
                    .map_or(max, |n| Duration::from_secs((n - unix).max(0) as u64 / 2));
                t.due = Instant::now() + half.clamp(min, max);
                store.set_fetched_ocsp(key, Some(Arc::from(der)), &t.entries);
            }
            Err(why) => {
                self.counters.failed.fetch_add(1, Relaxed);
                tracing::warn!(
                    "{}: OCSP update from {}: {why}; next try in {} s",
                    t.path.display(),
                    t.url,
                    min.as_secs()
                );
                t.due = Instant::now() + min;
            }
        }
    }
}

/// The certificate, its issuer, its responder's URL and the request for it.
fn target(chain: &crate::Chain) -> Result<(X509, X509, String, Vec<u8>), String> {
    let leaf = X509::from_der(&chain.certs[0]).map_err(|e| format!("certificate: {e}"))?;
    let issuer = match (&chain.issuer, chain.certs.get(1)) {
        (Some(der), _) | (None, Some(der)) => {
            X509::from_der(der).map_err(|e| format!("issuer: {e}"))?
        }
        (None, None) => {
            return Err(
                "no issuer: the chain has only the leaf and there is no CERT.issuer file".into(),
            );
        }
    };
    let url = leaf
        .ocsp_responders()
        .ok()
        .and_then(|urls| {
            urls.iter()
                .map(|u| u.to_string())
                .find(|u| u.starts_with("http://"))
        })
        .ok_or("the certificate names no http:// OCSP responder (Authority Information Access)")?;
    let id = OcspCertId::from_cert(MessageDigest::sha1(), &leaf, &issuer)
        .map_err(|e| format!("certificate ID: {e}"))?;
    let mut req = OcspRequest::new().map_err(|e| e.to_string())?;
    req.add_id(id).map_err(|e| e.to_string())?;
    let request = req.to_der().map_err(|e| e.to_string())?;
    Ok((leaf, issuer, url, request))
}

/// Responses larger than this are refused (they are a few hundred bytes to a few KiB).
const MAX_RESPONSE: u64 = 64 * 1024;

/// POSTs `request` to `url`; the body of a 200 answer.
fn fetch(agent: &ureq::Agent, url: &str, request: &[u8]) -> Result<Vec<u8>, String> {
    let mut answer = agent
        .post(url)
        .header("Content-Type", "application/ocsp-request")
        .send(request)
        .map_err(|e| e.to_string())?;
    if answer.status() != 200 {
        return Err(format!("HTTP status {}", answer.status().as_u16()));
    }
    answer
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_vec()
        .map_err(|e| e.to_string())
}
