//! One client per runtime thread: a request made on a proxy worker's thread goes out, and its
//! answer comes back, on that thread, over that worker's own connections.

use crate::client::KeylessClient;
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::metrics::ClientMetrics;
use edgetls_keyless_proto::Operation;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

thread_local! {
    /// The clients attached on this thread: (owner's id, client).
    static ATTACHED: RefCell<Vec<(u64, Arc<KeylessClient>)>> = const { RefCell::new(Vec::new()) };
}

static IDS: AtomicU64 = AtomicU64::new(1);

/// A keyless client per thread that [attaches](PerThreadClient::attach) — each on that thread's
/// runtime, with its own connections to every key server — and one shared client with a runtime
/// of its own for requests from any other thread, started on first use.
///
/// With a client per current-thread runtime, a request and its answer never cross threads: on
/// a proxy worker, where a handshake asks for a signature, the request is written, the answer
/// read and the handshake resumed by the same thread. All the clients count into one
/// [`ClientMetrics`].
pub struct PerThreadClient {
    id: u64,
    config: ClientConfig,
    metrics: Arc<ClientMetrics>,
    shared: Mutex<Option<Arc<KeylessClient>>>,
}

impl std::fmt::Debug for PerThreadClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerThreadClient")
            .field("servers", &self.config.servers)
            .finish_non_exhaustive()
    }
}

impl PerThreadClient {
    /// Checks the configuration (its files are read here) and starts nothing yet.
    pub fn new(config: ClientConfig) -> Result<PerThreadClient, ClientError> {
        config.validate()?;
        config.connector()?;
        Ok(PerThreadClient {
            id: IDS.fetch_add(1, Relaxed),
            config,
            metrics: Arc::new(ClientMetrics::default()),
            shared: Mutex::new(None),
        })
    }

    /// Starts this thread's client on the runtime the thread is in (call it from inside the
    /// runtime, on the thread that will make the requests). Attaching twice keeps the first.
    pub fn attach(&self) -> Result<(), ClientError> {
        if self.local().is_some() {
            return Ok(());
        }
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| ClientError::Invalid(format!("attach outside a runtime: {e}")))?;
        let client =
            KeylessClient::on_runtime(self.config.clone(), handle, Arc::clone(&self.metrics))?;
        ATTACHED.with(|a| a.borrow_mut().push((self.id, Arc::new(client))));
        Ok(())
    }

    /// This thread's client, if it attached.
    fn local(&self) -> Option<Arc<KeylessClient>> {
        ATTACHED
            .try_with(|a| {
                a.borrow()
                    .iter()
                    .find(|(id, _)| *id == self.id)
                    .map(|(_, c)| Arc::clone(c))
            })
            .ok()
            .flatten()
    }

    /// The client for requests from threads that did not attach, started on first use.
    fn shared(&self) -> Result<Arc<KeylessClient>, ClientError> {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = shared.as_ref() {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(KeylessClient::own_runtime(
            self.config.clone(),
            Arc::clone(&self.metrics),
        )?);
        *shared = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Starts a request and calls `done` with the result exactly once: on this thread's runtime
    /// if the thread attached, else on the shared client's thread.
    pub fn submit(
        &self,
        op: Operation,
        done: impl FnOnce(Result<Operation, ClientError>) + Send + 'static,
    ) {
        match self.local() {
            Some(c) => c.submit(op, done),
            None => match self.shared() {
                Ok(c) => c.submit(op, done),
                Err(e) => done(Err(e)),
            },
        }
    }

    /// The counters of all the clients, shared with the caller (for a metrics endpoint).
    pub fn metrics(&self) -> Arc<ClientMetrics> {
        Arc::clone(&self.metrics)
    }
}
