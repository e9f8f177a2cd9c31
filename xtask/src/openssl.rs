//! `cargo xtask openssl 3.5|4.0`: builds that OpenSSL (static, from the `openssl-src` crate's
//! sources) under `target/openssl/VERSION` once, and prints the directory to give the build as
//! `OPENSSL_DIR` (with `OPENSSL_STATIC=1`) on its last line of output (the `openssl-src`
//! crate prints its build-script lines on stdout before it). The test matrix in `.ci/run` uses it: the default
//! build stays on the system's OpenSSL.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// 3.5 (the LTS) or 4.0.
    version: String,
}

pub(crate) fn run(args: &Args, root: &Path) -> Result<()> {
    println!("{}", ensure(&args.version, root)?.display());
    Ok(())
}

/// Builds OpenSSL `version` (3.5 or 4.0) under `target/openssl/VERSION` unless it is there; its
/// install directory (an `OPENSSL_DIR`).
pub(crate) fn ensure(version: &str, root: &Path) -> Result<PathBuf> {
    let args = Args {
        version: version.to_string(),
    };
    let dir = root.join("target/openssl").join(&args.version);
    let done = dir.join("install/lib/libssl.a");
    if !done.exists() {
        let host = host()?;
        // Every make step on both cores (openssl-src passes our environment on).
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: single-threaded at this point (no thread has been spawned by this command).
        unsafe { std::env::set_var("MAKEFLAGS", format!("-j{jobs}")) };
        eprintln!("building OpenSSL {} into {} …", args.version, dir.display());
        let built = match args.version.as_str() {
            "3.5" => openssl_src_35::Build::new()
                .out_dir(&dir)
                .target(&host)
                .host(&host)
                .try_build()
                .map(|a| a.lib_dir().to_path_buf()),
            "4.0" => openssl_src_40::Build::new()
                .out_dir(&dir)
                .target(&host)
                .host(&host)
                .try_build()
                .map(|a| a.lib_dir().to_path_buf()),
            other => bail!("OpenSSL {other:?}: 3.5 or 4.0"),
        };
        let lib: PathBuf = built.map_err(|e| anyhow::anyhow!("building OpenSSL: {e}"))?;
        if !lib.join("libssl.a").exists() {
            bail!("no libssl.a in {}", lib.display());
        }
    }
    Ok(dir.join("install"))
}

/// `cargo build --release -p PACKAGE` against OpenSSL `version` (built by [`ensure`]), linked
/// statically, in `target/ossl-VERSION`; that target directory's `release/`.
pub(crate) fn release_build_against(version: &str, package: &str, root: &Path) -> Result<PathBuf> {
    let dir = ensure(version, root)?;
    let target = root.join(format!("target/ossl-{version}"));
    eprintln!("building {package} against OpenSSL {version} …");
    let ok = std::process::Command::new("cargo")
        .args(["build", "--release", "--quiet", "-p", package])
        .env("OPENSSL_DIR", &dir)
        .env("OPENSSL_STATIC", "1")
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root)
        .status()?;
    if !ok.success() {
        bail!("building {package} against OpenSSL {version} failed");
    }
    Ok(target.join("release"))
}

/// `cargo build --release` of the proxy and the reference server on AWS-LC (rust-openssl's
/// `aws-lc` feature; aws-lc-sys builds AWS-LC with cmake), in `target/aws-lc-release`; that
/// target directory's `release/`.
pub(crate) fn release_build_awslc(root: &Path) -> Result<PathBuf> {
    release_build_awslc_of(
        root,
        &["edgetls-proxy", "edgetls-benches"],
        "edgetls-proxy/aws-lc,edgetls-benches/aws-lc",
    )
}

/// As [`release_build_awslc`], for `packages` with `features` (which put them on AWS-LC).
pub(crate) fn release_build_awslc_of(
    root: &Path,
    packages: &[&str],
    features: &str,
) -> Result<PathBuf> {
    let target = root.join("target/aws-lc-release");
    eprintln!("building {} on AWS-LC …", packages.join(", "));
    let mut args = vec!["build", "--release", "--quiet", "--features", features];
    for p in packages {
        args.extend(["-p", p]);
    }
    let ok = std::process::Command::new("cargo")
        .args(&args)
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root)
        .status()?;
    if !ok.success() {
        bail!("building on AWS-LC failed (it needs cmake and libclang-dev)");
    }
    Ok(target.join("release"))
}

/// This machine's target triple, from rustc.
fn host() -> Result<String> {
    let out = std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| anyhow::anyhow!("rustc -vV names no host"))
}
