//! `edgetls-keyserver`: serve the private keys of a directory to keyless clients.

use clap::Parser;
use edgetls_keyserver::{
    Authz, KeyServer, KeyServerError, KeyStore, ServerOptions, serve_metrics, tls_acceptor,
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
            metrics
        );
        self.strip_rsa_padding |= file.strip_rsa_padding;
        Ok(self)
    }
}

fn required<'a, T>(v: &'a Option<T>, flag: &str) -> Result<&'a T, KeyServerError> {
    v.as_ref().ok_or_else(|| {
        KeyServerError::Invalid(format!("--{flag} is required (flag or config file)"))
    })
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
    let keys_dir = required(&args.keys, "keys")?;
    let (keys, problems) = KeyStore::load_dir(keys_dir)?;
    for p in &problems {
        eprintln!("edgetls-keyserver: skipped {p}");
    }
    if keys.is_empty() {
        return Err(KeyServerError::Invalid(format!(
            "no usable key in {}",
            keys_dir.display()
        )));
    }
    let key_count = keys.len();
    let tls = tls_acceptor(
        required(&args.cert, "cert")?,
        required(&args.key, "key")?,
        required(&args.client_ca, "client-ca")?,
    )?;
    let authz = match &args.authz {
        Some(path) => Authz::load(path)?,
        None => Authz::open(),
    };
    let defaults = ServerOptions::default();
    let opts = ServerOptions {
        workers: args.workers.unwrap_or(defaults.workers),
        max_in_flight: args.max_in_flight.unwrap_or(defaults.max_in_flight).max(1),
        idle_timeout: args.idle_timeout.unwrap_or(defaults.idle_timeout),
        read_timeout: args.read_timeout.unwrap_or(defaults.read_timeout),
        delay: args.delay.unwrap_or_default(),
        jitter: args.jitter.unwrap_or_default(),
        strip_rsa_padding: args.strip_rsa_padding,
        ..defaults
    };
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
        keys_dir.display()
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
