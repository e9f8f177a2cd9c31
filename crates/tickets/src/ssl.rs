//! OpenSSL glue: the session-ticket key callback (RFC 5077 layout: AES-CBC + HMAC-SHA256),
//! global enable/disable, a per-name override, the TLS 1.3 ticket count and counters.

use crate::error::TicketError;
use crate::ffi;
use crate::key::TicketKey;
use crate::mac::set_hmac_key;
use crate::ring::TicketKeys;
use edgetls_tls::retry::{self, Pending};
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_uchar, c_void, size_t};
use openssl::ex_data::Index;
use openssl::ssl::{
    ClientHelloResponse, SslAlert, SslContext, SslContextBuilder, SslOptions, SslRef,
};
use openssl_sys::{EVP_CIPHER_CTX, EVP_MAC_CTX, SSL, SSL_SESSION};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};

/// Decides per server name: `Some(false)` turns tickets off for that name (no ticket issued, none
/// accepted), `Some(true)` or `None` leaves them on. It is asked once per connection from a
/// ClientHello callback that `install` sets only when an override is given — on an OpenSSL
/// ASYNC job (async mode, driven by `edgetls_engine::accept`) it is left to the driver and runs
/// on the worker's own stack; code with its own ClientHello callback (the policy crate) calls
/// [`disable_for`] there instead.
pub type NameOverride = Arc<dyn Fn(Option<&str>) -> Option<bool> + Send + Sync>;

/// Ticket settings for a server context.
#[derive(Clone)]
#[non_exhaustive]
pub struct TicketConfig {
    /// Tickets at all (TLS 1.2 tickets and TLS 1.3 resumption).
    pub enabled: bool,
    /// Tickets sent after a TLS 1.3 handshake (OpenSSL's default is 2).
    pub tls13_tickets: usize,
    /// A per-connection choice of key ring (the policy's per-rule ticket keys).
    pub name_override: Option<NameOverride>,
}

impl std::fmt::Debug for TicketConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketConfig")
            .field("enabled", &self.enabled)
            .field("tls13_tickets", &self.tls13_tickets)
            .field("name_override", &self.name_override.is_some())
            .finish()
    }
}

impl Default for TicketConfig {
    fn default() -> Self {
        TicketConfig {
            enabled: true,
            tls13_tickets: 2,
            name_override: None,
        }
    }
}

/// What the callbacks find on the context.
struct State {
    keys: Arc<TicketKeys>,
}

fn state_index() -> Result<Index<SslContext, Arc<State>>, TicketError> {
    static INDEX: OnceLock<Result<Index<SslContext, Arc<State>>, openssl::error::ErrorStack>> =
        OnceLock::new();
    Ok(INDEX.get_or_init(SslContext::new_ex_index).clone()?)
}

/// Turns session tickets on for contexts built from `ctx`, with keys from `keys`, or off.
///
/// Off means no ticket extension and no TLS 1.3 tickets at all. On, tickets are sealed with the
/// ring's encrypting key; tickets under an older key still in the ring resume and are renewed;
/// unknown or expired keys give a full handshake, never an error. If a server name callback
/// switches connections to other contexts, install on those too (OpenSSL asks the context the
/// connection has at that moment for its state). OpenSSL's session-ID cache is left as it is:
/// clients that do not use tickets resume from it (`edgetls_policy::SessionCache` sets it).
pub fn install(
    ctx: &mut SslContextBuilder,
    keys: Arc<TicketKeys>,
    config: &TicketConfig,
) -> Result<(), TicketError> {
    if !config.enabled {
        ctx.set_options(SslOptions::NO_TICKET);
        ctx.set_num_tickets(0)?;
        return Ok(());
    }
    ctx.clear_options(SslOptions::NO_TICKET);
    ctx.set_num_tickets(config.tls13_tickets)?;
    if let Some(o) = config.name_override.clone() {
        // Tickets are looked at before the server name is processed: decide per name from the
        // ClientHello itself, before OpenSSL looks for a ticket.
        ctx.set_client_hello_callback(move |ssl, _alert| {
            let off = match retry::take_output::<OverrideSaid>(ssl) {
                Some(OverrideSaid(off)) => off,
                None => {
                    let name = edgetls_tls::ClientHello::of(ssl).server_name();
                    // The override is the caller's code: on an OpenSSL ASYNC job's stack (remote
                    // keys) it is left to the driver, which runs it on its own stack.
                    if edgetls_tls::in_async_job() && retry::can_defer(ssl) {
                        let o = Arc::clone(&o);
                        let ask = Pending::new(move || OverrideSaid(ask_override(&o, name)));
                        return retry::defer(ssl, ask)
                            .map_err(|_| openssl::error::ErrorStack::get());
                    }
                    ask_override(&o, name)
                }
            };
            if off {
                disable_for(ssl).map_err(|_| openssl::error::ErrorStack::get())?;
            }
            Ok(ClientHelloResponse::SUCCESS)
        });
    }
    keys.start_refresher();
    let state = Arc::new(State { keys });
    let arg = Arc::as_ptr(&state) as *mut c_void;
    ctx.set_ex_data(state_index()?, state);
    // SAFETY: the callbacks are plain functions that never unwind; `arg` points into the State
    // the context owns through its ex_data, so it lives as long as the context.
    unsafe {
        if ffi::SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx.as_ptr(), Some(key_cb)) != 1
            || ffi::SSL_CTX_set_session_ticket_cb(ctx.as_ptr(), None, Some(decrypted_cb), arg) != 1
        {
            return Err(openssl::error::ErrorStack::get().into());
        }
    }
    Ok(())
}

/// What a name override said for a connection: true when tickets are off.
struct OverrideSaid(bool);

/// Asks the override about `name`. It is the caller's code: a panic in it must not unwind into
/// OpenSSL; it counts as "off" for this connection (no ticket), and the handshake goes on.
fn ask_override(o: &NameOverride, name: Option<String>) -> bool {
    catch_unwind(AssertUnwindSafe(|| o(name.as_deref()) == Some(false))).unwrap_or(true)
}

/// Turns tickets off for one connection (e.g. from a server name callback, for a name whose
/// policy says so).
pub fn disable_for(ssl: &mut SslRef) -> Result<(), TicketError> {
    // SAFETY: SSL_set_options on a live SSL only sets option bits.
    unsafe {
        ffi::SSL_set_options(ssl.as_ptr(), SslOptions::NO_TICKET.bits());
    }
    ssl.set_num_tickets(0)?;
    Ok(())
}

/// The prefetched AES-CBC cipher for `key` (an implicit fetch per ticket costs ≈ 1 µs).
fn cipher(key: &TicketKey) -> Option<*const openssl_sys::EVP_CIPHER> {
    crate::seal::cipher(key)
        .ok()
        .map(|c| c.as_ptr() as *const _)
}

/// OpenSSL's ticket key callback: 1 = use, 2 = use and renew (decrypt only), 0 = no ticket /
/// full handshake, -1 = error.
unsafe extern "C" fn key_cb(
    ssl: *mut SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    cctx: *mut EVP_CIPHER_CTX,
    hctx: *mut EVP_MAC_CTX,
    enc: c_int,
) -> c_int {
    // SAFETY: OpenSSL passes a live SSL, 16-byte key_name and iv buffers and live contexts.
    catch_unwind(AssertUnwindSafe(|| unsafe {
        key_cb_inner(ssl, key_name, iv, cctx, hctx, enc)
    }))
    .unwrap_or(-1)
}

/// # Safety
/// As for `key_cb`.
unsafe fn key_cb_inner(
    ssl: *mut SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    cctx: *mut EVP_CIPHER_CTX,
    hctx: *mut EVP_MAC_CTX,
    enc: c_int,
) -> c_int {
    // SAFETY: ssl is live for the callback.
    let ssl = unsafe { SslRef::from_ptr_mut(ssl) };
    let Ok(index) = state_index() else {
        return fail(ssl, None, "no ex_data slot for the ticket keys");
    };
    let Some(state) = ssl.ssl_context().ex_data(index) else {
        return 0;
    };
    // The name override's answer, from the ClientHello callback (the override itself is not
    // asked again here: it is user code and this may run on an ASYNC job's stack).
    // SAFETY: SSL_get_options only reads the live SSL's option bits.
    let options = unsafe { ffi::SSL_get_options(ssl.as_ptr()) };
    if options & SslOptions::NO_TICKET.bits() != 0 {
        return 0;
    }
    // The ring as it is: its source is refreshed by its refresher thread, never from here
    // (this may run on an OpenSSL ASYNC job's stack, and a source may read files).
    let keys = Arc::clone(&state.keys);
    if enc == 1 {
        let key = keys.encrypting_in_force();
        let Some(cipher) = cipher(&key) else {
            return fail(ssl, Some(&keys), "no cipher for the encrypting key");
        };
        // SAFETY: iv and key_name are 16-byte buffers (RFC 5077 layout); the contexts are live.
        unsafe {
            if openssl_sys::RAND_bytes(iv, 16) != 1 {
                return fail(ssl, Some(&keys), "no random IV for a ticket");
            }
            std::ptr::copy_nonoverlapping(key.name().as_ptr(), key_name, 16);
            if openssl_sys::EVP_EncryptInit_ex(
                cctx,
                cipher,
                std::ptr::null_mut(),
                key.aes_key().as_ptr(),
                iv,
            ) != 1
                || !set_hmac_key(hctx, key.hmac_secret())
            {
                return fail(
                    ssl,
                    Some(&keys),
                    "sealing a ticket: cipher or MAC refused the key",
                );
            }
        }
        keys.counters().issued.fetch_add(1, Relaxed);
        1
    } else {
        // SAFETY: key_name is 16 bytes.
        let name = unsafe { std::slice::from_raw_parts(key_name, 16) };
        let Some(found) = keys.find_in_force(name) else {
            keys.counters().unknown_key.fetch_add(1, Relaxed);
            return 0;
        };
        let Some(cipher) = cipher(&found.key) else {
            return fail(ssl, Some(&keys), "no cipher for the ticket's key");
        };
        // SAFETY: iv is the ticket's 16-byte IV; the contexts are live.
        unsafe {
            if !set_hmac_key(hctx, found.key.hmac_secret())
                || openssl_sys::EVP_DecryptInit_ex(
                    cctx,
                    cipher,
                    std::ptr::null_mut(),
                    found.key.aes_key().as_ptr(),
                    iv,
                ) != 1
            {
                return fail(
                    ssl,
                    Some(&keys),
                    "opening a ticket: cipher or MAC refused the key",
                );
            }
        }
        if found.current { 1 } else { 2 }
    }
}

/// Ends the handshake from the ticket callback (-1): the reason is recorded on the connection
/// and counted on the ring.
fn fail(ssl: &mut SslRef, keys: Option<&TicketKeys>, why: &str) -> c_int {
    if let Some(keys) = keys {
        keys.counters().failed.fetch_add(1, Relaxed);
    }
    edgetls_tls::refuse(
        ssl,
        SslAlert::INTERNAL_ERROR,
        edgetls_tls::Reason::TicketKeys,
        why,
    );
    -1
}

const TLS1_3_VERSION: c_int = 0x0304;

/// Sees the outcome of every ticket decryption (after OpenSSL checked the MAC) for the counters,
/// and answers as OpenSSL would by default.
unsafe extern "C" fn decrypted_cb(
    ssl: *mut SSL,
    _ss: *mut SSL_SESSION,
    _keyname: *const c_uchar,
    _keyname_len: size_t,
    status: c_int,
    arg: *mut c_void,
) -> c_int {
    // OpenSSL passes the data of the context the connection started on; a connection switched
    // to a context with keys of its own (a rule's `ticket_key_file`) counts there.
    // SAFETY: ssl is live for the callback; its context outlives it.
    let switched = unsafe { SslRef::from_ptr_mut(ssl) }
        .ssl_context()
        .ex_data(match state_index() {
            Ok(i) => i,
            Err(_) => return ffi::SSL_TICKET_RETURN_ABORT,
        })
        .map(Arc::as_ptr);
    // SAFETY: `arg` is the State the context owns (see `install`); `switched` is a State
    // owned by the connection's context.
    let state = unsafe { &*switched.unwrap_or(arg as *const State) };
    let c = state.keys.counters();
    match status {
        ffi::SSL_TICKET_SUCCESS => {
            c.resumed.fetch_add(1, Relaxed);
            // TLS 1.3 clients use a ticket once (RFC 8446, and OpenSSL's client): send a fresh
            // one with every resumption, or the next connection is a full handshake. (OpenSSL
            // sends one after a resumption only when asked to renew.)
            // SAFETY: ssl is live for the callback.
            if unsafe { openssl_sys::SSL_version(ssl) } == TLS1_3_VERSION {
                ffi::SSL_TICKET_RETURN_USE_RENEW
            } else {
                ffi::SSL_TICKET_RETURN_USE
            }
        }
        ffi::SSL_TICKET_SUCCESS_RENEW => {
            c.resumed.fetch_add(1, Relaxed);
            c.renewed.fetch_add(1, Relaxed);
            ffi::SSL_TICKET_RETURN_USE_RENEW
        }
        ffi::SSL_TICKET_NO_DECRYPT => {
            c.not_decrypted.fetch_add(1, Relaxed);
            ffi::SSL_TICKET_RETURN_IGNORE_RENEW
        }
        ffi::SSL_TICKET_EMPTY => ffi::SSL_TICKET_RETURN_IGNORE_RENEW,
        _ => ffi::SSL_TICKET_RETURN_ABORT,
    }
}
