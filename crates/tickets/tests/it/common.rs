//! A TLS server thread with tickets, self-signed certificates, clients.

use edgetls_testkit::s_client::SClient;
use edgetls_tickets::{TicketConfig, TicketKeys, install};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslSession, SslVerifyMode, SslVersion};
use openssl::x509::X509;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use edgetls_testkit::certs::self_signed as cert;
pub use edgetls_testkit::tls_server::{TestServer as Server, serve};

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
    serve(b.build().into_context())
}

pub fn server(cert: &X509, key: &PKey<Private>, keys: Arc<TicketKeys>) -> Server {
    server_with(cert, key, keys, &TicketConfig::default())
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
    let mut c = SClient::connect(addr)
        .name("site.test")
        .args([version, "-ign_eof"])
        .args(extra);
    if let Some(p) = input {
        c = c.args([std::ffi::OsStr::new("-sess_in"), p.as_os_str()]);
    }
    if let Some(p) = out {
        c = c.args([std::ffi::OsStr::new("-sess_out"), p.as_os_str()]);
    }
    c.run_ok()
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
    // The sessions the server sends, as they arrive: with TLS 1.3, AWS-LC's client hands out
    // resumable sessions only this way (its connection's own session is not resumable).
    let received = Arc::new(std::sync::Mutex::new(None::<SslSession>));
    let theirs = Arc::clone(&received);
    if version == SslVersion::TLS1_3 && edgetls_tls::library::NAME == "AWS-LC" {
        b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::CLIENT);
        b.set_new_session_callback(move |_, s| {
            *theirs.lock().unwrap() = Some(s);
        });
    }
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
    let latest = received.lock().unwrap().take();
    (
        reused,
        latest.unwrap_or_else(|| tls.ssl().session().unwrap().to_owned()),
    )
}
