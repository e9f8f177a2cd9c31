//! `edgetls proxy --config FILE`: the crates composed into a TLS terminator.

mod acme;
mod admin;
mod admin_check;
mod admin_http;
pub(crate) mod config;
pub(crate) mod handover;
mod listeners;
mod memory;
mod metrics;
mod on_demand;
mod origin;
mod peek;
mod pipe;
mod problems;
mod proxied;
mod sd_notify;
mod watch;
mod worker;

use crate::error::CliError;
use arc_swap::ArcSwap;
use clap::Args;
use config::Config;
pub(crate) use config::Tickets;
use edgetls_certstore::{CertStore, LoadOptions, Source};
use edgetls_engine::{KeylessKey, RemoteKey, StoreKeys, enable_async};
use edgetls_keyless_client::{ClientConfig, PerThreadClient, ServerSpec};
use edgetls_policy::{Env, PolicySources, PolicyStore};
use edgetls_tickets::{TicketConfig, TicketKeys};
use openssl::ssl::{SslAcceptor, SslContext, SslMethod};
use origin::Origins;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub(crate) struct ProxyArgs {
    /// The proxy's TOML configuration (see docs/proxy.md).
    #[arg(long)]
    config: PathBuf,
    /// Load and check everything, then exit (0 when valid).
    #[arg(long)]
    check: bool,
    /// Take the listening sockets of the proxy running on the same control socket, then tell
    /// it to drain (what `edgetls upgrade` runs).
    #[arg(long)]
    pub(crate) takeover: bool,
}

/// What every worker shares. Everything on the handshake path is read through atomically
/// swapped snapshots (certificate index, policy, ticket ring, routes).
pub(crate) struct Shared {
    pub(crate) routes: ArcSwap<(Config, Origins)>,
    pub(crate) certs: Arc<CertStore>,
    pub(crate) policy: Arc<PolicyStore>,
    pub(crate) tickets: Option<Arc<TicketKeys>>,
    pub(crate) base: SslContext,
    pub(crate) active: AtomicUsize,
    /// Listeners defer accept until data arrives (`[server] defer_accept`; fixed at start).
    pub(crate) defer_accept: bool,
    pub(crate) limit: Arc<tokio::sync::Semaphore>,
    pub(crate) metrics: metrics::Metrics,
    /// The key servers' clients: one per worker, each attached on its worker's thread.
    pub(crate) keyless: Option<Arc<PerThreadClient>>,
    /// Fetches OCSP responses when any chain asks (set once the proxy serves).
    pub(crate) ocsp: std::sync::OnceLock<edgetls_certstore::OcspUpdater>,
    /// `[acme]`: the challenges the listeners answer, and what the orders count.
    pub(crate) acme: Option<Arc<acme::AcmeState>>,
}

pub(crate) fn run(args: &ProxyArgs) -> ExitCode {
    match start(args, |_, _| {}) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edgetls proxy: {e}");
            ExitCode::from(2)
        }
    }
}

/// Everything the proxy serves, and the certificate store's load report.
fn setup(config: Config) -> Result<(Shared, edgetls_certstore::Report), CliError> {
    let mut opts = LoadOptions::default();
    opts.cache_bytes = Some(config.cache_bytes);
    opts.strict_sni = config.strict_sni;
    let mut remote_keys = false;
    let mut keyless = None;
    if let Some(k) = &config.keyless {
        let mut c = ClientConfig::new(
            k.servers
                .iter()
                .map(|s| ServerSpec::new(s.clone(), k.server_name.clone()))
                .collect(),
            &k.cert,
            &k.key,
            &k.ca,
        );
        c.request_timeout = Duration::from_secs(2);
        let client = Arc::new(
            PerThreadClient::new(c).map_err(|e| CliError::Setup(format!("keyless: {e}")))?,
        );
        keyless = Some(Arc::clone(&client));
        let remote: Arc<dyn RemoteKey> = Arc::new(KeylessKey::per_thread(client));
        opts.remote_keys = Some(Arc::new(StoreKeys::new(remote)));
        opts.remote_key_sources = k.sources.clone();
        remote_keys = true;
    }
    if let Some(a) = &config.admin {
        edgetls_acme::prepare_storage(&a.storage)
            .map_err(|e| CliError::Setup(format!("[admin] storage: {e}")))?;
    }
    let acme = match &config.acme {
        Some(a) => {
            acme::prepare(a).map_err(|e| CliError::Setup(format!("[acme] storage: {e}")))?;
            Some(Arc::new(acme::AcmeState::default()))
        }
        None => None,
    };
    let sources = config
        .sources
        .iter()
        .map(Source::detect)
        .collect::<Result<Vec<_>, _>>()?;
    let (certs, report) = CertStore::load(sources, opts)?;
    for p in &report.problems {
        tracing::warn!("{p}");
    }
    if config.prepare_all {
        for (path, e) in certs.prepare_all() {
            tracing::warn!("{}: {e}", path.display());
        }
    }
    let certs = Arc::new(certs);
    let tickets = match &config.tickets {
        Some(source) => Some(Arc::new(crate::tickets::keys(source)?)),
        None => None,
    };
    let env = Env {
        tickets: tickets
            .as_ref()
            .map(|t| (Arc::clone(t), TicketConfig::default())),
        session_cache: config.session_cache,
        ..Env::default()
    };
    let policy = PolicyStore::load(
        PolicySources {
            file: config.policy.clone(),
            crt_list: Some(Arc::clone(&certs)),
            default_rule: true,
        },
        env,
    )
    .map_err(|e| CliError::Setup(e.to_string()))?;
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    let mut hooks = edgetls_policy::AcmeHooks::default();
    if let (Some(state), Some(section)) = (&acme, &config.acme) {
        hooks.answers = Some(Arc::new(acme::Answers(Arc::clone(&state.challenges))));
        if let Some(od) = &section.on_demand {
            let demand = Arc::new(on_demand::Demand::new(od.clone(), Arc::clone(state)));
            let _ = state.on_demand.set(Arc::clone(&demand));
            hooks.on_demand = Some(demand);
        }
    }
    edgetls_policy::install_with_acme(&mut b, Arc::clone(&policy), Some(Arc::clone(&certs)), hooks)
        .map_err(|e| CliError::Setup(e.to_string()))?;
    if remote_keys {
        // Remote keys: a handshake waiting for the key server pauses; the worker goes on.
        enable_async(&mut b);
    }
    // Idle connections give their read and write buffers back (≈ 34 KiB each otherwise).
    b.set_mode(openssl::ssl::SslMode::RELEASE_BUFFERS);
    // Read ahead: one read takes whatever has arrived, not a record header and then its body
    // (a full TLS 1.3 handshake and a request: ≈ 8 fewer recvfrom calls per connection).
    b.set_read_ahead(true);
    let base = b.build().into_context();
    let origins = Origins::build(&config.routes)?;
    let defer_accept = config.defer_accept;
    let limit = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let shared = Shared {
        routes: ArcSwap::from_pointee((config, origins)),
        certs,
        policy,
        tickets,
        base,
        active: AtomicUsize::new(0),
        defer_accept,
        limit,
        metrics: metrics::Metrics::default(),
        keyless,
        ocsp: std::sync::OnceLock::new(),
        acme,
    };
    Ok((shared, report))
}

/// `--check`: 0 when everything loads, 1 when a certificate entry failed or none is served
/// (as `haproxy -c` and `edgetls certs check`); configuration errors exit 2 before this.
fn check_outcome(path: &std::path::Path, report: &edgetls_certstore::Report) -> ExitCode {
    if report.failed == 0 && report.loaded > 0 {
        println!(
            "edgetls proxy: {} is valid ({} certificate entries)",
            path.display(),
            report.loaded
        );
        return ExitCode::SUCCESS;
    }
    for p in report.errors() {
        eprintln!("{p}");
    }
    if report.loaded == 0 {
        eprintln!(
            "edgetls proxy: {}: no certificate would be served ({} entries failed)",
            path.display(),
            report.failed
        );
    } else {
        eprintln!(
            "edgetls proxy: {}: {} certificate entries failed ({} would be served)",
            path.display(),
            report.failed,
            report.loaded
        );
    }
    ExitCode::from(1)
}

impl ProxyArgs {
    pub(crate) fn new(config: PathBuf) -> ProxyArgs {
        ProxyArgs {
            config,
            check: false,
            takeover: false,
        }
    }
}

/// Runs the proxy until SIGTERM/SIGINT, then drains. `ready` is called once every listener and
/// the metrics endpoint are bound (the demo prints its commands from there).
pub(crate) fn start(
    args: &ProxyArgs,
    ready: impl Fn(&[std::net::SocketAddr], Option<std::net::SocketAddr>),
) -> Result<ExitCode, CliError> {
    // Logs on stderr; RUST_LOG overrides the level (e.g. RUST_LOG=debug shows every failed
    // connection with its peer and reason).
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let config = Config::load(&args.config)?;
    let (listen, workers, metrics_addr) = (config.listen.clone(), config.workers, config.metrics);
    let control = config.control.clone();
    // Armed before the files are read, so that no change made while they load is lost.
    let armed = (!args.check)
        .then(|| watch::arm(&args.config, &config))
        .flatten();
    let (shared, report) = setup(config)?;
    if args.check {
        return Ok(check_outcome(&args.config, &report));
    }
    let shared = Arc::new(shared);
    let watcher = armed.map(|a| watch::complete(a, &shared));
    let ocsp_options = shared.routes.load().0.ocsp_update.clone();
    let updater = edgetls_certstore::OcspUpdater::spawn(&shared.certs, ocsp_options)
        .map_err(|e| CliError::Setup(format!("OCSP updater: {e}")))?;
    let _ = shared.ocsp.set(updater);
    raise_fd_limit();
    // A successor takes its predecessor's sockets only now, with everything loaded: a
    // configuration that does not load never touches the running process.
    let mut predecessor = match args.takeover {
        true => Some(handover::take(&control)?),
        false => None,
    };
    let handed = predecessor
        .as_mut()
        .map(|p| std::mem::take(&mut p.sockets))
        .unwrap_or_default();
    let sockets = listeners::assign(&listen, workers, shared.defer_accept, metrics_addr, handed)?;
    let addrs = sockets.addrs.clone();
    let offered = sockets.offered.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut threads = Vec::new();
    for (i, mine) in sockets.per_worker.into_iter().enumerate() {
        threads.push(worker::spawn(
            i,
            Arc::clone(&shared),
            mine,
            stop_rx.clone(),
        )?);
    }
    for a in &addrs {
        let plural = if workers == 1 { "" } else { "s" };
        println!(
            "edgetls proxy: listening on {a} ({workers} worker{plural}, {})",
            edgetls_tls::library::version()
        );
    }
    let mut metrics_bound = None;
    if let Some(m) = sockets.metrics {
        let shown = m.local_addr().map_or("metrics".into(), |a| a.to_string());
        let bound = serve_metrics(m, &shared).map_err(|source| CliError::Listen {
            addr: shown,
            source,
        })?;
        println!("edgetls proxy: metrics on http://{bound}/metrics");
        metrics_bound = Some(bound);
    }
    // Every worker accepts: the predecessor may stop.
    if let Some(p) = predecessor {
        let pid = p.pid;
        p.drain()?;
        tracing::info!(
            "took over {} listening sockets from pid {pid}, which drains",
            sockets.reused
        );
    }
    let drain = Arc::new(tokio::sync::Notify::new());
    let _control = control_socket(&control, offered, Arc::clone(&drain), args.takeover);
    sd_notify::notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
    if let Some(admin) = &shared.routes.load().0.admin {
        admin::serve(admin, Arc::clone(&shared)).map_err(|source| CliError::Listen {
            addr: admin.socket.display().to_string(),
            source,
        })?;
        if let Some((addr, token_file)) = &admin.http {
            let token = admin::read_token(token_file).map_err(CliError::Setup)?;
            let bound = admin_http::serve(*addr, token, admin.clone(), Arc::clone(&shared))
                .map_err(|source| CliError::Listen {
                    addr: addr.to_string(),
                    source,
                })?;
            tracing::info!("admin API on http://{bound}/ (bearer token)");
        }
    }
    // Orders start once the listeners answer TLS-ALPN-01 validations.
    let acme_section = shared.routes.load().0.acme.clone();
    if let (Some(section), Some(state)) = (acme_section, &shared.acme) {
        let for_reload = Arc::clone(&shared);
        let _ = state.on_stored.set(Arc::new(move |path: &std::path::Path| {
            let r = reload_certificates(&for_reload, &[path.to_path_buf()]);
            report_reload(&for_reload, r, "ACME");
        }));
        acme::spawn(section, Arc::clone(state)).map_err(|source| CliError::Listen {
            addr: "[acme] http_listen".into(),
            source,
        })?;
    }
    ready(&addrs, metrics_bound);
    if let Some(w) = watcher {
        watch::start(w, Arc::clone(&shared));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Setup(e.to_string()))?;
    let handed_over = rt.block_on(signals(&args.config, &shared, &drain))?;
    if !handed_over {
        // (A process that handed over is not the service stopping: its successor is it now.)
        sd_notify::notify("STOPPING=1");
    }
    // Stop accepting; let established connections finish (up to 30 s).
    let _ = stop_tx.send(true);
    let until = Instant::now() + Duration::from_secs(30);
    while shared.active.load(Relaxed) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = shared.active.load(Relaxed);
    tracing::info!("stopped ({left} connections still open)");
    drop(threads);
    Ok(ExitCode::SUCCESS)
}

/// Serves the metrics on `l` (HTTP, `GET /metrics`) from a thread of its own.
fn serve_metrics(
    l: std::net::TcpListener,
    shared: &Arc<Shared>,
) -> std::io::Result<std::net::SocketAddr> {
    let bound = l.local_addr()?;
    let registry = Arc::new(metrics::registry(shared));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let l = {
        let _in = rt.enter();
        tokio::net::TcpListener::from_std(l)?
    };
    std::thread::Builder::new()
        .name("edgetls-metrics".into())
        .spawn(move || {
            // Runs as long as the process: nothing ever asks it to stop.
            let (_keep, never) = tokio::sync::watch::channel(false);
            rt.block_on(edgetls_keyserver::serve_metrics(l, registry, never));
        })?;
    Ok(bound)
}

/// What a reload did: its summary line, and how many of its problems left an entry or line
/// unserved or serving its previous version (each already logged as a problem line).
pub(crate) struct Reloaded {
    summary: String,
    errors: usize,
    /// Only entries of known files were read again: the set of files to watch is the same.
    pub(crate) partial: bool,
}

/// Logs the certificate store's problems from a reload as problem lines (file, line, what),
/// as at start-up; the number of errors among them.
fn log_problems(report: &edgetls_certstore::Report) -> usize {
    for p in &report.problems {
        tracing::warn!("{p}");
    }
    report.errors().count()
}

/// Counts and logs a reload: `failed` when it was refused (the previous configuration keeps
/// serving) or when a file it read is broken (that entry keeps its previous version or is not
/// served; the problem lines above say which).
pub(crate) fn report_reload(shared: &Shared, r: Result<Reloaded, CliError>, why: &str) {
    shared
        .metrics
        .reload(matches!(&r, Ok(Reloaded { errors: 0, .. })));
    match r {
        Ok(Reloaded {
            summary, errors: 0, ..
        }) => {
            tracing::info!("reloaded ({why}): {summary}");
        }
        Ok(Reloaded {
            summary, errors, ..
        }) => {
            tracing::warn!(
                "reloaded with {errors} problem(s) in the files read, see the lines above ({why}): {summary}"
            );
        }
        Err(e) => {
            tracing::error!("reload failed ({why}), the previous configuration keeps serving: {e}");
        }
    }
}

/// Serves the control socket at `path` (for `edgetls upgrade`). Without one the proxy still
/// serves: the reason is logged. A path another running proxy answers on is left to it, unless
/// this process just took over from it.
fn control_socket(
    path: &std::path::Path,
    offered: Vec<(handover::Kind, std::net::SocketAddr, std::os::fd::RawFd)>,
    drain: Arc<tokio::sync::Notify>,
    took_over: bool,
) -> Option<handover::Control> {
    if !took_over {
        if let Some(pid) = handover::status(path) {
            tracing::warn!(
                "control socket {}: pid {pid} answers there; this process has none \
                 (`edgetls upgrade` reaches pid {pid}; set [server] control to run two)",
                path.display()
            );
            return None;
        }
    }
    handover::serve(path, offered, drain)
        .map_err(|e| tracing::warn!("{e}; `edgetls upgrade` cannot reach this process"))
        .ok()
}

/// Each connection holds two descriptors (client and origin): take the hard limit.
fn raise_fd_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads and writes this process's limit through a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// Waits for SIGTERM/SIGINT or a successor's `drain` (then true); reloads on SIGHUP; gives the
/// main thread's unused memory back.
async fn signals(
    path: &std::path::Path,
    shared: &Shared,
    drain: &tokio::sync::Notify,
) -> Result<bool, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let sig = |k| signal(k).map_err(|e| CliError::Setup(format!("signals: {e}")));
    let (mut hup, mut term, mut int) = (
        sig(SignalKind::hangup())?,
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
    );
    let mut every = tokio::time::interval(memory::EVERY);
    let handed_over = loop {
        tokio::select! {
            _ = every.tick() => memory::tick(),
            _ = hup.recv() => report_reload(shared, reload(path, shared), "SIGHUP"),
            _ = term.recv() => break false,
            _ = int.recv() => break false,
            _ = drain.notified() => break true,
        }
    };
    tracing::info!("draining");
    Ok(handed_over)
}

/// Reloads after certificate or key files changed in place (`changed`): only the entries that
/// name them are read again (a full reload of the certificates when that cannot be done, see
/// `CertStore::reload_changed`); the configuration and ticket keys are left as they are. The
/// policy is rebuilt: rules from crt-list options follow the names of the certificates.
pub(crate) fn reload_certificates(
    shared: &Shared,
    changed: &[PathBuf],
) -> Result<Reloaded, CliError> {
    let started = Instant::now();
    // Nothing named: every source is read again (what a removed file needs).
    let report = match changed {
        [] => shared.certs.reload()?,
        _ => shared.certs.reload_changed(changed)?,
    };
    let errors = log_problems(&report);
    // Rules from crt-list options follow the entries' names and options: unchanged when the
    // reload changed no claim (a certificate replaced for the same names).
    if !report.same_claims {
        shared
            .policy
            .reload()
            .map_err(|e| CliError::Setup(e.to_string()))?;
    }
    Ok(Reloaded {
        summary: format!(
            "{} certificate entries ({} failed, {} kept their previous version, {} read again) in {} ms",
            report.loaded,
            report.failed,
            report.kept_previous,
            report.entries.saturating_sub(report.reused),
            started.elapsed().as_millis()
        ),
        errors,
        partial: report.partial,
    })
}

/// Lowers the calling thread's scheduling priority (nice 10): the maintenance threads — file
/// watching and reloads, the admin API, ACME — give way to the workers whenever a core is
/// contended, so that a reload or an order never lengthens a handshake. Best effort.
pub(crate) fn background() {
    // SAFETY: gettid(2) has no preconditions; setpriority(2) on this thread's own id only
    // changes its nice value, and its failure (e.g. a seccomp filter) is ignored.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// Reloads the certificate store (every source read again, unchanged files reused) and the
/// policy built on its entries — what a source or a certificate directory's listing changing
/// needs; the configuration is not read again.
pub(crate) fn reload_store(shared: &Shared) -> Result<Reloaded, CliError> {
    let started = Instant::now();
    let report = shared.certs.reload()?;
    let errors = log_problems(&report);
    // Even with the same claims: a crt-list line's options may have changed.
    shared
        .policy
        .reload()
        .map_err(|e| CliError::Setup(e.to_string()))?;
    Ok(Reloaded {
        summary: format!(
            "{} certificate entries ({} failed, {} kept their previous version, {} read again), \
             {} rules, in {} ms (certificates {} ms)",
            report.loaded,
            report.failed,
            report.kept_previous,
            report.entries.saturating_sub(report.reused),
            shared.policy.current().rules().len(),
            started.elapsed().as_millis(),
            report.elapsed.as_millis()
        ),
        errors,
        partial: false,
    })
}

/// Reloads certificates, policy, ticket keys and routes. A broken configuration or policy is
/// reported and the one in force stays; broken certificate entries keep their previous version.
fn reload(path: &std::path::Path, shared: &Shared) -> Result<Reloaded, CliError> {
    let started = Instant::now();
    let config = Config::load(path)?;
    let origins = Origins::build(&config.routes)?;
    let fixed = config.fixed_changes(&shared.routes.load().0);
    if !fixed.is_empty() {
        tracing::warn!(
            "{}: changed {}, which a reload does not take: run `edgetls upgrade` (the rest reloads now)",
            path.display(),
            fixed.join(", ")
        );
    }
    let report = shared.certs.reload()?;
    let errors = log_problems(&report);
    shared
        .policy
        .reload()
        .map_err(|e| CliError::Setup(e.to_string()))?;
    if let Some(t) = &shared.tickets {
        t.refresh()
            .map_err(|e| CliError::Setup(format!("tickets: {e}")))?;
    }
    let routes = config.routes.len();
    shared.routes.store(Arc::new((config, origins)));
    Ok(Reloaded {
        summary: format!(
            "{} certificate entries ({} failed, {} kept their previous version, {} read again), \
             {} rules, {routes} routes, in {} ms (certificates {} ms)",
            report.loaded,
            report.failed,
            report.kept_previous,
            report.entries.saturating_sub(report.reused),
            shared.policy.current().rules().len(),
            started.elapsed().as_millis(),
            report.elapsed.as_millis()
        ),
        errors,
        partial: false,
    })
}
