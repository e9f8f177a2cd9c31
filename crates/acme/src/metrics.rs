//! What ACME counts, as `prometheus-client` metrics for the application's registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabel {
    pub(crate) result: &'static str,
}

/// Orders by result, their duration, and those in flight (cheap to clone: shared).
#[derive(Debug, Clone)]
pub struct AcmeMetrics {
    pub(crate) orders: Family<ResultLabel, Counter>,
    pub(crate) seconds: Histogram,
    pub(crate) in_flight: Gauge,
    pub(crate) failing: Gauge,
}

impl Default for AcmeMetrics {
    fn default() -> Self {
        AcmeMetrics {
            orders: Family::default(),
            seconds: Histogram::new([0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0, 120.0, 300.0]),
            in_flight: Gauge::default(),
            failing: Gauge::default(),
        }
    }
}

impl AcmeMetrics {
    /// Registers `edgetls_acme_orders_total{result="issued|failed|rate_limited"}`,
    /// `edgetls_acme_order_seconds`, `edgetls_acme_orders_in_flight` and
    /// `edgetls_acme_names_failing` (sets of names whose last order failed).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "edgetls_acme_orders",
            "ACME orders finished, by result",
            self.orders.clone(),
        );
        registry.register(
            "edgetls_acme_order_seconds",
            "Time from a new order to a stored certificate",
            self.seconds.clone(),
        );
        registry.register(
            "edgetls_acme_orders_in_flight",
            "ACME orders in progress",
            self.in_flight.clone(),
        );
        registry.register(
            "edgetls_acme_names_failing",
            "Sets of names whose last ACME order failed",
            self.failing.clone(),
        );
    }

    /// Orders that ended with `result` (`issued`, `failed`, or `rate_limited`: refused for the
    /// CA's rate limits).
    pub fn orders(&self, result: &'static str) -> u64 {
        self.orders.get_or_create(&ResultLabel { result }).get()
    }
}
