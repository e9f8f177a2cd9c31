//! Counters and latency histograms, rendered in the Prometheus text format.

use edgetls_keyless_proto::{ErrorCode, Opcode};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Latency bucket bounds in microseconds (the last bucket is +Inf).
const BUCKETS_US: [u64; 14] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let i = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }
}

/// Per-request counters of one thread: each serving thread writes its own shard, so the
/// counters of a busy server do not bounce between cores; rendering adds the shards up.
struct Shard {
    requests: [AtomicU64; 256],
    latency: Box<[Histogram]>,
    errors: [AtomicU64; 256],
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: (0..256).map(|_| Histogram::default()).collect(),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Shards: enough that threads rarely share one.
const SHARDS: usize = 16;

fn shard_index() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static MINE: usize = NEXT.fetch_add(1, Relaxed) % SHARDS);
    MINE.with(|m| *m)
}

/// Everything the server counts. Shared by all connections; lock-free.
pub struct Metrics {
    shards: Box<[Shard]>,
    pub(crate) connections_total: AtomicU64,
    pub(crate) connections_open: AtomicU64,
    pub(crate) tls_failures: AtomicU64,
    pub(crate) in_flight: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            connections_total: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            tls_failures: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Records one answered request: its opcode, how long the server took, and its error.
    pub fn record(&self, opcode: Opcode, took: Duration, error: Option<ErrorCode>) {
        let shard = &self.shards[shard_index()];
        shard.requests[usize::from(opcode.0)].fetch_add(1, Relaxed);
        shard.latency[usize::from(opcode.0)].observe(took);
        if let Some(e) = error {
            shard.errors[usize::from(e.0)].fetch_add(1, Relaxed);
        }
    }

    /// Requests answered for `opcode`.
    pub fn requests(&self, opcode: Opcode) -> u64 {
        self.shards
            .iter()
            .map(|s| s.requests[usize::from(opcode.0)].load(Relaxed))
            .sum()
    }

    /// Error responses sent with `code`.
    pub fn errors(&self, code: ErrorCode) -> u64 {
        self.shards
            .iter()
            .map(|s| s.errors[usize::from(code.0)].load(Relaxed))
            .sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let label = |op: u8| {
            Opcode(op).name().map_or(format!("0x{op:02x}"), |n| {
                n.replace(' ', "_").to_lowercase()
            })
        };
        let _ = writeln!(
            out,
            "# HELP keyless_requests_total Requests answered, by opcode.\n# TYPE keyless_requests_total counter"
        );
        for op in 0..=255u8 {
            let n = self.requests(Opcode(op));
            if n > 0 {
                let _ = writeln!(
                    out,
                    "keyless_requests_total{{opcode=\"{}\"}} {n}",
                    label(op)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP keyless_request_duration_seconds Time from a request's arrival to its answer being queued.\n# TYPE keyless_request_duration_seconds histogram"
        );
        for op in 0..=255u8 {
            let hists: Vec<&Histogram> = self
                .shards
                .iter()
                .map(|s| &s.latency[usize::from(op)])
                .collect();
            let count = |i: usize| -> u64 { hists.iter().map(|h| h.counts[i].load(Relaxed)).sum() };
            let total: u64 = (0..=BUCKETS_US.len()).map(count).sum();
            if total == 0 {
                continue;
            }
            let sum_us: u64 = hists.iter().map(|h| h.sum_us.load(Relaxed)).sum();
            let mut cumulative = 0;
            for i in 0..=BUCKETS_US.len() {
                cumulative += count(i);
                let le = BUCKETS_US
                    .get(i)
                    .map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
                let _ = writeln!(
                    out,
                    "keyless_request_duration_seconds_bucket{{opcode=\"{}\",le=\"{le}\"}} {cumulative}",
                    label(op)
                );
            }
            let _ = writeln!(
                out,
                "keyless_request_duration_seconds_sum{{opcode=\"{}\"}} {}",
                label(op),
                sum_us as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "keyless_request_duration_seconds_count{{opcode=\"{}\"}} {total}",
                label(op)
            );
        }
        let _ = writeln!(
            out,
            "# HELP keyless_errors_total Error responses, by code.\n# TYPE keyless_errors_total counter"
        );
        for code in 0..=255u8 {
            let n = self.errors(ErrorCode(code));
            if n > 0 {
                let name = ErrorCode(code)
                    .name()
                    .map_or(format!("0x{code:02x}"), |n| n.replace(' ', "_"));
                let _ = writeln!(out, "keyless_errors_total{{code=\"{name}\"}} {n}");
            }
        }
        for (name, help, v) in [
            (
                "keyless_connections_total",
                "Connections accepted.",
                &self.connections_total,
            ),
            (
                "keyless_tls_failures_total",
                "Connections whose TLS handshake failed (no or untrusted client certificate, garbage).",
                &self.tls_failures,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
        for (name, help, v) in [
            (
                "keyless_connections_open",
                "Connections open now.",
                &self.connections_open,
            ),
            (
                "keyless_requests_in_flight",
                "Requests received and not yet answered.",
                &self.in_flight,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                v.load(Relaxed)
            );
        }
        out
    }
}
