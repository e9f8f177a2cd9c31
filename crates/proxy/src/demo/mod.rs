//! `edgetls demo`: the whole stack on one machine from one command. It generates a throwaway
//! PKI (many names, a wildcard, dual RSA/ECDSA, a default, a name whose key is only on a key
//! server, mutual-TLS pairs, ticket keys, a per-name policy), starts an in-process key server
//! and two small origins, then runs `edgetls proxy` on a generated configuration and prints
//! the `curl` and `openssl s_client` commands to try.

mod pki;
mod services;

use crate::error::CliError;
use crate::proxy::{ProxyArgs, start};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Address to serve TLS on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// Address of the Prometheus metrics endpoint (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9443")]
    metrics: String,
    /// How many ECDSA names to generate (siteNNNNNN.demo.test).
    #[arg(long, default_value_t = 1000)]
    names: usize,
    /// Where to write the PKI and configuration (default: a temporary directory removed on exit).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Write the PKI and exit without serving.
    #[arg(long)]
    generate_only: bool,
    /// Stop (draining, as on SIGTERM) after this many seconds (for scripts and tests).
    #[arg(long, hide = true)]
    exit_after: Option<u64>,
}

pub(crate) fn run(args: &DemoArgs) -> ExitCode {
    match demo(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edgetls demo: {e}");
            ExitCode::from(2)
        }
    }
}

fn demo(args: &DemoArgs) -> Result<ExitCode, CliError> {
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(CliError::io(d))?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir().map_err(CliError::io(std::env::temp_dir()))?;
            temp.path().to_path_buf()
        }
    };
    let started = std::time::Instant::now();
    pki::generate(&dir, args.names)?;
    println!(
        "generated {} names and a keyless one in {} ({:.1} s)",
        args.names + 4,
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    if args.generate_only {
        return Ok(ExitCode::SUCCESS);
    }
    let keyserver = services::key_server(&dir)?;
    let origin = services::origin(Arc::clone(&keyserver.metrics))?;
    let origin_h2 = services::origin_h2()?;
    println!(
        "key server (mutual TLS) on {}, origins on {origin} and {origin_h2} (h2 route)",
        keyserver.addr
    );
    let config = pki::proxy_config(
        &dir,
        &args.listen,
        &args.metrics,
        keyserver.addr,
        origin,
        origin_h2,
    )?;
    if let Some(secs) = args.exit_after {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            // SAFETY: sends SIGTERM to this process; the proxy's handler drains and returns.
            unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        });
    }
    let code = start(&ProxyArgs::new(config), |addrs, metrics| {
        if let Some(addr) = addrs.first() {
            print_help(&dir, *addr, metrics);
        }
    })?;
    drop(keyserver);
    Ok(code)
}

/// The commands to try, one per line as `  COMMAND   # what it shows`.
fn print_help(dir: &Path, addr: SocketAddr, metrics: Option<SocketAddr>) {
    let port = addr.port();
    let ip = addr.ip();
    let ca = dir.join("ca.pem");
    let ca = ca.display();
    let d = dir.display();
    let curl = |name: &str, extra: &str| {
        format!("curl -s{extra} --cacert {ca} --resolve {name}:{port}:{ip} https://{name}:{port}/")
    };
    let s_client = |name: &str, extra: &str| {
        format!("openssl s_client -connect {ip}:{port} -servername {name} -CAfile {ca}{extra}")
    };
    let lines = [
        (curl("site000001.demo.test", " --http1.1"), "exact name"),
        (curl("api.wild.demo.test", ""), "one-label wildcard"),
        (
            format!(
                "{} </dev/null 2>/dev/null | grep subject=",
                s_client("unknown.demo.test", "")
            ),
            "unknown name: the default certificate",
        ),
        (
            format!(
                "{} </dev/null 2>/dev/null | grep 'public key'",
                s_client("dual.demo.test", " -sigalgs rsa_pss_rsae_sha256")
            ),
            "dual name: the RSA chain",
        ),
        (
            format!(
                "{} </dev/null 2>/dev/null | grep 'public key'",
                s_client("dual.demo.test", " -sigalgs ecdsa_secp256r1_sha256")
            ),
            "dual name: the ECDSA chain",
        ),
        (
            format!(
                "printf 'hello\\n' | {} -ign_eof 2>/dev/null | grep -E '^ALPN|origin'",
                s_client("site000001.demo.test", " -alpn h2,http/1.1")
            ),
            "ALPN h2, routed to the h2 origin",
        ),
        (
            format!(
                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | {} -tls1_3 -sess_out {d}/session.pem -ign_eof >/dev/null 2>&1; {} -tls1_3 -sess_in {d}/session.pem </dev/null 2>/dev/null | grep -E '^(New|Reused)'",
                s_client("site000003.demo.test", ""),
                s_client("site000003.demo.test", "")
            ),
            "ticket resumption",
        ),
        (
            curl(pki::KEYLESS_NAME, ""),
            "keyless: signed by the key server",
        ),
        (
            curl("site000002.demo.test", "S"),
            "client certificate required: refused",
        ),
        (
            curl(
                "site000002.demo.test",
                &format!(" --cert {d}/client.pem --key {d}/client.key"),
            ),
            "client certificate required: served",
        ),
    ];
    println!("\ntry:");
    for (command, what) in lines {
        println!("  {command}   # {what}");
    }
    if let Some(m) = metrics {
        println!("  curl -s http://{m}/metrics   # metrics");
    }
    println!(
        "\nthe configuration is {d}/proxy.toml: edit it, {d}/policy.toml or a file under {d}/certs\n\
         and the proxy reloads by itself (or on SIGHUP); Ctrl-C drains and stops"
    );
}
