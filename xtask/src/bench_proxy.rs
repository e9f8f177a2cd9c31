//! `cargo xtask bench --suite proxy`: the load generator against `edgetls proxy` (1 worker)
//! and nginx (`worker_processes 1`, when installed), same certificate, same origin, same
//! clients, side by side. Each connection: a TLS 1.3 ECDSA P-256 handshake (full, or resumed
//! from the ticket the last connection got), `GET /`, the origin's 3-byte answer, close.
//! Server CPU is read from /proc for the server's processes, so the load generator's own CPU
//! on the same two cores does not blur the per-CPU-second figures.

use crate::bench_keyless::median;
use crate::bench_tickets::self_signed;
use anyhow::{Context, Result, bail};
use edgetls_tickets::format::{self, Format};
use edgetls_tickets::{KeySet, KeySize, TicketKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslMethod, SslSession, SslVerifyMode, SslVersion};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONCURRENCY: usize = 32;
const SECONDS: f64 = 4.0;

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    /// SIGTERM first: nginx's master then stops its workers (SIGKILL would orphan them).
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signals our own child process, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) used so far by `pid` and its children.
fn cpu_of(pid: u32) -> f64 {
    let tck = 100.0; // CLK_TCK on Linux
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rsplit_once(") ").map(|(_, a)| a) else {
            continue;
        };
        let f: Vec<&str> = after.split_whitespace().collect();
        let this: u32 = e.file_name().to_string_lossy().parse().unwrap_or(0);
        let ppid: u32 = f.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        if this == pid || ppid == pid {
            let u: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            let s: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            total += (u + s) / tck;
        }
    }
    total
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The origin: answers every connection with a 3-byte HTTP response, on its own thread.
fn origin() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    l.set_nonblocking(true)?;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).expect("listener");
            loop {
                let Ok((mut c, _)) = l.accept().await else { continue };
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match c.read(&mut buf).await {
                            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                            _ => break,
                        }
                    }
                    let _ = c
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
                        .await;
                });
            }
        });
    });
    Ok(addr)
}

fn edgetls(root: &Path, dir: &Path, origin: SocketAddr, workers: usize) -> Result<Server> {
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = {workers}\n\n[certificates]\nsources = [\"certs\"]\n\n\
         [tickets]\nfile = \"tickets.haproxy\"\nformat = \"haproxy\"\n\n[[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n"
    );
    let file = dir.join(format!("proxy-{workers}.toml"));
    std::fs::write(&file, config)?;
    let mut child = Command::new(root.join("target/release/edgetls"))
        .args(["proxy", "--config"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let addr = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .with_context(|| format!("edgetls proxy did not start: {line:?}"))?;
    Ok(Server { child, addr })
}

fn nginx(dir: &Path, origin: SocketAddr, workers: usize) -> Result<Option<Server>> {
    if Command::new("nginx").arg("-v").output().is_err() {
        return Ok(None);
    }
    let port = free_port()?;
    let d = dir.display();
    let conf = format!(
        "worker_processes {workers};\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx.err;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  upstream origin {{ server {origin}; }}\n  server {{\n    listen 127.0.0.1:{port} ssl;\n\
         ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    ssl_protocols TLSv1.3;\n\
         ssl_session_tickets on;\n    ssl_session_ticket_key {d}/tickets.nginx80;\n    ssl_session_cache off;\n\
         location / {{ proxy_pass http://origin; }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf)?;
    let child = Command::new("nginx")
        .args(["-p"])
        .arg(dir)
        .args(["-c"])
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let until = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > until {
            bail!("nginx did not start (see {d}/nginx.err)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Some(Server { child, addr }))
}

/// One load run: connections per second (wall), per server CPU second, latency p50/p99 (ms),
/// and the share of resumed handshakes.
struct Load {
    failed: usize,
    per_cpu_second: f64,
    per_second: f64,
    p50: f64,
    p99: f64,
    resumed: f64,
}

/// Runs the load for one round. `pace`: a fixed offered rate (connections per second, spread
/// over the clients) instead of as fast as the clients can go.
fn load(server: &Server, resume: bool, pace: Option<f64>) -> Result<Load> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
    b.set_sigalgs_list("ecdsa_secp256r1_sha256")?;
    let connector = b.build();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let addr = server.addr;
    let running = Arc::new(AtomicBool::new(true));
    let samples = Arc::new(Mutex::new(Vec::<(f64, bool)>::new()));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let (cpu0, t0, cpu1, t1) = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..CONCURRENCY {
            let interval = pace.map(|r| Duration::from_secs_f64(CONCURRENCY as f64 / r));
            let (c, running, samples, measuring, failed) = (
                connector.clone(),
                Arc::clone(&running),
                Arc::clone(&samples),
                Arc::clone(&measuring),
                Arc::clone(&failed),
            );
            tasks.push(tokio::spawn(async move {
                let mut session: Option<SslSession> = None;
                let mut next = tokio::time::Instant::now()
                    + interval.map_or(Duration::ZERO, |d| d * i as u32 / CONCURRENCY as u32);
                while running.load(Relaxed) {
                    if let Some(d) = interval {
                        tokio::time::sleep_until(next).await;
                        next += d;
                    }
                    let t = Instant::now();
                    match one(&c, addr, if resume { session.as_ref() } else { None }).await {
                        Ok((s, reused)) => {
                            if measuring.load(Relaxed) {
                                samples
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push((t.elapsed().as_secs_f64() * 1e3, reused));
                            }
                            session = s;
                        }
                        Err(_) => {
                            failed.fetch_add(1, Relaxed);
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        measuring.store(true, Relaxed);
        let (cpu0, t0) = (cpu_of(server.child.id()), Instant::now());
        tokio::time::sleep(Duration::from_secs_f64(SECONDS)).await;
        measuring.store(false, Relaxed);
        let (cpu1, t1) = (cpu_of(server.child.id()), Instant::now());
        running.store(false, Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        (cpu0, t0, cpu1, t1)
    });
    let mut s = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    if s.is_empty() {
        bail!("no connection completed");
    }
    let n = s.len() as f64;
    let resumed = s.iter().filter(|x| x.1).count() as f64 / n;
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pct = |p: f64| s[((n - 1.0) * p) as usize].0;
    Ok(Load {
        failed: failed.load(Relaxed),
        per_cpu_second: n / (cpu1 - cpu0).max(1e-9),
        per_second: n / (t1 - t0).as_secs_f64(),
        p50: pct(0.5),
        p99: pct(0.99),
        resumed,
    })
}

async fn one(
    c: &SslConnector,
    addr: SocketAddr,
    session: Option<&SslSession>,
) -> Result<(Option<SslSession>, bool)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut ssl = c.configure()?.into_ssl("site.test")?;
    if let Some(s) = session {
        // SAFETY: the session comes from a connection of this same connector.
        unsafe { ssl.set_session(s)? };
    }
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp)?;
    Pin::new(&mut tls)
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tls.write_all(b"GET / HTTP/1.1\r\nhost: site.test\r\nconnection: close\r\n\r\n")
        .await?;
    let mut resp = Vec::new();
    let _ = tls.read_to_end(&mut resp).await;
    if !resp.ends_with(b"ok\n") {
        bail!("bad answer");
    }
    let _ = tls.shutdown().await;
    let reused = tls.ssl().session_reused();
    Ok((tls.ssl().session().map(|s| s.to_owned()), reused))
}

pub(crate) fn run(root: &Path, report: &mut String) -> Result<()> {
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "-p", "edgetls-proxy"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("building edgetls failed");
    }
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let group = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    let cert = self_signed(&key)?;
    std::fs::write(d.join("cert.pem"), cert.to_pem()?)?;
    std::fs::write(d.join("key.pem"), key.private_key_to_pem_pkcs8()?)?;
    std::fs::create_dir(d.join("certs"))?;
    let mut bundle = cert.to_pem()?;
    bundle.extend(key.private_key_to_pem_pkcs8()?);
    std::fs::write(d.join("certs/site.pem"), bundle)?;
    let tk = KeySet::new(vec![TicketKey::generate(KeySize::Aes256)?], 0)?;
    std::fs::write(
        d.join("tickets.haproxy"),
        &*format::write(&tk, Format::Haproxy)?,
    )?;
    std::fs::write(
        d.join("tickets.nginx80"),
        &*format::write(&tk, Format::Nginx80)?,
    )?;
    let origin = origin()?;
    let ours = edgetls(root, d, origin, 1)?;
    let theirs = nginx(d, origin, 1)?;
    let _ = writeln!(
        report,
        "## Proxy: edgetls against nginx (`cargo xtask bench --suite proxy`)\n\n\
         {CONCURRENCY} concurrent clients (Rust, OpenSSL, two threads on the same cores), TLS 1.3 ECDSA P-256, \
         `GET /` proxied to the same local origin, {SECONDS} s per round, median of 3 alternating rounds.\n\n\
         | server | handshakes | per second of server CPU | per second (wall) | latency p50 | p99 | resumed |\n|---|---|---:|---:|---:|---:|---:|"
    );
    let mut ratios = Vec::new();
    for resume in [false, true] {
        let kind = if resume { "resumed" } else { "full" };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            a.push(load(&ours, resume, None)?);
            if let Some(n) = &theirs {
                b.push(load(n, resume, None)?);
            }
        }
        let pick = |v: &Vec<Load>| {
            let m = median(v.iter().map(|l| l.per_cpu_second).collect());
            v.iter()
                .find(|l| l.per_cpu_second == m)
                .map(|l| (l.per_cpu_second, l.per_second, l.p50, l.p99, l.resumed))
        };
        for (name, v) in [
            ("edgetls proxy, 1 worker", &a),
            ("nginx 1.22, worker_processes 1", &b),
        ] {
            if let Some((c, w, p50, p99, r)) = pick(v) {
                let _ = writeln!(
                    report,
                    "| {name} | {kind} | {c:.0} | {w:.0} | {p50:.2} ms | {p99:.2} ms | {:.0}% |",
                    r * 100.0
                );
            }
        }
        if let (Some(x), Some(y)) = (pick(&a), pick(&b)) {
            ratios.push((kind, x.0 / y.0));
        }
    }
    for (kind, r) in ratios {
        let _ = writeln!(
            report,
            "\n{kind}: edgetls / nginx per server CPU second = **{r:.2}×** (target ≥ 1.0×)"
        );
    }
    drop(theirs);
    idle(&ours, 10_000, report)?;
    reloads(root, d, origin, ours, report)
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0.0)
}

/// `n` TLS connections opened and left idle: held by the proxy, and its memory per connection.
fn idle(server: &Server, n: usize, report: &mut String) -> Result<()> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
    let connector = b.build();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let pid = server.child.id();
    let before = rss_kib(pid);
    let (held, after) = rt.block_on(async {
        let mut held = Vec::with_capacity(n);
        for chunk in 0..n.div_ceil(250) {
            let mut batch = Vec::new();
            for _ in 0..250.min(n - chunk * 250) {
                let c = connector.clone();
                let addr = server.addr;
                batch.push(tokio::spawn(async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
                    let ssl = c.configure().ok()?.into_ssl("site.test").ok()?;
                    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).ok()?;
                    Pin::new(&mut tls).connect().await.ok()?;
                    Some(tls)
                }));
            }
            for t in batch {
                if let Ok(Some(tls)) = t.await {
                    held.push(tls);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Still open: a byte to each of a sample would be answered; count the server's view.
        let after = rss_kib(pid);
        (held, after)
    });
    let open = held.len();
    drop(held);
    let per = (after - before) / open.max(1) as f64;
    let _ = writeln!(
        report,
        "\n### Idle connections\n\n{open} of {n} TLS 1.3 connections opened and held idle by `edgetls proxy` \
         (1 worker): resident memory {before:.0} KiB before, {after:.0} KiB after: **{per:.1} KiB per idle connection** \
         (aim ≤ 40 KiB)."
    );
    Ok(())
}

/// The offered rate of the paced rounds: about 60% of what one worker serves here, so that
/// neither setup runs the machine (server and load generator share its two cores) flat out.
const PACED_RATE: f64 = 800.0;

/// Full handshakes on 1 and then 2 workers while certificates, policy and ticket keys are
/// reloaded (SIGHUP) every 100 ms: server CPU per handshake, and connections that failed. Run
/// flat out and at a fixed offered rate; nginx with 1 and 2 worker processes (which share
/// nothing) is the same-run control for what the machine itself adds when two workers run.
fn reloads(
    root: &Path,
    d: &Path,
    origin: SocketAddr,
    one_worker: Server,
    report: &mut String,
) -> Result<()> {
    let two = edgetls(root, d, origin, 2)?;
    let mut rows = Vec::new();
    let mut all_reloads = 0;
    for pace in [None, Some(PACED_RATE)] {
        for (name, server) in [("1 worker", &one_worker), ("2 workers", &two)] {
            let mut per_cpu = Vec::new();
            let mut wall = Vec::new();
            let mut failed = 0;
            for _ in 0..3 {
                let stop = Arc::new(AtomicBool::new(false));
                let (pid, s) = (server.child.id(), Arc::clone(&stop));
                let hup = std::thread::spawn(move || {
                    let mut n = 0;
                    while !s.load(Relaxed) {
                        std::thread::sleep(Duration::from_millis(100));
                        let _ = Command::new("kill")
                            .args(["-HUP", &pid.to_string()])
                            .status();
                        n += 1;
                    }
                    n
                });
                let l = load(server, false, pace)?;
                stop.store(true, Relaxed);
                all_reloads += hup.join().unwrap_or(0);
                per_cpu.push(l.per_cpu_second);
                wall.push(l.per_second);
                failed += l.failed;
            }
            rows.push((pace, name, median(per_cpu), median(wall), failed));
        }
    }
    drop(two);
    drop(one_worker);
    let mut control = Vec::new();
    for workers in [1, 2] {
        if let Some(n) = nginx(d, origin, workers)? {
            let mut per_cpu = Vec::new();
            for _ in 0..3 {
                per_cpu.push(load(&n, false, None)?.per_cpu_second);
            }
            control.push(median(per_cpu));
        }
    }
    let _ = writeln!(
        report,
        "\n### Two workers while reloading every 100 ms (SIGHUP: certificates, policy, ticket keys, routes)\n\n\
         | edgetls proxy | offered load | full handshakes per second of server CPU (median of 3) | per second (wall) | failed connections |\n|---|---|---:|---:|---:|"
    );
    for (pace, name, c, w, f) in &rows {
        let offered = pace.map_or_else(|| "flat out".to_string(), |r| format!("{r:.0}/s"));
        let _ = writeln!(report, "| {name} | {offered} | {c:.0} | {w:.0} | {f} |");
    }
    let ratio = |pace: Option<f64>| {
        let of = |n: &str| {
            rows.iter()
                .find(|r| r.0 == pace && r.1 == n)
                .map_or(f64::NAN, |r| r.2)
        };
        of("1 worker") / of("2 workers")
    };
    let _ = writeln!(
        report,
        "\nServer CPU per handshake, 2 workers / 1 worker, at {PACED_RATE:.0} handshakes/s offered: **{:.2}×** \
         (target ≤ 1.1×); flat out: {:.2}×. {all_reloads} reloads during the runs; **{} connections failed** (target 0).",
        ratio(Some(PACED_RATE)),
        ratio(None),
        rows.iter().map(|r| r.4).sum::<usize>()
    );
    if let [one, two] = control[..] {
        let _ = writeln!(
            report,
            "\nControl, same run: nginx 1.22 flat out (no reloads), CPU per handshake with \
             `worker_processes 2` / `1`: {:.2}× ({one:.0} and {two:.0} handshakes per second of server CPU).",
            one / two
        );
    }
    Ok(())
}
