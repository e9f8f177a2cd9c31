//! `[acme] on_demand`: a certificate obtained while the first handshake for a new name waits
//! (Caddy's on-demand TLS). Off by default; on, it needs an allow-list — suffixes
//! (`on_demand_suffixes`, checked in the ClientHello at the cost of a few string compares) and/or
//! an `on_demand_ask` URL (`GET URL?domain=NAME`, 200 allows; asked off the handshake's path,
//! its refusals cached for `on_demand_negative_ttl`). Every wait is bounded
//! (`on_demand_wait`), orders are capped (`on_demand_concurrency` in flight,
//! `on_demand_per_minute` started), and a name that cannot have one goes on with the default
//! certificate (or `unrecognized_name` with `strict_sni`). A name refused by the suffixes never
//! leaves the process; one refused by the ask URL never reaches the CA.

use crate::proxy::acme::AcmeState;
use edgetls_policy::OnDemand;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Refused names remembered at most (each ≈ 100 bytes): a flood of new names cannot grow it.
const NEGATIVE_MOST: usize = 10_000;

/// `on_demand_*` settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OnDemandConfig {
    pub(crate) suffixes: Vec<String>,
    pub(crate) ask: Option<String>,
    pub(crate) wait: Duration,
    pub(crate) negative_ttl: Duration,
    pub(crate) per_minute: f64,
    pub(crate) concurrency: usize,
}

/// What on-demand counts (shown in the admin API's `orders` and the log).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) refused: AtomicU64,
    pub(crate) limited: AtomicU64,
    pub(crate) asked: AtomicU64,
    pub(crate) issued: AtomicU64,
    pub(crate) failed: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct Demand {
    config: OnDemandConfig,
    acme: Arc<AcmeState>,
    negative: Arc<Mutex<HashMap<String, Instant>>>,
    in_flight: Arc<AtomicUsize>,
    /// Tokens for new orders, refilled at `per_minute`.
    bucket: Mutex<(f64, Instant)>,
    pub(crate) counts: Arc<Counts>,
    agent: ureq::Agent,
}

impl Demand {
    pub(crate) fn new(config: OnDemandConfig, acme: Arc<AcmeState>) -> Demand {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let burst = config.per_minute.max(1.0);
        Demand {
            config,
            acme,
            negative: Arc::default(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            bucket: Mutex::new((burst, Instant::now())),
            counts: Arc::default(),
            agent,
        }
    }

    fn suffix_allows(&self, name: &str) -> bool {
        self.config.suffixes.iter().any(|s| {
            name == s
                || name
                    .strip_suffix(s.as_str())
                    .is_some_and(|head| head.ends_with('.') && head.len() > 1)
        })
    }

    fn refused_recently(&self, name: &str) -> bool {
        let map = self.negative.lock().unwrap_or_else(|p| p.into_inner());
        map.get(name).is_some_and(|until| *until > Instant::now())
    }

    fn remember_refusal(negative: &Mutex<HashMap<String, Instant>>, name: &str, ttl: Duration) {
        let mut map = negative.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() >= NEGATIVE_MOST {
            map.retain(|_, until| *until > now);
            if map.len() >= NEGATIVE_MOST {
                map.clear();
            }
        }
        map.insert(name.to_owned(), now + ttl);
    }

    /// A token for a new order, if the rate allows one now.
    fn take_token(&self) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let burst = self.config.per_minute.max(1.0);
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * self.config.per_minute / 60.0)
            .min(burst);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }

    fn valid(name: &str) -> bool {
        name.len() <= 253
            && name.contains('.')
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    }
}

/// Releases an order's place when the wait ends, however it ends.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl OnDemand for Demand {
    fn obtain(&self, name: &str) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        // Cheap refusals first: none of these leaves the process.
        let suffix_ok = !self.config.suffixes.is_empty() && self.suffix_allows(name);
        if !Self::valid(name)
            || (self.config.ask.is_none() && !suffix_ok)
            || self.refused_recently(name)
        {
            self.counts.refused.fetch_add(1, Relaxed);
            return None;
        }
        if self.in_flight.load(Relaxed) >= self.config.concurrency || !self.take_token() {
            self.counts.limited.fetch_add(1, Relaxed);
            return None;
        }
        self.in_flight.fetch_add(1, Relaxed);
        let place = Place(Arc::clone(&self.in_flight));
        let name = name.to_owned();
        let ask = (!suffix_ok).then(|| self.config.ask.clone()).flatten();
        let (agent, acme, counts) = (
            self.agent.clone(),
            Arc::clone(&self.acme),
            Arc::clone(&self.counts),
        );
        let negative_ttl = self.config.negative_ttl;
        let negative = Arc::clone(&self.negative);
        let wait = self.config.wait;
        Some(Box::pin(async move {
            let _place = place;
            let work = async {
                if let Some(url) = ask {
                    counts.asked.fetch_add(1, Relaxed);
                    let q = name.clone();
                    let allowed = tokio::task::spawn_blocking(move || {
                        let sep = if url.contains('?') { '&' } else { '?' };
                        agent
                            .get(&format!("{url}{sep}domain={q}"))
                            .call()
                            .map(|r| r.status() == 200)
                            .unwrap_or(false)
                    })
                    .await
                    .unwrap_or(false);
                    if !allowed {
                        counts.refused.fetch_add(1, Relaxed);
                        Demand::remember_refusal(&negative, &name, negative_ttl);
                        return;
                    }
                }
                match acme.obtain(vec![name.clone()]).await {
                    Ok(_) => {
                        counts.issued.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        counts.failed.fetch_add(1, Relaxed);
                        tracing::warn!(name = %name, "on-demand certificate: {e}");
                    }
                }
            };
            if tokio::time::timeout(wait, work).await.is_err() {
                tracing::info!(name = %name, "on-demand certificate not ready within {wait:?}: the handshake goes on without it");
            }
        }))
    }
}
