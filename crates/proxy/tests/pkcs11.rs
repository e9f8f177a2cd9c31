//! A name whose private key exists only in a PKCS#11 token (SoftHSM2): the proxy holds its
//! certificate, the key server (`--pkcs11`) signs with the token, curl gets the page.

mod common;

use common::{curl, origin, start};
use edgetls_testkit::softhsm::SoftHsm;
use edgetls_testkit::{setup, site_cert};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::Stdio;

/// The key server binary, built beside `edgetls` by `cargo test --workspace`.
fn keyserver_bin() -> PathBuf {
    let bin =
        std::path::Path::new(env!("CARGO_BIN_EXE_edgetls")).with_file_name("edgetls-keyserver");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace) or cargo build -p edgetls-keyserver",
        bin.display()
    );
    bin
}

#[test]
fn curl_gets_a_name_whose_key_is_only_in_the_token() {
    let (kit, _) = setup();
    let hsm = SoftHsm::new("edge");
    let public = hsm.generate("EC:prime256v1", "hsm.test", 1);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("remote")).unwrap();
    std::fs::write(
        dir.path().join("remote/hsm.test.pem"),
        site_cert(&kit, &public, &["hsm.test"]).to_pem().unwrap(),
    )
    .unwrap();
    let metrics_port = edgetls_testkit::ocsp::free_port();
    let mut ks = hsm
        .command(keyserver_bin().to_str().unwrap())
        .args(["--listen", "127.0.0.1:0", "--pkcs11", &hsm.uri()])
        .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
        .args(kit.keyserver_tls_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(ks.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ks_addr = line.rsplit(' ').next().unwrap().trim().to_string();
    let (origin, _) = origin("from behind the token\n");
    let k = |f: &str| kit.path(f).display().to_string();
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
             [certificates]\nsources = [\"{remote}\"]\n\n\
             [keyless]\nsources = [\"{remote}\"]\nservers = [\"{ks_addr}\"]\n\
             server_name = \"localhost\"\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            k("edge-1.pem"),
            k("edge-1.key"),
            k("ca.pem"),
            remote = dir.path().join("remote").display(),
        ),
    )
    .unwrap();
    let p = start(&config);
    for tls in ["--tlsv1.3", "--tls-max"] {
        let extra: &[&str] = if tls == "--tls-max" {
            &["--tls-max", "1.2"]
        } else {
            &[tls]
        };
        let (code, body, err) = curl(&p, &kit.path("ca.pem"), "hsm.test", extra);
        assert_eq!(code, 0, "{err}\nproxy: {}", p.stderr.lock().unwrap());
        assert_eq!(body, "from behind the token\n");
    }
    // Both handshakes were signed by the token, through the key server.
    let mut http = std::net::TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
    std::io::Write::write_all(
        &mut http,
        b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut http, &mut text).unwrap();
    let signed: f64 = text
        .lines()
        .filter(|l| l.starts_with("keyless_requests_total{opcode=\"ecdsa_sign"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(signed >= 2.0, "{text}");
    let _ = ks.kill();
    let _ = ks.wait();
}
