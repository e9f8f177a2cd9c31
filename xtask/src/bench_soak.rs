//! `cargo xtask bench --suite soak --minutes N`: `edgetls proxy` (2 workers) for N minutes under
//! mixed load — full handshakes spread over the demo's names, resumed ones, a name whose key is
//! on a key server, and hostile clients (connections that send nothing, or garbage) — while
//! faults are injected: a reload every 5 s (SIGHUP), a certificate rewritten in place every
//! 7 s (truncated, its certificate, a pause, its key), and in each cycle (the whole run up to
//! 20 minutes, cycles of about 20 minutes in a longer one) the key server killed for 3 s at a
//! quarter, an `edgetls upgrade` at half and the key server frozen (SIGSTOP) for 3 s at three
//! quarters.
//!
//! It reports failed connections by cause — a remote-key handshake during a key-server fault
//! (or until the key client's reconnect backoff and request deadline after it) is the injected
//! fault's; anything else is unexplained — and the proxy's resident memory and open descriptors every second (a plot).
//! It fails on any unexplained failure, or when the floor of memory or descriptors rises by
//! more than 5% (plus 4 descriptors) from the start to the end of a stretch between upgrades,
//! after the first 20% of it (warm-up).

use crate::bench_names::free_port;
use crate::bench_proxy::{demo_files, origin};
use crate::bench_restarts::{control_pid, kill, spawn_edgetls, upgrade};
use crate::fleet::keyserver_on;
use crate::loadgen::one;
use crate::plot::{self, Axes, Series};
use anyhow::{Context, Result, bail};
use openssl::ssl::{SslConnector, SslMethod, SslSession, SslVerifyMode, SslVersion};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Names the demo generates (its `site0000NN.demo.test`).
const NAMES: usize = 50;
const KEYLESS: &str = "keyless.demo.test";
/// After a key-server fault ends, failures within this long are still the fault's: the key
/// client reconnects within its longest backoff (5 s), and a request waits for a connection
/// until its 2 s deadline.
const AFTER_FAULT: f64 = 7.5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Spread,
    Resumed,
    Keyless,
}

/// A failed connection: when it ended, its kind, and why. (Successes are only counted: a
/// 2-hour run makes millions.)
struct Sample {
    at: f64,
    kind: Kind,
    error: String,
}

/// Connections completed, and the failed ones.
#[derive(Default)]
struct Samples {
    ok: u64,
    failed: Vec<Sample>,
}

/// A fault injected from `from` to `to` (seconds since start).
struct Fault {
    what: &'static str,
    from: f64,
    to: f64,
}

pub(crate) fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn fds(pid: u32) -> Option<f64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as f64)
}

/// Clients of each kind in closed loops until `running` clears; hostile ones beside them.
fn load(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    started: Instant,
    running: Arc<AtomicBool>,
    samples: Arc<Mutex<Samples>>,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
    let c = b.build();
    Ok(rt.spawn(async move {
        let mut tasks = Vec::new();
        let kinds = [(Kind::Spread, 6), (Kind::Resumed, 3), (Kind::Keyless, 3)];
        for (kind, n) in kinds {
            for t in 0..n {
                let (c, running, samples) = (c.clone(), Arc::clone(&running), Arc::clone(&samples));
                tasks.push(tokio::spawn(async move {
                    let mut k = t;
                    let mut session: Option<SslSession> = None;
                    while running.load(Relaxed) {
                        k += 1;
                        let name = match kind {
                            Kind::Spread => format!("site{:06}.demo.test", k % NAMES),
                            Kind::Resumed => "site000001.demo.test".into(),
                            Kind::Keyless => KEYLESS.into(),
                        };
                        let resume = if kind == Kind::Resumed {
                            session.as_ref()
                        } else {
                            None
                        };
                        let r = one(&c, addr, &name, Some(b"ok\n"), resume, false, false).await;
                        let at = started.elapsed().as_secs_f64();
                        {
                            let mut samples = samples.lock().unwrap_or_else(|p| p.into_inner());
                            match r {
                                Ok((s, _)) => {
                                    session = s;
                                    samples.ok += 1;
                                }
                                Err(e) => samples.failed.push(Sample {
                                    at,
                                    kind,
                                    error: format!("{e:#}"),
                                }),
                            }
                        }
                        // Closed loops, paced a little: ~ 100 connections a second per kind.
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                }));
            }
        }
        // Hostile: every 2 s, 40 connections that send nothing and 10 that send garbage, all
        // dropped after a moment.
        let hostile_running = Arc::clone(&running);
        tasks.push(tokio::spawn(async move {
            while hostile_running.load(Relaxed) {
                let mut held = Vec::new();
                for i in 0..50 {
                    if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
                        if i % 5 == 0 {
                            let _ = s.write_all(b"\x16\x03\x01\x00\x05garbage-not-tls").await;
                        }
                        held.push(s);
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                drop(held);
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
        }));
        for t in tasks {
            let _ = t.await;
        }
    }))
}

/// Writes `body` over `path` in place, slowly: truncated, its certificate, 150 ms, the rest.
fn rewrite_in_place(path: &Path, body: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(body);
    let cut = text
        .find("-----END CERTIFICATE-----")
        .map_or(body.len() / 2, |i| i + 26);
    let mut f = std::fs::File::create(path)?;
    f.write_all(&body[..cut])?;
    f.flush()?;
    std::thread::sleep(Duration::from_millis(150));
    f.write_all(&body[cut..])?;
    Ok(())
}

/// The floor of `points` over the first and the last fifth of `[from, to)`, after the first
/// 20% (warm-up): (start, end). The floor, not a median: the clients' and the hostile
/// connections' descriptors and buffers come and go by the dozen between samples (50 hostile
/// connections are held for half a second every 2 s); what a leak does is raise the floor.
fn stretch(points: &[(f64, f64)], from: f64, to: f64) -> Option<(f64, f64)> {
    let warm = from + (to - from) * 0.2;
    let inside: Vec<f64> = points
        .iter()
        .filter(|(t, _)| *t >= warm && *t < to)
        .map(|p| p.1)
        .collect();
    if inside.len() < 10 {
        return None;
    }
    let fifth = (inside.len() / 5).max(1);
    let floor = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    Some((
        floor(&inside[..fifth]),
        floor(&inside[inside.len() - fifth..]),
    ))
}

pub(crate) fn run(root: &Path, minutes: f64, report: &mut String) -> Result<()> {
    crate::bench::release_build(root, &["edgetls-proxy", "edgetls-keyserver"])?;
    let bin = root.join("target/release/edgetls");
    let ks_bin = root.join("target/release/edgetls-keyserver");
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    demo_files(&bin, d, NAMES)?;
    let origin = origin("127.0.0.1:0".parse()?)?;
    let ks_addr = format!("127.0.0.1:{}", free_port()?);
    let (mut ks, _) = keyserver_on(&ks_bin, d, "0ms", &ks_addr)?;
    let config: PathBuf = d.join("soak.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\nmetrics = \"127.0.0.1:0\"\n\
             handshake_timeout = \"3s\"\n\n\
             [certificates]\nsources = [\"{multicert}\", \"{keyless}\"]\n\n\
             [tickets]\nfile = \"{tickets}\"\nformat = \"haproxy\"\n\n\
             [keyless]\nsources = [\"{keyless}\"]\nservers = [\"{ks_addr}\"]\n\
             server_name = \"keyserver.demo.test\"\ncert = \"{edge_pem}\"\nkey = \"{edge_key}\"\nca = \"{ca}\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            multicert = d.join("ssl_multicert.config").display(),
            keyless = d.join("keyless").display(),
            tickets = d.join("tickets.keys").display(),
            edge_pem = d.join("edge.pem").display(),
            edge_key = d.join("edge.key").display(),
            ca = d.join("ca.pem").display(),
        ),
    )?;
    let control = config.with_extension("sock");
    let (mut first, addr) = spawn_edgetls(&bin, &config)?;
    let rewritten = d.join("certs/site000003.demo.test.pem");
    let body = std::fs::read(&rewritten).with_context(|| rewritten.display().to_string())?;

    let total = minutes * 60.0;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let running = Arc::new(AtomicBool::new(true));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let task = load(
        &rt,
        addr,
        started,
        Arc::clone(&running),
        Arc::clone(&samples),
    )?;
    let mut faults: Vec<Fault> = Vec::new();
    let (mut rss, mut descriptors) = (Vec::new(), Vec::new());
    // Cycles of about 20 minutes (one for a run up to 20), each with a kill, an upgrade and a
    // freeze.
    let cycles = (minutes / 20.0).round().max(1.0);
    let cycle = total / cycles;
    let mut upgrades: Vec<f64> = Vec::new();
    let (mut killed, mut upgraded, mut frozen) = (0.0, 0.0, 0.0);
    let (mut next_hup, mut next_rewrite) = (5.0, 7.0);
    let mut pid = first.id();
    let mut tick = 0.0;
    while started.elapsed().as_secs_f64() < total {
        let now = started.elapsed().as_secs_f64();
        if let Some(p) = control_pid(&control) {
            pid = p;
        }
        if now >= tick {
            if let (Some(r), Some(f)) = (rss_mib(pid), fds(pid)) {
                rss.push((now, r));
                descriptors.push((now, f));
            }
            tick += 1.0;
        }
        if now >= next_hup {
            kill(pid, libc::SIGHUP);
            next_hup += 5.0;
        }
        if now >= next_rewrite {
            rewrite_in_place(&rewritten, &body)?;
            next_rewrite += 7.0;
        }
        // The fault due next in this cycle (each once per cycle).
        if now >= (killed + 0.25) * cycle {
            killed += 1.0;
            drop(ks); // killed
            std::thread::sleep(Duration::from_secs(3));
            ks = keyserver_on(&ks_bin, d, "0ms", &ks_addr)?.0;
            faults.push(Fault {
                what: "key server killed (3 s)",
                from: now,
                to: started.elapsed().as_secs_f64(),
            });
        }
        if now >= (upgraded + 0.5) * cycle {
            upgraded += 1.0;
            if !upgrade(&bin, &config)? {
                bail!("edgetls upgrade failed during the soak");
            }
            upgrades.push(started.elapsed().as_secs_f64());
        }
        if now >= (frozen + 0.75) * cycle {
            frozen += 1.0;
            kill(ks.id(), libc::SIGSTOP);
            std::thread::sleep(Duration::from_secs(3));
            kill(ks.id(), libc::SIGCONT);
            faults.push(Fault {
                what: "key server frozen (SIGSTOP, 3 s)",
                from: now,
                to: started.elapsed().as_secs_f64(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    running.store(false, Relaxed);
    rt.block_on(task)?;
    if let Some(p) = control_pid(&control) {
        kill(p, libc::SIGTERM);
    }
    let _ = first.wait();
    drop(ks);

    // Failures by cause.
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    let mut causes: BTreeMap<String, usize> = BTreeMap::new();
    let mut unexplained = 0;
    for s in samples.failed.iter() {
        let e = &s.error;
        let fault = faults
            .iter()
            .find(|f| s.kind == Kind::Keyless && s.at >= f.from && s.at <= f.to + AFTER_FAULT);
        let cause = match fault {
            Some(f) => format!("{} (injected), remote-key handshakes", f.what),
            None => {
                unexplained += 1;
                format!(
                    "unexplained, {:?}: {}",
                    s.kind,
                    e.chars().take(80).collect::<String>()
                )
            }
        };
        *causes.entry(cause).or_default() += 1;
    }
    let ok = samples.ok;

    // Memory and descriptors over each stretch between upgrades (a new process each).
    let mut bounds = vec![0.0];
    bounds.extend(upgrades.iter().map(|u| u + 1.0));
    bounds.push(total);
    let mut leaks = Vec::new();
    let mut flat = String::new();
    for (i, w) in bounds.windows(2).enumerate() {
        let (from, to) = (w[0], w[1]);
        let label = format!("process {} ({from:.0}–{to:.0} s)", i + 1);
        for (what, points, slack) in [("RSS (MiB)", &rss, 0.0), ("descriptors", &descriptors, 4.0)]
        {
            if let Some((a, b)) = stretch(points, from, to) {
                let grew = b > a * 1.05 + slack;
                let _ = write!(flat, "{what} {label}: {a:.1} → {b:.1}; ");
                if grew {
                    leaks.push(format!("{what} {label} grew from {a:.1} to {b:.1}"));
                }
            }
        }
    }
    let at = |v: &[f64]| {
        v.iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let upgrades_at = at(&upgrades);
    let kills_at = at(&faults
        .iter()
        .filter(|f| f.what.contains("killed"))
        .map(|f| f.from)
        .collect::<Vec<_>>());
    let freezes_at = at(&faults
        .iter()
        .filter(|f| f.what.contains("frozen"))
        .map(|f| f.from)
        .collect::<Vec<_>>());
    let plot = plot::lines(
        "soak-rss-fds",
        &Axes {
            title: &format!(
                "edgetls proxy over a {minutes} min soak (upgrades at {upgrades_at} s)"
            ),
            x: "seconds",
            y: "resident MiB / open descriptors",
            log_x: false,
            log_y: false,
        },
        &[
            Series::new("RSS (MiB)", rss.clone()),
            Series::new("descriptors", descriptors.clone()),
        ],
    )?;
    writeln!(
        report,
        "## Soak (`cargo xtask bench --suite soak --minutes {minutes}`)\n\n\
         `edgetls proxy`, 2 workers, {NAMES} demo names and a remote-key name, for {minutes} min: \
         full handshakes spread over the names, resumed ones and remote-key ones in closed loops, \
         hostile connections (silent or garbage) every 2 s; a SIGHUP every 5 s, a certificate \
         rewritten in place every 7 s, the key server killed for 3 s at {kills_at} s and frozen \
         for 3 s at {freezes_at} s, `edgetls upgrade` at {upgrades_at} s.\n\n\
         {ok} connections completed; failed, by cause:\n\n| cause | failed |\n|---|---:|"
    )?;
    if causes.is_empty() {
        writeln!(report, "| (none) | 0 |")?;
    }
    for (cause, n) in &causes {
        writeln!(report, "| {cause} | {n} |")?;
    }
    writeln!(report, "\n{flat}\n\n{plot}\n")?;
    eprintln!("soak: {ok} completed, {unexplained} unexplained failures; {flat}");
    if unexplained > 0 || !leaks.is_empty() {
        bail!(
            "soak failed: {unexplained} unexplained failures {causes:?}; {}",
            leaks.join("; ")
        );
    }
    Ok(())
}
