//! `edgetls proxy --config FILE`: one TOML file pointing at everything.
//!
//! ```toml
//! [server]
//! listen = ["0.0.0.0:443"]
//! workers = 2                    # default: one per core
//! max_connections = 10000
//! handshake_timeout = "10s"
//! idle_timeout = "5m"
//! metrics = "127.0.0.1:9100"      # optional: Prometheus/OpenMetrics text at /metrics
//! control = "/run/edgetls.sock"   # where `edgetls upgrade` finds this process; default: the
//!                                 # configuration's path with `.sock` (proxy.toml → proxy.sock)
//! session_cache = 20000           # TLS sessions kept for session-ID resumption (0: off)
//! session_timeout = "5m"          # how long a session may be resumed
//! defer_accept = false            # true: the kernel holds a connection until its first bytes
//! proxy_protocol_from = ["10.0.0.0/8"]  # load balancers that send a PROXY v1/v2 header (required
//!                                 # from them, refused from anyone else); default: none
//!
//! [certificates]
//! sources = ["/etc/edge/ssl_multicert.config"]   # directories, ssl_multicert.config, crt-lists
//! prepare = "lazy"                # or "all": build every entry's OpenSSL objects at start
//! cache = "1GiB"                  # memory budget of those objects, shared by the workers
//! strict_sni = false              # true: no default certificate; a name no certificate lists
//!                                 # (or no name) fails the handshake (HAProxy's strict-sni)
//! ocsp_update = false             # fetch OCSP responses from the responders the certificates
//!                                 # name, for chains whose crt-list line does not say
//! ocsp_update_min_delay = "5m"    # between two fetches for a chain (and after a failure)
//! ocsp_update_max_delay = "1h"
//!
//! [policy]                        # optional: per-name negotiation (docs/policy.md)
//! file = "/etc/edge/policy.toml"
//!
//! [tickets]                       # optional: ticket keys shared by the fleet, from a key file
//! file = "/etc/edge/tickets.keys"
//! format = "haproxy"
//! # or derived by every edge from one shared secret (`edgetls tickets gen-secret`):
//! # secret_file = "/etc/edge/ticket.secret"   # mode 0600, at least 32 bytes
//! # period = "12h"                            # a new key every period (at least 1m)
//!
//! [keyless]                       # optional: the keys of some sources are on these key servers
//! sources = ["/etc/edge/keyless"]  # of [certificates] sources: their certificates without a key
//!                                 # are served with the key server's (any other is an error)
//! servers = ["10.0.0.7:2407"]
//! server_name = "keyserver"
//! cert = "edge.pem"
//! key = "edge.key"
//! ca = "keyserver-ca.pem"
//!
//! [acme]                          # optional: certificates obtained and renewed by ACME
//! directory = "https://acme-v02.api.letsencrypt.org/directory"   # (all its keys: proxy/acme.rs)
//! challenge = "tls-alpn-01"
//! names = ["www.example.com"]
//! storage = "/var/lib/edgetls/acme" # a certificate source too (added when not listed)
//!
//! [admin]                         # optional: the runtime certificate API (docs/admin.md)
//! socket = "/run/edgetls/admin.sock"   # mode 0600; its owner and root only
//! storage = "/var/lib/edgetls/admin"   # where added certificates go (default: [acme] storage)
//! http = "127.0.0.1:9101"         # optional: the same API over HTTP (loopback only), with
//! token_file = "admin.token"      # a bearer token (mode 0600, at least 32 bytes)
//!
//! [[routes]]                      # first match wins: by server name, then negotiated ALPN
//! fqdn = "*.example.com"
//! alpn = "h2"                     # optional
//! origin = "10.0.1.5:8443"
//! tls = true                      # TLS towards the origin
//! verify = "full"                 # full (chain + name), signature (chain only), off
//! ca = "origin-ca.pem"
//! sni = "backend.internal"        # default: the host of `origin` when it is a name
//! client_cert = "edge-to-origin.pem"
//! client_key = "edge-to-origin.key"
//! send_proxy = "v2"               # optional: a PROXY v2 header (client address, TLS TLVs) first
//! ```

use crate::error::CliError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    certificates: RawCertificates,
    policy: Option<RawPolicy>,
    tickets: Option<RawTickets>,
    keyless: Option<RawKeyless>,
    acme: Option<crate::proxy::acme::RawAcme>,
    admin: Option<RawAdmin>,
    #[serde(default)]
    routes: Vec<toml::Spanned<RawRoute>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Vec<String>,
    workers: Option<usize>,
    max_connections: Option<usize>,
    handshake_timeout: Option<String>,
    idle_timeout: Option<String>,
    metrics: Option<String>,
    control: Option<String>,
    session_cache: Option<usize>,
    session_timeout: Option<String>,
    defer_accept: Option<bool>,
    proxy_protocol_from: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificates {
    sources: Vec<String>,
    prepare: Option<String>,
    cache: Option<String>,
    strict_sni: Option<bool>,
    ocsp_update: Option<bool>,
    ocsp_update_min_delay: Option<String>,
    ocsp_update_max_delay: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTickets {
    file: Option<String>,
    format: Option<String>,
    secret_file: Option<String>,
    period: Option<String>,
}

/// Where the ticket keys come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tickets {
    /// A key file (ATS, nginx or HAProxy format), read again on change.
    File(PathBuf, edgetls_tickets::Format),
    /// Derived from a secret shared by the fleet: a new key every `period`.
    Derived { secret: PathBuf, period: Duration },
}

impl Tickets {
    /// The key file, read again when it changes (a secret is read at start only).
    pub(crate) fn key_file(&self) -> Option<&Path> {
        match self {
            Tickets::File(file, _) => Some(file),
            Tickets::Derived { .. } => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    socket: String,
    storage: Option<String>,
    http: Option<String>,
    token_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyless {
    sources: Option<Vec<String>>,
    servers: Vec<String>,
    server_name: String,
    cert: String,
    key: String,
    ca: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    fqdn: String,
    alpn: Option<String>,
    origin: String,
    #[serde(default)]
    tls: bool,
    verify: Option<String>,
    ca: Option<String>,
    sni: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    send_proxy: Option<String>,
}

/// How the proxy checks a TLS origin's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    Off,
    Signature,
    Full,
}

#[derive(Debug, Clone)]
pub(crate) struct OriginTls {
    pub(crate) verify: Verify,
    pub(crate) ca: Option<PathBuf>,
    pub(crate) sni: Option<String>,
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// Lowercase name, `*.domain` or `*`.
    pub(crate) fqdn: String,
    pub(crate) alpn: Option<String>,
    pub(crate) origin: String,
    pub(crate) tls: Option<OriginTls>,
    /// Send a PROXY v2 header before anything else (`send_proxy = "v2"`).
    pub(crate) send_proxy: bool,
    pub(crate) line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Keyless {
    /// The certificate sources whose keys the key servers hold (each one of `[certificates]
    /// sources`).
    pub(crate) sources: Vec<PathBuf>,
    pub(crate) servers: Vec<String>,
    pub(crate) server_name: String,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) ca: PathBuf,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) listen: Vec<std::net::SocketAddr>,
    pub(crate) metrics: Option<std::net::SocketAddr>,
    /// The control socket `edgetls upgrade` reaches the running process on.
    pub(crate) control: PathBuf,
    pub(crate) workers: usize,
    pub(crate) max_connections: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) session_cache: edgetls_policy::SessionCache,
    pub(crate) defer_accept: bool,
    /// Where PROXY headers come from (`proxy_protocol_from`).
    pub(crate) proxy_protocol_from: edgetls_proxy_protocol::Networks,
    pub(crate) sources: Vec<PathBuf>,
    /// Build every entry's OpenSSL objects at start (`prepare = "all"`).
    pub(crate) prepare_all: bool,
    /// The budget of those objects, bytes.
    pub(crate) cache_bytes: usize,
    /// No default certificate: unknown names are refused (`strict_sni`, HAProxy's `strict-sni`).
    pub(crate) strict_sni: bool,
    /// Fetching OCSP responses from responders (on for the chains whose source asks, and for
    /// every chain with `ocsp_update = true`).
    pub(crate) ocsp_update: edgetls_certstore::UpdateOptions,
    pub(crate) policy: Option<PathBuf>,
    pub(crate) tickets: Option<Tickets>,
    pub(crate) keyless: Option<Keyless>,
    /// Certificates obtained by ACME (`[acme]`); its storage is one of `sources`.
    pub(crate) acme: Option<crate::proxy::acme::AcmeSection>,
    /// The runtime certificate API (`[admin]`); its storage is one of `sources`.
    pub(crate) admin: Option<crate::proxy::admin::AdminSection>,
    pub(crate) routes: Vec<Route>,
}

/// A size: bytes, or a number with KiB/MiB/GiB (or KB/MB/GB, powers of 1000).
fn bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: usize = n.parse().ok()?;
    let unit: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// `[keyless] sources`: required, each one of `[certificates] sources` (as written there, or
/// the same path written otherwise).
fn keyless_sources(
    declared: Option<Vec<String>>,
    certificates: &[String],
    rel: &impl Fn(&str) -> PathBuf,
) -> Result<Vec<PathBuf>, String> {
    let Some(declared) = declared else {
        return Err(
            "missing: list the certificate sources (from [certificates] sources) whose \
             keys the key servers hold. A certificate without its key is served with a remote \
             key only when its source is listed here"
                .into(),
        );
    };
    let all: Vec<PathBuf> = certificates.iter().map(|s| rel(s)).collect();
    declared
        .iter()
        .map(|d| {
            let p = rel(d);
            if all.contains(&p) {
                Ok(p)
            } else {
                Err(format!(
                    "{d:?} is not one of [certificates] sources (list it there too, to serve it)"
                ))
            }
        })
        .collect()
}

/// The shortest `[tickets] period`: with the 12 h grace window that is 720 keys in the ring.
const MIN_TICKET_PERIOD: Duration = Duration::from_secs(60);

fn bad(path: &Path, line: usize, field: &str, message: impl std::fmt::Display) -> CliError {
    CliError::Config {
        path: path.to_path_buf(),
        line,
        message: format!("{field}: {message}"),
    }
}

impl Config {
    pub(crate) fn load(path: &Path) -> Result<Config, CliError> {
        let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
        Config::parse(path, &text)
    }

    pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, CliError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map_or(0, |s| text[..s.start].matches('\n').count() + 1);
            CliError::Config {
                path: path.to_path_buf(),
                line,
                message: e.message().to_string(),
            }
        })?;
        // Relative paths are relative to the configuration file, made absolute here (the file
        // watcher compares them with the absolute paths it reports).
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = abs.parent().unwrap_or(Path::new("/"));
        let rel = |p: &str| dir.join(p);
        let line_of = |field: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(field))
                .map_or(0, |i| i + 1)
        };
        let listen = raw
            .server
            .listen
            .iter()
            .map(|a| {
                a.parse().map_err(|e| {
                    bad(
                        path,
                        line_of("listen"),
                        "server.listen",
                        format!("{a:?}: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if listen.is_empty() {
            return Err(bad(
                path,
                line_of("listen"),
                "server.listen",
                "at least one address",
            ));
        }
        let duration_in =
            |section: &str, v: &Option<String>, field: &str, default: Duration| match v {
                None => Ok(default),
                Some(s) => humantime::parse_duration(s).map_err(|e| {
                    bad(
                        path,
                        line_of(field),
                        &format!("{section}.{field}"),
                        format!("{s:?}: {e}"),
                    )
                }),
            };
        let duration = |v: &Option<String>, field: &str, default: Duration| {
            duration_in("server", v, field, default)
        };
        let ocsp_update = {
            let mut o = edgetls_certstore::UpdateOptions::default();
            let c = &raw.certificates;
            o.default_on = c.ocsp_update.unwrap_or(o.default_on);
            o.min_delay = duration_in(
                "certificates",
                &c.ocsp_update_min_delay,
                "ocsp_update_min_delay",
                o.min_delay,
            )?;
            o.max_delay = duration_in(
                "certificates",
                &c.ocsp_update_max_delay,
                "ocsp_update_max_delay",
                o.max_delay,
            )?;
            o
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = raw.server.workers.unwrap_or(cores);
        if workers == 0 {
            return Err(bad(
                path,
                line_of("workers"),
                "server.workers",
                "at least 1",
            ));
        }
        let tickets = match raw.tickets {
            None => None,
            Some(RawTickets {
                file: Some(file),
                format: Some(format),
                secret_file: None,
                period: None,
            }) => Some(Tickets::File(
                rel(&file),
                format
                    .parse()
                    .map_err(|e| bad(path, line_of("format"), "tickets.format", e))?,
            )),
            Some(RawTickets {
                file: None,
                format: None,
                secret_file: Some(secret),
                period,
            }) => {
                let period =
                    duration_in("tickets", &period, "period", Duration::from_secs(12 * 3600))?;
                if period < MIN_TICKET_PERIOD {
                    return Err(bad(
                        path,
                        line_of("period"),
                        "tickets.period",
                        format!(
                            "{}: at least 1m (keys of every period in the 12 h grace window are \
                             kept; ticket keys usually turn over every few hours)",
                            humantime::format_duration(period)
                        ),
                    ));
                }
                Some(Tickets::Derived {
                    secret: rel(&secret),
                    period,
                })
            }
            Some(_) => {
                return Err(bad(
                    path,
                    line_of("[tickets]"),
                    "tickets",
                    "either file and format (a key file) or secret_file (and period)",
                ));
            }
        };
        let mut routes = Vec::new();
        for spanned in raw.routes {
            let line = text[..spanned.span().start].matches('\n').count() + 1;
            let r = spanned.into_inner();
            let fqdn = r.fqdn.trim().to_ascii_lowercase();
            if fqdn.is_empty() {
                return Err(bad(path, line, "routes.fqdn", "empty"));
            }
            if r.origin
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(bad(
                    path,
                    line,
                    "routes.origin",
                    format!("{:?}: host:port", r.origin),
                ));
            }
            let tls = if r.tls {
                let verify = match r.verify.as_deref().unwrap_or("full") {
                    "full" => Verify::Full,
                    "signature" => Verify::Signature,
                    "off" => Verify::Off,
                    o => {
                        return Err(bad(
                            path,
                            line,
                            "routes.verify",
                            format!("{o:?}: full, signature or off"),
                        ));
                    }
                };
                if verify != Verify::Off && r.ca.is_none() {
                    return Err(bad(
                        path,
                        line,
                        "routes.ca",
                        "verifying an origin needs its CA bundle",
                    ));
                }
                let client_cert = match (r.client_cert, r.client_key) {
                    (Some(c), Some(k)) => Some((rel(&c), rel(&k))),
                    (None, None) => None,
                    _ => {
                        return Err(bad(
                            path,
                            line,
                            "routes.client_cert",
                            "client_cert and client_key go together",
                        ));
                    }
                };
                Some(OriginTls {
                    verify,
                    ca: r.ca.map(|c| rel(&c)),
                    sni: r.sni,
                    client_cert,
                })
            } else {
                if r.verify.is_some() || r.client_cert.is_some() || r.ca.is_some() {
                    return Err(bad(
                        path,
                        line,
                        "routes.tls",
                        "TLS settings on a plain-TCP route (set tls = true)",
                    ));
                }
                None
            };
            let send_proxy = match r.send_proxy.as_deref() {
                None => false,
                Some("v2") => true,
                Some(other) => {
                    return Err(bad(
                        path,
                        line,
                        "routes.send_proxy",
                        format!("{other:?}: \"v2\" (the only version sent)"),
                    ));
                }
            };
            routes.push(Route {
                fqdn,
                alpn: r.alpn,
                origin: r.origin,
                tls,
                send_proxy,
                line,
            });
        }
        let metrics = match &raw.server.metrics {
            None => None,
            Some(a) => Some(a.parse().map_err(|e| {
                bad(
                    path,
                    line_of("metrics"),
                    "server.metrics",
                    format!("{a:?}: {e}"),
                )
            })?),
        };
        // Beside the configuration by default: `/etc/edgetls/proxy.toml` → `/etc/edgetls/proxy.sock`.
        let control = match &raw.server.control {
            Some(c) => rel(c),
            None => std::path::absolute(path)
                .unwrap_or(path.to_path_buf())
                .with_extension("sock"),
        };
        let mut config = Config {
            listen,
            control,
            metrics,
            workers,
            max_connections: raw.server.max_connections.unwrap_or(10_000),
            handshake_timeout: duration(
                &raw.server.handshake_timeout,
                "handshake_timeout",
                Duration::from_secs(10),
            )?,
            idle_timeout: duration(
                &raw.server.idle_timeout,
                "idle_timeout",
                Duration::from_secs(300),
            )?,
            defer_accept: raw.server.defer_accept.unwrap_or(false),
            proxy_protocol_from: edgetls_proxy_protocol::Networks::parse(
                raw.server
                    .proxy_protocol_from
                    .as_deref()
                    .unwrap_or_default(),
            )
            .map_err(|e| {
                bad(
                    path,
                    line_of("proxy_protocol_from"),
                    "server.proxy_protocol_from",
                    e,
                )
            })?,
            session_cache: {
                let d = edgetls_policy::SessionCache::default();
                edgetls_policy::SessionCache {
                    sessions: raw.server.session_cache.unwrap_or(d.sessions),
                    timeout: duration(&raw.server.session_timeout, "session_timeout", d.timeout)?,
                }
            },
            sources: raw.certificates.sources.iter().map(|s| rel(s)).collect(),
            strict_sni: raw.certificates.strict_sni.unwrap_or(false),
            prepare_all: match raw.certificates.prepare.as_deref() {
                None | Some("lazy") => false,
                Some("all") => true,
                Some(o) => {
                    return Err(bad(
                        path,
                        line_of("prepare"),
                        "certificates.prepare",
                        format!("{o:?}: \"lazy\" or \"all\""),
                    ));
                }
            },
            cache_bytes: match &raw.certificates.cache {
                None => edgetls_certstore::DEFAULT_CACHE_BYTES,
                Some(s) => bytes(s).ok_or_else(|| {
                    bad(
                        path,
                        line_of("cache"),
                        "certificates.cache",
                        format!("{s:?}: a size such as \"512MiB\", \"2GiB\" or a number of bytes"),
                    )
                })?,
            },
            ocsp_update,
            policy: raw.policy.map(|p| rel(&p.file)),
            tickets,
            keyless: match raw.keyless {
                None => None,
                Some(k) => Some(Keyless {
                    sources: keyless_sources(k.sources, &raw.certificates.sources, &rel)
                        .map_err(|e| bad(path, line_of("[keyless]"), "keyless.sources", e))?,
                    servers: k.servers,
                    server_name: k.server_name,
                    cert: rel(&k.cert),
                    key: rel(&k.key),
                    ca: rel(&k.ca),
                }),
            },
            acme: match raw.acme {
                None => None,
                Some(a) => Some(
                    a.resolve(&rel)
                        .map_err(|e| bad(path, line_of("[acme]"), "acme", e))?,
                ),
            },
            admin: None,
            routes,
        };
        if let Some(a) = raw.admin {
            let storage = match (a.storage, &config.acme) {
                (Some(s), _) => rel(&s),
                (None, Some(acme)) => acme.config.storage.clone(),
                (None, None) => {
                    return Err(bad(
                        path,
                        line_of("[admin]"),
                        "admin.storage",
                        "required without [acme]: the directory added certificates are written to",
                    ));
                }
            };
            let http = match (a.http, a.token_file) {
                (None, None) => None,
                (Some(addr), Some(token)) => {
                    let at = line_of("[admin]");
                    let addr: std::net::SocketAddr = addr
                        .parse()
                        .map_err(|e| bad(path, at, "admin.http", format!("{addr:?}: {e}")))?;
                    if !addr.ip().is_loopback() {
                        return Err(bad(
                            path,
                            at,
                            "admin.http",
                            format!(
                                "{addr}: plain HTTP with a bearer token belongs on loopback (127.0.0.1, ::1)"
                            ),
                        ));
                    }
                    Some((addr, rel(&token)))
                }
                _ => {
                    return Err(bad(
                        path,
                        line_of("[admin]"),
                        "admin.http",
                        "http and token_file go together",
                    ));
                }
            };
            let socket = rel(&a.socket);
            if std::path::absolute(&socket).ok() == std::path::absolute(&config.control).ok() {
                return Err(bad(
                    path,
                    line_of("[admin]"),
                    "admin.socket",
                    format!(
                        "{}: the control socket's path (upgrades and handovers use it; [server] control, by default the configuration's name with .sock)",
                        socket.display()
                    ),
                ));
            }
            config.admin = Some(crate::proxy::admin::AdminSection {
                socket,
                storage,
                http,
            });
        }
        // The ACME and admin storage directories are certificate sources, named or not.
        let managed = [
            config.acme.as_ref().map(|a| a.config.storage.clone()),
            config.admin.as_ref().map(|a| a.storage.clone()),
        ];
        for dir in managed.into_iter().flatten() {
            if !config.sources.contains(&dir) {
                config.sources.push(dir);
            }
        }
        Ok(config)
    }

    /// The settings of `self` that differ from `running`'s and that a reload cannot take (the
    /// process keeps the ones it started with; `edgetls upgrade` takes them).
    pub(crate) fn fixed_changes(&self, running: &Config) -> Vec<&'static str> {
        [
            ("server.listen", self.listen != running.listen),
            ("server.workers", self.workers != running.workers),
            ("server.metrics", self.metrics != running.metrics),
            ("certificates.sources", self.sources != running.sources),
            ("keyless", self.keyless != running.keyless),
            ("tickets", self.tickets != running.tickets),
            ("acme", self.acme != running.acme),
            ("admin", self.admin != running.admin),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }

    /// The first route for a connection that asked for `sni` and negotiated `alpn`.
    pub(crate) fn route(&self, sni: Option<&str>, alpn: Option<&[u8]>) -> Option<&Route> {
        let name = sni.map(str::to_ascii_lowercase);
        self.routes.iter().find(|r| {
            let by_name = match (r.fqdn.as_str(), name.as_deref()) {
                ("*", _) => true,
                (_, None) => false,
                (f, Some(n)) => match f.strip_prefix("*.") {
                    Some(domain) => n.split_once('.').is_some_and(|(_, d)| d == domain),
                    None => f == n,
                },
            };
            by_name && r.alpn.as_deref().is_none_or(|a| alpn == Some(a.as_bytes()))
        })
    }
}
