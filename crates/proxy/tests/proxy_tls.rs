//! `edgetls proxy` with TLS origins (a client certificate per origin), a tunnel, tickets, a
//! name that requires client certificates, and a name whose key is on a key server.

mod common;

use common::{curl, origin, pki, s_client, start};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, site_cert, start as start_keyserver};
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;

/// A TLS origin (the testkit's "localhost" server certificate) that requires a client
/// certificate from the testkit CA and answers with that certificate's common name.
fn tls_origin(kit: &edgetls_testkit::Pki) -> SocketAddr {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate_chain_file(kit.path("server.pem"))
        .unwrap();
    b.set_private_key_file(kit.path("server.key"), SslFiletype::PEM)
        .unwrap();
    b.set_ca_file(kit.path("ca.pem")).unwrap();
    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    let acceptor = b.build();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let Ok(mut tls) = acceptor.accept(c) else {
                continue;
            };
            let cn = tls
                .ssl()
                .peer_certificate()
                .and_then(|c| {
                    c.subject_name()
                        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                        .next()
                        .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
                })
                .unwrap_or_default();
            let mut buf = [0u8; 2048];
            let _ = tls.read(&mut buf);
            let body = format!("client {cn}\n");
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.shutdown();
        }
    });
    addr
}

#[test]
fn tls_origins_tunnels_tickets_client_certs_and_keyless() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let ca = dir.path().join("ca.pem");
    let (kit, keys) = setup();
    let tls = tls_origin(&kit);
    let (plain, _) = origin("plain\n");
    let ks = start_keyserver(&kit, Authz::open(), ServerOptions::default());
    // keyless.test: the certificate alone; its key is on the key server.
    std::fs::create_dir(dir.path().join("remote")).unwrap();
    std::fs::write(
        dir.path().join("remote/keyless.test.pem"),
        site_cert(&kit, &keys.p256, &["keyless.test"])
            .to_pem()
            .unwrap(),
    )
    .unwrap();
    let tickets = dir.path().join("tickets.keys");
    let out = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args([
            "tickets",
            "gen",
            "--format",
            "haproxy",
            "--count",
            "3",
            "--out",
            tickets.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(
        dir.path().join("policy.toml"),
        format!(
            "[[sni]]\nfqdn = \"tunnel.test\"\ntunnel_route = \"{tls}\"\n\n[[sni]]\nfqdn = \"site000002.demo.test\"\nverify_client = \"STRICT\"\nverify_client_ca_certs = \"{}\"\n",
            kit.path("ca.pem").display()
        ),
    )
    .unwrap();
    let k = |f: &str| kit.path(f).display().to_string();
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 1
metrics = "127.0.0.1:0"
idle_timeout = "1s"

[certificates]
sources = ["{multicert}", "{keyless}"]

[policy]
file = "policy.toml"

[tickets]
file = "tickets.keys"
format = "haproxy"

[keyless]
sources = ["{keyless}"]
servers = ["{ks}"]
server_name = "localhost"
cert = "{edge1}"
key = "{edge1key}"
ca = "{kca}"

[[routes]]
fqdn = "site000001.demo.test"
origin = "{tls}"
tls = true
verify = "full"
ca = "{kca}"
sni = "localhost"
client_cert = "{edge1}"
client_key = "{edge1key}"

[[routes]]
fqdn = "site000003.demo.test"
origin = "{tls}"
tls = true
verify = "full"
ca = "{kca}"
sni = "localhost"
client_cert = "{edge2}"
client_key = "{edge2key}"

[[routes]]
fqdn = "*"
origin = "{plain}"
"#,
        multicert = multicert.display(),
        keyless = dir.path().join("remote").display(),
        ks = ks.addr,
        edge1 = k("edge-1.pem"),
        edge1key = k("edge-1.key"),
        edge2 = k("edge-2.pem"),
        edge2key = k("edge-2.key"),
        kca = k("ca.pem"),
    );
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let p = start(&path);

    // A client certificate chosen per origin, seen by the TLS origin.
    let (code, body, err) = curl(&p, &ca, "site000001.demo.test", &["--http1.1"]);
    assert_eq!((code, body.as_str()), (0, "client edge-1\n"), "{err}");
    let (code, body, err) = curl(&p, &ca, "site000003.demo.test", &["--http1.1"]);
    assert_eq!((code, body.as_str()), (0, "client edge-2\n"), "{err}");

    // A tunnel: the client talks TLS with the origin itself (its certificate, CN keyserver).
    let (_, out) = s_client(&p, &kit.path("ca.pem"), "tunnel.test", &["-brief"]);
    assert!(
        out.contains("CN = keyserver") || out.contains("CN=keyserver"),
        "{out}"
    );

    // A name requiring client certificates: refused without, served with one from its CA.
    let (code, _, _) = curl(&p, &ca, "site000002.demo.test", &["--http1.1"]);
    assert_ne!(code, 0);
    let (code, body, err) = curl(
        &p,
        &ca,
        "site000002.demo.test",
        &[
            "--http1.1",
            "--cert",
            &k("edge-1.pem"),
            "--key",
            &k("edge-1.key"),
        ],
    );
    assert_eq!((code, body.as_str()), (0, "plain\n"), "{err}");

    // Ticket resumption through the proxy.
    let sess = dir.path().join("sess");
    // With a request: AWS-LC sends TLS 1.3 tickets with the server's first data (OpenSSL
    // right after the handshake), as BoringSSL does (docs/libraries.md).
    edgetls_testkit::s_client::SClient::connect(p.addr)
        .name("site000004.demo.test")
        .ca(&ca)
        .args(["-tls1_3", "-sess_out", sess.to_str().unwrap(), "-ign_eof"])
        .input("GET / HTTP/1.0\r\n\r\n")
        .run();
    let (_, again) = s_client(
        &p,
        &ca,
        "site000004.demo.test",
        &["-tls1_3", "-sess_in", sess.to_str().unwrap()],
    );
    assert!(again.contains("\nReused, TLSv1.3"), "{again}");

    // A keyless-backed name: the signature is made by the key server.
    let before = ks
        .metrics
        .requests(edgetls_keyless_proto::Opcode::ECDSA_SIGN_SHA256);
    let (code, body, err) = curl(&p, &kit.path("ca.pem"), "keyless.test", &["--http1.1"]);
    assert_eq!((code, body.as_str()), (0, "plain\n"), "{err}");
    assert_eq!(
        ks.metrics
            .requests(edgetls_keyless_proto::Opcode::ECDSA_SIGN_SHA256),
        before + 1
    );
}
