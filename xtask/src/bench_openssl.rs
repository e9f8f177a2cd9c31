//! `cargo xtask bench --suite openssl`: the same handshakes on each OpenSSL operators run —
//! Debian's 3.0 (this build), 3.5 LTS and 4.0 (xtask built again against each, statically, from
//! `cargo xtask openssl`), and AWS-LC (xtask built with its `aws-lc` feature) — in one run, the versions alternating within each round: full TLS 1.3
//! ECDSA P-256 handshakes per server CPU-second with a local key and with a remote key (the
//! provider, async, key server at 0 ms on loopback).

use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROUNDS: usize = 5;

pub(crate) fn run(root: &Path, report: &mut String) -> Result<()> {
    crate::bench::release_build(root, &["edgetls-keyserver"])?;
    let mut builds: Vec<(String, PathBuf)> =
        vec![("3.0 (system)".into(), std::env::current_exe()?)];
    for version in ["3.5", "4.0"] {
        let release = crate::openssl::release_build_against(version, "xtask", root)?;
        builds.push((version.into(), release.join("xtask")));
    }
    let awslc = crate::openssl::release_build_awslc_of(root, &["xtask"], "xtask/aws-lc")?;
    builds.push(("AWS-LC".into(), awslc.join("xtask")));
    // rows[i] = (name, OpenSSL's own version string, local per round, remote per round)
    let mut rows: Vec<(String, String, Vec<f64>, Vec<f64>)> = builds
        .iter()
        .map(|(n, _)| (n.clone(), String::new(), Vec::new(), Vec::new()))
        .collect();
    for round in 0..ROUNDS {
        for k in 0..builds.len() {
            // Rotate who goes first each round.
            let i = (k + round) % builds.len();
            let out = Command::new(&builds[i].1)
                .args(["engine-rate", "--rounds", "1", "--seconds", "2"])
                .current_dir(root)
                .output()?;
            if !out.status.success() {
                bail!(
                    "{}: engine-rate failed: {}",
                    builds[i].0,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .with_context(|| String::from_utf8_lossy(&out.stdout).into_owned())?;
            rows[i].1 = v["openssl"].as_str().unwrap_or_default().to_string();
            rows[i].2.push(v["local"][0].as_f64().unwrap_or(f64::NAN));
            rows[i].3.push(v["remote"][0].as_f64().unwrap_or(f64::NAN));
        }
    }
    let median = crate::bench_keyless::median;
    let _ = writeln!(
        report,
        "## The same handshakes on each OpenSSL and on AWS-LC (`cargo xtask bench --suite openssl`)\n\n\
         Full TLS 1.3 ECDSA P-256 handshakes per server CPU-second (the server thread's own CPU \
         clock), one server thread, 64 clients in the same process, {ROUNDS} rounds with the \
         builds alternating; remote key: async mode, key server at 0 ms on loopback, through the \
         `edgetls-keyless` provider (OpenSSL) or the private-key method (AWS-LC). 3.5 and 4.0 are \
         linked statically (`cargo xtask openssl`); AWS-LC is xtask's `aws-lc` feature.\n\n\
         | build | OpenSSL | local key (median) | remote key (median) | remote / local | local vs 3.0 (median of per-round ratios) | remote vs 3.0 |\n\
         |---|---|---:|---:|---:|---:|---:|"
    );
    for (name, version, local, remote) in &rows {
        let vs = |mine: &[f64], base: &[f64]| {
            median(mine.iter().zip(base).map(|(m, b)| m / b).collect())
        };
        let _ = writeln!(
            report,
            "| {name} | {version} | {:.0} | {:.0} | {:.2} | {:.2}× | {:.2}× |",
            median(local.clone()),
            median(remote.clone()),
            median(remote.iter().zip(local).map(|(r, l)| r / l).collect()),
            vs(local, &rows[0].2),
            vs(remote, &rows[0].3),
        );
    }
    let _ = writeln!(report);
    Ok(())
}
