//! What the client counts, as `prometheus-client` metrics: register them in the application's
//! registry ([`ClientMetrics::register`]) or render them alone ([`ClientMetrics::render`]).

use edgetls_keyless_proto::ErrorCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 15] = [
    50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 200e-3, 500e-3,
    1.0, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

/// The label of a key-server error code: its name (`key_not_found`), or `0xNN`.
pub(crate) fn code_label(code: ErrorCode) -> String {
    code.name()
        .map_or(format!("0x{:02x}", code.0), |n| n.replace(' ', "_"))
}

/// Client counters (cheap to clone: every metric is shared).
#[derive(Debug, Clone)]
pub struct ClientMetrics {
    latency: Histogram,
    /// The histogram's count, readable (the histogram's own is not).
    answered: Counter,
    errors: Family<CodeLabel, Counter>,
    pub(crate) in_flight: Gauge,
    pub(crate) timeouts: Counter,
    pub(crate) no_server: Counter,
    pub(crate) queue_full: Counter,
    pub(crate) retries: Counter,
    pub(crate) reconnects: Counter,
    pub(crate) connect_failures: Counter,
    pub(crate) health_failures: Counter,
    /// Each key server's connections up, and its transitions logged.
    pub(crate) health: std::sync::Arc<crate::health::Health>,
}

impl Default for ClientMetrics {
    fn default() -> Self {
        ClientMetrics {
            latency: Histogram::new(BUCKETS),
            answered: Counter::default(),
            errors: Family::default(),
            in_flight: Gauge::default(),
            timeouts: Counter::default(),
            no_server: Counter::default(),
            queue_full: Counter::default(),
            retries: Counter::default(),
            reconnects: Counter::default(),
            connect_failures: Counter::default(),
            health_failures: Counter::default(),
            health: Default::default(),
        }
    }
}

impl ClientMetrics {
    pub(crate) fn observe(&self, took: Duration) {
        self.latency.observe(took.as_secs_f64());
        self.answered.inc();
    }

    pub(crate) fn server_error(&self, code: ErrorCode) {
        self.errors
            .get_or_create(&CodeLabel {
                code: code_label(code),
            })
            .inc();
    }

    /// Requests that got an answer.
    pub fn answered(&self) -> u64 {
        self.answered.get()
    }

    /// Connections opened again after one failed.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.get()
    }

    /// Requests sent again after their connection failed.
    pub fn retries(&self) -> u64 {
        self.retries.get()
    }

    /// Requests waiting for an answer now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.get().max(0) as u64
    }

    /// Adds every client metric (`keyless_client_*`) to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "keyless_client_latency_seconds",
            "Request latency seen by the client, retries included",
            self.latency.clone(),
        );
        r.register(
            "keyless_client_server_errors",
            "Error answers from key servers, by code",
            self.errors.clone(),
        );
        let counters = [
            (
                "keyless_client_timeouts",
                "Requests that got no answer before their deadline",
                &self.timeouts,
            ),
            (
                "keyless_client_no_server",
                "Requests that found no reachable key server before their deadline",
                &self.no_server,
            ),
            (
                "keyless_client_queue_full",
                "Requests refused because too many were in flight",
                &self.queue_full,
            ),
            (
                "keyless_client_retries",
                "Requests sent again after their connection failed",
                &self.retries,
            ),
            (
                "keyless_client_reconnects",
                "Connections (re)established",
                &self.reconnects,
            ),
            (
                "keyless_client_connect_failures",
                "Connection attempts that failed",
                &self.connect_failures,
            ),
            (
                "keyless_client_health_failures",
                "Health-check pings that went unanswered",
                &self.health_failures,
            ),
        ];
        for (name, help, c) in counters {
            r.register(name, help, c.clone());
        }
        r.register(
            "keyless_client_in_flight",
            "Requests waiting for an answer",
            self.in_flight.clone(),
        );
        r.register(
            "keyless_client_connections_up",
            "Connections to each key server that take requests",
            self.health.up.clone(),
        );
    }

    /// These metrics alone, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}
