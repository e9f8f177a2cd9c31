//! `cargo xtask bench --suite proxy-protocol`: what the PROXY protocol costs a connection.
//! Two `edgetls proxy` processes (1 worker each) in the same run: one plain, one that takes a
//! PROXY v2 header from its client (`proxy_protocol_from`) and sends one with the TLS TLVs to
//! its origin (`send_proxy = "v2"`); the load generator makes full TLS 1.3 handshakes with one
//! request each, sending the header to the second. Server CPU per connection, rounds
//! alternating between the two.

use crate::bench_keyless::median;
use crate::bench_proxy::{Server, edgetls_routed, origin, site_files};
use crate::loadgen::{self, Target};
use anyhow::{Result, bail};
use openssl::ssl::SslVersion;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

const ROUNDS: usize = 7;

fn load(server: &Server, proxy_v2: bool) -> Result<f64> {
    let l = loadgen::run(&Target {
        addr: server.addr,
        sni: "site.test".into(),
        pid: Some(server.child.id()),
        concurrency: 32,
        seconds: 3.0,
        resume: false,
        pace: None,
        expect: Some(b"ok\n"),
        version: SslVersion::TLS1_3,
        names: None,
        status: false,
        proxy_v2,
    })?;
    if l.failed > 0 {
        bail!("{} connections failed", l.failed);
    }
    // Server CPU-microseconds per connection.
    Ok(1e6 / l.per_cpu_second)
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
    site_files(dir.path())?;
    let origin = origin("127.0.0.1:0".parse()?)?;
    let plain = edgetls_routed(root, dir.path(), origin, 1, "", "")?;
    let proxied = edgetls_routed(
        root,
        dir.path(),
        origin,
        1,
        "proxy_protocol_from = [\"127.0.0.1\"]",
        "send_proxy = \"v2\"",
    )?;
    let _ = writeln!(
        report,
        "## PROXY protocol: what it costs a connection (`cargo xtask bench --suite proxy-protocol`)\n\n\
         Server CPU per connection (full TLS 1.3 ECDSA P-256 handshake, one request to a plain \
         origin, close; 32 clients each; 1 worker each), {ROUNDS} rounds, the two loaded at the \
         same time (so that both see whatever else the machine does). \
         With PROXY: the client sends a v2 header first (`proxy_protocol_from`), the proxy sends \
         the origin a v2 header with the ALPN, authority and SSL TLVs (`send_proxy = \"v2\"`).\n\n\
         | round | without | with PROXY in and out | with / without |\n|---|---:|---:|---:|"
    );
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        // Both at once: whatever else the machine is doing, both see it.
        let (without, with) = std::thread::scope(|s| {
            let a = s.spawn(|| load(&plain, false));
            let b = s.spawn(|| load(&proxied, true));
            let (a, b) = (a.join(), b.join());
            match (a, b) {
                (Ok(a), Ok(b)) => Ok((a?, b?)),
                _ => bail!("a load thread panicked"),
            }
        })?;
        ratios.push(with / without);
        let _ = writeln!(
            report,
            "| {round} | {without:.0} µs | {with:.0} µs | {:.3} |",
            with / without
        );
    }
    let _ = writeln!(
        report,
        "\nMedian of the per-round ratios: **{:.3}** (target ≤ 1.01).",
        median(ratios)
    );
    Ok(())
}
