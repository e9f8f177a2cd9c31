//! The proxy's metrics (`prometheus-client`): counters updated on the connection path, and the
//! values read at scrape time (connections, certificates, tickets, remote keys, session cache).
//! Served over HTTP by `edgetls_keyserver::serve_metrics`.

use edgetls_engine::Failure;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeMetric, LabelSetEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// The labels of `edgetls_handshakes_total`: completed handshakes by version and kind,
/// failures by reason, and timeouts.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Handshake {
    Ok {
        version: &'static str,
        kind: &'static str,
    },
    Failed(&'static str),
    Timeout,
}

impl EncodeLabelSet for Handshake {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let mut label = |k: &str, v: &str| EncodeLabel::encode(&(k, v), encoder.encode_label());
        match self {
            Handshake::Ok { version, kind } => {
                label("result", "ok")?;
                label("version", version)?;
                label("kind", kind)
            }
            Handshake::Failed(reason) => {
                label("result", "failed")?;
                label("reason", reason)
            }
            Handshake::Timeout => label("result", "timeout"),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Alpn {
    alpn: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Group {
    group: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Key {
    key: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: &'static str,
}

/// Counters of the connection path.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    handshakes: Family<Handshake, Counter>,
    alpn: Family<Alpn, Counter>,
    group: Family<Group, Counter>,
    key: Family<Key, Counter>,
    pub(crate) tunnels: Counter,
    pub(crate) no_route: Counter,
    pub(crate) origin_failures: Counter,
    reloads: Family<Outcome, Counter>,
    proxy_protocol: Family<Outcome, Counter>,
}

impl Metrics {
    /// Counts a completed handshake.
    pub(crate) fn handshake(&self, ssl: &openssl::ssl::SslRef) {
        let version = if ssl.version2() == Some(openssl::ssl::SslVersion::TLS1_3) {
            "TLSv1.3"
        } else {
            "TLSv1.2"
        };
        let kind = if ssl.session_reused() {
            "resumed"
        } else {
            "full"
        };
        self.handshakes
            .get_or_create(&Handshake::Ok { version, kind })
            .inc();
        let alpn = match ssl.selected_alpn_protocol() {
            Some(b"h2") => "h2",
            Some(b"http/1.1") => "http/1.1",
            Some(_) => "other",
            None => "none",
        };
        self.alpn.get_or_create(&Alpn { alpn }).inc();
        let group = edgetls_tls::groups::negotiated(ssl);
        self.group.get_or_create(&Group { group }).inc();
        let key = match ssl
            .certificate()
            .and_then(|c| c.public_key().ok())
            .map(|k| k.id())
        {
            Some(openssl::pkey::Id::RSA) => "rsa",
            Some(openssl::pkey::Id::EC) => "ecdsa",
            _ => "other",
        };
        self.key.get_or_create(&Key { key }).inc();
    }

    /// Counts a failed handshake by its reason.
    pub(crate) fn failed(&self, reason: Failure) {
        self.handshakes
            .get_or_create(&Handshake::Failed(reason.as_str()))
            .inc();
    }

    /// Counts a handshake given up at its deadline.
    pub(crate) fn timeout(&self) {
        self.handshakes.get_or_create(&Handshake::Timeout).inc();
    }

    /// Counts a PROXY header: `accepted`, `missing` (from a load balancer), `invalid`, or
    /// `refused` (from an address not in `proxy_protocol_from`).
    pub(crate) fn proxy_protocol(&self, result: &'static str) {
        self.proxy_protocol.get_or_create(&Outcome { result }).inc();
    }

    pub(crate) fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&Outcome { result }).inc();
    }

    /// Completed handshakes: (full, resumed).
    fn completed(&self) -> (u64, u64) {
        let mut sums = (0, 0);
        for version in ["TLSv1.2", "TLSv1.3"] {
            for (kind, sum) in [("full", &mut sums.0), ("resumed", &mut sums.1)] {
                *sum += self
                    .handshakes
                    .get_or_create(&Handshake::Ok { version, kind })
                    .get();
            }
        }
        sums
    }
}

/// Every metric of the proxy (and of its keyless client) in one registry.
pub(crate) fn registry(shared: &Arc<super::Shared>) -> Registry {
    let mut r = Registry::default();
    let m = &shared.metrics;
    // Every series an operator alerts on exists from the start, at zero.
    for version in ["TLSv1.2", "TLSv1.3"] {
        for kind in ["full", "resumed"] {
            let _ = m.handshakes.get_or_create(&Handshake::Ok { version, kind });
        }
    }
    for reason in Failure::ALL {
        let _ = m
            .handshakes
            .get_or_create(&Handshake::Failed(reason.as_str()));
    }
    let _ = m.handshakes.get_or_create(&Handshake::Timeout);
    for result in ["ok", "failed"] {
        let _ = m.reloads.get_or_create(&Outcome { result });
    }
    r.register(
        "edgetls_handshakes",
        "TLS handshakes by result: completed by version and full/resumed, failed by reason, timed out",
        m.handshakes.clone(),
    );
    r.register(
        "edgetls_handshakes_alpn",
        "Completed handshakes by negotiated ALPN",
        m.alpn.clone(),
    );
    r.register(
        "edgetls_handshakes_group",
        "Completed handshakes by negotiated key-exchange group (none: resumed without one)",
        m.group.clone(),
    );
    r.register(
        "edgetls_handshakes_key",
        "Completed handshakes by the served key's type",
        m.key.clone(),
    );
    r.register(
        "edgetls_tunnels",
        "Connections passed through untouched",
        m.tunnels.clone(),
    );
    r.register(
        "edgetls_no_route",
        "Handshakes with no route to an origin",
        m.no_route.clone(),
    );
    r.register(
        "edgetls_origin_failures",
        "Failed origin connections",
        m.origin_failures.clone(),
    );
    r.register("edgetls_reloads", "Reloads by result", m.reloads.clone());
    r.register(
        "edgetls_proxy_protocol_headers",
        "PROXY protocol headers by result (accepted, missing, invalid, refused)",
        m.proxy_protocol.clone(),
    );
    r.register_collector(Box::new(AtScrape(Arc::clone(shared))));
    if let Some(k) = &shared.keyless {
        k.metrics().register(&mut r);
    }
    if let Some(a) = &shared.acme {
        a.metrics.register(&mut r);
    }
    r
}

/// The values read when scraped.
struct AtScrape(Arc<super::Shared>);

impl std::fmt::Debug for AtScrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtScrape")
    }
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

/// A counter family with one label whose series are given.
fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    series: &[(&str, u64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in series {
        ConstCounter::new(*n).encode(m.encode_family(&[(label, *value)])?)?;
    }
    Ok(())
}

impl Collector for AtScrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shared = &self.0;
        let (full, resumed) = shared.metrics.completed();
        let ratio = if full + resumed == 0 {
            0.0
        } else {
            resumed as f64 / (full + resumed) as f64
        };
        gauge(
            &mut e,
            "edgetls_resumption_ratio",
            "Resumed share of completed handshakes since start",
            ratio,
        )?;
        gauge(
            &mut e,
            "edgetls_connections_open",
            "Client connections open",
            shared.active.load(Relaxed) as f64,
        )?;
        let snap = shared.certs.snapshot();
        gauge(
            &mut e,
            "edgetls_certificates_loaded",
            "Certificate entries served",
            snap.entries().len() as f64,
        )?;
        gauge(
            &mut e,
            "edgetls_certificate_problems",
            "Configured certificate entries not served as configured: failed to load, or serving their previous version because their files are broken now",
            snap.troubled() as f64,
        )?;
        if let Some(t) = snap.entries().iter().filter_map(|e| e.not_after()).min() {
            gauge(
                &mut e,
                "edgetls_certificate_nearest_expiry_seconds",
                "Unix time of the nearest certificate expiry",
                t as f64,
            )?;
        }
        let ocsp = shared.certs.ocsp_summary();
        let mut m = e.encode_descriptor(
            "edgetls_ocsp_responses",
            "Chains with an OCSP response (a file or fetched), by its state (only good ones are stapled)",
            None,
            MetricType::Gauge,
        )?;
        for (state, n) in &ocsp.by_state {
            ConstGauge::new(*n as f64).encode(m.encode_family(&[("state", *state)])?)?;
        }
        if let Some(t) = ocsp.earliest_next_update {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            gauge(
                &mut e,
                "edgetls_ocsp_next_update_seconds",
                "Seconds until the earliest nextUpdate of the stapled OCSP responses",
                (t - now) as f64,
            )?;
        }
        if let Some(u) = shared.ocsp.get().map(|u| u.stats()) {
            gauge(
                &mut e,
                "edgetls_ocsp_update_chains",
                "Chains whose OCSP responses are fetched from their responders",
                u.chains as f64,
            )?;
            counters(
                &mut e,
                "edgetls_ocsp_updates",
                "OCSP responses fetched from responders, by whether a usable one came back",
                "result",
                &[("ok", u.fetched), ("failed", u.failed)],
            )?;
        }
        let prepared = shared.certs.cache_stats();
        counters(
            &mut e,
            "edgetls_certificate_cache_lookups",
            "Certificate entries' OpenSSL objects asked for, by whether they were cached",
            "result",
            &[("hit", prepared.hits), ("miss", prepared.misses)],
        )?;
        gauge(
            &mut e,
            "edgetls_async_job_stack_deepest_bytes",
            "The most any OpenSSL ASYNC job stack has used (of 262144 guarded bytes; -1: not guarded; 0 on AWS-LC, which has no jobs)",
            match edgetls_tls::job_stack::installed() {
                true => edgetls_tls::job_stack::deepest_use().unwrap_or(0) as f64,
                false if !edgetls_tls::library::HAS_ASYNC_JOBS => 0.0,
                false => -1.0,
            },
        )?;
        counter(
            &mut e,
            "edgetls_certificate_cache_built_in_async_job",
            "Entries built on an OpenSSL ASYNC job's stack (expected 0: misses are built by the driver)",
            prepared.built_in_async_job,
        )?;
        counter(
            &mut e,
            "edgetls_certificate_cache_evicted",
            "Entries dropped from the cache to stay within its budget",
            prepared.evicted,
        )?;
        gauge(
            &mut e,
            "edgetls_certificate_cache_entries",
            "Entries whose OpenSSL objects are cached",
            prepared.entries as f64,
        )?;
        gauge(
            &mut e,
            "edgetls_certificate_cache_bytes",
            "Estimated memory of the cached OpenSSL objects",
            prepared.bytes as f64,
        )?;
        if let Some(t) = &shared.tickets {
            let tc = t.counters();
            counters(
                &mut e,
                "edgetls_tickets",
                "Session tickets by outcome",
                "outcome",
                &[
                    ("issued", tc.issued.load(Relaxed)),
                    ("resumed", tc.resumed.load(Relaxed)),
                    ("renewed", tc.renewed.load(Relaxed)),
                    ("unknown_key", tc.unknown_key.load(Relaxed)),
                    ("decrypt_failed", tc.decrypt_failures()),
                    ("failed", tc.failed.load(Relaxed)),
                ],
            )?;
        }
        let cache = edgetls_policy::session_cache_stats(&shared.base);
        gauge(
            &mut e,
            "edgetls_session_cache_sessions",
            "Sessions in the session-ID cache",
            cache.sessions as f64,
        )?;
        counters(
            &mut e,
            "edgetls_session_cache_lookups",
            "Session IDs offered by clients, by what the cache had",
            "result",
            &[
                ("hit", cache.hits),
                ("miss", cache.misses),
                ("expired", cache.timeouts),
            ],
        )?;
        counter(
            &mut e,
            "edgetls_session_cache_evicted",
            "Sessions evicted because the cache was full",
            cache.evicted,
        )?;
        let engine = edgetls_engine::stats();
        counters(
            &mut e,
            "edgetls_remote_key_operations",
            "Remote private-key operations by how the handshake waited",
            "mode",
            &[
                ("blocking", engine.blocking.load(Relaxed)),
                ("async", engine.paused.load(Relaxed)),
            ],
        )?;
        counter(
            &mut e,
            "edgetls_remote_key_failures",
            "Remote private-key operations that failed",
            engine.failed.load(Relaxed),
        )?;
        gauge(
            &mut e,
            "edgetls_remote_key_waiting",
            "Handshakes waiting for a remote key now",
            engine.waiting.load(Relaxed) as f64,
        )?;
        gauge(
            &mut e,
            "edgetls_remote_key_wakers",
            "Connections holding a remote-key wake-up descriptor now",
            engine.live_wakers.load(Relaxed) as f64,
        )?;
        Ok(())
    }
}
