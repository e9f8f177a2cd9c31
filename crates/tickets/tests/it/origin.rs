//! Outgoing connections resume per origin (host, port, SNI), bounded and with expiry.

use crate::common::{Server, cert, server};
use edgetls_tickets::{
    KeySet, KeySize, OriginKey, OriginSessions, RingOptions, StaticSource, TicketKey, TicketKeys,
};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use std::io::Read;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

fn origin() -> Server {
    let (c, k) = cert("origin.test");
    let keys = TicketKeys::new(
        StaticSource(KeySet::new(vec![TicketKey::generate(KeySize::Aes256).unwrap()], 0).unwrap()),
        RingOptions::default(),
    )
    .unwrap();
    server(&c, &k, Arc::new(keys))
}

fn connector(cache: &Arc<OriginSessions>, version: SslVersion) -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_max_proto_version(Some(version)).unwrap();
    cache.install(&mut b).unwrap();
    b.build()
}

/// One request to `srv` for `sni`; returns (session offered, session reused).
fn fetch(c: &SslConnector, cache: &OriginSessions, srv: &Server, sni: &str) -> (bool, bool) {
    let mut ssl = c.configure().unwrap().into_ssl(sni).unwrap();
    let offered = cache
        .prepare(
            &mut ssl,
            OriginKey::new("127.0.0.1", srv.addr.port(), Some(sni)),
        )
        .unwrap();
    let tcp = std::net::TcpStream::connect(srv.addr).unwrap();
    let mut tls = openssl::ssl::SslStream::new(ssl, tcp).unwrap();
    tls.connect().unwrap();
    let mut got = String::new();
    tls.read_to_string(&mut got).unwrap();
    let _ = tls.shutdown();
    (offered, tls.ssl().session_reused())
}

#[test]
fn origin_connections_resume_per_origin() {
    let (a, b) = (origin(), origin());
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let cache = OriginSessions::new(NonZeroUsize::new(16).unwrap(), Duration::from_secs(3600));
        let c = connector(&cache, version);
        assert_eq!(
            fetch(&c, &cache, &a, "origin.test"),
            (false, false),
            "{version:?}"
        );
        assert_eq!(
            fetch(&c, &cache, &a, "origin.test"),
            (true, true),
            "{version:?}: resumed"
        );
        assert_eq!(
            fetch(&c, &cache, &a, "origin.test"),
            (true, true),
            "{version:?}: again"
        );
        // Another SNI or another origin: its own session, never another's.
        assert_eq!(
            fetch(&c, &cache, &a, "other.test"),
            (false, false),
            "{version:?}"
        );
        assert_eq!(
            fetch(&c, &cache, &b, "origin.test"),
            (false, false),
            "{version:?}"
        );
        assert_eq!(
            fetch(&c, &cache, &b, "origin.test"),
            (true, true),
            "{version:?}"
        );
        assert_eq!(cache.len(), 3, "{version:?}: one session per origin");
        assert!(cache.counters().stored.load(Relaxed) >= 3);
        assert_eq!(cache.counters().offered.load(Relaxed), 3);
    }
}

#[test]
fn origin_sessions_expire_and_the_cache_is_bounded() {
    let srv = origin();
    let stale = OriginSessions::new(NonZeroUsize::new(16).unwrap(), Duration::ZERO);
    let c = connector(&stale, SslVersion::TLS1_3);
    fetch(&c, &stale, &srv, "origin.test");
    assert_eq!(
        fetch(&c, &stale, &srv, "origin.test"),
        (false, false),
        "expired: not offered"
    );

    let small = OriginSessions::new(NonZeroUsize::new(2).unwrap(), Duration::from_secs(3600));
    let c = connector(&small, SslVersion::TLS1_3);
    for sni in ["a.test", "b.test", "c.test"] {
        fetch(&c, &small, &srv, sni);
    }
    assert_eq!(small.len(), 2, "bounded");
    assert_eq!(
        fetch(&c, &small, &srv, "a.test"),
        (false, false),
        "the oldest was evicted"
    );
    assert_eq!(fetch(&c, &small, &srv, "c.test"), (true, true));
}
