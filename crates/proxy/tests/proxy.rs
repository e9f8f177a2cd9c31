//! `edgetls proxy` as an operator runs it: real curl and s_client clients, plain and TLS
//! origins, a tunnel, SIGHUP reloads (a broken one rejected), SIGTERM draining.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A plain-TCP origin answering every HTTP/1.1 request with `body`, recording what it received.
fn origin(body: &'static str) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                    if got.starts_with(b"PRI * HTTP/2.0") {
                        break;
                    }
                }
                s.lock().unwrap().extend_from_slice(&got);
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (addr, seen)
}

struct Proxy {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &Path) -> Proxy {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args(["proxy", "--config", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let e = Arc::clone(&stderr);
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            e.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}; stderr: {}", stderr.lock().unwrap()));
    Proxy {
        child,
        addr,
        stderr,
    }
}

fn pki(dir: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args([
            "demo",
            "--generate-only",
            "--names",
            "5",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir.join("ssl_multicert.config")
}

fn curl(p: &Proxy, ca: &Path, name: &str, extra: &[&str]) -> (i32, String, String) {
    let o = Command::new("curl")
        .args(["-sv", "--max-time", "5", "--cacert", ca.to_str().unwrap()])
        .args(["--resolve", &format!("{name}:{}:127.0.0.1", p.addr.port())])
        .args(extra)
        .arg(format!("https://{name}:{}/", p.addr.port()))
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        text(&o.stdout),
        text(&o.stderr),
    )
}

fn signal(p: &Proxy, sig: &str) {
    assert!(
        Command::new("kill")
            .args(["-s", sig, &p.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

fn eventually(limit: Duration, f: impl Fn() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

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
        let o = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &p.addr.to_string(),
                "-servername",
                "dual.demo.test",
                "-sigalgs",
                sigalg,
                "-brief",
                "-CAfile",
            ])
            .arg(&ca)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let out = format!("{}{}", text(&o.stdout), text(&o.stderr));
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
    assert!(p.child.id() > 0);
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
