//! The metrics endpoint: Prometheus text format over plain HTTP.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Handshake counters, labelled by what matters to an operator.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) handshakes_failed: AtomicU64,
    pub(crate) handshakes_timeout: AtomicU64,
    /// [TLS 1.2, TLS 1.3] × [full, resumed].
    by_version: [[AtomicU64; 2]; 2],
    /// [h2, http/1.1, other, none].
    by_alpn: [AtomicU64; 4],
    /// [RSA, ECDSA, other].
    by_key: [AtomicU64; 3],
    pub(crate) tunnels: AtomicU64,
    pub(crate) no_route: AtomicU64,
    pub(crate) origin_failures: AtomicU64,
    pub(crate) reloads_ok: AtomicU64,
    pub(crate) reloads_failed: AtomicU64,
    pub(crate) last_reload_error: Mutex<Option<String>>,
}

impl Metrics {
    pub(crate) fn handshake(&self, ssl: &openssl::ssl::SslRef) {
        let v = usize::from(ssl.version2() == Some(openssl::ssl::SslVersion::TLS1_3));
        self.by_version[v][usize::from(ssl.session_reused())].fetch_add(1, Relaxed);
        let alpn = match ssl.selected_alpn_protocol() {
            Some(b"h2") => 0,
            Some(b"http/1.1") => 1,
            Some(_) => 2,
            None => 3,
        };
        self.by_alpn[alpn].fetch_add(1, Relaxed);
        let key = match ssl
            .certificate()
            .and_then(|c| c.public_key().ok())
            .map(|k| k.id())
        {
            Some(openssl::pkey::Id::RSA) => 0,
            Some(openssl::pkey::Id::EC) => 1,
            _ => 2,
        };
        self.by_key[key].fetch_add(1, Relaxed);
    }

    pub(crate) fn render(&self, shared: &super::Shared) -> String {
        let mut o = String::new();
        let c = |o: &mut String, name: &str, help: &str, rows: &[(&str, u64)]| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in rows {
                let _ = writeln!(o, "{name}{labels} {v}");
            }
        };
        let g = |o: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let l = |a: &AtomicU64| a.load(Relaxed);
        let mut rows = Vec::new();
        for (vi, v) in ["TLSv1.2", "TLSv1.3"].iter().enumerate() {
            for (ri, r) in ["full", "resumed"].iter().enumerate() {
                rows.push((
                    format!("{{result=\"ok\",version=\"{v}\",kind=\"{r}\"}}"),
                    l(&self.by_version[vi][ri]),
                ));
            }
        }
        rows.push(("{result=\"failed\"}".into(), l(&self.handshakes_failed)));
        rows.push(("{result=\"timeout\"}".into(), l(&self.handshakes_timeout)));
        let rows: Vec<(&str, u64)> = rows.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        c(
            &mut o,
            "edgetls_handshakes_total",
            "TLS handshakes by result, version and full/resumed.",
            &rows,
        );
        let alpn: Vec<(String, u64)> = ["h2", "http/1.1", "other", "none"]
            .iter()
            .zip(&self.by_alpn)
            .map(|(n, a)| (format!("{{alpn=\"{n}\"}}"), l(a)))
            .collect();
        let alpn: Vec<(&str, u64)> = alpn.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        c(
            &mut o,
            "edgetls_handshakes_alpn_total",
            "Completed handshakes by negotiated ALPN.",
            &alpn,
        );
        let key: Vec<(String, u64)> = ["rsa", "ecdsa", "other"]
            .iter()
            .zip(&self.by_key)
            .map(|(n, a)| (format!("{{key=\"{n}\"}}"), l(a)))
            .collect();
        let key: Vec<(&str, u64)> = key.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        c(
            &mut o,
            "edgetls_handshakes_key_total",
            "Completed handshakes by the served key's type.",
            &key,
        );
        let (full, resumed) = self
            .by_version
            .iter()
            .fold((0, 0), |(f, r), v| (f + l(&v[0]), r + l(&v[1])));
        g(
            &mut o,
            "edgetls_resumption_ratio",
            "Resumed share of completed handshakes since start.",
            if full + resumed == 0 {
                0.0
            } else {
                resumed as f64 / (full + resumed) as f64
            },
        );
        c(
            &mut o,
            "edgetls_tunnels_total",
            "Connections passed through untouched.",
            &[("", l(&self.tunnels))],
        );
        c(
            &mut o,
            "edgetls_no_route_total",
            "Handshakes with no route to an origin.",
            &[("", l(&self.no_route))],
        );
        c(
            &mut o,
            "edgetls_origin_failures_total",
            "Failed origin connections.",
            &[("", l(&self.origin_failures))],
        );
        c(
            &mut o,
            "edgetls_reloads_total",
            "Reloads by result.",
            &[
                ("{result=\"ok\"}", l(&self.reloads_ok)),
                ("{result=\"failed\"}", l(&self.reloads_failed)),
            ],
        );
        g(
            &mut o,
            "edgetls_connections_open",
            "Client connections open.",
            shared.active.load(Relaxed) as f64,
        );
        let snap = shared.certs.snapshot();
        g(
            &mut o,
            "edgetls_certificates_loaded",
            "Certificate entries served.",
            snap.entries().len() as f64,
        );
        if let Some(t) = snap.entries().iter().filter_map(|e| e.not_after()).min() {
            g(
                &mut o,
                "edgetls_certificate_nearest_expiry_seconds",
                "Unix time of the nearest certificate expiry.",
                t as f64,
            );
        }
        if let Some(t) = &shared.tickets {
            let tc = t.counters();
            c(
                &mut o,
                "edgetls_tickets_total",
                "Session tickets by outcome.",
                &[
                    ("{outcome=\"issued\"}", l(&tc.issued)),
                    ("{outcome=\"resumed\"}", l(&tc.resumed)),
                    ("{outcome=\"renewed\"}", l(&tc.renewed)),
                    ("{outcome=\"unknown_key\"}", l(&tc.unknown_key)),
                    ("{outcome=\"decrypt_failed\"}", tc.decrypt_failures()),
                ],
            );
        }
        if let Some(k) = &shared.keyless {
            o.push_str(&k.render());
        }
        o
    }
}

/// Serves `/metrics` on `addr` from a thread of its own.
pub(crate) fn serve(
    addr: std::net::SocketAddr,
    shared: std::sync::Arc<super::Shared>,
) -> std::io::Result<std::net::SocketAddr> {
    let l = std::net::TcpListener::bind(addr)?;
    let bound = l.local_addr()?;
    std::thread::Builder::new()
        .name("edgetls-metrics".into())
        .spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { continue };
                let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                let body = shared.metrics.render(&shared);
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })?;
    Ok(bound)
}
