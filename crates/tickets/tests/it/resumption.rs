//! `openssl s_client -sess_out/-sess_in` and Rust clients resuming against servers with
//! edgetls ticket keys.

use crate::common::{cert, connect, reused, s_client, server, server_with};
use edgetls_tickets::format::{self, Format};
use edgetls_tickets::{
    DerivedSource, FileSource, KeySet, KeySize, ManualClock, Opened, RingOptions, TicketConfig,
    TicketKey, TicketKeys, open, ticket_of,
};
use openssl::ssl::{SslSession, SslVersion};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

const HOUR: u64 = 3600;

#[test]
fn s_client_resumes_across_two_servers_sharing_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = cert("site.test");
    for (format, size) in [
        (Format::Nginx80, KeySize::Aes256),
        (Format::Haproxy, KeySize::Aes128),
        (Format::Ats, KeySize::Aes128),
    ] {
        let path = dir.path().join(format.as_str());
        let n = if format == Format::Haproxy { 3 } else { 1 };
        let set = KeySet::new(
            (0..n).map(|_| TicketKey::generate(size).unwrap()).collect(),
            0,
        )
        .unwrap();
        std::fs::write(&path, &*format::write(&set, format).unwrap()).unwrap();
        let ring = || {
            Arc::new(
                TicketKeys::new(FileSource::new(&path, format), RingOptions::default()).unwrap(),
            )
        };
        let (a, b) = (server(&c, &k, ring()), server(&c, &k, ring()));
        for version in ["-tls1_2", "-tls1_3"] {
            let sess = dir
                .path()
                .join(format!("{}{version}.sess", format.as_str()));
            let first = s_client(a.addr, version, None, Some(&sess), &[]);
            assert!(
                !reused(&first),
                "{format:?} {version}: first handshake is full"
            );
            let second = s_client(b.addr, version, Some(&sess), None, &[]);
            assert!(
                reused(&second),
                "{format:?} {version}: server B resumes A's ticket:\n{second}"
            );
        }
        assert_eq!(b.seen.resumed.load(Relaxed), 2, "{format:?}");
        assert_eq!(a.seen.full.load(Relaxed), 2, "{format:?}");
    }
}

#[test]
fn s_client_resumes_across_two_servers_sharing_only_a_derivation_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = cert("site.test");
    let ring = || {
        Arc::new(
            TicketKeys::new(
                DerivedSource::new(
                    b"0123456789abcdef0123456789abcdef",
                    HOUR,
                    HOUR,
                    KeySize::Aes256,
                )
                .unwrap(),
                RingOptions::default(),
            )
            .unwrap(),
        )
    };
    let (ra, rb) = (ring(), ring());
    let (a, b) = (
        server(&c, &k, Arc::clone(&ra)),
        server(&c, &k, Arc::clone(&rb)),
    );
    for version in ["-tls1_2", "-tls1_3"] {
        let sess = dir.path().join(format!("derived{version}.sess"));
        s_client(a.addr, version, None, Some(&sess), &[]);
        let second = s_client(b.addr, version, Some(&sess), None, &[]);
        assert!(reused(&second), "{version}:\n{second}");
    }
    assert!(ra.counters().issued.load(Relaxed) >= 2);
    assert_eq!(rb.counters().resumed.load(Relaxed), 2);
}

/// Servers on a manual clock with derived keys rotating every hour, 30 minutes' grace.
fn rotating(clock: &Arc<ManualClock>) -> Arc<TicketKeys> {
    Arc::new(
        TicketKeys::with_clock(
            DerivedSource::new(
                b"0123456789abcdef0123456789abcdef",
                HOUR,
                HOUR / 2,
                KeySize::Aes256,
            )
            .unwrap(),
            RingOptions::new(0, 0),
            Arc::clone(clock),
        )
        .unwrap(),
    )
}

#[test]
fn across_a_rotation_tickets_resume_within_the_grace_window_and_are_renewed_then_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = cert("site.test");
    let clock = Arc::new(ManualClock::new(1_800_000_000 - 1_800_000_000 % HOUR + 60));
    let keys = rotating(&clock);
    let srv = server(&c, &k, Arc::clone(&keys));
    for (flag, version) in [
        ("-tls1_2", SslVersion::TLS1_2),
        ("-tls1_3", SslVersion::TLS1_3),
    ] {
        // s_client: a ticket from before the rotation resumes within the grace window, is
        // renewed, and after the window gets a full handshake, not an error.
        let old = dir.path().join(format!("old{flag}"));
        s_client(srv.addr, flag, None, Some(&old), &[]);
        let (_, rust_old) = connect(srv.addr, version, None);
        clock.advance(HOUR); // rotated: the tickets' key no longer encrypts
        keys.refresh().unwrap(); // as the ring's refresher does
        let before = keys.counters().renewed.load(Relaxed);
        let out = s_client(srv.addr, flag, Some(&old), None, &[]);
        assert!(reused(&out), "{flag}: within the grace window:\n{out}");
        assert_eq!(
            keys.counters().renewed.load(Relaxed),
            before + 1,
            "{flag}: renewed"
        );
        let (was_reused, renewed) = connect(srv.addr, version, Some(&rust_old));
        assert!(was_reused, "{flag}: the Rust client resumes too");
        assert_ne!(
            ticket_of(&renewed),
            ticket_of(&rust_old),
            "{flag}: and gets a new ticket"
        );
        clock.advance(HOUR / 2 + 1);
        keys.refresh().unwrap(); // as the ring's refresher does
        let expired = s_client(srv.addr, flag, Some(&old), None, &[]);
        assert!(
            !reused(&expired),
            "{flag}: past the grace window: a full handshake"
        );
        // The renewed ticket is under the new key: it still resumes.
        assert!(
            connect(srv.addr, version, Some(&renewed)).0,
            "{flag}: renewed ticket resumes"
        );
        clock.advance(HOUR / 2);
        keys.refresh().unwrap(); // as the ring's refresher does
    }
    assert_eq!(srv.seen.failed.load(Relaxed), 0);
    assert!(keys.counters().unknown_key.load(Relaxed) >= 2);
}

#[test]
fn zero_failed_resumptions_across_a_rotation_for_tickets_inside_the_grace_window() {
    let (c, k) = cert("site.test");
    let clock = Arc::new(ManualClock::new(1_800_000_000 - 1_800_000_000 % HOUR + 60));
    let keys = rotating(&clock);
    let srv = server(&c, &k, Arc::clone(&keys));
    let mut sessions: Vec<(SslVersion, SslSession)> = Vec::new();
    for i in 0..60 {
        let v = if i % 2 == 0 {
            SslVersion::TLS1_2
        } else {
            SslVersion::TLS1_3
        };
        let (was_reused, s) = connect(srv.addr, v, None);
        assert!(!was_reused);
        sessions.push((v, s));
    }
    clock.advance(HOUR + HOUR / 4); // rotated, inside the 30-minute grace window
    keys.refresh().unwrap(); // as the ring's refresher does
    let failed = sessions
        .iter()
        .filter(|(v, s)| !connect(srv.addr, *v, Some(s)).0)
        .count();
    assert_eq!(failed, 0, "resumptions that fell back to a full handshake");
    assert_eq!(keys.counters().renewed.load(Relaxed), 60);
}

#[test]
fn openssl_tickets_open_with_the_reference_implementation() {
    let (c, k) = cert("site.test");
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let keys = rotating(&clock);
    let srv = server(&c, &k, Arc::clone(&keys));
    for v in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let (_, session) = connect(srv.addr, v, None);
        let ticket = ticket_of(&session).expect("the client holds a ticket");
        match open(&keys, &ticket).unwrap() {
            Opened::State { plaintext, renew } => {
                assert!(!renew);
                let inner =
                    SslSession::from_der(&plaintext).expect("the sealed state is a session");
                assert_eq!(
                    edgetls_tls::library::session_is_tls13(&inner),
                    v == SslVersion::TLS1_3
                );
            }
            other => panic!("{v:?}: {other:?}"),
        }
    }
}

#[test]
fn tickets_disabled_means_no_ticket_extension_and_no_tls13_tickets() {
    let (c, k) = cert("site.test");
    let keys = Arc::new(
        TicketKeys::new(
            edgetls_tickets::StaticSource(
                KeySet::new(vec![TicketKey::generate(KeySize::Aes256).unwrap()], 0).unwrap(),
            ),
            RingOptions::default(),
        )
        .unwrap(),
    );
    let mut off = TicketConfig::default();
    off.enabled = false;
    let on = server(&c, &k, Arc::clone(&keys));
    let disabled = server_with(&c, &k, Arc::clone(&keys), &off);
    let with = s_client(on.addr, "-tls1_2", None, None, &["-tlsextdebug"]);
    assert!(
        with.contains("TLS server extension \"session ticket\""),
        "{with}"
    );
    let without = s_client(disabled.addr, "-tls1_2", None, None, &["-tlsextdebug"]);
    assert!(!without.contains("session ticket"), "{without}");
    let with13 = s_client(on.addr, "-tls1_3", None, None, &[]);
    assert!(
        with13.contains("Post-Handshake New Session Ticket arrived"),
        "{with13}"
    );
    let without13 = s_client(disabled.addr, "-tls1_3", None, None, &[]);
    assert!(!without13.contains("New Session Ticket"), "{without13}");
}

#[test]
fn a_per_name_override_turns_tickets_off_for_that_name_only() {
    let (c, k) = cert("site.test");
    let keys = Arc::new(
        TicketKeys::new(
            edgetls_tickets::StaticSource(
                KeySet::new(vec![TicketKey::generate(KeySize::Aes256).unwrap()], 0).unwrap(),
            ),
            RingOptions::default(),
        )
        .unwrap(),
    );
    let mut config = TicketConfig::default();
    config.name_override = Some(Arc::new(|name: Option<&str>| {
        (name == Some("private.test")).then_some(false)
    }));
    let srv = server_with(&c, &k, Arc::clone(&keys), &config);
    let dir = tempfile::tempdir().unwrap();
    let sess = dir.path().join("s");
    let public = s_client(srv.addr, "-tls1_2", None, Some(&sess), &[]);
    assert!(public.contains("TLS session ticket:"), "{public}");
    assert!(reused(&s_client(
        srv.addr,
        "-tls1_2",
        Some(&sess),
        None,
        &[]
    )));
    let issued = keys.counters().issued.load(Relaxed);
    let private = s_client(
        srv.addr,
        "-tls1_2",
        None,
        None,
        &["-servername", "private.test"],
    );
    assert!(
        !private.contains("TLS session ticket:"),
        "no ticket for private.test:\n{private}"
    );
    assert_eq!(keys.counters().issued.load(Relaxed), issued);
    // site.test's ticket offered for private.test: not accepted, a full handshake.
    let again = s_client(
        srv.addr,
        "-tls1_2",
        Some(&sess),
        None,
        &["-servername", "private.test"],
    );
    assert!(!reused(&again), "no resumption for private.test:\n{again}");
}

#[test]
fn a_panicking_override_costs_that_connection_its_ticket_not_the_process() {
    let (c, k) = cert("site.test");
    let keys = Arc::new(
        TicketKeys::new(
            edgetls_tickets::StaticSource(
                KeySet::new(vec![TicketKey::generate(KeySize::Aes256).unwrap()], 0).unwrap(),
            ),
            RingOptions::default(),
        )
        .unwrap(),
    );
    let mut config = TicketConfig::default();
    config.name_override = Some(Arc::new(|name: Option<&str>| {
        if name == Some("panics.test") {
            panic!("an override that panics");
        }
        None
    }));
    let srv = server_with(&c, &k, Arc::clone(&keys), &config);
    for _ in 0..3 {
        let out = s_client(
            srv.addr,
            "-tls1_2",
            None,
            None,
            &["-servername", "panics.test"],
        );
        assert!(
            out.contains("BEGIN CERTIFICATE"),
            "the handshake went on:\n{out}"
        );
        assert!(!out.contains("TLS session ticket:"), "no ticket:\n{out}");
    }
    // The server is still there, and other names still get tickets.
    let public = s_client(srv.addr, "-tls1_2", None, None, &[]);
    assert!(public.contains("TLS session ticket:"), "{public}");
}

/// A source that counts how often it is read, on which thread, and can be told to rotate.
struct Watched {
    inner: DerivedSource,
    reads_on_handshake_thread: Arc<std::sync::atomic::AtomicUsize>,
    reads: Arc<std::sync::atomic::AtomicUsize>,
}

impl edgetls_tickets::TicketKeySource for Watched {
    fn keys(&self, now: u64) -> Result<KeySet, edgetls_tickets::TicketError> {
        self.reads.fetch_add(1, Relaxed);
        if std::thread::current().name() != Some("edgetls-ticket-keys") {
            self.reads_on_handshake_thread.fetch_add(1, Relaxed);
        }
        self.inner.keys(now)
    }

    fn describe(&self) -> String {
        "watched".into()
    }
}

#[test]
fn the_ticket_callback_never_reads_the_source_its_refresher_does() {
    let (c, k) = cert("site.test");
    let clock = Arc::new(ManualClock::new(1_800_000_000 - 1_800_000_000 % HOUR + 60));
    let on_handshake = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let source = Watched {
        inner: DerivedSource::new(
            b"0123456789abcdef0123456789abcdef",
            HOUR,
            HOUR / 2,
            KeySize::Aes256,
        )
        .unwrap(),
        reads_on_handshake_thread: Arc::clone(&on_handshake),
        reads: Arc::clone(&reads),
    };
    // Due for a refresh at every look (refresh_every 0, so the refresher looks every second).
    let keys = Arc::new(
        TicketKeys::with_clock(source, RingOptions::new(HOUR, 0), Arc::clone(&clock)).unwrap(),
    );
    let at_start = on_handshake.load(Relaxed); // the first read, in with_clock
    let first = keys.encrypting_in_force().name_hex();
    let srv = server(&c, &k, Arc::clone(&keys));
    clock.advance(HOUR); // the source now has another encrypting key
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let (_, session) = connect(srv.addr, version, None);
        assert!(
            connect(srv.addr, version, Some(&session)).0,
            "{version:?} resumes"
        );
    }
    assert_eq!(
        on_handshake.load(Relaxed),
        at_start,
        "the source was read from a handshake (the ticket callback)"
    );
    // The refresher thread picks the rotation up by itself.
    let rotated = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        keys.encrypting_in_force().name_hex() != first
    });
    assert!(
        rotated,
        "the refresher did not rotate the ring (reads: {reads:?})"
    );
    assert_eq!(on_handshake.load(Relaxed), at_start);
}
