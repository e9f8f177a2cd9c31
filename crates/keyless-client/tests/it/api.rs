//! Operations through every entry point: async on another runtime, blocking, callback, fd.

use crate::client;
use edgetls_keyless_client::{ClientError, SignScheme};
use edgetls_keyless_proto::{ErrorCode, HashAlgorithm, Opcode, Operation, Ski};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, ski, start};
use openssl::ecdsa::EcdsaSig;
use openssl::rsa::Padding;
use openssl::sign::Verifier;
use std::time::Duration;

#[test]
fn async_sign_and_decrypt_verify_with_the_public_keys() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let c = client(&pki, &[server.addr], |_| {});
    // The caller's own runtime (current-thread), distinct from the client's.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let digest = openssl::sha::sha256(b"transcript");
        let sig = c
            .sign(
                ski(&keys.p256),
                SignScheme::Ecdsa(HashAlgorithm::Sha256),
                &digest,
            )
            .await
            .unwrap();
        assert!(
            EcdsaSig::from_der(&sig)
                .unwrap()
                .verify(&digest, &keys.p256.ec_key().unwrap())
                .unwrap()
        );
        let sig = c
            .sign(
                ski(&keys.rsa),
                SignScheme::RsaPkcs1(HashAlgorithm::Sha256),
                &digest,
            )
            .await
            .unwrap();
        let mut v = Verifier::new(openssl::hash::MessageDigest::sha256(), &keys.rsa).unwrap();
        v.update(b"transcript").unwrap();
        assert!(v.verify(&sig).unwrap());
        let sig = c
            .sign(
                ski(&keys.rsa),
                SignScheme::RsaPss(HashAlgorithm::Sha256),
                &digest,
            )
            .await
            .unwrap();
        let mut v = Verifier::new(openssl::hash::MessageDigest::sha256(), &keys.rsa).unwrap();
        v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        v.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH)
            .unwrap();
        v.update(b"transcript").unwrap();
        assert!(v.verify(&sig).unwrap());
        let sig = c
            .sign(ski(&keys.ed25519), SignScheme::Ed25519, b"transcript")
            .await
            .unwrap();
        assert!(
            Verifier::new_without_digest(&keys.ed25519)
                .unwrap()
                .verify_oneshot(&sig, b"transcript")
                .unwrap()
        );
        let rsa = keys.rsa.rsa().unwrap();
        let mut ct = vec![0; 256];
        rsa.public_encrypt(&[5; 48], &mut ct, Padding::PKCS1)
            .unwrap();
        let block = c.decrypt(ski(&keys.rsa), &ct).await.unwrap();
        assert_eq!(
            (&block[..2], &block[256 - 48..]),
            (&[0u8, 2][..], &[5u8; 48][..])
        );
    });
    assert!(SignScheme::RsaPss(HashAlgorithm::Sha1).opcode().is_none());
    assert_eq!(
        SignScheme::RsaPss(HashAlgorithm::Sha512).opcode().unwrap(),
        Opcode::RSA_PSS_SIGN_SHA512
    );
    assert_eq!(
        SignScheme::Ecdsa(HashAlgorithm::Md5Sha1).opcode().unwrap(),
        Opcode::ECDSA_SIGN_MD5SHA1
    );
    assert_eq!(
        SignScheme::RsaPkcs1(HashAlgorithm::Sha512)
            .opcode()
            .unwrap(),
        Opcode::RSA_SIGN_SHA512
    );
}

#[test]
fn server_errors_are_final_and_say_who_answered_what() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let c = client(&pki, &[server.addr], |_| {});
    let e = c
        .call_blocking(Operation::request(
            Opcode::ECDSA_SIGN_SHA256,
            Ski([1; 20]),
            vec![0; 32],
        ))
        .unwrap_err();
    match &e {
        ClientError::Server { code, server: who } => {
            assert_eq!(*code, ErrorCode::KEY_NOT_FOUND);
            assert_eq!(who, &server.addr.to_string());
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("key not found"), "{e}");
    assert_eq!(c.metrics().retries(), 0, "an error answer is not retried");
    let ok = c.call_blocking(Operation::request(
        Opcode::ECDSA_SIGN_SHA256,
        ski(&keys.p256),
        vec![0; 32],
    ));
    assert!(ok.is_ok());
    assert!(
        c.metrics()
            .render()
            .contains("keyless_client_server_errors_total{code=\"key_not_found\"} 1")
    );
}

#[test]
fn callback_and_fd_submission_from_plain_threads() {
    let (pki, keys) = setup();
    let mut opts = ServerOptions::default();
    opts.delay = Duration::from_millis(200);
    let server = start(&pki, Authz::open(), opts);
    let c = client(&pki, &[server.addr], |_| {});
    let submitted = c
        .submit_fd(Operation::request(
            Opcode::ECDSA_SIGN_SHA256,
            ski(&keys.p256),
            vec![3; 32],
        ))
        .unwrap();
    assert!(
        submitted.try_take().is_none(),
        "the answer cannot be there yet (200 ms delay)"
    );
    let answer = submitted.wait().unwrap();
    assert_eq!(answer.opcode, Opcode::RESPONSE);
    let (tx, rx) = std::sync::mpsc::channel();
    let caller = std::thread::current().id();
    c.submit(Operation::ping(b"cb".to_vec()), move |r| {
        tx.send((
            r.map(|op| op.payload),
            std::thread::current().id() != caller,
        ))
        .unwrap();
    });
    let (payload, on_client_thread) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(payload.unwrap(), b"cb");
    assert!(on_client_thread);
}

#[test]
fn a_full_queue_is_a_clear_error_not_a_wait() {
    let (pki, keys) = setup();
    let mut opts = ServerOptions::default();
    opts.delay = Duration::from_millis(300);
    let server = start(&pki, Authz::open(), opts);
    let c = client(&pki, &[server.addr], |cfg| cfg.max_in_flight = 5);
    assert!(c.wait_connected(2, Duration::from_secs(5)));
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..10u8 {
        let tx = tx.clone();
        c.submit(
            Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), vec![i; 32]),
            move |r| tx.send(r).unwrap(),
        );
    }
    let results: Vec<_> = (0..10)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(ClientError::QueueFull { limit: 5 })))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((ok, full), (5, 5), "{results:?}");
}

#[test]
fn the_client_can_be_dropped_inside_an_async_task() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = client(&pki, &[server.addr], |_| {});
        let sig = c
            .sign(
                ski(&keys.p256),
                SignScheme::Ecdsa(HashAlgorithm::Sha256),
                &[1; 32],
            )
            .await;
        assert!(sig.is_ok());
        drop(c); // must not panic ("cannot drop a runtime in a context where blocking is not allowed")
    });
}
