//! The load generator: N concurrent clients (Rust, OpenSSL, two threads), each looping over
//! connect → TLS 1.3 (or 1.2) handshake (full, or resumed from the session its previous connection got) →
//! `GET /` → read the answer → close. Reports connections per second, per second of the
//! server's CPU (user + system of `--pid` and its children, read from /proc, so the generator's
//! own CPU does not enter it), latency percentiles and the resumed share.
//!
//! `cargo xtask load 127.0.0.1:8443 --sni www.example.com --concurrency 64 --seconds 10 [--resume] [--pid PID] [--rate R] [--tls12]`

use anyhow::{Context, Result, bail};
use openssl::ssl::{SslConnector, SslMethod, SslSession, SslVerifyMode, SslVersion};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The TLS server to load (`ip:port`).
    addr: SocketAddr,
    /// Server name to send (SNI and Host).
    #[arg(long, default_value = "localhost")]
    sni: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured seconds (after 0.7 s of warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Resume each client's next connection from the ticket its last one received.
    #[arg(long)]
    resume: bool,
    /// The server's process id, for handshakes per second of server CPU.
    #[arg(long)]
    pid: Option<u32>,
    /// Offer this many connections per second in total instead of going flat out.
    #[arg(long)]
    rate: Option<f64>,
    /// TLS 1.2 instead of TLS 1.3.
    #[arg(long)]
    tls12: bool,
    /// Spread the connections over the server names in this file (one per line, in order),
    /// instead of `--sni`.
    #[arg(long)]
    names: Option<std::path::PathBuf>,
    /// With `--names`: one connection per name, then stop (a cold pass, measured whole).
    #[arg(long, requires = "names")]
    once: bool,
    /// Ask for the certificate's OCSP response (status_request), as browsers do.
    #[arg(long)]
    status: bool,
}

/// What to load and how.
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) sni: String,
    pub(crate) pid: Option<u32>,
    pub(crate) concurrency: usize,
    pub(crate) seconds: f64,
    pub(crate) resume: bool,
    pub(crate) pace: Option<f64>,
    /// The answer must end with these bytes (default: start with `HTTP/`).
    pub(crate) expect: Option<&'static [u8]>,
    /// The TLS version every connection uses.
    pub(crate) version: SslVersion,
    /// Server names to spread the connections over, in order (overrides `sni`), and whether
    /// to make exactly one connection per name and stop (a cold pass), measured whole.
    pub(crate) names: Option<(Arc<[String]>, bool)>,
    /// Ask for a stapled OCSP response (status_request).
    pub(crate) status: bool,
    /// Send a PROXY v2 header (the client's own addresses) before the ClientHello, as a load
    /// balancer would.
    pub(crate) proxy_v2: bool,
}

/// `cargo xtask load`: one run, printed.
pub(crate) fn cli(args: &Args) -> Result<()> {
    let l = run(&Target {
        addr: args.addr,
        sni: args.sni.clone(),
        pid: args.pid,
        concurrency: args.concurrency,
        seconds: args.seconds,
        resume: args.resume,
        pace: args.rate,
        expect: None,
        version: if args.tls12 {
            SslVersion::TLS1_2
        } else {
            SslVersion::TLS1_3
        },
        names: match &args.names {
            Some(f) => {
                let list: Arc<[String]> = std::fs::read_to_string(f)
                    .with_context(|| format!("{}", f.display()))?
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect();
                if list.is_empty() {
                    bail!("{}: no server names", f.display());
                }
                Some((list, args.once))
            }
            None => None,
        },
        status: args.status,
        proxy_v2: false,
    })?;
    println!(
        "{} connections in {:.1} s: {:.0}/s{}; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms; resumed {:.0}%; failed {}",
        l.handshakes,
        args.seconds,
        l.per_second,
        if args.pid.is_some() {
            format!(", {:.0} per second of server CPU", l.per_cpu_second)
        } else {
            String::new()
        },
        l.p50,
        l.p90,
        l.p99,
        l.resumed * 100.0,
        l.failed
    );
    Ok(())
}

/// One load run: connections per second (wall), per server CPU second, latency p50/p99 (ms),
/// and the share of resumed handshakes.
pub(crate) struct Load {
    /// Connections completed in the measured window.
    pub(crate) handshakes: usize,
    /// Latency p90 (ms).
    pub(crate) p90: f64,
    pub(crate) failed: usize,
    pub(crate) per_cpu_second: f64,
    pub(crate) per_second: f64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) resumed: f64,
}

/// Runs one round against `t`.
pub(crate) fn run(t: &Target) -> Result<Load> {
    let (resume, pace, concurrency) = (t.resume, t.pace, t.concurrency);
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(t.version))?;
    b.set_max_proto_version(Some(t.version))?;
    edgetls_tls::settings::set_sigalgs(&mut b, "ecdsa_secp256r1_sha256")?;
    let connector = b.build();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let addr = t.addr;
    let sni: Arc<str> = Arc::from(t.sni.as_str());
    let expect = t.expect;
    let (status, proxy_v2) = (t.status, t.proxy_v2);
    let running = Arc::new(AtomicBool::new(true));
    let samples = Arc::new(Mutex::new(Vec::<(f64, bool)>::new()));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    // The next name (or the next connection of a one-per-name pass).
    let next_name = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (names, once) = match &t.names {
        Some((n, once)) => (Some(Arc::clone(n)), *once),
        None => (None, false),
    };
    let (cpu0, t0, cpu1, t1) = rt.block_on(async {
        if once {
            measuring.store(true, Relaxed);
        }
        let start = (t.pid.map_or(0.0, cpu_of), Instant::now());
        let mut tasks = Vec::new();
        for i in 0..concurrency {
            let (names, next_name) = (names.clone(), Arc::clone(&next_name));
            let interval = pace.map(|r| Duration::from_secs_f64(concurrency as f64 / r));
            let sni = Arc::clone(&sni);
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
                    + interval.map_or(Duration::ZERO, |d| d * i as u32 / concurrency as u32);
                while running.load(Relaxed) {
                    if let Some(d) = interval {
                        tokio::time::sleep_until(next).await;
                        next += d;
                    }
                    let name = match &names {
                        Some(n) => {
                            let k = next_name.fetch_add(1, Relaxed);
                            if once && k >= n.len() {
                                break;
                            }
                            &n[k % n.len()]
                        }
                        None => &*sni,
                    };
                    let t = Instant::now();
                    match one(
                        &c,
                        addr,
                        name,
                        expect,
                        if resume { session.as_ref() } else { None },
                        status,
                        proxy_v2,
                    )
                    .await
                    {
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
        if once {
            for t in tasks {
                let _ = t.await;
            }
            let (cpu0, t0) = start;
            return (cpu0, t0, t.pid.map_or(0.0, cpu_of), Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        measuring.store(true, Relaxed);
        let (cpu0, t0) = (t.pid.map_or(0.0, cpu_of), Instant::now());
        tokio::time::sleep(Duration::from_secs_f64(t.seconds)).await;
        measuring.store(false, Relaxed);
        let (cpu1, t1) = (t.pid.map_or(0.0, cpu_of), Instant::now());
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
        handshakes: s.len(),
        p90: pct(0.9),
        failed: failed.load(Relaxed),
        per_cpu_second: n / (cpu1 - cpu0).max(1e-9),
        per_second: n / (t1 - t0).as_secs_f64(),
        p50: pct(0.5),
        p99: pct(0.99),
        resumed,
    })
}

/// Runs every target at once (a load generator each, on its own thread); their loads in order.
pub(crate) fn run_together(targets: Vec<Target>) -> Result<Vec<Load>> {
    std::thread::scope(|s| {
        let runs: Vec<_> = targets.iter().map(|t| s.spawn(move || run(t))).collect();
        runs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| anyhow::bail!("load generator panicked"))
            })
            .collect()
    })
}

pub(crate) async fn one(
    c: &SslConnector,
    addr: SocketAddr,
    sni: &str,
    expect: Option<&'static [u8]>,
    session: Option<&SslSession>,
    status: bool,
    proxy_v2: bool,
) -> Result<(Option<SslSession>, bool)> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    if proxy_v2 {
        let mut header = Vec::with_capacity(28);
        edgetls_proxy_protocol::encode_v2(tcp.local_addr()?, addr, None, &mut header);
        tcp.write_all(&header).await?;
    }
    let mut ssl = c.configure()?.into_ssl(sni)?;
    if status {
        ssl.set_status_type(openssl::ssl::StatusType::OCSP)?;
    }
    if let Some(s) = session {
        // SAFETY: the session comes from a connection of this same connector.
        unsafe { ssl.set_session(s)? };
    }
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp)?;
    Pin::new(&mut tls)
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tls.write_all(format!("GET / HTTP/1.1\r\nhost: {sni}\r\nconnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut resp = Vec::new();
    let _ = tls.read_to_end(&mut resp).await;
    let good = match expect {
        Some(suffix) => resp.ends_with(suffix),
        None => resp.starts_with(b"HTTP/"),
    };
    if !good {
        bail!("bad answer");
    }
    let _ = tls.shutdown().await;
    let reused = tls.ssl().session_reused();
    Ok((tls.ssl().session().map(|s| s.to_owned()), reused))
}

/// CPU seconds (user + system) used so far by `pid` and its children.
pub(crate) fn cpu_of(pid: u32) -> f64 {
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
