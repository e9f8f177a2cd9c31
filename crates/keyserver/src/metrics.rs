//! What the key server counts, as `prometheus-client` metrics, and the HTTP endpoint that
//! serves a registry ([`serve_metrics`]).

use bytes::Bytes;
use edgetls_keyless_proto::{ErrorCode, Opcode};
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 14] = [
    25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3,
    1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    opcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

fn op_label(op: Opcode) -> OpLabel {
    OpLabel {
        opcode: op.name().map_or(format!("0x{:02x}", op.0), |n| {
            n.replace(' ', "_").to_lowercase()
        }),
    }
}

fn code_label(code: ErrorCode) -> CodeLabel {
    CodeLabel {
        code: code
            .name()
            .map_or(format!("0x{:02x}", code.0), |n| n.replace(' ', "_")),
    }
}

/// Everything the server counts. Shared by all connections (cheap to clone).
#[derive(Clone)]
pub struct Metrics {
    requests: Family<OpLabel, Counter>,
    latency: Family<OpLabel, Histogram>,
    errors: Family<CodeLabel, Counter>,
    pub(crate) connections_total: Counter,
    pub(crate) connections_open: Gauge,
    pub(crate) tls_failures: Counter,
    pub(crate) in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(BUCKETS)),
            errors: Family::default(),
            connections_total: Counter::default(),
            connections_open: Gauge::default(),
            tls_failures: Counter::default(),
            in_flight: Gauge::default(),
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
        let label = op_label(opcode);
        self.requests.get_or_create(&label).inc();
        self.latency
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        if let Some(e) = error {
            self.errors.get_or_create(&code_label(e)).inc();
        }
    }

    /// Requests answered for `opcode`.
    pub fn requests(&self, opcode: Opcode) -> u64 {
        self.requests.get_or_create(&op_label(opcode)).get()
    }

    /// Error responses sent with `code`.
    pub fn errors(&self, code: ErrorCode) -> u64 {
        self.errors.get_or_create(&code_label(code)).get()
    }

    /// Adds every key-server metric (`keyless_*`) to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "keyless_requests",
            "Requests answered, by opcode",
            self.requests.clone(),
        );
        r.register(
            "keyless_request_duration_seconds",
            "Time from a request's arrival to its answer being queued",
            self.latency.clone(),
        );
        r.register(
            "keyless_errors",
            "Error responses, by code",
            self.errors.clone(),
        );
        r.register(
            "keyless_connections",
            "Connections accepted",
            self.connections_total.clone(),
        );
        r.register(
            "keyless_tls_failures",
            "Connections whose TLS handshake failed (no or untrusted client certificate, garbage)",
            self.tls_failures.clone(),
        );
        r.register(
            "keyless_connections_open",
            "Connections open now",
            self.connections_open.clone(),
        );
        r.register(
            "keyless_requests_in_flight",
            "Requests received and not yet answered",
            self.in_flight.clone(),
        );
    }

    /// These metrics alone, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        encode(&registry)
    }
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The content type of [`encode`]'s output.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `registry` over HTTP/1.1 (hyper) at `GET /metrics` on `listener` until `shutdown`
/// turns true. Other paths answer 404, other methods 405; a client that sends no request
/// within 5 s, or keeps a connection for more than a minute, is dropped.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let Ok((tcp, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let answer = respond(&registry, &req);
                async move { Ok::<_, std::convert::Infallible>(answer) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

fn respond(registry: &Registry, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, kind, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            (StatusCode::OK, OPENMETRICS, encode(registry))
        }
        (&Method::GET | &Method::HEAD, _) => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: the metrics are at /metrics\n".to_string(),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET /metrics\n".to_string(),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(kind) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}
