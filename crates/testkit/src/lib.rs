//! The workspace's test kit — the one set of test helpers every crate's tests share: a PKI, a
//! key directory, in-process key servers (which can shut down gracefully, be killed abruptly,
//! and come back on the same port) and a plain blocking client for talking to them frame by
//! frame ([`start`], [`connect`]); `openssl s_client` ([`s_client`]), a test TLS server
//! ([`tls_server`]), free ports ([`net`]), throwaway certificates ([`certs`]), an OCSP responder
//! ([`ocsp`]), SoftHSM2 tokens ([`softhsm`]), the example runner ([`examples`]) and waiting for a
//! condition with a limit ([`wait`]).

#![allow(missing_debug_implementations)] // test support: handles and fixtures, nothing to print

pub mod acme_front;
pub mod certs;
pub mod examples;
pub mod net;
pub mod ocsp;
pub mod pebble;
pub mod s_client;
pub mod softhsm;
pub mod sort_patterns;
pub mod tls_server;
pub mod wait;

use edgetls_keyless_proto::{Decoder, Opcode, Operation, Packet, Ski};
use edgetls_keyserver::{
    Authz, DirStore, KeyServer, KeyStore, Metrics, ServerOptions, tls_acceptor,
};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslStream, SslVerifyMode};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `edgetls-keyserver` flags for its TLS files: `--cert`, `--key`, `--client-ca`.
    pub fn keyserver_tls_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = Vec::new();
        for (flag, file) in [
            ("--cert", "server.pem"),
            ("--key", "server.key"),
            ("--client-ca", "ca.pem"),
        ] {
            args.push(flag.into());
            args.push(self.path(file).into());
        }
        args
    }
}

pub(crate) fn ca(cn: &str) -> (Issuer<'static, KeyPair>, String, String) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let k = KeyPair::generate().unwrap();
    let pem = p.self_signed(&k).unwrap().pem();
    let key_pem = k.serialize_pem();
    (Issuer::new(p, k), pem, key_pem)
}

/// A certificate for `names` (the first is the common name) over the public half of `key`,
/// issued by the test CA: for serving TLS with a key the key server holds.
pub fn site_cert<T: HasPublic>(pki: &Pki, key: &PKeyRef<T>, names: &[&str]) -> X509 {
    let ca = X509::from_pem(&std::fs::read(pki.path("ca.pem")).unwrap()).unwrap();
    let ca_key = PKey::private_key_from_pem(&std::fs::read(pki.path("ca.key")).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, names[0]).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand_serial())
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(ca.subject_name()).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    let mut san = SubjectAlternativeName::new();
    for n in names {
        san.dns(n);
    }
    let ext = san.build(&b.x509v3_context(Some(&ca), None)).unwrap();
    b.append_extension(ext).unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    // Parsed back from DER, as servers load certificates: one built in memory has no cached
    // encoding, and OpenSSL would encode it again for every handshake.
    X509::from_der(&b.build().to_der().unwrap()).unwrap()
}

fn rand_serial() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u32::from_le_bytes(b) >> 1
}

pub(crate) fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    cn: &str,
    names: &[&str],
    dir: &Path,
    file: &str,
) {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let k = KeyPair::generate().unwrap();
    std::fs::write(
        dir.join(format!("{file}.pem")),
        p.signed_by(&k, issuer).unwrap().pem(),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{file}.key")), k.serialize_pem()).unwrap();
}

/// The keys the server holds, kept here too so tests can verify with their public halves.
pub struct Keys {
    pub rsa: PKey<Private>,
    pub p256: PKey<Private>,
    pub p384: PKey<Private>,
    pub ed25519: PKey<Private>,
}

pub fn ski<T: HasPublic>(k: &PKeyRef<T>) -> Ski {
    Ski::from_spki_der(&k.public_key_to_der().unwrap()).unwrap()
}

/// ca.pem (and ca.key, for [`site_cert`]), server.pem/.key, client "edge-1" and "edge-2" (by the CA), "rogue" (another CA), and
/// keys/ with RSA-2048 (PKCS#1 PEM), P-256 (SEC1 PEM), P-384 (PKCS#8 DER), Ed25519 (PKCS#8 PEM),
/// plus an RSA-1024 key and a garbage file that must be skipped.
pub fn setup() -> (Pki, Keys) {
    let pki = Pki {
        dir: tempfile::tempdir().unwrap(),
    };
    let d = pki.dir.path();
    let (issuer, ca_pem, ca_key) = ca("keyless test CA");
    std::fs::write(d.join("ca.pem"), ca_pem).unwrap();
    std::fs::write(d.join("ca.key"), ca_key).unwrap();
    leaf(&issuer, "keyserver", &["localhost"], d, "server");
    leaf(&issuer, "edge-1", &["edge-1"], d, "edge-1");
    leaf(&issuer, "edge-2", &["edge-2"], d, "edge-2");
    let (rogue_ca, _, _) = ca("rogue CA");
    leaf(&rogue_ca, "edge-1", &["edge-1"], d, "rogue");

    let keys_dir = d.join("keys");
    std::fs::create_dir(&keys_dir).unwrap();
    let rsa = Rsa::generate(2048).unwrap();
    std::fs::write(keys_dir.join("rsa.key"), rsa.private_key_to_pem().unwrap()).unwrap();
    let p256 = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
    std::fs::write(
        keys_dir.join("p256.pem"),
        p256.private_key_to_pem().unwrap(),
    )
    .unwrap();
    let p384 = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap(),
    )
    .unwrap();
    std::fs::write(
        keys_dir.join("p384.der"),
        p384.private_key_to_pkcs8().unwrap(),
    )
    .unwrap();
    let ed = PKey::generate_ed25519().unwrap();
    std::fs::write(
        keys_dir.join("ed25519.pem"),
        ed.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    std::fs::write(
        keys_dir.join("weak.key"),
        Rsa::generate(1024).unwrap().private_key_to_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(keys_dir.join("garbage.key"), b"not a key at all").unwrap();
    let keys = Keys {
        rsa: PKey::from_rsa(rsa).unwrap(),
        p256: PKey::from_ec_key(p256).unwrap(),
        p384,
        ed25519: ed,
    };
    (pki, keys)
}

/// A server running on its own runtime thread until the handle is dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Sender<bool>,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Asks the server to shut down gracefully and waits until it has.
    pub fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    /// Stops the server abruptly, as a crash would: every connection is dropped at once.
    pub fn kill(mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts a key server on a free loopback port.
pub fn start(pki: &Pki, authz: Authz, opts: ServerOptions) -> Running {
    start_on(pki, "127.0.0.1:0", authz, opts)
}

/// Starts a key server on `addr` (e.g. the address of one that was killed).
pub fn start_on(pki: &Pki, addr: &str, authz: Authz, opts: ServerOptions) -> Running {
    let (keys, problems) = DirStore::load_dir(&pki.path("keys")).unwrap();
    assert_eq!(keys.len(), 4, "{problems:?}");
    assert_eq!(
        problems.len(),
        2,
        "weak.key and garbage.key are reported: {problems:?}"
    );
    let tls = tls_acceptor(
        &pki.path("server.pem"),
        &pki.path("server.key"),
        &pki.path("ca.pem"),
    )
    .unwrap();
    let server = Arc::new(KeyServer::new(keys.into(), authz, tls, opts).unwrap());
    let metrics = server.metrics();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let bind = addr.to_string();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(&bind).await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            tokio::select! {
                _ = server.serve(listener, stopped) => {}
                _ = killed => {}
            }
        });
        // Dropping every task at once closes every socket without goodbyes.
        rt.shutdown_background();
    });
    let addr = addr_rx.recv().unwrap();
    Running {
        addr,
        metrics,
        stop,
        kill: Some(kill),
        thread: Some(thread),
    }
}

/// A blocking client with the given certificate (file stem), or none.
pub struct Client {
    pub tls: SslStream<TcpStream>,
    decoder: Decoder,
}

pub fn connect(pki: &Pki, addr: SocketAddr, cert: Option<&str>) -> Result<Client, String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_ca_file(pki.path("ca.pem")).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    if let Some(stem) = cert {
        b.set_certificate_file(pki.path(&format!("{stem}.pem")), SslFiletype::PEM)
            .unwrap();
        b.set_private_key_file(pki.path(&format!("{stem}.key")), SslFiletype::PEM)
            .unwrap();
    }
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = b
        .build()
        .connect("localhost", tcp)
        .map_err(|e| e.to_string())?;
    // TLS 1.3 reports a refused client certificate only on the first read: ping to find out.
    tls.flush().map_err(|e| e.to_string())?;
    let mut c = Client {
        tls,
        decoder: Decoder::new(),
    };
    let ping = Packet::new(0, Operation::ping(b"hello".to_vec()))
        .to_bytes()
        .unwrap();
    c.tls.write_all(&ping).map_err(|e| e.to_string())?;
    match c.recv() {
        Some(p) if p.op.opcode == Opcode::PONG => Ok(c),
        other => Err(format!("no pong: {other:?}")),
    }
}

impl Client {
    pub fn send(&mut self, p: &Packet) {
        self.send_raw(&p.to_bytes().unwrap());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).unwrap();
    }

    /// The next packet, or None if the connection ended.
    pub fn recv(&mut self) -> Option<Packet> {
        let mut buf = [0u8; 16384];
        loop {
            if let Some(r) = self.decoder.next() {
                return Some(r.expect("server sent a malformed frame"));
            }
            match self.tls.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.decoder.extend(&buf[..n]),
            }
        }
    }

    /// Sends one request and returns the answer's operation.
    pub fn call(&mut self, id: u32, op: Operation) -> Operation {
        self.send(&Packet::new(id, op));
        let p = self.recv().expect("an answer");
        assert_eq!(p.id, id);
        p.op
    }
}
