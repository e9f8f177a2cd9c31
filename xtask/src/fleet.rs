//! `cargo xtask bench --suite fleet`: a fleet on one machine. Four `edgetls proxy` edges (one
//! worker each) share a ticket secret (`[tickets] secret_file`, a new key every minute, the
//! shortest period the proxy takes) and two key servers (`--delay 2ms`); clients spread their connections over the edges. Three parts:
//!
//! 1. a ticket one edge issued, resumed on another edge — 400 times;
//! 2. one key server killed under load (handshakes with a key only the key servers hold);
//! 3. a rolling reload: one edge after another gets new certificates and SIGHUP, under load,
//!    with idle TLS connections held open across it and used afterwards.

use crate::bench_proxy::origin;
use crate::loadgen::one;
use crate::plot::{self, Axes, Series};
use anyhow::{Context, Result, bail};
use openssl::ssl::{SslConnector, SslMethod, SslSession, SslVerifyMode, SslVersion};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The ticket period of the edges, seconds: the shortest the proxy accepts.
const PERIOD: u64 = 60;

const EDGES: usize = 4;
const CLIENTS: usize = 16;
const KEYLESS_NAME: &str = "keyless.demo.test";

/// A child process killed when dropped.
pub(crate) struct Process(Child);

impl Process {
    pub(crate) fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Edge {
    process: Process,
    addr: SocketAddr,
    metrics: SocketAddr,
    dir: PathBuf,
}

/// One handshake of the load: when it ended (s since the start), whether it completed.
type Sample = (f64, bool);
/// (x, y) points of a plotted line.
type Points = Vec<(f64, f64)>;

fn first_line(child: &mut Child) -> Result<Vec<String>> {
    let out = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(out).lines();
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(lines.next().context("no output")??);
    }
    // Keep reading so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(got)
}

/// The key server of a `demo --generate-only` directory `d`, answering after `delay`
/// ("0ms" for none); its address.
pub(crate) fn keyserver(bin: &Path, d: &Path, delay: &str) -> Result<(Process, String)> {
    keyserver_on(bin, d, delay, "127.0.0.1:0")
}

/// [`keyserver`] on `listen` (to start one again where a killed one was).
pub(crate) fn keyserver_on(
    bin: &Path,
    d: &Path,
    delay: &str,
    listen: &str,
) -> Result<(Process, String)> {
    let mut child = Command::new(bin)
        .args(["--listen", listen, "--workers", "1", "--delay", delay])
        .arg("--keys")
        .arg(d.join("keyserver/keys"))
        .arg("--cert")
        .arg(d.join("keyserver/server.pem"))
        .arg("--key")
        .arg(d.join("keyserver/server.key"))
        .arg("--client-ca")
        .arg(d.join("ca.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let addr = line.rsplit(' ').next().unwrap_or("").trim().to_string();
    if addr.is_empty() {
        bail!("key server did not start: {line:?}");
    }
    Ok((Process(child), addr))
}

fn copy_certs(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to.join("certs"))?;
    for e in std::fs::read_dir(from.join("certs"))? {
        let p = e?.path();
        std::fs::copy(&p, to.join("certs").join(p.file_name().context("name")?))?;
    }
    std::fs::copy(
        from.join("ssl_multicert.config"),
        to.join("ssl_multicert.config"),
    )?;
    Ok(())
}

fn edge(bin: &Path, d: &Path, i: usize, keyservers: &[String], origin: SocketAddr) -> Result<Edge> {
    let dir = d.join(format!("edge{i}"));
    copy_certs(d, &dir)?;
    let servers: Vec<String> = keyservers.iter().map(|s| format!("\"{s}\"")).collect();
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\nmetrics = \"127.0.0.1:0\"\n\n\
             [certificates]\nsources = [\"ssl_multicert.config\", \"{keyless}\"]\n\n\
             [tickets]\nsecret_file = \"{secret}\"\nperiod = \"{PERIOD}s\"\n\n\
             [keyless]\nsources = [\"{keyless}\"]\nservers = [{servers}]\nserver_name = \"keyserver.demo.test\"\n\
             cert = \"{edge_pem}\"\nkey = \"{edge_key}\"\nca = \"{ca}\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            keyless = d.join("keyless").display(),
            secret = d.join("fleet.secret").display(),
            servers = servers.join(", "),
            edge_pem = d.join("edge.pem").display(),
            edge_key = d.join("edge.key").display(),
            ca = d.join("ca.pem").display(),
        ),
    )?;
    let mut child = Command::new(bin)
        .args(["proxy", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let lines = first_line(&mut child)?;
    let addr = lines[0]
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .with_context(|| format!("edge {i}: {lines:?}"))?;
    let metrics = lines[1]
        .split_whitespace()
        .find_map(|w| {
            w.strip_prefix("http://")?
                .strip_suffix("/metrics")?
                .parse()
                .ok()
        })
        .with_context(|| format!("edge {i} metrics: {lines:?}"))?;
    Ok(Edge {
        process: Process(child),
        addr,
        metrics,
        dir,
    })
}

/// The sum of every series of `name` in the edge's metrics.
fn metric(e: &Edge, name: &str) -> f64 {
    let Ok(mut http) = std::net::TcpStream::connect(e.metrics) else {
        return 0.0;
    };
    let _ = http.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = http.read_to_string(&mut text);
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn connector() -> Result<SslConnector> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
    Ok(b.build())
}

/// Part 1: full handshakes on edge `k % 4`, each ticket resumed on another edge.
fn cross_edge(rt: &tokio::runtime::Runtime, edges: &[SocketAddr]) -> Result<(usize, usize)> {
    let c = connector()?;
    let edges = edges.to_vec();
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for t in 0..CLIENTS {
            let (c, edges) = (c.clone(), edges.clone());
            tasks.push(tokio::spawn(async move {
                let (mut tried, mut resumed) = (0, 0);
                for k in (t..400).step_by(CLIENTS) {
                    let from = k % EDGES;
                    let to = (from + 1 + (k / EDGES) % (EDGES - 1)) % EDGES;
                    let name = format!("site{:06}.demo.test", k % 20);
                    let Ok((Some(session), _)) =
                        one(&c, edges[from], &name, None, None, false, false).await
                    else {
                        continue;
                    };
                    tried += 1;
                    if let Ok((_, true)) =
                        one(&c, edges[to], &name, None, Some(&session), false, false).await
                    {
                        resumed += 1;
                    }
                }
                (tried, resumed)
            }));
        }
        let mut total = (0, 0);
        for t in tasks {
            let (a, b) = t.await?;
            total = (total.0 + a, total.1 + b);
        }
        Ok(total)
    })
}

/// Load over every edge until `running` turns false: CLIENTS closed loops of handshakes with
/// `name` (a fresh one each time, or resuming the last session every other time).
fn load(
    rt: &tokio::runtime::Runtime,
    edges: Vec<SocketAddr>,
    name: &'static str,
    started: Instant,
    running: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
) -> Result<tokio::task::JoinHandle<()>> {
    let c = connector()?;
    Ok(rt.spawn(async move {
        let mut tasks = Vec::new();
        for t in 0..CLIENTS {
            let (c, edges, running, samples) = (
                c.clone(),
                edges.clone(),
                Arc::clone(&running),
                Arc::clone(&samples),
            );
            tasks.push(tokio::spawn(async move {
                let mut k = t;
                let mut session: Option<SslSession> = None;
                while running.load(Relaxed) {
                    let edge = edges[k % EDGES];
                    let resume = if k % 2 == 0 { session.as_ref() } else { None };
                    let r = one(&c, edge, name, None, resume, false, false).await;
                    let at = started.elapsed().as_secs_f64();
                    samples
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((at, r.is_ok()));
                    if let Ok((s, _)) = r {
                        session = s;
                    }
                    k += 1;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }))
}

/// Idle TLS connections to the edges (handshake done, nothing sent).
async fn idle(
    edges: &[SocketAddr],
    n: usize,
) -> Result<Vec<tokio_openssl::SslStream<tokio::net::TcpStream>>> {
    let c = connector()?;
    let mut out = Vec::new();
    for i in 0..n {
        let tcp = tokio::net::TcpStream::connect(edges[i % EDGES]).await?;
        let ssl = c.configure()?.into_ssl("site000001.demo.test")?;
        let mut tls = tokio_openssl::SslStream::new(ssl, tcp)?;
        std::pin::Pin::new(&mut tls).connect().await?;
        out.push(tls);
    }
    Ok(out)
}

/// Handshakes per 100 ms and failures per 100 ms, for the plot.
fn buckets(samples: &[Sample]) -> (Points, Points) {
    let end = samples.iter().map(|s| s.0).fold(0.0, f64::max);
    let n = (end / 0.1).ceil() as usize + 1;
    let (mut ok, mut failed) = (vec![0.0; n], vec![0.0; n]);
    for &(t, good) in samples {
        let b = (t / 0.1) as usize;
        if good {
            ok[b] += 10.0
        } else {
            failed[b] += 10.0
        }
    }
    let pts = |v: Vec<f64>| {
        v.into_iter()
            .enumerate()
            .map(|(i, y)| (i as f64 * 0.1, y))
            .collect()
    };
    (pts(ok), pts(failed))
}

pub(crate) fn run(root: &Path, report: &mut String) -> Result<()> {
    crate::bench::release_build(root, &["edgetls-proxy", "edgetls-keyserver"])?;
    let (edgetls, ks_bin) = (
        root.join("target/release/edgetls"),
        root.join("target/release/edgetls-keyserver"),
    );
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let generate = |dir: &Path| -> Result<()> {
        let out = Command::new(&edgetls)
            .args(["demo", "--generate-only", "--names", "20", "--dir"])
            .arg(dir)
            .output()?;
        if !out.status.success() {
            bail!(
                "demo --generate-only: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    generate(d)?;
    let out = Command::new(&edgetls)
        .args(["tickets", "gen-secret", "--out"])
        .arg(d.join("fleet.secret"))
        .output()?;
    if !out.status.success() {
        bail!("gen-secret: {}", String::from_utf8_lossy(&out.stderr));
    }
    let origin = origin("127.0.0.1:0".parse()?)?;
    let (ks1, a1) = keyserver(&ks_bin, d, "2ms")?;
    let (_ks2, a2) = keyserver(&ks_bin, d, "2ms")?;
    let keyservers = [a1, a2];
    let edges: Vec<Edge> = (0..EDGES)
        .map(|i| edge(&edgetls, d, i, &keyservers, origin))
        .collect::<Result<_>>()?;
    let addrs: Vec<SocketAddr> = edges.iter().map(|e| e.addr).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // 1. Cross-edge resumption.
    let (tried, resumed) = cross_edge(&rt, &addrs)?;

    // 2. A key server killed under load.
    let started = Instant::now();
    let (running, samples) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let health = |e: &[Edge]| -> f64 {
        e.iter()
            .map(|e| {
                metric(e, "keyless_client_health_failures_total")
                    + metric(e, "keyless_client_connect_failures_total")
            })
            .sum()
    };
    let baseline = health(&edges);
    let task = load(
        &rt,
        addrs.clone(),
        KEYLESS_NAME,
        started,
        Arc::clone(&running),
        Arc::clone(&samples),
    )?;
    std::thread::sleep(Duration::from_secs(3));
    let killed_at = started.elapsed().as_secs_f64();
    drop(ks1);
    let mut first_failed_check = None;
    while started.elapsed() < Duration::from_secs(8) {
        if first_failed_check.is_none() && health(&edges) > baseline {
            first_failed_check = Some(started.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    running.store(false, Relaxed);
    rt.block_on(task)?;
    let kill_samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    let check = first_failed_check.unwrap_or(f64::INFINITY);
    let count = |f: &dyn Fn(&Sample) -> bool| kill_samples.iter().filter(|s| f(s)).count();
    let kill_before = count(&|s| !s.1 && s.0 < killed_at);
    let kill_between = count(&|s| !s.1 && s.0 >= killed_at && s.0 < check);
    let kill_after = count(&|s| !s.1 && s.0 >= check);
    let kill_ok = count(&|s| s.1);

    // 3. Rolling reload under load, idle connections held across it.
    let held = rt.block_on(idle(&addrs, 40))?;
    let new_certs = d.join("new");
    generate(&new_certs)?;
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    // Start 5 s before a ticket period ends, so that a new period begins during the reloads
    // (7.5 s from the first to the last).
    let to_boundary = PERIOD - unix() % PERIOD;
    if to_boundary > 5 {
        std::thread::sleep(Duration::from_secs(to_boundary - 5));
    }
    let started = Instant::now();
    let epoch = || unix() / PERIOD;
    let first_epoch = epoch();
    let running = Arc::new(AtomicBool::new(true));
    let task = load(
        &rt,
        addrs.clone(),
        "site000003.demo.test",
        started,
        Arc::clone(&running),
        Arc::clone(&samples),
    )?;
    let mut reloads = Vec::new();
    std::thread::sleep(Duration::from_secs(1));
    for e in &edges {
        let before = metric(e, "edgetls_reloads_total{result=\"ok\"}");
        copy_certs(&new_certs, &e.dir)?;
        let sent = Command::new("kill")
            .args(["-HUP", &e.process.0.id().to_string()])
            .status()?;
        if !sent.success() {
            bail!("SIGHUP to an edge failed");
        }
        let until = Instant::now() + Duration::from_secs(10);
        while metric(e, "edgetls_reloads_total{result=\"ok\"}") <= before {
            if Instant::now() > until {
                bail!("an edge did not reload");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        reloads.push(started.elapsed().as_secs_f64());
        // 2.5 s apart, started 5 s before a period ends: a new ticket period begins while
        // they go on.
        std::thread::sleep(Duration::from_millis(2500));
    }
    running.store(false, Relaxed);
    rt.block_on(task)?;
    let epochs = epoch() - first_epoch + 1;
    let reload_samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    let reload_failed = reload_samples.iter().filter(|s| !s.1).count();
    let reload_ok = reload_samples.len() - reload_failed;
    // The held connections: a request on each after every edge reloaded.
    let answered = rt.block_on(async {
        let mut n = 0;
        for mut tls in held {
            let asked = tls
                .write_all(
                    b"GET / HTTP/1.1\r\nhost: site000001.demo.test\r\nconnection: close\r\n\r\n",
                )
                .await;
            let mut resp = Vec::new();
            let _ = tls.read_to_end(&mut resp).await;
            if asked.is_ok() && resp.ends_with(b"ok\n") {
                n += 1;
            }
        }
        n
    });

    let (ok1, failed1) = buckets(&kill_samples);
    let plot1 = plot::lines(
        "fleet-keyserver-killed",
        &Axes {
            title: &format!("4 edges, one of 2 key servers killed at {killed_at:.1} s"),
            x: "seconds",
            y: "handshakes per second (100 ms buckets)",
            log_x: false,
            log_y: false,
        },
        &[
            Series::new("completed", ok1),
            Series::new("failed", failed1),
        ],
    )?;
    let (ok2, failed2) = buckets(&reload_samples);
    let plot2 = plot::lines(
        "fleet-rolling-reload",
        &Axes {
            title: "4 edges reloaded in turn (new certificates, SIGHUP) across a ticket period's end",
            x: "seconds",
            y: "handshakes per second (100 ms buckets)",
            log_x: false,
            log_y: false,
        },
        &[
            Series::new("completed", ok2),
            Series::new("failed", failed2),
        ],
    )?;
    let _ = writeln!(
        report,
        "## A fleet on one machine (`cargo xtask bench --suite fleet`)\n\n\
         {EDGES} `edgetls proxy` edges (1 worker each) sharing `[tickets] secret_file` (a new key \
         every 10 s, 12 h grace), 2 key servers (`--delay 2ms`) behind every edge, {CLIENTS} \
         clients in closed loops spreading full and resumed TLS 1.3 handshakes over the edges.\n\n\
         | part | target | measured |\n|---|---|---|\n\
         | a ticket from one edge resumed on another ({tried} attempts, every pair of edges) | ≥ 99% | **{:.1}%** ({resumed} resumed) |\n\
         | one key server killed (SIGKILL) at {killed_at:.1} s under load with the key server's name (`{KEYLESS_NAME}`) | 0 failed after the first failed health check | **{kill_after}** failed after it (first failed check or connect at {}); {kill_between} between the kill and it, {kill_before} before; {kill_ok} completed |\n\
         | rolling reload of the 4 edges (new certificates, SIGHUP, one every 2.5 s, {epochs} ticket periods) under load | 0 failed handshakes, no connection dropped | **{reload_failed}** failed of {}; **{answered} of 40** idle connections made before answered after |\n\n\
         Reloads completed at {} s.\n\n{plot1}\n\n{plot2}\n",
        100.0 * resumed as f64 / tried.max(1) as f64,
        if check.is_finite() {
            format!("{check:.2} s")
        } else {
            "none seen".into()
        },
        reload_failed + reload_ok,
        reloads
            .iter()
            .map(|t| format!("{t:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    Ok(())
}
