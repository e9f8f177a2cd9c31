//! The crate's example, run as a user would: real curl and a v2 header in front of it.

use edgetls_proxy_protocol::{TlsFacts, encode_v2};
use edgetls_testkit::examples::ServingExample;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

fn ask(origin: &ServingExample, first_bytes: &[u8]) -> String {
    let mut conn = TcpStream::connect(origin.addr).unwrap();
    conn.write_all(first_bytes).unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn origin_reads_curls_v1_header_and_a_v2_header_with_tls_facts() {
    let mut origin = ServingExample::start("origin", &[]);
    let out = Command::new("curl")
        .args(["-sS", "--haproxy-protocol"])
        .arg(format!("http://{}/", origin.addr))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{body}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(body.starts_with("PROXY v1: client 127.0.0.1:"), "{body}");
    assert!(body.contains(&format!("to {}", origin.addr)), "{body}");
    assert_eq!(origin.next_line(), body.trim_end());

    let client = "192.0.2.7:50000".parse().unwrap();
    let mut tls = TlsFacts::default();
    tls.sni = Some("www.example.com".into());
    tls.version = Some("TLSv1.3".into());
    let mut header = Vec::new();
    encode_v2(client, origin.addr, Some(&tls), &mut header);
    let answer = ask(&origin, &header);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        answer.contains("PROXY v2: client 192.0.2.7:50000")
            && answer.contains("server name www.example.com")
            && answer.contains("TLS (client flags 0x01)"),
        "{answer}"
    );

    let answer = ask(&origin, b"");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("no PROXY header"), "{answer}");
}
