//! `cargo xtask bench --suite ab --baseline REV`: this tree's `edgetls` against the one built
//! from git revision REV, in the same run, the builds alternating within every round (their
//! order swapped each round), with the same files, key server, origin and load generator.
//! Every figure is the median over rounds of the per-round ratio (or difference), as the
//! machine's speed drifts between rounds.
//!
//! * Keyless: full TLS 1.3 handshakes per second of the proxy's CPU (every thread of the
//!   process: workers, keyless client, any relay thread), remote key (`[keyless]`, key server at
//!   0 ms) and local key, 1 worker, 32 clients.
//! * Keyless, both builds at once: the two proxies side by side on CPU 0 for the same seconds,
//!   each offered the same fixed rate (remote key, [`PAIRED_RATE`] handshakes per second each,
//!   together well below what CPU 0 does), per second of each proxy's CPU. Flat out, a proxy's
//!   CPU per handshake depends on how far the load generator (sharing the other CPU with the
//!   key server) keeps it busy, and single rounds swung by ±20%; at a fixed offered rate with
//!   both builds sharing the same moments of the machine, by ±3%.
//! * (Added latency over the key server's own round trip is measured by `--suite engine`, which
//!   times the key server's round trip back to back with each handshake.)
//! * 10k names: SNI spread over 10,000 names (each its own certificate): the cold pass (first
//!   handshake of every name, measured whole) and a warm round after it, as many rounds as the
//!   keyless part.
//!
//! The baseline is built in a git worktree under `target/ab/` with its own target directory
//! (`target/ab-target`), kept between runs.
//!
//! On a machine with at least two CPUs the proxy under test runs pinned to CPU 0 (`taskset`)
//! and everything else — this process's load generator and origin, the key server — to the
//! other CPUs: without it the scheduler moved the three between the two cores and single
//! rounds swung by ±20%.

use crate::bench_keyless::median;
use crate::bench_proxy::{Server, origin, spawn_edgetls};
use crate::loadgen::{self, Load, Target};
use anyhow::{Context, Result, bail};
use openssl::ssl::SslVersion;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const SECONDS: f64 = 4.0;
/// The rate each build is offered in the paired rounds (handshakes per second).
const PAIRED_RATE: f64 = 200.0;
/// How long a paired round measures.
const PAIRED_SECONDS: f64 = 6.0;
const KEYLESS_NAME: &str = "keyless.demo.test";
const LOCAL_NAME: &str = "site000001.demo.test";

/// One build under test.
pub(crate) struct Build {
    pub(crate) label: String,
    pub(crate) edgetls: PathBuf,
}

/// Builds `edgetls` at `rev` in a worktree of its own; the binary.
fn baseline(root: &Path, rev: &str) -> Result<PathBuf> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", rev])
        .current_dir(root)
        .output()?;
    if !out.status.success() {
        bail!(
            "git rev-parse {rev}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let short = String::from_utf8(out.stdout)?.trim().to_string();
    let tree = root.join("target/ab").join(&short);
    if !tree.exists() {
        let ok = Command::new("git")
            .args(["worktree", "add", "--detach"])
            .arg(&tree)
            .arg(&short)
            .current_dir(root)
            .status()?
            .success();
        if !ok {
            bail!("git worktree add {} {short} failed", tree.display());
        }
    }
    let target = root.join("target/ab-target");
    let ok = Command::new("cargo")
        .args(["build", "--release", "--quiet", "-p", "edgetls-proxy"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&tree)
        .status()?
        .success();
    if !ok {
        bail!("building edgetls at {short} failed");
    }
    Ok(target.join("release/edgetls"))
}

fn target(s: &Server, sni: &str, concurrency: usize) -> Target {
    Target {
        addr: s.addr,
        sni: sni.into(),
        pid: Some(s.child.id()),
        concurrency,
        seconds: SECONDS,
        resume: false,
        pace: None,
        expect: Some(b"ok\n"),
        version: SslVersion::TLS1_3,
        names: None,
        status: false,
        proxy_v2: false,
    }
}

/// The builds in this round's order: swapped every other round.
fn in_turn(builds: &[Build; 2], round: usize) -> [(usize, &Build); 2] {
    if round.is_multiple_of(2) {
        [(0, &builds[0]), (1, &builds[1])]
    } else {
        [(1, &builds[1]), (0, &builds[0])]
    }
}

/// A proxy with the demo's certificates and the key server at `keyserver`.
fn keyless_edge(b: &Build, d: &Path, keyserver: &str, origin: SocketAddr) -> Result<Server> {
    let config = d.join("ab-keyless.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
             [certificates]\nsources = [\"{multicert}\", \"{keyless}\"]\n\n\
             [keyless]\nsources = [\"{keyless}\"]\nservers = [\"{keyserver}\"]\nserver_name = \"keyserver.demo.test\"\n\
             cert = \"{edge_pem}\"\nkey = \"{edge_key}\"\nca = \"{ca}\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            multicert = d.join("ssl_multicert.config").display(),
            keyless = d.join("keyless").display(),
            edge_pem = d.join("edge.pem").display(),
            edge_key = d.join("edge.key").display(),
            ca = d.join("ca.pem").display(),
        ),
    )?;
    spawn_edgetls(&b.edgetls, &config, PROXY_CPU).with_context(|| b.label.clone())
}

/// How the proxy under test is started: on CPU 0 (see the module documentation).
const PROXY_CPU: &[&str] = &["taskset", "-c", "0"];

/// Moves this process (and so the threads and processes it starts from now on: the load
/// generator, the origin, the key server) off CPU 0, when there is another CPU.
pub(crate) fn pin_away_from_cpu0() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only read and
    // write the set we own; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 1..cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Prints a round's figures (this tree / baseline for each series) on stderr, for anyone
/// checking the medians.
fn print_round<const N: usize>(
    what: &str,
    round: usize,
    out: &[[Vec<f64>; N]; 2],
    labels: [&str; N],
) {
    let mut line = format!("{what}round {}:", round + 1);
    for (k, label) in labels.iter().enumerate() {
        let last = |i: usize| out[i][k].last().copied().unwrap_or(f64::NAN);
        let _ = write!(
            line,
            " {label} {:.0} / {:.0} = {:.3}",
            last(0),
            last(1),
            last(0) / last(1)
        );
    }
    eprintln!("{line}");
}

/// Handshakes per proxy CPU-second, remote and local key with the Rust load generator, and the
/// remote key with the CPython client (when python3 is there): per build, the per-round figures.
pub(crate) fn keyless_rates(
    rounds: usize,
    builds: &[Build; 2],
    (d, root): (&Path, &Path),
    ks: &str,
    origin: SocketAddr,
) -> Result<[[Vec<f64>; 3]; 2]> {
    let names_file = d.join("ab-keyless-name.txt");
    std::fs::write(&names_file, format!("{KEYLESS_NAME}\n"))?;
    let python = crate::pyclient::available().is_some();
    let mut out: [[Vec<f64>; 3]; 2] = Default::default();
    for round in 0..rounds {
        for (i, b) in in_turn(builds, round) {
            let edge = keyless_edge(b, d, ks, origin)?;
            for (k, name) in [KEYLESS_NAME, LOCAL_NAME].into_iter().enumerate() {
                let l = loadgen::run(&target(&edge, name, 32))?;
                check(&l, b, name)?;
                out[i][k].push(l.per_cpu_second);
            }
            if python {
                let l = crate::pyclient::run(root, &target(&edge, KEYLESS_NAME, 32), &names_file)?;
                check(&l, b, "CPython client")?;
                out[i][2].push(l.per_cpu_second);
            }
        }
        print_round("", round, &out, ["remote", "local", "remote (CPython)"]);
    }
    Ok(out)
}

/// Remote-key handshakes per proxy CPU-second with both builds running at once, each offered
/// [`PAIRED_RATE`]: per build, the per-round figures.
fn paired_rates(
    rounds: usize,
    builds: &[Build; 2],
    d: &Path,
    ks: &str,
    origin: SocketAddr,
) -> Result<[[Vec<f64>; 1]; 2]> {
    let mut out: [[Vec<f64>; 1]; 2] = Default::default();
    for round in 0..rounds {
        // Started in the round's order, so neither is always the older process.
        let mut edges: [Option<Server>; 2] = [None, None];
        for (i, b) in in_turn(builds, round) {
            edges[i] = Some(keyless_edge(b, d, ks, origin)?);
        }
        let loads = loadgen::run_together(
            edges
                .iter()
                .flatten()
                .map(|e| {
                    let mut t = target(e, KEYLESS_NAME, 32);
                    t.pace = Some(PAIRED_RATE);
                    t.seconds = PAIRED_SECONDS;
                    t
                })
                .collect(),
        )?;
        for (i, l) in loads.iter().enumerate() {
            check(l, &builds[i], "paired remote key")?;
            out[i][0].push(l.per_cpu_second);
        }
        print_round("paired ", round, &out, ["remote"]);
    }
    Ok(out)
}

fn check(l: &Load, b: &Build, name: &str) -> Result<()> {
    if l.failed > 0 || l.handshakes == 0 {
        bail!(
            "{}: {name}: {} failed, {} completed",
            b.label,
            l.failed,
            l.handshakes
        );
    }
    Ok(())
}

/// The 10k-name spread: per build, the cold pass's and the warm round's figures per round.
fn spread(
    rounds: usize,
    builds: &[Build; 2],
    d: &Path,
    origin: SocketAddr,
) -> Result<[[Vec<f64>; 2]; 2]> {
    const N: usize = 10_000;
    crate::bench_names::prepare(d, N)?;
    let names = crate::bench_names::shuffled(N);
    let config = d.join("ab-names.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[certificates]\nsources = [\"{}\"]\n\n\
             [tickets]\nfile = \"{}\"\nformat = \"haproxy\"\n\n[[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            d.join("certs").display(),
            d.join("tickets.haproxy").display()
        ),
    )?;
    let mut out: [[Vec<f64>; 2]; 2] = Default::default();
    for round in 0..rounds {
        for (i, b) in in_turn(builds, round) {
            let edge =
                spawn_edgetls(&b.edgetls, &config, PROXY_CPU).with_context(|| b.label.clone())?;
            let mut t = target(&edge, "site000000.example.com", 32);
            t.names = Some((Arc::clone(&names), true));
            let cold = loadgen::run(&t)?;
            check(&cold, b, "10k cold pass")?;
            t.names = Some((Arc::clone(&names), false));
            let warm = loadgen::run(&t)?;
            check(&warm, b, "10k warm")?;
            out[i][0].push(cold.per_cpu_second);
            out[i][1].push(warm.per_cpu_second);
        }
        print_round("spread ", round, &out, ["cold", "warm"]);
    }
    Ok(out)
}

/// Median of the per-round ratios new / old.
fn ratio(new: &[f64], old: &[f64]) -> f64 {
    median(new.iter().zip(old).map(|(n, o)| n / o).collect())
}

pub(crate) fn run(
    root: &Path,
    rev: &str,
    (rounds, spread_too): (usize, bool),
    report: &mut String,
) -> Result<()> {
    crate::bench::release_build(root, &["edgetls-proxy", "edgetls-keyserver"])?;
    let old = baseline(root, rev)?;
    pin_away_from_cpu0();
    let builds = [
        Build {
            label: "this tree".into(),
            edgetls: root.join("target/release/edgetls"),
        },
        Build {
            label: format!("baseline {rev}"),
            edgetls: old,
        },
    ];
    let ks_bin = root.join("target/release/edgetls-keyserver");
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    crate::bench_proxy::demo_files(&builds[0].edgetls, d, 20)?;
    let origin = origin("127.0.0.1:0".parse()?)?;

    writeln!(
        report,
        "## This tree against {rev} (`cargo xtask bench --suite ab --baseline {rev}`)\n\n\
         Both builds in the same run, alternating within each round (order swapped every round), \
         `edgetls proxy` with 1 worker; full TLS 1.3 ECDSA P-256 handshakes from the Rust load \
         generator; per second of the proxy process's CPU (all its threads). Medians of per-round \
         ratios.\n"
    )?;
    let (ks, ks_addr) = crate::fleet::keyserver(&ks_bin, d, "0ms")?;
    let rates = keyless_rates(rounds, &builds, (d, root), &ks_addr, origin)?;
    let paired = paired_rates(rounds, &builds, d, &ks_addr, origin)?;
    drop(ks);
    writeln!(
        report,
        "| {rounds} rounds, 32 clients | this tree (median) | baseline (median) | this tree / baseline (median of per-round ratios) |\n|---|---:|---:|---:|"
    )?;
    for (k, what) in [
        "remote key (`[keyless]`, key server at 0 ms)",
        "local key",
        "remote key, CPython `ssl` client",
    ]
    .into_iter()
    .enumerate()
    .filter(|(k, _)| !rates[0][*k].is_empty())
    {
        writeln!(
            report,
            "| {what} | {:.0} | {:.0} | **{:.3}×** |",
            median(rates[0][k].clone()),
            median(rates[1][k].clone()),
            ratio(&rates[0][k], &rates[1][k])
        )?;
    }
    writeln!(
        report,
        "| remote key, both builds at once on CPU 0, {PAIRED_RATE:.0} handshakes/s offered to each | {:.0} | {:.0} | **{:.3}×** |",
        median(paired[0][0].clone()),
        median(paired[1][0].clone()),
        ratio(&paired[0][0], &paired[1][0])
    )?;
    if !spread_too {
        return Ok(());
    }
    let names_dir = tmp.path().join("names");
    std::fs::create_dir_all(&names_dir)?;
    let spread = spread(rounds, &builds, &names_dir, origin)?;
    writeln!(
        report,
        "\n| 10,000 names, SNI spread, {rounds} rounds | this tree (median) | baseline (median) | this tree / baseline (median of per-round ratios) |\n|---|---:|---:|---:|"
    )?;
    for (k, what) in ["cold pass (first handshake of every name)", "warm round"]
        .into_iter()
        .enumerate()
    {
        writeln!(
            report,
            "| {what} | {:.0} | {:.0} | **{:.3}×** |",
            median(spread[0][k].clone()),
            median(spread[1][k].clone()),
            ratio(&spread[0][k], &spread[1][k])
        )?;
    }
    Ok(())
}
