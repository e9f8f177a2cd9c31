//! The connection a signature is for travels with it: the server name, the client's address
//! and the address it connected to go out as the keyless SNI, client IP and server IP items,
//! and a key server that authorises by server name (`sni:` in its authz file) acts on them.

use crate::common::{Mode, context, handshake, remote, serve};
use edgetls_engine::{ConnectionInfo, Done, LocalSigner, RemoteKey, SignRequest};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, site_cert, start};
use openssl::ssl::SslVersion;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Signs in-process and keeps what each request said of its connection.
#[derive(Debug)]
struct Recording {
    signer: LocalSigner,
    seen: Mutex<Vec<ConnectionInfo>>,
}

impl RemoteKey for Recording {
    fn start(&self, request: SignRequest, done: Done) {
        self.seen.lock().unwrap().push(request.connection.clone());
        done(self.signer.sign(&request));
    }
}

#[test]
fn each_signature_carries_the_server_name_and_both_addresses() {
    let (pki, keys) = setup();
    let cert = site_cert(&pki, &keys.p256, &["p256.test", "other.test"]);
    let recording = Arc::new(Recording {
        signer: LocalSigner::new(keys.p256.clone()),
        seen: Mutex::new(Vec::new()),
    });
    let key: Arc<dyn RemoteKey> = recording.clone();
    let tls = serve(context(&cert, key, Mode::Async), Mode::Async);
    for (name, version) in [
        ("p256.test", SslVersion::TLS1_3),
        ("other.test", SslVersion::TLS1_2),
    ] {
        let got = handshake(&pki, tls.addr, name, version, "ECDSA+SHA256").unwrap();
        assert_eq!(got, "ok\n");
        let seen = recording.seen.lock().unwrap().pop().expect("a signature");
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(
            seen,
            ConnectionInfo {
                sni: Some(name.to_string()),
                client_ip: Some(local),
                server_ip: Some(local),
            }
        );
    }
}

#[test]
fn a_key_server_that_authorises_by_server_name_sees_it() {
    let (pki, keys) = setup();
    let authz = Authz::parse(Path::new("authz"), "cn:edge-1 * sni:p256.test\n").unwrap();
    let ks = start(&pki, authz, ServerOptions::default());
    let cert = site_cert(&pki, &keys.p256, &["p256.test", "other.test"]);
    let key = remote(&pki, ks.addr, Duration::from_secs(2));
    let tls = serve(context(&cert, key, Mode::Async), Mode::Async);
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let ok = handshake(&pki, tls.addr, "p256.test", version, "ECDSA+SHA256");
        assert_eq!(ok.as_deref(), Ok("ok\n"), "{version:?}");
        let refused = handshake(&pki, tls.addr, "other.test", version, "ECDSA+SHA256");
        assert!(
            refused.is_err(),
            "{version:?}: other.test is not edge-1's to sign for"
        );
    }
}

/// Behind a load balancer the socket's addresses are the balancer's: the PROXY header's are
/// the ones the key server is told, through `Handshake::with_peers`.
#[test]
fn with_peers_replaces_the_socket_addresses_in_the_items() {
    use tokio::io::AsyncWriteExt;
    let (pki, keys) = setup();
    let cert = site_cert(&pki, &keys.p256, &["p256.test"]);
    let recording = Arc::new(Recording {
        signer: LocalSigner::new(keys.p256.clone()),
        seen: Mutex::new(Vec::new()),
    });
    let key: Arc<dyn RemoteKey> = recording.clone();
    let ctx = context(&cert, key, Mode::Async);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, server) = ("192.0.2.7:50000", "198.51.100.1:443");
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            let ssl = openssl::ssl::Ssl::new(&ctx).unwrap();
            let mut tls = edgetls_engine::accept(ssl, tcp)
                .with_peers(client.parse().ok(), server.parse().ok())
                .await
                .unwrap();
            tls.write_all(b"ok\n").await.unwrap();
            let _ = tls.shutdown().await;
        });
    });
    let got = handshake(&pki, addr, "p256.test", SslVersion::TLS1_3, "ECDSA+SHA256");
    assert_eq!(got.as_deref(), Ok("ok\n"));
    thread.join().unwrap();
    let seen = recording.seen.lock().unwrap().pop().expect("a signature");
    assert_eq!(
        seen,
        ConnectionInfo {
            sni: Some("p256.test".into()),
            client_ip: Some("192.0.2.7".parse().unwrap()),
            server_ip: Some("198.51.100.1".parse().unwrap()),
        }
    );
}
