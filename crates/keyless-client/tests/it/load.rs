//! Many requests in flight at once from one client.

use crate::client;
use edgetls_keyless_proto::{Opcode, Operation};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, ski, start};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn ten_thousand_requests_in_flight_all_succeed() {
    let (pki, keys) = setup();
    let mut opts = ServerOptions::default();
    opts.delay = Duration::from_millis(20);
    let server = start(&pki, Authz::open(), opts);
    let c = client(&pki, &[server.addr], |cfg| {
        cfg.request_timeout = Duration::from_secs(30)
    });
    assert!(c.wait_connected(2, Duration::from_secs(5)));
    let (tx, rx) = mpsc::channel();
    let key = ski(&keys.p256);
    for i in 0..10_000u32 {
        let tx = tx.clone();
        let op = if i % 2 == 0 {
            Operation::ping(i.to_be_bytes().to_vec())
        } else {
            Operation::request(Opcode::ECDSA_SIGN_SHA256, key, vec![i as u8; 32])
        };
        c.submit(op, move |r| tx.send(r).unwrap());
    }
    drop(tx);
    let results: Vec<_> = rx.iter().collect();
    assert_eq!(results.len(), 10_000);
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(server.metrics.requests(Opcode::ECDSA_SIGN_SHA256), 5_000);
    assert_eq!(c.metrics().in_flight(), 0);
}
