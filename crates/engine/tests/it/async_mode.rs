//! Async mode under delay, faults and disconnects.

use crate::common::{Mode, connector, context, handshake, handshake_with, remote, serve};
use edgetls_engine::stats;
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, site_cert, start, start_on};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

fn delayed(delay: Duration) -> ServerOptions {
    let mut o = ServerOptions::default();
    o.delay = delay;
    o
}

use edgetls_testkit::wait::eventually;

#[test]
fn two_hundred_handshakes_at_50ms_on_one_thread_overlap() {
    let _g = crate::serial();
    let (pki, keys) = setup();
    let ks = start(&pki, Authz::open(), delayed(Duration::from_millis(50)));
    let remote = remote(&pki, ks.addr, Duration::from_secs(5));
    let cert = site_cert(&pki, &keys.p256, &["p256.test"]);
    // One server thread: `serve` runs every connection on a single current-thread runtime.
    let tls = serve(context(&cert, remote, Mode::Async), Mode::Async);
    let addr = tls.addr;
    let client = connector(&pki, SslVersion::TLS1_3, "ECDSA+SHA256");
    let started = Instant::now();
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || handshake_with(&client, addr, "p256.test"))
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap().unwrap(), "ok\n");
    }
    let took = started.elapsed();
    eprintln!("200 handshakes at 50 ms on one thread: {took:?}");
    // One after another they would take 200 × 50 ms = 10 s; a blocked thread cannot beat that.
    assert!(
        took < Duration::from_secs(5),
        "200 handshakes took {took:?}: the server thread was blocked"
    );
    // The client has its answer a moment before the server task counts it.
    assert!(
        eventually(Duration::from_secs(2), || tls.counts.ok.load(Relaxed)
            == 200),
        "the server counted {} handshakes",
        tls.counts.ok.load(Relaxed)
    );
}

#[test]
fn key_server_killed_mid_handshake_then_back() {
    let _g = crate::serial();
    let (pki, keys) = setup();
    let ks = start(&pki, Authz::open(), delayed(Duration::from_millis(400)));
    let ks_addr = ks.addr;
    let remote = remote(&pki, ks_addr, Duration::from_millis(1500));
    let cert = site_cert(&pki, &keys.p256, &["p256.test"]);
    let tls = serve(
        context(&cert, Arc::clone(&remote), Mode::Async),
        Mode::Async,
    );
    let (addr, pki) = (tls.addr, Arc::new(pki));
    let inflight: Vec<_> = (0..10)
        .map(|_| {
            let pki = Arc::clone(&pki);
            std::thread::spawn(move || {
                handshake(&pki, addr, "p256.test", SslVersion::TLS1_3, "ECDSA+SHA256")
            })
        })
        .collect();
    // Every handshake is now waiting for the key server; kill it.
    assert!(eventually(Duration::from_secs(2), || ks
        .metrics
        .requests(edgetls_keyless_proto::Opcode::ECDSA_SIGN_SHA256)
        >= 10
        || stats().waiting.load(Relaxed) >= 10));
    ks.kill();
    for h in inflight {
        let r = h.join().unwrap();
        assert!(
            r.is_err(),
            "a handshake whose key server died must fail: {r:?}"
        );
    }
    // The client sees the alert a moment before the server task counts the failure.
    assert!(
        eventually(Duration::from_secs(2), || tls.counts.failed.load(Relaxed)
            == 10),
        "the server counted {} failed handshakes",
        tls.counts.failed.load(Relaxed)
    );
    // The key server comes back on the same port: the next handshakes succeed.
    let _back = start_on(
        &pki,
        &ks_addr.to_string(),
        Authz::open(),
        ServerOptions::default(),
    );
    let ok = eventually(Duration::from_secs(5), || {
        handshake(&pki, addr, "p256.test", SslVersion::TLS1_3, "ECDSA+SHA256").is_ok()
    });
    assert!(
        ok,
        "handshakes must succeed again once the key server is back"
    );
    assert_eq!(
        handshake(&pki, addr, "p256.test", SslVersion::TLS1_2, "ECDSA+SHA256").unwrap(),
        "ok\n"
    );
}

/// Sends a ClientHello and hangs up without waiting for the answer.
fn hello_and_leave(connector: &SslConnector, addr: std::net::SocketAddr) {
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_nonblocking(true).unwrap();
    // The ClientHello goes out, then the handshake would block on the answer: drop it all.
    let r = connector.connect("p256.test", tcp);
    assert!(r.is_err(), "a non-blocking handshake cannot finish at once");
}

#[test]
fn clients_leaving_while_jobs_are_paused_crash_nothing_and_leak_nothing() {
    let _g = crate::serial();
    let (pki, keys) = setup();
    let ks = start(&pki, Authz::open(), delayed(Duration::from_millis(30)));
    let remote = remote(&pki, ks.addr, Duration::from_secs(2));
    let cert = site_cert(&pki, &keys.p256, &["p256.test"]);
    let tls = serve(context(&cert, remote, Mode::Async), Mode::Async);
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    let connector = b.build();
    let wakers_before = stats().live_wakers.load(Relaxed);
    let paused_before = stats().paused.load(Relaxed);
    // 1,000 departures (20 rounds of 50), on whichever OpenSSL the suite is built with (CI: 3.0,
    // 3.5 and 4.0).
    for round in 0..20 {
        for _ in 0..50 {
            hello_and_leave(&connector, tls.addr);
        }
        // Between rounds the server still completes a full handshake.
        let got = handshake(
            &pki,
            tls.addr,
            "p256.test",
            SslVersion::TLS1_3,
            "ECDSA+SHA256",
        );
        assert_eq!(got.as_deref(), Ok("ok\n"), "round {round}");
    }
    // Every job that paused for a departed client finished, and every SSL was freed after it.
    assert!(
        eventually(Duration::from_secs(5), || stats().waiting.load(Relaxed)
            == 0
            && stats().live_wakers.load(Relaxed) == wakers_before),
        "waiting {} live wakers {} (before {wakers_before})",
        stats().waiting.load(Relaxed),
        stats().live_wakers.load(Relaxed)
    );
    assert!(
        stats().paused.load(Relaxed) - paused_before >= 200,
        "the departing clients' handshakes must have reached the key server"
    );
}

/// One handshake of an `openssl` client against `ctx` through `edgetls_engine::accept`, expected
/// to fail: the server's error and the client's.
fn failed_handshake(
    pki: &edgetls_testkit::Pki,
    ctx: &openssl::ssl::SslContext,
) -> (edgetls_engine::EngineError, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn({
        let pki_ca = pki.path("ca.pem");
        move || {
            let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
            b.set_ca_file(pki_ca).unwrap();
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            b.build()
                .connect("p256.test", tcp)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    });
    let err = local.block_on(&rt, async {
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let ssl = openssl::ssl::Ssl::new(ctx).unwrap();
        edgetls_engine::accept(ssl, tcp).await.unwrap_err()
    });
    (err, client.join().unwrap().unwrap_err())
}

/// The reason and the detail of a failed handshake.
fn reason_of(e: &edgetls_engine::EngineError) -> (edgetls_engine::Failure, String) {
    match e {
        edgetls_engine::EngineError::Handshake { reason, detail } => (*reason, detail.clone()),
        other => panic!("not a handshake failure: {other}"),
    }
}

#[test]
fn a_remote_timeout_fails_the_handshake_by_the_deadline_with_the_reason() {
    let _g = crate::serial();
    let (pki, keys) = setup();
    // The key server answers after 600 ms; the client gives up after 200 ms.
    let slow = start(&pki, Authz::open(), delayed(Duration::from_millis(600)));
    let remote = remote(&pki, slow.addr, Duration::from_millis(200));
    let cert = site_cert(&pki, &keys.p256, &["p256.test"]);
    let (err, client_err) = failed_handshake(&pki, &context(&cert, remote, Mode::Async));
    // The remote key's own deadline ended it (not the 600 ms answer, which would have
    // completed the handshake): the reason says so and the detail names it. How long that
    // took is measured by the engine bench, not asserted here.
    let (reason, detail) = reason_of(&err);
    assert_eq!(reason.as_str(), "remote_timeout", "{detail}");
    assert!(detail.contains("no answer within"), "{detail}");
    // The client was told with an alert, not left to time out or see a reset.
    assert!(client_err.contains("SSL alert number 80"), "{client_err}");
}

#[test]
fn a_key_server_error_code_is_the_handshakes_reason() {
    let _g = crate::serial();
    let (pki, keys) = setup();
    let ks = start(&pki, Authz::open(), ServerOptions::default());
    let remote = remote(&pki, ks.addr, Duration::from_secs(2));
    // A key the key server does not hold: it answers KEY_NOT_FOUND.
    let stranger = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("P-256"),
    )
    .and_then(openssl::pkey::PKey::from_ec_key)
    .unwrap();
    let cert = site_cert(&pki, &stranger, &["p256.test"]);
    let (err, client_err) = failed_handshake(&pki, &context(&cert, remote, Mode::Async));
    let (reason, detail) = reason_of(&err);
    assert_eq!(
        reason,
        edgetls_engine::Failure::KeyServer(edgetls_keyless_proto::ErrorCode::KEY_NOT_FOUND),
        "{detail}"
    );
    assert_eq!(reason.as_str(), "key_server_key_not_found");
    assert!(detail.contains("key not found"), "{detail}");
    assert!(client_err.contains("SSL alert number 80"), "{client_err}");
    // Unreachable is another reason: nothing listens there.
    let nowhere = remote_unreachable(&pki);
    let cert = site_cert(&pki, &keys.p256, &["p256.test"]);
    let (err, _) = failed_handshake(&pki, &context(&cert, nowhere, Mode::Async));
    let (reason, detail) = reason_of(&err);
    assert!(
        matches!(reason.as_str(), "remote_unavailable" | "remote_timeout"),
        "{reason}: {detail}"
    );
}

/// A remote key whose only key server is an address nobody listens on.
fn remote_unreachable(pki: &edgetls_testkit::Pki) -> Arc<dyn edgetls_engine::RemoteKey> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = edgetls_keyless_client::ClientConfig::new(
        vec![edgetls_keyless_client::ServerSpec::new(
            format!("127.0.0.1:{port}"),
            "localhost",
        )],
        pki.path("edge-1.pem"),
        pki.path("edge-1.key"),
        pki.path("ca.pem"),
    );
    c.request_timeout = Duration::from_millis(500);
    let client = edgetls_keyless_client::KeylessClient::new(c).unwrap();
    Arc::new(edgetls_engine::KeylessKey::new(Arc::new(client)))
}

/// A remote key that records where its `start` ran, then forwards to a real one.
#[derive(Debug)]
struct Where {
    inner: Arc<dyn edgetls_engine::RemoteKey>,
    threads: std::sync::Mutex<Vec<(Option<String>, bool)>>,
}

impl edgetls_engine::RemoteKey for Where {
    fn start(&self, request: edgetls_engine::SignRequest, done: edgetls_engine::Done) {
        let here = std::thread::current().name().map(str::to_string);
        self.threads
            .lock()
            .unwrap()
            .push((here, edgetls_tls::in_async_job()));
        self.inner.start(request, done)
    }
}

#[test]
fn remote_operations_start_on_the_worker_that_drives_the_handshake_off_the_job() {
    let _g = crate::serial();
    let (pki, keys) = setup();
    let ks = start(&pki, Authz::open(), ServerOptions::default());
    let recorder = Arc::new(Where {
        inner: remote(&pki, ks.addr, Duration::from_secs(2)),
        threads: std::sync::Mutex::new(Vec::new()),
    });
    let cert = site_cert(&pki, &keys.p256, &["p256.test"]);
    let tls = serve(context(&cert, recorder.clone(), Mode::Async), Mode::Async);
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let got = handshake(&pki, tls.addr, "p256.test", version, "ECDSA+SHA256");
        assert_eq!(got.as_deref(), Ok("ok\n"), "{version:?}");
    }
    let threads = recorder.threads.lock().unwrap().clone();
    assert_eq!(
        threads.len(),
        2,
        "one remote signature per full handshake: {threads:?}"
    );
    for (name, on_job) in &threads {
        assert!(!on_job, "start ran on an ASYNC job's stack: {threads:?}");
        assert_eq!(
            name.as_deref(),
            Some(crate::common::SERVER_THREAD),
            "start ran on another thread than the worker: {threads:?}"
        );
    }
}
