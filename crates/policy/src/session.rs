//! TLS session-ID resumption: OpenSSL's in-memory session cache on the listener's context,
//! shared by every thread that serves connections started on it, bounded in sessions and time,
//! and bound per server name.
//!
//! A connection starts on the listener's context and is switched to a rule's context at the
//! ClientHello; OpenSSL keeps looking sessions up in (and adding them to) the context the
//! connection started on, so one cache serves every rule and certificate. Each connection's
//! session-ID context is set from its server name ([`bind_to_name`]): OpenSSL resumes a
//! session (from the cache, a TLS 1.2 ticket or a TLS 1.3 PSK) only when the context matches,
//! so a session made for one name never resumes on another.

use openssl::ssl::{SslContextBuilder, SslContextRef, SslRef, SslSessionCacheMode};
use std::time::Duration;

/// The session cache of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCache {
    /// Sessions kept at most (0: no cache, so no session-ID resumption). When full, OpenSSL
    /// evicts the oldest.
    pub sessions: usize,
    /// How long a session may be resumed after its full handshake.
    pub timeout: Duration,
}

impl Default for SessionCache {
    /// 20,000 sessions for 5 minutes: HAProxy's `tune.ssl.cachesize` and `tune.ssl.lifetime`
    /// defaults (nginx's `ssl_session_timeout` is 5 minutes too).
    fn default() -> Self {
        SessionCache {
            sessions: 20_000,
            timeout: Duration::from_secs(300),
        }
    }
}

/// Session-cache counters of a listener's context (OpenSSL's `SSL_CTX_sess_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCacheStats {
    /// Sessions in the cache now.
    pub sessions: u64,
    /// Session IDs found in the cache and resumed.
    pub hits: u64,
    /// Session IDs offered by clients and not found.
    pub misses: u64,
    /// Sessions found but expired.
    pub timeouts: u64,
    /// Sessions evicted because the cache was full.
    pub evicted: u64,
}

/// Turns the cache on (or off) for connections started on `ctx`.
pub(crate) fn configure(ctx: &mut SslContextBuilder, cache: &SessionCache) {
    if cache.sessions == 0 {
        ctx.set_session_cache_mode(SslSessionCacheMode::OFF);
        return;
    }
    ctx.set_session_cache_mode(SslSessionCacheMode::SERVER);
    ctx.set_session_cache_size(i32::try_from(cache.sessions).unwrap_or(i32::MAX));
    let secs = u32::try_from(cache.timeout.as_secs().max(1)).unwrap_or(u32::MAX);
    edgetls_tls::settings::set_session_timeout(ctx, secs);
}

/// Binds the session `ssl` makes or resumes to `name` (the server name it asked for).
pub(crate) fn bind_to_name(
    ssl: &mut SslRef,
    name: Option<&str>,
) -> Result<(), openssl::error::ErrorStack> {
    // At most 32 bytes (SSL_MAX_SID_CTX_LENGTH): a digest of the name. The marker keeps "no
    // name" apart from every name.
    let mut h = openssl::sha::Sha256::new();
    match name {
        Some(n) => {
            h.update(b"sni:");
            h.update(n.as_bytes());
        }
        None => h.update(b"no-sni"),
    }
    let sid_ctx = h.finish();
    edgetls_tls::settings::set_session_id_context(ssl, &sid_ctx)
        .map_err(|_| openssl::error::ErrorStack::get())
}

/// The cache counters of a listener's context.
pub fn session_cache_stats(ctx: &SslContextRef) -> SessionCacheStats {
    let c = edgetls_tls::settings::session_cache_counts(ctx);
    SessionCacheStats {
        sessions: c.sessions,
        hits: c.hits,
        misses: c.misses,
        timeouts: c.timeouts,
        evicted: c.evicted,
    }
}
