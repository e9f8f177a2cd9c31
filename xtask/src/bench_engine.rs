//! `cargo xtask bench --suite engine`: TLS handshakes with a local key and with a key on the
//! key server (the release binary, its own process, over loopback with mutual TLS), in
//! blocking and async mode, on ONE server thread; all rows of one run side by side.
//!
//! * Rate: handshakes/s, closed loop of concurrent clients, local vs remote, both modes.
//! * Latency vs key-server delay {0, 1, 10, 50, 100} ms: one handshake at a time (connect,
//!   handshake, read the server's 3-byte answer), median; interleaved with the key server's
//!   own round trip at that delay (a sign request through the keyless client, median).
//! * At 50 ms: 256 concurrent clients, async vs blocking vs local key.
//!
//! The load clients run on two threads of this process, on the same two cores: every rate is
//! bound by client and server work together, which is why rows are compared as ratios of one
//! run.

use crate::bench_keyless::{KeyServerProcess, client, median, start_keyserver, throughput};
use anyhow::{Context, Result, bail};
use edgetls_engine::{KeylessKey, RemoteKey, enable_async, remote_pkey, restrict_to_ecdhe};
use edgetls_keyless_proto::{Opcode, Operation};
use edgetls_testkit::{Pki, setup, site_cert, ski};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    Ssl, SslAcceptor, SslConnector, SslContext, SslMethod, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use std::fmt::Write as _;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Blocking,
    Async,
}

/// A TLS server on one current-thread runtime thread, answering "ok\n" after each handshake.
struct Server {
    addr: std::net::SocketAddr,
    /// The server thread's CPU time so far, nanoseconds (sampled every 10 ms by the thread).
    cpu_ns: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(ctx: SslContext, mode: Mode) -> Result<Server> {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let cpu_ns = Arc::new(AtomicU64::new(0));
    let cpu = Arc::clone(&cpu_ns);
    let thread = std::thread::Builder::new()
        .name("tls-server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket.bind(([127, 0, 0, 1], 0).into()).expect("bind");
                let listener = socket.listen(4096).expect("listen");
                let _ = addr_tx.send(listener.local_addr().expect("addr"));
                tokio::task::spawn_local(async move {
                    loop {
                        cpu.store(thread_cpu_ns(), Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
                let accept = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        };
                        let _ = tcp.set_nodelay(true);
                        let Ok(ssl) = Ssl::new(&ctx) else { continue };
                        tokio::task::spawn_local(async move {
                            match mode {
                                Mode::Async => {
                                    if let Ok(s) = edgetls_engine::accept(ssl, tcp).await {
                                        answer(s).await;
                                    }
                                }
                                Mode::Blocking => {
                                    let Ok(mut s) = tokio_openssl::SslStream::new(ssl, tcp) else {
                                        return;
                                    };
                                    if Pin::new(&mut s).accept().await.is_ok() {
                                        answer(s).await;
                                    }
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        })?;
    Ok(Server {
        addr: addr_rx.recv().context("server thread did not start")?,
        cpu_ns,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// The server's answer on an established stream: "ok\n" and a TLS close.
async fn answer<S: tokio::io::AsyncWrite + Unpin>(mut s: S) {
    let _ = s.write_all(b"ok\n").await;
    let _ = s.shutdown().await;
}

fn context(cert: &X509, key: &PKey<Private>, mode: Mode) -> Result<SslContext> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    // Through the seam, as the certificate store sets chains: on AWS-LC this is what makes a
    // remote key sign (through the private-key method).
    let no_intermediates = openssl::stack::Stack::new()?;
    edgetls_tls::use_chain_on_context(&mut b, cert, &no_intermediates, key)?;
    restrict_to_ecdhe(&mut b)?;
    if mode == Mode::Async {
        enable_async(&mut b);
    }
    Ok(b.build().into_context())
}

/// The load client: TLS 1.3, ECDSA P-256 SHA-256 only, no session resumption, no
/// certificate verification (it would cost the shared cores without measuring the server).
fn connector() -> Result<SslConnector> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
    edgetls_tls::settings::set_sigalgs(&mut b, "ecdsa_secp256r1_sha256")?;
    b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
    Ok(b.build())
}

/// One handshake and the server's answer, on a blocking socket.
fn one(connector: &SslConnector, addr: std::net::SocketAddr) -> Result<()> {
    use std::io::Read;
    let tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    let mut tls = connector
        .connect("site.test", tcp)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut buf = [0u8; 3];
    tls.read_exact(&mut buf)?;
    Ok(())
}

/// Milliseconds of one call of `f`.
fn timed(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

/// Medians (ms) of `n` interleaved samples, one request at a time: a sign round trip through
/// the keyless client, a handshake with the local key, a handshake with the remote key.
/// Interleaving gives all three the same conditions, including the phase of the key server's
/// 1 ms timer (back-to-back sign calls would start right after its tick and look faster).
fn latencies(
    connector: &SslConnector,
    client: &edgetls_keyless_client::KeylessClient,
    op: &Operation,
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    n: usize,
) -> Result<(f64, f64, f64, f64)> {
    let (mut rtt, mut l, mut r, mut extra) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n + 3 {
        let a = timed(|| {
            client
                .call_blocking(op.clone())
                .map(|_| ())
                .map_err(Into::into)
        })?;
        let b = timed(|| one(connector, local))?;
        let c = timed(|| one(connector, remote))?;
        if i >= 3 {
            rtt.push(a);
            l.push(b);
            r.push(c);
            // What this iteration's remote handshake cost beyond its neighbours: a local
            // handshake and a bare round trip, measured back to back.
            extra.push(c - b - a);
        }
    }
    Ok((median(rtt), median(l), median(r), median(extra)))
}

/// Handshakes per second with `concurrency` clients always connecting, for `seconds`.
/// The calling thread's CPU time, nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the calling thread's CPU clock into a local.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn rate(addr: std::net::SocketAddr, concurrency: usize, seconds: f64) -> Result<f64> {
    rate_with(addr, concurrency, seconds, None).map(|(r, _)| r)
}

/// Handshakes per second, and (given the server thread's CPU clock) per server CPU-second.
fn rate_with(
    addr: std::net::SocketAddr,
    concurrency: usize,
    seconds: f64,
    cpu: Option<&AtomicU64>,
) -> Result<(f64, Option<f64>)> {
    let connector = connector()?;
    // Two client threads: one alone saturates before the server does (a client handshake
    // costs about what a server one does), and would measure the client.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load-client")
        .enable_all()
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let rate = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (c, done, failed, running) = (
                connector.clone(),
                Arc::clone(&done),
                Arc::clone(&failed),
                Arc::clone(&running),
            );
            tasks.push(tokio::spawn(async move {
                while running.load(Relaxed) {
                    match handshake_async(&c, addr).await {
                        Ok(()) => done.fetch_add(1, Relaxed),
                        Err(_) => failed.fetch_add(1, Relaxed),
                    };
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (start, t0) = (done.load(Relaxed), Instant::now());
        let cpu0 = cpu.map(|c| c.load(Relaxed));
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        let n = (done.load(Relaxed) - start) as f64;
        let r = n / t0.elapsed().as_secs_f64();
        let per_cpu = cpu
            .zip(cpu0)
            .map(|(c, c0)| n / ((c.load(Relaxed).saturating_sub(c0)) as f64 / 1e9).max(1e-9));
        running.store(false, Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        (r, per_cpu)
    });
    if failed.load(Relaxed) > 0 {
        bail!("{} handshakes failed", failed.load(Relaxed));
    }
    Ok(rate)
}

/// `xtask engine-rate`: full TLS 1.3 ECDSA P-256 handshakes per server CPU-second, local key
/// and remote key (provider, async, key server at 0 ms), `rounds` rounds; one JSON line on
/// stdout. The `openssl` suite runs it from builds on each OpenSSL.
pub(crate) fn engine_rate(root: &Path, rounds: usize, seconds: f64) -> Result<()> {
    let bin = root.join("target/release/edgetls-keyserver");
    if !bin.exists() {
        bail!(
            "{} missing: cargo build --release -p edgetls-keyserver",
            bin.display()
        );
    }
    let (pki, keys) = setup();
    let cert = site_cert(&pki, &keys.p256, &["site.test"]);
    let s = Setup {
        cert,
        local_key: keys.p256.clone(),
        op: Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), vec![7; 32]),
        pki,
    };
    let (ks, kc, remote_key) = with_key_server(&bin, &s, 0)?;
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for (key, out) in [(&s.local_key, &mut local), (&remote_key, &mut remote)] {
            let server = serve(context(&s.cert, key, Mode::Async)?, Mode::Async)?;
            let (_, per_cpu) = rate_with(server.addr, 64, seconds, Some(&server.cpu_ns))?;
            out.push(per_cpu.unwrap_or(f64::NAN));
        }
    }
    drop((ks, kc, remote_key));
    println!(
        "{}",
        serde_json::json!({
            "openssl": openssl::version::version(),
            "local": local,
            "remote": remote,
        })
    );
    Ok(())
}

async fn handshake_async(connector: &SslConnector, addr: std::net::SocketAddr) -> Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let ssl = connector.configure()?.into_ssl("site.test")?;
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp)?;
    Pin::new(&mut tls)
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut buf = [0u8; 3];
    tls.read_exact(&mut buf).await?;
    Ok(())
}

struct Setup {
    pki: Pki,
    cert: X509,
    local_key: PKey<Private>,
    op: Operation,
}

fn with_key_server(
    bin: &Path,
    s: &Setup,
    delay_ms: u64,
) -> Result<(
    KeyServerProcess,
    Arc<edgetls_keyless_client::KeylessClient>,
    PKey<Private>,
)> {
    let delay = format!("{delay_ms}ms");
    let extra: &[&str] = if delay_ms == 0 {
        &[]
    } else {
        &["--delay", &delay]
    };
    let ks = start_keyserver(bin, &s.pki, extra)?;
    let c = client(&s.pki, &ks.addr, 2)?;
    let remote: Arc<dyn RemoteKey> = Arc::new(KeylessKey::new(Arc::clone(&c)));
    let key = remote_pkey(&s.cert, remote)?;
    Ok((ks, c, key))
}

/// The provider against the ENGINE shim, same key server, alternating within each round
/// (xtask built with `--features engine`; OpenSSL 3.x).
#[cfg(feature = "engine")]
fn provider_vs_engine(bin: &Path, s: &Setup, report: &mut String) -> Result<()> {
    let ks = start_keyserver(bin, &s.pki, &[])?;
    let c = client(&s.pki, &ks.addr, 2)?;
    let remote: Arc<dyn RemoteKey> = Arc::new(KeylessKey::new(Arc::clone(&c)));
    let provider = remote_pkey(&s.cert, Arc::clone(&remote))?;
    let engine = edgetls_engine::engine_remote_pkey(&s.cert, remote)?;
    let rounds = 7;
    let _ = writeln!(
        report,
        "| remote key, key server at 0 ms, 64 clients, {rounds} alternating rounds | provider (median) | ENGINE (median) | provider / ENGINE (median of per-round ratios) |\n|---|---:|---:|---:|"
    );
    for mode in [Mode::Blocking, Mode::Async] {
        let (mut p, mut e, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which goes first.
            let order: [(&PKey<Private>, bool); 2] = if round % 2 == 0 {
                [(&provider, true), (&engine, false)]
            } else {
                [(&engine, false), (&provider, true)]
            };
            let (mut rp, mut re) = (0.0, 0.0);
            for (key, is_provider) in order {
                let server = serve(context(&s.cert, key, mode)?, mode)?;
                let r = rate(server.addr, 64, 3.0)?;
                if is_provider { rp = r } else { re = r }
            }
            p.push(rp);
            e.push(re);
            ratio.push(rp / re);
        }
        let _ = writeln!(
            report,
            "| {mode:?} | {:.0}/s | {:.0}/s | {:.3}× |",
            median(p),
            median(e),
            median(ratio)
        );
    }
    let _ = writeln!(report);
    Ok(())
}

#[cfg(not(feature = "engine"))]
fn provider_vs_engine(_bin: &Path, _s: &Setup, report: &mut String) -> Result<()> {
    let _ = writeln!(
        report,
        "Provider against ENGINE: run `cargo run --release -p xtask --features engine -- bench --suite engine` (OpenSSL 3.x) for that comparison.\n"
    );
    Ok(())
}

pub(crate) fn run(root: &Path, report: &mut String) -> Result<()> {
    crate::bench::release_build(root, &["edgetls-keyserver"])?;
    let bin = root.join("target/release/edgetls-keyserver");
    let (pki, keys) = setup();
    let cert = site_cert(&pki, &keys.p256, &["site.test"]);
    let s = Setup {
        cert,
        local_key: keys.p256.clone(),
        op: Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), vec![7; 32]),
        pki,
    };
    let conn = connector()?;
    let _ = writeln!(
        report,
        "## Engine: handshakes with a key on the key server (`cargo xtask bench --suite engine`)\n"
    );

    // 1. Rates at 0 ms: local vs remote, both modes; three alternating rounds.
    let (ks, kc, remote_key) = with_key_server(&bin, &s, 0)?;
    let capacity = throughput(&kc, s.op.clone(), 512, 2.0)?;
    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        ("local key, blocking", vec![]),
        ("local key, async", vec![]),
        ("remote key, blocking", vec![]),
        ("remote key, async", vec![]),
    ];
    for _round in 0..3 {
        for (i, (key, mode)) in [
            (&s.local_key, Mode::Blocking),
            (&s.local_key, Mode::Async),
            (&remote_key, Mode::Blocking),
            (&remote_key, Mode::Async),
        ]
        .into_iter()
        .enumerate()
        {
            let server = serve(context(&s.cert, key, mode)?, mode)?;
            rows[i].1.push(rate(server.addr, 64, 3.0)?);
        }
    }
    let _ = writeln!(
        report,
        "| TLS 1.3 ECDSA P-256 handshakes, 1 server thread, 64 clients, key server at 0 ms | handshakes/s (median of 3) | vs local key, same mode |\n|---|---:|---:|"
    );
    let med: Vec<f64> = rows.iter().map(|(_, v)| median(v.clone())).collect();
    for (i, (name, _)) in rows.iter().enumerate() {
        let base = med[i % 2];
        let _ = writeln!(
            report,
            "| {name} | {:.0} | {:.1}% |",
            med[i],
            100.0 * med[i] / base
        );
    }
    let _ = writeln!(
        report,
        "\nKey server capacity, ECDSA P-256 through the keyless client (512 outstanding): {capacity:.0}/s.\n"
    );
    drop((ks, kc, remote_key));
    provider_vs_engine(&bin, &s, report)?;

    // 2. Latency against delay.
    let _ = writeln!(
        report,
        "| key server delay | sign round trip via keyless client (median) | handshake, local key (median) | handshake, remote key, async (median) | added | added − round trip (median over iterations of remote − local − round trip, measured back to back) | ATS, time to fetch a small object |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    let ats = [
        (0, "74 ms (local key)"),
        (1, "72 ms"),
        (10, "83 ms"),
        (50, "123 ms"),
        (100, "173 ms"),
    ];
    let mut at50 = None;
    let mut at10 = None;
    let mut curve: Vec<(f64, f64, f64, f64, f64)> = Vec::new();
    for (delay, ats_figure) in ats {
        let (ks, kc, remote_key) = with_key_server(&bin, &s, delay)?;
        let n = if delay >= 50 { 51 } else { 101 };
        let local = serve(context(&s.cert, &s.local_key, Mode::Async)?, Mode::Async)?;
        let remote = serve(context(&s.cert, &remote_key, Mode::Async)?, Mode::Async)?;
        let (rtt, l, r, extra) = latencies(&conn, &kc, &s.op, local.addr, remote.addr, n)?;
        let _ = writeln!(
            report,
            "| {delay} ms | {rtt:.2} ms | {l:.2} ms | {r:.2} ms | {:.2} ms | {extra:+.2} ms | {ats_figure} |",
            r - l,
        );
        drop((local, remote));
        let ats_ms: f64 = ats_figure
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        curve.push((delay as f64, rtt, l, r, ats_ms));
        if delay == 50 {
            at50 = Some((ks, kc, remote_key));
        } else if delay == 10 {
            at10 = Some((ks, kc, remote_key));
        }
    }
    use crate::plot::{Axes, Series, lines};
    let col = |f: fn(&(f64, f64, f64, f64, f64)) -> f64| {
        curve.iter().map(|c| (c.0, f(c))).collect::<Vec<_>>()
    };
    report.push_str(&lines(
        "keyless_latency_vs_delay",
        &Axes {
            title: "One handshake at a time against key-server delay",
            x: "key server delay (ms)",
            y: "milliseconds",
            log_x: false,
            log_y: false,
        },
        &[
            Series::new("handshake, local key", col(|c| c.2)),
            Series::new("handshake, remote key (async)", col(|c| c.3)),
            Series::new("key server round trip", col(|c| c.1)),
            Series::new(
                "Traffic Server: fetch a small object (its docs)",
                col(|c| c.4),
            ),
        ],
    )?);

    // 2b. Async against blocking as concurrency grows, key server 10 ms away.
    let (ks10, kc10, remote10) = at10.context("10 ms setup")?;
    let mut sweep = Vec::new();
    for c in [1usize, 4, 16, 64, 256] {
        let server = serve(context(&s.cert, &remote10, Mode::Async)?, Mode::Async)?;
        let a = rate(server.addr, c, 3.0)?;
        drop(server);
        // Blocking completes in bursts of `c` every c × 10 ms: the window covers whole bursts.
        let server = serve(context(&s.cert, &remote10, Mode::Blocking)?, Mode::Blocking)?;
        let b = rate(server.addr, c, if c >= 64 { 5.0 } else { 3.0 })?;
        drop(server);
        sweep.push((c as f64, a, b));
    }
    drop((ks10, kc10, remote10));
    let _ = writeln!(
        report,
        "\n| key server 10 ms away, 1 server thread: concurrent clients | remote key, async (handshakes/s) | remote key, blocking | async / blocking |\n|---:|---:|---:|---:|"
    );
    for (c, a, b) in &sweep {
        let _ = writeln!(report, "| {c:.0} | {a:.0} | {b:.1} | {:.1}× |", a / b);
    }
    report.push_str(&lines(
        "keyless_async_vs_blocking",
        &Axes {
            title: "Handshakes/s with the key server 10 ms away, one server thread",
            x: "concurrent clients",
            y: "handshakes per second",
            log_x: true,
            log_y: true,
        },
        &[
            Series::new(
                "async (paused jobs)",
                sweep.iter().map(|p| (p.0, p.1)).collect(),
            ),
            Series::new("blocking", sweep.iter().map(|p| (p.0, p.2)).collect()),
        ],
    )?);

    // 3. At 50 ms: 256 concurrent clients on one server thread.
    let (_ks, _kc, remote_key) = at50.context("50 ms setup")?;
    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut l = Vec::new();
    for _ in 0..3 {
        let server = serve(context(&s.cert, &remote_key, Mode::Async)?, Mode::Async)?;
        a.push(rate(server.addr, 256, 3.0)?);
        drop(server);
        let server = serve(context(&s.cert, &s.local_key, Mode::Async)?, Mode::Async)?;
        l.push(rate(server.addr, 256, 3.0)?);
    }
    // Blocking: every pending ClientHello is signed one after another (50 ms each) before any
    // connection reads its client's Finished, so handshakes complete in bursts every
    // 256 × 50 ms = 12.8 s; the window covers at least one whole burst.
    let server = serve(
        context(&s.cert, &remote_key, Mode::Blocking)?,
        Mode::Blocking,
    )?;
    b.push(rate(server.addr, 256, 14.0)?);
    drop(server);
    let (a, b, l) = (median(a), median(b), median(l));
    let bound = capacity.min(256.0 / 0.050).min(l);
    let _ = writeln!(
        report,
        "\n| 50 ms key server delay, 1 server thread, 256 concurrent clients | handshakes/s |\n|---|---:|\n| remote key, async (median of 3) | {a:.0} |\n| remote key, blocking | {b:.1} |\n| local key (median of 3) | {l:.0} |\n| bound: min(key server {capacity:.0}, 256 / 50 ms = 5120, local {l:.0}) | {bound:.0} |\n| **async / bound** | **{:.2}** (target ≥ 0.8) |\n| **async / blocking** | **{:.0}×** (target ≥ 20×) |",
        a / bound,
        a / b
    );
    Ok(())
}
