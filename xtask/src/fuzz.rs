//! `cargo xtask fuzz --seconds N`: builds every cargo-fuzz target of `fuzz/` and runs each for
//! N seconds on its corpus (the committed `seed-*` files plus what earlier runs found), `--jobs`
//! at a time. Only the stable toolchain exists on these machines: cargo-fuzz needs nightly
//! flags, so the runs set `RUSTC_BOOTSTRAP=1`. A crash stops with the target, the input file
//! libFuzzer saved under `fuzz/artifacts/TARGET/`, and a non-zero exit.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Targets to run (default: every target in fuzz/Cargo.toml).
    #[arg(long = "target")]
    targets: Vec<String>,
    /// Targets run at once (each uses one core).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Write the outcome to docs/fuzz-runs.md, which `cargo xtask bench` puts in the report.
    #[arg(long)]
    record: bool,
}

/// The `[[bin]]` names of fuzz/Cargo.toml.
fn all_targets(fuzz: &Path) -> anyhow::Result<Vec<String>> {
    let manifest = fuzz.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "edgetls-fuzz")
        .map(str::to_string)
        .collect())
}

fn cargo_fuzz(fuzz: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(fuzz)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz"]);
    c
}

/// What one target's run ended with.
struct Outcome {
    target: String,
    runs: Option<u64>,
    seconds: f64,
    crash: Option<String>,
}

fn run_one(fuzz: &Path, target: &str, seconds: u64) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let out = cargo_fuzz(fuzz)
        .args(["run", "--release", target, "--"])
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running cargo fuzz run {target}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    // "Done 1234567 runs in 60 second(s)", and "stat::number_of_executed_units: N".
    let runs = log.lines().find_map(|l| {
        l.strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
    });
    let crash = if out.status.success() {
        None
    } else {
        let artifact = log
            .lines()
            .find_map(|l| l.split("Test unit written to ").nth(1))
            .map_or_else(|| "no artifact written".to_string(), str::to_string);
        let reason = log
            .lines()
            .find(|l| {
                l.contains("panicked")
                    || l.contains("ERROR: libFuzzer")
                    || l.contains("ERROR: AddressSanitizer")
            })
            .unwrap_or("see the log");
        Some(format!("{reason}; input: {artifact}"))
    };
    Ok(Outcome {
        target: target.to_string(),
        runs,
        seconds: started.elapsed().as_secs_f64(),
        crash,
    })
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let targets = if args.targets.is_empty() {
        all_targets(&fuzz)?
    } else {
        args.targets.clone()
    };
    println!(
        "building {} fuzz targets (RUSTC_BOOTSTRAP=1 cargo fuzz build --release)",
        targets.len()
    );
    let status = cargo_fuzz(&fuzz).args(["build", "--release"]).status()?;
    if !status.success() {
        bail!(
            "cargo fuzz build failed ({status}); is cargo-fuzz installed? (cargo install cargo-fuzz)"
        );
    }
    let mut outcomes = Vec::new();
    for chunk in targets.chunks(args.jobs.max(1)) {
        let results: Vec<anyhow::Result<Outcome>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|t| s.spawn(|| run_one(&fuzz, t, args.seconds)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| bail!("fuzz runner thread panicked"))
                })
                .collect()
        });
        for r in results {
            let o = r?;
            println!(
                "{:<16} {:>12} executions in {:>6.0} s  {}",
                o.target,
                o.runs.map_or_else(|| "?".into(), |r| r.to_string()),
                o.seconds,
                o.crash.as_deref().unwrap_or("no crash")
            );
            outcomes.push(o);
        }
    }
    if args.record {
        record(args, &outcomes)?;
    }
    let crashed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.crash.is_some())
        .map(|o| o.target.as_str())
        .collect();
    if !crashed.is_empty() {
        bail!(
            "crashes in {}: reproduce with `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/FILE` in fuzz/, fix, and commit the input as fuzz/corpus/TARGET/seed-regression-NAME",
            crashed.join(", ")
        );
    }
    Ok(())
}

/// docs/fuzz-runs.md: the command, when, and per target its executions and outcome.
fn record(args: &Args, outcomes: &[Outcome]) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut md = format!(
        "`cargo xtask fuzz --seconds {} --jobs {}`, {date}:\n\n\
         | target | executions | seconds | outcome |\n|---|---:|---:|---|\n",
        args.seconds, args.jobs
    );
    for o in outcomes {
        let _ = writeln!(
            md,
            "| `{}` | {} | {:.0} | {} |",
            o.target,
            o.runs.map_or_else(|| "?".into(), |r| r.to_string()),
            o.seconds,
            o.crash.as_deref().unwrap_or("no crash")
        );
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/fuzz-runs.md");
    std::fs::write(&path, md).with_context(|| path.display().to_string())?;
    Ok(())
}
