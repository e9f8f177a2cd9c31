//! Key-exchange groups: what each client offer negotiates, counted by group in
//! `edgetls_handshakes_group_total`; a configured group the library lacks named at load (or,
//! marked `?`, left out). The clients are this build's own OpenSSL: on 3.5 and later they offer
//! X25519MLKEM768 as browsers do; on 3.0 they cannot, and the test checks what a list written
//! for a post-quantum build does there.

mod common;

use common::{Proxy, metric, metrics, origin, pki, start, text};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

const NAME: &str = "site000001.demo.test";

/// Writes the proxy's configuration (with `groups` as the policy's default rule when given).
fn config(dir: &Path, groups: Option<&str>) -> std::path::PathBuf {
    let multicert = pki(dir);
    let (origin, _) = origin("ok\n");
    let policy = match groups {
        Some(g) => {
            std::fs::write(
                dir.join("policy.toml"),
                format!("[[sni]]\nfqdn = \"*\"\ngroups = \"{g}\"\n"),
            )
            .unwrap();
            "[policy]\nfile = \"policy.toml\"\n\n"
        }
        None => "",
    };
    let path = dir.join("proxy.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\nmetrics = \"127.0.0.1:0\"\n\n\
             [certificates]\nsources = [\"{}\"]\n\n{policy}[[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            multicert.display()
        ),
    )
    .unwrap();
    path
}

/// One TLS 1.3 exchange offering `groups` (in order); the answer's body.
fn exchange(p: &Proxy, groups: &str) -> String {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_groups_list(groups).unwrap();
    b.set_min_proto_version(Some(openssl::ssl::SslVersion::TLS1_3))
        .unwrap();
    let tcp = TcpStream::connect(p.addr).unwrap();
    let mut tls = b.build().connect(NAME, tcp).unwrap();
    write!(tls, "GET / HTTP/1.1\r\nHost: {NAME}\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    text(&answer)
}

fn count(p: &Proxy, group: &str) -> f64 {
    let m = metrics(p);
    metric(
        &m,
        &format!("edgetls_handshakes_group_total{{group=\"{group}\"}}"),
    )
    .unwrap_or(0.0)
}

fn post_quantum() -> bool {
    edgetls_tls::groups::has("X25519MLKEM768")
}

#[test]
fn each_offer_negotiates_its_group_and_is_counted_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&config(dir.path(), None));
    for (offer, expect) in [("X25519", "X25519"), ("P-256", "P-256"), ("P-384", "P-384")] {
        let before = count(&p, expect);
        assert!(exchange(&p, offer).ends_with("ok\n"), "{offer}");
        assert_eq!(count(&p, expect), before + 1.0, "{offer}");
    }
    if post_quantum() {
        // The library's default prefers the hybrid group when the client offers it (as
        // browsers do, with X25519 beside it).
        assert!(exchange(&p, "X25519MLKEM768:X25519").ends_with("ok\n"));
        assert_eq!(count(&p, "X25519MLKEM768"), 1.0);
    }
    assert_eq!(count(&p, "other"), 0.0);
}

#[test]
fn a_group_the_library_lacks_is_named_at_load_unless_marked_optional() {
    let dir = tempfile::tempdir().unwrap();
    let strict = config(dir.path(), Some("X25519MLKEM768:X25519:NoSuchGroup"));
    let out = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args(["proxy", "--check", "--config", strict.to_str().unwrap()])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let missing = if post_quantum() {
        "NoSuchGroup"
    } else {
        "X25519MLKEM768"
    };
    assert!(
        err.contains(&format!("\"{missing}\"")) && err.contains("policy.toml"),
        "{err}"
    );

    // Marked optional, what the library lacks is left out and the rest served.
    let dir = tempfile::tempdir().unwrap();
    let p = start(&config(
        dir.path(),
        Some("?X25519MLKEM768:X25519:?NoSuchGroup"),
    ));
    assert!(exchange(&p, "X25519").ends_with("ok\n"));
    assert_eq!(count(&p, "X25519"), 1.0);
    if post_quantum() {
        assert!(exchange(&p, "X25519MLKEM768:X25519").ends_with("ok\n"));
        assert_eq!(count(&p, "X25519MLKEM768"), 1.0);
    }
}
