//! `[acme]` end to end: the proxy obtains its certificates from a real ACME server (Debian's
//! pebble, names resolved to 127.0.0.1 by its DNS test server), answering TLS-ALPN-01 on its
//! own TLS listener or HTTP-01 on `http_listen`, and serves them once stored. Skipped (with a
//! message) where pebble is not installed; `.ci/run` installs it.

mod common;

use common::{eventually, metric, metrics, origin, text};
use edgetls_testkit::net::free_port;
use edgetls_testkit::pebble::{self, Options, Pebble};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A scratch directory, the proxy's TLS port (where pebble validates TLS-ALPN-01) and pebble.
fn with_pebble() -> (tempfile::TempDir, u16, Pebble) {
    let port = free_port();
    let p = Pebble::start(Options::new(port, free_port()));
    (tempfile::tempdir().unwrap(), port, p)
}

fn config(
    dir: &Path,
    p: &Pebble,
    port: u16,
    challenge: &str,
    http: Option<u16>,
) -> std::path::PathBuf {
    config_for(
        dir,
        p,
        port,
        challenge,
        http,
        r#""a.test", "b.test,www.b.test""#,
    )
}

fn config_for(
    dir: &Path,
    p: &Pebble,
    port: u16,
    challenge: &str,
    http: Option<u16>,
    names: &str,
) -> std::path::PathBuf {
    let (origin, _) = origin("hello from the origin\n");
    let http_listen = http.map_or(String::new(), |h| {
        format!("http_listen = \"127.0.0.1:{h}\"\n")
    });
    let path = dir.join("proxy.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nworkers = 1\nmetrics = \"127.0.0.1:0\"\n\n\
             [certificates]\nsources = []\n\n\
             [acme]\ndirectory = \"{dir_url}\"\nca_bundle = \"{api_ca}\"\ncontact = [\"mailto:ops@example.test\"]\n\
             challenge = \"{challenge}\"\n{http_listen}names = [{names}]\n\
             storage = \"acme\"\norders_per_hour = 36000\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            dir_url = p.directory,
            api_ca = p.api_ca.display(),
        ),
    )
    .unwrap();
    path
}

/// `openssl s_client` for `name`, verifying against pebble's issuing root: whether the chain
/// verified, and the output.
fn verified(port: u16, root: &Path, name: &str) -> (bool, String) {
    let o = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-servername",
            name,
            "-verify_hostname",
            name,
            "-verify_return_error",
        ])
        .arg("-CAfile")
        .arg(root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = text(&o.stdout);
    // (s_client prints "Verify return code: 0 (ok)" after a handshake that failed too.)
    let ok =
        out.contains("-----BEGIN CERTIFICATE-----") && out.contains("Verify return code: 0 (ok)");
    (ok, out)
}

fn issues_and_serves(challenge: &str) {
    if pebble::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (port, http) = (free_port(), free_port());
    let p = Pebble::start(Options::new(port, http));
    let http = (challenge == "http-01").then_some(http);
    let cfg = config(dir.path(), &p, port, challenge, http);
    let proxy = common::start(&cfg);
    let root = dir.path().join("pebble-root.pem");
    std::fs::write(&root, p.issuing_root()).unwrap();
    for name in ["a.test", "b.test", "www.b.test"] {
        let served = eventually(Duration::from_secs(60), || verified(port, &root, name).0);
        assert!(
            served,
            "{name}: {}\nproxy: {}\npebble: {}",
            verified(port, &root, name).1,
            proxy.stderr.lock().unwrap(),
            p.log()
        );
    }
    // Bundles are 0600 files in the storage directory, which is a source like any other.
    use std::os::unix::fs::PermissionsExt;
    let bundle = dir.path().join("acme/b.test.pem");
    assert_eq!(
        std::fs::metadata(&bundle).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let m = metrics(&proxy);
    assert_eq!(
        metric(&m, "edgetls_acme_orders_total{result=\"issued\"}"),
        Some(2.0),
        "{m}"
    );
    // A client asking for the origin through the new certificate gets there.
    let o = Command::new("curl")
        .args(["-s", "--max-time", "5", "--cacert"])
        .arg(&root)
        .args(["--resolve", &format!("a.test:{port}:127.0.0.1")])
        .arg(format!("https://a.test:{port}/"))
        .output()
        .unwrap();
    assert_eq!(text(&o.stdout), "hello from the origin\n");
}

#[test]
fn tls_alpn_01_is_answered_on_the_proxys_own_listener() {
    issues_and_serves("tls-alpn-01");
}

#[test]
fn http_01_is_answered_on_http_listen() {
    issues_and_serves("http-01");
}

#[test]
fn a_bad_acme_section_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("proxy.toml");
    for (section, says) in [
        (
            "challenge = \"http-01\"\nnames = [\"a.test\"]",
            "needs http_listen",
        ),
        ("names = [\"*.a.test\"]", "only be proven with dns-01"),
        (
            "challenge = \"dns-01\"\nnames = [\"a.test\"]",
            "needs dns_hook",
        ),
        ("names = [\"a.test\", \"a.test\"]", "named twice"),
        ("eab_kid = \"k\"\nnames = [\"a.test\"]", "go together"),
    ] {
        std::fs::write(
            &cfg,
            format!(
                "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[certificates]\nsources = []\n\n\
                 [acme]\ndirectory = \"https://ca.invalid/dir\"\nstorage = \"acme\"\n{section}\n"
            ),
        )
        .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_edgetls"))
            .args(["proxy", "--check", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{section}: {err}");
        assert!(
            err.contains(says) && err.contains("proxy.toml:7"),
            "{section}: {err}"
        );
    }
}

/// A self-signed certificate for `names`, valid from `from_days_ago` days ago until
/// `until_days` days from now, as a bundle (certificate, key).
fn seeded_bundle(names: &[&str], from_days_ago: i64, until_days: i64) -> Vec<u8> {
    use edgetls_testkit::certs::{leaf_for, unix_now};
    let now = unix_now();
    let (cert, key) = leaf_for(
        names,
        now - from_days_ago * 86_400,
        now + until_days * 86_400,
        None,
    );
    let mut pem = cert.to_pem().unwrap();
    pem.extend(key.private_key_to_pem_pkcs8().unwrap());
    pem
}

#[test]
fn a_certificate_past_its_renewal_point_serves_until_its_successor_is_stored() {
    if pebble::skip() {
        return;
    }
    let (dir, port, p) = with_pebble();
    let names = r#""a.test", "b.test,www.b.test", "c.test""#;
    let cfg = config_for(dir.path(), &p, port, "tls-alpn-01", None, names);
    // a.test: 60 days into a 61-day life (renewal due); b.test: fresh, but www.b.test was
    // added to its set since (due); c.test: 1 day into 90 (not due).
    std::fs::create_dir(dir.path().join("acme")).unwrap();
    let old = seeded_bundle(&["a.test"], 60, 1);
    std::fs::write(dir.path().join("acme/a.test.pem"), &old).unwrap();
    std::fs::write(
        dir.path().join("acme/b.test.pem"),
        seeded_bundle(&["b.test"], 1, 89),
    )
    .unwrap();
    let fresh = seeded_bundle(&["c.test"], 1, 89);
    std::fs::write(dir.path().join("acme/c.test.pem"), &fresh).unwrap();
    let old_leaf = openssl::x509::X509::from_pem(&old)
        .unwrap()
        .to_der()
        .unwrap();
    let fresh_leaf = openssl::x509::X509::from_pem(&fresh)
        .unwrap()
        .to_der()
        .unwrap();
    let proxy = common::start(&cfg);
    let root = dir.path().join("pebble-root.pem");
    std::fs::write(&root, p.issuing_root()).unwrap();
    // Until the renewal lands, the old certificate is what a.test gets — never nothing.
    let mut saw_old = false;
    let renewed = eventually(Duration::from_secs(60), || {
        let leaf = common::served_cert(proxy.addr, "a.test");
        saw_old |= leaf == old_leaf;
        assert!(leaf == old_leaf || verified(port, &root, "a.test").0);
        leaf != old_leaf
    });
    assert!(renewed, "{}", proxy.stderr.lock().unwrap());
    assert!(verified(port, &root, "a.test").0);
    let widened = eventually(Duration::from_secs(30), || {
        verified(port, &root, "www.b.test").0
    });
    assert!(widened, "{}", proxy.stderr.lock().unwrap());
    // c.test is not due: still the seeded certificate, and no order was made for it.
    assert_eq!(common::served_cert(proxy.addr, "c.test"), fresh_leaf);
    let m = metrics(&proxy);
    assert_eq!(
        metric(&m, "edgetls_acme_orders_total{result=\"issued\"}"),
        Some(2.0),
        "{m}"
    );
    let _ = saw_old; // served first unless the renewal won the race with the first handshake
}

/// Every `.pem` in `storage` is a whole bundle: certificates, then the leaf's key.
fn bundles_whole(storage: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(storage).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".pem") || name.starts_with('.') {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let certs =
            openssl::x509::X509::stack_from_pem(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let key = openssl::pkey::PKey::private_key_from_pem(&body)
            .unwrap_or_else(|e| panic!("{name} has no key: {e}"));
        assert!(certs.len() >= 2, "{name}: a chain");
        assert!(
            certs[0].public_key().unwrap().public_eq(&key),
            "{name}: its key"
        );
        n += 1;
    }
    n
}

/// The pending orders on disk: bundle file name → the key stored for it (PEM).
fn pending_keys(storage: &Path) -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir(storage.join("orders")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let path = e.ok()?.path();
        let name = path.file_name()?.to_string_lossy().into_owned();
        let bundle = name.strip_suffix(".json")?.to_owned();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        Some((bundle, v["key_pem"].as_str()?.to_owned()))
    })
    .collect()
}

#[test]
fn kill_9_during_100_concurrent_orders_loses_nothing_and_leaves_no_half_file() {
    if pebble::skip() {
        return;
    }
    let names: Vec<String> = (0..100).map(|i| format!("\"site{i:03}.test\"")).collect();
    let names = names.join(", ");
    // Caught mid-order in one of a few tries (each try from an empty store).
    for attempt in 1..=5 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let p = Pebble::start(Options::new(port, free_port()));
        let cfg = config_for(dir.path(), &p, port, "tls-alpn-01", None, &names);
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(
            &cfg,
            text.replace("orders_per_hour", "concurrency = 100\norders_per_hour"),
        )
        .unwrap();
        let storage = dir.path().join("acme");
        let mut first = common::start(&cfg);
        // Mid-way: some stored, some finalizing.
        let stored_now = || {
            std::fs::read_dir(&storage).map_or(0, |d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".pem"))
                    .count()
            })
        };
        let caught = eventually(Duration::from_secs(30), || {
            stored_now() >= 10 && !pending_keys(&storage).is_empty()
        });
        first.child.kill().unwrap(); // SIGKILL
        first.child.wait().unwrap();
        let pending = pending_keys(&storage);
        let stored = bundles_whole(&storage);
        if !caught || pending.is_empty() || stored == 100 {
            eprintln!("attempt {attempt}: no order caught in flight ({stored} stored); again");
            continue;
        }
        eprintln!(
            "killed with {stored} stored and {} orders finalizing",
            pending.len()
        );
        // Restarted: the pending orders are resumed for their stored keys, the rest ordered.
        let second = common::start(&cfg);
        let all = eventually(Duration::from_secs(90), || {
            bundles_whole(&storage) == 100 && pending_keys(&storage).is_empty()
        });
        assert!(all, "{}\n{}", second.stderr.lock().unwrap(), p.log());
        for (bundle, key_pem) in &pending {
            let body = std::fs::read(storage.join(bundle)).unwrap();
            let key = openssl::pkey::PKey::private_key_from_pem(&body).unwrap();
            let stored_key = openssl::pkey::PKey::private_key_from_pem(key_pem.as_bytes()).unwrap();
            assert!(
                key.public_eq(&stored_key),
                "{bundle}: resumed with the key stored before the kill"
            );
        }
        let left: Vec<_> = std::fs::read_dir(&storage)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
        return;
    }
    panic!("no order was ever caught in flight in 5 attempts");
}

#[test]
fn renew_and_orders_through_the_admin_socket() {
    if pebble::skip() {
        return;
    }
    let (dir, port, p) = with_pebble();
    let cfg = config(dir.path(), &p, port, "tls-alpn-01", None);
    let body = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        body.replace(
            "[[routes]]",
            "[admin]\nsocket = \"admin.sock\"\n\n[[routes]]",
        ),
    )
    .unwrap();
    let proxy = common::start(&cfg);
    let root = dir.path().join("pebble-root.pem");
    std::fs::write(&root, p.issuing_root()).unwrap();
    assert!(eventually(Duration::from_secs(60), || verified(
        port, &root, "a.test"
    )
    .0));
    let first = common::served_cert(proxy.addr, "a.test");
    let sock = dir.path().join("admin.sock");
    let edgetls = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_edgetls"))
            .arg("certs")
            .args(args)
            .args(["--socket", sock.to_str().unwrap()])
            .output()
            .unwrap();
        (o.status.code(), text(&o.stdout), text(&o.stderr))
    };
    let (code, out, err) = edgetls(&["orders"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("\"a.test\"") && out.contains("\"www.b.test\""),
        "{out}"
    );
    let (code, out, err) = edgetls(&["renew", "www.b.test"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("b.test.pem"), "{out}");
    let (code, _, err) = edgetls(&["renew", "unknown.test"]);
    assert!(
        code == Some(1) && err.contains("not one of [acme] names"),
        "{err}"
    );
    // a.test is untouched by b.test's renewal; a renewal of a.test replaces its certificate.
    assert_eq!(common::served_cert(proxy.addr, "a.test"), first);
    let (code, _, err) = edgetls(&["renew", "a.test"]);
    assert_eq!(code, Some(0), "{err}");
    assert_ne!(common::served_cert(proxy.addr, "a.test"), first);
    assert!(verified(port, &root, "a.test").0);
}

/// A proxy with the demo's certificates (a default among them) and `[acme] on_demand`.
fn on_demand_config(dir: &Path, p: &Pebble, port: u16, allow: &str) -> std::path::PathBuf {
    let multicert = common::pki(&dir.join("demo"));
    let (origin, _) = origin("hello\n");
    let path = dir.join("proxy.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nworkers = 1\nmetrics = \"127.0.0.1:0\"\n\n\
             [certificates]\nsources = [\"{}\"]\n\n\
             [acme]\ndirectory = \"{}\"\nca_bundle = \"{}\"\nstorage = \"acme\"\n\
             orders_per_hour = 36000\non_demand = true\n{allow}\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            multicert.display(),
            p.directory,
            p.api_ca.display(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn on_demand_issues_during_the_first_handshake_for_an_allowed_name_only() {
    if pebble::skip() {
        return;
    }
    let (dir, port, p) = with_pebble();
    let cfg = on_demand_config(
        dir.path(),
        &p,
        port,
        "on_demand_suffixes = [\"ondemand.test\"]",
    );
    let proxy = common::start(&cfg);
    let root = dir.path().join("pebble-root.pem");
    std::fs::write(&root, p.issuing_root()).unwrap();
    // The account opens in the background: until then a name gets the default at once.
    assert!(eventually(Duration::from_secs(10), || {
        text(
            &Command::new("curl")
                .args(["-s"])
                .arg(format!("http://{}/metrics", proxy.metrics.unwrap()))
                .output()
                .unwrap()
                .stdout,
        )
        .contains("edgetls_acme_orders_in_flight")
    }));
    std::thread::sleep(Duration::from_millis(500));
    // The very first handshake for a new allowed name gets a certificate from the CA.
    let started = std::time::Instant::now();
    let (ok, out) = verified(port, &root, "shop.ondemand.test");
    let took = started.elapsed();
    assert!(ok, "{out}\n{}\n{}", proxy.stderr.lock().unwrap(), p.log());
    eprintln!("first handshake for a new name, certificate issued meanwhile: {took:?}");
    assert!(dir.path().join("acme/shop.ondemand.test.pem").exists());
    // A name outside the allow-list gets the default certificate at once and never reaches
    // the CA; nor does a malformed one.
    let default_leaf = common::served_cert(proxy.addr, "nope.example");
    let demo_default = common::served_cert(proxy.addr, "default.demo.test");
    assert_eq!(default_leaf, demo_default);
    let m = metrics(&proxy);
    assert_eq!(
        metric(&m, "edgetls_acme_orders_total{result=\"issued\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "edgetls_acme_orders_total{result=\"failed\"}").unwrap_or(0.0),
        0.0,
        "{m}"
    );
    // Served from then on without waiting.
    assert!(verified(port, &root, "shop.ondemand.test").0);
}

#[test]
fn on_demand_asks_the_allow_list_url_once_per_refused_name() {
    if pebble::skip() {
        return;
    }
    // The operator's allow-list service: 200 for yes.test, 404 for anything else; counts asks.
    let ask = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ask_addr = ask.local_addr().unwrap();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = std::sync::Arc::clone(&asked);
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for conn in ask.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            let _ = std::io::BufReader::new(&conn).read_line(&mut line);
            let domain = line
                .split("domain=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("")
                .to_string();
            seen.lock().unwrap().push(domain.clone());
            let status = if domain == "yes.test" {
                "200 OK"
            } else {
                "404 Not Found"
            };
            let _ = conn.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    let (dir, port, p) = with_pebble();
    let cfg = on_demand_config(
        dir.path(),
        &p,
        port,
        &format!("on_demand_ask = \"http://{ask_addr}/allowed\""),
    );
    let proxy = common::start(&cfg);
    let root = dir.path().join("pebble-root.pem");
    std::fs::write(&root, p.issuing_root()).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let (ok, out) = verified(port, &root, "yes.test");
    assert!(ok, "{out}\n{}", proxy.stderr.lock().unwrap());
    let demo_default = common::served_cert(proxy.addr, "default.demo.test");
    for _ in 0..3 {
        assert_eq!(common::served_cert(proxy.addr, "no.test"), demo_default);
    }
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked.iter().filter(|d| *d == "no.test").count(),
        1,
        "refusals are remembered: {asked:?}"
    );
    let m = metrics(&proxy);
    assert_eq!(
        metric(&m, "edgetls_acme_orders_total{result=\"issued\"}"),
        Some(1.0),
        "{m}"
    );
}
