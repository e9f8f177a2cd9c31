//! The crate's example: a TLS server whose key is on a real key server, asked by curl.

use edgetls_keyless_proto::Opcode;
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::examples::ServingExample;
use edgetls_testkit::{setup, site_cert, start};
use std::ffi::OsString;
use std::process::Command;

#[test]
fn remote_key_serves_curl_over_tls_13_and_12_with_signatures_from_the_key_server() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let site = pki.path("site.pem");
    let pem = site_cert(&pki, &keys.p256, &["site.test"])
        .to_pem()
        .unwrap();
    std::fs::write(&site, pem).unwrap();
    let mut args: Vec<OsString> = vec![server.addr.to_string().into(), "localhost".into()];
    args.extend(["edge-1.pem", "edge-1.key", "ca.pem"].map(|f| pki.path(f).into()));
    args.push(site.into());
    let args: Vec<_> = args.iter().map(|a| a.as_os_str()).collect();
    let mut tls = ServingExample::start("remote_key", &args);

    for (max, version) in [("1.3", "TLSv1.3"), ("1.2", "TLSv1.2")] {
        let before = server.metrics.requests(Opcode::ECDSA_SIGN_SHA256);
        let port = tls.addr.port();
        let out = Command::new("curl")
            .args(["-sS", "--tls-max", max, "--cacert"])
            .arg(pki.path("ca.pem"))
            .args(["--resolve", &format!("site.test:{port}:127.0.0.1")])
            .arg(format!("https://site.test:{port}/"))
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{body}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            body.starts_with(version) && body.contains("signed by the key server"),
            "{body}"
        );
        assert!(tls.next_line().contains(&format!(": {version} ")));
        assert_eq!(
            server.metrics.requests(Opcode::ECDSA_SIGN_SHA256),
            before + 1
        );
    }
}
