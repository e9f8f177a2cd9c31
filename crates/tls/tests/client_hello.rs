//! The ClientHello hook through the seam (`on_client_hello`): what it reads, its three answers
//! (go on, end with an alert and a recorded reason, pause for work the driver runs), and a
//! panic in it ending that handshake only.

use edgetls_tls::retry::{self, Pending};
use edgetls_tls::{ClientHello, Next, Reason, on_client_hello, refusal, refuse};
use openssl::ssl::{
    HandshakeError, Ssl, SslAcceptor, SslAlert, SslConnector, SslMethod, SslRef, SslVerifyMode,
};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

type Hook = dyn Fn(&mut SslRef) -> Result<Next, SslAlert> + Send + Sync;

/// One handshake for `name` against a server whose hook is `hook` (its driver runs deferred
/// work); the server's outcome and the refusal it recorded, if any.
fn handshake(name: &str, hook: Arc<Hook>) -> (bool, Option<Reason>) {
    let (cert, key) = edgetls_testkit::certs::self_signed("hello.test");
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate(&cert).unwrap();
    b.set_private_key(&key).unwrap();
    on_client_hello(&mut b, move |ssl| hook(ssl));
    let ctx = b.build().into_context();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let name = name.to_string();
    let client = std::thread::spawn(move || {
        let mut c = SslConnector::builder(SslMethod::tls_client()).unwrap();
        c.set_verify(SslVerifyMode::NONE);
        let tcp = TcpStream::connect(addr).unwrap();
        c.build().connect(&name, tcp).is_ok()
    });
    let (tcp, _) = listener.accept().unwrap();
    let mut ssl = Ssl::new(&ctx).unwrap();
    retry::enable(&mut ssl).unwrap();
    let mut step = ssl.accept(tcp);
    let ok = loop {
        match step {
            Ok(_) => break true,
            // A pause is no I/O wait: the stream reports it as a failure to step again from.
            Err(HandshakeError::Failure(mid) | HandshakeError::WouldBlock(mid))
                if retry::is_retry(mid.error()) =>
            {
                let work = retry::take(mid.ssl()).expect("the hook left work");
                retry::complete(mid.ssl(), work.run());
                step = mid.handshake();
            }
            Err(HandshakeError::WouldBlock(mid)) => step = mid.handshake(),
            Err(HandshakeError::Failure(mid)) => {
                let reason = refusal(mid.ssl()).map(|r| r.reason);
                drop(mid); // the client sees the connection close, whatever it waits for
                assert!(!client.join().unwrap(), "the client's handshake failed too");
                return (false, reason);
            }
            Err(HandshakeError::SetupFailure(e)) => panic!("{e}"),
        }
    };
    assert!(client.join().unwrap());
    (ok, None)
}

#[test]
fn the_hook_sees_the_name_and_its_answers_are_followed() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let hook: Arc<Hook> = Arc::new(move |ssl: &mut SslRef| {
        let name = ClientHello::of(ssl).server_name().unwrap_or_default();
        s.lock().unwrap().push(name.clone());
        if name == "refused.test" {
            return Err(refuse(
                ssl,
                SslAlert::UNRECOGNIZED_NAME,
                Reason::UnrecognizedName,
                "not served here",
            ));
        }
        Ok(Next::Continue)
    });
    assert_eq!(handshake("Hello.Test", Arc::clone(&hook)), (true, None));
    assert_eq!(
        handshake("refused.test", hook),
        (false, Some(Reason::UnrecognizedName))
    );
    assert_eq!(*seen.lock().unwrap(), ["hello.test", "refused.test"]);
}

#[test]
fn a_pause_runs_the_work_then_the_hook_again_with_its_output() {
    let runs = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::clone(&runs);
    let hook: Arc<Hook> = Arc::new(move |ssl: &mut SslRef| {
        match retry::take_output::<u32>(ssl) {
            Some(n) => r.lock().unwrap().push(n),
            None => {
                r.lock().unwrap().push(0);
                return Ok(retry::defer(ssl, Pending::new(|| 42u32)).expect("driven"));
            }
        }
        Ok(Next::Continue)
    });
    assert_eq!(handshake("hello.test", hook), (true, None));
    assert_eq!(*runs.lock().unwrap(), [0, 42]);
}

#[test]
fn a_panic_in_the_hook_ends_that_handshake_with_an_internal_reason() {
    let hook: Arc<Hook> = Arc::new(|ssl: &mut SslRef| {
        if ClientHello::of(ssl).server_name().as_deref() == Some("panic.test") {
            panic!("hook bug");
        }
        Ok(Next::Continue)
    });
    assert_eq!(
        handshake("panic.test", Arc::clone(&hook)),
        (false, Some(Reason::Internal))
    );
    // The process and the context go on.
    assert_eq!(handshake("hello.test", hook), (true, None));
}
