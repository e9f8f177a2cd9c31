//! `edgetls-keyserver`: serve the private keys of a directory to keyless clients.

use clap::Parser;
use edgetls_keyserver::{
    Authz, DirStore, KeyServer, KeyServerError, KeySet, KeyStore, Pkcs11Options, Pkcs11Store,
    Pkcs11Uri, ServerOptions, serve_metrics, tls_acceptor,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Flags override the same settings in `--config` (TOML, keys named like the flags with `_`).
#[derive(Parser, Debug, Default, serde::Deserialize)]
#[command(
    name = "edgetls-keyserver",
    version,
    about = "Keyless key server: private-key operations over mutual TLS"
)]
#[serde(deny_unknown_fields, default)]
struct Args {
    /// TOML file with any of the settings below.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Address to listen on (default port 2407).
    #[arg(long)]
    listen: Option<String>,
    /// Directory of private keys (PEM or DER; PKCS#1, PKCS#8, SEC1).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Serve the keys of a PKCS#11 token (RFC 7512 URI with module-path and pin-value or
    /// pin-source), e.g. 'pkcs11:token=edge?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/keyless/pin'.
    /// Repeatable; with or without --keys.
    #[arg(long, value_name = "URI")]
    #[serde(default)]
    pkcs11: Vec<String>,
    /// Sessions per token (default: one per worker; at most what the token allows).
    #[arg(long)]
    pkcs11_sessions: Option<usize>,
    /// Threads per token that run its operations, so workers never wait on a device; 0: run
    /// them on the workers. Default: one per session for hardware slots, 0 for software tokens
    /// (SoftHSM), whose operations are CPU work.
    #[arg(long)]
    pkcs11_threads: Option<usize>,
    /// The server's certificate chain (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// CA certificates that issue client certificates; a client certificate is required.
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// Which clients may use which keys (see the crate docs); default: all clients, all keys.
    #[arg(long)]
    authz: Option<PathBuf>,
    /// Hold each answer this long, e.g. 50ms (to emulate a distant key server).
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_opt", default)]
    delay: Option<Duration>,
    /// Add up to this much random delay per answer.
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_opt", default)]
    jitter: Option<Duration>,
    /// Worker threads, which also do the private-key operations (default: cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Requests in flight per connection before reading pauses (default 1024).
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// Close connections idle this long (default 300s).
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_opt", default)]
    idle_timeout: Option<Duration>,
    /// Close connections whose handshake or a partial frame stalls this long (default 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_opt", default)]
    read_timeout: Option<Duration>,
    /// Serve Prometheus metrics over HTTP on this address.
    #[arg(long)]
    metrics: Option<String>,
    /// Answer RSA decrypt (0x01) without PKCS#1 padding, as the older C key server did.
    #[arg(long)]
    #[serde(default)]
    strip_rsa_padding: bool,
}

mod humantime_opt {
    use serde::Deserialize;
    use std::time::Duration;
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Args {
    /// Fills settings not given as flags from the config file.
    fn merge(mut self) -> Result<Args, KeyServerError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| KeyServerError::Io {
            path: path.clone(),
            source,
        })?;
        let file: Args = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map_or(0, |s| text[..s.start].matches('\n').count() + 1);
            KeyServerError::Config {
                path: path.clone(),
                line,
                message: e.message().to_string(),
            }
        })?;
        macro_rules! fill { ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = file.$f; } )* } }
        fill!(
            listen,
            keys,
            cert,
            key,
            client_ca,
            authz,
            delay,
            jitter,
            workers,
            max_in_flight,
            idle_timeout,
            read_timeout,
            metrics,
            pkcs11_sessions,
            pkcs11_threads
        );
        if self.pkcs11.is_empty() {
            self.pkcs11 = file.pkcs11;
        }
        self.strip_rsa_padding |= file.strip_rsa_padding;
        Ok(self)
    }
}

fn required<'a, T>(v: &'a Option<T>, flag: &str) -> Result<&'a T, KeyServerError> {
    v.as_ref().ok_or_else(|| {
        KeyServerError::Invalid(format!("--{flag} is required (flag or config file)"))
    })
}

/// The key directory and the tokens, in that order; each must hold a key.
fn load_keys(args: &Args) -> Result<KeySet, KeyServerError> {
    if args.keys.is_none() && args.pkcs11.is_empty() {
        return Err(KeyServerError::Invalid(
            "--keys DIR or --pkcs11 URI is required (flag or config file)".into(),
        ));
    }
    let mut set = KeySet::default();
    let mut add = |store: Arc<dyn KeyStore>, problems: Vec<String>| {
        for p in &problems {
            eprintln!("edgetls-keyserver: skipped {p}");
        }
        if store.is_empty() {
            return Err(KeyServerError::Invalid(format!(
                "no usable key in {}",
                store.describe()
            )));
        }
        set.push(store);
        Ok(())
    };
    if let Some(dir) = &args.keys {
        let (store, problems) = DirStore::load_dir(dir)?;
        add(
            Arc::new(store),
            problems.iter().map(|p| p.to_string()).collect(),
        )?;
    }
    let mut opts = Pkcs11Options::default();
    opts.sessions = args
        .pkcs11_sessions
        .or(args.workers)
        .unwrap_or(opts.sessions)
        .max(1);
    opts.threads = args.pkcs11_threads;
    for text in &args.pkcs11 {
        let uri: Pkcs11Uri = text.parse().map_err(|message| KeyServerError::Pkcs11 {
            uri: text.split('?').next().unwrap_or_default().to_string(),
            message,
        })?;
        let (store, skipped) = Pkcs11Store::open(&uri, &opts)?;
        eprintln!(
            "edgetls-keyserver: {uri}: {} keys, operations on {}",
            store.len(),
            if store.own_threads() {
                "the token's own threads"
            } else {
                "the workers"
            }
        );
        let skipped = skipped.into_iter().map(|s| format!("{uri}: {s}")).collect();
        add(Arc::new(store), skipped)?;
    }
    Ok(set)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgetls-keyserver: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<(), KeyServerError> {
    let args = args.merge()?;
    let keys = load_keys(&args)?;
    let key_count = keys.len();
    let sources: Vec<String> = keys.stores().iter().map(|s| s.describe()).collect();
    let tls = tls_acceptor(
        required(&args.cert, "cert")?,
        required(&args.key, "key")?,
        required(&args.client_ca, "client-ca")?,
    )?;
    let authz = match &args.authz {
        Some(path) => Authz::load(path)?,
        None => Authz::open(),
    };
    let mut opts = ServerOptions::default();
    opts.workers = args.workers.unwrap_or(opts.workers);
    opts.max_in_flight = args.max_in_flight.unwrap_or(opts.max_in_flight).max(1);
    opts.idle_timeout = args.idle_timeout.unwrap_or(opts.idle_timeout);
    opts.read_timeout = args.read_timeout.unwrap_or(opts.read_timeout);
    opts.delay = args.delay.unwrap_or_default();
    opts.jitter = args.jitter.unwrap_or_default();
    opts.strip_rsa_padding = args.strip_rsa_padding;
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| format!("0.0.0.0:{}", edgetls_keyless_proto::DEFAULT_PORT));
    let bind = |addr: &str| {
        std::net::TcpListener::bind(addr).map_err(|source| KeyServerError::Listen {
            addr: addr.to_string(),
            source,
        })
    };
    let listener = bind(&listen)?;
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let threads = opts.workers.max(1);
    let server = Arc::new(KeyServer::new(keys, authz, tls, opts)?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // A small runtime of its own for signals and the metrics endpoint.
    let side = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| KeyServerError::Io {
            path: PathBuf::from("tokio runtime"),
            source,
        })?;
    if let Some(addr) = args.metrics.clone() {
        let metrics_listener = bind(&addr)?;
        metrics_listener
            .set_nonblocking(true)
            .map_err(|source| KeyServerError::Listen {
                addr: addr.clone(),
                source,
            })?;
        let (metrics, stopped) = (server.metrics(), stopped.clone());
        let _enter = side.enter();
        let metrics_listener = tokio::net::TcpListener::from_std(metrics_listener)
            .map_err(|source| KeyServerError::Listen { addr, source })?;
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        side.spawn(serve_metrics(metrics_listener, Arc::new(registry), stopped));
    }
    side.spawn(async move {
        wait_for_signal().await;
        eprintln!("edgetls-keyserver: shutting down, finishing requests in flight");
        let _ = stop.send(true);
    });
    let side_thread = std::thread::spawn(move || side.block_on(std::future::pending::<()>()));
    println!(
        "edgetls-keyserver: {key_count} keys from {}, listening on {local}",
        sources.join(", ")
    );
    server.serve_per_core(listener, threads, stopped)?;
    drop(side_thread);
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        }
        _ => std::future::pending::<()>().await,
    }
}
