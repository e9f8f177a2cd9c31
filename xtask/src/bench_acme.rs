//! `cargo xtask bench --suite acme`: step 17's figures, against Debian's pebble on this machine
//! (its VA without sleeps, so an order costs what the client, the CA and the validation cost).
//!
//! 1. Issuance: `edgetls proxy` with [`ISSUE`] names in `[acme] names_file` (TLS-ALPN-01 on
//!    its own listener, 8 orders in flight): total time, per-order p50/p99 (from the proxy's
//!    log), and its full handshakes per proxy CPU-second on a demo name while the orders run,
//!    while a second proxy issues as many names from the same pebble (control), and after,
//!    with the Rust load generator and CPython's `ssl` in turn (alternating rounds with and
//!    without are impossible while the orders run once; each phase's rounds give a median).
//! 2. On demand: the first handshake for a new allowed name against the same order made
//!    through `edgetls certs renew` (the CA's issuance time as the proxy sees it), medians of
//!    [`DEMAND`] names each; then refused names (outside the suffixes) at 1,000 handshakes a
//!    second for 20 s: proxy CPU per handshake against a known name's, and RSS before/after.
//! 3. The admin API with [`LOADED`] certificates loaded: one replacement's time to be in effect
//!    (the API's answer, and a handshake right after it), then 10 replacements a second under
//!    a handshake load spread over the loaded names, in 20-second rounds alternating with
//!    rounds without: failed handshakes and the p99 ratio.

use crate::bench_names::free_port;
use crate::bench_proxy::{demo_files, origin};
use crate::loadgen::{self, Load, Target};
use anyhow::{Context, Result, bail};
use edgetls_testkit::pebble::{Options, Pebble};
use openssl::ssl::SslVersion;
use serde_json::json;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ISSUE: usize = 1_000;
const DEMAND: usize = 10;
const LOADED: usize = 100_000;
const NAME: &str = "site000001.demo.test";

struct Proxy {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        crate::bench_restarts::kill(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
    }
}

fn spawn(bin: &Path, config: &Path) -> Result<Proxy> {
    let log = config.with_extension("log");
    let mut child = Command::new(bin)
        .args(["proxy", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    let addr = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .with_context(|| format!("edgetls proxy did not start: {line:?}"))?;
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Ok(Proxy { child, addr, log })
}

fn target(addr: SocketAddr, pid: u32, seconds: f64, pace: Option<f64>) -> Target {
    Target {
        addr,
        sni: NAME.into(),
        pid: Some(pid),
        concurrency: 16,
        seconds,
        resume: false,
        pace,
        expect: Some(b"ok\n"),
        version: SslVersion::TLS1_3,
        names: None,
        status: false,
        proxy_v2: false,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// The `seconds=` of every "certificate issued" line of a proxy's log.
fn order_seconds(log: &Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("certificate issued"))
        .filter_map(|l| {
            l.split("seconds=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

fn admin(socket: &Path, request: &serde_json::Value) -> Result<serde_json::Value> {
    let mut conn = std::os::unix::net::UnixStream::connect(socket)?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    conn.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(conn).read_line(&mut answer)?;
    Ok(serde_json::from_str(&answer)?)
}

/// Writes `NAME.toml` in `d`: a proxy on `port` with the demo's names and `[acme]` against
/// pebble, storing in `d/NAME`, with `extra` settings.
fn acme_config(
    d: &Path,
    name: &str,
    p: &Pebble,
    port: u16,
    origin: SocketAddr,
    extra: &str,
) -> Result<PathBuf> {
    let config = d.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nworkers = 2\n\n\
             [certificates]\nsources = [\"{}\"]\n\n\
             [acme]\ndirectory = \"{}\"\nca_bundle = \"{}\"\nstorage = \"{name}\"\n\
             orders_per_hour = 1000000\n{extra}\n\n\
             [admin]\nsocket = \"{name}-admin.sock\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            d.join("ssl_multicert.config").display(),
            p.directory,
            p.api_ca.display(),
        ),
    )?;
    Ok(config)
}

/// A proxy with the demo's names and `[acme]` (`names` in its names file, `extra` settings)
/// beside a pebble validating on its port; `started` is taken just before the proxy starts.
struct Setup {
    proxy: Proxy,
    started: Instant,
    /// The port pebble validates HTTP-01 on.
    http_port: u16,
    pebble: Pebble,
    dir: tempfile::TempDir,
}

fn setup(
    bin: &Path,
    root: &Path,
    origin: SocketAddr,
    names: &[String],
    extra: &str,
) -> Result<Setup> {
    let dir = tempfile::tempdir_in(root.join("target"))?;
    let d = dir.path();
    demo_files(bin, d, 50)?;
    let list: String = names.iter().map(|n| format!("{n}\n")).collect();
    std::fs::write(d.join("names.txt"), list)?;
    let (port, http_port) = (free_port()?, free_port()?);
    let p = Pebble::start(Options::new(port, http_port));
    let config = acme_config(
        d,
        "acme",
        &p,
        port,
        origin,
        &format!("names_file = \"names.txt\"\n{extra}"),
    )?;
    let started = Instant::now();
    let proxy = spawn(bin, &config)?;
    Ok(Setup {
        proxy,
        started,
        http_port,
        pebble: p,
        dir,
    })
}

/// Certificates stored in `dir` whose file name ends with `suffix`.
fn stored(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |r| {
        r.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
            .count()
    })
}

/// Per-CPU-second rates of one round with each client: the Rust load generator, then
/// CPython's `ssl` (when python3 is there; `NAN` otherwise).
fn round(root: &Path, proxy: &Proxy, names_file: &Path) -> Result<[f64; 2]> {
    let t = target(proxy.addr, proxy.child.id(), 3.0, None);
    let rust = loadgen::run(&t)?.per_cpu_second;
    let python = match crate::pyclient::available() {
        Some(_) => crate::pyclient::run(root, &t, names_file)?.per_cpu_second,
        None => f64::NAN,
    };
    Ok([rust, python])
}

/// Rounds on `proxy` while `busy()` holds (only rounds that ran entirely while it held, and
/// not the first: orders must be under way).
fn rounds_while(
    root: &Path,
    proxy: &Proxy,
    names_file: &Path,
    busy: impl Fn() -> bool,
    limit: Instant,
) -> Result<Vec<[f64; 2]>> {
    let mut rates = Vec::new();
    let mut first = true;
    while busy() {
        if Instant::now() > limit {
            bail!("the orders did not finish in 15 minutes");
        }
        let r = round(root, proxy, names_file)?;
        if !first && busy() {
            rates.push(r);
        }
        first = false;
    }
    Ok(rates)
}

/// The median of client `k`'s rates.
fn median_of(rates: &[[f64; 2]], k: usize) -> f64 {
    median(&mut rates.iter().map(|r| r[k]).collect::<Vec<_>>())
}

/// Three phases, each the same 3-s rounds of handshakes on the measured proxy: while it
/// issues its own names ("during"); while a second proxy issues as many other names from the
/// same pebble by HTTP-01 ("control": the machine as busy — pebble shares these 2 cores — but
/// the measured proxy does no ACME work); and idle ("after").
fn issuance(bin: &Path, root: &Path, origin: SocketAddr, report: &mut String) -> Result<()> {
    let names: Vec<String> = (0..ISSUE).map(|i| format!("n{i:05}.bench.test")).collect();
    // (Held whole: pebble lives as long as it.)
    let run = setup(bin, root, origin, &names, "concurrency = 8")?;
    let (proxy, started, d) = (&run.proxy, run.started, run.dir.path());
    let limit = started + Duration::from_secs(900);
    let storage = d.join("acme");
    let names_file = d.join("measured-name.txt");
    std::fs::write(&names_file, format!("{NAME}\n"))?;
    let during = rounds_while(
        root,
        proxy,
        &names_file,
        || stored(&storage, ".bench.test.pem") < ISSUE,
        limit,
    )?;
    let total = started.elapsed();

    let others: String = (0..ISSUE)
        .map(|i| format!("c{i:05}.control.test\n"))
        .collect();
    std::fs::write(d.join("control.txt"), others)?;
    let control_config = acme_config(
        d,
        "control",
        &run.pebble,
        free_port()?,
        origin,
        &format!(
            "names_file = \"control.txt\"\nconcurrency = 8\nchallenge = \"http-01\"\n\
             http_listen = \"127.0.0.1:{}\"",
            run.http_port
        ),
    )?;
    let control_started = Instant::now();
    let second = spawn(bin, &control_config)?;
    let control_storage = d.join("control");
    let control = rounds_while(
        root,
        proxy,
        &names_file,
        || stored(&control_storage, ".control.test.pem") < ISSUE,
        control_started + Duration::from_secs(900),
    )?;
    let control_total = control_started.elapsed();
    drop(second);

    let mut after = Vec::new();
    for _ in 0..5 {
        after.push(round(root, proxy, &names_file)?);
    }
    let mut orders = order_seconds(&proxy.log);
    let (rd, rc, ra) = (
        median_of(&during, 0),
        median_of(&control, 0),
        median_of(&after, 0),
    );
    let (pd, pc, pa) = (
        median_of(&during, 1),
        median_of(&control, 1),
        median_of(&after, 1),
    );
    writeln!(
        report,
        "### Issuance: {ISSUE} names against pebble\n\n\
         `edgetls proxy` (2 workers), `[acme] names_file` of {ISSUE} names, TLS-ALPN-01 on its own \
         listener, 8 orders in flight; pebble (`PEBBLE_VA_NOSLEEP=1`) on the same 2 cores. Full \
         handshakes per proxy CPU-second on {NAME} in 3-s rounds: while it issues (during); \
         while a second proxy issues {ISSUE} other names from the same pebble by HTTP-01 \
         (control: pebble as busy, the measured proxy doing no ACME work); idle (after).\n\n\
         | | |\n|---|---:|\n\
         | total, start to {ISSUE} stored | {:.1} s |\n\
         | orders logged | {} |\n\
         | per order p50 / p99 | {:.0} / {:.0} ms |\n\
         | the second proxy's {ISSUE} (HTTP-01) | {:.1} s |\n\
         \n| full handshakes per proxy CPU-second | Rust load generator | CPython `ssl` |\n|---|---:|---:|\n\
         | during issuance (median of {} rounds) | {rd:.0} | {pd:.0} |\n\
         | control (median of {} rounds) | {rc:.0} | {pc:.0} |\n\
         | after (median of 5) | {ra:.0} | {pa:.0} |\n\
         | during / control: what issuing costs the proxy | **{:.3}** | **{:.3}** |\n\
         | during / after: with pebble's own load on these cores | {:.3} | {:.3} |\n",
        total.as_secs_f64(),
        orders.len(),
        pct(&mut orders, 0.5) * 1e3,
        pct(&mut orders, 0.99) * 1e3,
        control_total.as_secs_f64(),
        during.len(),
        control.len(),
        rd / rc,
        pd / pc,
        rd / ra,
        pd / pa,
    )?;
    eprintln!(
        "acme issuance: {ISSUE} in {total:?}, during/control {:.3}, during/after {:.3}",
        rd / rc,
        rd / ra
    );
    Ok(())
}

fn on_demand(bin: &Path, root: &Path, origin: SocketAddr, report: &mut String) -> Result<()> {
    let names: Vec<String> = (0..DEMAND)
        .map(|i| format!("c{i:03}.configured.test"))
        .collect();
    let run = setup(
        bin,
        root,
        origin,
        &names,
        "on_demand = true\non_demand_suffixes = [\"demand.test\"]\n\
         on_demand_per_minute = 100000\non_demand_concurrency = 100",
    )?;
    let (proxy, d) = (&run.proxy, run.dir.path());
    let pid = proxy.child.id();
    let socket = d.join("acme-admin.sock");
    // The configured names are issued at start; then each is renewed through the API: the
    // CA's issuance time as the proxy sees it.
    let until = Instant::now() + Duration::from_secs(120);
    while order_seconds(&proxy.log).len() < DEMAND && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut renew = Vec::new();
    for i in 0..DEMAND {
        let t = Instant::now();
        let a = admin(
            &socket,
            &json!({"op": "renew", "name": format!("c{i:03}.configured.test")}),
        )?;
        if a["ok"] != json!(true) {
            bail!("renew: {a}");
        }
        renew.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // First handshakes for new allowed names (each verified to be the CA's, not the default).
    let mut first = Vec::new();
    let default_leaf = leaf_of(proxy.addr, "default.demo.test")?;
    for i in 0..DEMAND {
        let name = format!("s{i:03}.demand.test");
        let t = Instant::now();
        let leaf = leaf_of(proxy.addr, &name)?;
        first.push(t.elapsed().as_secs_f64() * 1e3);
        if leaf == default_leaf {
            bail!("{name}: the first handshake got the default certificate");
        }
    }
    let (mr, mf) = (median(&mut renew.clone()), median(&mut first.clone()));
    // Refused names: 1,000 handshakes a second, each a name never seen, against a known name.
    let rss0 = crate::bench_soak::rss_mib(pid).unwrap_or(f64::NAN);
    let refused: Arc<[String]> = (0..20_000)
        .map(|i| format!("r{i:06}.refused.example"))
        .collect();
    let mut t_ref = target(proxy.addr, pid, 20.0, Some(1000.0));
    t_ref.names = Some((refused, false));
    let l_ref: Load = loadgen::run(&t_ref)?;
    let rss1 = crate::bench_soak::rss_mib(pid).unwrap_or(f64::NAN);
    let l_known = loadgen::run(&target(proxy.addr, pid, 20.0, Some(1000.0)))?;
    let (us_ref, us_known) = (1e6 / l_ref.per_cpu_second, 1e6 / l_known.per_cpu_second);
    writeln!(
        report,
        "### On demand\n\n\
         | | |\n|---|---:|\n\
         | an order through `edgetls certs renew` (the CA's issuance as the proxy sees it), median of {DEMAND} | {mr:.0} ms |\n\
         | the first handshake for a new allowed name, issuance included, median of {DEMAND} | {mf:.0} ms |\n\
         | first handshake − issuance | **{:.0} ms** |\n\
         | a refused new name (outside the suffixes): proxy CPU per handshake, 1,000/s for 20 s | {us_ref:.0} µs ({} failed) |\n\
         | a known name, same load | {us_known:.0} µs |\n\
         | refused − known (what refusing costs) | **{:.0} µs** |\n\
         | proxy RSS before / after the 20,000 refused names | {rss0:.1} / {rss1:.1} MiB (**{:+.1} MiB**) |\n",
        mf - mr,
        l_ref.failed,
        us_ref - us_known,
        rss1 - rss0,
    )?;
    eprintln!(
        "acme on demand: first {mf:.0} ms vs renew {mr:.0} ms; refused {us_ref:.0} µs vs {us_known:.0} µs"
    );
    Ok(())
}

fn leaf_of(addr: SocketAddr, name: &str) -> Result<Vec<u8>> {
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())?;
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let tls = b
        .build()
        .connect(name, std::net::TcpStream::connect(addr)?)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    Ok(tls
        .ssl()
        .peer_certificate()
        .context("no certificate")?
        .to_der()?)
}

/// A self-signed P-256 certificate naming `name`, and its key (PEM).
fn self_signed(name: &str) -> Result<(String, String)> {
    use edgetls_testkit::certs::{leaf_for, unix_now};
    let now = unix_now();
    let (cert, key) = leaf_for(&[name], now, now + 30 * 86_400, None);
    Ok((
        String::from_utf8(cert.to_pem()?)?,
        String::from_utf8(key.private_key_to_pem_pkcs8()?)?,
    ))
}

fn admin_api(
    bin: &Path,
    root: &Path,
    data: &Path,
    origin: SocketAddr,
    report: &mut String,
) -> Result<()> {
    let set = data.join("acme-100k");
    if !set.join("certs").is_dir() {
        crate::bench_names::prepare(&set, LOADED)?;
    }
    let dir = tempfile::tempdir_in(root.join("target"))?;
    let d = dir.path();
    let config = d.join("admin.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\n\n\
             [certificates]\nsources = [\"{}\"]\n\n\
             [admin]\nsocket = \"admin-api.sock\"\nstorage = \"managed\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            set.join("certs").display()
        ),
    )?;
    let proxy = spawn(bin, &config)?;
    let pid = proxy.child.id();
    let socket = d.join("admin-api.sock");
    let until = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let name = "replaced.bench.test";
    let (c, k) = self_signed(name)?;
    let a = admin(
        &socket,
        &json!({"op": "add", "name": name, "cert": c, "key": k}),
    )?;
    if a["ok"] != json!(true) {
        bail!("add: {a}");
    }
    // The add was a new file: a full reload, and the watcher's own after it. Measured from
    // steady state.
    std::thread::sleep(Duration::from_secs(5));
    // One replacement at a time: the API's own figure, and request-to-served.
    let mut answered = Vec::new();
    let mut served = Vec::new();
    for _ in 0..20 {
        let (c, k) = self_signed(name)?;
        let want = openssl::x509::X509::from_pem(c.as_bytes())?.to_der()?;
        let t = Instant::now();
        let a = admin(
            &socket,
            &json!({"op": "replace", "name": name, "cert": c, "key": k}),
        )?;
        if a["ok"] != json!(true) {
            bail!("replace: {a}");
        }
        answered.push(a["in_effect_ms"].as_f64().unwrap_or(f64::NAN));
        if leaf_of(proxy.addr, name)? != want {
            bail!("the replaced certificate is not served right after the answer");
        }
        served.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // 10 replacements a second under load, in rounds alternating with rounds without.
    let names: Arc<[String]> = crate::bench_names::shuffled(LOADED);
    let round = |with: bool| -> Result<(Load, usize)> {
        let mut t = target(proxy.addr, pid, 20.0, Some(300.0));
        t.names = Some((Arc::clone(&names), false));
        t.expect = Some(b"ok\n");
        let certs: Vec<(String, String)> = if with {
            (0..200).map(|_| self_signed(name)).collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        let socket = socket.clone();
        let replacer = std::thread::spawn(move || -> usize {
            let mut done = 0;
            let start = Instant::now();
            for (i, (c, k)) in certs.into_iter().enumerate() {
                let at = Duration::from_millis(700 + 100 * i as u64);
                if let Some(wait) = at.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
                if admin(
                    &socket,
                    &json!({"op": "replace", "name": name, "cert": c, "key": k}),
                )
                .is_ok_and(|a| a["ok"] == json!(true))
                {
                    done += 1;
                }
            }
            done
        });
        let l = loadgen::run(&t)?;
        Ok((l, replacer.join().unwrap_or(0)))
    };
    let mut ratios = Vec::new();
    let (mut failed_with, mut failed_without, mut replaced) = (0, 0, 0);
    let mut rows = String::new();
    for r in 0..5 {
        let (without, _) = round(false)?;
        let (with, n) = round(true)?;
        failed_with += with.failed;
        failed_without += without.failed;
        replaced += n;
        ratios.push(with.p99 / without.p99);
        let _ = writeln!(
            rows,
            "| {} | {:.1} | {:.1} | {} | {} | {:.3} |",
            r + 1,
            without.p99,
            with.p99,
            without.failed,
            with.failed,
            with.p99 / without.p99
        );
    }
    writeln!(
        report,
        "### Admin API with {LOADED} certificates loaded\n\n\
         One replacement at a time (20): in effect per the API's answer, median {:.1} ms, worst \
         {:.1} ms; request sent to the new certificate served by the next handshake, median {:.1} \
         ms, worst {:.1} ms.\n\n\
         Under a load of 300 full handshakes a second spread over the {LOADED} names, 20-s rounds \
         alternating without and with 10 replacements a second ({replaced} replacements made):\n\n\
         | round | p99 without (ms) | p99 with (ms) | failed without | failed with | ratio |\n\
         |---:|---:|---:|---:|---:|---:|\n{rows}\n\
         Failed handshakes with replacements: **{failed_with}** (without: {failed_without}); \
         p99 with / without, median of rounds: **{:.3}**.\n",
        median(&mut answered.clone()),
        answered.iter().copied().fold(0.0, f64::max),
        median(&mut served.clone()),
        served.iter().copied().fold(0.0, f64::max),
        median(&mut ratios),
    )?;
    Ok(())
}

/// `part`: `all`, or one of `issue`, `demand`, `admin` (`--suite acme-PART`).
pub(crate) fn run(root: &Path, data: &Path, part: &str, report: &mut String) -> Result<()> {
    crate::bench::release_build(root, &["edgetls-proxy"])?;
    let bin = root.join("target/release/edgetls");
    let origin = origin("127.0.0.1:0".parse()?)?;
    writeln!(
        report,
        "## ACME, on demand and the admin API (`cargo xtask bench --suite acme`)\n"
    )?;
    if matches!(part, "all" | "issue") {
        issuance(&bin, root, origin, report)?;
    }
    if matches!(part, "all" | "demand") {
        on_demand(&bin, root, origin, report)?;
    }
    if matches!(part, "all" | "admin") {
        admin_api(&bin, root, data, origin, report)?;
    }
    Ok(())
}
