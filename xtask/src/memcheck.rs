//! `cargo xtask memcheck`: the large-chain keyless test (crates/proxy/tests/large_chains.rs)
//! with the proxy under valgrind's memcheck. The proxy is built without mimalloc
//! (`--no-default-features`: the C library's malloc, which memcheck replaces and so sees every
//! allocation, OpenSSL's included) in a target directory of its own, `target/memcheck`; the
//! test must then report 0 memory errors. Needs valgrind (Debian's `valgrind`).

use anyhow::{Result, bail};
use std::path::Path;
use std::process::Command;

pub(crate) fn run(root: &Path) -> Result<()> {
    let target = root.join("target/memcheck");
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "build",
            "--locked",
            "-p",
            "edgetls-proxy",
            "--no-default-features",
        ])
        .args(["--bin", "edgetls"])
        .status()?;
    if !status.success() {
        bail!("building the proxy without mimalloc: {status}");
    }
    let bin = target.join("debug/edgetls");
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .env("EDGETLS_MEMCHECK_BIN", &bin)
        .args([
            "test",
            "--locked",
            "-p",
            "edgetls-proxy",
            "--test",
            "large_chains",
        ])
        .args(["--", "--nocapture"])
        .status()?;
    if !status.success() {
        bail!("the large-chain test under memcheck: {status}");
    }
    Ok(())
}
