//! `cargo xtask bench --suite proxy`: the load generator against `edgetls proxy` (1 worker)
//! and nginx (`worker_processes 1`, when installed), same certificate, same origin, same
//! clients, side by side. Each connection: a TLS 1.3 ECDSA P-256 handshake (full, or resumed
//! from the ticket the last connection got), `GET /`, the origin's 3-byte answer, close.
//! Server CPU is read from /proc for the server's processes, so the load generator's own CPU
//! on the same two cores does not blur the per-CPU-second figures.

use crate::bench_keyless::median;
use crate::bench_tickets::self_signed;
use crate::loadgen::{self, Load, Target};
use anyhow::{Context, Result, bail};
use edgetls_tickets::format::{self, Format};
use edgetls_tickets::{KeySet, KeySize, TicketKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONCURRENCY: usize = 32;
const SECONDS: f64 = 4.0;
/// Rounds per server and kind in the comparison (the servers take turns in every round).
const ROUNDS: usize = 5;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
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

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The origin (on `addr`): answers every connection with a 3-byte HTTP response, on its own thread.
pub(crate) fn origin(addr: SocketAddr) -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind(addr)?;
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
    edgetls_with(root, dir, origin, workers, "")
}

/// `edgetls proxy` with `server` added to its `[server]` section.
pub(crate) fn edgetls_with(
    root: &Path,
    dir: &Path,
    origin: SocketAddr,
    workers: usize,
    server: &str,
) -> Result<Server> {
    edgetls_routed(root, dir, origin, workers, server, "")
}

/// `edgetls proxy` with `server` added to its `[server]` section and `route` to its route.
pub(crate) fn edgetls_routed(
    root: &Path,
    dir: &Path,
    origin: SocketAddr,
    workers: usize,
    server: &str,
    route: &str,
) -> Result<Server> {
    edgetls_under(root, dir, origin, (workers, server, route), &[])
}

/// As [`edgetls_routed`] (`(workers, server, route)`), run under `wrap` (e.g. valgrind and
/// its flags) when it is not empty.
pub(crate) fn edgetls_under(
    root: &Path,
    dir: &Path,
    origin: SocketAddr,
    (workers, server, route): (usize, &str, &str),
    wrap: &[&str],
) -> Result<Server> {
    let file = proxy_config(dir, origin, (workers, server, route))?;
    spawn_edgetls(&root.join("target/release/edgetls"), &file, wrap)
}

/// The configuration [`edgetls_under`] runs: `certs/`, `tickets.haproxy`, every name routed
/// to `origin`.
pub(crate) fn proxy_config(
    dir: &Path,
    origin: SocketAddr,
    (workers, server, route): (usize, &str, &str),
) -> Result<std::path::PathBuf> {
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = {workers}\n{server}\n\n[certificates]\nsources = [\"certs\"]\n\n\
         [tickets]\nfile = \"tickets.haproxy\"\nformat = \"haproxy\"\n\n[[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n{route}\n"
    );
    let file = dir.join(format!(
        "proxy-{workers}-{}-{}.toml",
        server.len(),
        route.len()
    ));
    std::fs::write(&file, config)?;
    Ok(file)
}

/// Runs `edgetls proxy --config FILE` from the binary `edgetls` (under `wrap` when it is not
/// empty) and waits for the line that gives its address.
/// The demo's files (`edgetls demo --generate-only`, `names` names) in `dir`.
pub(crate) fn demo_files(edgetls: &Path, dir: &Path, names: usize) -> Result<()> {
    let out = Command::new(edgetls)
        .args([
            "demo",
            "--generate-only",
            "--names",
            &names.to_string(),
            "--dir",
        ])
        .arg(dir)
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "demo --generate-only: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

pub(crate) fn spawn_edgetls(edgetls: &Path, file: &Path, wrap: &[&str]) -> Result<Server> {
    let mut cmd = match wrap {
        [] => Command::new(edgetls),
        [program, flags @ ..] => {
            let mut c = Command::new(program);
            c.args(flags).arg(edgetls);
            c
        }
    };
    let mut child = cmd
        .args(["proxy", "--config"])
        .arg(file)
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
        "worker_processes {workers};\ndaemon off;\npid {d}/nginx-{workers}.pid;\nerror_log {d}/nginx-{workers}.err;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  upstream origin {{ server {origin}; }}\n  server {{\n    listen 127.0.0.1:{port} ssl;\n\
         ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    ssl_protocols TLSv1.3;\n\
         ssl_session_tickets on;\n    ssl_session_ticket_key {d}/tickets.nginx80;\n    ssl_session_cache off;\n\
         location / {{ proxy_pass http://origin; }}\n  }}\n}}\n"
    );
    let file = dir.join(format!("nginx-{workers}.conf"));
    std::fs::write(&file, conf)?;
    listening(
        Command::new("nginx")
            .args(["-p"])
            .arg(dir)
            .args(["-c"])
            .arg(&file),
        port,
        &format!("nginx did not start (see {d}/nginx-{workers}.err)"),
    )
    .map(Some)
}

/// Starts `peer` (output discarded) and returns it once it accepts on `port` (up to 5 s). On
/// failure it is stopped (as a `Server`, dropped) and `why` is the error.
fn listening(peer: &mut Command, port: u16, why: &str) -> Result<Server> {
    let server = Server {
        child: peer.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let until = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(server.addr).is_err() {
        if Instant::now() > until {
            bail!("{why}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

/// HAProxy (Debian package) when installed: one thread, TLS on the same certificate and ticket
/// key, passing bytes to the origin (`mode tcp`, as edgetls does).
fn haproxy(dir: &Path, origin: SocketAddr) -> Result<Option<Server>> {
    if Command::new("haproxy").arg("-v").output().is_err() {
        return Ok(None);
    }
    let port = free_port()?;
    let d = dir.display();
    let mut bundle = std::fs::read(dir.join("cert.pem"))?;
    bundle.extend(std::fs::read(dir.join("key.pem"))?);
    std::fs::write(dir.join("haproxy.pem"), bundle)?;
    let conf = format!(
        "global\n    nbthread 1\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout client 30s\n    timeout server 30s\n    timeout connect 5s\n\
         frontend edge\n    bind 127.0.0.1:{port} ssl crt {d}/haproxy.pem ssl-min-ver TLSv1.3 tls-ticket-keys {d}/tickets3.haproxy\n    default_backend origin\n\
         backend origin\n    server o {origin}\n"
    );
    std::fs::write(dir.join("haproxy.cfg"), conf)?;
    listening(
        Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(dir.join("haproxy.cfg")),
        port,
        &format!("haproxy did not start (check {d}/haproxy.cfg with haproxy -c)"),
    )
    .map(Some)
}

/// Each server's own ticket keys in `dir`: `tickets.haproxy` (edgetls), `tickets.nginx80`,
/// `tickets3.haproxy` (HAProxy wants at least three keys: previous, current, next).
pub(crate) fn ticket_files(dir: &Path) -> Result<()> {
    let tk = KeySet::new(vec![TicketKey::generate(KeySize::Aes256)?], 0)?;
    std::fs::write(
        dir.join("tickets.haproxy"),
        &*format::write(&tk, Format::Haproxy)?,
    )?;
    std::fs::write(
        dir.join("tickets.nginx80"),
        &*format::write(&tk, Format::Nginx80)?,
    )?;
    let keys = (0..3)
        .map(|_| TicketKey::generate(KeySize::Aes256))
        .collect::<Result<Vec<_>, _>>()?;
    let set = KeySet::new(keys, Format::Haproxy.encrypting_index(3))?;
    std::fs::write(
        dir.join("tickets3.haproxy"),
        &*format::write(&set, Format::Haproxy)?,
    )?;
    Ok(())
}

/// Full or resumed: handshakes per second of server CPU, per server.
struct Kind {
    kind: &'static str,
    /// Each server's median round.
    medians: Vec<f64>,
    /// Each server's rounds, in order.
    rounds: Vec<Vec<f64>>,
}

/// One round of the load generator against `server` (see `crate::loadgen`).
fn load(server: &Server, resume: bool, pace: Option<f64>) -> Result<Load> {
    load_version(server, resume, pace, SslVersion::TLS1_3)
}

fn load_version(
    server: &Server,
    resume: bool,
    pace: Option<f64>,
    version: SslVersion,
) -> Result<Load> {
    loadgen::run(&Target {
        addr: server.addr,
        sni: "site.test".into(),
        pid: Some(server.child.id()),
        concurrency: CONCURRENCY,
        seconds: SECONDS,
        resume,
        pace,
        expect: Some(b"ok\n"),
        version,
        names: None,
        status: false,
        proxy_v2: false,
    })
}

/// A self-signed P-256 certificate for `site.test` (cert.pem, key.pem, and certs/site.pem
/// holding both) and the ticket key files, in `d`.
pub(crate) fn site_files(d: &Path) -> Result<()> {
    let group = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    let cert = self_signed(&key)?;
    std::fs::write(d.join("cert.pem"), cert.to_pem()?)?;
    std::fs::write(d.join("key.pem"), key.private_key_to_pem_pkcs8()?)?;
    std::fs::create_dir(d.join("certs"))?;
    let mut bundle = cert.to_pem()?;
    bundle.extend(key.private_key_to_pem_pkcs8()?);
    std::fs::write(d.join("certs/site.pem"), bundle)?;
    ticket_files(d)
}

pub(crate) fn run(root: &Path, report: &mut String) -> Result<()> {
    crate::bench::release_build(root, &["edgetls-proxy"])?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    site_files(d)?;
    let origin = origin("127.0.0.1:0".parse()?)?;
    let ours = edgetls(root, d, origin, 1)?;
    let mut servers: Vec<(String, Server)> = vec![("edgetls proxy, 1 worker".into(), ours)];
    // A peer that is installed but does not start is reported, and the rest goes on.
    let mut missing = Vec::new();
    match nginx(d, origin, 1) {
        Ok(Some(n)) => {
            let v = crate::bench::tool_version("nginx", &["-v"]);
            servers.push((format!("nginx {v}, `worker_processes 1`, `proxy_pass`"), n));
        }
        Ok(None) => missing.push("nginx: not installed".to_string()),
        Err(e) => missing.push(format!("nginx: did not start: {e}")),
    }
    match haproxy(d, origin) {
        Ok(Some(h)) => {
            let v = crate::bench::tool_version("haproxy", &["-v"]);
            servers.push((format!("HAProxy {v}, `nbthread 1`, `mode tcp`"), h));
        }
        Ok(None) => missing.push("HAProxy: not installed".to_string()),
        Err(e) => missing.push(format!("HAProxy: did not start: {e}")),
    }
    let _ = writeln!(
        report,
        "## Proxy: edgetls against nginx and HAProxy\n\n\
         `cargo xtask bench --suite proxy` — {CONCURRENCY} concurrent clients (Rust, OpenSSL, two threads on the same two cores), \
         each connection a TLS 1.3 ECDSA P-256 handshake (full, or resumed from the ticket its previous connection got), \
         `GET /`, the origin's 3-byte answer, close. Every server has the same certificate and its own ticket keys, one worker, \
         and forwards to the same local origin. Server CPU (user + system of the server's processes) is read from \
         `/proc`, so the load generator's own CPU does not enter the per-CPU-second figures. {SECONDS} s per round, \
         {ROUNDS} rounds, the servers taking turns in each; the table shows each server's median round, and a \
         ratio is the median of the ratios of the rounds (each measured next to the other in time).\n\n\
         | server | handshakes | per second of server CPU | per second (wall) | latency p50 | p99 | resumed |\n|---|---|---:|---:|---:|---:|---:|"
    );
    // per kind: per server: median Load summary
    for m in &missing {
        let _ = writeln!(report, "| {m} | | | | | | |");
    }
    // Per kind: handshakes per server CPU-second of each server (medians).
    let mut table: Vec<Kind> = Vec::new();
    for resume in [false, true] {
        let kind = if resume { "resumed" } else { "full" };
        let mut runs: Vec<Vec<Load>> = servers.iter().map(|_| Vec::new()).collect();
        for _ in 0..ROUNDS {
            for (i, (_, server)) in servers.iter().enumerate() {
                runs[i].push(load(server, resume, None)?);
            }
        }
        let mut picked = Vec::new();
        for (i, v) in runs.iter().enumerate() {
            let m = median(v.iter().map(|l| l.per_cpu_second).collect());
            let l = v
                .iter()
                .find(|l| l.per_cpu_second == m)
                .context("median round")?;
            let _ = writeln!(
                report,
                "| {} | {kind} | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {:.0}% |",
                servers[i].0,
                l.per_cpu_second,
                l.per_second,
                l.p50,
                l.p99,
                l.resumed * 100.0
            );
            picked.push(l.per_cpu_second);
        }
        let per_cpu = runs
            .iter()
            .map(|v| v.iter().map(|l| l.per_cpu_second).collect())
            .collect();
        table.push(Kind {
            kind,
            medians: picked,
            rounds: per_cpu,
        });
    }
    for Kind {
        kind,
        rounds: per_cpu,
        ..
    } in &table
    {
        for (i, (name, _)) in servers.iter().enumerate().skip(1) {
            let ratios: Vec<f64> = per_cpu[0]
                .iter()
                .zip(&per_cpu[i])
                .map(|(ours, theirs)| ours / theirs)
                .collect();
            let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            let _ = writeln!(
                report,
                "\n{kind}: edgetls / {} per server CPU second = **{:.2}×** (target ≥ 1.0×; rounds: {})",
                name.split(',').next().unwrap_or(name),
                median(ratios),
                each.join(", ")
            );
        }
    }
    let names: Vec<&str> = servers
        .iter()
        .map(|(n, _)| n.split(',').next().unwrap_or(n))
        .collect();
    report.push_str(&crate::plot::bars(
        "proxy_handshakes_per_cpu",
        "TLS 1.3 ECDSA handshakes per second of server CPU, one worker",
        "handshakes per CPU-second",
        &["full", "resumed"],
        &names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.to_string(),
                    table.iter().map(|k| k.medians[i]).collect::<Vec<f64>>(),
                )
            })
            .collect::<Vec<_>>(),
    )?);
    let ours = servers.remove(0).1;
    drop(servers);
    session_cache(root, d, origin, report)?;
    idle(&ours, 10_000, report)?;
    reloads(root, d, origin, ours, report)
}

/// Full handshakes with the session-ID cache on (the default: every TLS 1.2 full handshake
/// adds its session) and off (`session_cache = 0`), TLS 1.2 and 1.3, the two taking turns in
/// every round.
fn session_cache(root: &Path, d: &Path, origin: SocketAddr, report: &mut String) -> Result<()> {
    let on = edgetls_with(root, d, origin, 1, "")?;
    let off = edgetls_with(root, d, origin, 1, "session_cache = 0")?;
    let _ = writeln!(
        report,
        "\n### Session cache on and off\n\n\
         `edgetls proxy` (1 worker) with the session-ID cache on (default: 20,000 sessions, 5 min; each TLS 1.2 \
         full handshake adds its session) and off (`session_cache = 0`), full handshakes, {ROUNDS} rounds of \
         {SECONDS} s, the two taking turns in each.\n\n\
         | version | on: per second of server CPU (median) | off | on / off (median of the rounds' ratios) | rounds |\n|---|---:|---:|---:|---|"
    );
    for (version, name) in [
        (SslVersion::TLS1_2, "TLS 1.2"),
        (SslVersion::TLS1_3, "TLS 1.3"),
    ] {
        let mut per_cpu = [Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (i, s) in [&on, &off].iter().enumerate() {
                per_cpu[i].push(load_version(s, false, None, version)?.per_cpu_second);
            }
        }
        let ratios = paired(&per_cpu[0], &per_cpu[1]);
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        let _ = writeln!(
            report,
            "| {name} | {:.0} | {:.0} | **{:.2}×** (target ≥ 0.98×) | {} |",
            median(per_cpu[0].clone()),
            median(per_cpu[1].clone()),
            median(ratios),
            each.join(", ")
        );
    }
    Ok(())
}

/// Per round, CPU per handshake of the second setup over the first, from handshakes per
/// CPU-second.
fn paired(first: &[f64], second: &[f64]) -> Vec<f64> {
    first.iter().zip(second).map(|(a, b)| a / b).collect()
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
    let setups = [("1 worker", &one_worker), ("2 workers", &two)];
    let mut ratios: Vec<(Option<f64>, Vec<f64>)> = Vec::new();
    for pace in [None, Some(PACED_RATE)] {
        // The two setups take turns within each round, so drift hits both alike.
        let mut per_cpu = [Vec::new(), Vec::new()];
        let mut wall = [Vec::new(), Vec::new()];
        let mut failed = [0, 0];
        for _ in 0..ROUNDS {
            for (i, (_, server)) in setups.iter().enumerate() {
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
                per_cpu[i].push(l.per_cpu_second);
                wall[i].push(l.per_second);
                failed[i] += l.failed;
            }
        }
        for (i, (name, _)) in setups.iter().enumerate() {
            rows.push((
                pace,
                *name,
                median(per_cpu[i].clone()),
                median(wall[i].clone()),
                failed[i],
            ));
        }
        // CPU per handshake is the inverse of handshakes per CPU-second.
        ratios.push((pace, paired(&per_cpu[0], &per_cpu[1])));
    }
    drop(two);
    drop(one_worker);
    // The same measurement of nginx, whose worker processes share nothing: what this machine
    // does to a 2-versus-1 ratio by itself (no reloads).
    let control = match (nginx(d, origin, 1), nginx(d, origin, 2)) {
        (Ok(Some(n1)), Ok(Some(n2))) => {
            let mut per_cpu = [Vec::new(), Vec::new()];
            for _ in 0..ROUNDS {
                for (i, n) in [&n1, &n2].iter().enumerate() {
                    per_cpu[i].push(load(n, false, Some(PACED_RATE))?.per_cpu_second);
                }
            }
            Some(paired(&per_cpu[0], &per_cpu[1]))
        }
        _ => None,
    };
    let _ = writeln!(
        report,
        "\n### Two workers while reloading every 100 ms (SIGHUP: certificates, policy, ticket keys, routes)\n\n\
         | edgetls proxy | offered load | full handshakes per second of server CPU (median of {ROUNDS}, alternating) | per second (wall) | failed connections |\n|---|---|---:|---:|---:|"
    );
    for (pace, name, c, w, f) in &rows {
        let offered = pace.map_or_else(|| "flat out".to_string(), |r| format!("{r:.0}/s"));
        let _ = writeln!(report, "| {name} | {offered} | {c:.0} | {w:.0} | {f} |");
    }
    let ratio = |pace: Option<f64>| {
        let r = ratios
            .iter()
            .find(|r| r.0 == pace)
            .map_or(&[][..], |r| &r.1[..]);
        let each: Vec<String> = r.iter().map(|x| format!("{x:.2}")).collect();
        (median(r.to_vec()), each.join(", "))
    };
    let (paced, paced_rounds) = ratio(Some(PACED_RATE));
    let (flat, flat_rounds) = ratio(None);
    let _ = writeln!(
        report,
        "\nServer CPU per handshake, 2 workers / 1 worker, at {PACED_RATE:.0} handshakes/s offered: **{paced:.2}×** \
         (target ≤ 1.1×; median of the rounds' ratios: {paced_rounds}); flat out: {flat:.2}× ({flat_rounds}). \
         {all_reloads} reloads during the runs; **{} connections failed** (target 0).",
        rows.iter().map(|r| r.4).sum::<usize>()
    );
    if let Some(c) = control {
        let each: Vec<String> = c.iter().map(|x| format!("{x:.2}")).collect();
        let _ = writeln!(
            report,
            "\nControl, same run: nginx 1.22 measured the same way (no reloads), CPU per handshake with \
             `worker_processes 2` / `1` at {PACED_RATE:.0}/s: {:.2}× ({}).",
            median(c.clone()),
            each.join(", ")
        );
    }
    Ok(())
}
