//! Each key server's standing across every connection to it — those of one client, and of all
//! the clients counting into the same [`ClientMetrics`](crate::ClientMetrics) (a proxy's
//! per-worker clients): how many are up, and the transitions, said once each at `warn`: a
//! server going down (and why), a server that cannot be reached, a server back (and after how
//! long).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ServerLabel {
    server: String,
}

#[derive(Debug, Default)]
struct Server {
    up: usize,
    /// When the last connection went down, or the first attempt failed; `None` while up.
    down_since: Option<Instant>,
    /// The failure that made it unreachable was said.
    said: bool,
}

/// The standing of every key server.
#[derive(Debug, Default)]
pub(crate) struct Health {
    servers: Mutex<HashMap<String, Server>>,
    pub(crate) up: Family<ServerLabel, Gauge>,
}

impl Health {
    fn with(&self, addr: &str, f: impl FnOnce(&mut Server)) {
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        let s = servers.entry(addr.to_string()).or_default();
        f(s);
        self.up
            .get_or_create(&ServerLabel {
                server: addr.to_string(),
            })
            .set(s.up as i64);
    }

    /// A connection to `addr` answered its first ping: it takes requests.
    pub(crate) fn link_up(&self, addr: &str) {
        self.with(addr, |s| {
            if s.up == 0 {
                match s.down_since.take() {
                    Some(since) if s.said => tracing::warn!(
                        "key server {addr}: back after {:.1} s",
                        since.elapsed().as_secs_f64()
                    ),
                    _ => tracing::info!("key server {addr}: connected"),
                }
                s.said = false;
            }
            s.up += 1;
        });
    }

    /// A connection to `addr` that was up failed (`why`), or was closed (`None`: its client
    /// shut down).
    pub(crate) fn link_down(&self, addr: &str, why: Option<&str>) {
        self.with(addr, |s| {
            s.up = s.up.saturating_sub(1);
            if let (0, Some(why)) = (s.up, why) {
                s.down_since = Some(Instant::now());
                s.said = true;
                tracing::warn!(
                    "key server {addr}: down ({why}); its requests go to the other key servers, reconnecting"
                );
            }
        });
    }

    /// A connection attempt to `addr` failed (`why`): said once while no connection is up.
    pub(crate) fn connect_failed(&self, addr: &str, why: &str) {
        self.with(addr, |s| {
            if s.up == 0 && !s.said {
                s.down_since.get_or_insert_with(Instant::now);
                s.said = true;
                tracing::warn!("key server {addr}: cannot connect ({why}); retrying with backoff");
            }
        });
    }
}
