//! OCSP stapling through the proxy: responses from a real responder (`openssl ocsp`), beside
//! the certificates of a crt-list; `openssl s_client -status` through the proxy, the metrics,
//! and what `edgetls certs check` says.

mod common;

use common::{metric, metrics, origin, start, text};
use edgetls_testkit::ocsp::{fixture, stapled_status};
use edgetls_testkit::s_client::SClient;
use std::process::Command;

#[test]
fn the_proxy_staples_good_responses_and_reports_every_state() {
    let (dir, list) = fixture();
    let (origin, _) = origin("ok\n");
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\nmetrics = \"127.0.0.1:0\"\n\n\
             [certificates]\nsources = [\"{}\"]\n\n[[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            list.display()
        ),
    )
    .unwrap();
    let proxy = start(&config);
    let status = |sni: &str, v: &str| {
        let out = SClient::connect(proxy.addr)
            .name(sni)
            .args(["-status", v])
            .run()
            .stdout;
        assert!(out.contains("BEGIN CERTIFICATE"), "{sni} {v}: {out}");
        stapled_status(&out)
    };
    for v in ["-tls1_2", "-tls1_3"] {
        assert_eq!(status("good.example", v).as_deref(), Some("good"), "{v}");
        assert_eq!(status("rsa.example", v).as_deref(), Some("good"), "{v}");
        assert_eq!(
            status("revoked.example", v).as_deref(),
            Some("revoked"),
            "{v}: stapled as the responder said"
        );
        assert_eq!(status("forged.example", v), None, "{v}");
    }
    let m = metrics(&proxy);
    let state = |s: &str| metric(&m, &format!("edgetls_ocsp_responses{{state=\"{s}\"}}"));
    // chained.example was never asked for: its response is not checked yet.
    assert_eq!(
        (
            state("good"),
            state("revoked"),
            state("invalid"),
            state("unchecked")
        ),
        (Some(2.0), Some(1.0), Some(1.0), Some(1.0)),
        "{m}"
    );
    let next = metric(&m, "edgetls_ocsp_next_update_seconds").unwrap();
    assert!(
        (6.0 * 86_400.0..=7.0 * 86_400.0 + 60.0).contains(&next),
        "{next}"
    );

    // certs check checks every response, and names the bad ones.
    let out = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args(["certs", "check", list.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains("ocsp: 3 good, 1 invalid, 1 revoked"),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "revoked.pem: OCSP response says the certificate is REVOKED (stapled as it is"
        ) && stderr.contains(
            "forged.pem: OCSP response invalid: the response is not for this certificate"
        ),
        "{stderr}"
    );
}

#[test]
fn the_proxy_fetches_responses_from_the_responder_the_certificates_name() {
    use edgetls_testkit::ocsp::{free_port, pki_with_responder, start_responder};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    pki_with_responder(d, Some(&format!("http://127.0.0.1:{port}")));
    // HAProxy's per-line switch: only `good` asks; the proxy-wide default stays off.
    let list = d.join("crt-list");
    std::fs::write(&list, "good.pem [ocsp-update on]\nrsa.pem\n").unwrap();
    let _responder = start_responder(d, port, &["-ndays", "7"]);
    let (origin, _) = origin("ok\n");
    let config = d.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\nmetrics = \"127.0.0.1:0\"\n\n\
             [certificates]\nsources = [\"{}\"]\nocsp_update_min_delay = \"200ms\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            list.display()
        ),
    )
    .unwrap();
    let proxy = start(&config);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let m = metrics(&proxy);
        if metric(&m, "edgetls_ocsp_updates_total{result=\"ok\"}") == Some(1.0) {
            assert_eq!(metric(&m, "edgetls_ocsp_update_chains"), Some(1.0), "{m}");
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "no response fetched\n{m}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = |sni: &str| {
        let out = SClient::connect(proxy.addr)
            .name(sni)
            .args(["-status"])
            .run()
            .stdout;
        assert!(out.contains("BEGIN CERTIFICATE"), "{sni}: {out}");
        stapled_status(&out)
    };
    assert_eq!(status("good.example").as_deref(), Some("good"));
    assert_eq!(status("rsa.example"), None, "its line does not ask");
    let m = metrics(&proxy);
    assert_eq!(
        metric(&m, "edgetls_ocsp_responses{state=\"good\"}"),
        Some(1.0),
        "{m}"
    );
}
