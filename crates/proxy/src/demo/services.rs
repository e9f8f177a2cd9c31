//! The demo's back end, in-process: a key server holding the keyless name's key (mutual TLS,
//! as in production) and two small origins.

use crate::error::CliError;
use edgetls_keyless_proto::Opcode;
use edgetls_keyserver::{Authz, DirStore, KeyServer, Metrics, ServerOptions, tls_acceptor};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type Res<T> = Result<T, CliError>;

/// A running key server; stops (draining) when dropped.
pub(crate) struct KeyServerHandle {
    pub(crate) addr: SocketAddr,
    pub(crate) metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for KeyServerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the key server on a free loopback port with the keys of `dir/keyserver/keys`,
/// accepting clients whose certificate chains to `dir/ca.pem`.
pub(crate) fn key_server(dir: &Path) -> Res<KeyServerHandle> {
    let setup = |e: edgetls_keyserver::KeyServerError| CliError::Setup(format!("key server: {e}"));
    let (keys, problems) = DirStore::load_dir(&dir.join("keyserver/keys")).map_err(setup)?;
    for p in problems {
        eprintln!("key server: {p}");
    }
    let tls = tls_acceptor(
        &dir.join("keyserver/server.pem"),
        &dir.join("keyserver/server.key"),
        &dir.join("ca.pem"),
    )
    .map_err(setup)?;
    let server = Arc::new(
        KeyServer::new(keys.into(), Authz::open(), tls, ServerOptions::default()).map_err(setup)?,
    );
    let metrics = server.metrics();
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| CliError::Listen {
            addr: "127.0.0.1:0".into(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(CliError::io("key server socket"))?;
    listener
        .set_nonblocking(true)
        .map_err(CliError::io("key server socket"))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Setup(format!("key server: {e}")))?;
    std::thread::Builder::new()
        .name("demo-keyserver".into())
        .spawn(move || {
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => server.serve(l, stopped).await,
                    Err(e) => eprintln!("key server: {e}"),
                }
            });
        })
        .map_err(CliError::io("key server thread"))?;
    Ok(KeyServerHandle {
        addr,
        metrics,
        stop,
    })
}

/// Signatures the key server has made so far (every ECDSA and RSA signing opcode).
fn signatures(m: &Metrics) -> u64 {
    [
        Opcode::ECDSA_SIGN_SHA256,
        Opcode::ECDSA_SIGN_SHA384,
        Opcode::ECDSA_SIGN_SHA512,
        Opcode::RSA_SIGN_SHA256,
        Opcode::RSA_SIGN_SHA384,
        Opcode::RSA_SIGN_SHA512,
        Opcode::RSA_PSS_SIGN_SHA256,
        Opcode::RSA_PSS_SIGN_SHA384,
        Opcode::RSA_PSS_SIGN_SHA512,
    ]
    .into_iter()
    .map(|op| m.requests(op))
    .sum()
}

/// The HTTP/1.1 origin: answers each request with the Host it was asked for and how many
/// signatures the key server has made.
pub(crate) fn origin(keyserver: Arc<Metrics>) -> Res<SocketAddr> {
    serve("demo-origin", move |head| {
        let text = String::from_utf8_lossy(head);
        let host = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("host").then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| "(none)".into());
        let body = format!(
            "edgetls demo origin: Host {host}; the key server has made {} signatures\n",
            signatures(&keyserver)
        );
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    })
}

/// The origin of the h2 route: says what it received (an HTTP/2 client's first bytes are the
/// connection preface) and closes.
pub(crate) fn origin_h2() -> Res<SocketAddr> {
    serve("demo-origin-h2", |head| {
        let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
        format!(
            "edgetls demo origin for h2: received {} bytes, starting {:?}\n",
            head.len(),
            String::from_utf8_lossy(first).trim_end()
        )
    })
}

/// Accepts on a free loopback port; per connection reads up to the end of a request head (or
/// what arrives within a second), writes `answer(head)` and closes.
fn serve(name: &str, answer: impl Fn(&[u8]) -> String + Send + Sync + 'static) -> Res<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| CliError::Listen {
        addr: "127.0.0.1:0".into(),
        source,
    })?;
    let addr = listener.local_addr().map_err(CliError::io(name))?;
    let answer = Arc::new(answer);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let answer = Arc::clone(&answer);
                std::thread::spawn(move || respond(conn, &*answer));
            }
        })
        .map_err(CliError::io(name))?;
    Ok(addr)
}

fn respond(mut conn: TcpStream, answer: &dyn Fn(&[u8]) -> String) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let _ = conn.write_all(answer(&head).as_bytes());
}
