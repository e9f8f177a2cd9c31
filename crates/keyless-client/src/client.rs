//! The client: choose a connection, send, wait for the answer or the deadline, retry elsewhere
//! when a connection dies.

use crate::config::ClientConfig;
use crate::conn::{Conn, SendError};
use crate::error::ClientError;
use crate::metrics::ClientMetrics;
use edgetls_keyless_proto::{ErrorCode, Opcode, Operation, Ski};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};

/// Which signature a sign request asks for (the protocol's [`SignScheme`](edgetls_keyless_proto::SignScheme), whose one table
/// gives the opcode).
pub use edgetls_keyless_proto::SignScheme;

struct Inner {
    config: Arc<ClientConfig>,
    conns: Vec<Arc<Conn>>,
    ids: Arc<AtomicU32>,
    metrics: Arc<ClientMetrics>,
    healthy_now: Arc<Notify>,
    in_flight: AtomicU64,
}

/// Where the client's connections and requests run.
enum Exec {
    /// A runtime of the client's own (taken when the client is dropped).
    Own(Option<tokio::runtime::Runtime>),
    /// A runtime the caller owns, such as a proxy worker's current-thread runtime.
    On(Handle),
}

/// A keyless client, on its own runtime thread(s) ([`KeylessClient::new`]) or on a runtime the
/// caller owns ([`KeylessClient::on_runtime`]); usable from any thread or runtime.
pub struct KeylessClient {
    inner: Arc<Inner>,
    exec: Exec,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for KeylessClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeylessClient")
            .field("servers", &self.inner.config.servers)
            .finish_non_exhaustive()
    }
}

impl KeylessClient {
    /// Starts the client: its runtime and a supervisor per connection, which connect in the
    /// background. Fails only on bad configuration (missing or invalid files).
    pub fn new(config: ClientConfig) -> Result<KeylessClient, ClientError> {
        Self::own_runtime(config, Arc::new(ClientMetrics::default()))
    }

    /// [`KeylessClient::new`], counting into `metrics`.
    pub(crate) fn own_runtime(
        config: ClientConfig,
        metrics: Arc<ClientMetrics>,
    ) -> Result<KeylessClient, ClientError> {
        config.validate()?;
        let connector = config.connector()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("keyless-client")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Invalid(format!("runtime: {e}")))?;
        Ok(Self::start(
            config,
            connector,
            Exec::Own(Some(runtime)),
            metrics,
        ))
    }

    /// Starts a client whose connections and requests run on the runtime `handle` (which needs
    /// its I/O and time drivers enabled), counting into `metrics`. Used from that runtime's own
    /// thread — one client per proxy worker — a request never leaves the thread: no hand-off
    /// to another thread and back. `config.threads` is not used. The client's tasks end when it
    /// is dropped or when the runtime shuts down; requests after that fail with
    /// [`ClientError::Shutdown`].
    pub fn on_runtime(
        config: ClientConfig,
        handle: Handle,
        metrics: Arc<ClientMetrics>,
    ) -> Result<KeylessClient, ClientError> {
        config.validate()?;
        let connector = config.connector()?;
        Ok(Self::start(config, connector, Exec::On(handle), metrics))
    }

    fn start(
        config: ClientConfig,
        connector: openssl::ssl::SslConnector,
        exec: Exec,
        metrics: Arc<ClientMetrics>,
    ) -> KeylessClient {
        let config = Arc::new(config);
        let conns: Vec<Arc<Conn>> = config
            .servers
            .iter()
            .flat_map(|s| {
                (0..config.connections_per_server).map(move |_| Arc::new(Conn::new(s.clone())))
            })
            .collect();
        let inner = Arc::new(Inner {
            config: Arc::clone(&config),
            conns,
            ids: Arc::new(AtomicU32::new(1)),
            metrics,
            healthy_now: Arc::new(Notify::new()),
            in_flight: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let client = KeylessClient { inner, exec, stop };
        if let Ok(handle) = client.runtime() {
            let inner = &client.inner;
            for conn in &inner.conns {
                handle.spawn(Arc::clone(conn).supervise(
                    Arc::clone(&config),
                    connector.clone(),
                    Arc::clone(&inner.ids),
                    Arc::clone(&inner.metrics),
                    Arc::clone(&inner.healthy_now),
                    stopped.clone(),
                ));
            }
        }
        client
    }

    fn runtime(&self) -> Result<&Handle, ClientError> {
        match &self.exec {
            Exec::Own(rt) => rt
                .as_ref()
                .map(|rt| rt.handle())
                .ok_or(ClientError::Shutdown),
            Exec::On(h) => Ok(h),
        }
    }

    /// Sends one request and returns the answer. An error answer from the key server becomes
    /// [`ClientError::Server`]. Runs on the client's runtime whatever runtime awaits it.
    pub async fn call(&self, op: Operation) -> Result<Operation, ClientError> {
        let inner = Arc::clone(&self.inner);
        self.runtime()?
            .spawn(execute(inner, op))
            .await
            .unwrap_or(Err(ClientError::Shutdown))
    }

    /// Signs `digest` (for Ed25519: the message) with the key named by `key`.
    pub async fn sign(
        &self,
        key: Ski,
        algorithm: SignScheme,
        digest: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        Ok(self
            .call(Operation::request(
                algorithm.opcode().ok_or_else(|| {
                    ClientError::BadRequest(format!("{algorithm:?} has no keyless opcode"))
                })?,
                key,
                digest.to_vec(),
            ))
            .await?
            .payload)
    }

    /// RSA decrypt (opcode 0x01). Standard key servers return c^d mod n with the PKCS#1 padding
    /// still on; the caller removes it.
    pub async fn decrypt(&self, key: Ski, ciphertext: &[u8]) -> Result<Vec<u8>, ClientError> {
        Ok(self
            .call(Operation::request(
                Opcode::RSA_DECRYPT,
                key,
                ciphertext.to_vec(),
            ))
            .await?
            .payload)
    }

    /// Raw RSA decrypt (opcode 0x08): c^d mod n.
    pub async fn decrypt_raw(&self, key: Ski, ciphertext: &[u8]) -> Result<Vec<u8>, ClientError> {
        Ok(self
            .call(Operation::request(
                Opcode::RSA_DECRYPT_RAW,
                key,
                ciphertext.to_vec(),
            ))
            .await?
            .payload)
    }

    /// Starts a request from any thread and calls `done` with the result on a client thread
    /// (for [`KeylessClient::on_runtime`], a thread of that runtime). `done` is called exactly
    /// once, with [`ClientError::Shutdown`] if the runtime shuts down first.
    pub fn submit(
        &self,
        op: Operation,
        done: impl FnOnce(Result<Operation, ClientError>) + Send + 'static,
    ) {
        let inner = Arc::clone(&self.inner);
        match self.runtime() {
            Ok(rt) => {
                let done = Once(Some(done));
                rt.spawn(async move { done.call(execute(inner, op).await) });
            }
            Err(e) => done(Err(e)),
        }
    }

    /// Starts a request from any thread; the returned [`Submitted`] has a file descriptor that
    /// becomes readable once the result is stored (for poll/epoll loops and OpenSSL async jobs).
    pub fn submit_fd(&self, op: Operation) -> Result<Submitted, ClientError> {
        let (read, mut write) =
            UnixStream::pair().map_err(|e| ClientError::Invalid(format!("socketpair: {e}")))?;
        let slot = Arc::new(Mutex::new(None));
        let result = Arc::clone(&slot);
        self.submit(op, move |r| {
            // Publish the result first, then signal: whoever wakes finds it.
            *result.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            let _ = write.write_all(&[1]);
        });
        Ok(Submitted { read, slot })
    }

    /// Sends one request and blocks this thread until the answer. Do not call from a task of an
    /// async runtime (it would block that runtime's thread).
    pub fn call_blocking(&self, op: Operation) -> Result<Operation, ClientError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.submit(op, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(ClientError::Shutdown))
    }

    /// Waits (blocking) until at least `n` connections are up, or `timeout` passes.
    pub fn wait_connected(&self, n: usize, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.connected() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Connections currently up.
    pub fn connected(&self) -> usize {
        self.inner.conns.iter().filter(|c| c.is_healthy()).count()
    }

    /// The client's counters, shared with the caller (for a metrics endpoint).
    pub fn metrics(&self) -> Arc<ClientMetrics> {
        Arc::clone(&self.inner.metrics)
    }
}

/// A completion called exactly once: with the result, or with [`ClientError::Shutdown`] when
/// the task holding it is dropped unrun (its runtime shut down).
struct Once<F: FnOnce(Result<Operation, ClientError>)>(Option<F>);

impl<F: FnOnce(Result<Operation, ClientError>)> Once<F> {
    fn call(mut self, r: Result<Operation, ClientError>) {
        if let Some(f) = self.0.take() {
            f(r);
        }
    }
}

impl<F: FnOnce(Result<Operation, ClientError>)> Drop for Once<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(ClientError::Shutdown));
        }
    }
}

impl Drop for KeylessClient {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        // On a caller's runtime the stop signal ends the client's tasks; its own runtime goes.
        let Exec::Own(runtime) = &mut self.exec else {
            return;
        };
        if let Some(rt) = runtime.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Dropped inside an async task: blocking here would stall (and tokio forbids
                // it); the client's threads finish on their own.
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_secs(1));
            }
        }
    }
}

/// A request started with [`KeylessClient::submit_fd`].
#[derive(Debug)]
pub struct Submitted {
    read: UnixStream,
    slot: Arc<Mutex<Option<Result<Operation, ClientError>>>>,
}

impl Submitted {
    /// The result, if it has arrived (never blocks).
    pub fn try_take(&self) -> Option<Result<Operation, ClientError>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Blocks until the result arrives.
    pub fn wait(mut self) -> Result<Operation, ClientError> {
        let mut byte = [0u8; 1];
        let _ = self.read.read_exact(&mut byte);
        self.try_take().unwrap_or(Err(ClientError::Shutdown))
    }
}

impl AsRawFd for Submitted {
    fn as_raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }
}

/// Decrements the in-flight counts when a request ends, however it ends.
struct InFlight<'a>(&'a Inner);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
        self.0.metrics.in_flight.dec();
    }
}

async fn execute(inner: Arc<Inner>, op: Operation) -> Result<Operation, ClientError> {
    let started = Instant::now();
    let config = &inner.config;
    let limit = config.max_in_flight as u64;
    if inner.in_flight.fetch_add(1, Relaxed) >= limit {
        inner.in_flight.fetch_sub(1, Relaxed);
        inner.metrics.queue_full.inc();
        return Err(ClientError::QueueFull {
            limit: config.max_in_flight,
        });
    }
    inner.metrics.in_flight.inc();
    let _guard = InFlight(&inner);
    let deadline = tokio::time::Instant::from_std(started + config.request_timeout);
    let mut tried: Vec<usize> = Vec::new();
    let mut failures = 0;
    loop {
        let Some(index) = pick(&inner.conns, &tried) else {
            // Nothing is up: wait for a connection to come up, until the deadline.
            let notified = inner.healthy_now.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if pick(&inner.conns, &tried).is_some() {
                continue;
            }
            tokio::select! {
                _ = notified => continue,
                _ = tokio::time::sleep_until(deadline) => {
                    inner.metrics.no_server.inc();
                    let detail = inner.conns.iter().map(|c| c.describe()).collect::<Vec<_>>().join("; ");
                    return Err(ClientError::NoServer { after: config.request_timeout, detail });
                }
            }
        };
        let conn = &inner.conns[index];
        let id = inner.ids.fetch_add(1, Relaxed);
        let answer = match conn.send(id, &op) {
            Ok(rx) => rx,
            Err(SendError::Down) => {
                tried.push(index);
                continue;
            }
            Err(SendError::Encode(e)) => return Err(ClientError::BadRequest(e.to_string())),
        };
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(Ok(reply))) => {
                inner.metrics.observe(started.elapsed());
                return match reply.error_code() {
                    Some(code) => {
                        inner.metrics.server_error(code);
                        Err(ClientError::Server {
                            server: conn.server.addr.clone(),
                            code,
                        })
                    }
                    None => Ok(reply),
                };
            }
            // The connection died under the request: send it again elsewhere.
            Ok(_) => {
                failures += 1;
                tried.push(index);
                if failures > config.retries {
                    inner.metrics.no_server.inc();
                    return Err(ClientError::NoServer {
                        after: started.elapsed(),
                        detail: format!(
                            "{} connections failed under the request; last: {}",
                            failures,
                            conn.describe()
                        ),
                    });
                }
                inner.metrics.retries.inc();
            }
            Err(_) => {
                conn.forget(id);
                inner.metrics.timeouts.inc();
                return Err(ClientError::Timeout {
                    after: config.request_timeout,
                    server: conn.server.addr.clone(),
                });
            }
        }
    }
}

/// The healthy connection with the fewest requests in flight, preferring ones not tried yet.
fn pick(conns: &[Arc<Conn>], tried: &[usize]) -> Option<usize> {
    conns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_healthy())
        .min_by_key(|(i, c)| (tried.contains(i), c.in_flight()))
        .map(|(i, _)| i)
}

/// Error codes that mean the request itself is wrong, for callers deciding what to log.
pub fn is_caller_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::FORMAT
            | ErrorCode::BAD_OPCODE
            | ErrorCode::UNEXPECTED_OPCODE
            | ErrorCode::KEY_NOT_FOUND
    )
}
