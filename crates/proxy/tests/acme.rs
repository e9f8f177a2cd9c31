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

fn config(
    dir: &Path,
    p: &Pebble,
    port: u16,
    challenge: &str,
    http: Option<u16>,
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
             challenge = \"{challenge}\"\n{http_listen}names = [\"a.test\", \"b.test,www.b.test\"]\n\
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
    if !pebble::available() {
        eprintln!("pebble is not installed: skipped (apt-get install pebble)");
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
