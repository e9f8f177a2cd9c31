//! The connection as a stream: bad frames, pipelining with answers out of order, timeouts,
//! graceful shutdown.

use crate::common::{connect, setup, ski, start};
use edgetls_keyless_proto::{ErrorCode, Opcode, Operation, Packet};
use edgetls_keyserver::{Authz, ServerOptions};
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn malformed_frames_get_format_errors_and_the_connection_goes_on() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let mut c = connect(&pki, server.addr, Some("edge-1")).unwrap();
    // Two opcode items: a repeated tag.
    c.send_raw(&[1, 0, 0, 8, 0, 0, 0, 41, 0x11, 0, 1, 0xf1, 0x11, 0, 1, 0xf1]);
    let p = c.recv().unwrap();
    assert_eq!((p.id, p.op.error_code()), (41, Some(ErrorCode::FORMAT)));
    // An item running past the body.
    c.send_raw(&[1, 0, 0, 4, 0, 0, 0, 42, 0x11, 0, 9, 0xf1]);
    assert_eq!(c.recv().unwrap().op.error_code(), Some(ErrorCode::FORMAT));
    // Version 2.
    c.send_raw(&[2, 0, 0, 4, 0, 0, 0, 43, 0x11, 0, 1, 0xf1]);
    let p = c.recv().unwrap();
    assert_eq!(
        (p.id, p.op.error_code()),
        (43, Some(ErrorCode::VERSION_MISMATCH))
    );
    let r = c.call(
        44,
        Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), vec![1; 32]),
    );
    assert_eq!(r.opcode, Opcode::RESPONSE);
    // Garbage that promises a long body and never sends it: the connection is closed after
    // the read timeout, the server carries on.
    drop(c);
    let server2 = start(&pki, Authz::open(), {
        let mut o = ServerOptions::default();
        o.read_timeout = Duration::from_millis(300);
        o
    });
    let mut c = connect(&pki, server2.addr, Some("edge-1")).unwrap();
    c.send_raw(&[1, 0, 0xff, 0xff, 0, 0, 0, 1, 0x11, 0x00]);
    assert!(
        c.recv().is_none(),
        "a stalled frame must end the connection"
    );
    assert!(connect(&pki, server2.addr, Some("edge-1")).is_ok());
}

#[test]
fn many_pipelined_requests_are_all_answered_each_by_its_id() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let mut c = connect(&pki, server.addr, Some("edge-1")).unwrap();
    let n = 3000u32;
    let mut batch = Vec::new();
    for id in 1..=n {
        let op = match id % 3 {
            0 => Operation::ping(id.to_be_bytes().to_vec()),
            1 => Operation::request(
                Opcode::ECDSA_SIGN_SHA256,
                ski(&keys.p256),
                vec![id as u8; 32],
            ),
            _ => Operation::request(
                Opcode::RSA_PSS_SIGN_SHA256,
                ski(&keys.rsa),
                vec![id as u8; 32],
            ),
        };
        batch.extend(Packet::new(id, op).to_bytes().unwrap());
    }
    // Write everything before reading anything (3000 x 1 KiB: the server must keep answering
    // while it reads, or both sides' buffers fill up and this write never finishes).
    c.send_raw(&batch);
    let mut seen = HashSet::new();
    let mut in_order = true;
    for expect in 1..=n {
        let p = c.recv().expect("every request is answered");
        in_order &= p.id == expect;
        let want = if p.id % 3 == 0 {
            Opcode::PONG
        } else {
            Opcode::RESPONSE
        };
        assert_eq!(p.op.opcode, want, "id {}", p.id);
        if p.id % 3 == 0 {
            assert_eq!(p.op.payload, p.id.to_be_bytes());
        }
        assert!(seen.insert(p.id), "id {} answered twice", p.id);
    }
    assert_eq!(seen.len(), n as usize);
    // Pings skip the crypto pool, so answers overtake earlier signatures.
    assert!(
        !in_order,
        "answers came back strictly in order: not concurrent"
    );
}

#[test]
fn graceful_shutdown_answers_what_is_in_flight_then_closes() {
    let (pki, keys) = setup();
    let mut opts = ServerOptions::default();
    opts.delay = Duration::from_millis(300);
    let server = start(&pki, Authz::open(), opts);
    let addr = server.addr;
    let mut c = connect(&pki, addr, Some("edge-1")).unwrap();
    for id in 1..=20 {
        c.send(&Packet::new(
            id,
            Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), vec![1; 32]),
        ));
    }
    std::thread::sleep(Duration::from_millis(100));
    let stopper = std::thread::spawn(move || server.shutdown());
    let mut answered = 0;
    while let Some(p) = c.recv() {
        assert_eq!(p.op.opcode, Opcode::RESPONSE);
        answered += 1;
    }
    assert_eq!(
        answered, 20,
        "requests in flight at shutdown are still answered"
    );
    stopper.join().unwrap();
    assert!(
        connect(&pki, addr, Some("edge-1")).is_err(),
        "no new connections after shutdown"
    );
}

#[test]
fn metrics_count_requests_errors_and_latency() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let mut c = connect(&pki, server.addr, Some("edge-1")).unwrap();
    for id in 1..=5 {
        c.call(
            id,
            Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), vec![1; 32]),
        );
    }
    c.call(
        6,
        Operation::request(
            Opcode::ECDSA_SIGN_SHA256,
            edgetls_keyless_proto::Ski([0; 20]),
            vec![1; 32],
        ),
    );
    let text = server.metrics.render();
    assert!(
        text.contains("keyless_requests_total{opcode=\"ecdsa_sign_sha256\"} 6"),
        "{text}"
    );
    assert!(
        text.contains("keyless_errors_total{code=\"key_not_found\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("keyless_request_duration_seconds_count{opcode=\"ecdsa_sign_sha256\"} 6"),
        "{text}"
    );
    assert!(text.contains("keyless_connections_open 1"), "{text}");
}
