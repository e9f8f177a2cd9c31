//! `edgetls certs check` and `edgetls certs lookup` (files); the runtime API's commands are in
//! `admin_client`.

use clap::{Args, Subcommand};
use edgetls_certstore::{CertStore, CertStoreError, LoadOptions, Report, Source};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub(crate) enum CertsCommand {
    /// Load and validate every entry; print a summary and every problem.
    /// Exit 0: all entries loaded; 1: some failed (the rest are reported); 2: a source is unusable.
    Check {
        /// Directories, ssl_multicert.config files or crt-lists (detected unless forced).
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        #[command(flatten)]
        kind: SourceArgs,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print, per NAME, the entry a connection would get: NAME, its first certificate file, and
    /// how it matched (exact, wildcard, ip, default) — or `none`.
    Lookup {
        /// A directory, an ssl_multicert.config or a crt-list (detected unless forced).
        source: PathBuf,
        #[command(flatten)]
        kind: SourceArgs,
        /// The local address the connection arrived on (ADDR or ADDR:PORT).
        #[arg(long)]
        ip: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    #[command(flatten)]
    Admin(crate::admin_client::AdminCommand),
}

#[derive(Args)]
pub(crate) struct SourceArgs {
    /// Treat every SOURCE as a directory.
    #[arg(long, conflicts_with_all = ["multicert", "crt_list"])]
    dir: bool,
    /// Treat every SOURCE as an ssl_multicert.config.
    #[arg(long, conflicts_with = "crt_list")]
    multicert: bool,
    /// Treat every SOURCE as a HAProxy crt-list.
    #[arg(long)]
    crt_list: bool,
    /// File holding the passphrase for encrypted keys (first line).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Also parse every certificate with OpenSSL now (slower: ~97 us per certificate), so that
    /// "loaded" means OpenSSL itself accepted it, not only the strict DER parser.
    #[arg(long)]
    deep: bool,
    /// The sources are keyless: their certificates' keys are on a key server (found by the SKI
    /// of the certificate's public key), so a missing key is not an error.
    #[arg(long)]
    keyless: bool,
}

/// Accepts remote-key entries when checking; never asked for a key object (a check serves no
/// handshake).
struct KeysElsewhere;

impl edgetls_certstore::KeySource for KeysElsewhere {
    fn private_key(
        &self,
        _leaf: &openssl::x509::X509Ref,
    ) -> Result<openssl::pkey::PKey<openssl::pkey::Private>, String> {
        Err("certs check serves no handshakes".into())
    }
}

impl SourceArgs {
    fn sources(&self, paths: &[PathBuf]) -> Result<Vec<Source>, CertStoreError> {
        paths
            .iter()
            .map(|p| {
                if self.dir {
                    Ok(Source::Dir(p.clone()))
                } else if self.multicert {
                    Ok(Source::Multicert(p.clone()))
                } else if self.crt_list {
                    Ok(Source::CrtList(p.clone()))
                } else {
                    Source::detect(p)
                }
            })
            .collect()
    }

    fn options(&self) -> Result<LoadOptions, CertStoreError> {
        let mut opts = LoadOptions::default();
        opts.openssl_verify = self.deep;
        opts.remote_keys = self
            .keyless
            .then(|| Arc::new(KeysElsewhere) as Arc<dyn edgetls_certstore::KeySource>);
        if let Some(path) = &self.passphrase_file {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                CertStoreError::SourceUnusable {
                    path: path.clone(),
                    source,
                }
            })?);
            opts.passphrase = Some(Zeroizing::new(
                text.lines().next().unwrap_or("").to_string(),
            ));
        }
        Ok(opts)
    }
}

pub(crate) fn run(cmd: CertsCommand) -> ExitCode {
    match cmd {
        CertsCommand::Check {
            sources,
            kind,
            json,
        } => check(&sources, &kind, json),
        CertsCommand::Lookup {
            source,
            kind,
            ip,
            names,
        } => lookup(&[source], &kind, ip.as_deref(), &names),
        CertsCommand::Admin(cmd) => crate::admin_client::run(cmd),
    }
}

fn load(
    paths: &[PathBuf],
    args: &SourceArgs,
    progress: bool,
) -> Result<(CertStore, Report), CertStoreError> {
    let sources = args.sources(paths)?;
    let mut opts = args.options()?;
    if args.keyless {
        opts.remote_key_sources = paths.to_vec();
    }
    let bar = (progress && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} entries {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    if let Some(bar) = &bar {
        let bar = bar.clone();
        opts.progress = Some(Arc::new(move |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }));
    }
    let result = CertStore::load(sources, opts);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}

fn check(paths: &[PathBuf], args: &SourceArgs, json: bool) -> ExitCode {
    let (store, report) = match load(paths, args, !json) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("edgetls: {e}");
            return ExitCode::from(2);
        }
    };
    let rss = peak_rss_kib();
    for p in &report.problems {
        eprintln!("{p}");
    }
    // OCSP response files, checked as a handshake would: a bad one is a warning (it is not
    // stapled; the certificate is still served).
    let ocsp = store.check_ocsp_files();
    let mut ocsp_states: std::collections::BTreeMap<&str, usize> = Default::default();
    for (path, check) in &ocsp {
        *ocsp_states.entry(check.state.as_str()).or_default() += 1;
        match &check.state {
            edgetls_certstore::ocsp::OcspState::Good => {}
            edgetls_certstore::ocsp::OcspState::Revoked => eprintln!(
                "warning: {}: OCSP response says the certificate is REVOKED (stapled as it is: \
                 replace the certificate)",
                path.display()
            ),
            other => eprintln!(
                "warning: {}: OCSP response {other} (not stapled)",
                path.display()
            ),
        }
    }
    let ocsp_line = ocsp_states
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    if json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        value["peak_rss_kib"] = rss.into();
        value["ocsp"] = serde_json::to_value(&ocsp_states).unwrap_or_default();
        println!("{value}");
    } else {
        println!(
            "entries: {} loaded, {} failed (of {} configured)\nnames: {} exact, {} wildcard, {} address keys\ndefault: {}\nnearest expiry: {}\nload time: {:.3} s\nmemory: {} KiB peak resident, {} KiB held by entries and index",
            report.loaded,
            report.failed,
            report.entries,
            report.names,
            report.wildcards,
            report.ip_keys,
            report
                .default
                .as_ref()
                .map_or("none".into(), |p| p.display().to_string()),
            report.nearest_expiry.map_or("none".into(), format_time),
            report.elapsed.as_secs_f64(),
            rss.map_or("?".into(), |r| r.to_string()),
            report.heap_bytes / 1024,
        );
        if !ocsp.is_empty() {
            println!("ocsp: {ocsp_line}");
        }
        let warnings = report.problems.len() - report.errors().count();
        if !report.problems.is_empty() {
            println!(
                "problems: {} errors, {warnings} warnings (listed on stderr)",
                report.errors().count()
            );
        }
    }
    if report.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn lookup(paths: &[PathBuf], args: &SourceArgs, ip: Option<&str>, names: &[String]) -> ExitCode {
    let local = match ip.map(parse_local).transpose() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edgetls: --ip: {e}");
            return ExitCode::from(2);
        }
    };
    let (store, report) = match load(paths, args, false) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("edgetls: {e}");
            return ExitCode::from(2);
        }
    };
    for p in report.errors() {
        eprintln!("{p}");
    }
    let snapshot = store.snapshot();
    for name in names {
        let Some(hit) = snapshot.lookup(Some(name), local) else {
            println!("{name} none");
            continue;
        };
        // One line per entry serving the name: more than one when the key types are served
        // by different entries (the client's signature algorithms choose), each with its types.
        // An address or default match serves the entry for every key type: only a narrower set
        // than the entry's own is worth printing.
        let several = hit.served().nth(1).is_some();
        for s in hit.served() {
            let path = s.entry.path().display();
            let own = s.entry.key_types();
            if several || s.types.intersect(own) != own {
                println!("{name} {path} {} {}", s.how.as_str(), s.types);
            } else {
                println!("{name} {path} {}", s.how.as_str());
            }
        }
    }
    ExitCode::SUCCESS
}

fn parse_local(s: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let ip = s.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 0))
        .map_err(|_| format!("not an address: {s:?}"))
}

/// VmHWM from /proc/self/status: the process's peak resident set.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn format_time(unix: i64) -> String {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm).
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
