//! The second, independent client: CPython's `ssl` module (`xtask/pyload.py`), driven like the
//! Rust load generator and measured the same way (the server's CPU from `/proc` across the
//! window the script announces).

use crate::loadgen::{Load, Target, cpu_of};
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// `python3 --version`, or None when there is no python3 to run the client.
pub(crate) fn available() -> Option<String> {
    let out = Command::new("python3").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One round against `t` (its names, concurrency and seconds; TLS 1.3, full handshakes).
/// `names_file` holds `t`'s names, one per line.
pub(crate) fn run(root: &Path, t: &Target, names_file: &Path) -> Result<Load> {
    let pid = t
        .pid
        .context("the CPython client is measured per server CPU-second")?;
    let once = t.names.as_ref().is_some_and(|(_, once)| *once);
    let mut cmd = Command::new("python3");
    cmd.arg(root.join("xtask/pyload.py"))
        .arg("--addr")
        .arg(t.addr.to_string())
        .arg("--names")
        .arg(names_file)
        .arg("--seconds")
        .arg(t.seconds.to_string())
        .arg("--concurrency")
        .arg(t.concurrency.to_string());
    if once {
        cmd.arg("--once");
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().context("python3")?;
    let out = BufReader::new(child.stdout.take().context("stdout")?);
    let mut start = None;
    let mut end = None;
    for line in out.lines() {
        let line = line?;
        if line == "measuring" {
            start = Some((cpu_of(pid), Instant::now()));
        } else if let Some(rest) = line.strip_prefix("done ") {
            let (cpu1, t1) = (cpu_of(pid), Instant::now());
            let mut n = rest.split_whitespace().map(str::parse::<usize>);
            let (Some(Ok(done)), Some(Ok(failed))) = (n.next(), n.next()) else {
                bail!("pyload.py: {line:?}");
            };
            end = Some((cpu1, t1, done, failed));
        }
    }
    let status = child.wait()?;
    let (Some((cpu0, t0)), Some((cpu1, t1, done, failed))) = (start, end) else {
        bail!("pyload.py ended ({status}) without a measured window");
    };
    if done == 0 {
        bail!("pyload.py: no connection completed ({failed} failed)");
    }
    let n = done as f64;
    Ok(Load {
        handshakes: done,
        failed,
        per_cpu_second: n / (cpu1 - cpu0).max(1e-9),
        per_second: n / (t1 - t0).as_secs_f64(),
        p50: f64::NAN,
        p90: f64::NAN,
        p99: f64::NAN,
        resumed: 0.0,
    })
}
