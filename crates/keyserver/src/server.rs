//! Serving: mutual TLS, many requests per connection answered out of order, crypto on a bounded
//! set of workers, limits and timeouts, graceful shutdown.
//!
//! Per connection: a reader decodes frames. Cheap requests (ping, ECDSA, Ed25519, errors) are
//! answered right there; slow (RSA, software tokens) or delayed ones get a task each, and keys
//! in a hardware token go to the token's own threads (at most `max_in_flight` at once: past that
//! the reader stops reading, which pushes back on the client). Each answer finds the key, checks
//! the client may use it, runs the operation and queues the result; a writer task sends queued
//! answers, flushing once per batch. Everything but hardware tokens runs on the runtime's
//! workers, one per core by default: they are the bounded crypto pool.

use crate::authz::{Allowed, Authz, ClientId};
use crate::error::KeyServerError;
use crate::keys::{Cost, KeySet, PrivateKey};
use crate::metrics::Metrics;
use crate::ops;
use edgetls_keyless_proto::{Decoder, ErrorCode, Opcode, Operation, Packet};
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_openssl::SslStream;

/// Tunables; `Default` gives what the binary uses without flags.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Runtime worker threads (default: the number of cores). Connections, and the private-key
    /// operations of their requests, run on these: they are the bounded crypto pool.
    pub workers: usize,
    /// Requests one connection may have in flight before the server stops reading from it.
    pub max_in_flight: usize,
    /// Close a connection that sends nothing for this long.
    pub idle_timeout: Duration,
    /// Close a connection whose TLS handshake or partly received frame stalls this long.
    pub read_timeout: Duration,
    /// Hold every answer this long (plus up to `jitter`), to emulate a distant server.
    pub delay: Duration,
    /// Up to this much more, at random, on top of `delay`.
    pub jitter: Duration,
    /// Answer RSA decrypt (0x01) with the PKCS#1-unpadded message, as the older C key server
    /// did, instead of the raw c^d mod n that gokeyless returns.
    pub strip_rsa_padding: bool,
    /// How long a graceful shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_in_flight: 1024,
            idle_timeout: Duration::from_secs(300),
            read_timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            strip_rsa_padding: false,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// A TLS acceptor that requires a client certificate issued by `client_ca` (TLS 1.2+).
pub fn tls_acceptor(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Result<SslAcceptor, KeyServerError> {
    let exists = |p: &Path| {
        std::fs::metadata(p)
            .map(|_| ())
            .map_err(KeyServerError::io(p))
    };
    exists(cert)?;
    exists(key)?;
    exists(client_ca)?;
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_certificate_chain_file(cert)?;
    b.set_private_key_file(key, SslFiletype::PEM)?;
    b.check_private_key()?;
    b.set_ca_file(client_ca)?;
    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    // Requests arrive as many small records back to back: read ahead so that one read system
    // call takes all that is waiting, not a record header and then its body.
    b.set_read_ahead(true);
    Ok(b.build())
}

/// The key server.
pub struct KeyServer {
    keys: KeySet,
    authz: Authz,
    acceptor: SslAcceptor,
    opts: ServerOptions,
    metrics: Arc<Metrics>,
    jitter_state: AtomicU64,
}

impl std::fmt::Debug for KeyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyServer")
            .field("keys", &self.keys.len())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl KeyServer {
    /// A server for `keys`, letting clients do what `authz` allows, over `tls`.
    pub fn new(
        keys: KeySet,
        authz: Authz,
        acceptor: SslAcceptor,
        opts: ServerOptions,
    ) -> Result<KeyServer, KeyServerError> {
        Ok(KeyServer {
            keys,
            authz,
            acceptor,
            opts,
            metrics: Arc::new(Metrics::default()),
            jitter_state: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        })
    }

    /// The server's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Accepts connections until `shutdown` turns true, then stops accepting, lets every
    /// connection finish the requests it has (up to `drain_timeout`) and returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let for_conn = shutdown.clone();
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => {
                        let _ = tcp.set_nodelay(true);
                        conns.spawn(Arc::clone(&self).connection(tcp, for_conn));
                    }
                    Err(e) => accept_failed(&e).await,
                },
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            // Reap finished connections so the set does not grow.
            while conns.try_join_next().is_some() {}
        }
        drop(listener);
        let _ = tokio::time::timeout(self.opts.drain_timeout, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
    }

    /// Serves `listener` thread-per-core: `threads` threads each run a single-threaded runtime
    /// and own the connections handed to them (round robin), so a connection's reading,
    /// answering and writing never cross threads. Returns after `shutdown` turns true and every
    /// thread has finished its connections' requests (up to `drain_timeout`).
    pub fn serve_per_core(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        threads: usize,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), KeyServerError> {
        let io = |source| KeyServerError::Io {
            path: "runtime".into(),
            source,
        };
        listener.set_nonblocking(true).map_err(io)?;
        let mut queues = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, mut rx) = mpsc::unbounded_channel::<std::net::TcpStream>();
            queues.push(tx);
            let (server, stop) = (Arc::clone(&self), shutdown.clone());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(io)?;
            let handle = std::thread::Builder::new()
                .name(format!("keyless-core-{i}"))
                .spawn(move || {
                    rt.block_on(async move {
                        let mut conns = tokio::task::JoinSet::new();
                        while let Some(tcp) = rx.recv().await {
                            if let Ok(tcp) = TcpStream::from_std(tcp) {
                                conns.spawn(Arc::clone(&server).connection(tcp, stop.clone()));
                            }
                            while conns.try_join_next().is_some() {}
                        }
                        let drain = async { while conns.join_next().await.is_some() {} };
                        let _ = tokio::time::timeout(server.opts.drain_timeout, drain).await;
                    })
                })
                .map_err(io)?;
            handles.push(handle);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io)?;
        rt.block_on(async {
            let listener = TcpListener::from_std(listener).map_err(io)?;
            let mut shutdown = shutdown;
            let mut next = 0;
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => {
                            let _ = tcp.set_nodelay(true);
                            if let Ok(std_tcp) = tcp.into_std() {
                                let _ = queues[next % queues.len()].send(std_tcp);
                                next += 1;
                            }
                        }
                        Err(e) => accept_failed(&e).await,
                    },
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
            Ok::<(), KeyServerError>(())
        })?;
        drop(queues);
        for h in handles {
            let _ = h.join();
        }
        Ok(())
    }

    async fn connection(self: Arc<Self>, tcp: TcpStream, mut shutdown: watch::Receiver<bool>) {
        self.metrics.connections_total.inc();
        let Some(tls) = self.handshake(tcp).await else {
            self.metrics.tls_failures.inc();
            return;
        };
        self.metrics.connections_open.inc();
        let allowed = match tls.ssl().peer_certificate() {
            Some(cert) => Arc::new(self.authz.allowed(&ClientId::of(&cert))),
            None => Arc::new(Allowed::nothing()),
        };
        let (mut reader, mut writer) = tokio::io::split(tls);
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(self.opts.max_in_flight + 16);
        let write_task = tokio::spawn(async move {
            while let Some(mut out) = rx.recv().await {
                // Everything queued goes out in one write: fewer, fuller TLS records and
                // send calls than one per batch.
                while let Ok(more) = rx.try_recv() {
                    out.extend_from_slice(&more);
                }
                if writer.write_all(&out).await.is_err() || writer.flush().await.is_err() {
                    return;
                }
            }
            let _ = writer.shutdown().await;
        });
        let limit = Arc::new(Semaphore::new(self.opts.max_in_flight));
        let mut decoder = Decoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        'read: loop {
            let wait = if decoder.buffered() > 0 {
                self.opts.read_timeout
            } else {
                self.opts.idle_timeout
            };
            let n = tokio::select! {
                r = tokio::time::timeout(wait, reader.read(&mut buf)) => match r {
                    Ok(Ok(n)) if n > 0 => n,
                    _ => break 'read, // closed, failed, idle or stalled
                },
                _ = shutdown.wait_for(|stop| *stop) => break 'read,
            };
            decoder.extend(&buf[..n]);
            // Answers computed here during this batch are encoded into one buffer and handed to
            // the writer once, not one allocation and one queue entry per answer.
            let mut batch = Vec::new();
            while let Some(frame) = decoder.next() {
                let packet = match frame {
                    Ok(p) => p,
                    Err(e) => match e.reply() {
                        Some((id, code)) => {
                            self.metrics
                                .record(Opcode::ERROR, Duration::ZERO, Some(code));
                            encode_into(id, Operation::error(code), &mut batch);
                            continue;
                        }
                        None => break 'read,
                    },
                };
                // Cheap answers (pings, ECDSA, Ed25519, errors) are computed right here: a task
                // of their own costs a hand-off, often to another thread, worth more than the
                // work. Slow ones (RSA, software tokens) and delayed ones get a task, so they never
                // hold up reading; hardware tokens' go to the token's threads. The key is looked
                // up once, here, for both the choice and the answer.
                let key = self.keys.find(&packet.op);
                let place = self.place(key.as_deref());
                if place == Place::Inline {
                    let (id, op) = self.answer_now(packet, key.as_deref(), &allowed, true);
                    encode_into(id, op, &mut batch);
                    continue;
                }
                let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
                    break 'read;
                };
                let (server, tx, allowed) = (Arc::clone(&self), tx.clone(), Arc::clone(&allowed));
                self.metrics.in_flight.inc();
                match (place, key.clone()) {
                    (Place::Device, Some(device)) => {
                        // A hardware token may keep a thread waiting: its own threads (one per
                        // session) do the work and queue the answer for the writer, with no
                        // task and no hand-off back to this worker.
                        device.dispatch(Box::new(move |run| {
                            let (id, op) = server.answer_now(packet, key.as_deref(), &allowed, run);
                            let mut bytes = Vec::new();
                            encode_into(id, op, &mut bytes);
                            let _ = tx.blocking_send(bytes);
                            server.metrics.in_flight.dec();
                            drop(permit);
                        }));
                    }
                    _ => {
                        tokio::spawn(async move {
                            let (id, op) = server.answer(packet, key, allowed).await;
                            let mut bytes = Vec::new();
                            encode_into(id, op, &mut bytes);
                            let _ = tx.send(bytes).await;
                            server.metrics.in_flight.dec();
                            drop(permit);
                        });
                    }
                }
            }
            if !batch.is_empty() && tx.send(batch).await.is_err() {
                break 'read;
            }
        }
        // Let the requests already started finish, then close.
        let all = u32::try_from(self.opts.max_in_flight).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(self.opts.drain_timeout, limit.acquire_many(all)).await;
        drop(tx);
        let _ = write_task.await;
        self.metrics.connections_open.dec();
    }

    async fn handshake(&self, tcp: TcpStream) -> Option<SslStream<TcpStream>> {
        let ssl = Ssl::new(self.acceptor.context()).ok()?;
        let mut tls = SslStream::new(ssl, tcp).ok()?;
        match tokio::time::timeout(self.opts.read_timeout, Pin::new(&mut tls).accept()).await {
            Ok(Ok(())) => Some(tls),
            _ => None,
        }
    }

    /// Where a request with `key` is answered (see `connection`).
    fn place(&self, key: Option<&dyn PrivateKey>) -> Place {
        let delayed = !self.opts.delay.is_zero() || !self.opts.jitter.is_zero();
        match key.map(|k| k.cost()) {
            _ if delayed => Place::Task,
            Some(Cost::Device) => Place::Device,
            Some(Cost::Slow) => Place::Task,
            Some(Cost::Cheap) | None => Place::Inline,
        }
    }

    /// The result of one request, computed here; `key` is the key it names, if this server
    /// holds it.
    fn outcome(
        &self,
        op: Operation,
        key: Option<&dyn PrivateKey>,
        allowed: &Allowed,
    ) -> Result<Operation, ErrorCode> {
        match op.opcode {
            Opcode::PING => Ok(Operation::pong(op.payload)),
            o if o.is_response() => Err(ErrorCode::UNEXPECTED_OPCODE),
            o if !is_key_operation(o) => Err(ErrorCode::BAD_OPCODE),
            o => match key {
                // Runs on this thread: for key files and software tokens, a worker (the
                // runtime has one per core, which bounds the crypto like a pool, without a
                // hand-off to another thread and back); for hardware tokens, the token's own.
                Some(key) if allowed.permits(&key.ski(), op.sni.as_deref()) => {
                    ops::perform(key, o, &op.payload, self.opts.strip_rsa_padding)
                        .map(Operation::response)
                }
                // Unknown, or not this client's to use: the same answer either way.
                _ => Err(ErrorCode::KEY_NOT_FOUND),
            },
        }
    }

    /// Counts the answer and puts it in its frame's terms.
    fn finish(
        &self,
        id: u32,
        opcode: Opcode,
        started: Instant,
        result: Result<Operation, ErrorCode>,
    ) -> (u32, Operation) {
        let error = result.as_ref().err().copied();
        self.metrics.record(opcode, started.elapsed(), error);
        (id, result.unwrap_or_else(Operation::error))
    }

    /// The answer to one request, computed on this thread (a worker, or a token's thread).
    /// `run` false: the request waited too long for its token, and only gets the error.
    fn answer_now(
        &self,
        packet: Packet,
        key: Option<&dyn PrivateKey>,
        allowed: &Allowed,
        run: bool,
    ) -> (u32, Operation) {
        let (started, opcode) = (Instant::now(), packet.op.opcode);
        let result = match run {
            true => self.outcome(packet.op, key, allowed),
            false => Err(ErrorCode::INTERNAL),
        };
        self.finish(packet.id, opcode, started, result)
    }

    /// The answer to one request in a task of its own: slow (RSA, software tokens) or delayed.
    async fn answer(
        self: &Arc<Self>,
        packet: Packet,
        key: Option<Arc<dyn PrivateKey>>,
        allowed: Arc<Allowed>,
    ) -> (u32, Operation) {
        let (started, opcode) = (Instant::now(), packet.op.opcode);
        let result = match key.clone() {
            Some(device) if device.cost() == Cost::Device => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let server = Arc::clone(self);
                device.dispatch(Box::new(move |run| {
                    let result = match run {
                        true => server.outcome(packet.op, key.as_deref(), &allowed),
                        false => Err(ErrorCode::INTERNAL),
                    };
                    let _ = tx.send(result);
                }));
                rx.await.unwrap_or(Err(ErrorCode::INTERNAL))
            }
            _ => self.outcome(packet.op, key.as_deref(), &allowed),
        };
        if !self.opts.delay.is_zero() || !self.opts.jitter.is_zero() {
            tokio::time::sleep(self.opts.delay + self.jitter()).await;
        }
        self.finish(packet.id, opcode, started, result)
    }

    /// A pseudo-random duration in [0, jitter].
    fn jitter(&self) -> Duration {
        let max = self.opts.jitter.as_nanos() as u64;
        if max == 0 {
            return Duration::ZERO;
        }
        let mut x = self.jitter_state.load(Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter_state.store(x, Relaxed);
        Duration::from_nanos(x % (max + 1))
    }
}

/// Where a request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In the reader, right away: cheap (ECDSA, Ed25519, pings, errors).
    Inline,
    /// On a hardware token's own threads, which queue the answer for the writer.
    Device,
    /// In a task of its own on the same worker: slow (RSA, software tokens) or delayed.
    Task,
}

/// After a failed accept (out of file descriptors, most often), pause instead of retrying at
/// once: the error repeats until connections close, and retrying in a tight loop would burn a
/// core exactly when the server is already short of resources.
async fn accept_failed(e: &std::io::Error) {
    eprintln!("edgetls-keyserver: accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn is_key_operation(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::RSA_DECRYPT | Opcode::RSA_DECRYPT_RAW | Opcode::ED25519_SIGN
    ) || op.sign_hash().is_some()
}

/// Appends the wire form of an answer to `out`.
fn encode_into(id: u32, op: Operation, out: &mut Vec<u8>) {
    let start = out.len();
    if Packet::new(id, op).encode(out).is_err() {
        // Only an over-long payload fails to encode, and no operation produces one.
        out.truncate(start);
        let _ = Packet::new(id, Operation::error(ErrorCode::INTERNAL)).encode(out);
    }
}
