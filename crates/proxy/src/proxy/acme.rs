//! `[acme]`: certificates obtained and renewed by the proxy itself (`edgetls-acme`). The
//! storage directory is one more certificate source (added when `[certificates] sources` does
//! not name it): an issued certificate lands there atomically and the watcher reloads it like
//! any other file. TLS-ALPN-01 validations are answered by the TLS listeners (ahead of the
//! policy rules), HTTP-01 by a plain listener at `http_listen`; the orders run on a thread of
//! their own, never on a worker.
//!
//! ```toml
//! [acme]
//! directory = "https://acme-v02.api.letsencrypt.org/directory"
//! ca_bundle = "pebble-ca.pem"       # optional: trust for a private CA's API
//! contact = ["mailto:ops@example.com"]
//! challenge = "tls-alpn-01"         # or "http-01" (with http_listen), "dns-01" (with dns_hook)
//! http_listen = "0.0.0.0:80"        # HTTP-01: answers /.well-known/acme-challenge/, 404 else
//! dns_hook = "/usr/local/bin/dns-txt"   # DNS-01: run as `dns-txt set|clear NAME VALUE`
//! names = ["www.example.com", "example.com,www.example.org"]  # one certificate per entry
//! names_file = "names.txt"          # and/or: one entry per line, `#` comments
//! storage = "/var/lib/edgetls/acme" # certificates, keys (0600), the account, pending orders
//! key_type = "ecdsa"                # or "rsa" (2048)
//! eab_kid = "kid-1"                 # external account binding, when the CA asks for it
//! eab_hmac_key = "base64url…"
//! concurrency = 4                   # orders in flight at most
//! orders_per_hour = 100             # new orders started per hour at most
//! revoke_replaced = false           # true: revoke a certificate (superseded) once renewed
//! on_demand = false                 # true: obtain a certificate during a new name's first
//! on_demand_suffixes = ["example.net"]  # handshake, for names under these and/or
//! on_demand_ask = "http://127.0.0.1:9000/allowed"   # names this answers 200 for
//! on_demand_wait = "10s"            # (and on_demand_negative_ttl, _per_minute, _concurrency)
//! ```

use edgetls_acme::{
    Acme, AcmeConfig, AcmeMetrics, Challenge, Challenges, KeyType, SetStatus, parse_names,
};
use edgetls_policy::TlsAlpnAnswers;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAcme {
    directory: String,
    ca_bundle: Option<String>,
    #[serde(default)]
    contact: Vec<String>,
    challenge: Option<String>,
    http_listen: Option<String>,
    dns_hook: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    names_file: Option<String>,
    storage: String,
    key_type: Option<String>,
    eab_kid: Option<String>,
    eab_hmac_key: Option<String>,
    concurrency: Option<usize>,
    orders_per_hour: Option<f64>,
    #[serde(default)]
    revoke_replaced: bool,
    #[serde(default)]
    on_demand: bool,
    #[serde(default)]
    on_demand_suffixes: Vec<String>,
    on_demand_ask: Option<String>,
    on_demand_wait: Option<String>,
    on_demand_negative_ttl: Option<String>,
    on_demand_per_minute: Option<f64>,
    on_demand_concurrency: Option<usize>,
}

/// `[acme]` as the proxy runs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AcmeSection {
    pub(crate) config: AcmeConfig,
    /// The HTTP-01 listener.
    pub(crate) http_listen: Option<SocketAddr>,
    /// Certificates on demand (`on_demand = true`).
    pub(crate) on_demand: Option<crate::proxy::on_demand::OnDemandConfig>,
}

impl RawAcme {
    /// Checks and resolves the section (`rel` resolves a path against the configuration's
    /// directory); the message names the field.
    pub(crate) fn resolve(self, rel: &dyn Fn(&str) -> PathBuf) -> Result<AcmeSection, String> {
        let mut c = AcmeConfig::new(self.directory, rel(&self.storage));
        c.ca_bundle = self.ca_bundle.as_deref().map(rel);
        c.contact = self.contact;
        let challenge = self.challenge.as_deref().unwrap_or("tls-alpn-01");
        c.challenge = Challenge::parse(challenge, self.dns_hook.as_deref().map(rel))
            .map_err(|e| format!("challenge: {e}"))?;
        let http_listen = match self.http_listen.as_deref() {
            Some(a) => Some(
                a.parse::<SocketAddr>()
                    .map_err(|e| format!("http_listen = {a:?}: {e}"))?,
            ),
            None => None,
        };
        if c.challenge == Challenge::Http01 && http_listen.is_none() {
            return Err("challenge = \"http-01\" needs http_listen (e.g. \"0.0.0.0:80\")".into());
        }
        c.names = self
            .names
            .iter()
            .flat_map(|n| parse_names(n))
            .collect::<Vec<_>>();
        if let Some(file) = &self.names_file {
            let path = rel(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("names_file {}: {e}", path.display()))?;
            c.names.extend(parse_names(&text));
        }
        c.key_type = match self.key_type.as_deref() {
            None | Some("ecdsa") => KeyType::EcdsaP256,
            Some("rsa") => KeyType::Rsa2048,
            Some(o) => return Err(format!("key_type = {o:?}: \"ecdsa\" or \"rsa\"")),
        };
        c.eab = match (self.eab_kid, self.eab_hmac_key) {
            (None, None) => None,
            (Some(kid), Some(key)) => {
                use base64::Engine as _;
                let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(key.trim_end_matches('='))
                    .map_err(|e| format!("eab_hmac_key: not base64url: {e}"))?;
                Some((kid, key))
            }
            _ => return Err("eab_kid and eab_hmac_key go together".into()),
        };
        if let Some(n) = self.concurrency {
            c.concurrency = n;
        }
        if let Some(n) = self.orders_per_hour {
            c.orders_per_hour = n;
        }
        c.revoke_replaced = self.revoke_replaced;
        c.validate().map_err(|e| e.to_string())?;
        let on_demand = match self.on_demand {
            false => None,
            true => Some(on_demand_config(
                self.on_demand_suffixes,
                self.on_demand_ask,
                self.on_demand_wait,
                self.on_demand_negative_ttl,
                self.on_demand_per_minute,
                self.on_demand_concurrency,
            )?),
        };
        Ok(AcmeSection {
            config: c,
            http_listen,
            on_demand,
        })
    }
}

fn on_demand_config(
    suffixes: Vec<String>,
    ask: Option<String>,
    wait: Option<String>,
    negative_ttl: Option<String>,
    per_minute: Option<f64>,
    concurrency: Option<usize>,
) -> Result<crate::proxy::on_demand::OnDemandConfig, String> {
    if suffixes.is_empty() && ask.is_none() {
        return Err(
            "on_demand = true needs an allow-list: on_demand_suffixes and/or on_demand_ask \
                    (without one, anyone pointing a name at this edge gets a certificate issued)"
                .into(),
        );
    }
    if let Some(a) = &ask {
        if !a.starts_with("http://") {
            return Err(format!(
                "on_demand_ask = {a:?}: an http:// URL (a local service)"
            ));
        }
    }
    let dur = |v: Option<String>, field: &str, default: u64| -> Result<Duration, String> {
        match v {
            None => Ok(Duration::from_secs(default)),
            Some(s) => humantime::parse_duration(&s).map_err(|e| format!("{field} = {s:?}: {e}")),
        }
    };
    let per_minute = per_minute.unwrap_or(60.0);
    if per_minute.is_nan() || per_minute <= 0.0 {
        return Err("on_demand_per_minute must be above 0".into());
    }
    let concurrency = concurrency.unwrap_or(10);
    if concurrency == 0 {
        return Err("on_demand_concurrency must be at least 1".into());
    }
    Ok(crate::proxy::on_demand::OnDemandConfig {
        suffixes: suffixes
            .into_iter()
            .map(|s| {
                s.trim_start_matches("*.")
                    .trim_start_matches('.')
                    .to_ascii_lowercase()
            })
            .collect(),
        ask,
        wait: dur(wait, "on_demand_wait", 10)?,
        negative_ttl: dur(negative_ttl, "on_demand_negative_ttl", 600)?,
        per_minute,
        concurrency,
    })
}

/// The registry as the ClientHello hook sees it.
pub(crate) struct Answers(pub(crate) Arc<Challenges>);

impl TlsAlpnAnswers for Answers {
    fn pending(&self) -> bool {
        self.0.any_alpn()
    }

    fn answer(&self, name: &str) -> Option<(X509, PKey<Private>)> {
        self.0.alpn(name).map(|a| (a.cert.clone(), a.key.clone()))
    }
}

/// What the proxy shares with its ACME thread: the challenges the listeners answer, the
/// metrics, and (once the account is open) the schedule and the runtime it runs on, for the
/// admin API's `renew` and `orders`.
/// What makes a stored bundle live.
pub(crate) type OnStored = Arc<dyn Fn(&Path) + Send + Sync>;

#[derive(Default)]
pub(crate) struct AcmeState {
    pub(crate) challenges: Arc<Challenges>,
    pub(crate) metrics: AcmeMetrics,
    running: OnceLock<(Arc<Acme>, tokio::runtime::Handle)>,
    /// Makes a newly stored bundle live (the proxy's reload of that file).
    pub(crate) on_stored: OnceLock<OnStored>,
    /// Certificates on demand, when on.
    pub(crate) on_demand: OnceLock<Arc<crate::proxy::on_demand::Demand>>,
}

impl std::fmt::Debug for AcmeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeState")
            .field("running", &self.running.get().is_some())
            .finish_non_exhaustive()
    }
}

impl AcmeState {
    fn running(&self) -> Result<&(Arc<Acme>, tokio::runtime::Handle), String> {
        self.running
            .get()
            .ok_or_else(|| "the ACME account is not open yet (see the log)".to_string())
    }

    /// Orders the set of names that includes `name` now and waits for it (at most the order
    /// timeout and a little): the stored bundle.
    pub(crate) fn renew_now(&self, name: &str) -> Result<PathBuf, String> {
        let (acme, rt) = self.running()?;
        let name = name.to_ascii_lowercase();
        let Some(set) = acme
            .config()
            .names
            .iter()
            .find(|s| s.contains(&name))
            .cloned()
        else {
            return Err(format!("{name} is not one of [acme] names"));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let acme = Arc::clone(acme);
        rt.spawn(async move {
            let _ = tx.send(acme.issue(&set).await.map_err(|e| e.to_string()));
        });
        let limit = self.running()?.0.config().order_timeout + Duration::from_secs(5);
        rx.recv_timeout(limit)
            .map_err(|_| "the order did not end in time".to_string())?
    }

    /// Obtains a certificate for `names` on the ACME thread, keeps it renewed, and makes it
    /// live before answering (for a handshake waiting on demand).
    pub(crate) async fn obtain(&self, names: Vec<String>) -> Result<PathBuf, String> {
        let (acme, rt) = self.running().map(|(a, h)| (Arc::clone(a), h.clone()))?;
        let stored = self.on_stored.get().cloned();
        let (tx, rx) = tokio::sync::oneshot::channel();
        rt.spawn(async move {
            let r = acme.issue(&names).await.map_err(|e| e.to_string());
            if let Ok(path) = &r {
                acme.adopt(names);
                if let Some(f) = stored {
                    let path = path.clone();
                    let _ = tokio::task::spawn_blocking(move || f(&path)).await;
                }
            }
            let _ = tx.send(r);
        });
        rx.await
            .map_err(|_| "the ACME thread went away".to_string())?
    }

    /// Each set's certificate and order state (empty until the account is open).
    pub(crate) fn status(&self) -> Vec<SetStatus> {
        self.running().map(|(a, _)| a.status()).unwrap_or_default()
    }
}

/// Runs the section on a thread of its own: the HTTP-01 listener (bound now, so that a busy
/// port is an error at start), then the account and the schedule — retried every minute while
/// the CA cannot be reached.
pub(crate) fn spawn(section: AcmeSection, state: Arc<AcmeState>) -> std::io::Result<()> {
    let (challenges, metrics) = (Arc::clone(&state.challenges), state.metrics.clone());
    let http = match section.http_listen {
        Some(a) => {
            let l = std::net::TcpListener::bind(a)?;
            l.set_nonblocking(true)?;
            tracing::info!("ACME HTTP-01 on http://{}", l.local_addr()?);
            Some(l)
        }
        None => None,
    };
    std::thread::Builder::new()
        .name("acme".into())
        .spawn(move || {
            crate::proxy::background();
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("ACME: no runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                if let Some(l) = http {
                    match tokio::net::TcpListener::from_std(l) {
                        Ok(l) => {
                            tokio::spawn(serve_http01(l, Arc::clone(&challenges)));
                        }
                        Err(e) => tracing::error!("ACME HTTP-01 listener: {e}"),
                    }
                }
                loop {
                    let started = Acme::start(
                        section.config.clone(),
                        Arc::clone(&challenges),
                        metrics.clone(),
                    )
                    .await;
                    match started {
                        Ok(acme) => {
                            if section.on_demand.is_some() {
                                adopt_stored(&acme);
                            }
                            let handle = tokio::runtime::Handle::current();
                            let _ = state.running.set((Arc::clone(&acme), handle));
                            return acme.run().await;
                        }
                        Err(e) => {
                            tracing::warn!("ACME: {e}; trying again in 60 s");
                            tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                    }
                }
            });
        })?;
    Ok(())
}

/// Certificates obtained on demand before a restart are in the storage directory but not in
/// `names`: each bundle there whose names are not a configured set is renewed too.
fn adopt_stored(acme: &Acme) {
    let storage = &acme.config().storage;
    let Ok(dir) = std::fs::read_dir(storage) else {
        return;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "pem") {
            continue;
        }
        if let Ok(Some(v)) = edgetls_acme::validity(&path) {
            if !v.names.is_empty() && edgetls_acme::bundle_path(storage, &v.names) == path {
                acme.adopt(v.names);
            }
        }
    }
}

/// HTTP-01: `GET /.well-known/acme-challenge/TOKEN` answered with its key authorization, 404
/// for anything else; a request line over 4 KiB or slower than 5 s is dropped.
async fn serve_http01(l: tokio::net::TcpListener, challenges: Arc<Challenges>) {
    loop {
        let Ok((mut conn, peer)) = l.accept().await else {
            continue;
        };
        let challenges = Arc::clone(&challenges);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            let read = async {
                while n < buf.len() {
                    let got = conn.read(&mut buf[n..]).await?;
                    if got == 0 {
                        break;
                    }
                    n += got;
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                std::io::Result::Ok(())
            };
            if !matches!(
                tokio::time::timeout(Duration::from_secs(5), read).await,
                Ok(Ok(()))
            ) {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let mut words = head.lines().next().unwrap_or("").split_whitespace();
            let (method, target) = (words.next(), words.next());
            let token = target.and_then(|t| t.strip_prefix("/.well-known/acme-challenge/"));
            let answer = match (method, token) {
                (Some("GET"), Some(t)) => challenges.http(t),
                _ => None,
            };
            let reply = match answer {
                Some(a) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{a}",
                    a.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .into(),
            };
            if let Err(e) = conn.write_all(reply.as_bytes()).await {
                tracing::debug!(%peer, "HTTP-01 reply: {e}");
            }
        });
    }
}

/// The storage directory as a certificate source: created (0700) when missing.
pub(crate) fn prepare(section: &AcmeSection) -> Result<&Path, String> {
    let storage = &section.config.storage;
    edgetls_acme::prepare_storage(storage).map_err(|e| e.to_string())?;
    Ok(storage)
}
