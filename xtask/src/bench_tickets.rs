//! `cargo xtask bench --suite tickets`: TLS 1.3 handshakes per second of server CPU, full
//! (ECDSA P-256, RSA-2048) against resumed from an edgetls ticket, side by side in one run.
//!
//! The server is one thread handling one connection at a time; it counts its own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) over a fixed number of handshakes, so the clients (two threads
//! on the same cores) do not enter the figure. Each handshake ends with the server writing 3
//! bytes and closing. Resuming clients offer the ticket they got last (TLS 1.3 tickets are
//! single use; the server sends a fresh one with every resumption).

use crate::bench_keyless::median;
use anyhow::{Result, anyhow};
use edgetls_tickets::{
    KeySet, KeySize, RingOptions, StaticSource, TicketConfig, TicketKey, TicketKeys, install,
};
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslSession, SslVerifyMode, SslVersion};
use openssl::x509::{X509, X509NameBuilder};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

const WARMUP: usize = 100;
const MEASURED: usize = 1500;

pub(crate) fn self_signed(key: &PKey<Private>) -> Result<X509> {
    let mut n = X509NameBuilder::new()?;
    n.append_entry_by_nid(Nid::COMMONNAME, "site.test")?;
    let n = n.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    b.set_subject_name(&n)?;
    b.set_issuer_name(&n)?;
    b.set_pubkey(key)?;
    let (from, to) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(2)?);
    b.set_not_before(&from)?;
    b.set_not_after(&to)?;
    b.sign(key, MessageDigest::sha256())?;
    // Parsed back from DER, as a server loads it: a certificate built in memory has no cached
    // encoding and OpenSSL would re-encode it for every handshake.
    Ok(X509::from_der(&b.build().to_der()?)?)
}

fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the calling thread's CPU time into a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Handshakes per second of server CPU, and the share of them that resumed.
pub(crate) fn run_one(acceptor: SslAcceptor, resume: bool) -> Result<(f64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let done = Arc::new(AtomicBool::new(false));
    let server = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || -> (f64, usize) {
            let (mut start, mut resumed, mut handled) = (0.0, 0usize, 0usize);
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                if handled == WARMUP {
                    start = thread_cpu();
                }
                if let Ok(mut tls) = acceptor.accept(tcp) {
                    if handled >= WARMUP && tls.ssl().session_reused() {
                        resumed += 1;
                    }
                    let _ = tls.write_all(b"ok\n");
                    let _ = tls.shutdown();
                }
                handled += 1;
                if handled == WARMUP + MEASURED {
                    break;
                }
            }
            let cpu = thread_cpu() - start;
            done.store(true, Relaxed);
            (cpu, resumed)
        })
    };
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
    let connector = b.build();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (c, done) = (connector.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut session: Option<SslSession> = None;
                while !done.load(Relaxed) {
                    let Ok(mut ssl) = c.configure().and_then(|c| c.into_ssl("site.test")) else {
                        continue;
                    };
                    if let (true, Some(s)) = (resume, &session) {
                        // SAFETY: the session comes from a connection of this same connector.
                        let _ = unsafe { ssl.set_session(s) };
                    }
                    let Ok(tcp) = TcpStream::connect(addr) else {
                        continue;
                    };
                    let Ok(mut tls) = openssl::ssl::SslStream::new(ssl, tcp) else {
                        continue;
                    };
                    if tls.connect().is_err() {
                        continue;
                    }
                    let mut buf = [0u8; 3];
                    let _ = tls.read_exact(&mut buf);
                    let _ = tls.shutdown();
                    session = tls.ssl().session().map(|s| s.to_owned());
                }
            })
        })
        .collect();
    let (cpu, resumed) = server
        .join()
        .map_err(|_| anyhow!("server thread panicked"))?;
    for c in clients {
        let _ = c.join();
    }
    Ok((MEASURED as f64 / cpu, resumed as f64 / MEASURED as f64))
}

fn acceptor(cert: &X509, key: &PKey<Private>, tickets: &Arc<TicketKeys>) -> Result<SslAcceptor> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_certificate(cert)?;
    b.set_private_key(key)?;
    install(&mut b, Arc::clone(tickets), &TicketConfig::default())?;
    Ok(b.build())
}

pub(crate) fn run(report: &mut String) -> Result<()> {
    let group = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?;
    let (ec_cert, rsa_cert) = (self_signed(&ec)?, self_signed(&rsa)?);
    let tickets = Arc::new(TicketKeys::new(
        StaticSource(KeySet::new(vec![TicketKey::generate(KeySize::Aes256)?], 0)?),
        RingOptions::default(),
    )?);
    let (mut full_ec, mut full_rsa, mut resumed, mut share) = (vec![], vec![], vec![], vec![]);
    for _ in 0..3 {
        full_ec.push(run_one(acceptor(&ec_cert, &ec, &tickets)?, false)?.0);
        full_rsa.push(run_one(acceptor(&rsa_cert, &rsa, &tickets)?, false)?.0);
        let (r, s) = run_one(acceptor(&ec_cert, &ec, &tickets)?, true)?;
        resumed.push(r);
        share.push(s);
    }
    let (e, r, t) = (median(full_ec), median(full_rsa), median(resumed));
    let _ = writeln!(
        report,
        "## Tickets: resumed against full handshakes (`cargo xtask bench --suite tickets`)\n\n\
         | TLS 1.3, X25519, 1 server thread, {MEASURED} handshakes per round | per second of server CPU (median of 3) |\n|---|---:|\n\
         | full, ECDSA P-256 | {e:.0} |\n| full, RSA-2048 (PSS) | {r:.0} |\n\
         | resumed from an edgetls ticket ({:.0}% of them resumed) | {t:.0} |\n\n\
         | ratio | measured | target | nginx here (from the issue) |\n|---|---:|---:|---:|\n\
         | resumed / full ECDSA P-256 | **{:.2}×** | ≥ 1.2× | 1.29× |\n\
         | resumed / full RSA-2048 | **{:.2}×** | ≥ 1.6× | 1.63× |",
        100.0 * median(share),
        t / e,
        t / r
    );
    Ok(())
}
