//! One connection slot to one key server: connects, keeps the link alive with pings, and
//! reconnects with backoff when it fails.

use crate::config::{ClientConfig, ServerSpec};
use crate::metrics::ClientMetrics;
use edgetls_keyless_proto::{Decoder, Operation};
use openssl::ssl::SslConnector;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot, watch};
use tokio_openssl::SslStream;

/// What a request waiting on a link gets: the answer, or word that the link died (retryable).
pub(crate) type Reply = Result<Operation, LinkDown>;

#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkDown;

/// Requests sent on a link and not answered yet. Once `closed`, nothing can be added: a request
/// racing with the link's death is refused at once instead of waiting for its deadline.
#[derive(Default)]
struct Pending {
    closed: bool,
    waiting: HashMap<u32, oneshot::Sender<Reply>>,
}

/// A live connection: where requests are written and who waits for answers.
struct Link {
    /// Requests are encoded straight into this buffer; the writer swaps it out and sends it.
    out: Arc<Mutex<Vec<u8>>>,
    /// Wakes the writer when `out` goes from empty to not.
    wake: Arc<Notify>,
    pending: Arc<Mutex<Pending>>,
}

/// Why a request could not be sent on a connection.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No live link: try another connection.
    Down,
    /// The request cannot be encoded (too large): no connection will take it.
    Encode(edgetls_keyless_proto::ProtoError),
}

/// One of the client's connections to a key server.
pub(crate) struct Conn {
    pub(crate) server: ServerSpec,
    healthy: AtomicBool,
    in_flight: AtomicU64,
    link: Mutex<Option<Link>>,
    /// Why the last connection attempt or link failed, for error messages.
    last_error: Mutex<String>,
}

impl Conn {
    pub(crate) fn new(server: ServerSpec) -> Conn {
        Conn {
            server,
            healthy: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            link: Mutex::new(None),
            last_error: Mutex::new("not connected yet".into()),
        }
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    /// `addr: what went wrong last`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{}: {}",
            self.server.addr,
            self.last_error.lock().unwrap_or_else(|p| p.into_inner())
        )
    }

    fn set_error(&self, e: impl Into<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.into();
    }

    /// Sends `op` as request `id` on the current link; the receiver yields the answer.
    pub(crate) fn send(
        &self,
        id: u32,
        op: &Operation,
    ) -> Result<oneshot::Receiver<Reply>, SendError> {
        let link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        let link = link.as_ref().ok_or(SendError::Down)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = link.pending.lock().unwrap_or_else(|p| p.into_inner());
            if pending.closed {
                return Err(SendError::Down);
            }
            pending.waiting.insert(id, tx);
        }
        let was_empty = {
            let mut out = link.out.lock().unwrap_or_else(|p| p.into_inner());
            let was_empty = out.is_empty();
            let start = out.len();
            if let Err(e) = op.encode_as(id, &mut out) {
                out.truncate(start);
                drop(out);
                link.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .waiting
                    .remove(&id);
                return Err(SendError::Encode(e));
            }
            was_empty
        };
        if was_empty {
            link.wake.notify_one();
        }
        self.in_flight.fetch_add(1, Relaxed);
        Ok(rx)
    }

    /// Forgets request `id` (its caller gave up).
    pub(crate) fn forget(&self, id: u32) {
        if let Some(link) = self.link.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if link
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .waiting
                .remove(&id)
                .is_some()
            {
                self.in_flight.fetch_sub(1, Relaxed);
            }
        }
    }

    pub(crate) fn answered(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// Keeps this slot connected until `shutdown`: connect, serve the link, and after any
    /// failure wait a randomized, doubling backoff before trying again.
    pub(crate) async fn supervise(
        self: Arc<Self>,
        config: Arc<ClientConfig>,
        connector: SslConnector,
        ids: Arc<AtomicU32>,
        metrics: Arc<ClientMetrics>,
        healthy_now: Arc<Notify>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut backoff = config.backoff_min;
        let mut seed = (Arc::as_ptr(&self) as u64) | 1;
        loop {
            let connected = tokio::select! {
                c = tokio::time::timeout(config.connect_timeout, connect(&connector, &self.server)) => {
                    c.unwrap_or_else(|_| Err(format!("connect timed out after {:?}", config.connect_timeout)))
                }
                _ = shutdown.wait_for(|s| *s) => return,
            };
            match connected {
                Ok(tls) => {
                    metrics.reconnects.inc();
                    backoff = config.backoff_min;
                    let why = self
                        .serve_link(tls, &config, &ids, &metrics, &healthy_now, &mut shutdown)
                        .await;
                    self.set_error(why);
                }
                Err(e) => {
                    metrics.connect_failures.inc();
                    metrics.health.connect_failed(&self.server.addr, &e);
                    self.set_error(e);
                }
            }
            if *shutdown.borrow() {
                return;
            }
            // Randomized to between half and all of the backoff, so clients do not reconnect in step.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let wait =
                backoff / 2 + Duration::from_nanos(seed % (backoff.as_nanos() as u64 / 2 + 1));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            backoff = (backoff * 2).min(config.backoff_max);
        }
    }

    async fn serve_link(
        &self,
        tls: SslStream<TcpStream>,
        config: &ClientConfig,
        ids: &AtomicU32,
        metrics: &ClientMetrics,
        healthy_now: &Notify,
        shutdown: &mut watch::Receiver<bool>,
    ) -> String {
        let (mut reader, mut writer) = tokio::io::split(tls);
        let out = Arc::new(Mutex::new(Vec::with_capacity(64 * 1024)));
        let wake = Arc::new(Notify::new());
        let pending = Arc::new(Mutex::new(Pending::default()));
        let link = Link {
            out: Arc::clone(&out),
            wake: Arc::clone(&wake),
            pending: Arc::clone(&pending),
        };
        *self.link.lock().unwrap_or_else(|p| p.into_inner()) = Some(link);

        let write = async move {
            // Two buffers swapped back and forth: no allocation once they have grown.
            let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
            loop {
                wake.notified().await;
                std::mem::swap(
                    &mut batch,
                    &mut *out.lock().unwrap_or_else(|p| p.into_inner()),
                );
                if batch.is_empty() {
                    continue;
                }
                if let Err(e) = async {
                    writer.write_all(&batch).await?;
                    writer.flush().await
                }
                .await
                {
                    return format!("write failed: {e}");
                }
                batch.clear();
            }
        };
        let read = async {
            let mut decoder = Decoder::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) => return "connection closed by the server".to_string(),
                    Ok(n) => decoder.extend(&buf[..n]),
                    Err(e) => return format!("read failed: {e}"),
                }
                while let Some(frame) = decoder.next() {
                    let packet = match frame {
                        Ok(p) => p,
                        Err(e) => return format!("malformed frame from the server: {e}"),
                    };
                    let waiter = pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .waiting
                        .remove(&packet.id);
                    if let Some(waiter) = waiter {
                        self.answered();
                        let _ = waiter.send(Ok(packet.op));
                    }
                }
            }
        };
        // A new link gets requests only once it has answered a ping: a server that accepts
        // connections but does not answer (hung, overloaded) is never handed traffic.
        let health = async {
            let mut proven = false;
            loop {
                if proven {
                    tokio::time::sleep(config.health_interval).await;
                }
                let id = ids.fetch_add(1, Relaxed);
                let ping = Operation::ping(b"health".to_vec());
                let Ok(answer) = self.send(id, &ping) else {
                    return "link closed".to_string();
                };
                match tokio::time::timeout(config.health_timeout, answer).await {
                    Ok(Ok(Ok(op))) if op.opcode == edgetls_keyless_proto::Opcode::PONG => {
                        if !proven {
                            proven = true;
                            self.healthy.store(true, Relaxed);
                            metrics.health.link_up(&self.server.addr);
                            healthy_now.notify_waiters();
                        }
                    }
                    _ => {
                        metrics.health_failures.inc();
                        self.forget(id);
                        return format!("health check: no pong within {:?}", config.health_timeout);
                    }
                }
            }
        };
        let why = tokio::select! {
            w = write => w,
            r = read => r,
            h = health => h,
            _ = shutdown.wait_for(|s| *s) => "client shut down".to_string(),
        };
        // The link is dead: refuse new requests on it and tell everyone waiting to go elsewhere.
        if self.healthy.swap(false, Relaxed) {
            // A client shutting down says nothing; a link lost is said once all are.
            let why = (!*shutdown.borrow()).then_some(why.as_str());
            metrics.health.link_down(&self.server.addr, why);
        }
        *self.link.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let waiting = {
            let mut p = pending.lock().unwrap_or_else(|p| p.into_inner());
            p.closed = true;
            std::mem::take(&mut p.waiting)
        };
        for (_, waiter) in waiting {
            self.answered();
            let _ = waiter.send(Err(LinkDown));
        }
        why
    }
}

async fn connect(
    connector: &SslConnector,
    server: &ServerSpec,
) -> Result<SslStream<TcpStream>, String> {
    let tcp = TcpStream::connect(&server.addr)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let ssl = connector
        .configure()
        .map_err(|e| e.to_string())?
        .into_ssl(&server.name)
        .map_err(|e| e.to_string())?;
    let mut tls = SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
    Pin::new(&mut tls)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(tls)
}
