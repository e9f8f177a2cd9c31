//! A TLS server whose private key is on a key server: every full handshake's signature is made
//! there, and the thread serving connections never waits for it (async mode: the handshake's
//! OpenSSL job pauses until the answer arrives, and other connections go on meanwhile).
//!
//! ```text
//! cargo run -p edgetls-engine --example remote_key -- \
//!     127.0.0.1:2407 keyserver.example edge.pem edge.key keyserver-ca.pem site.pem
//! curl --cacert site-ca.pem https://site.example:PORT/ --resolve site.example:PORT:127.0.0.1
//! ```
//!
//! `site.pem` is the certificate to serve; only the key server has its private key.

use edgetls_engine::{KeylessKey, accept, enable_async, set_remote_key};
use edgetls_keyless_client::{ClientConfig, KeylessClient, ServerSpec};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use openssl::x509::X509;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> std::process::ExitCode {
    run().map_or_else(
        |e| {
            eprintln!("remote_key: {e}");
            std::process::ExitCode::FAILURE
        },
        |()| std::process::ExitCode::SUCCESS,
    )
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, name, cert, key, ca, site] = args.as_slice() else {
        return Err(
            "usage: remote_key ADDR SERVER_NAME CLIENT_CERT CLIENT_KEY SERVER_CA SITE_CERT".into(),
        );
    };
    let servers = vec![ServerSpec::new(addr.as_str(), name.as_str())];
    let client = Arc::new(KeylessClient::new(ClientConfig::new(
        servers, cert, key, ca,
    ))?);
    let site = std::fs::read(site).map_err(|e| format!("{site}: {e}"))?;
    let site = X509::from_pem(&site)?;

    // The certificate, and a key whose signatures the key server makes (named by the SKI of
    // the certificate's public key); static-RSA key exchange is removed, since it would need a
    // decryption instead.
    let mut ctx = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    set_remote_key(&mut ctx, &site, Arc::new(KeylessKey::new(client)))?;
    enable_async(&mut ctx);
    let ctx = ctx.build().into_context();

    // The driver wants a current-thread runtime and a LocalSet (a handshake dropped while paused
    // is finished by a local task).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio::task::LocalSet::new().block_on(&rt, async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (tcp, peer) = listener.accept().await?;
            let ssl = Ssl::new(&ctx)?;
            tokio::task::spawn_local(async move {
                match accept(ssl, tcp).await {
                    Ok(mut tls) => {
                        let what = format!(
                            "{} {}, signed by the key server",
                            tls.ssl().version_str(),
                            tls.ssl().current_cipher().map_or("?", |c| c.name())
                        );
                        println!("{peer}: {what}");
                        let mut request = [0u8; 4096];
                        let _ = tls.read(&mut request).await;
                        let body = format!("{what}\n");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = tls.write_all(answer.as_bytes()).await;
                        let _ = tls.shutdown().await;
                    }
                    Err(e) => println!("{peer}: handshake failed: {e}"),
                }
            });
        }
    })
}
