//! The crate's example against a real key server over mutual TLS.

use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::examples::run_example;
use edgetls_testkit::{setup, start};

#[test]
fn ping_gets_a_pong_from_a_key_server() {
    let (pki, _keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let addr = server.addr.to_string();
    let [cert, key, ca] = ["edge-1.pem", "edge-1.key", "ca.pem"].map(|f| pki.path(f));
    let out = run_example(
        "ping",
        &[
            addr.as_ref(),
            "localhost".as_ref(),
            cert.as_os_str(),
            key.as_os_str(),
            ca.as_os_str(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sent 1024 bytes: header [01, 00, "), "{text}");
    assert!(text.contains(&format!("pong from {addr} in ")), "{text}");
    // A client certificate of another CA is refused by the server: the example says so.
    let rogue = std::process::Command::new(edgetls_testkit::examples::example("ping"))
        .args([
            addr.as_ref(),
            "localhost".as_ref(),
            pki.path("rogue.pem").as_os_str(),
        ])
        .arg(pki.path("rogue.key"))
        .arg(&ca)
        .output()
        .unwrap();
    assert!(!rogue.status.success());
}
