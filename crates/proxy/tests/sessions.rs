//! TLS 1.2 session-ID resumption from the proxy's session cache (bound to the server name),
//! ALPN without overlap, and failed handshakes counted and logged by reason.

mod common;

use common::{Proxy, metric, metrics, origin, pki, s_client, start_with_env};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn proxy(dir: &Path, server_extra: &str) -> Proxy {
    let multicert = pki(dir);
    let (origin, _) = origin("ok\n");
    std::fs::write(
        dir.join("policy.toml"),
        "[[sni]]\nfqdn = \"site000003.demo.test\"\nalpn = [\"h2\", \"http/1.1\"]\n",
    )
    .unwrap();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\nmetrics = \"127.0.0.1:0\"\n{server_extra}\n\
         [certificates]\nsources = [\"{}\"]\n\n[policy]\nfile = \"policy.toml\"\n\n\
         [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
        multicert.display()
    );
    let path = dir.join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    start_with_env(&path, &[("RUST_LOG", "edgetls=debug")])
}

/// Makes a TLS 1.2 session without tickets for `name` into `sess`.
fn first(p: &Proxy, ca: &Path, name: &str, sess: &Path) {
    let (ok, out) = s_client(
        p,
        ca,
        name,
        &["-tls1_2", "-no_ticket", "-sess_out", sess.to_str().unwrap()],
    );
    assert!(ok && out.contains("\nNew, TLSv1.2"), "{out}");
}

fn again(p: &Proxy, ca: &Path, name: &str, sess: &Path) -> String {
    s_client(
        p,
        ca,
        name,
        &["-tls1_2", "-no_ticket", "-sess_in", sess.to_str().unwrap()],
    )
    .1
}

#[test]
fn tls12_session_ids_resume_for_their_own_name_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = proxy(dir.path(), "");
    let ca = dir.path().join("ca.pem");
    let sess = dir.path().join("sess");
    first(&p, &ca, "site000001.demo.test", &sess);
    // Both workers share the cache: several tries land on either.
    for _ in 0..4 {
        let out = again(&p, &ca, "site000001.demo.test", &sess);
        assert!(out.contains("\nReused, TLSv1.2"), "{out}");
    }
    // The same session offered for another name (same default chain or not): full handshake.
    for other in ["site000002.demo.test", "unknown.example"] {
        let out = again(&p, &ca, other, &sess);
        assert!(out.contains("\nNew, TLSv1.2"), "{other}: {out}");
    }
    let m = metrics(&p);
    let resumed = metric(
        &m,
        "edgetls_handshakes_total{result=\"ok\",version=\"TLSv1.2\",kind=\"resumed\"}",
    );
    assert_eq!(resumed, Some(4.0), "{m}");
    // OpenSSL counts a session found for another name as a miss; AWS-LC as a hit (the cache
    // had it), then refuses it all the same.
    let hits = if edgetls_tls::library::NAME == "AWS-LC" {
        6.0
    } else {
        4.0
    };
    assert_eq!(
        metric(&m, "edgetls_session_cache_lookups_total{result=\"hit\"}"),
        Some(hits),
        "{m}"
    );
    assert!(metric(&m, "edgetls_session_cache_sessions").unwrap() >= 1.0);
}

#[test]
fn session_cache_off_means_no_session_id_resumption() {
    let dir = tempfile::tempdir().unwrap();
    let p = proxy(dir.path(), "session_cache = 0\n");
    let ca = dir.path().join("ca.pem");
    let sess = dir.path().join("sess");
    first(&p, &ca, "site000001.demo.test", &sess);
    let out = again(&p, &ca, "site000001.demo.test", &sess);
    assert!(out.contains("\nNew, TLSv1.2"), "{out}");
}

#[test]
fn a_session_expires_after_session_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let p = proxy(dir.path(), "session_timeout = \"1s\"\n");
    let ca = dir.path().join("ca.pem");
    let sess = dir.path().join("sess");
    first(&p, &ca, "site000001.demo.test", &sess);
    std::thread::sleep(Duration::from_millis(2100));
    let out = again(&p, &ca, "site000001.demo.test", &sess);
    assert!(out.contains("\nNew, TLSv1.2"), "{out}");
}

#[test]
fn failed_handshakes_are_counted_and_logged_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = proxy(dir.path(), "");
    let ca = dir.path().join("ca.pem");
    // No common ALPN protocol: alert 120 by default.
    let (ok, out) = s_client(&p, &ca, "site000003.demo.test", &["-alpn", "banana"]);
    assert!(!ok && out.contains("no application protocol"), "{out}");
    // No common version.
    let (ok, _) = s_client(&p, &ca, "site000001.demo.test", &["-tls1_1"]);
    assert!(!ok);
    // Not TLS at all.
    let mut tcp = std::net::TcpStream::connect(p.addr).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let _ = std::io::Read::read(&mut tcp, &mut [0u8; 64]);
    let expect = [
        ("no_application_protocol", 1.0),
        ("version", 1.0),
        ("protocol", 1.0),
    ];
    let counted = |m: &str| {
        expect.iter().all(|(reason, n)| {
            metric(
                m,
                &format!("edgetls_handshakes_total{{result=\"failed\",reason=\"{reason}\"}}"),
            ) == Some(*n)
        })
    };
    assert!(
        common::eventually(Duration::from_secs(3), || counted(&metrics(&p))),
        "{}",
        metrics(&p)
    );
    // Each one logged at debug with the client's address and the reason.
    let log = p.stderr.lock().unwrap().clone();
    for (reason, _) in expect {
        assert!(
            log.lines()
                .any(|l| l.contains("127.0.0.1:") && l.contains(&format!("({reason})"))),
            "{reason} not logged:\n{log}"
        );
    }
}

#[test]
fn the_metrics_endpoint_is_http() {
    let dir = tempfile::tempdir().unwrap();
    let p = proxy(dir.path(), "");
    let addr = p.metrics.unwrap();
    let get = |path: &str| {
        let o = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{content_type}",
            ])
            .arg(format!("http://{addr}{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        get("/metrics").starts_with("200 application/openmetrics-text"),
        "{}",
        get("/metrics")
    );
    assert!(get("/nothing").starts_with("404"));
    // HTTP/1.1 keep-alive: two scrapes on one connection.
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-w",
            "%{num_connects}\n",
        ])
        .arg(format!("http://{addr}/metrics"))
        .arg(format!("http://{addr}/metrics"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1\n0\n");
}
