//! A resumed handshake for a certificate whose key is on the key server costs no key-server
//! request.

use crate::common::{connect, serve};
use edgetls_engine::{KeylessKey, RemoteKey, set_remote_key};
use edgetls_keyless_client::{ClientConfig, KeylessClient, ServerSpec};
use edgetls_keyless_proto::Opcode;
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, site_cert, start};
use edgetls_tickets::{
    KeySet, KeySize, RingOptions, StaticSource, TicketConfig, TicketKey, TicketKeys, install,
};
use openssl::ssl::{SslAcceptor, SslMethod, SslVersion};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn resumption_with_a_remote_key_makes_no_key_server_request() {
    let (pki, keys) = setup();
    let ks = start(&pki, Authz::open(), ServerOptions::default());
    let mut cfg = ClientConfig::new(
        vec![ServerSpec::new(ks.addr.to_string(), "localhost")],
        pki.path("edge-1.pem"),
        pki.path("edge-1.key"),
        pki.path("ca.pem"),
    );
    cfg.request_timeout = Duration::from_secs(2);
    let client = KeylessClient::new(cfg).unwrap();
    assert!(client.wait_connected(1, Duration::from_secs(5)));
    let remote: Arc<dyn RemoteKey> = Arc::new(KeylessKey::new(Arc::new(client)));
    let tickets = Arc::new(
        TicketKeys::new(
            StaticSource(
                KeySet::new(vec![TicketKey::generate(KeySize::Aes256).unwrap()], 0).unwrap(),
            ),
            RingOptions::default(),
        )
        .unwrap(),
    );
    let cert = site_cert(&pki, &keys.p256, &["site.test"]);
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    set_remote_key(&mut b, &cert, remote).unwrap();
    install(&mut b, tickets, &TicketConfig::default()).unwrap();
    let srv = serve(b.build().into_context());
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let signs = || ks.metrics.requests(Opcode::ECDSA_SIGN_SHA256);
        let before = signs();
        let (reused, session) = connect(srv.addr, version, None);
        assert!(!reused);
        assert_eq!(
            signs(),
            before + 1,
            "{version:?}: a full handshake signs remotely"
        );
        for _ in 0..5 {
            let (reused, _) = connect(srv.addr, version, Some(&session));
            assert!(reused, "{version:?}");
        }
        assert_eq!(
            signs(),
            before + 1,
            "{version:?}: resumed handshakes make no request"
        );
    }
}
