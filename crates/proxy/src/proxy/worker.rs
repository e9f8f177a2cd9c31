//! One worker per core: a current-thread runtime with its own SO_REUSEPORT listeners; every
//! connection is handled on the thread that accepted it.

use crate::error::CliError;
use crate::proxy::peek::{client_hello_sni, record_len};
use crate::proxy::pipe::pipe;
use crate::proxy::{Shared, memory, problems, proxied};
use edgetls_engine::{EngineError, Failure};
use openssl::ssl::{NameType, Ssl};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A new listening socket on `addr` (`SO_REUSEPORT`: one per worker), non-blocking.
pub(crate) fn bind(addr: SocketAddr, defer: bool) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    // Accepted connections inherit it: no setsockopt per connection.
    s.set_tcp_nodelay(true)?;
    if defer {
        defer_accept(&s)?;
    }
    s.bind(&addr.into())?;
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// With `defer_accept`, how long the kernel holds a connection that has sent nothing before
/// handing it over anyway (`TCP_DEFER_ACCEPT`, one SYN-ACK retransmission).
pub(crate) const DEFERRAL: Duration = Duration::from_secs(1);

/// A connection is handed to accept() once its first bytes (the ClientHello) have arrived:
/// TLS is client-first, so the worker wakes once for both. A client that connects and sends
/// nothing is handed over after [`DEFERRAL`] (the kernel rounds the time up to its SYN-ACK
/// retransmissions: the first is at 1 s), and its handshake deadline counts that second (see
/// `handshake`). Off by default, as in nginx (`deferred`) and HAProxy (`defer-accept`): under
/// a burst of thousands of silent connections the kernel hands some over only after further
/// retransmissions (3 s, 7 s), past any handshake deadline of ours.
fn defer_accept(s: &socket2::Socket) -> std::io::Result<()> {
    let seconds: libc::c_int = DEFERRAL.as_secs() as libc::c_int;
    // SAFETY: setsockopt on the socket's open descriptor, with a live c_int of the size given.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&seconds as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Starts worker `i` on its own thread, accepting on `sockets` (bound by [`bind`], or handed
/// over by the previous process).
pub(crate) fn spawn(
    i: usize,
    shared: Arc<Shared>,
    sockets: Vec<std::net::TcpListener>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Setup(e.to_string()))?;
    let listeners = {
        let _g = rt.enter();
        sockets
            .into_iter()
            .map(|s| {
                let addr = s.local_addr().map_or("?".into(), |a| a.to_string());
                tokio::net::TcpListener::from_std(s)
                    .map_err(|source| CliError::Listen { addr, source })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    std::thread::Builder::new()
        .name(format!("edgetls-worker-{i}"))
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                // This worker's own connections to the key servers: a remote signature asked
                // for by a handshake here is sent, answered and resumed on this thread.
                if let Some(k) = &shared.keyless {
                    if let Err(e) = k.attach() {
                        tracing::warn!("worker {i}: keyless client: {e}; using the shared one");
                    }
                }
                for l in listeners {
                    let (shared, mut stop) = (Arc::clone(&shared), stop.clone());
                    // The local address of every connection, when the listener is bound to
                    // one address (no getsockname per connection); else asked per connection.
                    let bound = l.local_addr().ok().filter(|a| !a.ip().is_unspecified());
                    tokio::task::spawn_local(async move {
                        loop {
                            tokio::select! {
                                r = l.accept() => match r {
                                    Ok((tcp, peer)) => accepted(&shared, tcp, peer, bound),
                                    Err(e) => {
                                        tracing::warn!("accept failed: {e}");
                                        tokio::time::sleep(Duration::from_millis(50)).await;
                                    }
                                },
                                _ = stop.wait_for(|s| *s) => return,
                            }
                        }
                    });
                }
                // This thread's heap gives memory back (crate::proxy::memory).
                tokio::task::spawn_local(async move {
                    let mut every = tokio::time::interval(memory::EVERY);
                    loop {
                        every.tick().await;
                        memory::tick();
                    }
                });
                // Run until stopped, then until this worker's connections are done.
                let mut stop = stop;
                let _ = stop.wait_for(|s| *s).await;
                while shared.active.load(Relaxed) > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        })
        .map_err(|e| CliError::Setup(e.to_string()))
}

fn accepted(shared: &Arc<Shared>, tcp: TcpStream, peer: SocketAddr, bound: Option<SocketAddr>) {
    let Ok(permit) = Arc::clone(&shared.limit).try_acquire_owned() else {
        return; // at the connection limit: close
    };
    shared.active.fetch_add(1, Relaxed);
    let shared = Arc::clone(shared);
    tokio::task::spawn_local(async move {
        let local = bound.or_else(|| tcp.local_addr().ok());
        if let Err(e) = connection(&shared, tcp, peer, local).await {
            tracing::debug!("{peer}: {e}");
        }
        shared.active.fetch_sub(1, Relaxed);
        drop(permit);
    });
}

/// One client connection, start to end; the error says why it ended early (logged with the
/// peer by the caller).
async fn connection(
    shared: &Shared,
    mut tcp: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) -> Result<(), String> {
    let (handshake_timeout, idle) = {
        let r = shared.routes.load();
        (r.0.handshake_timeout, r.0.idle_timeout)
    };
    let deadline = tokio::time::Instant::now() + handshake_timeout;
    // Behind a load balancer: the client's addresses from its PROXY header.
    let (client, local) = proxied::addresses(shared, &mut tcp, peer, local, deadline).await?;
    let policy = shared.policy.current();
    if policy.has_tunnels() {
        let sni = match tokio::time::timeout_at(deadline, peek_sni(&tcp)).await {
            Ok(sni) => sni,
            Err(_) => {
                shared.metrics.timeout();
                return Err(format!("no ClientHello within {handshake_timeout:?}"));
            }
        };
        if let Some(rule) = sni.and_then(|sni| policy.find(Some(&sni), local)) {
            if let Some(target) = &rule.tunnel {
                let origin = TcpStream::connect(target).await.map_err(|e| {
                    shared.metrics.origin_failures.inc();
                    format!("tunnel to {target}: {e}")
                })?;
                shared.metrics.tunnels.inc();
                pipe(tcp, origin, idle).await;
                return Ok(());
            }
        }
    }
    let addrs = (peer, client, local);
    let tls = match handshake(shared, tcp, addrs, deadline, shared.defer_accept).await {
        Ok(tls) => tls,
        Err(Failed::Error(reason, detail)) => {
            shared.metrics.failed(reason);
            if problems::is_ours(reason) {
                problems::warn(peer, reason, &detail);
            }
            return Err(format!("handshake failed ({reason}): {detail}"));
        }
        Err(Failed::Timeout) => {
            shared.metrics.timeout();
            return Err(format!("no handshake within {handshake_timeout:?}"));
        }
    };
    shared.metrics.handshake(tls.ssl());
    let sni = tls
        .ssl()
        .servername(NameType::HOST_NAME)
        .map(str::to_string);
    let alpn = tls.ssl().selected_alpn_protocol().map(<[u8]>::to_vec);
    if alpn.as_deref() == Some(edgetls_policy::ACME_TLS_ALPN) {
        // A TLS-ALPN-01 validation: the handshake was the answer (RFC 8737 §3).
        return Ok(());
    }
    let routes = shared.routes.load_full();
    let Some(route) = routes.0.route(sni.as_deref(), alpn.as_deref()) else {
        shared.metrics.no_route.inc();
        return Err(format!("no route for {sni:?}"));
    };
    // The origin is connected when the client sends its first bytes (TLS-terminated
    // protocols here are client-first): an idle client holds no origin connection.
    let mut tls = tls;
    let mut first = [0u8; 1024];
    let n = match tokio::time::timeout(idle, tls.read(&mut first)).await {
        Ok(Ok(n)) if n > 0 => n,
        _ => return Ok(()),
    };
    let preamble = route
        .send_proxy
        .then(|| proxied::header_for_origin(tls.ssl(), client, local));
    let origin = routes.1.connect(route, preamble, &first[..n]).await;
    let Some(origin) = origin.map_err(|e| {
        shared.metrics.origin_failures.inc();
        e.to_string()
    })?
    else {
        return Ok(()); // the origin went away before it took the first bytes
    };
    pipe(tls, origin, idle).await;
    Ok(())
}

/// Why a handshake did not complete.
enum Failed {
    Timeout,
    Error(Failure, String),
}

/// The server handshake, given up at `deadline`.
///
/// Nothing TLS is allocated until the client's first bytes are there (OpenSSL takes ≈ 40 KiB
/// for a handshake in progress): a client that connects and sends nothing costs a task and a
/// socket. With `defer_accept` a connection that has nothing to read when accepted had been
/// held by the kernel for [`DEFERRAL`] already: its deadline is that much earlier.
async fn handshake(
    shared: &Shared,
    tcp: TcpStream,
    (peer, client, local): (SocketAddr, SocketAddr, Option<SocketAddr>),
    deadline: tokio::time::Instant,
    deferred: bool,
) -> Result<edgetls_engine::TlsStream, Failed> {
    let mut first = [0u8; 1];
    {
        let mut peek = std::pin::pin!(tcp.peek(&mut first));
        let here = std::future::poll_fn(|cx| Poll::Ready(peek.as_mut().poll(cx).is_ready())).await;
        if !here {
            let deadline = match deferred {
                true => deadline.checked_sub(DEFERRAL).unwrap_or(deadline),
                false => deadline,
            };
            if tokio::time::timeout_at(deadline, peek).await.is_err() {
                return Err(Failed::Timeout);
            }
        }
    }
    if proxied::unexpected_header(shared, peer, first[0]) {
        let why = "a PROXY header from an address not in proxy_protocol_from";
        return Err(Failed::Error(Failure::Protocol, why.into()));
    }
    let mut ssl =
        Ssl::new(&shared.base).map_err(|e| Failed::Error(Failure::Internal, e.to_string()))?;
    if let Some(local) = local {
        edgetls_tls::set_local_addr(&mut ssl, local)
            .map_err(|e| Failed::Error(Failure::Internal, e.to_string()))?;
    }
    let accept = edgetls_engine::accept(ssl, tcp).with_peers(Some(client), local);
    match tokio::time::timeout_at(deadline, accept).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(EngineError::Handshake { reason, detail })) => Err(Failed::Error(reason, detail)),
        Ok(Err(e)) => Err(Failed::Error(Failure::Internal, e.to_string())),
        Err(_) => Err(Failed::Timeout),
    }
}

/// The SNI of the ClientHello waiting on `tcp`, without consuming it.
async fn peek_sni(tcp: &TcpStream) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024 + 5];
    loop {
        let n = tcp.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        let want = record_len(&buf[..n]).unwrap_or(5);
        if n >= want {
            return client_hello_sni(&buf[..want]);
        }
        if n == buf.len() {
            return None;
        }
        // Not all there yet: peek returns at once while data is pending, so wait a little.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
