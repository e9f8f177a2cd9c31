//! Two TLS servers that share one ticket key file, as the servers of a fleet do: a session
//! ticket issued by one resumes on the other.
//!
//! ```text
//! cargo run -p edgetls-tickets --example shared_ring -- /tmp/tickets.key
//! # prints "listening on A" and "second server on B"
//! openssl s_client -connect A -ign_eof -sess_out /tmp/s </dev/null
//! openssl s_client -connect B -ign_eof -sess_in /tmp/s </dev/null | grep Reused
//! ```
//!
//! (`-ign_eof` waits for the server to close: a TLS 1.3 ticket arrives after the handshake, and
//! a client that leaves at once may leave without it.)
//!
//! The file is in HAProxy's format (base64 lines, the penultimate key encrypts); a missing file
//! is created with three new keys. Edit it (rotate a key in) and both servers follow within the
//! ring's refresh interval, still accepting tickets of the keys that left for the grace window.

use edgetls_tickets::format::{self, Format};
use edgetls_tickets::{
    FileSource, KeySet, KeySize, RingOptions, TicketConfig, TicketKey, TicketKeys, install,
};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::{X509, X509NameBuilder};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

fn main() -> std::process::ExitCode {
    run().map_or_else(
        |e| {
            eprintln!("shared_ring: {e}");
            std::process::ExitCode::FAILURE
        },
        |()| std::process::ExitCode::SUCCESS,
    )
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: shared_ring KEY_FILE")?;
    let path = Path::new(&path);
    if !path.exists() {
        let keys = (0..3)
            .map(|_| TicketKey::generate(KeySize::Aes256))
            .collect::<Result<Vec<_>, _>>()?;
        let set = KeySet::new(keys, Format::Haproxy.encrypting_index(3))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600) // a key file holds secrets: its owner's only
            .open(path)?;
        file.write_all(&format::write(&set, Format::Haproxy)?)?;
    }
    let (cert, key) = self_signed("tickets.example")?;
    let mut servers = Vec::new();
    for name in ["A", "B"] {
        // Each server reads the file itself, as separate machines would.
        let ring = TicketKeys::new(
            FileSource::new(path, Format::Haproxy),
            RingOptions::default(),
        )?;
        let mut tls = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        tls.set_certificate(&cert)?;
        tls.set_private_key(&key)?;
        install(&mut tls, Arc::new(ring), &TicketConfig::default())?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        servers.push((name, listener, tls.build()));
    }
    println!("listening on {}", servers[0].1.local_addr()?);
    println!("second server on {}", servers[1].1.local_addr()?);
    let threads: Vec<_> = servers
        .into_iter()
        .map(|(name, listener, tls)| {
            std::thread::spawn(move || {
                for tcp in listener.incoming().flatten() {
                    match tls.accept(tcp) {
                        Ok(mut conn) => {
                            let how = if conn.ssl().session_reused() {
                                "resumed"
                            } else {
                                "full handshake"
                            };
                            println!("{name}: {how}");
                            let _ = conn.write_all(format!("{name}: {how}\n").as_bytes());
                            let _ = conn.shutdown();
                        }
                        Err(e) => println!("{name}: handshake failed: {e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// A throwaway P-256 certificate: this example is about tickets, not certificates.
fn self_signed(name: &str) -> Result<(X509, PKey<Private>), openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut subject = X509NameBuilder::new()?;
    subject.append_entry_by_nid(Nid::COMMONNAME, name)?;
    let subject = subject.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(&subject)?;
    b.set_pubkey(&key)?;
    b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    b.set_not_after(&*Asn1Time::days_from_now(30)?)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((b.build(), key))
}
