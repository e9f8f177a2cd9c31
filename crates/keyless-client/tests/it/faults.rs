//! Key servers dying, hanging, coming back, or never there.

use crate::client;
use edgetls_keyless_client::ClientError;
use edgetls_keyless_proto::{Opcode, Operation};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, ski, start, start_on};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[test]
fn with_one_of_two_servers_killed_under_load_no_request_fails() {
    let (pki, keys) = setup();
    let a = start(&pki, Authz::open(), ServerOptions::default());
    let b = start(&pki, Authz::open(), ServerOptions::default());
    let c = Arc::new(client(&pki, &[a.addr, b.addr], |_| {}));
    assert!(c.wait_connected(4, Duration::from_secs(5)));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let key = ski(&keys.p256);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (c, stop, ok, failed) = (
                Arc::clone(&c),
                Arc::clone(&stop),
                Arc::clone(&ok),
                Arc::clone(&failed),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match c.call_blocking(Operation::request(
                        Opcode::ECDSA_SIGN_SHA256,
                        key,
                        vec![1; 32],
                    )) {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("failed: {e}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = ok.load(Ordering::Relaxed);
    a.kill();
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    workers.into_iter().for_each(|w| w.join().unwrap());
    let after = ok.load(Ordering::Relaxed) - before;
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed although server B was up"
    );
    assert!(
        before > 0 && after > 0,
        "traffic flowed before ({before}) and after ({after}) the kill"
    );
    assert!(c.connected() == 2, "only B's two connections are up");
}

#[test]
fn the_client_recovers_by_itself_when_its_only_server_restarts() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let addr = server.addr;
    let c = client(&pki, &[addr], |cfg| {
        cfg.request_timeout = Duration::from_millis(300)
    });
    let sign = || c.call_blocking(crate::p256_sign(&keys, 1));
    assert!(sign().is_ok());
    server.kill();
    let down = sign().unwrap_err();
    assert!(matches!(down, ClientError::NoServer { .. }), "{down:?}");
    let _back = start_on(
        &pki,
        &addr.to_string(),
        Authz::open(),
        ServerOptions::default(),
    );
    let until = Instant::now() + Duration::from_secs(10);
    while sign().is_err() {
        assert!(
            Instant::now() < until,
            "the client did not reconnect by itself"
        );
    }
    assert!(
        c.metrics().reconnects() >= 3,
        "two initial connections and at least one reconnect"
    );
}

#[test]
fn with_every_server_down_requests_fail_within_their_deadline() {
    let (pki, keys) = setup();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap(); // closed again at once
    let c = client(&pki, &[dead], |cfg| {
        cfg.request_timeout = Duration::from_millis(500)
    });
    let started = Instant::now();
    let e = c.call_blocking(crate::p256_sign(&keys, 1)).unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "no hang: {took:?}"
    );
    let text = e.to_string();
    assert!(
        matches!(e, ClientError::NoServer { .. })
            && text.contains(&dead.to_string())
            && text.contains("refused"),
        "{text}"
    );
}

#[test]
fn a_hung_server_gets_no_traffic_after_its_health_check_fails() {
    let (pki, keys) = setup();
    // Accepts connections and requests, answers nothing for 10 s.
    let hung = start(&pki, Authz::open(), {
        let mut o = ServerOptions::default();
        o.delay = Duration::from_secs(10);
        o
    });
    let good = start(&pki, Authz::open(), ServerOptions::default());
    let c = client(&pki, &[hung.addr, good.addr], |cfg| {
        cfg.request_timeout = Duration::from_secs(2)
    });
    assert!(c.wait_connected(2, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(500)); // several failed probes of the hung server
    assert_eq!(
        c.connected(),
        2,
        "only the good server's connections are in use"
    );
    for i in 0..200u8 {
        let r = c.call_blocking(Operation::request(
            Opcode::ECDSA_SIGN_SHA256,
            ski(&keys.p256),
            vec![i; 32],
        ));
        assert!(r.is_ok(), "{r:?}");
    }
    assert!(
        c.metrics()
            .render()
            .contains("keyless_client_health_failures_total"),
        "counted"
    );
    assert_eq!(good.metrics.requests(Opcode::ECDSA_SIGN_SHA256), 200);
}

#[test]
fn a_client_certificate_the_server_refuses_is_reported() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let specs = vec![edgetls_keyless_client::ServerSpec::new(
        server.addr.to_string(),
        "localhost",
    )];
    let mut cfg = edgetls_keyless_client::ClientConfig::new(
        specs,
        pki.path("rogue.pem"),
        pki.path("rogue.key"),
        pki.path("ca.pem"),
    );
    cfg.request_timeout = Duration::from_millis(500);
    let c = edgetls_keyless_client::KeylessClient::new(cfg).unwrap();
    let e = c.call_blocking(crate::p256_sign(&keys, 1)).unwrap_err();
    assert!(matches!(e, ClientError::NoServer { .. }), "{e:?}");
    // Missing files are configuration errors naming the file.
    let mut cfg =
        edgetls_keyless_client::ClientConfig::new(vec![], "/nope.pem", "/nope.key", "/nope-ca.pem");
    assert!(
        edgetls_keyless_client::KeylessClient::new(cfg.clone())
            .unwrap_err()
            .to_string()
            .contains("no key servers")
    );
    cfg.servers
        .push(edgetls_keyless_client::ServerSpec::new("127.0.0.1:1", "x"));
    assert!(
        edgetls_keyless_client::KeylessClient::new(cfg)
            .unwrap_err()
            .to_string()
            .contains("/nope.pem")
    );
}
