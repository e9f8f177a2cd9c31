//! The crate's example: a policy file decides what `openssl s_client` gets per server name.

use crate::common::pki;
use edgetls_testkit::examples::ServingExample;
use edgetls_testkit::s_client::SClient;
use std::process::Command;

fn s_client(addr: std::net::SocketAddr, args: &[&str]) -> String {
    SClient::connect(addr).args(args).run().stdout
}

#[test]
fn serve_policy_decides_alpn_and_versions_per_name() {
    let pki = pki();
    let policy = pki.path("policy.toml");
    std::fs::write(
        &policy,
        "[[sni]]\nfqdn = \"h2.test\"\nalpn = [\"h2\", \"http/1.1\"]\n\n\
         [[sni]]\nfqdn = \"v13.test\"\nvalid_tls_version_min_in = \"TLSv1_3\"\n\n\
         [[sni]]\nfqdn = \"*\"\nalpn = [\"http/1.1\"]\n",
    )
    .unwrap();
    let certs = pki.path("certs");
    let mut server =
        ServingExample::start("serve_policy", &[policy.as_os_str(), certs.as_os_str()]);
    let file = policy.display().to_string();

    let out = s_client(
        server.addr,
        &["-servername", "h2.test", "-alpn", "h2,http/1.1"],
    );
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    assert_eq!(
        server.next_line(),
        format!("h2.test -> {file}:1: TLSv1.3, ALPN h2")
    );

    let out = s_client(
        server.addr,
        &["-servername", "a.test", "-alpn", "h2,http/1.1"],
    );
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
    assert_eq!(
        server.next_line(),
        format!("a.test -> {file}:9: TLSv1.3, ALPN http/1.1")
    );

    let out = s_client(server.addr, &["-servername", "v13.test", "-tls1_2"]);
    assert!(!out.contains("Cipher is ECDHE"), "{out}");
    assert!(server.next_line().starts_with("refused: "));

    // A broken policy file is refused with its line.
    std::fs::write(&policy, "[[sni]]\nfqdn = \"a.test\"\nalpn = [\"\"]\n").unwrap();
    let out = Command::new(edgetls_testkit::examples::example("serve_policy"))
        .args([&policy, &certs])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{file}:1: alpn protocol")), "{err}");
}
