//! The crate's example, serving the test PKI's key directory to a real client.

use edgetls_keyless_proto::{Opcode, Operation, Packet};
use edgetls_testkit::examples::ServingExample;
use edgetls_testkit::{connect, setup, ski};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{MessageDigest, hash};

#[test]
fn serve_dir_signs_with_a_key_of_the_directory_and_stops_at_end_of_input() {
    let (pki, keys) = setup();
    let [dir, cert, key, ca] = ["keys", "server.pem", "server.key", "ca.pem"].map(|f| pki.path(f));
    let mut server = ServingExample::start(
        "serve_dir",
        &[
            dir.as_os_str(),
            cert.as_os_str(),
            key.as_os_str(),
            ca.as_os_str(),
        ],
    );
    assert_eq!(server.next_line(), "serving 4 keys, skipped 2");
    let mut client = connect(&pki, server.addr, Some("edge-1")).unwrap();
    let digest = hash(MessageDigest::sha256(), b"handshake transcript").unwrap();
    let answer = client.call(
        7,
        Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), digest.to_vec()),
    );
    assert_eq!(answer.opcode, Opcode::RESPONSE, "{answer:?}");
    let sig = EcdsaSig::from_der(&answer.payload).expect("a DER ECDSA signature");
    assert!(sig.verify(&digest, &keys.p256.ec_key().unwrap()).unwrap());
    // A client without a certificate is refused (in TLS 1.3, at its first read).
    let refused = match connect(&pki, server.addr, None) {
        Err(_) => true,
        Ok(mut c) => {
            c.send(&Packet::new(1, Operation::ping(vec![])));
            c.recv().is_none()
        }
    };
    assert!(refused);
    drop(client);
    let (rest, ok) = server.finish();
    assert!(ok && rest.contains(&"stopped".to_string()), "{rest:?}");
}
