//! A TLS server thread with tickets, self-signed certificates, clients.

use edgetls_tickets::{TicketConfig, TicketKeys, install};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslSession, SslVerifyMode, SslVersion};
use openssl::x509::{X509, X509NameBuilder};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A self-signed P-256 certificate for `name`.
pub fn cert(name: &str) -> (X509, PKey<Private>) {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, name).unwrap();
    let n = n.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&n).unwrap();
    b.set_issuer_name(&n).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

/// Handshakes seen by a server.
#[derive(Debug, Default)]
pub struct Seen {
    pub full: AtomicU64,
    pub resumed: AtomicU64,
    pub failed: AtomicU64,
}

pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A server for `cert` with tickets from `keys` (or as `config` says), answering "ok\n".
pub fn server_with(
    cert: &X509,
    key: &PKey<Private>,
    keys: Arc<TicketKeys>,
    config: &TicketConfig,
) -> Server {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate(cert).unwrap();
    b.set_private_key(key).unwrap();
    install(&mut b, keys, config).unwrap();
    serve(b.build())
}

pub fn server(cert: &X509, key: &PKey<Private>, keys: Arc<TicketKeys>) -> Server {
    server_with(cert, key, keys, &TicketConfig::default())
}

/// Serves `acceptor` one connection at a time on a thread.
pub fn serve(acceptor: SslAcceptor) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (s, st) = (Arc::clone(&seen), Arc::clone(&stop));
    let thread = std::thread::spawn(move || {
        for tcp in listener.incoming() {
            if st.load(Relaxed) {
                return;
            }
            let Ok(tcp) = tcp else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            match acceptor.accept(tcp) {
                Ok(mut tls) => {
                    let counter = if tls.ssl().session_reused() {
                        &s.resumed
                    } else {
                        &s.full
                    };
                    counter.fetch_add(1, Relaxed);
                    let _ = tls.write_all(b"ok\n");
                    let _ = tls.shutdown();
                }
                Err(_) => {
                    s.failed.fetch_add(1, Relaxed);
                }
            }
        }
    });
    Server {
        addr,
        seen,
        stop,
        thread: Some(thread),
    }
}

/// `openssl s_client` at `version` ("-tls1_2"/"-tls1_3"), saving the session to `out` and/or
/// offering the one in `input`; returns its output (asserting it exited 0).
pub fn s_client(
    addr: SocketAddr,
    version: &str,
    input: Option<&Path>,
    out: Option<&Path>,
    extra: &[&str],
) -> String {
    let mut c = Command::new("openssl");
    c.args([
        "s_client",
        "-connect",
        &addr.to_string(),
        "-servername",
        "site.test",
    ])
    .args([version, "-ign_eof"])
    .args(extra)
    .stdin(Stdio::null());
    if let Some(p) = input {
        c.arg("-sess_in").arg(p);
    }
    if let Some(p) = out {
        c.arg("-sess_out").arg(p);
    }
    let o = c.output().expect("openssl s_client runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "s_client failed:\n{text}");
    text
}

pub fn reused(s_client_output: &str) -> bool {
    s_client_output.contains("\nReused, ")
}

/// A Rust client at `version` offering `session`; returns (reused, the session it ends with).
pub fn connect(
    addr: SocketAddr,
    version: SslVersion,
    session: Option<&SslSession>,
) -> (bool, SslSession) {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    let connector = b.build();
    let mut ssl = connector
        .configure()
        .unwrap()
        .into_ssl("site.test")
        .unwrap();
    if let Some(s) = session {
        // SAFETY: test clients use compatible contexts (same method and settings).
        unsafe { ssl.set_session(s).unwrap() };
    }
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = openssl::ssl::SslStream::new(ssl, tcp).unwrap();
    tls.connect().unwrap();
    let mut got = String::new();
    tls.read_to_string(&mut got).unwrap();
    assert_eq!(got, "ok\n");
    // A connection freed without sending close_notify marks its session not resumable.
    let _ = tls.shutdown();
    let reused = tls.ssl().session_reused();
    (reused, tls.ssl().session().unwrap().to_owned())
}
