//! `cargo xtask bench --suite keyless`: the key server and client, measured side by side with
//! `openssl speed -multi 2` in one run.
//!
//! * Throughput: the release `edgetls-keyserver` binary in its own process on loopback, loaded
//!   by the keyless client (same machine, same 2 cores) with a closed loop of concurrent
//!   requests, for ECDSA P-256 and RSA-2048 signatures.
//! * Client overhead: one request at a time; the median latency the caller sees, minus the
//!   median time the signature itself takes (measured in-process on the same key).
//! * 1,000 concurrent requests against a server answering after `--delay 50ms`; 10,000 in flight.

use anyhow::{Context, Result, bail};
use edgetls_keyless_client::{ClientConfig, KeylessClient, ServerSpec};
use edgetls_keyless_proto::{Opcode, Operation};
use edgetls_testkit::{Pki, setup, ski};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// A key server binary running until dropped.
pub(crate) struct KeyServerProcess {
    child: Child,
    pub(crate) addr: String,
    metrics: String,
}

impl Drop for KeyServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_keyserver(bin: &Path, pki: &Pki, extra: &[&str]) -> Result<KeyServerProcess> {
    let mut cmd = Command::new(bin);
    cmd.arg("--keys").arg(pki.path("keys"));
    start_keyserver_cmd(cmd, pki, extra)
}

/// Starts `cmd` (the key server binary, with its key source and any environment) with the
/// bench's listener, workers, metrics and TLS files.
pub(crate) fn start_keyserver_cmd(
    mut cmd: Command,
    pki: &Pki,
    extra: &[&str],
) -> Result<KeyServerProcess> {
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .to_string();
    let mut child = cmd
        .args([
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--metrics",
            &metrics,
        ])
        .args(pki.keyserver_tls_args())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting edgetls-keyserver")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let addr = line.rsplit(' ').next().unwrap_or("").trim().to_string();
    if addr.is_empty() {
        bail!("edgetls-keyserver did not start: {line:?}");
    }
    Ok(KeyServerProcess {
        child,
        addr,
        metrics,
    })
}

impl KeyServerProcess {
    /// (sum of seconds, count) of the server's own time for `opcode`, from its /metrics.
    fn own_time(&self, opcode: &str) -> Result<(f64, f64)> {
        use std::io::{Read, Write};
        let mut http = std::net::TcpStream::connect(&self.metrics)?;
        http.write_all(b"GET /metrics HTTP/1.1\r\nhost: bench\r\n\r\n")?;
        let mut text = String::new();
        http.read_to_string(&mut text)?;
        let value = |name: &str| -> f64 {
            let key = format!("{name}{{opcode=\"{opcode}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        Ok((
            value("keyless_request_duration_seconds_sum"),
            value("keyless_request_duration_seconds_count"),
        ))
    }
}

pub(crate) fn client(pki: &Pki, addr: &str, connections: usize) -> Result<Arc<KeylessClient>> {
    let mut cfg = ClientConfig::new(
        vec![ServerSpec::new(addr, "localhost")],
        pki.path("edge-1.pem"),
        pki.path("edge-1.key"),
        pki.path("ca.pem"),
    );
    cfg.connections_per_server = connections;
    cfg.request_timeout = Duration::from_secs(30);
    cfg.health_timeout = Duration::from_secs(2);
    let c = Arc::new(KeylessClient::new(cfg)?);
    if !c.wait_connected(connections, Duration::from_secs(10)) {
        bail!("client did not connect to {addr}");
    }
    Ok(c)
}

/// `openssl speed -multi 2` signs per second for `alg` (rsa2048, ecdsap256).
fn openssl_speed(alg: &str, seconds: u32) -> Result<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-multi",
            "2",
            "-seconds",
            &seconds.to_string(),
            alg,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("rsa 2048 bits") || l.contains("256 bits ecdsa"))
        .with_context(|| format!("no result line in openssl speed {alg}: {text}"))?;
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // ... sign(s) verify(s) sign/s verify/s: the next-to-last number.
    numbers
        .iter()
        .rev()
        .nth(1)
        .copied()
        .context("sign/s column")
}

/// Completed requests per second with `concurrency` requests always outstanding.
pub(crate) fn throughput(
    client: &Arc<KeylessClient>,
    op: Operation,
    concurrency: usize,
    seconds: f64,
) -> Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    fn kick(
        c: Arc<KeylessClient>,
        op: Operation,
        done: Arc<AtomicU64>,
        failed: Arc<AtomicU64>,
        running: Arc<AtomicBool>,
    ) {
        let (c2, op2) = (Arc::clone(&c), op.clone());
        c.submit(op, move |r| {
            if r.is_ok() {
                done.fetch_add(1, Relaxed)
            } else {
                failed.fetch_add(1, Relaxed)
            };
            if running.load(Relaxed) {
                kick(c2, op2, done, failed, running);
            }
        });
    }
    // Warm up, then measure.
    for _ in 0..concurrency {
        kick(
            Arc::clone(client),
            op.clone(),
            Arc::clone(&done),
            Arc::clone(&failed),
            Arc::clone(&running),
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let (start_count, started) = (done.load(Relaxed), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let rate = (done.load(Relaxed) - start_count) as f64 / started.elapsed().as_secs_f64();
    running.store(false, Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    if failed.load(Relaxed) > 0 {
        bail!(
            "{} requests failed during the throughput run",
            failed.load(Relaxed)
        );
    }
    Ok(rate)
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Load settings for the throughput runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadShape {
    /// Client connections to the key server.
    pub(crate) connections: usize,
    /// Requests kept outstanding.
    pub(crate) depth: usize,
}

/// Builds the release key server; returns its path.
pub(crate) fn build_keyserver(root: &Path) -> Result<std::path::PathBuf> {
    crate::bench::release_build(root, &["edgetls-keyserver"])?;
    Ok(root.join("target/release/edgetls-keyserver"))
}

pub(crate) fn run(root: &Path, opts: LoadShape, report: &mut String) -> Result<()> {
    let bin = build_keyserver(root)?;
    let (pki, keys) = setup();
    let (p256, rsa) = (ski(&keys.p256), ski(&keys.rsa));
    let ecdsa_op = Operation::request(Opcode::ECDSA_SIGN_SHA256, p256, vec![7; 32]);
    let rsa_op = Operation::request(Opcode::RSA_SIGN_SHA256, rsa, vec![7; 32]);

    let _ = writeln!(
        report,
        "## Keyless: key server and client (`cargo xtask bench --suite keyless`)\n"
    );
    // Throughput, side by side with openssl speed: three rounds, each measuring openssl speed
    // and then the key server, so both see the same machine state; the median ratio counts.
    let server = start_keyserver(&bin, &pki, &[])?;
    let c = client(&pki, &server.addr, opts.connections)?;
    let _ = writeln!(
        report,
        "| signatures, round | `openssl speed -multi 2` | key server over loopback, client on the same 2 cores ({} connections, {} requests outstanding) | ratio |\n|---|---:|---:|---:|",
        opts.connections, opts.depth
    );
    let mut summary = Vec::new();
    for (label, alg, op, target) in [
        ("ECDSA P-256", "ecdsap256", &ecdsa_op, 50.0),
        ("RSA-2048 (PKCS#1 SHA-256)", "rsa2048", &rsa_op, 70.0),
    ] {
        let mut ratios = Vec::new();
        for round in 1..=3 {
            let ossl = openssl_speed(alg, 3)?;
            let ks = throughput(&c, op.clone(), opts.depth, 4.0)?;
            ratios.push(100.0 * ks / ossl);
            let _ = writeln!(
                report,
                "| {label}, {round} | {ossl:.0}/s | {ks:.0}/s | {:.1}% |",
                100.0 * ks / ossl
            );
        }
        summary.push((label, median(ratios), target));
    }
    let _ = writeln!(
        report,
        "\n| signatures | median ratio of 3 rounds | target |\n|---|---:|---:|"
    );
    for (label, ratio, target) in summary {
        let _ = writeln!(report, "| {label} | **{ratio:.1}%** | ≥ {target:.0}% |");
    }

    // Latency, one request at a time. The key server's own work is what it reports spending on
    // each request (its request-duration histogram: lookup, signature, encoding), measured over
    // the same requests; the hot-loop figure shows what the signature alone costs.
    let key = edgetls_keyserver::load_key(&pki.path("keys/p256.pem"))?;
    let hot: Vec<f64> = (0..2000)
        .map(|_| {
            let t = Instant::now();
            let _ =
                edgetls_keyserver::ops::perform(&key, Opcode::ECDSA_SIGN_SHA256, &[7; 32], false);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let seq = |op: &Operation| -> Vec<f64> {
        (0..3000)
            .map(|_| {
                let t = Instant::now();
                let _ = c.call_blocking(op.clone());
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect()
    };
    let before = server.own_time("ecdsa_sign_sha256")?;
    let signed = median(seq(&ecdsa_op));
    let after = server.own_time("ecdsa_sign_sha256")?;
    let own = (after.0 - before.0) / (after.1 - before.1).max(1.0) * 1e6;
    let pinged = median(seq(&Operation::ping(vec![1; 32])));
    // A/B: the same requests from a bare synchronous TLS client (one thread, write a frame, read
    // the answer, no runtime, no hand-offs) against the same server.
    let addr: std::net::SocketAddr = server.addr.parse()?;
    let mut bare =
        edgetls_testkit::connect(&pki, addr, Some("edge-1")).map_err(anyhow::Error::msg)?;
    let bare_signed = median(
        (0..3000u32)
            .map(|id| {
                let t = Instant::now();
                let _ = bare.call(id + 1, ecdsa_op.clone());
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    );
    let _ = writeln!(
        report,
        "\n| one request at a time, loopback | µs |\n|---|---:|"
    );
    let _ = writeln!(
        report,
        "| ECDSA P-256 signature alone, hot loop in-process (median) | {:.1} |",
        median(hot)
    );
    let _ = writeln!(
        report,
        "| the key server's own work per signature request, from its metrics (mean over the run) | {own:.1} |"
    );
    let _ = writeln!(
        report,
        "| the signature through client + key server, as the caller sees it (median) | {signed:.1} |"
    );
    let _ = writeln!(
        report,
        "| the same through a bare synchronous TLS client (median) | {bare_signed:.1} |"
    );
    let _ = writeln!(
        report,
        "| **client overhead: keyless client minus bare client** | **{:.1}** (target ≤ 100) |",
        signed - bare_signed
    );
    let _ = writeln!(
        report,
        "| everything above the server's own work (client, TLS, loopback, 4 thread wake-ups) | {:.1} |",
        signed - own
    );
    let _ = writeln!(
        report,
        "| ping round trip through the client, no crypto (median) | {pinged:.1} |"
    );
    drop(c);
    drop(server);

    // Pipelining against a distant server, and many in flight.
    let server = start_keyserver(&bin, &pki, &["--delay", "50ms"])?;
    let c = client(&pki, &server.addr, 2)?;
    let burst = |n: usize| -> Result<Duration> {
        let (tx, rx) = mpsc::channel();
        let started = Instant::now();
        for i in 0..n {
            let tx = tx.clone();
            c.submit(
                Operation::request(Opcode::ECDSA_SIGN_SHA256, p256, vec![i as u8; 32]),
                move |r| {
                    let _ = tx.send(r.is_ok());
                },
            );
        }
        drop(tx);
        let ok = rx.iter().filter(|ok| *ok).count();
        if ok != n {
            bail!("{} of {n} requests failed", n - ok);
        }
        Ok(started.elapsed())
    };
    let _ = burst(1000)?; // warm-up
    let walls: Vec<f64> = (0..5)
        .map(|_| burst(1000).map(|d| d.as_secs_f64() * 1e3))
        .collect::<Result<_>>()?;
    let ten_k = burst(10_000)?;
    let _ = writeln!(
        report,
        "\n| key server answering after `--delay 50ms` | wall (median of 5) | target |\n|---|---:|---:|"
    );
    let _ = writeln!(
        report,
        "| 1,000 concurrent ECDSA requests | {:.1} ms | < 100 ms |",
        median(walls)
    );
    let _ = writeln!(
        report,
        "| 10,000 requests in flight at once, none failed | {:.1} ms | no error |",
        ten_k.as_secs_f64() * 1e3
    );
    Ok(())
}
