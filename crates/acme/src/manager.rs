//! The renewal schedule: each configured set of names is ordered when it has no certificate
//! (or one that does not name all of the set), and renewed within the window the CA suggests
//! through ACME Renewal Information (RFC 9773) where it offers that, else `renew_fraction`
//! through its certificate's lifetime, moved earlier by a jitter drawn from the set's name (up
//! to 10% of the lifetime) so that certificates issued together are not renewed together.
//! Orders run at most `concurrency` at a time and start no faster than `orders_per_hour`
//! allows; a failed set is retried after 1 min, doubling up to `max_backoff` (±10%), its
//! failure logged at warn with the CA's problem document and counted. A CA's rate-limit answer
//! holds the set until the moment the CA named (up to a week), and holds every new order for
//! up to a minute, so that a limit on the whole account is not met with a herd. The
//! certificate in force serves on throughout: a new one replaces it only once stored whole.

use crate::account;
use crate::ari::{self, Windows};
use crate::challenges::Challenges;
use crate::config::AcmeConfig;
use crate::error::AcmeError;
use crate::metrics::{AcmeMetrics, ResultLabel};
use crate::order;
use crate::storage::{self, bundle_path};
use instant_acme::Account;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Notify, Semaphore};

/// The longest a rate-limit answer holds a set.
const MAX_RATE_LIMIT_HOLD: Duration = Duration::from_secs(7 * 86_400);
/// The longest a rate-limit answer holds every new order.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

/// A number in [0, 1) drawn from `label` (stable across runs of one build).
fn spread(label: &str, salt: u64) -> f64 {
    let mut h = DefaultHasher::new();
    (label, salt).hash(&mut h);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Debug, Default, Clone)]
struct SetState {
    /// Not before this moment (after a failure).
    retry_at: Option<Instant>,
    failures: u32,
    last_error: Option<String>,
    in_flight: bool,
}

/// What `show` reports for one set of names.
#[derive(Debug, Clone)]
pub struct SetStatus {
    /// The set's names.
    pub names: Vec<String>,
    /// Its bundle.
    pub file: PathBuf,
    /// When the stored certificate expires (none stored: `None`).
    pub not_after: Option<SystemTime>,
    /// When it will be renewed.
    pub renew_at: Option<SystemTime>,
    /// Failed orders since the last success.
    pub failures: u32,
    /// Not ordered again before this moment (after a failure or a CA's rate limit).
    pub retry_at: Option<SystemTime>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// An order is running.
    pub in_flight: bool,
}

/// An ACME account and the sets of names it keeps certified.
pub struct Acme {
    account: Account,
    config: AcmeConfig,
    challenges: Arc<Challenges>,
    metrics: AcmeMetrics,
    sets: Mutex<HashMap<String, SetState>>,
    /// Sets taken on after start (certificates obtained on demand), renewed like the
    /// configured ones.
    adopted: Mutex<Vec<Vec<String>>>,
    orders: Arc<Semaphore>,
    /// The earliest moment the next order may start (the per-CA rate).
    next_start: tokio::sync::Mutex<Instant>,
    /// Renewal windows from the CA (RFC 9773).
    windows: Windows,
    /// Bounds the window fetches in flight.
    fetches: Arc<Semaphore>,
    /// Wakes the schedule early (a window arrived).
    wake: Notify,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("account", &self.account.id())
            .field("directory", &self.config.directory)
            .finish_non_exhaustive()
    }
}

impl Acme {
    /// Checks the configuration, prepares the storage directory and opens (or creates) the
    /// account.
    pub async fn start(
        config: AcmeConfig,
        challenges: Arc<Challenges>,
        metrics: AcmeMetrics,
    ) -> Result<Arc<Acme>, AcmeError> {
        config.validate()?;
        storage::prepare(&config.storage)?;
        order::sweep_pending(&config);
        let account = account::open(&config).await?;
        let orders = Arc::new(Semaphore::new(config.concurrency));
        Ok(Arc::new(Acme {
            account,
            challenges,
            metrics,
            sets: Mutex::new(HashMap::new()),
            adopted: Mutex::new(Vec::new()),
            orders,
            next_start: tokio::sync::Mutex::new(Instant::now()),
            windows: Windows::new(),
            fetches: Arc::new(Semaphore::new(ari::FETCHES)),
            wake: Notify::new(),
            config,
        }))
    }

    /// The configuration in force.
    pub fn config(&self) -> &AcmeConfig {
        &self.config
    }

    /// The metrics (register them with [`AcmeMetrics::register`]).
    pub fn metrics(&self) -> &AcmeMetrics {
        &self.metrics
    }

    fn label(names: &[String]) -> String {
        names.join(",")
    }

    /// Orders a certificate for `names` now (bounded by the concurrency and the rate), stores
    /// it, and returns its file.
    pub async fn issue(&self, names: &[String]) -> Result<PathBuf, AcmeError> {
        let label = Self::label(names);
        let _permit = self
            .orders
            .acquire()
            .await
            .map_err(|_| AcmeError::Config("shutting down".into()))?;
        {
            let mut next = self.next_start.lock().await;
            let now = Instant::now();
            if *next > now {
                tokio::time::sleep_until((*next).into()).await;
            }
            let gap = Duration::from_secs_f64(3600.0 / self.config.orders_per_hour);
            *next = Instant::now().max(*next) + gap;
        }
        self.with_set(&label, |s| s.in_flight = true);
        self.metrics.in_flight.inc();
        let started = Instant::now();
        // A renewal names the certificate it replaces, where the CA keeps renewal information.
        let replaces = self
            .windows
            .offered()
            .then(|| storage::validity(&bundle_path(&self.config.storage, names)))
            .and_then(|v| v.ok().flatten())
            .and_then(|v| v.ari_id);
        // A CA that stops answering must not hold an order (and its permit) forever.
        let result = match tokio::time::timeout(
            self.config.order_timeout,
            order::issue(
                &self.account,
                &self.config,
                &self.challenges,
                names,
                replaces.as_deref(),
            ),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(AcmeError::Order {
                names: label.clone(),
                what: format!(
                    "no certificate within {:?} (the CA did not answer in time)",
                    self.config.order_timeout
                ),
            }),
        };
        self.metrics.in_flight.dec();
        let took = started.elapsed();
        match &result {
            Ok(path) => {
                self.metrics.seconds.observe(took.as_secs_f64());
                self.metrics
                    .orders
                    .get_or_create(&ResultLabel { result: "issued" })
                    .inc();
                tracing::info!(names = %label, file = %path.display(), seconds = took.as_secs_f64(), "certificate issued");
                self.with_set(&label, |s| {
                    *s = SetState::default();
                });
            }
            Err(e) => {
                // A rate limit: not before the moment the CA named.
                let held = match e {
                    // (Without a moment from the CA: the back-off, and the whole pause.)
                    AcmeError::RateLimited { until, .. } => Some(
                        until
                            .and_then(|u| u.duration_since(SystemTime::now()).ok())
                            .unwrap_or(RATE_LIMIT_PAUSE)
                            .min(MAX_RATE_LIMIT_HOLD),
                    ),
                    _ => None,
                };
                let result = if held.is_some() {
                    "rate_limited"
                } else {
                    "failed"
                };
                self.metrics
                    .orders
                    .get_or_create(&ResultLabel { result })
                    .inc();
                let max = self.config.max_backoff.as_secs_f64();
                let retry = self.with_set(&label, |s| {
                    s.in_flight = false;
                    s.failures += 1;
                    s.last_error = Some(e.to_string());
                    let base = (60.0 * 2f64.powi(s.failures.min(20) as i32 - 1)).min(max);
                    let wait = (base * (0.9 + 0.2 * spread(&label, u64::from(s.failures))))
                        .max(held.unwrap_or_default().as_secs_f64());
                    s.retry_at = Some(Instant::now() + Duration::from_secs_f64(wait));
                    wait
                });
                if let Some(held) = held {
                    // The limit may be the account's: every new order waits a little.
                    let mut next = self.next_start.lock().await;
                    *next = (*next).max(Instant::now() + held.min(RATE_LIMIT_PAUSE));
                }
                tracing::warn!(names = %label, retry_in_s = retry.round(), "ACME order failed: {e}");
            }
        }
        self.metrics.failing.set(
            self.sets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .filter(|s| s.last_error.is_some())
                .count() as i64,
        );
        result
    }

    fn with_set<T>(&self, label: &str, f: impl FnOnce(&mut SetState) -> T) -> T {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        f(sets.entry(label.to_owned()).or_default())
    }

    /// When `names` should next be ordered: now when it has no (readable) certificate, else
    /// its renewal moment; later when a failure holds it back.
    fn due(&self, names: &[String]) -> (SystemTime, Option<storage::Validity>) {
        let label = Self::label(names);
        let validity = storage::validity(&bundle_path(&self.config.storage, names))
            .ok()
            .flatten();
        // A certificate that does not name every name of the set (one was added) is due now.
        let mut at = match &validity {
            Some(v) if v.covers(names) => v
                .ari_id
                .as_deref()
                .and_then(|id| self.windows.renew_at(&label, id))
                .unwrap_or_else(|| v.renew_at(self.config.renew_fraction, 0.1 * spread(&label, 0))),
            _ => SystemTime::now(),
        };
        let sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(retry) = sets.get(&label).and_then(|s| s.retry_at) {
            let wait = retry.saturating_duration_since(Instant::now());
            at = at.max(SystemTime::now() + wait);
        }
        (at, validity)
    }

    /// Keeps `names` certified from now on, as if configured (a certificate obtained on
    /// demand). A set already known is not added twice.
    pub fn adopt(&self, names: Vec<String>) {
        if self.config.names.contains(&names) {
            return;
        }
        let mut adopted = self.adopted.lock().unwrap_or_else(|p| p.into_inner());
        if !adopted.contains(&names) {
            adopted.push(names);
        }
    }

    /// The configured sets, then the adopted ones.
    pub fn sets(&self) -> Vec<Vec<String>> {
        let adopted = self.adopted.lock().unwrap_or_else(|p| p.into_inner());
        self.config
            .names
            .iter()
            .chain(adopted.iter())
            .cloned()
            .collect()
    }

    /// Each set's certificate, renewal moment and order state.
    pub fn status(&self) -> Vec<SetStatus> {
        self.sets()
            .iter()
            .map(|names| {
                let (renew_at, validity) = self.due(names);
                let label = Self::label(names);
                let s = self.with_set(&label, |s| s.clone());
                SetStatus {
                    names: names.clone(),
                    file: bundle_path(&self.config.storage, names),
                    not_after: validity.as_ref().map(|v| v.not_after),
                    renew_at: validity.as_ref().map(|_| renew_at),
                    failures: s.failures,
                    retry_at: s
                        .retry_at
                        .map(|r| SystemTime::now() + r.saturating_duration_since(Instant::now())),
                    last_error: s.last_error,
                    in_flight: s.in_flight,
                }
            })
            .collect()
    }

    /// Keeps every configured set certified until the task is dropped: orders what is due
    /// (each set in its own task, bounded by the concurrency), then sleeps until the next
    /// moment one falls due (at most a minute, so a removed file is noticed).
    pub async fn run(self: Arc<Self>) {
        loop {
            let now = SystemTime::now();
            let mut next = now + Duration::from_secs(60);
            for names in &self.sets() {
                let label = Self::label(names);
                if self.with_set(&label, |s| s.in_flight) {
                    continue;
                }
                let (at, validity) = self.due(names);
                if let Some(id) = validity.and_then(|v| v.covers(names).then_some(v.ari_id)) {
                    self.fetch_window(&label, id);
                }
                if at <= SystemTime::now() {
                    self.with_set(&label, |s| s.in_flight = true);
                    let me = Arc::clone(&self);
                    let names = names.clone();
                    tokio::spawn(async move {
                        let _ = me.issue(&names).await;
                        me.with_set(&Self::label(&names), |s| s.in_flight = false);
                    });
                } else {
                    next = next.min(at);
                }
            }
            let wait = next
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .max(Duration::from_millis(500));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Fetches set `label`'s renewal window for certificate `id` in the background when the CA
    /// offers ARI and the window is unknown or stale; the schedule wakes when it arrives.
    fn fetch_window(self: &Arc<Self>, label: &str, id: Option<String>) {
        let Some(id) = id else { return };
        if !self.windows.claim_fetch(label, &id) {
            return;
        }
        let me = Arc::clone(self);
        let label = label.to_owned();
        tokio::spawn(async move {
            let Ok(_permit) = me.fetches.acquire().await else {
                return;
            };
            let fetched = ari::fetch(&me.account, &id).await;
            let mut h = DefaultHasher::new();
            id.hash(&mut h);
            let at = me
                .windows
                .record(&label, &id, fetched, spread(&label, h.finish()));
            // The schedule looks again within a minute anyway; sooner when this one is due.
            if at.is_some_and(|at| at <= SystemTime::now() + Duration::from_secs(1)) {
                me.wake.notify_one();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_is_stable_and_in_range() {
        for n in 0..1000 {
            let label = format!("site{n}.test");
            let a = spread(&label, 0);
            assert!((0.0..1.0).contains(&a));
            assert_eq!(a, spread(&label, 0));
        }
        // Spread over the range: the mean of many is near one half.
        let mean: f64 = (0..1000).map(|n| spread(&format!("s{n}"), 0)).sum::<f64>() / 1000.0;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }
}
