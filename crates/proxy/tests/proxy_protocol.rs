//! Behind a load balancer: HAProxy (`send-proxy-v2`) in front of `edgetls proxy`, curl's
//! PROXY v1 (`--haproxy-protocol`), headers refused from anyone else and required from the
//! load balancer; and a route that sends PROXY v2 with the TLS TLVs to its origin — HAProxy
//! (`accept-proxy`) reading the client's address and the authority, and the raw header.

mod common;

use common::{metric, metrics, origin, pki, start, text};
use edgetls_proxy_protocol::{Parsed, parse, tlv};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn haproxy(dir: &Path, name: &str, config: &str) -> Haproxy {
    let cfg = dir.join(format!("{name}.cfg"));
    std::fs::write(&cfg, config).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy (Debian's haproxy package)");
    Haproxy(child)
}

fn wait_listening(port: u16) {
    edgetls_testkit::wait::listening(port, "the server");
}

/// curl to `name` at 127.0.0.1:`port`, from `source`; (exit code, body).
fn curl_from(ca: &Path, name: &str, port: u16, source: &str, extra: &[&str]) -> (i32, String) {
    let o = Command::new("curl")
        .args(["-s", "--max-time", "5", "--cacert", ca.to_str().unwrap()])
        .args(["--interface", source])
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .args(extra)
        .arg(format!("https://{name}:{port}/"))
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), text(&o.stdout))
}

#[test]
fn behind_haproxy_and_curl_the_client_address_goes_through_to_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let ca = dir.path().join("ca.pem");
    // The origin: HAProxy reading the PROXY v2 header edgetls sends, answering with what it says.
    let echo_port = edgetls_testkit::net::free_port();
    let _echo = haproxy(
        dir.path(),
        "echo",
        &format!(
            "defaults\n  mode http\n  timeout connect 5s\n  timeout client 5s\n  timeout server 5s\n\
             frontend echo\n  bind 127.0.0.1:{echo_port} accept-proxy\n  \
             http-request return status 200 content-type text/plain lf-string \"src=%[src] authority=%[fc_pp_authority]\\n\"\n"
        ),
    );
    wait_listening(echo_port);
    let (raw, raw_seen) = origin("raw\n");
    std::fs::write(
        dir.path().join("policy.toml"),
        "[[sni]]\nfqdn = \"site000002.demo.test\"\nalpn = [\"h2\", \"http/1.1\"]\n",
    )
    .unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\nmetrics = \"127.0.0.1:0\"\n\
             proxy_protocol_from = [\"127.0.0.1\"]\n\n\
             [certificates]\nsources = [\"{}\"]\n\n[policy]\nfile = \"policy.toml\"\n\n\
             [[routes]]\nfqdn = \"site000002.demo.test\"\norigin = \"{raw}\"\nsend_proxy = \"v2\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"127.0.0.1:{echo_port}\"\nsend_proxy = \"v2\"\n",
            multicert.display()
        ),
    )
    .unwrap();
    let p = start(&config);
    let edge = p.addr.port();
    // The load balancer: HAProxy in TCP mode, sending PROXY v2 to edgetls.
    let lb_port = edgetls_testkit::net::free_port();
    let _lb = haproxy(
        dir.path(),
        "lb",
        &format!(
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 5s\n  timeout server 5s\n\
             frontend lb\n  bind 127.0.0.1:{lb_port}\n  default_backend edges\n\
             backend edges\n  server edge 127.0.0.1:{edge} send-proxy-v2\n"
        ),
    );
    wait_listening(lb_port);
    let name = "site000001.demo.test";

    // Through HAProxy, from 127.0.0.2: the origin sees 127.0.0.2 and the name asked for.
    let (code, body) = curl_from(&ca, name, lb_port, "127.0.0.2", &[]);
    assert_eq!(
        (code, body.as_str()),
        (0, "src=127.0.0.2 authority=site000001.demo.test\n"),
        "proxy: {}",
        p.stderr.lock().unwrap()
    );
    // curl's own PROXY v1 header, from the trusted address.
    let (code, body) = curl_from(&ca, name, edge, "127.0.0.1", &["--haproxy-protocol"]);
    assert_eq!(
        (code, body.as_str()),
        (0, "src=127.0.0.1 authority=site000001.demo.test\n")
    );
    // From the trusted address a header is required: a bare ClientHello is refused.
    let (code, _) = curl_from(&ca, name, edge, "127.0.0.1", &[]);
    assert_ne!(code, 0);
    // From anyone else a header is refused, and none is needed.
    let (code, _) = curl_from(&ca, name, edge, "127.0.0.2", &["--haproxy-protocol"]);
    assert_ne!(code, 0);
    let (code, body) = curl_from(&ca, name, edge, "127.0.0.2", &[]);
    assert_eq!(
        (code, body.as_str()),
        (0, "src=127.0.0.2 authority=site000001.demo.test\n")
    );

    // The raw header: the TLS facts as TLVs, over HTTP/2.
    // (That origin answers HTTP/1.1 whatever it is asked: only what it read counts here.)
    curl_from(
        &ca,
        "site000002.demo.test",
        lb_port,
        "127.0.0.2",
        &["--http2"],
    );
    let seen = raw_seen.lock().unwrap().clone();
    let Ok(Parsed::Header(h, used)) = parse(&seen) else {
        panic!("no PROXY header first: {:?}", text(&seen));
    };
    assert!(
        seen[used..].starts_with(b"PRI * HTTP/2.0"),
        "then the client's bytes: {:?}",
        text(&seen[used..])
    );
    let client: SocketAddr = h.source.unwrap();
    assert_eq!(client.ip().to_string(), "127.0.0.2");
    // The address the client connected to: the load balancer's, as its header said.
    assert_eq!(h.destination.unwrap().port(), lb_port);
    assert_eq!(h.authority(), Some("site000002.demo.test"));
    assert_eq!(h.tlv(tlv::ALPN), Some(&b"h2"[..]));
    let ssl = h.ssl().unwrap();
    assert_eq!((ssl.client, ssl.verify), (tlv::CLIENT_SSL, 0));
    let sub = |k| ssl.sub(k).map(text);
    assert_eq!(sub(tlv::SSL_VERSION).as_deref(), Some("TLSv1.3"));
    assert!(sub(tlv::SSL_CIPHER).is_some_and(|c| c.starts_with("TLS_")));

    let m = metrics(&p);
    let count = |result: &str| {
        metric(
            &m,
            &format!("edgetls_proxy_protocol_headers_total{{result=\"{result}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(
        (count("accepted"), count("missing"), count("refused")),
        // Through HAProxy: the wait for its port, two curls; and curl's own v1.
        (4.0, 1.0, 1.0),
        "{m}"
    );
}
