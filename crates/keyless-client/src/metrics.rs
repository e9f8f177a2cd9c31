//! What the client counts, in the Prometheus text format.

use edgetls_keyless_proto::ErrorCode;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const BUCKETS_US: [u64; 15] = [
    50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
    1_000_000, 5_000_000,
];

/// Client counters; lock-free.
#[derive(Debug)]
pub struct ClientMetrics {
    latency: [AtomicU64; BUCKETS_US.len() + 1],
    latency_sum_us: AtomicU64,
    errors: [AtomicU64; 256],
    pub(crate) in_flight: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) no_server: AtomicU64,
    pub(crate) queue_full: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) health_failures: AtomicU64,
}

impl Default for ClientMetrics {
    fn default() -> Self {
        ClientMetrics {
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_sum_us: AtomicU64::new(0),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            in_flight: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            no_server: AtomicU64::new(0),
            queue_full: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            health_failures: AtomicU64::new(0),
        }
    }
}

impl ClientMetrics {
    pub(crate) fn observe(&self, took: Duration) {
        let us = took.as_micros().min(u128::from(u64::MAX)) as u64;
        let i = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        self.latency[i].fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(us, Relaxed);
    }

    pub(crate) fn server_error(&self, code: ErrorCode) {
        self.errors[usize::from(code.0)].fetch_add(1, Relaxed);
    }

    /// Answered requests, by how many ended in each state.
    pub fn answered(&self) -> u64 {
        self.latency.iter().map(|c| c.load(Relaxed)).sum()
    }

    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Relaxed)
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(Relaxed)
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP keyless_client_latency_seconds Request latency seen by the client, retries included.\n# TYPE keyless_client_latency_seconds histogram\n",
        );
        let mut cumulative = 0;
        for (i, c) in self.latency.iter().enumerate() {
            cumulative += c.load(Relaxed);
            let le = BUCKETS_US
                .get(i)
                .map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(
                out,
                "keyless_client_latency_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "keyless_client_latency_seconds_sum {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "keyless_client_latency_seconds_count {cumulative}");
        let _ = writeln!(
            out,
            "# HELP keyless_client_server_errors_total Error answers from key servers, by code.\n# TYPE keyless_client_server_errors_total counter"
        );
        for code in 0..=255u8 {
            let n = self.errors[usize::from(code)].load(Relaxed);
            if n > 0 {
                let name = ErrorCode(code)
                    .name()
                    .map_or(format!("0x{code:02x}"), |n| n.replace(' ', "_"));
                let _ = writeln!(
                    out,
                    "keyless_client_server_errors_total{{code=\"{name}\"}} {n}"
                );
            }
        }
        let counters = [
            (
                "keyless_client_timeouts_total",
                "Requests that got no answer before their deadline.",
                &self.timeouts,
            ),
            (
                "keyless_client_no_server_total",
                "Requests that found no reachable key server before their deadline.",
                &self.no_server,
            ),
            (
                "keyless_client_queue_full_total",
                "Requests refused because too many were in flight.",
                &self.queue_full,
            ),
            (
                "keyless_client_retries_total",
                "Requests sent again after their connection failed.",
                &self.retries,
            ),
            (
                "keyless_client_reconnects_total",
                "Connections (re)established.",
                &self.reconnects,
            ),
            (
                "keyless_client_connect_failures_total",
                "Connection attempts that failed.",
                &self.connect_failures,
            ),
            (
                "keyless_client_health_failures_total",
                "Health-check pings that went unanswered.",
                &self.health_failures,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP keyless_client_in_flight Requests waiting for an answer.\n# TYPE keyless_client_in_flight gauge\nkeyless_client_in_flight {}",
            self.in_flight.load(Relaxed)
        );
        out
    }
}
