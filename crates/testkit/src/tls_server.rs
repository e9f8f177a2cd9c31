//! A blocking TLS test server on a thread of its own, one connection at a time, driven as the
//! proxy drives a handshake: the local address set before the handshake
//! ([`edgetls_tls::set_local_addr`]) and a paused ClientHello's work run between two handshake
//! calls ([`edgetls_tls::retry`]).

use openssl::ssl::{Ssl, SslContext, SslStream};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Handshakes a [`TestServer`] saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Full handshakes.
    pub full: AtomicU64,
    /// Resumed sessions.
    pub resumed: AtomicU64,
    /// Failed handshakes.
    pub failed: AtomicU64,
    /// ClientHellos that paused for work (a certificate entry built outside the callback).
    pub pauses: AtomicU64,
}

/// What the server does with an established connection.
pub type Answer = Box<dyn Fn(&mut SslStream<TcpStream>) + Send>;

/// A running server; stopped and joined when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it saw.
    pub seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `ctx` on 127.0.0.1: each connection gets "ok\n" and a `close_notify`.
pub fn serve(ctx: SslContext) -> TestServer {
    serve_with(
        ctx,
        "127.0.0.1:0",
        Box::new(|tls| {
            let _ = tls.write_all(b"ok\n");
        }),
    )
}

/// Serves `ctx` on `bind`; `answer` runs on each established connection before its
/// `close_notify`.
pub fn serve_with(ctx: SslContext, bind: &str, answer: Answer) -> TestServer {
    let listener = TcpListener::bind(bind).expect("the test server binds");
    let addr = listener.local_addr().expect("a bound address");
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (s, st) = (Arc::clone(&seen), Arc::clone(&stop));
    let thread = std::thread::Builder::new()
        .name("test-tls-server".into())
        .spawn(move || {
            for tcp in listener.incoming() {
                if st.load(Relaxed) {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                match handshake(&ctx, tcp, &s) {
                    Some(mut tls) => {
                        let counter = if tls.ssl().session_reused() {
                            &s.resumed
                        } else {
                            &s.full
                        };
                        counter.fetch_add(1, Relaxed);
                        answer(&mut tls);
                        let _ = tls.shutdown();
                    }
                    None => {
                        s.failed.fetch_add(1, Relaxed);
                    }
                }
            }
        })
        .expect("the test server's thread starts");
    TestServer {
        addr,
        seen,
        stop,
        thread: Some(thread),
    }
}

/// One server handshake on `tcp`, running a paused ClientHello's work here.
fn handshake(ctx: &SslContext, tcp: TcpStream, seen: &Seen) -> Option<SslStream<TcpStream>> {
    let mut ssl = Ssl::new(ctx).ok()?;
    edgetls_tls::set_local_addr(&mut ssl, tcp.local_addr().ok()?).ok()?;
    edgetls_tls::retry::enable(&mut ssl).ok()?;
    let mut tls = SslStream::new(ssl, tcp).ok()?;
    loop {
        match tls.accept() {
            Ok(()) => return Some(tls),
            Err(e) if edgetls_tls::retry::is_retry(&e) => {
                let work = edgetls_tls::retry::take(tls.ssl())?;
                seen.pauses.fetch_add(1, Relaxed);
                edgetls_tls::retry::complete(tls.ssl(), work.run());
            }
            Err(_) => return None,
        }
    }
}
