//! The client side: connections from the proxy to origin servers resume their TLS sessions.
//! Sessions are kept per origin — host, port and the SNI sent — in a bounded LRU with a maximum
//! age, and offered on the next connection to the same origin.

use crate::error::TicketError;
use lru::LruCache;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslConnectorBuilder, SslRef, SslSession, SslSessionCacheMode};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One origin: sessions are never offered to another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginKey {
    /// The origin's host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The server name sent (None: no SNI).
    pub sni: Option<String>,
}

impl OriginKey {
    /// The origin `host:port`, reached with server name `sni`.
    pub fn new(host: impl Into<String>, port: u16, sni: Option<&str>) -> OriginKey {
        OriginKey {
            host: host.into(),
            port,
            sni: sni.map(str::to_string),
        }
    }
}

/// Counters of the origin session cache.
#[derive(Debug, Default)]
pub struct OriginCounters {
    /// Connections offered a cached session.
    pub offered: AtomicU64,
    /// Connections with no usable session (none, or expired).
    pub missed: AtomicU64,
    /// Sessions received from origins and stored.
    pub stored: AtomicU64,
}

/// Sessions for origin connections made through one connector.
pub struct OriginSessions {
    cache: Mutex<LruCache<OriginKey, (SslSession, Instant)>>,
    max_age: Duration,
    counters: OriginCounters,
}

impl std::fmt::Debug for OriginSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginSessions")
            .field("max_age", &self.max_age)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn origin_index() -> Result<Index<Ssl, OriginKey>, TicketError> {
    static INDEX: OnceLock<Result<Index<Ssl, OriginKey>, openssl::error::ErrorStack>> =
        OnceLock::new();
    Ok(INDEX.get_or_init(Ssl::new_ex_index).clone()?)
}

impl OriginSessions {
    /// A cache of at most `capacity` origins; sessions older than `max_age` are not offered.
    pub fn new(capacity: NonZeroUsize, max_age: Duration) -> Arc<OriginSessions> {
        Arc::new(OriginSessions {
            cache: Mutex::new(LruCache::new(capacity)),
            max_age,
            counters: OriginCounters::default(),
        })
    }

    /// What the cache did so far.
    pub fn counters(&self) -> &OriginCounters {
        &self.counters
    }

    /// Origins with a session kept.
    pub fn len(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the connector keep the sessions its connections receive (TLS 1.2 and the TLS 1.3
    /// tickets that arrive after the handshake) in this cache. Use one cache per connector:
    /// OpenSSL offers a session only to connections of the context that made it.
    pub fn install(self: &Arc<Self>, b: &mut SslConnectorBuilder) -> Result<(), TicketError> {
        let index = origin_index()?;
        b.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
        let me = Arc::clone(self);
        b.set_new_session_callback(move |ssl, session| {
            // Nothing may unwind into OpenSSL: a panic loses this session, nothing else.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if let Some(key) = ssl.ex_data(index) {
                    me.counters.stored.fetch_add(1, Relaxed);
                    me.cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .put(key.clone(), (session, Instant::now()));
                }
            }));
        });
        Ok(())
    }

    /// Tags the connection with its origin and offers the cached session, if one is fresh.
    /// Returns whether a session was offered. Call before the handshake, on a connection of the
    /// connector this cache was installed on.
    pub fn prepare(&self, ssl: &mut SslRef, origin: OriginKey) -> Result<bool, TicketError> {
        let cached = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(&origin) {
                // TLS 1.3 tickets are single use (RFC 8446 §C.4; OpenSSL's client will not offer
                // one twice): take it; the origin's next ticket replaces it.
                Some((s, at))
                    if at.elapsed() < self.max_age && edgetls_tls::library::session_is_tls13(s) =>
                {
                    cache.pop(&origin).map(|(s, _)| s)
                }
                Some((s, at)) if at.elapsed() < self.max_age => Some(s.clone()),
                Some(_) => {
                    cache.pop(&origin);
                    None
                }
                None => None,
            }
        };
        ssl.set_ex_data(origin_index()?, origin);
        let Some(session) = cached else {
            self.counters.missed.fetch_add(1, Relaxed);
            return Ok(false);
        };
        // SAFETY: the session was received by a connection of the connector this cache is
        // installed on (the only way into the cache), so it belongs to this connection's context.
        unsafe { ssl.set_session(&session)? };
        self.counters.offered.fetch_add(1, Relaxed);
        Ok(true)
    }
}
