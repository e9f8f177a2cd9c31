//! `cargo xtask naive-load DIR` (hidden): the way a server without a certificate store loads a
//! set — one OpenSSL `SSL_CTX` per certificate file, each with its chain and key read by
//! OpenSSL's own file loaders — for the certificate-loading comparison in the report.

use anyhow::{Context, Result, bail};
use openssl::ssl::{SslContext, SslFiletype, SslMethod};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// A directory of PEM bundles (certificate chain and key in each file).
    dir: PathBuf,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.dir)
        .with_context(|| args.dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    files.sort();
    let mut contexts: Vec<SslContext> = Vec::with_capacity(files.len());
    for f in &files {
        let mut b = SslContext::builder(SslMethod::tls_server())?;
        b.set_certificate_chain_file(f)
            .with_context(|| f.display().to_string())?;
        b.set_private_key_file(f, SslFiletype::PEM)
            .with_context(|| f.display().to_string())?;
        b.check_private_key()
            .with_context(|| f.display().to_string())?;
        contexts.push(b.build());
    }
    if contexts.is_empty() {
        bail!("no .pem files in {}", args.dir.display());
    }
    println!("{} contexts", contexts.len());
    Ok(())
}
