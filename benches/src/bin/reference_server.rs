//! The reference server of `cargo xtask bench --suite libraries`: the least a TLS server on
//! rust-openssl does (SslAcceptor, one ECDSA certificate, TLS 1.3, 2 tickets, one thread
//! handshaking each connection in turn), reading the request and answering `ok\n` over HTTP/1.1
//! as the benchmark's origin does. Built on the system OpenSSL or, with
//! `--features aws-lc`, on AWS-LC: the handshakes per CPU-second a library allows here.
//!
//! With an ORIGIN it relays instead, as a proxy does: for each client it connects to the origin,
//! sends the request and passes the origin's answer back (still one thread, blocking), which
//! separates what the origin hop costs from what a proxy adds on top of it.
//!
//! `reference-server CERT_AND_KEY.pem PORT [ORIGIN]` (prints `listening on ADDR`).

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVersion};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(pem), Some(port)) = (args.next(), args.next()) else {
        return Err("usage: reference-server CERT_AND_KEY.pem PORT [ORIGIN]".into());
    };
    let origin: Option<SocketAddr> = args.next().map(|a| a.parse()).transpose()?;
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_certificate_chain_file(&pem)?;
    b.set_private_key_file(&pem, SslFiletype::PEM)?;
    b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
    let acceptor = b.build();
    let listener = TcpListener::bind(("127.0.0.1", port.parse::<u16>()?))?;
    println!("listening on {}", listener.local_addr()?);
    for tcp in listener.incoming().flatten() {
        if let Ok(mut tls) = acceptor.accept(tcp) {
            let mut request = [0u8; 4096];
            let n = tls.read(&mut request).unwrap_or(0);
            match origin {
                None => {
                    let _ = tls.write_all(ANSWER);
                }
                Some(o) => {
                    let mut answer = Vec::new();
                    if let Ok(mut up) = TcpStream::connect(o) {
                        let _ = up.set_nodelay(true);
                        let _ = up.write_all(&request[..n]);
                        let _ = up.read_to_end(&mut answer);
                    }
                    let _ = tls.write_all(&answer);
                }
            }
            let _ = tls.shutdown();
        }
    }
    Ok(())
}
