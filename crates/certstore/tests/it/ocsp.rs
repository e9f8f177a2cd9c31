//! OCSP stapling from response files, the responses made by a real responder
//! (`openssl ocsp -index … -port …`) and checked with `openssl s_client -status`.

use crate::handshake::serve;
use edgetls_certstore::ocsp::OcspState;
use edgetls_certstore::{CertStore, LoadOptions, Source};
use edgetls_testkit::ocsp::{fixture as setup, stapled_status};
use edgetls_testkit::s_client::SClient;
use std::net::SocketAddr;
use std::sync::Arc;

/// What `openssl s_client -status` saw for `sni`: Some(cert status line) when a response was
/// stapled, None when none was.
fn stapled(addr: SocketAddr, sni: &str, extra: &[&str]) -> Option<String> {
    let text = SClient::connect(addr)
        .name(sni)
        .args(["-ign_eof", "-status"])
        .args(extra)
        .run()
        .stdout;
    assert!(
        text.contains("hello"),
        "{sni} {extra:?}: no handshake\n{text}"
    );
    stapled_status(&text)
}

#[test]
fn good_responses_are_stapled_and_bad_ones_never() {
    let (_dir, list) = setup();
    let (store, report) =
        CertStore::load(vec![Source::CrtList(list)], LoadOptions::default()).unwrap();
    assert_eq!(report.failed, 0, "{:#?}", report.problems);
    let store = Arc::new(store);
    let checks: Vec<(String, OcspState)> = store
        .check_ocsp_files()
        .into_iter()
        .map(|(p, c)| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                c.state,
            )
        })
        .collect();
    assert_eq!(checks[0], ("good.pem".into(), OcspState::Good));
    assert_eq!(checks[1], ("rsa.pem".into(), OcspState::Good));
    assert_eq!(checks[2], ("revoked.pem".into(), OcspState::Revoked));
    assert!(
        matches!(&checks[3], (f, OcspState::Invalid(why)) if f == "forged.pem" && why.contains("not for this certificate")),
        "{checks:?}"
    );
    assert_eq!(
        checks[4],
        ("chained.pem".into(), OcspState::Good),
        "issuer from the chain"
    );

    let addr = serve(Arc::clone(&store), "127.0.0.1:0");
    for v in ["-tls1_2", "-tls1_3"] {
        for sni in ["good.example", "rsa.example", "chained.example"] {
            assert_eq!(
                stapled(addr, sni, &[v]).as_deref(),
                Some("good"),
                "{sni} {v}"
            );
        }
        // A verified revocation is stapled as the responder said it (as HAProxy does).
        assert_eq!(
            stapled(addr, "revoked.example", &[v]).as_deref(),
            Some("revoked"),
            "{v}"
        );
        assert_eq!(stapled(addr, "forged.example", &[v]), None, "{v}");
    }
    // Every entry has been prepared by now: the summary has no unchecked response left.
    let summary = store.ocsp_summary();
    let count = |s: &str| summary.by_state.iter().find(|x| x.0 == s).unwrap().1;
    assert_eq!(
        (
            count("good"),
            count("revoked"),
            count("invalid"),
            count("unchecked")
        ),
        (3, 1, 1, 0),
        "{summary:?}"
    );
    let in_a_week = summary.earliest_next_update.unwrap() - unix_now();
    assert!(
        (6 * 86_400..=7 * 86_400 + 60).contains(&in_a_week),
        "{in_a_week}"
    );
}

#[test]
fn an_expired_response_is_not_stapled() {
    let (_dir, list) = setup();
    // Judged ten days on, the responder's 7-day responses are past their nextUpdate.
    let mut options = LoadOptions::default();
    options.now = Some(unix_now() + 10 * 86_400);
    let (store, _) = CertStore::load(vec![Source::CrtList(list)], options).unwrap();
    let store = Arc::new(store);
    let addr = serve(Arc::clone(&store), "127.0.0.1:0");
    assert_eq!(stapled(addr, "good.example", &["-tls1_3"]), None);
    let states: Vec<OcspState> = store
        .check_ocsp_files()
        .into_iter()
        .map(|c| c.1.state)
        .collect();
    assert_eq!(states[0], OcspState::Expired);
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_broken_issuer_file_costs_the_staple_not_the_certificate() {
    let (dir, list) = setup();
    std::fs::write(dir.path().join("good.pem.issuer"), "not a certificate\n").unwrap();
    let (store, report) =
        CertStore::load(vec![Source::CrtList(list)], LoadOptions::default()).unwrap();
    assert_eq!(report.failed, 0, "{:#?}", report.problems);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.to_string().contains("good.pem.issuer")
                && p.to_string().contains("not stapled")),
        "{:#?}",
        report.problems
    );
    let addr = serve(Arc::new(store), "127.0.0.1:0");
    assert_eq!(stapled(addr, "good.example", &["-tls1_3"]), None);
    assert_eq!(
        stapled(addr, "rsa.example", &["-tls1_3"]).as_deref(),
        Some("good")
    );
}

/// Asserts `f` becomes true within `secs` seconds.
fn eventually(secs: u64, what: &str, f: impl FnMut() -> bool) {
    let held = edgetls_testkit::wait::eventually(std::time::Duration::from_secs(secs), f);
    assert!(held, "timed out: {what}");
}

#[test]
fn responses_are_fetched_from_the_responder_the_certificate_names_and_refreshed() {
    use edgetls_certstore::{OcspUpdater, UpdateOptions};
    use edgetls_testkit::ocsp::{free_port, pki_with_responder, revoke, start_responder};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    pki_with_responder(d, Some(&format!("http://127.0.0.1:{port}")));
    // No response files: `good` and `rsa` ask for updates, `chained` (issuer in its chain) gets
    // them from the updater's default, `revoked` is left alone.
    let list = d.join("crt-list");
    std::fs::write(
        &list,
        "good.pem [ocsp-update on]\nrsa.pem [ocsp-update on]\nchained.pem\n\
         revoked.pem [ocsp-update off]\n",
    )
    .unwrap();
    let (store, report) =
        CertStore::load(vec![Source::CrtList(list)], LoadOptions::default()).unwrap();
    assert_eq!(report.failed, 0, "{:#?}", report.problems);
    let store = Arc::new(store);
    let addr = serve(Arc::clone(&store), "127.0.0.1:0");
    assert_eq!(
        stapled(addr, "good.example", &["-tls1_3"]),
        None,
        "nothing yet"
    );

    let mut responder = Some(start_responder(d, port, &["-ndays", "7"]));
    let updater = OcspUpdater::spawn(&store, {
        let mut o = UpdateOptions::default();
        o.default_on = true;
        o.min_delay = Duration::from_millis(500);
        o.max_delay = Duration::from_secs(1);
        o.timeout = Duration::from_secs(5);
        o
    })
    .unwrap();
    eventually(20, "three responses fetched", || {
        updater.stats().fetched >= 3
    });
    assert_eq!(updater.stats().chains, 3, "{:?}", updater.stats());
    for v in ["-tls1_2", "-tls1_3"] {
        for sni in ["good.example", "rsa.example", "chained.example"] {
            assert_eq!(
                stapled(addr, sni, &[v]).as_deref(),
                Some("good"),
                "{sni} {v}"
            );
        }
        assert_eq!(
            stapled(addr, "revoked.example", &[v]),
            None,
            "{v}: update off"
        );
    }

    // The responder goes away: fetches fail, the last good response goes on being stapled.
    responder.take();
    let failed = updater.stats().failed;
    eventually(20, "a failed fetch", || updater.stats().failed > failed);
    assert_eq!(
        stapled(addr, "good.example", &["-tls1_3"]).as_deref(),
        Some("good")
    );

    // Back, and it now says `good.example` is revoked: within a refresh, the revocation is
    // stapled instead of the old good response.
    revoke(d, 0x10);
    responder = Some(start_responder(d, port, &["-ndays", "7"]));
    eventually(20, "the revocation seen", || {
        store
            .ocsp_summary()
            .by_state
            .iter()
            .any(|(s, n)| *s == "revoked" && *n == 1)
    });
    assert_eq!(
        stapled(addr, "good.example", &["-tls1_3"]).as_deref(),
        Some("revoked")
    );
    assert_eq!(
        stapled(addr, "rsa.example", &["-tls1_3"]).as_deref(),
        Some("good")
    );
    drop(responder);
}
