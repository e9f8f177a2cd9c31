//! A TLS listener that decides each connection by a policy file at its ClientHello: which
//! rule, ALPN, TLS versions and client-certificate demand a server name gets.
//!
//! ```text
//! cargo run -p edgetls-policy --example serve_policy -- policy.toml /etc/ssl/sites
//! openssl s_client -connect ADDR -servername www.example.com -alpn h2,http/1.1 </dev/null
//! ```
//!
//! `policy.toml` holds `[[sni]]` rules in the shape of Traffic Server's `sni.yaml`; the
//! directory holds the certificates (PEM, certificate and key per file). Each connection is
//! answered, and printed, with the decision it got.

use edgetls_certstore::{CertStore, LoadOptions, Source};
use edgetls_policy::{Env, PolicySources, PolicyStore, chosen_rule, install};
use openssl::ssl::{SslAcceptor, SslMethod};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn main() -> std::process::ExitCode {
    run().map_or_else(
        |e| {
            eprintln!("serve_policy: {e}");
            std::process::ExitCode::FAILURE
        },
        |()| std::process::ExitCode::SUCCESS,
    )
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [policy, certs] = args.as_slice() else {
        return Err("usage: serve_policy POLICY_TOML CERT_DIR".into());
    };
    let (certs, report) = CertStore::load(
        vec![Source::Dir(PathBuf::from(certs))],
        LoadOptions::default(),
    )?;
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    // Every rule is checked here; an error names the file and the line.
    let sources = PolicySources {
        file: Some(PathBuf::from(policy)),
        crt_list: None,
        default_rule: false,
    };
    let policy = PolicyStore::load(sources, Env::default())?;
    let mut tls = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    install(&mut tls, policy, Some(Arc::new(certs)))?;
    let tls = tls.build();

    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("listening on {}", listener.local_addr()?);
    for tcp in listener.incoming() {
        let tcp = tcp?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut conn = match tls.accept(tcp) {
            Ok(conn) => conn,
            Err(e) => {
                println!("refused: {e}");
                continue;
            }
        };
        let ssl = conn.ssl();
        let rule = chosen_rule(ssl)
            .and_then(|(policy, i)| policy.rule(i).map(|r| r.describe()))
            .unwrap_or_default();
        let alpn = ssl
            .selected_alpn_protocol()
            .map_or("none".into(), |p| String::from_utf8_lossy(p).into_owned());
        let decision = format!(
            "{} -> {rule}: {}, ALPN {alpn}",
            ssl.servername(openssl::ssl::NameType::HOST_NAME)
                .unwrap_or("(no name)"),
            ssl.version_str(),
        );
        println!("{decision}");
        let mut request = [0u8; 4096];
        let _ = conn.read(&mut request);
        let _ = conn.write_all(format!("{decision}\n").as_bytes());
        let _ = conn.shutdown();
    }
    Ok(())
}
