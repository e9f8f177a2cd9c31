//! Pings a keyless key server by hand: one frame written and one read over mutual TLS, to show
//! the wire format without the client crate's connection management.
//!
//! ```text
//! cargo run -p edgetls-keyless-proto --example ping -- \
//!     127.0.0.1:2407 keyserver.example edge.pem edge.key keyserver-ca.pem
//! ```

use edgetls_keyless_proto::{Decoder, Opcode, Operation, Packet};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() -> std::process::ExitCode {
    run().map_or_else(
        |e| {
            eprintln!("ping: {e}");
            std::process::ExitCode::FAILURE
        },
        |()| std::process::ExitCode::SUCCESS,
    )
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, name, cert, key, ca] = args.as_slice() else {
        return Err("usage: ping ADDR SERVER_NAME CLIENT_CERT CLIENT_KEY SERVER_CA".into());
    };
    let mut tls = SslConnector::builder(SslMethod::tls_client())?;
    tls.set_certificate_chain_file(cert)?;
    tls.set_private_key_file(key, SslFiletype::PEM)?;
    tls.set_ca_file(ca)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut conn = tls.build().connect(name, tcp)?;

    let started = Instant::now();
    let ping = Packet::new(1, Operation::ping(b"are you there?".to_vec()));
    let bytes = ping.to_bytes()?;
    println!("sent {} bytes: header {:02x?}", bytes.len(), &bytes[..8]);
    conn.write_all(&bytes)?;

    // Frames arrive in pieces of any size: the decoder keeps what it has until a frame is whole.
    let mut decoder = Decoder::new();
    let mut buf = [0u8; 4096];
    let answer = loop {
        if let Some(frame) = decoder.next() {
            break frame?;
        }
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Err("the key server closed the connection".into());
        }
        decoder.extend(&buf[..n]);
    };
    match answer.op.opcode {
        Opcode::PONG if answer.id == 1 && answer.op.payload == b"are you there?" => {
            println!("pong from {addr} in {:?}", started.elapsed());
            Ok(())
        }
        other => Err(format!("unexpected answer {other} to a ping: {answer:?}").into()),
    }
}
