//! `cargo xtask bench --suite groups`: what post-quantum key exchange by default costs clients
//! that do not offer it. `edgetls proxy` built against OpenSSL 3.5 (statically, from `cargo
//! xtask openssl 3.5`), then on AWS-LC, runs twice side by side on CPU 0: once with the library's default groups
//! (X25519MLKEM768 preferred) and once with `groups = "X25519:P-256"` (no post-quantum group
//! configured). This process's load generator (Debian's OpenSSL 3.0: X25519, no ML-KEM) offers
//! each the same fixed rate of full TLS 1.3 ECDSA P-256 handshakes for the same seconds; per
//! second of each proxy's CPU, median of per-round ratios, the start order alternating each
//! round (the side-by-side method of `--suite ab`). CPython's `ssl` client (Debian's OpenSSL
//! 3.0, classical as well) then runs flat out against each proxy in turn, as the second client.

use crate::bench_keyless::median;
use crate::bench_proxy::{Server, origin, spawn_edgetls};
use crate::loadgen::{self, Target};
use anyhow::{Result, bail};
use openssl::ssl::SslVersion;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Handshakes per second offered to each proxy.
const RATE: f64 = 250.0;
const SECONDS: f64 = 6.0;
const NAME: &str = "site000001.demo.test";

/// A proxy configuration for the demo's certificates, with `groups` as the policy's default
/// rule when given.
fn config(d: &Path, label: &str, groups: Option<&str>, origin: SocketAddr) -> Result<PathBuf> {
    let policy = match groups {
        Some(g) => {
            let file = d.join(format!("policy-{label}.toml"));
            std::fs::write(&file, format!("[[sni]]\nfqdn = \"*\"\ngroups = \"{g}\"\n"))?;
            format!("[policy]\nfile = \"{}\"\n\n", file.display())
        }
        None => String::new(),
    };
    let path = d.join(format!("groups-{label}.toml"));
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[certificates]\nsources = [\"{}\"]\n\n\
             {policy}[[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            d.join("ssl_multicert.config").display()
        ),
    )?;
    Ok(path)
}

fn target(s: &Server) -> Target {
    Target {
        addr: s.addr,
        sni: NAME.into(),
        pid: Some(s.child.id()),
        concurrency: 32,
        seconds: SECONDS,
        resume: false,
        pace: Some(RATE),
        expect: Some(b"ok\n"),
        version: SslVersion::TLS1_3,
        names: None,
        status: false,
        proxy_v2: false,
    }
}

pub(crate) fn run(root: &Path, rounds: usize, report: &mut String) -> Result<()> {
    let builds = [
        (
            "OpenSSL 3.5",
            crate::openssl::release_build_against("3.5", "edgetls-proxy", root)?.join("edgetls"),
        ),
        (
            "AWS-LC",
            crate::openssl::release_build_awslc(root)?.join("edgetls"),
        ),
    ];
    writeln!(
        report,
        "## Post-quantum by default, classical clients (`cargo xtask bench --suite groups --runs {rounds}`)\n\n\
         `edgetls proxy`, 1 worker, twice side by side on CPU 0: the library's default groups \
         (X25519MLKEM768 first) and `groups = \"X25519:P-256\"`; each offered {RATE:.0} full TLS \
         1.3 handshakes/s for {SECONDS:.0} s by a client on OpenSSL 3.0 (X25519, no ML-KEM); then, \
         in the same round, CPython's `ssl` client (also X25519 only) flat out against each for 4 s \
         in turn; per second of each proxy's CPU, start and turn order alternating.\n\n\
         | library, {rounds} rounds | default groups (median) | X25519:P-256 (median) | default / X25519:P-256 (median of per-round ratios) |\n\
         |---|---:|---:|---:|"
    )?;
    for (library, edgetls) in &builds {
        one_library(root, library, edgetls, rounds, report)?;
    }
    Ok(())
}

fn one_library(
    root: &Path,
    library: &str,
    edgetls: &Path,
    rounds: usize,
    report: &mut String,
) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    crate::bench_proxy::demo_files(edgetls, d, 5)?;
    let origin = origin("127.0.0.1:0".parse()?)?;
    let configs = [
        config(d, "default", None, origin)?,
        config(d, "classical", Some("X25519:P-256"), origin)?,
    ];
    crate::bench_ab::pin_away_from_cpu0();
    let names = d.join("one-name.txt");
    std::fs::write(&names, format!("{NAME}\n"))?;
    let python = crate::pyclient::available().is_some();
    let mut per: [Vec<f64>; 2] = Default::default();
    // The CPython client (classical too): flat out against each proxy in turn.
    let mut py: [Vec<f64>; 2] = Default::default();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut edges: [Option<Server>; 2] = [None, None];
        for i in order {
            edges[i] = Some(spawn_edgetls(
                edgetls,
                &configs[i],
                &["taskset", "-c", "0"],
            )?);
        }
        let loads = loadgen::run_together(edges.iter().flatten().map(target).collect())?;
        for (i, l) in loads.iter().enumerate() {
            if l.failed > 0 || l.handshakes == 0 {
                bail!("{} failed, {} completed", l.failed, l.handshakes);
            }
            per[i].push(l.per_cpu_second);
        }
        if python {
            for i in order {
                let Some(s) = &edges[i] else { continue };
                let t = Target {
                    pace: None,
                    seconds: 4.0,
                    concurrency: 16,
                    ..target(s)
                };
                py[i].push(crate::pyclient::run(root, &t, &names)?.per_cpu_second);
            }
        }
        eprintln!(
            "{library} round {}: default {:.0} / X25519:P-256 {:.0} = {:.3}",
            round + 1,
            per[0][round],
            per[1][round],
            per[0][round] / per[1][round]
        );
    }
    row(
        report,
        &format!("{library}, Rust client (X25519), paced side by side"),
        &per,
    )?;
    if python {
        row(
            report,
            &format!("{library}, CPython `ssl` client (X25519), flat out in turn"),
            &py,
        )?;
    }
    Ok(())
}

/// A table row: the two medians and the median of the per-round ratios.
fn row(report: &mut String, label: &str, per: &[Vec<f64>; 2]) -> Result<()> {
    let ratios: Vec<f64> = per[0].iter().zip(&per[1]).map(|(a, b)| a / b).collect();
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
    writeln!(
        report,
        "| {label} | {:.0} | {:.0} | **{:.3}×** (rounds {lo:.3}–{hi:.3}) |",
        median(per[0].clone()),
        median(per[1].clone()),
        median(ratios),
    )?;
    Ok(())
}
