//! A PKI, a certificate directory, a policy file and a server that applies them.

use edgetls_certstore::{CertStore, LoadOptions, Source};
use edgetls_policy::{Env, PolicySources, PolicyStore, install};
use edgetls_testkit::s_client::SClient;
use edgetls_testkit::tls_server::{TestServer, serve_with};
use openssl::ssl::{SslAcceptor, SslMethod, SslStream};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

pub const NAMES: &[&str] = &[
    "h2.test",
    "h1.test",
    "strict.test",
    "fallback.test",
    "npn.test",
    "mtls.test",
    "v13.test",
    "notickets.test",
    "legacy.test",
    "a.test",
];

pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
}

fn ca(cn: &str) -> (Issuer<'static, KeyPair>, String) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let k = KeyPair::generate().unwrap();
    let pem = p.self_signed(&k).unwrap().pem();
    (Issuer::new(p, k), pem)
}

/// certs/site.pem (all NAMES, by the server CA), server-ca.pem, client-ca.pem, client.pem/.key
/// (by the client CA), rogue.pem/.key (by another CA).
pub fn pki() -> Pki {
    let pki = Pki {
        dir: tempfile::tempdir().unwrap(),
    };
    let (server_ca, server_ca_pem) = ca("policy test server CA");
    std::fs::write(pki.path("server-ca.pem"), server_ca_pem).unwrap();
    std::fs::create_dir(pki.path("certs")).unwrap();
    let p =
        CertificateParams::new(NAMES.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let k = KeyPair::generate().unwrap();
    let bundle = format!(
        "{}{}",
        p.signed_by(&k, &server_ca).unwrap().pem(),
        k.serialize_pem()
    );
    std::fs::write(pki.path("certs/site.pem"), bundle).unwrap();
    let (client_ca, client_ca_pem) = ca("policy test client CA");
    std::fs::write(pki.path("client-ca.pem"), client_ca_pem).unwrap();
    for (file, issuer) in [("client", &client_ca), ("rogue", &ca("rogue CA").0)] {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, file);
        let k = KeyPair::generate().unwrap();
        std::fs::write(
            pki.path(&format!("{file}.pem")),
            p.signed_by(&k, issuer).unwrap().pem(),
        )
        .unwrap();
        std::fs::write(pki.path(&format!("{file}.key")), k.serialize_pem()).unwrap();
    }
    pki
}

pub struct Server {
    pub addr: SocketAddr,
    pub policy: Arc<PolicyStore>,
    /// The server itself: what it saw, including ClientHellos that paused for their
    /// certificates to be built (`server.seen.pauses`).
    pub server: TestServer,
}

/// Serves the certificates under `pki`/certs with the policy file `policy`, on one thread.
/// After the handshake it answers one HTTP/1.1 request (or closes on h2).
pub fn serve(pki: &Pki, policy: &Path, env: Env) -> Server {
    let (certs, report) =
        CertStore::load(vec![Source::Dir(pki.path("certs"))], LoadOptions::default()).unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let sources = PolicySources {
        file: Some(policy.to_path_buf()),
        crt_list: None,
        default_rule: false,
    };
    serve_store(Arc::new(certs), sources, env)
}

/// Serves the certificates of a crt-list with the policy its options make (and defaults for
/// names without options), as `edgetls proxy` does for `[certificates] crt_list`.
pub fn serve_crt_list(list: &Path) -> (Server, edgetls_certstore::Report) {
    let (certs, report) = CertStore::load(
        vec![Source::CrtList(list.to_path_buf())],
        LoadOptions::default(),
    )
    .unwrap();
    let certs = Arc::new(certs);
    let sources = PolicySources {
        file: None,
        crt_list: Some(Arc::clone(&certs)),
        default_rule: true,
    };
    (serve_store(certs, sources, Env::default()), report)
}

fn serve_store(certs: Arc<CertStore>, sources: PolicySources, env: Env) -> Server {
    let store = PolicyStore::load(sources, env).unwrap();
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    install(&mut b, Arc::clone(&store), Some(certs)).unwrap();
    // Driven as the proxy drives it (the test kit's server): a certificate not yet built
    // pauses the ClientHello and is built outside the callback.
    let server = serve_with(b.build().into_context(), "127.0.0.1:0", Box::new(answer));
    Server {
        addr: server.addr,
        policy: store,
        server,
    }
}

/// After the handshake: one HTTP/1.1 answer (nothing on h2).
fn answer(tls: &mut SslStream<TcpStream>) {
    if tls.ssl().selected_alpn_protocol() == Some(b"h2") {
        return;
    }
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    if !req.is_empty() {
        let _ =
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n");
    }
}

/// `openssl s_client` for `name` ("": no server name); returns (exited 0, all its output).
pub fn s_client(srv: &Server, pki: &Pki, name: &str, args: &[&str]) -> (bool, String) {
    let out = SClient::connect(srv.addr)
        .name(name)
        .ca(pki.path("server-ca.pem"))
        .args(args)
        .run();
    (out.ok, out.text())
}

/// `curl -v` to https://name/ on the server; returns (exit code, stdout, stderr).
pub fn curl(srv: &Server, pki: &Pki, name: &str, args: &[&str]) -> (i32, String, String) {
    let o = Command::new("curl")
        .args(["-sv", "--max-time", "5", "--cacert"])
        .arg(pki.path("server-ca.pem"))
        .args([
            "--resolve",
            &format!("{name}:{}:127.0.0.1", srv.addr.port()),
        ])
        .args(args)
        .arg(format!("https://{name}:{}/", srv.addr.port()))
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Accepts on a blocking stream, running the work a paused ClientHello leaves (as the proxy's
/// driver does). Returns whether the handshake completed; counts the pauses in `pauses`.
/// A hashed CA directory `dir` (as `openssl rehash` makes: `<subject hash>.0`) holding a CA of
/// its own, and dir-client.pem/.key issued by it.
pub fn hashed_ca_dir(pki: &Pki, dir: &str) {
    let (issuer, pem) = ca("policy test dir CA");
    let hash = openssl::x509::X509::from_pem(pem.as_bytes())
        .unwrap()
        .subject_name_hash();
    std::fs::create_dir_all(pki.path(dir)).unwrap();
    std::fs::write(pki.path(&format!("{dir}/{hash:08x}.0")), pem).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "dir-client");
    let k = KeyPair::generate().unwrap();
    std::fs::write(
        pki.path("dir-client.pem"),
        p.signed_by(&k, &issuer).unwrap().pem(),
    )
    .unwrap();
    std::fs::write(pki.path("dir-client.key"), k.serialize_pem()).unwrap();
}
