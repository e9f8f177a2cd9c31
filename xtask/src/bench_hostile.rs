//! `cargo xtask bench --suite hostile`: the hostile-client suite (`crates/proxy/tests/hostile.rs`)
//! built in release mode, its figures carried into the report.

use anyhow::{Result, bail};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

pub(crate) fn run(root: &Path, report: &mut String) -> Result<()> {
    let out = Command::new("cargo")
        .args(["test", "--release", "--quiet", "-p", "edgetls-proxy"])
        .args(["--test", "hostile", "--", "--nocapture"])
        .current_dir(root)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the hostile-client suite failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("descriptors") || l.contains("silent connections:"))
        .collect();
    let _ = writeln!(
        report,
        "## Hostile clients (`cargo xtask bench --suite hostile`)\n\n\
         `cargo test --release -p edgetls-proxy --test hostile -- --nocapture`: `edgetls proxy` (2 workers, \
         `handshake_timeout` and `idle_timeout` 2 s) with local keys (`site000001.demo.test`) and with the key on a key \
         server (`keyless.test`, async mode), each attack in turn; after each, a request is served and the proxy's \
         descriptors and resident memory are compared with the baseline taken after 20 warm-up requests \
         (pass: descriptors back to the baseline, RSS within 2 MiB). The 10,000 silent connections are made at once \
         from one client thread; while they are held an in-process client (handshake, `GET /`, answer) is timed ten \
         times (pass: median under 50 ms); all must be closed by `handshake_timeout` + 2 s after the last connected.\n\n\
         ```\n{}\n```\n",
        lines.join("\n")
    );
    Ok(())
}
