//! A key server for a directory of private keys, in a few lines: what the
//! `edgetls-keyserver` binary does without its flags, metrics and PKCS#11 tokens.
//!
//! ```text
//! cargo run -p edgetls-keyserver --example serve_dir -- \
//!     /etc/keyless/keys server.pem server.key edge-ca.pem 127.0.0.1:2407
//! ```
//!
//! Clients must present a certificate issued by `edge-ca.pem`; any key in the directory may be
//! used by any of them (see `Authz` to restrict that). Stops on end of input (Ctrl-D).

use edgetls_keyserver::{Authz, DirStore, KeyServer, KeyStore, ServerOptions, tls_acceptor};
use std::path::Path;
use std::sync::Arc;

fn main() -> std::process::ExitCode {
    run().map_or_else(
        |e| {
            eprintln!("serve_dir: {e}");
            std::process::ExitCode::FAILURE
        },
        |()| std::process::ExitCode::SUCCESS,
    )
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, cert, key, client_ca, listen) = match args.as_slice() {
        [d, c, k, ca] => (d, c, k, ca, "127.0.0.1:0"),
        [d, c, k, ca, l] => (d, c, k, ca, l.as_str()),
        _ => return Err("usage: serve_dir KEY_DIR CERT KEY CLIENT_CA [ADDR]".into()),
    };
    // Every file that is a usable key is served; the others are reported, never fatal.
    let (keys, skipped) = DirStore::load_dir(Path::new(dir))?;
    for problem in &skipped {
        eprintln!("skipped: {problem}");
    }
    let tls = tls_acceptor(Path::new(cert), Path::new(key), Path::new(client_ca))?;
    let count = keys.len();
    let server = Arc::new(KeyServer::new(
        keys.into(),
        Authz::open(),
        tls,
        ServerOptions::default(),
    )?);
    let listener = std::net::TcpListener::bind(listen)?;
    println!("listening on {}", listener.local_addr()?);
    println!("serving {count} keys, skipped {}", skipped.len());

    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::thread::spawn(move || {
        // Ends when standard input does; then the server drains its connections and returns.
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = stop.send(true);
    });
    server.serve_per_core(listener, 2, stopped)?;
    println!("stopped");
    Ok(())
}
