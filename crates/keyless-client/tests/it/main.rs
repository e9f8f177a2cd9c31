//! The client against real key servers over TCP with mutual TLS.

mod api;
mod examples;
mod faults;
mod load;
mod per_thread;

use edgetls_keyless_client::{ClientConfig, KeylessClient, ServerSpec};
use edgetls_testkit::Pki;
use std::net::SocketAddr;
use std::time::Duration;

/// A client of `servers` as "edge-1", with test-friendly timings, adjusted by `tweak`.
pub fn client(
    pki: &Pki,
    servers: &[SocketAddr],
    tweak: impl FnOnce(&mut ClientConfig),
) -> KeylessClient {
    let specs = servers
        .iter()
        .map(|a| ServerSpec::new(a.to_string(), "localhost"))
        .collect();
    let mut c = ClientConfig::new(
        specs,
        pki.path("edge-1.pem"),
        pki.path("edge-1.key"),
        pki.path("ca.pem"),
    );
    c.health_interval = Duration::from_millis(100);
    // Above every --delay the tests use: a delayed server delays its pongs too.
    c.health_timeout = Duration::from_secs(1);
    c.backoff_min = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    tweak(&mut c);
    KeylessClient::new(c).unwrap()
}

/// An ECDSA P-256 SHA-256 signature request for the test key set's P-256 key.
pub fn p256_sign(keys: &edgetls_testkit::Keys, byte: u8) -> edgetls_keyless_proto::Operation {
    edgetls_keyless_proto::Operation::request(
        edgetls_keyless_proto::Opcode::ECDSA_SIGN_SHA256,
        edgetls_testkit::ski(&keys.p256),
        vec![byte; 32],
    )
}
