//! In OpenSSL's async mode every handshake step runs on an ASYNC job's small stack: the name
//! override (user code) is then left to the driver, never run there.

use crate::common::{cert, reused, s_client};
use edgetls_tickets::{
    KeySet, KeySize, RingOptions, StaticSource, TicketConfig, TicketKey, TicketKeys, install,
};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod, SslStream};
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[test]
fn the_name_override_runs_off_the_async_job_and_still_decides() {
    let (c, k) = cert("site.test");
    let keys = Arc::new(
        TicketKeys::new(
            StaticSource(
                KeySet::new(vec![TicketKey::generate(KeySize::Aes256).unwrap()], 0).unwrap(),
            ),
            RingOptions::default(),
        )
        .unwrap(),
    );
    let (asked, asked_on_job) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut config = TicketConfig::default();
    config.name_override = Some(Arc::new({
        let (asked, on_job) = (Arc::clone(&asked), Arc::clone(&asked_on_job));
        move |name: Option<&str>| {
            asked.fetch_add(1, Relaxed);
            if edgetls_tls::in_async_job() {
                on_job.fetch_add(1, Relaxed);
            }
            (name == Some("private.test")).then_some(false)
        }
    }));
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate(&c).unwrap();
    b.set_private_key(&k).unwrap();
    edgetls_engine::enable_async(&mut b);
    install(&mut b, Arc::clone(&keys), &config).unwrap();
    let acceptor = b.build();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let pauses = Arc::new(AtomicUsize::new(0));
    let paused = Arc::clone(&pauses);
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let mut ssl = Ssl::new(acceptor.context()).unwrap();
            // Driven as edgetls_engine::accept drives it.
            edgetls_tls::retry::enable(&mut ssl).unwrap();
            let mut tls = SslStream::new(ssl, tcp).unwrap();
            let done = loop {
                match tls.accept() {
                    Ok(()) => break true,
                    Err(e) if edgetls_tls::retry::is_retry(&e) => {
                        paused.fetch_add(1, Relaxed);
                        let work = edgetls_tls::retry::take(tls.ssl()).unwrap();
                        edgetls_tls::retry::complete(tls.ssl(), work.run());
                    }
                    Err(_) => break false,
                }
            };
            if done {
                let _ = tls.write_all(b"ok\n");
                let _ = tls.shutdown();
            }
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let sess = dir.path().join("s");
    let public = s_client(addr, "-tls1_2", None, Some(&sess), &[]);
    assert!(public.contains("TLS session ticket:"), "{public}");
    assert!(reused(&s_client(addr, "-tls1_2", Some(&sess), None, &[])));
    let private = s_client(
        addr,
        "-tls1_2",
        None,
        None,
        &["-servername", "private.test"],
    );
    assert!(
        !private.contains("TLS session ticket:"),
        "no ticket for private.test:\n{private}"
    );
    let public13 = s_client(addr, "-tls1_3", None, None, &[]);
    assert!(
        public13.contains("Post-Handshake New Session Ticket"),
        "{public13}"
    );
    let private13 = s_client(
        addr,
        "-tls1_3",
        None,
        None,
        &["-servername", "private.test"],
    );
    assert!(
        !private13.contains("Post-Handshake New Session Ticket"),
        "{private13}"
    );

    assert_eq!(asked.load(Relaxed), 5, "asked once per connection");
    assert_eq!(
        asked_on_job.load(Relaxed),
        0,
        "the override ran on an ASYNC job's stack"
    );
    // On AWS-LC nothing runs on a job (it has none): the override runs inline.
    let expected = if edgetls_tls::library::NAME == "AWS-LC" {
        0
    } else {
        5
    };
    assert_eq!(
        pauses.load(Relaxed),
        expected,
        "each ClientHello paused once for the override (on a job)"
    );
}
