//! The key server and the keyless client across TLS libraries: the key server is built on the
//! other library (on OpenSSL when this build is on AWS-LC, on AWS-LC when it is on OpenSSL) and
//! run as its own process, over TCP with mutual TLS; this build's proxy, whose keyless client
//! and remote-key hook are on this build's library, serves a name whose key only the key server
//! holds.

mod common;

use common::{curl, origin, pki, start};
use edgetls_testkit::{setup, site_cert};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Builds `edgetls-keyserver` on the library this build is not on; its path.
fn keyserver_on_the_other_library() -> (PathBuf, &'static str) {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let on_awslc = edgetls_tls::library::NAME == "AWS-LC";
    let (target, features, other): (PathBuf, &[&str], _) = if on_awslc {
        (ws.join("target"), &[], "OpenSSL")
    } else {
        (
            ws.join("target/aws-lc"),
            &["--features", "aws-lc"],
            "AWS-LC",
        )
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--locked", "-p", "edgetls-keyserver"])
        .args(features)
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&ws)
        .status()
        .unwrap();
    assert!(status.success(), "building the key server on {other}");
    (target.join("debug/edgetls-keyserver"), other)
}

/// The key server process (killed when dropped) and its address.
struct KeyServer(Child, SocketAddr);

impl Drop for KeyServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_keyserver(bin: &Path, kit: &edgetls_testkit::Pki) -> KeyServer {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--keys"])
        .arg(kit.path("keys"))
        .arg("--cert")
        .arg(kit.path("server.pem"))
        .arg("--key")
        .arg(kit.path("server.key"))
        .arg("--client-ca")
        .arg(kit.path("ca.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .find_map(|l| l.ok()?.rsplit(' ').next()?.parse::<SocketAddr>().ok())
        .expect("the key server's address");
    KeyServer(child, addr)
}

#[test]
fn a_key_server_on_the_other_library_signs_for_this_builds_proxy() {
    let (bin, other) = keyserver_on_the_other_library();
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let (kit, keys) = setup();
    let ks = run_keyserver(&bin, &kit);
    let (plain, _) = origin("signed elsewhere\n");
    std::fs::create_dir(dir.path().join("remote")).unwrap();
    for (name, key) in [("p256.test", &keys.p256), ("rsa.test", &keys.rsa)] {
        std::fs::write(
            dir.path().join(format!("remote/{name}.pem")),
            site_cert(&kit, key, &[name]).to_pem().unwrap(),
        )
        .unwrap();
    }
    let k = |f: &str| kit.path(f).display().to_string();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
         [certificates]\nsources = [\"{}\", \"{remote}\"]\n\n\
         [keyless]\nsources = [\"{remote}\"]\nservers = [\"{}\"]\nserver_name = \"localhost\"\n\
         cert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n\n\
         [[routes]]\nfqdn = \"*\"\norigin = \"{plain}\"\n",
        multicert.display(),
        ks.1,
        k("edge-1.pem"),
        k("edge-1.key"),
        k("ca.pem"),
        remote = dir.path().join("remote").display(),
    );
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let p = start(&path);
    // ECDSA and RSA (PSS in TLS 1.3, PKCS#1 in TLS 1.2): every signature is the key server's.
    for (name, tls) in [
        ("p256.test", "--tlsv1.3"),
        ("rsa.test", "--tlsv1.3"),
        ("rsa.test", "--tls-max"),
    ] {
        let mut extra = vec!["--http1.1", tls];
        if tls == "--tls-max" {
            extra.push("1.2");
        }
        let (code, body, err) = curl(&p, &kit.path("ca.pem"), name, &extra);
        assert_eq!(
            (code, body.as_str()),
            (0, "signed elsewhere\n"),
            "{name} {extra:?}, key server on {other}, proxy on {}: {err}",
            edgetls_tls::library::NAME
        );
    }
}
