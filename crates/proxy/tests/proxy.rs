//! `edgetls proxy` as an operator runs it: real curl and s_client clients, plain and TLS
//! origins, a tunnel, SIGHUP reloads (a broken one rejected), SIGTERM draining.

mod common;

use common::{
    curl, eventually, origin, origin_answering, pki, s_client, served_cert, signal, start, text,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

#[test]
fn proxy_routes_by_name_and_alpn_reloads_and_drains() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let ca = dir.path().join("ca.pem");
    let (a, _) = origin("origin A\n");
    let (b, b_seen) = origin("origin B\n");
    std::fs::write(
        dir.path().join("policy.toml"),
        "[[sni]]\nfqdn = \"site000001.demo.test\"\nalpn = [\"h2\", \"http/1.1\"]\n\n[[sni]]\nfqdn = \"*\"\nalpn = [\"http/1.1\"]\n",
    )
    .unwrap();
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2
idle_timeout = "30s"

[certificates]
sources = ["{}"]

[policy]
file = "policy.toml"

[[routes]]
fqdn = "site000001.demo.test"
alpn = "h2"
origin = "{b}"

[[routes]]
fqdn = "*"
origin = "{a}"
"#,
        multicert.display()
    );
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, &config).unwrap();
    let p = start(&path);

    // SNI, wildcard and the dual RSA/ECDSA name, through to origin A over HTTP/1.1.
    for name in [
        "site000002.demo.test",
        "api.wild.demo.test",
        "dual.demo.test",
    ] {
        let (code, body, err) = curl(&p, &ca, name, &["--http1.1"]);
        assert_eq!((code, body.as_str()), (0, "origin A\n"), "{name}: {err}");
    }
    for (sigalg, kind) in [
        ("rsa_pss_rsae_sha256", "RSA-PSS"),
        ("ecdsa_secp256r1_sha256", "ECDSA"),
    ] {
        let (_, out) = s_client(&p, &ca, "dual.demo.test", &["-sigalgs", sigalg, "-brief"]);
        assert!(out.contains(&format!("Signature type: {kind}\n")), "{out}");
    }
    // ALPN h2 on site000001 goes to origin B (which sees the HTTP/2 preface).
    let (_, _, err) = curl(&p, &ca, "site000001.demo.test", &["--http2"]);
    assert!(err.contains("ALPN: server accepted h2"), "{err}");
    assert!(eventually(Duration::from_secs(3), || b_seen
        .lock()
        .unwrap()
        .starts_with(b"PRI * HTTP/2.0")));
    let (code, body, _) = curl(&p, &ca, "site000001.demo.test", &["--http1.1"]);
    assert_eq!((code, body.as_str()), (0, "origin A\n"));

    // A broken configuration is rejected on SIGHUP; the old one keeps serving.
    std::fs::write(
        &path,
        config.replace(
            "[[routes]]\nfqdn = \"*\"",
            "[[routes]]\nfqdn = \"*\"\nverify = \"full\"",
        ),
    )
    .unwrap();
    signal(&p, "HUP");
    assert!(
        eventually(Duration::from_secs(5), || p
            .stderr
            .lock()
            .unwrap()
            .contains("reload failed")),
        "{}",
        p.stderr.lock().unwrap()
    );
    let (code, body, _) = curl(&p, &ca, "site000003.demo.test", &["--http1.1"]);
    assert_eq!((code, body.as_str()), (0, "origin A\n"));
    // A good one is taken: every name now goes to origin B.
    std::fs::write(
        &path,
        config.replace(&format!("origin = \"{a}\""), &format!("origin = \"{b}\"")),
    )
    .unwrap();
    signal(&p, "HUP");
    assert!(eventually(Duration::from_secs(5), || p
        .stderr
        .lock()
        .unwrap()
        .contains("reloaded")));
    let (code, body, _) = curl(&p, &ca, "site000003.demo.test", &["--http1.1"]);
    assert_eq!((code, body.as_str()), (0, "origin B\n"));

    // SIGTERM: an established connection is left to finish; the proxy exits after it.
    let mut held =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    held.set_ca_file(&ca).unwrap();
    let tcp = TcpStream::connect(p.addr).unwrap();
    let mut tls = held.build().connect("site000004.demo.test", tcp).unwrap();
    signal(&p, "TERM");
    assert!(eventually(Duration::from_secs(5), || p
        .stderr
        .lock()
        .unwrap()
        .contains("draining")));
    std::thread::sleep(Duration::from_millis(200));
    let mut p = p;
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "still running while a connection is open"
    );
    tls.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut resp = String::new();
    let _ = tls.read_to_string(&mut resp);
    assert!(resp.ends_with("origin B\n"), "{resp}");
    drop(tls);
    let status = (0..250).find_map(|_| {
        std::thread::sleep(Duration::from_millis(20));
        p.child.try_wait().unwrap()
    });
    assert_eq!(
        status.map(|s| s.success()),
        Some(true),
        "{}",
        p.stderr.lock().unwrap()
    );
}

/// An origin that answers with `chunks` KiB, one every 50 ms.
fn slow_origin(chunks: usize) -> std::net::SocketAddr {
    origin_answering(move |c| {
        let _ = write!(
            c,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            chunks * 1024
        );
        for _ in 0..chunks {
            if c.write_all(&[b'x'; 1024]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

#[test]
fn a_changed_certificate_file_is_served_while_a_long_transfer_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let other = tempfile::tempdir().unwrap();
    pki(other.path()); // same names, another CA and other keys
    let origin = slow_origin(60);
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[certificates]\nsources = [\"{}\"]\n\n[[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
        multicert.display()
    );
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let p = start(&path);
    let name = "site000004.demo.test";
    let before = served_cert(p.addr, name);

    // A 60 KiB answer arriving over 3 s.
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let mut long = b
        .build()
        .connect(name, TcpStream::connect(p.addr).unwrap())
        .unwrap();
    long.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 512];
    let n = long.read(&mut first).unwrap();
    assert!(n > 0);

    // The certificate file changes: the proxy notices by itself and serves the new one.
    let file = format!("certs/{name}.pem");
    std::fs::copy(other.path().join(&file), dir.path().join(&file)).unwrap();
    assert!(
        eventually(Duration::from_secs(8), || p
            .stderr
            .lock()
            .unwrap()
            .contains("reloaded (file change)")),
        "{}",
        p.stderr.lock().unwrap()
    );
    let after = served_cert(p.addr, name);
    assert_ne!(before, after, "the new certificate is served");

    // The transfer that started before the reload completes, every byte of it.
    let mut rest = Vec::new();
    long.read_to_end(&mut rest).unwrap_or(0);
    let mut all = first[..n].to_vec();
    all.extend_from_slice(&rest);
    let body = all.split(|b| *b == b'\n').next_back().unwrap().to_vec();
    assert_eq!(body.len(), 60 * 1024, "the long transfer stayed up");
}

/// An origin that answers with a status line and then says nothing more, holding the
/// connection open for 30 s.
fn silent_origin() -> std::net::SocketAddr {
    origin_answering(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\n");
        std::thread::sleep(Duration::from_secs(30));
    })
}

#[test]
fn idle_connections_are_closed_and_busy_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let (silent, busy) = (silent_origin(), slow_origin(40));
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\nidle_timeout = \"1s\"\n\n\
         [certificates]\nsources = [\"{}\"]\n\n\
         [[routes]]\nfqdn = \"site000001.demo.test\"\norigin = \"{silent}\"\n\n\
         [[routes]]\nfqdn = \"*\"\norigin = \"{busy}\"\n",
        multicert.display()
    );
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let p = start(&path);
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let connector = b.build();
    let request = |name: &str| {
        let tcp = TcpStream::connect(p.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = connector.connect(name, tcp).unwrap();
        tls.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let started = std::time::Instant::now();
        let mut got = Vec::new();
        let _ = tls.read_to_end(&mut got);
        (got, started.elapsed())
    };

    // Nothing moves after the status line: closed after about a second, not after 30.
    let (got, took) = request("site000001.demo.test");
    assert!(got.starts_with(b"HTTP/1.1 200 OK"), "{}", text(&got));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );

    // A kilobyte every 50 ms for 2 s: never idle for a second, so it runs to the end.
    let (got, took) = request("site000002.demo.test");
    let body = got.split(|b| *b == b'\n').next_back().unwrap();
    assert_eq!(body.len(), 40 * 1024, "the busy transfer completed");
    assert!(took >= Duration::from_millis(1900), "took {took:?}");
}

#[test]
fn check_validates_the_configuration_and_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let good = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[certificates]\nsources = [\"{}\"]\n\n[[routes]]\nfqdn = \"*\"\norigin = \"127.0.0.1:9\"\n",
        multicert.display()
    );
    let path = dir.path().join("proxy.toml");
    let check = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_edgetls"))
            .args(["proxy", "--check", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        (o.status.code(), text_of(&o.stdout), text_of(&o.stderr))
    };
    let (code, out, err) = check(&good);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("is valid"), "{out}");
    // A certificate entry that fails, or nothing to serve, is not valid (as `haproxy -c`).
    let certs = dir.path().join("certs");
    let broken_cert = certs.join("site000003.demo.test.pem");
    let kept = std::fs::read(&broken_cert).unwrap();
    std::fs::write(&broken_cert, "-----BEGIN CERTIFICATE-----\ntruncated\n").unwrap();
    let (code, out, err) = check(&good);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("site000003.demo.test.pem") && err.contains("1 certificate entries failed"),
        "{err}"
    );
    std::fs::write(&broken_cert, kept).unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, out, err) = check(&good.replace(
        &multicert.display().to_string(),
        &empty.display().to_string(),
    ));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("no certificate would be served"), "{err}");
    let keyless = "[keyless]\nservers = [\"127.0.0.1:2407\"]\nserver_name = \"k\"\ncert = \"e.pem\"\nkey = \"e.key\"\nca = \"ca.pem\"\n";
    for (broken, want) in [
        (good.replace("origin = \"127.0.0.1:9\"", "origin = \"nowhere\""), "proxy.toml:7: routes.origin"),
        (good.replace("fqdn = \"*\"", "fqdn = \"*\"\nverify = \"full\""), "proxy.toml:7: routes.tls"),
        (good.replace("[server]\n", "[server]\nidle_timeout = \"soon\"\n"), "proxy.toml:2: server.idle_timeout"),
        (good.replace("listen", "listn"), "proxy.toml"),
        (good.replace("[[routes]]\nfqdn = \"*\"\norigin = \"127.0.0.1:9\"\n", "[[routes]]\nfqdn = \"*\"\norigin = \"127.0.0.1:9\"\ntls = true\nverify = \"full\"\n"), "routes.ca"),
        // Which certificates have their keys on the key servers is said, never guessed.
        (good.replace("[[routes]]", &format!("{keyless}[[routes]]")), "proxy.toml:7: keyless.sources: missing"),
        (good.replace("[[routes]]", &format!("{keyless}sources = [\"{}\"]\n\n[[routes]]", certs.display())), "is not one of [certificates] sources"),
    ] {
        let (code, _, err) = check(&broken);
        assert_eq!(code, Some(2), "{broken}");
        assert!(err.contains(want), "want {want:?} in {err}");
    }
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
