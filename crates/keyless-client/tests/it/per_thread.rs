//! A client per worker thread: requests and answers stay on the thread that attached; other
//! threads go through the shared client; all count into one set of metrics.

use crate::p256_sign;
use edgetls_keyless_client::{ClientConfig, ClientError, PerThreadClient, ServerSpec};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{Pki, setup, start};
use openssl::ecdsa::EcdsaSig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

fn per_thread(pki: &Pki, server: SocketAddr) -> Arc<PerThreadClient> {
    let mut c = ClientConfig::new(
        vec![ServerSpec::new(server.to_string(), "localhost")],
        pki.path("edge-1.pem"),
        pki.path("edge-1.key"),
        pki.path("ca.pem"),
    );
    c.health_interval = Duration::from_millis(100);
    Arc::new(PerThreadClient::new(c).unwrap())
}

/// Submits `op` and waits for the result and the thread `done` ran on.
async fn submit(
    c: &PerThreadClient,
    op: edgetls_keyless_proto::Operation,
) -> (
    Result<edgetls_keyless_proto::Operation, ClientError>,
    std::thread::ThreadId,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    c.submit(op, move |r| {
        let _ = tx.send((r, std::thread::current().id()));
    });
    rx.await.unwrap()
}

#[test]
fn an_attached_worker_signs_on_its_own_thread_and_others_use_the_shared_client() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let c = per_thread(&pki, server.addr);
    let verify = |r: Result<edgetls_keyless_proto::Operation, ClientError>| {
        let sig = EcdsaSig::from_der(&r.unwrap().payload).unwrap();
        assert!(sig.verify(&[7; 32], &keys.p256.ec_key().unwrap()).unwrap());
    };

    // Two "workers", each a current-thread runtime on its own thread, as in the proxy.
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (c, op) = (Arc::clone(&c), p256_sign(&keys, 7));
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    c.attach().unwrap();
                    c.attach().unwrap(); // a second attach keeps the first client
                    let mut answers = Vec::new();
                    for _ in 0..20 {
                        answers.push(submit(&c, op.clone()).await);
                    }
                    answers
                })
            })
        })
        .collect();
    for w in workers {
        let me = w.thread().id();
        for (r, on) in w.join().unwrap() {
            assert_eq!(on, me, "the answer was handed to another thread");
            verify(r);
        }
    }

    // A thread that did not attach: the shared client, on a thread of its own.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (r, on) = rt.block_on(submit(&c, p256_sign(&keys, 7)));
    assert_ne!(on, std::thread::current().id());
    verify(r);

    // One set of counters for all three clients: 41 answers, and at least one connection
    // opened by each (each of the two workers and the shared client has its own).
    let m = c.metrics();
    assert_eq!(m.answered(), 41);
    assert!(m.reconnects() >= 3, "{} connections opened", m.reconnects());
}

#[test]
fn a_request_after_its_workers_runtime_is_gone_fails_instead_of_hanging() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let c = per_thread(&pki, server.addr);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { c.attach().unwrap() });
    drop(rt);
    // This thread is still attached, to a runtime that no longer runs: `done` is still called.
    let (tx, rx) = std::sync::mpsc::channel();
    c.submit(p256_sign(&keys, 1), move |r| {
        let _ = tx.send(r);
    });
    let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(matches!(r, Err(ClientError::Shutdown)), "{r:?}");
}
