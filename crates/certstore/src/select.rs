//! Choosing a connection's certificates in a TLS hook, and setting them on it.
//!
//! Two ways, for two kinds of hook:
//! - [`select_certificate`], for a ClientHello hook whose driver runs deferred work
//!   (`edgetls_tls::retry`): an entry whose OpenSSL objects are cached is applied at once; one
//!   that is not is built by the driver, off the TLS library's stack, and the hook runs again.
//! - [`apply_certificate`], for hooks that cannot pause (an SNI callback, a connection driven
//!   by plain `SslStream::accept`): a miss is built inline.

use crate::KeyTypes;
use crate::entry::Entry;
use crate::error::CertStoreError;
use crate::ssl::Materialized;
use crate::store::CertStore;
use edgetls_tls::retry::{self, Pending};
use edgetls_tls::{Reason, local_addr, refuse};
use openssl::ex_data::Index;
use openssl::ssl::{NameType, SniError, Ssl, SslAlert, SslRef};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// How many times one handshake may wait for its certificates to be built. More than one wait
/// happens only when a reload changes the selection in between; past this the handshake ends.
const MAX_WAITS: u8 = 3;

/// The OpenSSL objects of the entry `store` selects for `name` and `local`, from the store's
/// shared cache. `None` when nothing matches or the match is a tunnel; an error when the entry
/// cannot be materialized.
pub fn materialize(
    store: &CertStore,
    name: Option<&str>,
    local: Option<SocketAddr>,
) -> Result<Option<(u64, Arc<Materialized>)>, CertStoreError> {
    let snapshot = store.snapshot();
    let Some(selected) = snapshot.lookup(name, local) else {
        return Ok(None);
    };
    if selected.entry.is_tunnel() {
        return Ok(None);
    }
    let id = selected.entry.id;
    store.prepared(selected.entry).map(|m| Some((id, m)))
}

/// An SNI callback for `SslContextBuilder::set_servername_callback` that selects the entry for
/// each connection from the store's current snapshot and sets its certificates (from the
/// store's shared cache; a miss is built inline, as an SNI callback cannot pause).
/// No match (and no default) ends the handshake with `unrecognized_name`.
pub fn servername_callback(
    store: Arc<CertStore>,
) -> impl Fn(&mut SslRef, &mut SslAlert) -> Result<(), SniError> + Send + Sync + 'static {
    move |ssl, alert| {
        // Nothing may unwind into OpenSSL: a panic here becomes an internal-error alert.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| select(&store, ssl, alert)))
            .unwrap_or_else(|_| {
                *alert = SslAlert::INTERNAL_ERROR;
                Err(SniError::ALERT_FATAL)
            })
    }
}

fn select(store: &CertStore, ssl: &mut SslRef, alert: &mut SslAlert) -> Result<(), SniError> {
    let local = local_addr(ssl);
    let sni = ssl.servername(NameType::HOST_NAME).map(str::to_string);
    apply_certificate(store, ssl, sni.as_deref(), local).map_err(|a| {
        *alert = a;
        SniError::ALERT_FATAL
    })
}

/// Sets on `ssl` the certificates of the entry `store` selects for `name` (a server name, or
/// the name a policy chose) and the local address, from the store's shared cache, building a
/// missing entry inline. The error is the alert to end the handshake with: `unrecognized_name`
/// when nothing matches (or the match is a tunnel), `internal_error` when the entry's objects
/// cannot be built or OpenSSL refuses them; the reason is recorded on `ssl`
/// (`edgetls_tls::refusal`).
pub fn apply_certificate(
    store: &CertStore,
    ssl: &mut SslRef,
    name: Option<&str>,
    local: Option<SocketAddr>,
) -> Result<(), SslAlert> {
    let snapshot = store.snapshot();
    let Some(selected) = snapshot.lookup(name, local) else {
        return Err(no_certificate(ssl, name));
    };
    let mut ready = Vec::new();
    for served in selected.served() {
        if served.entry.is_tunnel() {
            // Tunnelled names are passed through before TLS is terminated; reaching here means
            // the caller terminated one anyway.
            return Err(tunnel_name(ssl, name));
        }
        let built = store.prepared(served.entry).map_err(|e| e.to_string());
        ready.push((Arc::clone(served.entry), served.types, built));
    }
    Ready(ready).apply(ssl)
}

/// What [`select_certificate`] found.
#[derive(Debug)]
#[must_use]
pub enum Selection {
    /// Every chain's objects are at hand: [`Ready::apply`] sets them on the connection.
    Ready(Ready),
    /// Some are not built yet: return `SSL_CLIENT_HELLO_RETRY` (`edgetls_tls::retry::defer`)
    /// with this work, before changing anything on the connection; the hook runs again once the
    /// driver has run it.
    Wait(Pending),
}

/// An entry's objects, or why they could not be built.
type Built = Result<Arc<Materialized>, String>;

/// The chains chosen for a connection, with their objects built (or why they could not be).
pub struct Ready(Vec<(Arc<Entry>, KeyTypes, Built)>);

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready")
            .field("entries", &self.0.len())
            .finish()
    }
}

impl Ready {
    /// Sets every chosen chain on `ssl`: one chain per key type, possibly from different entries
    /// (an RSA and an ECDSA crt-list line for one name), and OpenSSL serves the one the client's
    /// signature algorithms and ciphers can use. Call it after any context switch
    /// (`SSL_set_SSL_CTX` replaces the connection's certificates with the new context's).
    pub fn apply(self, ssl: &mut SslRef) -> Result<(), SslAlert> {
        for (entry, types, built) in self.0 {
            let applied = built.and_then(|ready| {
                ready
                    .apply_types(ssl, types)
                    .map_err(|e| format!("OpenSSL refused it: {e}"))
            });
            if let Err(detail) = applied {
                let detail = format!("{}: {detail}", entry.path().display());
                let alert = SslAlert::INTERNAL_ERROR;
                return Err(refuse(ssl, alert, Reason::CertificateUnusable, detail));
            }
        }
        Ok(())
    }
}

/// Chooses the certificates of the entry `store` selects for `name` and `local`, as
/// [`apply_certificate`] does, without setting them, for a ClientHello hook. When an entry's
/// objects are not cached and the connection's driver runs deferred work
/// (`edgetls_tls::retry::can_defer`), nothing is built here: the work to build them is returned,
/// to be run off the TLS library's stack (the hook's next run takes what it built). Otherwise a
/// miss is built inline.
pub fn select_certificate(
    store: &Arc<CertStore>,
    ssl: &mut SslRef,
    name: Option<&str>,
    local: Option<SocketAddr>,
) -> Result<Selection, SslAlert> {
    let defer = retry::can_defer(ssl);
    if let Some(BuiltNow(built)) = retry::take_output(ssl) {
        keep(ssl, built);
    }
    let snapshot = store.snapshot();
    let Some(selected) = snapshot.lookup(name, local) else {
        return Err(no_certificate(ssl, name));
    };
    let mut ready = Vec::new();
    let mut missing = Vec::new();
    for served in selected.served() {
        if served.entry.is_tunnel() {
            return Err(tunnel_name(ssl, name));
        }
        let found = built_here(ssl, served.entry.id)
            .or_else(|| store.prepared_if_cached(served.entry).map(Ok));
        let entry = Arc::clone(served.entry);
        match found {
            Some(built) => ready.push((entry, served.types, built)),
            None if defer => missing.push(entry),
            None => {
                let built = store.prepared(&entry).map_err(|e| e.to_string());
                ready.push((entry, served.types, built));
            }
        }
    }
    if missing.is_empty() {
        return Ok(Selection::Ready(Ready(ready)));
    }
    if waits(ssl) >= MAX_WAITS {
        let detail = format!(
            "the certificates for {} changed {MAX_WAITS} times while the handshake waited for them",
            name.unwrap_or("<no server name>")
        );
        return Err(refuse(
            ssl,
            SslAlert::INTERNAL_ERROR,
            Reason::Internal,
            detail,
        ));
    }
    let store = Arc::clone(store);
    Ok(Selection::Wait(Pending::new(move || {
        BuiltNow(
            missing
                .iter()
                .map(|e| (e.id, store.prepared(e).map_err(|e| e.to_string())))
                .collect(),
        )
    })))
}

/// What the deferred work built: each entry's objects, or why they could not be built.
struct BuiltNow(Vec<(u64, Built)>);

/// Entries built for this connection by deferred work, and how many times it waited.
struct BuiltHere {
    waits: u8,
    entries: Vec<(u64, Built)>,
}

fn built_index() -> Option<Index<Ssl, BuiltHere>> {
    static I: OnceLock<Result<Index<Ssl, BuiltHere>, openssl::error::ErrorStack>> = OnceLock::new();
    I.get_or_init(Ssl::new_ex_index).clone().ok()
}

fn built_here(ssl: &SslRef, id: u64) -> Option<Built> {
    let built = ssl.ex_data(built_index()?)?;
    built
        .entries
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, r)| r.clone())
}

fn waits(ssl: &SslRef) -> u8 {
    built_index()
        .and_then(|i| ssl.ex_data(i))
        .map_or(0, |b| b.waits)
}

/// Keeps what deferred work built on the connection, for the hook's next run. (Not in the
/// shared cache only: with a cache smaller than the names in use, an entry could be evicted
/// before the hook runs again.)
fn keep(ssl: &mut SslRef, built: Vec<(u64, Built)>) {
    let Some(i) = built_index() else { return };
    match ssl.ex_data_mut(i) {
        Some(b) => {
            b.waits = b.waits.saturating_add(1);
            b.entries.extend(built);
        }
        None => ssl.set_ex_data(
            i,
            BuiltHere {
                waits: 1,
                entries: built,
            },
        ),
    }
}
/// Records that no certificate serves `name`; the alert for it.
pub fn no_certificate(ssl: &mut SslRef, name: Option<&str>) -> SslAlert {
    refuse(
        ssl,
        SslAlert::UNRECOGNIZED_NAME,
        Reason::UnrecognizedName,
        format!("no certificate for {}", name.unwrap_or("<no server name>")),
    )
}

/// Records that `name` is tunnelled, not terminated; the alert for it.
pub fn tunnel_name(ssl: &mut SslRef, name: Option<&str>) -> SslAlert {
    refuse(
        ssl,
        SslAlert::UNRECOGNIZED_NAME,
        Reason::TunnelName,
        format!(
            "{} is tunnelled, not terminated here",
            name.unwrap_or("<no server name>")
        ),
    )
}
