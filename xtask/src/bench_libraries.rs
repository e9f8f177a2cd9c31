//! `cargo xtask bench --suite libraries`: the same proxy on two TLS libraries, side by side with
//! its peers. `edgetls proxy` built on the system's OpenSSL 3.0 and on AWS-LC (rust-openssl's
//! `aws-lc` feature), nginx (`http` and `stream`) and HAProxy from Debian (OpenSSL 3.0), HAProxy
//! built on the same AWS-LC (`crate::haproxy_awslc`), and the reference server
//! (`benches/src/bin/reference_server.rs`: the least a rust-openssl server does) on each
//! library, answering itself and relaying to the origin as the proxies do. 10,000 names, each
//! with its own ECDSA P-256 certificate; full TLS 1.3 handshakes,
//! X25519 from the clients; one name and the SNI spread over all of them (after a first pass
//! over every name); two independent clients (the Rust load generator and CPython's `ssl`).
//! Per second of each server's CPU; in every round each server takes its turn, the order
//! rotating round by round; ratios are medians of the per-round ratios. Then resumed
//! handshakes (Rust client, every server) and remote keys (edgetls on each library, a key
//! server at 0 ms).

use crate::bench_keyless::median;
use crate::bench_names::{Client, Server, spawn, target, warm_round, write_names};
use crate::bench_proxy::{origin, proxy_config, spawn_edgetls};
use crate::loadgen;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const NAMES: usize = 10_000;

/// A server of the comparison and whether it serves all the names (the reference servers have
/// one certificate).
struct Entry {
    server: Server,
    /// The server's label under its bars in the plot.
    short: String,
    spread: bool,
    /// A peer on the system's OpenSSL 3.0 (Debian's nginx and HAProxy).
    system_peer: bool,
    /// Per client: one name, then the spread, handshakes per CPU-second in each round.
    one: Vec<Vec<f64>>,
    all: Vec<Vec<f64>>,
    /// Resumed from the previous connection's ticket, one name, Rust client, per round; or
    /// why not.
    resumed: Vec<f64>,
    resumed_failed: Option<String>,
}

fn edgetls(bin: &Path, d: &Path, origin: std::net::SocketAddr, label: &str) -> Result<Server> {
    let t = Instant::now();
    let file = proxy_config(d, origin, (1, "", ""))?;
    let server = spawn_edgetls(bin, &file, &[])?;
    Ok(Server {
        name: format!("edgetls proxy on {label}, 1 worker"),
        server,
        started: t.elapsed(),
    })
}

/// The reference server on `label`'s library: answering itself, or (`origin`) relaying each
/// request to the origin as the proxies do.
fn reference(
    bin: &Path,
    pem: &Path,
    label: &str,
    origin: Option<std::net::SocketAddr>,
) -> Result<Server> {
    let port = crate::bench_names::free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg(pem).arg(port.to_string());
    let name = match origin {
        Some(o) => {
            cmd.arg(o.to_string());
            format!("reference server on {label}, relaying to the origin")
        }
        None => format!("reference server on {label}"),
    };
    spawn(name, &mut cmd, port)
}

/// HAProxy built on AWS-LC (`make TARGET=linux-glibc USE_OPENSSL_AWSLC=1 …`), configured as
/// Debian's is in `--suite names`.
fn haproxy_awslc(bin: &Path, d: &Path, origin: std::net::SocketAddr) -> Result<Server> {
    let port = crate::bench_names::free_port()?;
    let dd = d.display();
    let conf = format!(
        "global\n    nbthread 1\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout client 30s\n    timeout server 30s\n    timeout connect 5s\n\
         frontend edge\n    bind 127.0.0.1:{port} ssl crt {dd}/certs ssl-min-ver TLSv1.3 tls-ticket-keys {dd}/tickets3.haproxy\n    default_backend origin\n\
         backend origin\n    server o {origin}\n"
    );
    std::fs::write(d.join("haproxy-awslc.cfg"), conf)?;
    let v = crate::bench::tool_version(&bin.display().to_string(), &["-v"]);
    spawn(
        format!("HAProxy {v} on AWS-LC, `mode tcp`, `crt DIR`"),
        Command::new(bin)
            .args(["-db", "-f"])
            .arg(d.join("haproxy-awslc.cfg")),
        port,
    )
}

pub(crate) fn run(root: &Path, rounds: usize, report: &mut String) -> Result<()> {
    crate::bench::release_build(
        root,
        &["edgetls-proxy", "edgetls-benches", "edgetls-keyserver"],
    )?;
    let native = root.join("target/release");
    let awslc = crate::openssl::release_build_awslc(root)?;
    let mut clients = vec![Client::Rust];
    let python = crate::pyclient::available();
    if python.is_some() {
        clients.push(Client::CPython);
    }
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    crate::bench_names::prepare(d, NAMES)?;
    let names = crate::bench_names::shuffled(NAMES);
    let one: Arc<[String]> = Arc::from(vec![names[0].clone()]);
    let (all_file, one_file) = (d.join("names.txt"), d.join("one-name.txt"));
    write_names(&all_file, &names)?;
    write_names(&one_file, &one)?;
    let pem = d.join("certs").join(format!("{}.pem", names[0]));
    let origin = origin("127.0.0.1:0".parse()?)?;

    // (server, serves every name, a peer on the system's OpenSSL, label in the plot)
    let mut servers: Vec<(Server, bool, bool, String)> = vec![
        (
            edgetls(&awslc.join("edgetls"), d, origin, "AWS-LC")?,
            true,
            false,
            "edgetls AWS-LC".into(),
        ),
        (
            edgetls(&native.join("edgetls"), d, origin, "OpenSSL 3.0")?,
            true,
            false,
            "edgetls 3.0".into(),
        ),
    ];
    let mut skipped = Vec::new();
    // (peer, on the system's OpenSSL, label in the plot)
    let peers: Vec<(Result<Server>, bool, &str)> = vec![
        (
            crate::bench_names::nginx_http(d, &names, origin),
            true,
            "nginx http",
        ),
        (
            crate::bench_names::nginx_stream(d, origin).and_then(|s| s.context("no stream module")),
            true,
            "nginx stream",
        ),
        (crate::bench_names::haproxy(d, origin), true, "HAProxy 2.6"),
        (
            crate::haproxy_awslc::binary(root)
                .context("HAProxy on AWS-LC")
                .and_then(|bin| haproxy_awslc(&bin, d, origin)),
            false,
            "HAProxy AWS-LC",
        ),
    ];
    for (p, system, short) in peers {
        match p {
            Ok(s) => servers.push((s, true, system, short.into())),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    for (bin, label, short) in [
        (&awslc, "AWS-LC", "AWS-LC"),
        (&native, "OpenSSL 3.0", "3.0"),
    ] {
        for hop in [None, Some(origin)] {
            servers.push((
                reference(&bin.join("reference-server"), &pem, label, hop)?,
                false,
                false,
                match hop {
                    None => format!("ref {short}"),
                    Some(_) => format!("ref+relay {short}"),
                },
            ));
        }
    }
    // The first pass over every name (certificates built, caches filled), not measured.
    for (s, spread, _, _) in &servers {
        if *spread {
            loadgen::run(&target(s, Some((Arc::clone(&names), true))))
                .with_context(|| format!("{}: the first pass", s.name))?;
        }
    }
    let mut entries: Vec<Entry> = servers
        .into_iter()
        .map(|(server, spread, system_peer, short)| Entry {
            server,
            short,
            spread,
            system_peer,
            one: vec![Vec::new(); clients.len()],
            all: vec![Vec::new(); clients.len()],
            resumed: Vec::new(),
            resumed_failed: None,
        })
        .collect();
    let n = entries.len();
    for round in 0..rounds {
        for (c, &client) in clients.iter().enumerate() {
            for k in 0..n {
                let e = &mut entries[(k + round) % n];
                let name = e.server.name.clone();
                e.one[c].push(
                    warm_round(client, root, &e.server, &one, &one_file)
                        .with_context(|| format!("{name}, one name, {}", client.label()))?,
                );
                if c == 0 && e.resumed_failed.is_none() {
                    match resumed_round(&e.server, &one) {
                        Ok(v) => e.resumed.push(v),
                        Err(err) => e.resumed_failed = Some(format!("{err:#}")),
                    }
                }
                if e.spread {
                    e.all[c].push(
                        warm_round(client, root, &e.server, &names, &all_file)
                            .with_context(|| format!("{name}, spread, {}", client.label()))?,
                    );
                }
            }
        }
        eprintln!("libraries: round {} of {rounds} done", round + 1);
    }

    let labels: Vec<&str> = clients.iter().map(|c| c.label()).collect();
    let _ = writeln!(
        report,
        "## TLS libraries: OpenSSL 3.0 and AWS-LC (`cargo xtask bench --suite libraries --runs {rounds}`)\n\n\
         Full TLS 1.3 handshakes (ECDSA P-256, X25519) per second of each server's CPU, one worker or \
         thread each, {NAMES} names with a certificate each; one name, and the SNI spread over all \
         (after a first pass over every name); {rounds} rounds, the servers taking turns in an order \
         rotating each round. Clients: {} ({}). Medians.\n\n\
         | server | one name ({}) | {NAMES} names spread ({}) |\n|---|---:|---:|",
        labels.join(" and "),
        python.as_deref().unwrap_or("no python3 here"),
        labels.join(" / "),
        labels.join(" / "),
    );
    let med = |v: &[Vec<f64>]| {
        v.iter()
            .map(|r| {
                if r.is_empty() {
                    "–".to_string()
                } else {
                    format!("{:.0}", median(r.clone()))
                }
            })
            .collect::<Vec<_>>()
            .join(" / ")
    };
    for e in &entries {
        let _ = writeln!(
            report,
            "| {} | {} | {} |",
            e.server.name,
            med(&e.one),
            med(&e.all)
        );
    }
    let ratio = |a: &[f64], b: &[f64]| -> String {
        if a.is_empty() || b.is_empty() {
            return "–".into();
        }
        let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
        let (lo, hi) = r
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        format!("**{:.2}×** ({lo:.2}–{hi:.2})", median(r))
    };
    // One table of ratios: `base` (an entry index) over each of `others`.
    let table = |report: &mut String, title: &str, base: usize, others: &[&Entry]| {
        let _ = writeln!(
            report,
            "\n{title}, median of per-round ratios (range):\n\n\
             | / server | one name, {} | one name, {} | spread, {} | spread, {} |\n|---|---:|---:|---:|---:|",
            labels[0],
            labels.get(1).unwrap_or(&"–"),
            labels[0],
            labels.get(1).unwrap_or(&"–"),
        );
        for e in others {
            let mut cells = Vec::new();
            for part in [0, 1] {
                for c in 0..2 {
                    let (a, b) = match part {
                        0 => (entries[base].one.get(c), e.one.get(c)),
                        _ => (entries[base].all.get(c), e.all.get(c)),
                    };
                    cells.push(match (a, b) {
                        (Some(a), Some(b)) => ratio(a, b),
                        _ => "–".into(),
                    });
                }
            }
            let _ = writeln!(report, "| {} | {} |", e.server.name, cells.join(" | "));
        }
    };
    report.push_str(&plot(&entries, &labels)?);
    let rest: Vec<&Entry> = entries.iter().skip(1).collect();
    table(report, "edgetls on AWS-LC / each server", 0, &rest);
    // The same library as Debian's peers: edgetls on OpenSSL 3.0 against them.
    let peers: Vec<&Entry> = entries.iter().filter(|e| e.system_peer).collect();
    table(
        report,
        "edgetls on OpenSSL 3.0 / the servers on the same OpenSSL 3.0",
        1,
        &peers,
    );
    resumed_table(report, &entries);
    for s in skipped {
        let _ = writeln!(report, "\n(not run: {s})");
    }
    drop(entries);
    // Last, as it pins this process away from CPU 0 (the proxies run on it).
    let builds = [
        (awslc.as_path(), "AWS-LC"),
        (native.as_path(), "OpenSSL 3.0"),
    ];
    if let Err(e) = remote_keys(root, rounds, builds, report) {
        let _ = writeln!(report, "\n(remote keys not run: {e:#})");
    }
    Ok(())
}

/// One round of resumed handshakes (each client resumes from its previous connection's ticket):
/// per second of the server's CPU. Fails unless nearly all of them resumed.
fn resumed_round(s: &Server, one: &Arc<[String]>) -> Result<f64> {
    let t = loadgen::Target {
        resume: true,
        ..target(s, Some((Arc::clone(one), false)))
    };
    let l = loadgen::run(&t)?;
    if l.resumed < 0.9 {
        anyhow::bail!("only {:.0}% of the connections resumed", l.resumed * 100.0);
    }
    Ok(l.per_cpu_second)
}

fn resumed_table(report: &mut String, entries: &[Entry]) {
    let _ = writeln!(
        report,
        "\nResumed TLS 1.3 handshakes (each client resumes from the ticket of its previous \
         connection; one name; Rust load generator; same rounds): per second of each server's \
         CPU, median, and edgetls on AWS-LC / each, median of per-round ratios (range).\n\n\
         | server | resumed (median) | edgetls AWS-LC / server |\n|---|---:|---:|"
    );
    for e in entries {
        if let Some(why) = &e.resumed_failed {
            let _ = writeln!(report, "| {} | – ({why}) | – |", e.server.name);
            continue;
        }
        if e.resumed.is_empty() || entries[0].resumed.is_empty() {
            continue;
        }
        let r: Vec<f64> = entries[0]
            .resumed
            .iter()
            .zip(&e.resumed)
            .map(|(a, b)| a / b)
            .collect();
        let (lo, hi) = r
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        let _ = writeln!(
            report,
            "| {} | {:.0} | **{:.2}×** ({lo:.2}–{hi:.2}) |",
            e.server.name,
            median(e.resumed.clone()),
            median(r)
        );
    }
}

/// Remote keys on each library: `edgetls proxy` with the demo's certificates and a key server
/// at 0 ms (built on the system's OpenSSL), the remote-key name and a local-key name in turn,
/// the two builds alternating within each round (the method of `--suite ab`, which runs them).
fn remote_keys(
    root: &Path,
    rounds: usize,
    builds: [(&Path, &str); 2],
    report: &mut String,
) -> Result<()> {
    use crate::bench_ab::{Build, keyless_rates};
    let builds = builds.map(|(dir, label)| Build {
        label: label.to_string(),
        edgetls: dir.join("edgetls"),
    });
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    crate::bench_proxy::demo_files(&builds[0].edgetls, d, 20)?;
    let origin = origin("127.0.0.1:0".parse()?)?;
    crate::bench_ab::pin_away_from_cpu0();
    let ks_bin = root.join("target/release/edgetls-keyserver");
    let (ks, ks_addr) = crate::fleet::keyserver(&ks_bin, d, "0ms")?;
    let rates = keyless_rates(rounds, &builds, (d, root), &ks_addr, origin)?;
    drop(ks);
    let _ = writeln!(
        report,
        "\nRemote keys: `edgetls proxy`, 1 worker on CPU 0, the demo's certificates, a key server \
         at 0 ms on loopback (built on the system's OpenSSL; mutual TLS); the remote-key name and a \
         local-key name in turn, the two builds alternating within each round; {rounds} rounds; \
         per second of the proxy's CPU (all its threads). Medians; remote / local is the median of \
         per-round ratios (range).\n\n\
         | library | local key, Rust | remote key, Rust | remote key, CPython | remote / local, Rust |\n\
         |---|---:|---:|---:|---:|"
    );
    for (b, [remote, local, py]) in builds.iter().zip(&rates) {
        let r: Vec<f64> = remote.iter().zip(local).map(|(a, b)| a / b).collect();
        let (lo, hi) = r
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        let py = if py.is_empty() {
            "–".to_string()
        } else {
            format!("{:.0}", median(py.clone()))
        };
        let _ = writeln!(
            report,
            "| {} | {:.0} | {:.0} | {py} | **{:.2}×** ({lo:.2}–{hi:.2}) |",
            b.label,
            median(local.clone()),
            median(remote.clone()),
            median(r)
        );
    }
    Ok(())
}

/// Bars: each server's median handshakes per CPU-second, one name and spread, per client.
fn plot(entries: &[Entry], clients: &[&str]) -> Result<String> {
    let shorts: Vec<&str> = entries.iter().map(|e| e.short.as_str()).collect();
    let mut series = Vec::new();
    for (part, name) in [(0, "one name"), (1, "10k spread")] {
        for (c, client) in clients.iter().enumerate() {
            let values = entries
                .iter()
                .map(|e| {
                    let runs = if part == 0 { &e.one } else { &e.all };
                    runs.get(c)
                        .filter(|r| !r.is_empty())
                        .map_or(f64::NAN, |r| median(r.clone()))
                })
                .collect();
            series.push((format!("{name}, {client}"), values));
        }
    }
    crate::plot::bars(
        "libraries_handshakes_per_cpu",
        "Full TLS 1.3 handshakes per second of server CPU, OpenSSL 3.0 and AWS-LC",
        "handshakes per CPU-second",
        &shorts,
        &series,
    )
}
