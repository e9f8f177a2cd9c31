//! Helpers for the proxy end-to-end tests.
#![allow(dead_code, missing_debug_implementations)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A plain-TCP origin answering every HTTP/1.1 request with `body`, recording what it received.
pub fn origin(body: &'static str) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
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

pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub stderr: Arc<Mutex<String>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(config: &Path) -> Proxy {
    start_with_env(config, &[])
}

/// As [`start`], with environment variables for the proxy (e.g. `RUST_LOG`).
pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Proxy {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgetls"));
    cmd.envs(env.iter().copied());
    start_command(cmd, config)
}

/// As [`start`], with the command that runs the proxy binary given (another build of it, or a
/// wrapper such as valgrind with the binary as its first argument).
pub fn start_command(mut cmd: Command, config: &Path) -> Proxy {
    let mut child = cmd
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
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}; stderr: {}", stderr.lock().unwrap()));
    let metrics = if std::fs::read_to_string(config).is_ok_and(|t| t.contains("\nmetrics =")) {
        let mut second = String::new();
        out.read_line(&mut second).unwrap();
        second.split_whitespace().find_map(|w| {
            w.strip_prefix("http://")?
                .strip_suffix("/metrics")?
                .parse()
                .ok()
        })
    } else {
        None
    };
    Proxy {
        child,
        addr,
        metrics,
        stderr,
    }
}

pub fn pki(dir: &Path) -> PathBuf {
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

/// The leaf certificate (DER) served for `name`.
pub fn served_cert(addr: SocketAddr, name: &str) -> Vec<u8> {
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let tls = b
        .build()
        .connect(name, std::net::TcpStream::connect(addr).unwrap())
        .unwrap();
    tls.ssl().peer_certificate().unwrap().to_der().unwrap()
}

pub fn curl(p: &Proxy, ca: &Path, name: &str, extra: &[&str]) -> (i32, String, String) {
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

pub fn signal(p: &Proxy, sig: &str) {
    assert!(
        Command::new("kill")
            .args(["-s", sig, &p.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[allow(unused_imports)] // not every test binary waits
pub use edgetls_testkit::wait::eventually;

/// The proxy's `/metrics` text (curl).
pub fn metrics(p: &Proxy) -> String {
    let addr = p.metrics.expect("the configuration has a metrics address");
    let o = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .unwrap();
    text(&o.stdout)
}

/// The value of the series that starts with `series` (name and labels as printed).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The ClientHello a TLS client (at most `max`) sends for `name`, as bytes on the wire.
pub fn client_hello(name: &str, max: openssl::ssl::SslVersion) -> Vec<u8> {
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    b.set_max_proto_version(Some(max)).unwrap();
    let connector = b.build();
    let (a, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    peer.set_nonblocking(true).unwrap();
    // Non-blocking: the handshake writes its ClientHello and stops, waiting for the answer.
    let _ = connector.configure().unwrap().connect(name, a);
    let mut hello = vec![0u8; 16 * 1024];
    let n = peer.read(&mut hello).unwrap();
    hello.truncate(n);
    hello
}

/// A local origin that reads the request and then runs `answer` on the connection, each
/// connection on its own thread.
pub fn origin_answering(
    answer: impl Fn(&mut std::net::TcpStream) + Send + Sync + 'static,
) -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let answer = std::sync::Arc::clone(&answer);
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                answer(&mut c);
            });
        }
    });
    addr
}

/// `openssl s_client` to the proxy for `name`, trusting `ca`: (exit status success, stdout and
/// stderr together).
pub fn s_client(p: &Proxy, ca: &Path, name: &str, args: &[&str]) -> (bool, String) {
    let out = edgetls_testkit::s_client::SClient::connect(p.addr)
        .name(name)
        .ca(ca)
        .args(args)
        .run();
    (out.ok, out.text())
}

/// A proxy configuration in `dir` (`proxy.toml`, metrics on) serving the demo's `multicert`
/// and the remote-key certificates in `remote`, whose keys the key server at `keyserver` (of
/// the test kit `kit`) holds; `workers` workers; the origin unreachable (handshakes only).
#[allow(dead_code)] // not every test binary has a key server
pub fn keyless_config(
    dir: &Path,
    multicert: &Path,
    remote: &Path,
    kit: &edgetls_testkit::Pki,
    keyserver: SocketAddr,
    workers: usize,
) -> PathBuf {
    let k = |f: &str| kit.path(f).display().to_string();
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = {workers}\nmetrics = \"127.0.0.1:0\"\n\n\
             [certificates]\nsources = [\"{}\", \"{remote}\"]\n\n\
             [keyless]\nsources = [\"{remote}\"]\nservers = [\"{keyserver}\"]\nserver_name = \"localhost\"\n\
             cert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"127.0.0.1:9\"\n",
            multicert.display(),
            k("edge-1.pem"),
            k("edge-1.key"),
            k("ca.pem"),
            remote = remote.display(),
        ),
    )
    .unwrap();
    config
}
