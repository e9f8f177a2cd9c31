//! A TLS server whose private key is remote, on one current-thread runtime thread, in blocking
//! or async mode; and clients for it.

use edgetls_engine::{RemoteKey, accept, enable_async, set_remote_key};
use edgetls_keyless_client::{ClientConfig, KeylessClient, ServerSpec};
use edgetls_testkit::Pki;
use openssl::ssl::{
    Ssl, SslAcceptor, SslConnector, SslContext, SslMethod, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Blocking,
    Async,
}

/// Handshake outcomes seen by the server.
#[derive(Debug, Default)]
pub struct Counts {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

pub struct Tls {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Tls {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The server's context: `cert` with a remote key, ECDHE only, async mode if asked.
pub fn context(cert: &X509, remote: Arc<dyn RemoteKey>, mode: Mode) -> SslContext {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    set_remote_key(&mut b, cert, remote).unwrap();
    if mode == Mode::Async {
        enable_async(&mut b);
    }
    b.build().into_context()
}

/// Serves `ctx` on one thread: each connection gets "ok\n" after its handshake.
/// The name of the thread `serve` runs its server on.
pub const SERVER_THREAD: &str = "test-tls-server";

pub fn serve(ctx: SslContext, mode: Mode) -> Tls {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let counts = Arc::new(Counts::default());
    let theirs = Arc::clone(&counts);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(SERVER_THREAD.into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                // A deep backlog: hundreds of clients connect at once in these tests.
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
                let listener = socket.listen(4096).unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let accept_loop = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let ssl = Ssl::new(&ctx).unwrap();
                        let counts = Arc::clone(&theirs);
                        tokio::task::spawn_local(async move {
                            let done = match mode {
                                Mode::Async => match accept(ssl, tcp).await {
                                    Ok(s) => answer(s).await,
                                    Err(e) => {
                                        if std::env::var_os("EDGETLS_TEST_DEBUG").is_some() {
                                            eprintln!("server: {e}");
                                        }
                                        false
                                    }
                                },
                                Mode::Blocking => match blocking_accept(ssl, tcp).await {
                                    Ok(s) => answer(s).await,
                                    Err(e) => {
                                        if std::env::var_os("EDGETLS_TEST_DEBUG").is_some() {
                                            eprintln!("server: {e}");
                                        }
                                        false
                                    }
                                },
                            };
                            let count = if done { &counts.ok } else { &counts.failed };
                            count.fetch_add(1, Relaxed);
                        });
                    }
                };
                tokio::select! {
                    _ = accept_loop => {}
                    _ = stop_rx => {}
                }
            });
        })
        .unwrap();
    Tls {
        addr: addr_rx.recv().unwrap(),
        counts,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// "ok\n" and a TLS close on an established stream; true (the handshake succeeded).
async fn answer<S: tokio::io::AsyncWrite + Unpin>(mut s: S) -> bool {
    let _ = s.write_all(b"ok\n").await;
    let _ = s.shutdown().await;
    true
}

/// A plain tokio-openssl accept: the sign step blocks this thread until the answer.
async fn blocking_accept(
    ssl: Ssl,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_openssl::SslStream<tokio::net::TcpStream>, String> {
    let mut s = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
    Pin::new(&mut s).accept().await.map_err(|e| e.to_string())?;
    Ok(s)
}

/// One handshake from a Rust OpenSSL client that verifies the chain and the name, at `version`
/// with only `sigalgs` offered; returns what the server sent.
pub fn handshake(
    pki: &Pki,
    addr: SocketAddr,
    name: &str,
    version: SslVersion,
    sigalgs: &str,
) -> Result<String, String> {
    handshake_with(&connector(pki, version, sigalgs), addr, name)
}

/// A client context trusting the test CA, at `version` with only `sigalgs` offered.
pub fn connector(pki: &Pki, version: SslVersion, sigalgs: &str) -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_ca_file(pki.path("ca.pem")).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    edgetls_tls::settings::set_sigalgs(&mut b, sigalgs).unwrap();
    b.build()
}

/// One handshake with `connector`; returns what the server sent.
pub fn handshake_with(
    connector: &SslConnector,
    addr: SocketAddr,
    name: &str,
) -> Result<String, String> {
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = connector.connect(name, tcp).map_err(|e| e.to_string())?;
    let mut got = String::new();
    tls.read_to_string(&mut got).map_err(|e| e.to_string())?;
    let _ = tls.write_all(b"");
    Ok(got)
}

/// The remote key of `server`'s keys, through a keyless client as "edge-1".
pub fn remote(pki: &Pki, server: SocketAddr, timeout: Duration) -> Arc<dyn RemoteKey> {
    Arc::new(edgetls_engine::KeylessKey::new(keyless(
        pki, server, timeout,
    )))
}

/// A keyless client of `server` as "edge-1".
pub fn keyless(pki: &Pki, server: SocketAddr, timeout: Duration) -> Arc<KeylessClient> {
    let mut c = ClientConfig::new(
        vec![ServerSpec::new(server.to_string(), "localhost")],
        pki.path("edge-1.pem"),
        pki.path("edge-1.key"),
        pki.path("ca.pem"),
    );
    c.request_timeout = timeout;
    c.health_interval = Duration::from_millis(100);
    c.health_timeout = Duration::from_secs(1);
    c.backoff_min = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(100);
    let c = KeylessClient::new(c).unwrap();
    assert!(
        c.wait_connected(1, Duration::from_secs(5)),
        "key server not reachable"
    );
    Arc::new(c)
}
