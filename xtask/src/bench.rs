//! `cargo xtask bench`: every measurement, side by side in one run, written to
//! `docs/benchmarks.md` with its plots in `docs/plots/` (`--suite NAME` runs one part and writes
//! under `target/`).
//!
//! * Certificates: `edgetls certs check` on generated sets of 1k, 10k and 100k ECDSA P-256 pairs
//!   (100k also through ascending and descending ssl_multicert.config) against one `SSL_CTX` per
//!   file (`cargo xtask naive-load`): median wall and peak resident memory. HAProxy (`haproxy
//!   -c`) and nginx (`nginx -t`) loading the same 10k, when installed. Criterion medians.
//! * Keyless, engine, tickets, policy, proxy: `bench_*.rs`.
//!
//! Data sets live in `bench-data/` (git-ignored) and are generated once.

use crate::gen_certs;
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// What to measure: certs, keyless, hsm, engine, tickets, policy, proxy, proxy-protocol, fleet, names, hostile, restarts, soak (--minutes N), acme, fuzz (the recorded run), ab (against --baseline REV), or all.
    #[arg(long, default_value = "all")]
    suite: String,
    /// Keyless throughput runs: client connections to the key server.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Keyless throughput runs: requests kept outstanding.
    #[arg(long, default_value_t = 512)]
    depth: usize,
    /// Runs per scenario (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Skip the 100k sets (generating them takes ~10 s and ~400 MB of disk); for --suite ab,
    /// skip the 10k-name spread.
    #[arg(long)]
    no_100k: bool,
    /// Skip HAProxy and nginx even when installed.
    #[arg(long)]
    no_compare: bool,
    /// Skip the criterion benches.
    #[arg(long)]
    no_criterion: bool,
    /// Where the data sets are kept.
    #[arg(long, default_value = "bench-data")]
    data: PathBuf,
    /// For --suite ab: the git revision whose build this tree is compared with.
    #[arg(long)]
    baseline: Option<String>,
    /// For --suite soak: how long it runs, minutes.
    #[arg(long, default_value_t = 2.0)]
    minutes: f64,
}

/// One measured process run.
struct Run {
    wall: Duration,
    max_rss_kib: u64,
    ok: bool,
}

/// `cargo build --release` of `packages`, for the suites that run their binaries.
pub(crate) fn release_build(root: &Path, packages: &[&str]) -> Result<()> {
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "--release", "--quiet"])
        .current_dir(root);
    for p in packages {
        cmd.args(["-p", p]);
    }
    if !cmd.status()?.success() {
        bail!("building {} failed", packages.join(", "));
    }
    Ok(())
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let root = workspace_root()?;
    let all = args.suite == "all";
    // The full run writes the report and its plots under docs/; one suite writes under target/.
    let (out, plots) = if all {
        (root.join("docs/benchmarks.md"), root.join("docs/plots"))
    } else {
        (
            root.join(format!("target/benchmarks-{}.md", args.suite)),
            root.join("target/plots"),
        )
    };
    crate::plot::set_dir(plots, "plots/")?;
    let started = Instant::now();
    let mut report = String::new();
    match args.suite.as_str() {
        "all" => {
            certs(&root, args, &mut report)?;
            report.push('\n');
            crate::bench_keyless::run(&root, shape(args), &mut report)?;
            report.push('\n');
            crate::bench_hsm::run(&root, &mut report)?;
            report.push('\n');
            crate::bench_engine::run(&root, &mut report)?;
            report.push('\n');
            crate::bench_tickets::run(&mut report)?;
            report.push('\n');
            crate::bench_policy::run(&mut report)?;
            report.push('\n');
            crate::bench_proxy::run(&root, &mut report)?;
            report.push('\n');
            crate::bench_pp::run(&root, &mut report)?;
            report.push('\n');
            crate::fleet::run(&root, &mut report)?;
            report.push('\n');
            crate::bench_names::run(&root, &mut report)?;
            report.push('\n');
            crate::bench_hostile::run(&root, &mut report)?;
            report.push_str(&fuzz_section(&root));
            report = format!("{}{report}", header(args, started.elapsed()));
        }
        "certs" => certs(&root, args, &mut report)?,
        "keyless" => crate::bench_keyless::run(&root, shape(args), &mut report)?,
        "hsm" => crate::bench_hsm::run(&root, &mut report)?,
        "engine" => crate::bench_engine::run(&root, &mut report)?,
        "openssl" => crate::bench_openssl::run(&root, &mut report)?,
        "tickets" => crate::bench_tickets::run(&mut report)?,
        "policy" => crate::bench_policy::run(&mut report)?,
        "proxy" => crate::bench_proxy::run(&root, &mut report)?,
        "proxy-protocol" => crate::bench_pp::run(&root, &mut report)?,
        "fleet" => crate::fleet::run(&root, &mut report)?,
        "hostile" => crate::bench_hostile::run(&root, &mut report)?,
        "restarts" => crate::bench_restarts::run(&root, &mut report)?,
        "soak" => crate::bench_soak::run(&root, args.minutes, &mut report)?,
        "acme" => crate::bench_acme::run(&root, &root.join(&args.data), "all", &mut report)?,
        part @ ("acme-issue" | "acme-demand" | "acme-admin") => {
            crate::bench_acme::run(&root, &root.join(&args.data), &part[5..], &mut report)?
        }
        "names" => crate::bench_names::run(&root, &mut report)?,
        "groups" => crate::bench_groups::run(&root, args.runs, &mut report)?,
        "libraries" => crate::bench_libraries::run(&root, args.runs, &mut report)?,
        "ab" => {
            let rev = args
                .baseline
                .as_deref()
                .context("--suite ab needs --baseline REV (the build to compare with)")?;
            crate::bench_ab::run(&root, rev, (args.runs, !args.no_100k), &mut report)?
        }
        "fuzz" => report.push_str(&fuzz_section(&root)),
        other => {
            bail!(
                "unknown suite {other:?}: certs, keyless, hsm, engine, openssl, tickets, policy, proxy, proxy-protocol, fleet, names, hostile, restarts, soak, acme, groups, libraries, ab, fuzz or all"
            )
        }
    }
    std::fs::write(&out, &report)?;
    println!("{report}\n(written to {})", out.display());
    Ok(())
}

/// The last recorded fuzzing run (docs/fuzz-runs.md, written by `cargo xtask fuzz --record`):
/// fuzzing for minutes per target is not repeated here, its record is carried into the report.
fn fuzz_section(root: &Path) -> String {
    let runs = std::fs::read_to_string(root.join("docs/fuzz-runs.md")).unwrap_or_else(|_| {
        "No run recorded yet (`cargo xtask fuzz --seconds 600 --jobs 2 --record`).\n".into()
    });
    format!(
        "\n## Fuzzing\n\n\
         Every parser of untrusted or operator input has a cargo-fuzz target (`fuzz/`); the last \
         recorded run, carried from `docs/fuzz-runs.md`:\n\n{runs}"
    )
}

/// The report's opening: how it was made, on what, and how to make it again.
fn header(args: &Args, took: Duration) -> String {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let kernel = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB", kib as f64 / 1048576.0)
        });
    let peers: Vec<String> = [("nginx", "-v"), ("haproxy", "-v")]
        .iter()
        .filter(|(t, _)| which(t))
        .map(|(t, a)| format!("{t} {}", tool_version(t, &[a])))
        .collect();
    let flags = if args.no_100k || args.no_compare || args.no_criterion {
        " (with flags that left parts out: see the command in each section)"
    } else {
        ""
    };
    format!(
        "# Benchmarks\n\n\
         Generated by `cargo xtask bench` on {date} in {:.0} minutes{flags}; run it again to \
         regenerate this file and `docs/plots/`. Each section names the command that measures it \
         alone. Every comparison — edgetls against the naive loader, nginx and HAProxy; async \
         against blocking; local against remote keys; resumed against full — is measured side by \
         side in this one run. These machines are shared and noisy: figures are medians, and \
         comparisons are ratios within the run. What the figures mean, and how they moved while \
         the crates were built: `docs/benchmark-notes.md`.\n\n\
         Machine: {}{mem}, Linux {kernel}, {rustc}{}.\n\n",
        took.as_secs_f64() / 60.0,
        machine(),
        if peers.is_empty() {
            String::new()
        } else {
            format!("; peers: {}", peers.join(", "))
        }
    )
}

/// Certificate loading: sets of 1k, 10k and 100k, the naive loader, the peers, criterion.
fn certs(root: &Path, args: &Args, report: &mut String) -> Result<()> {
    let data = root.join(&args.data);
    status(
        Command::new("cargo")
            .args(["build", "--release", "--quiet", "-p", "edgetls-proxy"])
            .current_dir(root),
    )?;
    let edgetls = root.join("target/release/edgetls");
    let naive_bin = std::env::current_exe()?;
    let _ = writeln!(
        report,
        "## Certificate loading\n\n\
         `cargo xtask bench --suite certs` — `edgetls certs check --json SOURCE` (the store's whole \
         load: read, parse, validate every chain and key, index) against the naive way, one \
         OpenSSL `SSL_CTX` per certificate file loaded with OpenSSL's own file loaders \
         (`cargo xtask naive-load DIR`, the shape of a server without a certificate store). \
         Generated sets of ECDSA P-256 certificates, each with its own key (`cargo xtask gen-certs`). \
         Wall time is the median of {} runs ({} for the naive loader, 1 at 100k); memory is the \
         peak resident set of the process.\n",
        args.runs,
        args.runs.min(3)
    );
    let _ = writeln!(
        report,
        "| set | loader / source | entries | wall (median) | peak RSS | RSS per entry above 1-entry baseline |"
    );
    let _ = writeln!(report, "|---|---|---:|---:|---:|---:|");

    let one = ensure_set(&data, "ec1", 1)?;
    let base = median_run(args.runs, || {
        measure(
            Command::new(&edgetls)
                .args(["certs", "check", "--json"])
                .arg(one.join("certs")),
        )
    })?;
    row(report, "ec1", "edgetls, directory", 1, &base, None);
    let mut sets = vec![("ec1k", 1_000usize), ("ec10k", 10_000)];
    if !args.no_100k {
        sets.push(("ec100k", 100_000));
    }
    // (entries, seconds, MiB) per loader, for the plots.
    let (mut ours, mut naive) = (Vec::new(), Vec::new());
    for (name, n) in &sets {
        let dir = ensure_set(&data, name, *n)?;
        let mut sources = vec![("edgetls, directory", dir.join("certs"))];
        if *n >= 100_000 {
            sources.push((
                "edgetls, ssl_multicert.config ascending",
                dir.join("ssl_multicert.config"),
            ));
            sources.push((
                "edgetls, ssl_multicert.config descending",
                descending(&dir)?,
            ));
        }
        for (i, (label, src)) in sources.into_iter().enumerate() {
            let r = median_run(args.runs, || {
                measure(
                    Command::new(&edgetls)
                        .args(["certs", "check", "--json"])
                        .arg(&src),
                )
            })?;
            if !r.ok {
                bail!("edgetls certs check {} failed", src.display());
            }
            row(report, name, label, *n, &r, Some((&base, *n)));
            if i == 0 {
                ours.push((
                    *n as f64,
                    r.wall.as_secs_f64(),
                    r.max_rss_kib as f64 / 1024.0,
                ));
            }
        }
        let runs = if *n >= 100_000 { 1 } else { args.runs.min(3) };
        let r = median_run(runs, || {
            measure(
                Command::new(&naive_bin)
                    .arg("naive-load")
                    .arg(dir.join("certs")),
            )
        })?;
        if !r.ok {
            bail!("naive-load {} failed", dir.display());
        }
        row(
            report,
            name,
            "naive: one SSL_CTX per file",
            *n,
            &r,
            Some((&base, *n)),
        );
        naive.push((
            *n as f64,
            r.wall.as_secs_f64(),
            r.max_rss_kib as f64 / 1024.0,
        ));
    }
    if let (Some(o), Some(v)) = (ours.last(), naive.last()) {
        let _ = writeln!(
            report,
            "\nAt {:.0} certificates the naive loader takes **{:.1}×** the time and **{:.1}×** the memory of the store.",
            o.0,
            v.1 / o.1,
            v.2 / o.2
        );
    }
    let pick = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| {
        v.iter().map(|p| (p.0, f(p))).collect::<Vec<_>>()
    };
    use crate::plot::{Axes, Series, lines};
    report.push_str(&lines(
        "certs_load_time",
        &Axes {
            title: "Loading N certificates: wall time",
            x: "certificates",
            y: "seconds",
            log_x: true,
            log_y: true,
        },
        &[
            Series::new("edgetls certificate store", pick(&ours, |p| p.1)),
            Series::new("one SSL_CTX per certificate", pick(&naive, |p| p.1)),
        ],
    )?);
    report.push_str(&lines(
        "certs_load_memory",
        &Axes {
            title: "Loading N certificates: peak resident memory",
            x: "certificates",
            y: "MiB",
            log_x: true,
            log_y: true,
        },
        &[
            Series::new("edgetls certificate store", pick(&ours, |p| p.2)),
            Series::new("one SSL_CTX per certificate", pick(&naive, |p| p.2)),
        ],
    )?);

    if !args.no_compare {
        let dir = ensure_set(&data, "ec10k", 10_000)?;
        let _ = writeln!(
            report,
            "\n### Side by side: loading the same 10,000 ECDSA certificates (same run)\n\n\
             `cargo xtask bench --suite certs`: each server checks its configuration with every \
             certificate loaded and exits.\n"
        );
        let _ = writeln!(
            report,
            "| server | command | wall (median) | peak RSS |\n|---|---|---:|---:|"
        );
        let edge = median_run(args.runs, || {
            measure(
                Command::new(&edgetls)
                    .args(["certs", "check", "--json"])
                    .arg(dir.join("certs")),
            )
        })?;
        let _ = writeln!(
            report,
            "| edgetls | `edgetls certs check DIR` | {:.3} s | {} MB |",
            edge.wall.as_secs_f64(),
            edge.max_rss_kib / 1024
        );
        let mut compare = |name: &str, how: &str, r: Run| {
            let _ = writeln!(
                report,
                "| {name} | {how} | {:.3} s ({:.1}x edgetls) | {} MB |",
                r.wall.as_secs_f64(),
                r.wall.as_secs_f64() / edge.wall.as_secs_f64(),
                r.max_rss_kib / 1024
            );
        };
        if which("haproxy") {
            let cfg = haproxy_config(&dir)?;
            let r = median_run(args.runs.min(3), || {
                measure(Command::new("haproxy").args(["-c", "-q", "-f"]).arg(&cfg))
            })?;
            let name = format!("HAProxy {}", tool_version("haproxy", &["-v"]));
            compare(&name, "`haproxy -c -f cfg` (bind … crt DIR)", r);
        }
        if which("nginx") {
            let prefix = nginx_config(&dir)?;
            let r = median_run(args.runs.min(3), || {
                measure(
                    Command::new("nginx")
                        .args(["-t", "-q", "-p"])
                        .arg(&prefix)
                        .args(["-c", "nginx.conf"]),
                )
            })?;
            let name = format!("nginx {}", tool_version("nginx", &["-v"]));
            compare(&name, "`nginx -t` (one server block per name)", r);
        }
    }

    if !args.no_criterion {
        status(
            Command::new("cargo")
                .args(["bench", "--quiet", "-p", "edgetls-benches"])
                .current_dir(root),
        )?;
        let _ = writeln!(
            report,
            "\n### Lookup and sort (criterion medians, `cargo bench -p edgetls-benches`)\n"
        );
        let _ = writeln!(report, "| bench | median | ratio |\n|---|---:|---:|");
        let crit = root.join("target/criterion");
        let med = |group: &str, bench: &str| criterion_median(&crit, group, bench);
        for (bench, label) in [
            ("exact_hit", "lookup, exact hit"),
            ("wildcard_hit", "lookup, wildcard hit"),
            ("miss_to_default", "lookup, miss"),
        ] {
            if let Some(ns) = med("certstore_lookup_100k", bench) {
                let _ = writeln!(report, "| {label} (100k index) | {ns:.1} ns | |");
            }
        }
        if let Some(ns) = med("certstore_load", "dir_10k_ecdsa") {
            let _ = writeln!(
                report,
                "| load 10k ECDSA from a directory (library) | {:.1} ms | |",
                ns / 1e6
            );
        }
        let unstable = med("sort_1m", "sort_unstable_random");
        let random = med("sort_1m", "introsort_random");
        if let (Some(u), Some(r)) = (unstable, random) {
            let _ = writeln!(
                report,
                "| sort_unstable, 1M random u64 | {:.2} ms | 1.00 |",
                u / 1e6
            );
            for input in [
                "random",
                "sorted",
                "reversed",
                "organ_pipe",
                "all_equal",
                "median_of_3_killer",
            ] {
                if let Some(t) = med("sort_1m", &format!("introsort_{input}")) {
                    let _ = writeln!(
                        report,
                        "| introsort, 1M {input} | {:.2} ms | {:.2}x sort_unstable random, {:.2}x introsort random |",
                        t / 1e6,
                        t / u,
                        t / r
                    );
                }
            }
        }
    }
    Ok(())
}

fn row(
    report: &mut String,
    set: &str,
    source: &str,
    n: usize,
    r: &Run,
    base: Option<(&Run, usize)>,
) {
    let per_entry = base.map_or("—".to_string(), |(b, n)| {
        format!(
            "{:.2} KiB",
            (r.max_rss_kib as f64 - b.max_rss_kib as f64) / n as f64
        )
    });
    let _ = writeln!(
        report,
        "| {set} | {source} | {n} | {:.3} s | {:.1} MB | {per_entry} |",
        r.wall.as_secs_f64(),
        r.max_rss_kib as f64 / 1024.0
    );
}

fn ensure_set(data: &Path, name: &str, n: usize) -> Result<PathBuf> {
    let dir = data.join(name);
    if !dir.join("ssl_multicert.config").exists() {
        let args = gen_certs::Args {
            out: dir.clone(),
            count: n,
            rsa: 0,
            rsa_keys: 1,
            wildcards: 0,
            dual: 0,
            chain: false,
            separate_keys: false,
            descending: false,
            ocsp_days: None,
        };
        println!("{}", gen_certs::run(&args)?);
    }
    Ok(dir)
}

/// The set's ssl_multicert.config with its entries in descending order.
fn descending(dir: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(dir.join("ssl_multicert.config"))?;
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    lines.reverse();
    let path = dir.join("descending.config");
    std::fs::write(&path, lines.join("\n") + "\n")?;
    Ok(path)
}

fn haproxy_config(dir: &Path) -> Result<PathBuf> {
    let cfg = dir.join("haproxy.cfg");
    let text = format!(
        "global\n    tune.ssl.default-dh-param 2048\ndefaults\n    mode http\n    timeout client 5s\n    timeout server 5s\n    timeout connect 5s\nfrontend edge\n    bind 127.0.0.1:18443 ssl crt {}\n    default_backend none\nbackend none\n",
        dir.join("certs").display()
    );
    std::fs::write(&cfg, text)?;
    Ok(cfg)
}

fn nginx_config(dir: &Path) -> Result<PathBuf> {
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(prefix.join("logs"))?;
    let mut text =
        String::from("error_log stderr;\npid nginx.pid;\nevents {}\nhttp {\n    access_log off;\n");
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir.join("certs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for cert in names {
        let name = cert
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "    server {{ listen 127.0.0.1:18444 ssl; server_name {name}; ssl_certificate {c}; ssl_certificate_key {c}; }}",
            c = cert.display()
        );
    }
    text.push_str("}\n");
    std::fs::write(prefix.join("nginx.conf"), text)?;
    Ok(prefix)
}

fn median_run(n: usize, mut f: impl FnMut() -> Result<Run>) -> Result<Run> {
    let mut runs = (0..n.max(1)).map(|_| f()).collect::<Result<Vec<_>>>()?;
    runs.sort_by_key(|r| r.wall);
    let mid = runs.len() / 2;
    let mut rss: Vec<u64> = runs.iter().map(|r| r.max_rss_kib).collect();
    rss.sort_unstable();
    let ok = runs.iter().all(|r| r.ok);
    let r = runs.swap_remove(mid);
    Ok(Run {
        max_rss_kib: rss[mid],
        ok,
        ..r
    })
}

/// Runs the command to completion, timing it and reading its peak RSS with wait4.
fn measure(cmd: &mut Command) -> Result<Run> {
    let started = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: zeroed rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; status and usage are valid pointers.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if rc != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok(Run {
        wall,
        max_rss_kib: usage.ru_maxrss as u64,
        ok,
    })
}

fn criterion_median(dir: &Path, group: &str, bench: &str) -> Option<f64> {
    let path = dir.join(group).join(bench).join("new/estimates.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn status(cmd: &mut Command) -> Result<()> {
    let s = cmd.status().with_context(|| format!("{cmd:?}"))?;
    if !s.success() {
        bail!("{cmd:?} failed: {s}");
    }
    Ok(())
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(crate) fn tool_version(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().ok();
    let text = out
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default();
    text.split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) || w.contains('/'))
        .map(|w| w.rsplit('/').next().unwrap_or(w).to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let ossl = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {ossl}")
}

pub(crate) fn workspace_root() -> Result<PathBuf> {
    let out = Command::new("cargo")
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .output()?;
    let manifest = PathBuf::from(String::from_utf8(out.stdout)?.trim());
    Ok(manifest.parent().context("workspace root")?.to_path_buf())
}

fn shape(args: &Args) -> crate::bench_keyless::LoadShape {
    crate::bench_keyless::LoadShape {
        connections: args.connections,
        depth: args.depth,
    }
}
