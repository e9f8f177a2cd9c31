//! HAProxy built on the same AWS-LC as `edgetls --features aws-lc`, for `--suite libraries`.
//!
//! * AWS-LC: the sources aws-lc-sys ships (the version rust-openssl links), built with cmake
//!   (Release, no tests, no tools) and installed under `target/haproxy-awslc/aws-lc`.
//! * HAProxy: a source tree named by `EDGETLS_HAPROXY_SRC`, else the upstream tarball of Debian's
//!   source package (`apt-get source --download-only haproxy` from Debian 13 "trixie", whose
//!   HAProxy 3.0 has `USE_OPENSSL_AWSLC`; Debian 12's 2.6 predates it), fetched once with a
//!   private source list, so the machine's apt configuration is not touched.
//! * `make TARGET=linux-glibc USE_OPENSSL_AWSLC=1 SSL_INC=… SSL_LIB=… USE_QUIC=` (static
//!   libssl/libcrypto), the binary at `target/haproxy-awslc/haproxy`.
//!
//! Every step is skipped when its result is there; `EDGETLS_HAPROXY_AWSLC=/path/to/haproxy`
//! uses a binary built elsewhere instead.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The HAProxy-on-AWS-LC binary: `EDGETLS_HAPROXY_AWSLC`, or built under `target/`.
pub(crate) fn binary(root: &Path) -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("EDGETLS_HAPROXY_AWSLC") {
        return Ok(PathBuf::from(bin));
    }
    let dir = root.join("target/haproxy-awslc");
    let bin = dir.join("haproxy");
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir)?;
    let awslc = aws_lc(root, &dir)?;
    let src = haproxy_source(&dir)?;
    eprintln!("building HAProxy ({}) on AWS-LC …", src.display());
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    run(Command::new("make")
        .current_dir(&src)
        .arg(format!("-j{jobs}"))
        .args([
            "TARGET=linux-glibc",
            "USE_OPENSSL_AWSLC=1",
            "USE_QUIC=",
            "USE_LUA=",
            "USE_PCRE2=",
        ])
        .arg(format!("SSL_INC={}", awslc.join("include").display()))
        .arg(format!("SSL_LIB={}", lib_dir(&awslc).display())))
    .context("make haproxy (needs gcc and make)")?;
    std::fs::copy(src.join("haproxy"), &bin)?;
    Ok(bin)
}

/// AWS-LC from aws-lc-sys's bundled sources, installed under `dir/aws-lc`.
fn aws_lc(root: &Path, dir: &Path) -> Result<PathBuf> {
    let prefix = dir.join("aws-lc");
    if lib_dir(&prefix).join("libssl.a").exists() {
        return Ok(prefix);
    }
    let src = aws_lc_sys_dir(root)?.join("aws-lc");
    if !src.join("CMakeLists.txt").exists() {
        bail!("no AWS-LC sources in {}", src.display());
    }
    eprintln!("building AWS-LC from {} …", src.display());
    let build = dir.join("aws-lc-build");
    run(Command::new("cmake")
        .arg("-S")
        .arg(&src)
        .arg("-B")
        .arg(&build)
        .args([
            "-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_TESTING=OFF",
            "-DBUILD_TOOL=OFF",
            "-DDISABLE_GO=ON",
            "-DDISABLE_PERL=ON",
            "-DBUILD_SHARED_LIBS=OFF",
        ])
        .arg(format!("-DCMAKE_INSTALL_PREFIX={}", prefix.display())))
    .context("cmake configure (needs cmake)")?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    run(Command::new("cmake").arg("--build").arg(&build).args([
        "--parallel",
        &jobs.to_string(),
        "--target",
        "install",
    ]))
    .context("building AWS-LC")?;
    Ok(prefix)
}

/// `lib` or `lib64`, whichever the install used.
fn lib_dir(prefix: &Path) -> PathBuf {
    let lib64 = prefix.join("lib64");
    if lib64.join("libssl.a").exists() {
        lib64
    } else {
        prefix.join("lib")
    }
}

/// The directory of the aws-lc-sys crate this workspace resolves (`cargo metadata` with the
/// `aws-lc` feature on, so the crate is in the graph).
fn aws_lc_sys_dir(root: &Path) -> Result<PathBuf> {
    let out = Command::new("cargo")
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--features",
            "edgetls-proxy/aws-lc",
        ])
        .output()?;
    if !out.status.success() {
        bail!("cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "aws-lc-sys")
        .and_then(|p| p["manifest_path"].as_str())
        .and_then(|m| Path::new(m).parent().map(Path::to_path_buf))
        .context("aws-lc-sys is not in the dependency graph")
}

/// The HAProxy source tree: `EDGETLS_HAPROXY_SRC`, or Debian's upstream tarball unpacked.
fn haproxy_source(dir: &Path) -> Result<PathBuf> {
    if let Some(src) = std::env::var_os("EDGETLS_HAPROXY_SRC") {
        return Ok(PathBuf::from(src));
    }
    let unpacked = dir.join("src");
    if let Some(tree) = find_tree(&unpacked)? {
        return Ok(tree);
    }
    let apt = dir.join("apt");
    std::fs::create_dir_all(apt.join("lists/partial"))?;
    std::fs::write(
        apt.join("sources.list"),
        "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
         http://deb.debian.org/debian trixie main\n",
    )?;
    let opts = [
        format!(
            "-oDir::Etc::SourceList={}",
            apt.join("sources.list").display()
        ),
        "-oDir::Etc::SourceParts=/dev/null".to_string(),
        format!("-oDir::State::Lists={}", apt.join("lists").display()),
    ];
    eprintln!("fetching HAProxy's source from Debian 13 …");
    run(Command::new("apt-get").args(&opts).arg("update")).context("apt-get update")?;
    // The Debian part (.dsc, .debian.tar) may be missing on the mirror while the upstream
    // tarball is there; only the tarball is needed.
    let _ = Command::new("apt-get")
        .current_dir(&apt)
        .args(&opts)
        .args(["source", "--download-only", "haproxy"])
        .status();
    let tarball = std::fs::read_dir(&apt)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("haproxy_") && n.contains(".orig.tar"))
        })
        .context("apt-get source haproxy fetched no upstream tarball")?;
    std::fs::create_dir_all(&unpacked)?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked))?;
    find_tree(&unpacked)?.context("no HAProxy tree in the tarball")
}

/// The first directory under `dir` holding a HAProxy Makefile.
fn find_tree(dir: &Path) -> Result<Option<PathBuf>> {
    if !dir.exists() {
        return Ok(None);
    }
    Ok(std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("Makefile").exists() && p.join("src/haproxy.c").exists()))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed: {status}", cmd.get_program());
    }
    Ok(())
}
