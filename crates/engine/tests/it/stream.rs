//! The established stream's transport: OpenSSL's small writes leave as one send, held bytes go
//! out before the server waits for the peer or when flushed, and bulk data arrives intact.
//! Real TLS 1.3 handshakes between `edgetls_engine::accept` and a Rust OpenSSL client.

use edgetls_engine::{TlsStream, accept};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{
    Ssl, SslAcceptor, SslConnector, SslContext, SslMethod, SslSessionCacheMode, SslStream,
    SslVerifyMode, SslVersion,
};
use openssl::x509::{X509, X509Name};
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn server_context() -> SslContext {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_text("CN", "stream.test").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    a.set_min_proto_version(Some(SslVersion::TLS1_3)).unwrap();
    a.set_certificate(&cert).unwrap();
    a.set_private_key(&key).unwrap();
    a.build().into_context()
}

/// Accepts one connection and runs `serve` on its established stream, on a current-thread
/// runtime in this thread, while `client` runs on another thread against the address.
fn one_connection<S, F, C, T>(serve: S, client: C) -> T
where
    S: FnOnce(TlsStream) -> F,
    F: Future<Output = ()>,
    C: FnOnce(std::net::SocketAddr) -> T + Send + 'static,
    T: Send + 'static,
{
    let ctx = server_context();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || client(addr));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async move {
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let tls = accept(Ssl::new(&ctx).unwrap(), tcp).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), serve(tls))
            .await
            .expect("the server finished (no bytes held while both sides wait)");
    });
    client.join().unwrap()
}

fn connector(tickets: Arc<Mutex<Vec<openssl::ssl::SslSession>>>) -> SslConnector {
    let mut c = SslConnector::builder(SslMethod::tls_client()).unwrap();
    c.set_verify(SslVerifyMode::NONE);
    c.set_session_cache_mode(SslSessionCacheMode::CLIENT);
    c.set_new_session_callback(move |_, s| tickets.lock().unwrap().push(s));
    c.build()
}

fn connect(c: &SslConnector, addr: std::net::SocketAddr) -> SslStream<TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.configure().unwrap().connect("stream.test", tcp).unwrap()
}

/// Data segments the server's socket has sent (TCP_INFO).
fn data_segments_out(tls: &TlsStream) -> u32 {
    // SAFETY: tcp_info is plain integers, for which all zeroes is a value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a live tcp_info of `len` bytes; the descriptor is the stream's open socket.
    let r = unsafe {
        libc::getsockopt(
            tls.tcp().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    info.tcpi_data_segs_out
}

#[test]
fn tickets_leave_together_and_an_answer_leaves_with_its_close_notify() {
    let segments = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&segments);
    let tickets = Arc::new(Mutex::new(Vec::new()));
    let theirs = Arc::clone(&tickets);
    let answer = one_connection(
        |mut tls| async move {
            let mut req = [0u8; 4];
            tls.read_exact(&mut req).await.unwrap();
            assert_eq!(&req, b"GET\n");
            tls.write_all(b"ok\n").await.unwrap();
            tls.shutdown().await.unwrap();
            *seen.lock().unwrap() = data_segments_out(&tls);
        },
        move |addr| {
            let c = connector(theirs);
            let mut s = connect(&c, addr);
            s.write_all(b"GET\n").unwrap();
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).unwrap();
            answer
        },
    );
    assert_eq!(answer, b"ok\n");
    assert_eq!(
        tickets.lock().unwrap().len(),
        2,
        "both TLS 1.3 tickets arrived"
    );
    // Flight; both tickets (flushed by OpenSSL one by one); "ok\n" with its close_notify. Each
    // is its own segment with TCP_NODELAY; unheld, the tickets and the close would be 5.
    let segments = *segments.lock().unwrap();
    assert!(
        (2..=3).contains(&segments),
        "the server sent {segments} data segments"
    );
}

#[test]
fn held_bytes_go_out_before_the_server_waits_for_the_peer() {
    let got = one_connection(
        |mut tls| async move {
            // Written, not flushed: the read below must send it, or both sides wait forever.
            tls.write_all(b"ping").await.unwrap();
            assert!(tls.transport().held() > 0, "the write was held");
            let mut pong = [0u8; 4];
            tls.read_exact(&mut pong).await.unwrap();
            assert_eq!(&pong, b"pong");
            tls.shutdown().await.unwrap();
        },
        |addr| {
            let mut s = connect(&connector(Arc::default()), addr);
            let mut ping = [0u8; 4];
            s.read_exact(&mut ping).unwrap();
            s.write_all(b"pong").unwrap();
            ping
        },
    );
    assert_eq!(&got, b"ping");
}

#[test]
fn a_flush_sends_while_the_server_waits_on_something_else() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let got = one_connection(
        |mut tls| async move {
            tls.write_all(b"now").await.unwrap();
            tls.flush().await.unwrap();
            assert_eq!(tls.transport().held(), 0);
            // Not reading: only the flush can have sent it.
            rx.await.unwrap();
            tls.shutdown().await.unwrap();
        },
        move |addr| {
            let mut s = connect(&connector(Arc::default()), addr);
            let mut now = [0u8; 3];
            s.read_exact(&mut now).unwrap();
            tx.send(()).unwrap();
            now
        },
    );
    assert_eq!(&got, b"now");
}

#[test]
fn bulk_data_in_writes_of_every_size_arrives_intact() {
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sent = data.clone();
    let got = one_connection(
        |mut tls| async move {
            let sizes = [
                1usize, 7, 100, 4095, 4096, 16_384, 16_896, 20_000, 65_536, 3,
            ];
            let (mut at, mut i) = (0, 0);
            while at < sent.len() {
                let n = sizes[i % sizes.len()].min(sent.len() - at);
                tls.write_all(&sent[at..at + n]).await.unwrap();
                at += n;
                i += 1;
            }
            tls.shutdown().await.unwrap();
        },
        |addr| {
            let mut s = connect(&connector(Arc::default()), addr);
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        },
    );
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes arrived in order and unchanged");
}

/// The other way: the client's records, small and large, many to a segment, arrive in order
/// and unchanged through the transport, up to the client's close.
#[test]
fn client_data_in_writes_of_every_size_arrives_intact() {
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 24) as u8)
        .collect();
    let sent = data.clone();
    let got = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&got);
    one_connection(
        |mut tls| async move {
            let mut got = Vec::new();
            tls.read_to_end(&mut got).await.unwrap();
            *into.lock().unwrap() = got;
        },
        move |addr| {
            let mut s = connect(&connector(Arc::default()), addr);
            let sizes = [1usize, 5, 7, 100, 4091, 4096, 4101, 16_384, 20_000, 3];
            let (mut at, mut i) = (0, 0);
            while at < sent.len() {
                let n = sizes[i % sizes.len()].min(sent.len() - at);
                s.write_all(&sent[at..at + n]).unwrap();
                at += n;
                i += 1;
            }
            s.shutdown().unwrap();
            // Until the server closes: a socket closed with the server's tickets unread would
            // send a reset, which may discard what the server had not read yet.
            let _ = s.read_to_end(&mut Vec::new());
        },
    );
    let got = got.lock().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(*got == data, "the bytes arrived in order and unchanged");
}
