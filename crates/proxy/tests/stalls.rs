//! Clients that stall at every step of the handshake are closed by `handshake_timeout`, with
//! and without remote keys (`[keyless]`, async mode), TLS 1.2 and 1.3; nothing leaks.

mod common;

use common::{Proxy, client_hello, curl, fd_count, metric, metrics, origin, pki, start};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{Keys, Pki, setup, site_cert, start as start_keyserver};
use openssl::ssl::SslVersion;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// How far a stalled client gets before it stops sending.
#[derive(Debug, Clone, Copy)]
enum Stall {
    Nothing,
    OneByte,
    RecordHeader,
    HalfHello,
    WholeHello,
}

const STALLS: [Stall; 5] = [
    Stall::Nothing,
    Stall::OneByte,
    Stall::RecordHeader,
    Stall::HalfHello,
    Stall::WholeHello,
];

/// Connects, sends that much of `hello`, then only reads: how long until the proxy closed it.
fn stall(addr: SocketAddr, kind: Stall, hello: &[u8]) -> Duration {
    let started = Instant::now();
    let mut tcp = TcpStream::connect(addr).unwrap();
    let part = match kind {
        Stall::Nothing => &hello[..0],
        Stall::OneByte => &hello[..1],
        Stall::RecordHeader => &hello[..5],
        Stall::HalfHello => &hello[..hello.len() / 2],
        Stall::WholeHello => hello,
    };
    tcp.write_all(part).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 4096];
    // The server's flight (for a whole ClientHello) arrives first; then the close.
    while let Ok(n) = tcp.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
    started.elapsed()
}

/// Every stall kind, TLS 1.2 and 1.3, at once; each must be closed within `limit` + 1 s.
fn every_stall_is_closed(p: &Proxy, name: &str, limit: Duration) {
    let mut clients = Vec::new();
    for max in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let hello = client_hello(name, max);
        for kind in STALLS {
            let (addr, hello) = (p.addr, hello.clone());
            clients.push((
                kind,
                max,
                std::thread::spawn(move || stall(addr, kind, &hello)),
            ));
        }
    }
    for (kind, max, c) in clients {
        let took = c.join().unwrap();
        assert!(
            took <= limit + Duration::from_secs(1),
            "{name} {max:?} {kind:?}: closed after {took:?} (handshake_timeout {limit:?})"
        );
    }
}

fn keyless_site(kit: &Pki, keys: &Keys, dir: &Path) {
    std::fs::create_dir_all(dir.join("remote")).unwrap();
    std::fs::write(
        dir.join("remote/keyless.test.pem"),
        site_cert(kit, &keys.p256, &["keyless.test"])
            .to_pem()
            .unwrap(),
    )
    .unwrap();
}

fn config(
    dir: &Path,
    timeout: &str,
    keyless: Option<(&Pki, SocketAddr)>,
    server: &str,
) -> std::path::PathBuf {
    let multicert = dir.join("ssl_multicert.config");
    let (origin, _) = origin("ok\n");
    let (sources, keyless) = match keyless {
        None => (format!("\"{}\"", multicert.display()), String::new()),
        Some((kit, ks)) => {
            let k = |f: &str| kit.path(f).display().to_string();
            (
                format!(
                    "\"{}\", \"{}\"",
                    multicert.display(),
                    dir.join("remote").display()
                ),
                format!(
                    "[keyless]\nsources = [\"{}\"]\nservers = [\"{ks}\"]\nserver_name = \"localhost\"\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
                    dir.join("remote").display(),
                    k("edge-1.pem"),
                    k("edge-1.key"),
                    k("ca.pem")
                ),
            )
        }
    };
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\nmetrics = \"127.0.0.1:0\"\n\
         handshake_timeout = \"{timeout}\"\nidle_timeout = \"{timeout}\"\n{server}\n\
         [certificates]\nsources = [{sources}]\n\n{keyless}\n\
         [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n"
    );
    let path = dir.join(format!("proxy-{timeout}-{}.toml", server.len()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits until the proxy holds `baseline` descriptors and no wake-up descriptor or waiting
/// job is left.
fn back_to_baseline(p: &Proxy, baseline: usize) {
    let pid = p.child.id();
    let ok = common::eventually(Duration::from_secs(5), || {
        let m = metrics(p);
        fd_count(pid) <= baseline
            && metric(&m, "edgetls_remote_key_wakers") == Some(0.0)
            && metric(&m, "edgetls_remote_key_waiting") == Some(0.0)
            && metric(&m, "edgetls_connections_open") == Some(0.0)
    });
    let m = metrics(p);
    assert!(
        ok,
        "descriptors {} (baseline {baseline}); wakers {:?}, waiting {:?}, open {:?}",
        fd_count(pid),
        metric(&m, "edgetls_remote_key_wakers"),
        metric(&m, "edgetls_remote_key_waiting"),
        metric(&m, "edgetls_connections_open"),
    );
}

#[test]
fn stalled_handshakes_are_closed_on_time_with_and_without_remote_keys() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let ca = dir.path().join("ca.pem");
    let (kit, keys) = setup();
    keyless_site(&kit, &keys, dir.path());
    let ks = start_keyserver(&kit, Authz::open(), ServerOptions::default());
    let limit = Duration::from_secs(2);

    // The kernel holding silent connections (defer_accept) counts towards the deadline.
    for (name, with_keyless, server) in [
        ("site000001.demo.test", false, ""),
        ("keyless.test", true, ""),
        ("site000001.demo.test", false, "defer_accept = true"),
        ("keyless.test", true, "defer_accept = true"),
    ] {
        let p = start(&config(
            dir.path(),
            "2s",
            with_keyless.then_some((&kit, ks.addr)),
            server,
        ));
        let trust = if with_keyless {
            kit.path("ca.pem")
        } else {
            ca.clone()
        };
        // Served first, so the keyless client's connection is part of the baseline.
        let (code, body, err) = curl(&p, &trust, name, &["--http1.1"]);
        assert_eq!((code, body.as_str()), (0, "ok\n"), "{err}");
        std::thread::sleep(Duration::from_millis(200));
        let baseline = fd_count(p.child.id());

        every_stall_is_closed(&p, name, limit);
        back_to_baseline(&p, baseline);
        let m = metrics(&p);
        let timeouts = metric(&m, "edgetls_handshakes_total{result=\"timeout\"}").unwrap();
        assert!(timeouts >= 10.0, "every stall counted as a timeout:\n{m}");
        // Still serving.
        let (code, body, err) = curl(&p, &trust, name, &["--http1.1"]);
        assert_eq!((code, body.as_str()), (0, "ok\n"), "{err}");
    }
}

#[test]
fn a_handshake_cancelled_while_its_key_operation_waits_releases_the_client_at_once() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let (kit, keys) = setup();
    keyless_site(&kit, &keys, dir.path());
    // The key server answers after 4 s; the proxy's key client gives up after 2 s and the
    // handshake timeout is 1 s: every handshake is cancelled while its job is paused.
    let ks = start_keyserver(&kit, Authz::open(), {
        let mut o = ServerOptions::default();
        o.delay = Duration::from_secs(4);
        o
    });
    let p = start(&config(dir.path(), "1s", Some((&kit, ks.addr)), ""));
    std::thread::sleep(Duration::from_millis(300));
    let baseline = fd_count(p.child.id());
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let max = if i % 2 == 0 {
                SslVersion::TLS1_2
            } else {
                SslVersion::TLS1_3
            };
            let (addr, hello) = (p.addr, client_hello("keyless.test", max));
            std::thread::spawn(move || stall(addr, Stall::WholeHello, &hello))
        })
        .collect();
    // The jobs are paused now.
    assert!(common::eventually(Duration::from_secs(2), || metric(
        &metrics(&p),
        "edgetls_remote_key_waiting"
    )
    .is_some_and(|w| w > 0.0)));
    for c in clients {
        let took = c.join().unwrap();
        assert!(
            took <= Duration::from_secs(2),
            "the client was let go at the handshake timeout, not when the job ended: {took:?}"
        );
    }
    // The jobs end with the key client's deadline; then every SSL and descriptor is freed.
    std::thread::sleep(Duration::from_secs(1));
    back_to_baseline(&p, baseline + 2); // the key client may have opened a connection more
}

/// A key server that does not answer in time fails the handshakes of its names, and that is
/// said at the default log level — the client did nothing wrong — at most once a second per
/// worker, the next line counting those left out.
#[test]
fn key_server_failures_are_logged_at_the_default_level_once_a_second() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let (kit, keys) = setup();
    keyless_site(&kit, &keys, dir.path());
    // The key server answers after 4 s (its health-check answers too); the key client gives up
    // after 2 s: remote_timeout or remote_unavailable.
    let ks = start_keyserver(&kit, Authz::open(), {
        let mut o = ServerOptions::default();
        o.delay = Duration::from_secs(4);
        o
    });
    let p = start(&config(dir.path(), "5s", Some((&kit, ks.addr)), ""));
    let ca = kit.path("ca.pem");
    let batch = |n: usize| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (addr, ca) = (p.addr, ca.clone());
                std::thread::spawn(move || {
                    let o = std::process::Command::new("curl")
                        .args(["-s", "--max-time", "8", "--cacert", ca.to_str().unwrap()])
                        .args([
                            "--resolve",
                            &format!("keyless.test:{}:127.0.0.1", addr.port()),
                        ])
                        .arg(format!("https://keyless.test:{}/", addr.port()))
                        .output()
                        .unwrap();
                    o.status.success()
                })
            })
            .collect();
        for h in handles {
            assert!(!h.join().unwrap(), "the handshake failed");
        }
    };
    batch(6); // six failures within a second: one line
    batch(2); // two seconds later: one line, counting the five left out
    let log = p.stderr.lock().unwrap().clone();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("handshake failed (remote_"))
        .collect();
    assert!(
        (2..=3).contains(&lines.len()),
        "one line a second, not one per failure: {log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("more failures of this side")),
        "the left-out failures are counted: {log}"
    );
}
